-- The hourly purge of ended sessions keeps a session while a code or a refresh token still
-- names it (its revocation must hold for them): finding those per session needs this index.
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
