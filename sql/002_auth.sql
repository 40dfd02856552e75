-- 002_auth: sessions and API tokens.

CREATE TABLE sessions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device         text NOT NULL CHECK (device IN ('desktop', 'mobile')),
    ip             text,
    user_agent     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text CHECK (revoked_reason IN ('logout', 'displaced',
                       'password_changed', 'password_reset', 'suspended',
                       'revoked'))
);

-- One live session per user and device class: a second login displaces
-- the first inside the same transaction, and this index makes a race
-- between two logins fail instead of leaving two.
CREATE UNIQUE INDEX sessions_one_live_per_device
    ON sessions (user_id, device) WHERE revoked_at IS NULL;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   text NOT NULL UNIQUE,   -- SHA-256 of the token, hex
    prefix       text NOT NULL,          -- first characters, for display
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE INDEX api_tokens_user ON api_tokens (user_id) WHERE revoked_at IS NULL;
