-- 001_init: accounts and tenant settings.
-- Applied inside the tenant schema (search_path is set by the runner).

CREATE TABLE users (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email                text NOT NULL,
    name                 text NOT NULL,
    display_name         text,
    about                text,
    avatar_url           text,
    password_hash        text,
    role                 text NOT NULL DEFAULT 'member'
                         CHECK (role IN ('admin', 'member')),
    suspended            boolean NOT NULL DEFAULT false,
    must_change_password boolean NOT NULL DEFAULT false,
    deleted_at           timestamptz,
    last_seen_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (email = lower(email))
);

CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_name_prefix ON users (lower(name) text_pattern_ops);

-- Tenant settings: one row per key, JSON values validated by the API.
CREATE TABLE settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
