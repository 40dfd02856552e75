-- 003_rooms: rooms, members, messages, mentions, reactions, pins, and the
-- event outbox.

CREATE TABLE rooms (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('public', 'private', 'dm')),
    name            text NOT NULL,
    topic           text,
    owner_id        bigint REFERENCES users (id),
    managed         boolean NOT NULL DEFAULT false,
    max_members     integer NOT NULL DEFAULT 16 CHECK (max_members >= 0),
    password_hash   text,
    invite_code     text UNIQUE,
    retention_hours integer CHECK (retention_hours > 0),
    archived        boolean NOT NULL DEFAULT false,
    is_default      boolean NOT NULL DEFAULT false,
    dm_key          text UNIQUE,          -- 'low_id:high_id' for a DM
    member_count    integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'dm') = (dm_key IS NOT NULL))
);

-- At most one default room per tenant.
CREATE UNIQUE INDEX rooms_one_default ON rooms (is_default) WHERE is_default;
CREATE INDEX rooms_discover ON rooms (id) WHERE kind = 'public' AND NOT archived;

CREATE TABLE room_members (
    room_id              bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id              bigint NOT NULL REFERENCES users (id),
    joined_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_read_message_id bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);

CREATE INDEX room_members_user ON room_members (user_id);

CREATE TABLE messages (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id       bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    author_id     bigint REFERENCES users (id),
    type          text NOT NULL
                  CHECK (type IN ('text', 'image', 'drawing', 'system', 'visitor')),
    body          text,          -- the searchable text
    data          jsonb,         -- drawing, image, system and visitor content
    reply_to      bigint REFERENCES messages (id) ON DELETE SET NULL,
    client_msg_id text,
    edited_at     timestamptz,
    deleted_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    search        tsvector GENERATED ALWAYS AS
                  (to_tsvector('simple', coalesce(body, ''))) STORED
);

CREATE INDEX messages_room ON messages (room_id, id);
CREATE UNIQUE INDEX messages_client_id ON messages (author_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
CREATE INDEX messages_search ON messages USING gin (search)
    WHERE deleted_at IS NULL;
CREATE INDEX messages_created ON messages (created_at);

CREATE TABLE message_mentions (
    message_id bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users (id),
    room_id    bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    PRIMARY KEY (message_id, user_id)
);

CREATE INDEX message_mentions_user ON message_mentions (user_id, room_id, message_id);

CREATE TABLE reactions (
    message_id bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES users (id),
    emoji      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, emoji, user_id)
);

CREATE TABLE pins (
    message_id bigint PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    room_id    bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    pinned_by  bigint REFERENCES users (id),
    pinned_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX pins_room ON pins (room_id, pinned_at);

-- The transactional outbox (docs/events.md). Written in the same
-- transaction as the change; drained in id order by the relay.
CREATE TABLE events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id    bigint,
    user_id    bigint,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((room_id IS NULL) <> (user_id IS NULL))
);
