DROP TABLE consents;
DROP TABLE refresh_tokens;
DROP TABLE access_tokens;
DROP TABLE auth_codes;
DROP TABLE authz_requests;
DROP TABLE signing_keys;
ALTER TABLE clients DROP COLUMN id_token_alg;
ALTER TABLE clients DROP COLUMN backchannel_logout_uri;
