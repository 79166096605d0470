DROP TABLE server_secrets;
DROP TABLE audit_log;
DROP TABLE audit_head;
DROP TABLE login_failures;
DROP TABLE clients;
DROP TABLE sessions;
DROP TABLE users;
