ALTER TABLE clients DROP COLUMN access_token_alg;
ALTER TABLE access_tokens DROP COLUMN grant_type;
ALTER TABLE access_tokens DROP COLUMN issued_at;
ALTER TABLE access_tokens ADD COLUMN revoked_at BIGINT;
UPDATE access_tokens SET revoked_at = (
    SELECT r.revoked_at FROM revocations r WHERE r.kind = 'jti' AND r.value = access_tokens.jti
);
CREATE INDEX access_tokens_code ON access_tokens(code_id);
CREATE INDEX access_tokens_family ON access_tokens(family_id);
DROP TABLE revocations;
