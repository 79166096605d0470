ALTER TABLE users DROP COLUMN must_change_password;
ALTER TABLE clients DROP COLUMN risk_threshold_high;
ALTER TABLE clients DROP COLUMN risk_threshold_medium;
DROP INDEX signins_outcome_at;
DROP TABLE reviews;
