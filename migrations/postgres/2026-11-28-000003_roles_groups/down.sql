ALTER TABLE clients DROP COLUMN privileged_max_age_secs;
ALTER TABLE clients DROP COLUMN require_role;
DROP TABLE role_grants;
DROP TABLE roles;
DROP TABLE group_members;
DROP TABLE groups;
