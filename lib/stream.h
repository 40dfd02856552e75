/* stream: the tenant's durable event stream in Redis, and what one
 * subscriber may see of it (docs/realtime.md).
 *
 * Shared by roost.fcgi (which serves GET /api/v1/events itself, blocking,
 * when no relay runs) and roost-relay (which parks thousands of
 * subscribers in one event loop). Both read the same stream with the same
 * cursors, so a client may move between them.
 *
 * Layout, per tenant t:
 *   roost:{t}:events      stream; fields t (type), r (room id or ""),
 *                         u (user id or ""), s (origin session or ""),
 *                         d (data, JSON text), o (outbox id), n (ordinal)
 *   roost:{t}:events:n    ordinal counter: entries ever appended
 *   roost:{t}:events:epoch  the stream's epoch: 16 random hex digits,
 *                         set once (by whichever script first finds it
 *                         missing) and changed only when entries were lost
 *   roost:{t}:events:seen sorted set: the outbox ids appended within the
 *                         last STREAM_SEEN_WINDOW ordinals (score: the
 *                         counter when the id was last offered). The
 *                         publish script does not append an id it holds,
 *                         so a drain pass whose stamp was lost (lib/outbox.c)
 *                         appends nothing twice: the stream holds each
 *                         event once, and every reader delivers it once.
 *   roost:{t}:wake        channel: PUBLISHed after every append
 *   roost:{t}:eph         channel: ephemeral events (typing, presence)
 *
 * Cursor (SSE id, long-poll last_event_id): "<epoch>-<ordinal>-<ms>-<seq>".
 * The epoch lives beside the stream, so it survives exactly when the
 * stream does: a Redis restart that kept its data (append-only file) keeps
 * every cursor good, one that lost it (no persistence, FLUSHALL) makes a
 * new epoch and every old cursor a resync. Between those two, a crash may
 * lose the last second of appends and keep the rest, the epoch included;
 * two checks keep that from becoming a silent gap:
 * - a cursor is good only while the entry it names (its stream id, with
 *   its ordinal) is still there, or it is exactly the end of the stream,
 *   or that entry was trimmed and its successor is the first entry;
 *   otherwise it is a resync (a client that saw entries which were then
 *   lost, and whose ordinals new entries would reuse);
 * - every drain pass (lib/outbox.c) tells the publish script where the
 *   last pass left the stream, recorded in PostgreSQL; a stream that has
 *   gone back behind that gets a new epoch before anything is appended,
 *   so clients that had not yet read the lost entries resync too.
 */
#ifndef ROOST_STREAM_H
#define ROOST_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "arena.h"
#include "buf.h"
#include "error.h"
#include "kv.h"

#define STREAM_EPOCH_LEN 16
#define STREAM_CURSOR_MAX 80
/* How many of the last ordinals the window of appended outbox ids
 * covers (docs/realtime.md, "Exactly once"): a lost stamp's rows are
 * offered again by the very next pass, at most a pass (500 rows) plus
 * the rows committed out of id order later; 20 passes of margin, and
 * 1.1 MB of Redis per tenant when full (MEMORY USAGE, Redis 7.0). */
#define STREAM_SEEN_WINDOW 10000
/* Entries read per round trip. */
#define STREAM_READ_BATCH 256

typedef struct stream_cursor {
	char epoch[STREAM_EPOCH_LEN + 1];
	int64_t ordinal; /* entries appended up to and including this one */
	char id[48];     /* Redis stream id "ms-seq"; "0-0" before any */
} stream_cursor;

/* One durable event read from the stream. Strings point into the reply
 * or arena the entry was parsed from. */
typedef struct stream_entry {
	stream_cursor at; /* the cursor that points just past this entry */
	const char *type;
	int64_t room_id;        /* room audience, else 0 */
	int64_t user_id;        /* user audience, else 0 (both 0: tenant) */
	int64_t origin_session; /* session that caused it, else 0 */
	const char *data;       /* JSON text */
	size_t data_len;
} stream_entry;

typedef enum stream_status {
	STREAM_OK,
	STREAM_RESYNC, /* the cursor's history is gone (restart or trim) */
} stream_status;

typedef struct stream_batch {
	stream_status status;
	stream_cursor head; /* where the next read starts */
	stream_entry *v;    /* arena memory */
	size_t n;
	bool more; /* the batch was full: read again from head */
} stream_batch;

/* Parses a client's cursor. false for anything malformed. */
bool stream_cursor_parse(const char *s, stream_cursor *out);
/* Formats c into out (STREAM_CURSOR_MAX bytes). */
void stream_cursor_format(const stream_cursor *c, char *out);

/* The current end of the stream (what a new subscriber starts from, and
 * GET /rooms's event_cursor). Creates nothing. */
rerr stream_head(kv *k, arena *a, const char *tenant, stream_cursor *out);

/* Reads up to max entries after `after`. STREAM_RESYNC when the epoch
 * differs, the cursor points past the end, the entry it names is gone
 * (lost, or trimmed together with its successor), or it claims to be the
 * end but is not. Entries live in arena a. */
rerr stream_read(kv *k, arena *a, const char *tenant,
    const stream_cursor *after, size_t max, stream_batch *out);

/* Parses an XRANGE-shaped reply (array of [id, [field, value...]]) into
 * entries with cursors of epoch; used by stream_read and by anyone holding
 * a raw reply. Entries point into r; returns the number parsed into v
 * (capacity cap). Malformed entries are skipped. */
size_t stream_parse_entries(
    const redisReply *r, const char *epoch, stream_entry *v, size_t cap);

/* Appends events to the stream and wakes the subscribers, in one atomic
 * script. fields: n_events groups of 6 strings (type, room or "", user or
 * "", origin session or "", data JSON, outbox id). maxlen bounds the
 * stream (approximately). An event whose outbox id is in the window
 * (roost:{t}:events:seen) was appended already: it is skipped, takes no
 * ordinal and wakes nobody.
 *
 * expect (may be NULL): where the previous append left the stream (the
 * cursor of its last entry, kept by the caller where a Redis crash cannot
 * take it). If the stream has gone back behind it (fewer entries counted,
 * or that entry gone without having been trimmed), the last appends were
 * lost: the epoch is replaced before anything is appended, so every cursor
 * out there resyncs, and *rotated is set. With n_events 0 only that check
 * runs. *appended (may be NULL) gets the cursor of the last entry
 * appended; when events were given and every one was skipped, the
 * stream's end; unchanged with n_events 0. */
rerr stream_publish(kv *k, arena *a, const char *tenant, long maxlen,
    const stream_cursor *expect, size_t n_events, const char *const *fields,
    stream_cursor *appended, bool *rotated);

/* Ephemeral events: PUBLISH only, never stored. audience_rooms are the
 * rooms whose members may see it (stripped before delivery); audience_user
 * also sees it (0 for none). event is the client-facing JSON object
 * {"type":..., "room_id":..., "data":...} as text. */
rerr stream_publish_ephemeral(kv *k, arena *a, const char *tenant,
    const int64_t *audience_rooms, size_t n_rooms, int64_t audience_user,
    const char *event_json);

/* A parsed ephemeral message from the roost:{t}:eph channel. */
typedef struct stream_ephemeral {
	int64_t *rooms; /* arena */
	size_t n_rooms;
	int64_t user_id;
	const char *json; /* the client-facing event, arena */
	size_t json_len;
} stream_ephemeral;
bool stream_parse_ephemeral(
    arena *a, const char *msg, size_t len, stream_ephemeral *out);

/* One subscriber: who it is, which rooms it may see, where it is. The
 * rooms array is heap memory (the relay keeps subscribers for hours);
 * stream_sub_free releases it. */
#define STREAM_REASON_MAX 32

typedef struct stream_sub {
	int64_t user_id;
	int64_t session_id; /* 0 for API tokens */
	int64_t token_id;   /* the API token's id; 0 for sessions */
	int64_t *rooms;     /* sorted */
	size_t n_rooms, cap_rooms;
	stream_cursor cursor; /* last entry seen (delivered or filtered) */
	bool ended; /* its session was displaced: close after delivering */
	/* Why its session or token ended ("logout", "suspended", ...), or
	 * "" while it lives. Once set, the stream carries nothing more: an
	 * SSE stream gets stream_format_ended and is closed, a long-poll is
	 * answered 401. */
	char end_reason[STREAM_REASON_MAX];
} stream_sub;

void stream_sub_set_rooms(stream_sub *s, const int64_t *rooms, size_t n);
bool stream_sub_in_room(const stream_sub *s, int64_t room_id);
void stream_sub_free(stream_sub *s);

/* Marks s ended for reason (lower-case letters and '_', else "revoked"),
 * when it is not already. */
void stream_sub_end(stream_sub *s, const char *reason);

/* Decides whether e goes to s and advances s's cursor past e. Membership
 * events about s's own user change its rooms first: a member.joined adds
 * the room before the event is judged (so the joiner sees it), a
 * member.left or room.deleted removes it (the leaver gets its own copy of
 * member.left through the user audience). read.updated is not sent back
 * to the session that caused it. Tenant events go to everyone. A
 * session.displaced naming s's session is delivered and sets s->ended:
 * the caller closes the stream after sending it. A session.ended naming
 * s's session or API token (or every stream of its user) returns true
 * and sets s->end_reason: the caller sends stream_format_ended (SSE) or
 * 401 (long-poll) instead of the entry, and nothing after it. Streams
 * it does not name do not see it. */
bool stream_sub_accept(stream_sub *s, const stream_entry *e);

/* Ephemeral events: rooms of s, or s's own user. */
bool stream_sub_accept_ephemeral(
    const stream_sub *s, const stream_ephemeral *e);

/* Client-facing forms. JSON: {"id":cursor,"type":..,"room_id":..,"data":..}
 * (room_id null for user events). SSE: "id: ..\nevent: ..\ndata: <json>\n\n".
 * Ephemeral SSE frames carry no id (they are not resumable). */
void stream_format_json(buf *out, const stream_entry *e);
void stream_format_sse(buf *out, const stream_entry *e);
void stream_format_sse_ephemeral(buf *out, const stream_ephemeral *e);

/* The last SSE frame of a stream whose session ended:
 * "id: ..\nevent: session.ended\ndata: {"id":..,"type":"session.ended",
 * "room_id":null,"data":{"reason":..}}". at is the entry that ended it, or
 * NULL when the periodic check did (no id then). */
void stream_format_ended(buf *out, const stream_cursor *at, const char *reason);

#endif
