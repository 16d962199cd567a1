-- What is inside an image: the packages found in its unpacked root
-- filesystem, kept once per image config digest (every manifest with that
-- config has the same layers, so the same packages).
CREATE TABLE image_inventories (
    config_digest TEXT PRIMARY KEY,       -- sha256:<hex> of the image config
    created       TEXT NOT NULL,          -- when it was read, RFC 3339 UTC
    packages      INTEGER NOT NULL        -- rows in image_packages
);

CREATE TABLE image_packages (
    config_digest TEXT NOT NULL REFERENCES image_inventories(config_digest) ON DELETE CASCADE,
    ecosystem     TEXT NOT NULL,          -- deb, apk, rpm, pypi, cran, conda
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    arch          TEXT NOT NULL DEFAULT '',
    license       TEXT NOT NULL DEFAULT '',
    purl          TEXT NOT NULL,          -- package URL
    location      TEXT NOT NULL,          -- where it was found in the image
    PRIMARY KEY (config_digest, ecosystem, name, version, arch, location)
);
CREATE INDEX image_packages_name ON image_packages(name);
