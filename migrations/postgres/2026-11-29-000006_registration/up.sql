-- Self-registration (README "E-mail", VIGIL_REGISTRATION): an account created on /register is
-- `unverified` until its address is confirmed, `held` while an administrator reviews it (a
-- burst of registrations from one network); NULL for every other account. Either state keeps
-- it from signing in.
ALTER TABLE users ADD COLUMN registration TEXT;
