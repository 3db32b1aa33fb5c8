-- Governance store, version 6 (PostgreSQL): login sessions every replica shares, and the
-- change log every replica follows (issue 20). Additive: never edit a released migration.

-- A login session. Only the SHA-256 (hex) of the cookie value is stored, never the value.
CREATE TABLE IF NOT EXISTS sessions (
    id_hash     TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,
    team        TEXT,
    groups_json TEXT NOT NULL,
    sid         TEXT,
    id_token    TEXT,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    seen_ms     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_sid ON sessions (sid);
CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (subject);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_ms);

-- What changed, in commit order: replicas read every row after the last one they saw and
-- drop what their caches hold for it. `seq` is assigned under a transaction-scoped
-- advisory lock, so a higher seq never commits before a lower one (a reader that has seen
-- seq N has seen everything below N).
CREATE SEQUENCE IF NOT EXISTS change_log_seq;
CREATE TABLE IF NOT EXISTS change_log (
    seq   BIGINT PRIMARY KEY DEFAULT 0,
    at_ms BIGINT NOT NULL,
    kind  TEXT NOT NULL,
    item  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS change_log_at ON change_log (at_ms);

CREATE OR REPLACE FUNCTION gatehouse_change_order() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(20200006);
    NEW.seq := nextval('change_log_seq');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS change_log_order ON change_log;
CREATE TRIGGER change_log_order BEFORE INSERT ON change_log
    FOR EACH ROW EXECUTE FUNCTION gatehouse_change_order();

-- One channel for every change: LISTEN gatehouse_changes wakes the replicas' followers.
CREATE OR REPLACE FUNCTION gatehouse_change_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_changes', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS change_log_notify ON change_log;
CREATE TRIGGER change_log_notify AFTER INSERT ON change_log
    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_change_notify();

CREATE OR REPLACE FUNCTION gatehouse_log_change(change_kind TEXT, change_key TEXT) RETURNS void AS $$
BEGIN
    INSERT INTO change_log (at_ms, kind, item)
    VALUES ((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, change_kind, change_key);
END;
$$ LANGUAGE plpgsql;

-- A session ended before its time (logout, back-channel logout): every replica drops it,
-- and refuses tokens carrying its IdP session id.
CREATE OR REPLACE FUNCTION gatehouse_session_ended() RETURNS trigger AS $$
BEGIN
    IF OLD.expires_ms > (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT THEN
        PERFORM gatehouse_log_change('session', OLD.id_hash);
        IF OLD.sid IS NOT NULL THEN
            PERFORM gatehouse_log_change('sid', OLD.sid);
        END IF;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS sessions_ended ON sessions;
CREATE TRIGGER sessions_ended AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION gatehouse_session_ended();

-- A personal key revoked, deleted or changed: every replica drops its cached lookup.
-- (Last-used writes are not changes.)
CREATE OR REPLACE FUNCTION gatehouse_key_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM gatehouse_log_change('api_key', OLD.hash);
    ELSIF NEW.revoked_ms IS DISTINCT FROM OLD.revoked_ms
       OR NEW.expires_ms IS DISTINCT FROM OLD.expires_ms
       OR NEW.role IS DISTINCT FROM OLD.role
       OR NEW.team IS DISTINCT FROM OLD.team
       OR NEW.subject IS DISTINCT FROM OLD.subject THEN
        PERFORM gatehouse_log_change('api_key', NEW.hash);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS api_keys_changed ON api_keys;
CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION gatehouse_key_changed();

-- Binding changes go through the same log and channel (the version-1 trigger notified a
-- channel of its own).
CREATE OR REPLACE FUNCTION gatehouse_bindings_notify() RETURNS trigger AS $$
BEGIN
    PERFORM gatehouse_log_change('bindings', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
