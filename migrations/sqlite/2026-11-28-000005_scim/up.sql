-- SCIM provisioning: the identifiers and names an HR system keeps, and the clients allowed to
-- provision (the `scim` scope of a client_credentials token).
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN given_name TEXT;
ALTER TABLE users ADD COLUMN family_name TEXT;
CREATE INDEX users_external_id ON users (external_id);
ALTER TABLE groups ADD COLUMN external_id TEXT;
CREATE INDEX groups_external_id ON groups (external_id);
ALTER TABLE clients ADD COLUMN provisioning BOOLEAN NOT NULL DEFAULT FALSE;
