-- Governance store, version 3 (PostgreSQL): the gateway's signing keys, shared by replicas.
-- A key signs from active_ms until retire_ms, and verifies (and is published in the
-- JWKS) until expire_ms. `seed` is the base64 Ed25519 private seed.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid        TEXT PRIMARY KEY,
    seed       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    active_ms  BIGINT NOT NULL,
    retire_ms  BIGINT NOT NULL,
    expire_ms  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS signing_keys_expiry ON signing_keys (expire_ms);
