-- Governance store, version 1 (PostgreSQL). Migrations are additive: never edit a released one.
CREATE TABLE IF NOT EXISTS audit_events (
    id          TEXT PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    request_id  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    team        TEXT,
    role        TEXT,
    auth_method TEXT NOT NULL,
    key_name    TEXT,
    action      TEXT,
    sandbox_id  TEXT,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    status      BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT,
    duration_ms DOUBLE PRECISION NOT NULL,
    peer        TEXT
);
CREATE INDEX IF NOT EXISTS audit_events_newest ON audit_events (at_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_events_team ON audit_events (team, at_ms DESC);
CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (actor, at_ms DESC);

CREATE TABLE IF NOT EXISTS rbac_bindings (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    team       TEXT,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE IF NOT EXISTS api_keys (
    id           TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    name         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    team         TEXT,
    role         TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT,
    last_used_ms BIGINT,
    revoked_ms   BIGINT
);
CREATE INDEX IF NOT EXISTS api_keys_subject ON api_keys (subject);

-- Bumped on every binding change; readers poll it.
CREATE TABLE IF NOT EXISTS governance_version (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO governance_version (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;

-- Listeners (LISTEN gatehouse_bindings) learn of binding changes at once.
CREATE OR REPLACE FUNCTION gatehouse_bindings_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_bindings', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS rbac_bindings_notify ON rbac_bindings;
CREATE TRIGGER rbac_bindings_notify AFTER INSERT OR UPDATE OR DELETE ON rbac_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_bindings_notify();
