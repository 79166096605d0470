DROP TABLE signins;
DROP TABLE mfa_flows;
DROP TABLE recovery_codes;
DROP TABLE webauthn_credentials;
DROP TABLE totp_credentials;
