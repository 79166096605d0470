-- The admin review queue: sign-ins that wait for a person's verdict. A row is written in the
-- same transaction as the sign-in it points at, so the queue never misses one, and the verdict
-- is given later, outside the sign-in's critical path.
CREATE TABLE reviews (
    id TEXT PRIMARY KEY NOT NULL,
    signin_id TEXT NOT NULL,
    user_id TEXT,
    -- blocked, step_up_failed, high_risk, reported (a user said "this wasn't me")
    kind TEXT NOT NULL,
    -- what the explanation suggests: legitimate or attack
    recommended TEXT NOT NULL,
    -- open, legitimate, attack
    status TEXT NOT NULL DEFAULT 'open',
    created_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    note TEXT
);
CREATE INDEX reviews_status ON reviews (status, created_at);
CREATE INDEX signins_outcome_at ON signins (outcome, at);
CREATE UNIQUE INDEX reviews_signin_kind ON reviews (signin_id, kind);
-- Per-client risk thresholds (NULL: the global ones).
ALTER TABLE clients ADD COLUMN risk_threshold_medium BIGINT;
ALTER TABLE clients ADD COLUMN risk_threshold_high BIGINT;
-- Set by an admin's password reset or a "this wasn't me" report: the next sign-in must choose
-- a new password before anything else.
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
