ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE users SET is_admin = TRUE WHERE id IN
    (SELECT user_id FROM role_grants WHERE role_id = 'vigil-console-admin' AND user_id IS NOT NULL);
DELETE FROM role_grants WHERE role_id LIKE 'vigil-console-%';
DELETE FROM roles WHERE client_id = 'vigil';
DELETE FROM clients WHERE id = 'vigil';
