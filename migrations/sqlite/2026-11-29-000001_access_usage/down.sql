DROP TABLE role_usage;
DROP TABLE client_usage;
ALTER TABLE users DROP COLUMN last_signin_at;
