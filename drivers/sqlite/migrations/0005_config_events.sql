-- Every change of a store setting, as image_events keeps those of images:
-- runprov init writes the first values, runprov config the later ones.
CREATE TABLE config_events (
    id        INTEGER PRIMARY KEY,
    key       TEXT NOT NULL,
    old_value TEXT,                              -- NULL: the setting was not set
    new_value TEXT NOT NULL,
    at        TEXT NOT NULL,                     -- RFC 3339, UTC
    user      TEXT NOT NULL,                     -- login name of who did it
    uid       INTEGER NOT NULL,
    note      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX config_events_key ON config_events(key);

-- Settings made before this table existed: their value, by an unknown user.
INSERT INTO config_events(key, old_value, new_value, at, user, uid, note)
    SELECT key, NULL, value, strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 'now'), '', -1,
           'set before config events were recorded'
    FROM settings ORDER BY key;
