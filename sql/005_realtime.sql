-- 005_realtime: draining the outbox into the event stream (docs/realtime.md).
--
-- The drainer never uses events.id as its cursor: ids are assigned at
-- INSERT, not at COMMIT, so a slow transaction can commit a smaller id
-- after a larger one was drained. It takes every row not yet published,
-- in id order, under the tenant's drain lock, and stamps published_at in
-- the same transaction. The partial index keeps that scan small however
-- long the table grows; `roostctl run-jobs` deletes published rows after
-- a day.
ALTER TABLE events
    ADD COLUMN published_at timestamptz,
    -- The session whose request caused the event (read.updated goes to
    -- the user's other sessions only).
    ADD COLUMN origin_session bigint;

CREATE INDEX events_unpublished ON events (id) WHERE published_at IS NULL;
CREATE INDEX events_published_at ON events (published_at)
    WHERE published_at IS NOT NULL;

-- A third audience: the whole tenant (both ids NULL), for user.updated (a
-- changed name or avatar shows in every room the user ever wrote in).
ALTER TABLE events DROP CONSTRAINT events_check;
ALTER TABLE events ADD CONSTRAINT events_audience
    CHECK (room_id IS NULL OR user_id IS NULL);
