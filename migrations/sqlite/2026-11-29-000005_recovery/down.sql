CREATE TABLE mfa_flows_old (
    id TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('step_up', 'webauthn_step_up', 'passwordless', 'register', 'totp_enrol', 'show_recovery')),
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO mfa_flows_old SELECT id, purpose, user_id, data, created_at, expires_at FROM mfa_flows WHERE purpose <> 'password_reset';
DROP TABLE mfa_flows;
ALTER TABLE mfa_flows_old RENAME TO mfa_flows;
CREATE INDEX mfa_flows_expires ON mfa_flows (expires_at);
DROP TABLE email_requests;
ALTER TABLE email_links DROP COLUMN subject;
ALTER TABLE email_links DROP COLUMN device_id;
