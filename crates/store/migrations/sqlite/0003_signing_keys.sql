-- Governance store, version 3 (SQLite): the gateway's signing keys, shared by replicas.
-- A key signs from active_ms until retire_ms, and verifies (and is published in the
-- JWKS) until expire_ms. `seed` is the base64 Ed25519 private seed.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid        TEXT PRIMARY KEY,
    seed       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    active_ms  INTEGER NOT NULL,
    retire_ms  INTEGER NOT NULL,
    expire_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS signing_keys_expiry ON signing_keys (expire_ms);
