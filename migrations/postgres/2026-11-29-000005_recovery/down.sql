DELETE FROM mfa_flows WHERE purpose = 'password_reset';
ALTER TABLE mfa_flows DROP CONSTRAINT mfa_flows_purpose_check;
ALTER TABLE mfa_flows ADD CONSTRAINT mfa_flows_purpose_check CHECK (purpose IN ('step_up', 'webauthn_step_up', 'passwordless', 'register', 'totp_enrol', 'show_recovery'));
DROP TABLE email_requests;
ALTER TABLE email_links DROP COLUMN subject;
ALTER TABLE email_links DROP COLUMN device_id;
