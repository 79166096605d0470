DROP INDEX refresh_tokens_session;
