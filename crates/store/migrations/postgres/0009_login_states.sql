-- Sign-ins in progress (issue 20): the PKCE verifier, nonce and return path between
-- `/auth/login` on one replica and `/auth/callback` on any other. Keyed by the SHA-256 of
-- the OAuth `state` (which stays in the browser's login cookie); single use, ten minutes.
CREATE TABLE login_states (
    state_hash TEXT PRIMARY KEY,
    verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX login_states_expiry ON login_states (expires_ms);
