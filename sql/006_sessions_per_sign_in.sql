-- 006_sessions_per_sign_in: each sign-in may be its own session.
--
-- 002 allowed one live session per user and device class. Whether a new
-- sign-in displaces the older session of its class is now the tenant's
-- setting single_session_per_device (off by default, docs/auth.md); when it
-- is on, a login locks the user's row before displacing, so two racing
-- logins still leave one live session of the class.
DROP INDEX sessions_one_live_per_device;
CREATE INDEX sessions_live_per_device
    ON sessions (user_id, device) WHERE revoked_at IS NULL;
