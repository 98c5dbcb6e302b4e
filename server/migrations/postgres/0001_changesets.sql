-- The store's identity and settings: one row per key.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The append-only log of changesets. History is never deleted or updated.
-- Appends are serialized by a transaction-scoped advisory lock, so
-- revisions commit in order and a tailing reader never sees n+1 before n.
CREATE TABLE changesets (
    -- Store-wide revision: dense, assigned at commit.
    revision            BIGINT PRIMARY KEY,
    -- Microseconds since the Unix epoch (UTC).
    effective_at        BIGINT NOT NULL,
    recorded_at         BIGINT NOT NULL,
    actor               TEXT NOT NULL,
    reason              TEXT NOT NULL,
    reference           TEXT NOT NULL DEFAULT '',
    -- Idempotency key and a digest of the request it was used for.
    request_id          TEXT UNIQUE,
    request_fingerprint TEXT,
    -- Activation entries: the future-dated changeset they activate (once,
    -- across every replica).
    activates           BIGINT UNIQUE REFERENCES changesets (revision),
    -- The changes (see server/src/model.rs `Change`).
    changes             JSONB NOT NULL
);
