-- Indexes for the hourly purge of expired rows (authorization requests, ceremony state, codes)
-- and for the per-user token queries (back-channel logout of a user, consent withdrawal).
-- Without them every purge batch and every such query scans the whole table.
CREATE INDEX authz_requests_expires ON authz_requests (expires_at);
CREATE INDEX mfa_flows_expires ON mfa_flows (expires_at);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);
CREATE INDEX auth_codes_user ON auth_codes (user_id, created_at);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id, client_id);
CREATE INDEX access_tokens_user ON access_tokens (user_id, client_id);
