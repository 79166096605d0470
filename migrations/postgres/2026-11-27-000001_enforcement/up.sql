-- Account risk: the state a compromise leaves (none -> at_risk -> compromised, back to none when
-- remediated or dismissed), and when it was entered.
ALTER TABLE users ADD COLUMN risk_state TEXT NOT NULL DEFAULT 'none' CHECK (risk_state IN ('none', 'at_risk', 'compromised'));
ALTER TABLE users ADD COLUMN risk_state_at BIGINT;
-- A login transaction belongs to the browser that started it (its device cookie), and records
-- the session that was assessed for it, so a resume with any other session is re-scored.
ALTER TABLE authz_requests ADD COLUMN device_id TEXT;
ALTER TABLE authz_requests ADD COLUMN assessed_session TEXT;
-- Factors added after a reported sign-in are suspended until the owner confirms them.
ALTER TABLE totp_credentials ADD COLUMN suspended_at BIGINT;
ALTER TABLE webauthn_credentials ADD COLUMN suspended_at BIGINT;
