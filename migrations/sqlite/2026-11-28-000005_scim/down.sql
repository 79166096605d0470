ALTER TABLE clients DROP COLUMN provisioning;
DROP INDEX groups_external_id;
ALTER TABLE groups DROP COLUMN external_id;
DROP INDEX users_external_id;
ALTER TABLE users DROP COLUMN family_name;
ALTER TABLE users DROP COLUMN given_name;
ALTER TABLE users DROP COLUMN external_id;
