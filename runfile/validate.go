package runfile

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/runprov/runprov/core"
)

// Image references: a small version of the distribution reference grammar
// (github.com/distribution/reference), without IPv6 hosts.
var (
	reHost      = core.LazyRegexp(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]+)?$`)
	rePathPart  = core.LazyRegexp(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
	reTag       = core.LazyRegexp(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	reHex       = core.LazyRegexp(`^[0-9a-fA-F]+$`)
	reAlgorithm = core.LazyRegexp(`^[a-z0-9]+([+._-][a-z0-9]+)*$`)
	rePlatform  = core.LazyRegexp(`^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$`)
)

const maxRepoLen = 255

// parseImage checks NAME[:TAG]@sha256:HEX64 and splits it. Name is
// normalised as docker does: "busybox" is "docker.io/library/busybox".
func parseImage(ref string) (Image, string) {
	img := Image{Ref: ref}
	name, digest, hasDigest := strings.Cut(ref, "@")
	if name == "" {
		return img, fmt.Sprintf("FROM %s has no image name; write FROM NAME[:TAG]@sha256:DIGEST", show(ref))
	}
	repo, tag := name, ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		repo, tag = name[:i], name[i+1:]
	}
	if msg := checkRepo(repo); msg != "" {
		return img, msg
	}
	if tag != "" && !reTag().MatchString(tag) {
		return img, fmt.Sprintf("FROM %s: tag %s is not valid; a tag is up to 128 letters, digits, '_', '.' and '-'", show(ref), show(tag))
	}
	if !hasDigest {
		return img, fmt.Sprintf("FROM %s has no digest; a Runfile pins its image: FROM %s@sha256:<digest> (find the digest with \"runprov image ls\" or \"crane digest %s\")", show(ref), name, name)
	}
	if msg := checkDigest(digest); msg != "" {
		return img, fmt.Sprintf("FROM %s: %s", show(name), msg)
	}
	img.Name, img.Tag, img.Digest = normalizeRepo(repo), tag, digest
	return img, ""
}

func checkRepo(repo string) string {
	if len(repo) > maxRepoLen {
		return fmt.Sprintf("FROM: the image name is %d bytes long; the limit is %d", len(repo), maxRepoLen)
	}
	parts := strings.Split(repo, "/")
	if len(parts) > 1 && isHost(parts[0]) {
		if !reHost().MatchString(parts[0]) {
			return fmt.Sprintf("FROM: registry %s is not a valid host[:port]", show(parts[0]))
		}
		parts = parts[1:]
	}
	for _, p := range parts {
		if rePathPart().MatchString(p) {
			continue
		}
		if rePathPart().MatchString(strings.ToLower(p)) {
			return fmt.Sprintf("FROM: repository %s must be lowercase", show(repo))
		}
		return fmt.Sprintf("FROM: repository %s is not valid; its parts are lowercase letters and digits separated by '.', '_', '__' or '-'", show(repo))
	}
	return ""
}

// isHost tells whether the first part of a repository names a registry, as
// docker decides it (except that docker also takes a part with upper case
// letters for a host; here that is an upper case repository, refused).
func isHost(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost"
}

func normalizeRepo(repo string) string {
	parts := strings.SplitN(repo, "/", 2)
	host, rest := "docker.io", repo
	if len(parts) == 2 && isHost(parts[0]) {
		host, rest = parts[0], parts[1]
	}
	if host == "index.docker.io" {
		host = "docker.io"
	}
	if host == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	return host + "/" + rest
}

func checkDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	switch {
	case !ok || !reAlgorithm().MatchString(alg) || hex == "":
		return fmt.Sprintf("digest %s is not ALGORITHM:HEX; write sha256:<64 lowercase hex digits>", show(d))
	case alg != "sha256":
		return fmt.Sprintf("digest algorithm %s is not accepted; a Runfile pins images by sha256:<64 lowercase hex digits>", show(alg))
	case !reHex().MatchString(hex):
		return fmt.Sprintf("the digest %s is not hexadecimal; write sha256:<64 lowercase hex digits>", show(d))
	case len(hex) != 64:
		return fmt.Sprintf("the digest has %d hex digits; a sha256 digest has 64", len(hex))
	case strings.ToLower(hex) != hex:
		return "the digest has uppercase hex digits; write them in lowercase"
	}
	return ""
}

func checkPlatform(p string) string {
	if !rePlatform().MatchString(p) {
		return fmt.Sprintf("FROM --platform=%s: expected OS/ARCH[/VARIANT] in lowercase, like linux/amd64 or linux/arm64/v8", show(p))
	}
	return ""
}

const maxPath = 4096

// cleanPath checks an absolute container path and returns it cleaned: "."
// components, repeated and trailing slashes go; ".." is refused because a
// path that climbs is hard to read in a provenance record.
func cleanPath(what, p string) (string, string) {
	switch {
	case p == "":
		return "", fmt.Sprintf("%s needs an absolute path, like /data", what)
	case !strings.HasPrefix(p, "/"):
		return "", fmt.Sprintf("%s %s is a relative path; container paths must be absolute, like /%s", what, show(p), strings.TrimLeft(p, "./"))
	case len(p) > maxPath:
		return "", fmt.Sprintf("%s: the path is %d bytes long; the limit is %d", what, len(p), maxPath)
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "", fmt.Sprintf("%s %s has control characters; write a plain path", what, show(p))
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Sprintf("%s %s has a \"..\" component; write the path without it", what, show(p))
		}
	}
	return path.Clean(p), ""
}

// reserved are the kernel file systems a mount may not cover.
var reserved = []string{"/proc", "/sys", "/dev"}

// mountTarget checks the target of an INPUT, OUTPUT, SCRATCH or VOLUME.
func mountTarget(what, p string) (string, string) {
	p, msg := cleanPath(what, p)
	if msg != "" {
		return "", msg
	}
	if p == "/" {
		return "", fmt.Sprintf("%s /: a mount may not cover the root of the container; use a directory like /data", what)
	}
	for _, r := range reserved {
		if p == r || strings.HasPrefix(p, r+"/") {
			return "", fmt.Sprintf("%s %s is under %s; mounts may not cover /proc, /sys or /dev", what, show(p), r)
		}
	}
	return p, ""
}

// reMountName is the rule for INPUT and VOLUME names: they name files in the
// store and flags on the command line.
var reMountName = core.LazyRegexp(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

func checkMountName(what, name string) string {
	if !reMountName().MatchString(name) {
		return fmt.Sprintf("%s name %s is not valid; use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit (at most 128)", what, show(name))
	}
	return ""
}

var reLabelKey = core.LazyRegexp(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)

// parseUser reads UID[:GID]. A missing GID is the UID. Names are refused:
// they could only be checked against the image's /etc/passwd, and root
// could hide behind any of them.
func parseUser(s string) (uid, gid uint32, msg string) {
	u, g, hasGID := strings.Cut(s, ":")
	uid, msg = parseID("UID", u, s)
	if msg != "" {
		return 0, 0, msg
	}
	gid = uid
	if hasGID {
		if gid, msg = parseID("GID", g, s); msg != "" {
			return 0, 0, msg
		}
	}
	return uid, gid, ""
}

func parseID(what, s, user string) (uint32, string) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		if s == "root" {
			return 0, "USER root: runs never run as root; use a numeric non-zero UID[:GID], like USER 1000:1000"
		}
		return 0, fmt.Sprintf("USER %s: %s %s is not a number; USER takes numeric ids, UID[:GID], like 1000:1000 (names cannot be checked)", show(user), what, show(s))
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, fmt.Sprintf("USER %s: %s %s is out of range; the limit is 4294967294", show(user), what, show(s))
	}
	if n == 0 {
		root := "root"
		if what == "GID" {
			root = "the root group"
		}
		return 0, fmt.Sprintf("USER %s: %s 0 is %s; runs never run as root: use non-zero ids, like 1000:1000", show(user), what, root)
	}
	return uint32(n), ""
}
