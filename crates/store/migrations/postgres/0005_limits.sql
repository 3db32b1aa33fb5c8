-- Governance store, version 5 (PostgreSQL): idempotency keys, team quota overrides and the
-- quota resource ledger. Migrations are additive: never edit a released one.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    principal      TEXT NOT NULL,
    idem_key       TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    state          TEXT NOT NULL,
    status         BIGINT,
    body           TEXT,
    lease_until_ms BIGINT NOT NULL,
    expires_ms     BIGINT NOT NULL,
    created_ms     BIGINT NOT NULL,
    PRIMARY KEY (principal, idem_key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_ms);

CREATE TABLE IF NOT EXISTS team_quotas (
    team                TEXT PRIMARY KEY,
    max_sandboxes       BIGINT,
    max_cpu_millis      BIGINT,
    max_memory_bytes    BIGINT,
    max_timeout_seconds BIGINT,
    updated_by          TEXT NOT NULL,
    updated_ms          BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS quota_ledger (
    sandbox_id   TEXT PRIMARY KEY,
    team         TEXT,
    owner        TEXT NOT NULL,
    cpu_millis   BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    created_ms   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_ledger_team ON quota_ledger (team);
CREATE INDEX IF NOT EXISTS quota_ledger_owner ON quota_ledger (owner);
