-- Access tokens are self-contained JWTs: nothing is written per token any more except a batched
-- issuance log (access_tokens, kept for auditors). What can end a token early is recorded here:
-- a revoked token id (kind 'jti', RFC 7009) or a revoked grant (kind 'grant': a code's or a
-- refresh family's tokens; containment revokes every grant of the account). Each node keeps
-- these in memory and reads only the rows above the highest seq it has seen.
CREATE TABLE revocations (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX revocations_kind_value ON revocations (kind, value);
CREATE INDEX revocations_expires ON revocations (expires_at);

INSERT INTO revocations (kind, value, revoked_at, expires_at)
    SELECT 'jti', jti, revoked_at, expires_at FROM access_tokens WHERE revoked_at IS NOT NULL;

DROP INDEX access_tokens_code;
DROP INDEX access_tokens_family;
ALTER TABLE access_tokens DROP COLUMN revoked_at;
ALTER TABLE access_tokens ADD COLUMN issued_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE access_tokens ADD COLUMN grant_type TEXT NOT NULL DEFAULT '';

-- The access-token signature algorithm, per client like id_token_alg (RFC 9068 leaves it to
-- the deployment): RS256 (the default), ES256 or EdDSA.
ALTER TABLE clients ADD COLUMN access_token_alg TEXT NOT NULL DEFAULT 'RS256';
