-- Audit events of a platform controller name the tenant it acted for (issue 14):
-- `on_behalf_of.team` / `.owner` of the event. Additive; NULL for everyone else.
ALTER TABLE audit_events ADD COLUMN tenant_team TEXT;
ALTER TABLE audit_events ADD COLUMN tenant_owner TEXT;
