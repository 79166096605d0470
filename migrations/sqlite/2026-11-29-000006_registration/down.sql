ALTER TABLE users DROP COLUMN registration;
