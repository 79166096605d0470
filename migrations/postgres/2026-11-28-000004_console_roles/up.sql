-- Delegated administration: vigil's own console is a built-in client with three roles, granted
-- like any application's (to users or groups). The single admin flag becomes the `admin` role.
INSERT INTO clients (id, name, secret_hash, public, first_party, redirect_uris,
                     post_logout_redirect_uris, grant_types, require_pkce, created_at, updated_at,
                     id_token_alg, access_token_alg, require_role)
VALUES ('vigil', 'vigil console', NULL, FALSE, TRUE, '[]', '[]', '[]', TRUE, 0, 0,
        'RS256', 'RS256', TRUE);
INSERT INTO roles (id, client_id, name, description, privileged, created_at) VALUES
    ('vigil-console-admin', 'vigil', 'admin', 'Everything', TRUE, 0),
    ('vigil-console-helpdesk', 'vigil', 'helpdesk',
     'Users: unlock, reset passwords, end sessions, remove factors; the review queue', TRUE, 0),
    ('vigil-console-auditor', 'vigil', 'auditor',
     'Read-only: the sign-in log and its exports, the dashboard, fairness', FALSE, 0);
INSERT INTO role_grants (id, role_id, user_id, group_id, granted_at)
    SELECT 'admin-' || id, 'vigil-console-admin', id, NULL, updated_at FROM users WHERE is_admin;
ALTER TABLE users DROP COLUMN is_admin;
