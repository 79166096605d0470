ALTER TABLE webauthn_credentials DROP COLUMN suspended_at;
ALTER TABLE totp_credentials DROP COLUMN suspended_at;
ALTER TABLE authz_requests DROP COLUMN assessed_session;
ALTER TABLE authz_requests DROP COLUMN device_id;
ALTER TABLE users DROP COLUMN risk_state_at;
ALTER TABLE users DROP COLUMN risk_state;
