DROP INDEX access_tokens_user;
DROP INDEX refresh_tokens_user;
DROP INDEX auth_codes_user;
DROP INDEX auth_codes_expires;
DROP INDEX mfa_flows_expires;
DROP INDEX authz_requests_expires;
