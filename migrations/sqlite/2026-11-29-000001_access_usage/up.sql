-- What is really used, for least privilege (src/access/): the last verified sign-in of each
-- account, the last token each user received for each client, and the last time each role was
-- issued in one. Written in the sign-in's own transaction (users) and with the batched token
-- issuance log (the usage tables), so recording costs no commit of its own.
ALTER TABLE users ADD COLUMN last_signin_at BIGINT;

CREATE TABLE client_usage (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Keyed by the role's name within its client, as tokens carry it.
CREATE TABLE role_usage (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    role TEXT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, role)
);
