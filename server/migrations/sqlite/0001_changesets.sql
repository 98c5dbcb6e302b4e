-- The store's identity and settings: one row per key.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- The append-only log of changesets. History is never deleted or updated.
CREATE TABLE changesets (
    -- Store-wide revision: dense, assigned at commit.
    revision            INTEGER PRIMARY KEY NOT NULL,
    -- Microseconds since the Unix epoch (UTC).
    effective_at        INTEGER NOT NULL,
    recorded_at         INTEGER NOT NULL,
    actor               TEXT NOT NULL,
    reason              TEXT NOT NULL,
    reference           TEXT NOT NULL DEFAULT '',
    -- Idempotency key and a digest of the request it was used for.
    request_id          TEXT UNIQUE,
    request_fingerprint TEXT,
    -- Activation entries: the future-dated changeset they activate (once).
    activates           INTEGER UNIQUE REFERENCES changesets (revision),
    -- The changes, a JSON array (see server/src/model.rs `Change`).
    changes             TEXT NOT NULL
);
