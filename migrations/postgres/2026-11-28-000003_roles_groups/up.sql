-- Access control under the risk engine: groups of users, an application's own roles, and
-- grants of a role to a user or to a group (whose members then hold it).
CREATE TABLE groups (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
-- A user's groups, at every token issuance.
CREATE INDEX group_members_user ON group_members (user_id);

-- Roles belong to a client (an application's own roles). A privileged role is released only
-- to a recent sign-in with a second factor (flow/enforce.rs).
CREATE TABLE roles (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    privileged BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX roles_client_name ON roles (client_id, name);

-- Exactly one of user_id and group_id names the holder.
CREATE TABLE role_grants (
    id TEXT PRIMARY KEY NOT NULL,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    group_id TEXT REFERENCES groups(id) ON DELETE CASCADE,
    granted_at BIGINT NOT NULL,
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE UNIQUE INDEX role_grants_user ON role_grants (user_id, role_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX role_grants_group ON role_grants (group_id, role_id) WHERE group_id IS NOT NULL;
CREATE INDEX role_grants_role ON role_grants (role_id);

-- App access rules: only users holding at least one of the client's roles may sign in to it.
ALTER TABLE clients ADD COLUMN require_role BOOLEAN NOT NULL DEFAULT FALSE;
-- How old a sign-in may be for a token with a privileged role (NULL: vigil's default).
ALTER TABLE clients ADD COLUMN privileged_max_age_secs BIGINT;
