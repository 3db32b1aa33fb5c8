-- Governance store, version 6 (SQLite): login sessions in the store, and the change log
-- (issue 20). SQLite serializes writers, so AUTOINCREMENT order is commit order. Additive:
-- never edit a released migration.

-- A login session. Only the SHA-256 (hex) of the cookie value is stored, never the value.
CREATE TABLE IF NOT EXISTS sessions (
    id_hash     TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,
    team        TEXT,
    groups_json TEXT NOT NULL,
    sid         TEXT,
    id_token    TEXT,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    seen_ms     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_sid ON sessions (sid);
CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (subject);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_ms);

-- What changed, in commit order; followers poll it.
CREATE TABLE IF NOT EXISTS change_log (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind  TEXT NOT NULL,
    item  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS change_log_at ON change_log (at_ms);

-- A session ended before its time: every follower drops it and refuses its IdP session id.
CREATE TRIGGER IF NOT EXISTS sessions_ended AFTER DELETE ON sessions
WHEN OLD.expires_ms > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN
    INSERT INTO change_log (at_ms, kind, item)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'session', OLD.id_hash);
    INSERT INTO change_log (at_ms, kind, item)
    SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'sid', OLD.sid
    WHERE OLD.sid IS NOT NULL;
END;

-- A personal key revoked, deleted or changed (last-used writes are not changes).
CREATE TRIGGER IF NOT EXISTS api_keys_changed AFTER UPDATE ON api_keys
WHEN NEW.revoked_ms IS NOT OLD.revoked_ms OR NEW.expires_ms IS NOT OLD.expires_ms
  OR NEW.role IS NOT OLD.role OR NEW.team IS NOT OLD.team OR NEW.subject IS NOT OLD.subject
BEGIN
    INSERT INTO change_log (at_ms, kind, item)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'api_key', NEW.hash);
END;
CREATE TRIGGER IF NOT EXISTS api_keys_deleted AFTER DELETE ON api_keys
BEGIN
    INSERT INTO change_log (at_ms, kind, item)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'api_key', OLD.hash);
END;

-- Binding changes.
CREATE TRIGGER IF NOT EXISTS rbac_bindings_inserted AFTER INSERT ON rbac_bindings
BEGIN
    INSERT INTO change_log (at_ms, kind, item)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'bindings', '');
END;
CREATE TRIGGER IF NOT EXISTS rbac_bindings_updated AFTER UPDATE ON rbac_bindings
BEGIN
    INSERT INTO change_log (at_ms, kind, item)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'bindings', '');
END;
CREATE TRIGGER IF NOT EXISTS rbac_bindings_deleted AFTER DELETE ON rbac_bindings
BEGIN
    INSERT INTO change_log (at_ms, kind, item)
    VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'bindings', '');
END;
