-- 007_stream_state: where the drain left the tenant's Redis stream
-- (docs/realtime.md, "Redis restarts").
--
-- Redis keeps the stream in an append-only file synced every second: a
-- crash can lose the last second of appends while the stream's epoch
-- survives. The drain records here, in the transaction that stamps the
-- rows it appended, the cursor of the last entry it wrote; the next pass
-- hands it to the publish script, which gives the stream a new epoch (and
-- every client a resync) when the stream has gone back behind it. One row.
CREATE TABLE stream_state (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_cursor text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
