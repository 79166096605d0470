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
-- mfa_flows (purpose `password_reset`).
ALTER TABLE mfa_flows DROP CONSTRAINT mfa_flows_purpose_check;
ALTER TABLE mfa_flows ADD CONSTRAINT mfa_flows_purpose_check CHECK (purpose IN ('step_up', 'webauthn_step_up', 'passwordless', 'register', 'totp_enrol', 'show_recovery', 'password_reset'));
