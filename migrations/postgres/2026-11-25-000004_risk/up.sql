-- The risk engine: per-user profiles and shared model state (global frequencies, attacker
-- reputation), both JSON read and written in the sign-in's transaction; the assessment of each
-- sign-in in the log; the assessment a session carries into its tokens.
CREATE TABLE risk_profiles (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    profile TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE risk_state (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

ALTER TABLE signins ADD COLUMN features TEXT;
ALTER TABLE signins ADD COLUMN score BIGINT;
ALTER TABLE signins ADD COLUMN level TEXT;
ALTER TABLE signins ADD COLUMN decision TEXT;
ALTER TABLE signins ADD COLUMN reasons TEXT;
ALTER TABLE signins ADD COLUMN assessment TEXT;
ALTER TABLE signins ADD COLUMN model TEXT;
ALTER TABLE signins ADD COLUMN geoip_build BIGINT;
ALTER TABLE signins ADD COLUMN candidate_decision TEXT;

ALTER TABLE sessions ADD COLUMN risk TEXT;
