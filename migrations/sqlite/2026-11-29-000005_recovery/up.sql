-- Password reset and notices (README "E-mail"). A reset link is bound to the browser that asked
-- for it (its device cookie); a "this wasn't me" link names the sign-in it reports (`subject`).
ALTER TABLE email_links ADD COLUMN device_id TEXT;
ALTER TABLE email_links ADD COLUMN subject TEXT;

-- Requests that mail a link to whoever owns what was typed (password reset): counted by what was
-- typed and by network, whether or not an account matched, so the throttle answers alike.
CREATE TABLE email_requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    address_key TEXT NOT NULL,
    ip_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX email_requests_address ON email_requests(kind, address_key, created_at);
CREATE INDEX email_requests_ip ON email_requests(kind, ip_key, created_at);

-- A password reset whose link (and second factor) were proven waits for its new password in
-- mfa_flows (purpose `password_reset`). SQLite cannot change a CHECK constraint in place: the
-- table (short-lived state, referenced by nothing) is rebuilt.
CREATE TABLE mfa_flows_new (
    id TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('step_up', 'webauthn_step_up', 'passwordless', 'register', 'totp_enrol', 'show_recovery', 'password_reset')),
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO mfa_flows_new SELECT id, purpose, user_id, data, created_at, expires_at FROM mfa_flows;
DROP TABLE mfa_flows;
ALTER TABLE mfa_flows_new RENAME TO mfa_flows;
CREATE INDEX mfa_flows_expires ON mfa_flows (expires_at);
