/* relay: connections, requests, fan-out and timers of roost-relay
 * (see relay.h and realtime/README.md). */
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <json-c/json.h>

#include "ae.h"
#include "app.h"
#include "buf.h"
#include "http1.h"
#include "log.h"
#include "outbox.h"
#include "outq.h"
#include "presence.h"
#include "redis_epoll.h"
#include "stream.h"
#include "subidx.h"

#define TICK_MS 250
#define DRAIN_MS 250
/* After failed drains (database down): waits doubling from the first to
 * the last, so the first events after a recovery are not held back for
 * long, and a database that stays down is not hammered. */
#define DRAIN_BACKOFF_MIN_MS 100
#define DRAIN_BACKOFF_MAX_MS 5000
#define UNMIGRATED_MS 500   /* looks for the migrated schema this often */
#define SAFETY_WAKE_MS 1000 /* read the stream even without a wake-up */
#define SWEEP_MS 5000
#define ALIVE_MS 1000 /* refresh of roost:{t}:relay:alive (outbox_kick) */
#define ALIVE_TTL_S 5
#define IDLE_MS 120000            /* keep-alive connection without a request */
#define HEAD_MS 30000             /* to finish sending a request head */
#define LINGER_CLOSE_MS 2000      /* reading after our FIN before closing */
#define STOP_GRACE_MS 2000        /* SIGTERM: time to flush before exiting */
#define FLUSH_MAX (1024u * 1024u) /* bytes per connection per wake-up */
#define ACCEPT_PER_EVENT 256
#define ACCEPT_PAUSE_MS 100
#define BATCHES_PER_WAKE 16 /* then serve sockets, and read on */
#define REFRESH_CHUNK 500
#define RECHECK_CHUNK 1000 /* credentials per batch session check */
#define LINGER_SSE_S 5
#define LINGER_LONGPOLL_S 30
#define SUB_BACKOFF_MIN_MS 250
#define SUB_BACKOFF_MAX_MS 5000
#define WARN_EVERY_MS 10000 /* repeated failures are logged this often */

#define EVENTS_PATH "/api/v1/events"
#define HEALTH_PATH "/relay/health"
#define RESYNC_FRAME "event: resync\ndata: {\"code\":\"RESYNC_REQUIRED\"}\n\n"
#define HEARTBEAT_FRAME ": hb\n\n"

typedef struct relay relay;

typedef enum conn_state {
	C_HTTP,   /* reading requests, answering them */
	C_PARKED, /* a long-poll waiting for events */
	C_SSE,    /* an event stream */
} conn_state;

typedef struct conn conn;
struct conn {
	relay *r;
	int fd;
	conn_state state;
	bool closing;           /* marked; freed before the next sleep */
	bool close_after_write; /* no more requests: close once flushed */
	bool lingering;         /* our side shut; draining theirs */
	bool peer_eof;          /* the client closed its side */
	bool on_pending, on_ready, on_resume;
	char peer[INET6_ADDRSTRLEN];
	bool peer_local; /* loopback or unix: a proxy we trust */
	char *in;        /* request bytes, HTTP1_MAX_HEAD; NULL when none */
	size_t in_len;
	outq out;
	int64_t active_ms;   /* last request answered or accepted */
	int64_t head_ms;     /* first byte of the head being read */
	int64_t deadline_ms; /* long-poll expiry; lingering close */

	/* The subscriber (C_PARKED, C_SSE). */
	bool has_sub;
	stream_sub sub;
	bool sub_done; /* resync or ending: no more events */
	bool synced;   /* considered for everything up to the relay head */
	bool presence; /* presence_connect was made for conn_id */
	char conn_id[128];
	/* The request being answered: its id and rate limit, for the answer
	 * the relay writes itself (a held long-poll's, or an error). */
	char request_id[40];
	bool has_rl;
	rl_result rl;
	bool keep_alive; /* for the long-poll's answer */
	int minor;
	buf lp; /* long-poll: collected JSON events, comma-separated */
	size_t lp_n;
	bool lp_resync;
	uint64_t visit;
	uint64_t recheck_gen; /* the last round of session checks it was in */
	subidx_node user_node;
	subidx_node *room_nodes;
	size_t n_room_nodes, cap_room_nodes;

	conn *prev, *next; /* all connections */
	conn *pending_next, *ready_next, *resume_next, *close_next;
};

/* A stream entry formatted once for all its subscribers. */
typedef struct frames {
	buf sse, json;
	outq_frame *sse_frame; /* sse as a frame the queues share; NULL until
	                        * the first SSE subscriber takes the entry */
	bool have_json;
} frames;

struct relay {
	app ap;
	const char *tenant;
	ae_loop *loop;
	int setsize;
	int lfd, sigfd;
	bool listen_unix;
	bool listen_paused;
	int64_t listen_resume_at;
	size_t max_output;
	int heartbeat_ms;
	char host[64];
	unsigned long long conn_seq;

	conn *conns;
	size_t n_conns, n_subs;
	conn *pending, *ready, *resume, *to_close;
	subidx *by_room, *by_user;
	uint64_t visit_gen;
	frames fr;
	http1_request req; /* the request being handled (one at a time) */

	/* The stream. */
	stream_cursor head;
	bool head_ok;
	bool wake;
	bool drain; /* a worker asked for a drain (outbox_kick) */

	/* The subscriber connection (wake and ephemeral channels). */
	const redis_url *rt; /* ROOST_REDIS_URL, borrowed from ap.kv */
	redisAsyncContext *sub;
	bool subscribed; /* all three channels confirmed */
	char *wake_ch, *eph_ch, *drain_ch;
	int sub_backoff_ms;
	int64_t sub_retry_at;
	bool tearing_down;

	/* Timer chores. */
	int64_t next_drain, next_safety, next_hb, next_refresh, next_sweep;
	int64_t next_recheck;  /* the batch session check (backstop) */
	uint64_t recheck_gen;  /* the round; a stream checked in it has it */
	bool rechecking;       /* a round is going on, a batch per tick */
	int64_t drain_backoff; /* ms; 0 after a drain that worked */
	/* The tenant's schema has the outbox (outbox_ready): until then
	 * (a relay started before roostctl migrate) nothing is drained,
	 * and that is said once, not logged as a failure every tick. */
	bool schema_ready;
	bool told_unmigrated;
	int64_t next_alive;
	int64_t warned_stream, warned_sub, warned_accept, warned_recheck;

	/* Constant frames, shared by every stream they are queued on. */
	outq_frame *hb_frame, *resync_frame;

	bool stopping;
	int64_t stop_deadline;

	time_t date_t;
	char date[40];
	char scratch[16384];
};

static void conn_close(conn *c);
static void process_input(conn *c);
static void answer_ready(relay *r);
static void catch_up(relay *r, conn *c);
static void flush_pending(relay *r);

/* ----------------------------------------------------------- helpers */

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		abort();
	return p;
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

static const char *
http_date(relay *r)
{
	time_t t = time(NULL);

	if (t != r->date_t) {
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(
		    r->date, sizeof(r->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		r->date_t = t;
	}
	return r->date;
}

/* A warning that may repeat every tick: at most one per WARN_EVERY_MS. */
static bool
warn_due(int64_t *last)
{
	int64_t now = ae_now_ms();

	if (*last != 0 && now - *last < WARN_EVERY_MS)
		return false;
	*last = now;
	return true;
}

static bool
same_epoch(const stream_cursor *a, const stream_cursor *b)
{
	return strcmp(a->epoch, b->epoch) == 0;
}

/* --------------------------------------------------- connection lists */

static void
want_flush(conn *c)
{
	relay *r = c->r;

	if (c->closing || c->on_pending)
		return;
	c->on_pending = true;
	c->pending_next = r->pending;
	r->pending = c;
}

static void
mark_ready(conn *c)
{
	relay *r = c->r;

	if (c->on_ready)
		return;
	c->on_ready = true;
	c->ready_next = r->ready;
	r->ready = c;
}

static void
mark_resume(conn *c)
{
	relay *r = c->r;

	if (c->on_resume)
		return;
	c->on_resume = true;
	c->resume_next = r->resume;
	r->resume = c;
}

/* After bytes were queued for c. capped: live traffic, which a client
 * that does not read must not pile up (the first answer is exempt: its
 * size is bounded by the handler). The queue is written once per loop
 * turn (before_sleep): a burst of events leaves in one sendmsg. */
static void
queued(conn *c, bool capped)
{
	relay *r = c->r;

	/* Over the cap, first see whether the socket takes it now: the cap
	 * is for what a client leaves unread, not for a burst. */
	if (capped && c->out.pending > r->max_output &&
	    outq_flush(&c->out, c->fd, FLUSH_MAX) < 0) {
		conn_close(c);
		return;
	}
	if (capped && c->out.pending > r->max_output) {
		log_warn("dropping a slow consumer (%s, user %" PRId64
		         "): %zu bytes queued, limit %zu",
		    c->peer, c->has_sub ? c->sub.user_id : 0, c->out.pending,
		    r->max_output);
		conn_close(c);
		return;
	}
	want_flush(c);
}

/* Queues a copy of p[0..n). */
static void
conn_send(conn *c, const void *p, size_t n, bool capped)
{
	if (c->closing || n == 0)
		return;
	outq_append(&c->out, p, n);
	queued(c, capped);
}

/* Queues a shared frame (a broadcast: nothing copied per subscriber). */
static void
conn_send_frame(conn *c, outq_frame *f, bool capped)
{
	if (c->closing)
		return;
	outq_append_frame(&c->out, f);
	queued(c, capped);
}

/* Forgets the formatted frames of the previous entry. */
static void
frames_reset(frames *fr)
{
	fr->have_json = false;
	outq_frame_unref(fr->sse_frame);
	fr->sse_frame = NULL;
}

/* ------------------------------------------------------ the index */

static void
unlink_rooms(relay *r, conn *c)
{
	for (size_t i = 0; i < c->n_room_nodes; i++)
		subidx_unlink(r->by_room, &c->room_nodes[i]);
	c->n_room_nodes = 0;
}

static void
link_rooms(relay *r, conn *c)
{
	/* Nodes are unlinked before the array may move. */
	if (c->sub.n_rooms > c->cap_room_nodes) {
		free(c->room_nodes);
		c->cap_room_nodes = c->sub.n_rooms + 8;
		c->room_nodes =
		    xcalloc(c->cap_room_nodes, sizeof(*c->room_nodes));
	}
	for (size_t i = 0; i < c->sub.n_rooms; i++) {
		c->room_nodes[i] = (subidx_node){ 0 };
		subidx_link(r->by_room, c->sub.rooms[i], &c->room_nodes[i], c);
	}
	c->n_room_nodes = c->sub.n_rooms;
}

static void
index_sub(relay *r, conn *c)
{
	subidx_link(r->by_user, c->sub.user_id, &c->user_node, c);
	link_rooms(r, c);
	r->n_subs++;
}

static void
unindex_sub(relay *r, conn *c)
{
	subidx_unlink(r->by_user, &c->user_node);
	unlink_rooms(r, c);
	r->n_subs--;
}

/* Ends c's subscription: index, presence, memory. */
static void
end_sub(conn *c, int linger_s)
{
	relay *r = c->r;

	if (!c->has_sub)
		return;
	unindex_sub(r, c);
	if (c->presence)
		(void)presence_disconnect(
		    &r->ap, c->sub.user_id, c->conn_id, linger_s);
	c->presence = false;
	stream_sub_free(&c->sub);
	memset(&c->sub, 0, sizeof(c->sub));
	c->has_sub = false;
	c->sub_done = false;
	c->synced = false;
	buf_free(&c->lp);
	c->lp_n = 0;
	c->lp_resync = false;
}

/* ---------------------------------------------------------- responses */

static void
put_status(buf *h, relay *r, int status)
{
	buf_printf(h, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
	    http_reason(status), http_date(r));
}

static void
put_connection(buf *h, bool keep_alive, int minor)
{
	if (!keep_alive)
		buf_puts(h, "Connection: close\r\n");
	else if (minor == 0)
		buf_puts(h, "Connection: keep-alive\r\n");
}

/* The application's response. stream: an SSE head (no Content-Length,
 * the body runs until we close). */
static void
write_app_response(
    conn *c, const http_response *res, bool keep_alive, int minor, bool stream)
{
	buf h = BUF_INIT;
	bool bodyless = res->status == 204 || res->status == 304;

	put_status(&h, c->r, res->status);
	for (size_t i = 0; i < res->n_headers; i++) {
		const char *name = res->headers[i].name;

		/* Framing is ours to say. */
		if (strcasecmp(name, "Connection") == 0 ||
		    strcasecmp(name, "Content-Length") == 0 ||
		    strcasecmp(name, "Transfer-Encoding") == 0 ||
		    strcasecmp(name, "Date") == 0)
			continue;
		buf_printf(&h, "%s: %s\r\n", name, res->headers[i].value);
	}
	if (!stream && !bodyless)
		buf_printf(&h, "Content-Length: %zu\r\n", res->body.len);
	put_connection(&h, keep_alive && !stream, minor);
	buf_puts(&h, "\r\n");
	if (!res->head_only && !bodyless && res->body.len > 0)
		buf_append(&h, res->body.data, res->body.len);
	conn_send(c, h.data, h.len, false);
	buf_free(&h);
	/* A stream ends when the relay ends it, not after its head. */
	if (!keep_alive && !stream)
		c->close_after_write = true;
}

/* A complete JSON answer of the relay's own, with the headers every
 * answer carries (app_answer_headers: request id, cache, nosniff, the
 * request's rate limit). allow: the Allow header's value, or NULL. */
static void
respond_json(conn *c, int status, const char *body, const char *allow,
    bool keep_alive, int minor, bool head_only)
{
	arena *a = arena_new();
	http_response res;

	if (c->request_id[0] == '\0') {
		http_request q = { 0 };

		http_assign_request_id(&q);
		snprintf(
		    c->request_id, sizeof(c->request_id), "%s", q.request_id);
	}
	http_response_init(&res, a);
	res.status = status;
	res.head_only = head_only;
	http_set_header(&res, a, "Content-Type", "application/json");
	if (allow != NULL)
		http_set_header(&res, a, "Allow", allow);
	app_answer_headers(&c->r->ap.cfg, &res, a, c->request_id, false,
	    c->has_rl ? &c->rl : NULL);
	buf_puts(&res.body, body);
	write_app_response(c, &res, keep_alive, minor, false);
	http_response_free(&res);
	arena_free(a);
	/* Said once: the next answer on this connection is another's. */
	c->request_id[0] = '\0';
	c->has_rl = false;
}

/* An error answer; code and message are static and JSON-safe. */
static void
respond_error(conn *c, int status, const char *code, const char *message,
    const char *allow, bool keep_alive, int minor, bool head_only)
{
	char body[512];

	snprintf(body, sizeof(body),
	    "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
	respond_json(c, status, body, allow, keep_alive, minor, head_only);
}

/* The long-poll answer body: {"events":[...],"last_event_id":"..."}. */
static void
longpoll_body(buf *out, const char *events, size_t n, const stream_cursor *at)
{
	char cur[STREAM_CURSOR_MAX];

	stream_cursor_format(at, cur);
	buf_puts(out, "{\"events\":[");
	buf_append(out, events, n);
	buf_printf(out, "],\"last_event_id\":\"%s\"}", cur);
}

/* Where a long-poll's client continues: the relay's head when this
 * subscriber was offered every entry up to it (the entries it did not get
 * were not for it), else its own cursor. */
static const stream_cursor *
answer_cursor(const relay *r, const conn *c)
{
	if (c->synced && r->head_ok && same_epoch(&r->head, &c->sub.cursor) &&
	    r->head.ordinal > c->sub.cursor.ordinal)
		return &r->head;
	return &c->sub.cursor;
}

/* Answers a parked long-poll with what it collected (maybe nothing), or
 * 410 after a resync, and returns the connection to reading requests. */
static void
answer_longpoll(conn *c)
{
	relay *r = c->r;
	bool keep = c->keep_alive && !r->stopping && !c->sub.ended &&
	    c->sub.end_reason[0] == '\0';
	buf body = BUF_INIT;

	if (c->sub.end_reason[0] != '\0') {
		/* What a new request with its credential would get now. */
		respond_error(c, 401, "UNAUTHORIZED",
		    "this session has ended; sign in again", NULL, keep,
		    c->minor, false);
	} else if (c->lp_resync) {
		respond_error(c, 410, "RESYNC_REQUIRED",
		    "events after this cursor are no longer available: reload "
		    "state (GET /api/v1/rooms) and continue from its "
		    "event_cursor",
		    NULL, keep, c->minor, false);
	} else {
		longpoll_body(&body, c->lp.data ? c->lp.data : "", c->lp.len,
		    answer_cursor(r, c));
		respond_json(c, 200, body.data, NULL, keep, c->minor, false);
		buf_free(&body);
	}
	log_debug("long-poll answered (%s, user %" PRId64 ", %zu events)",
	    c->peer, c->sub.user_id, c->lp_n);
	end_sub(c, LINGER_LONGPOLL_S);
	c->state = C_HTTP;
	c->active_ms = ae_now_ms();
	if (keep && c->in_len > 0)
		mark_resume(c); /* a pipelined request waits */
}

static void
answer_ready(relay *r)
{
	while (r->ready != NULL) {
		conn *c = r->ready;

		r->ready = c->ready_next;
		c->on_ready = false;
		if (!c->closing && c->state == C_PARKED)
			answer_longpoll(c);
	}
}

/* ------------------------------------------------------------ delivery */

/* The subscriber's history is gone: SSE gets a resync event and is closed
 * once it is flushed, a long-poll is answered 410. */
static void
resync_conn(conn *c)
{
	if (c->sub_done || c->closing)
		return;
	c->sub_done = true;
	if (c->state == C_SSE) {
		conn_send_frame(c, c->r->resync_frame, false);
		c->close_after_write = true;
		want_flush(c);
	} else {
		c->lp_resync = true;
		mark_ready(c);
	}
}

/* c's session or token ended (c->sub.end_reason): an SSE stream gets
 * its last frame, session.ended (with the id of the entry that said so,
 * when one did), and is closed once it is flushed; a held long-poll is
 * answered 401. Nothing else is sent to it. */
static void
end_session(conn *c, const stream_cursor *at)
{
	buf f = BUF_INIT;

	if (c->sub_done || c->closing)
		return;
	c->sub_done = true;
	log_info("stream of user %" PRId64 " ended: session %s (%s)",
	    c->sub.user_id, c->sub.end_reason, c->peer);
	if (c->state == C_SSE) {
		stream_format_ended(&f, at, c->sub.end_reason);
		conn_send(c, f.data, f.len, false);
		buf_free(&f);
		c->close_after_write = true;
		want_flush(c);
	} else {
		c->keep_alive = false;
		mark_ready(c);
	}
}

/* Offers entry e to subscriber c. */
static void
consider(conn *c, const stream_entry *e, frames *fr)
{
	relay *r = c->r;
	size_t before;
	bool yes;

	if (c->closing || !c->has_sub || c->sub_done)
		return;
	if (!same_epoch(&e->at, &c->sub.cursor)) {
		resync_conn(c);
		return;
	}
	if (e->at.ordinal <= c->sub.cursor.ordinal)
		return; /* it had this one from its backlog */
	before = c->sub.n_rooms;
	yes = stream_sub_accept(&c->sub, e);
	/* Membership events about its own user change its rooms. */
	if (c->sub.n_rooms != before) {
		unlink_rooms(r, c);
		link_rooms(r, c);
	}
	if (c->sub.end_reason[0] != '\0') {
		end_session(c, &e->at);
		return;
	}
	if (yes && c->state == C_SSE) {
		if (fr->sse_frame == NULL) {
			buf_reset(&fr->sse);
			stream_format_sse(&fr->sse, e);
			fr->sse_frame =
			    outq_frame_new(fr->sse.data, fr->sse.len);
		}
		conn_send_frame(c, fr->sse_frame, true);
	} else if (yes) {
		if (!fr->have_json) {
			buf_reset(&fr->json);
			stream_format_json(&fr->json, e);
			fr->have_json = true;
		}
		if (fr->json.len > 0) {
			if (c->lp_n++ > 0)
				buf_putc(&c->lp, ',');
			buf_append(&c->lp, fr->json.data, fr->json.len);
			mark_ready(c);
		}
	}
	if (c->sub.ended && !c->closing) {
		/* Its session was displaced: it got the event; no more. */
		c->sub_done = true;
		if (c->state == C_SSE) {
			c->close_after_write = true;
			want_flush(c);
		} else {
			c->keep_alive = false;
			mark_ready(c);
		}
	}
}

static void
visit_list(
    subidx *ix, int64_t key, const stream_entry *e, frames *fr, uint64_t gen)
{
	subidx_node *n, *next;

	for (n = subidx_first(ix, key); n != NULL; n = next) {
		conn *c = n->owner;

		/* consider() may unlink c's own nodes, never another's. */
		next = n->next;
		if (c->visit == gen)
			continue;
		c->visit = gen;
		consider(c, e, fr);
	}
}

/* A member.joined reaches the joiners, and a room.created its first
 * members, who are not in the room's list yet: visit the subscribers of
 * the users it names (data[key]) too. */
static void
visit_joiners(
    relay *r, const stream_entry *e, const char *key, frames *fr, uint64_t gen)
{
	json_tokener *tok = json_tokener_new();
	json_object *o, *ids;

	o = json_tokener_parse_ex(tok, e->data, (int)e->data_len);
	json_tokener_free(tok);
	if (o != NULL && json_object_object_get_ex(o, key, &ids) &&
	    json_object_is_type(ids, json_type_array)) {
		size_t n = json_object_array_length(ids);

		for (size_t i = 0; i < n; i++) {
			json_object *v = json_object_array_get_idx(ids, i);

			if (json_object_is_type(v, json_type_int))
				visit_list(r->by_user, json_object_get_int64(v),
				    e, fr, gen);
		}
	}
	json_object_put(o);
}

static void
deliver_entry(relay *r, const stream_entry *e)
{
	uint64_t gen = ++r->visit_gen;
	frames *fr = &r->fr;

	frames_reset(fr);
	if (e->room_id == 0 && e->user_id == 0) {
		/* For the whole tenant. */
		for (conn *c = r->conns; c != NULL; c = c->next)
			if (c->has_sub) {
				c->visit = gen;
				consider(c, e, fr);
			}
	} else if (e->room_id != 0) {
		visit_list(r->by_room, e->room_id, e, fr, gen);
		if (strcmp(e->type, "member.joined") == 0)
			visit_joiners(r, e, "user_ids", fr, gen);
		else if (strcmp(e->type, "room.created") == 0)
			visit_joiners(r, e, "member_ids", fr, gen);
	} else {
		visit_list(r->by_user, e->user_id, e, fr, gen);
	}
}

/* The relay's own cursor is no good any more (a new epoch: Redis lost
 * its data; the entry it names is gone: lost in a crash, or the relay fell
 * further behind than the stream keeps). The relay starts again from the
 * end, and each subscriber is judged by its own cursor: one whose entry is
 * still there catches up from it, every other one resyncs. A Redis
 * restart that kept the stream never comes here: the head stays good. */
static void
resync_all(relay *r)
{
	rerr e;
	int n = 0;

	for (conn *c = r->conns; c != NULL; c = c->next)
		c->synced = false;
	e = stream_head(r->ap.kv, r->ap.arena, r->tenant, &r->head);
	arena_reset(r->ap.arena);
	r->head_ok = e == R_SUCCESS;
	if (!r->head_ok)
		return; /* ensure_head catches everyone up later */
	for (conn *c = r->conns; c != NULL; c = c->next) {
		if (!c->has_sub || c->sub_done || c->closing)
			continue;
		/* The head was read just now: another epoch is gone for
		 * good, no read needed to tell. */
		if (!same_epoch(&c->sub.cursor, &r->head))
			resync_conn(c);
		else
			catch_up(r, c);
		if (c->sub_done)
			n++;
		else if (!c->synced)
			r->head_ok = false; /* a read failed (Redis went) */
	}
	if (!r->head_ok) {
		/* ensure_head takes the end again and catches every
		 * subscriber up from its own cursor. */
		for (conn *c = r->conns; c != NULL; c = c->next)
			c->synced = false;
	}
	answer_ready(r);
	log_warn("the event stream's end moved back (a new epoch, entries "
	         "lost or trimmed): %d subscriber(s) told to resync",
	    n);
}

/* Takes the stream's end as the relay's head when it has none (Redis was
 * down at start), then brings the subscribers up to it. */
static bool
ensure_head(relay *r)
{
	rerr e;

	if (r->head_ok)
		return true;
	e = stream_head(r->ap.kv, r->ap.arena, r->tenant, &r->head);
	arena_reset(r->ap.arena);
	if (e != R_SUCCESS) {
		if (warn_due(&r->warned_stream))
			log_warn("the event stream is unavailable (Redis)");
		return false;
	}
	r->head_ok = true;
	for (conn *c = r->conns; c != NULL; c = c->next)
		if (c->has_sub && !c->synced)
			catch_up(r, c);
	answer_ready(r);
	return true;
}

/* Reads the stream from the relay's head and fans the entries out. */
static void
process_stream(relay *r)
{
	r->wake = false;
	if (!ensure_head(r))
		return;
	for (int i = 0; i < BATCHES_PER_WAKE; i++) {
		stream_batch b;
		rerr e = stream_read(r->ap.kv, r->ap.arena, r->tenant, &r->head,
		    STREAM_READ_BATCH, &b);

		if (e != R_SUCCESS) {
			arena_reset(r->ap.arena);
			if (warn_due(&r->warned_stream))
				log_warn(
				    "cannot read the event stream (Redis)");
			return;
		}
		if (b.status == STREAM_RESYNC) {
			arena_reset(r->ap.arena);
			resync_all(r);
			return;
		}
		for (size_t k = 0; k < b.n; k++)
			deliver_entry(r, &b.v[k]);
		r->head = b.head;
		answer_ready(r);
		arena_reset(r->ap.arena);
		/* Out to the sockets before the next batch piles on. */
		flush_pending(r);
		if (!b.more)
			return;
	}
	/* A long backlog: let the sockets drain, then read on. */
	r->wake = true;
}

/* Brings a new subscriber from its cursor up to the relay's head, so that
 * from here on fan-out alone keeps it current. */
static void
catch_up(relay *r, conn *c)
{
	if (!r->head_ok)
		return; /* ensure_head catches everyone up later */
	while (!c->closing && !c->sub_done) {
		stream_batch b;
		rerr e;

		/* Exactly at the relay's head: fan-out does the rest. Any
		 * other cursor, even one past it (from another relay that
		 * read further), is checked by a read of its own. */
		if (same_epoch(&c->sub.cursor, &r->head) &&
		    c->sub.cursor.ordinal == r->head.ordinal &&
		    strcmp(c->sub.cursor.id, r->head.id) == 0) {
			c->synced = true;
			return;
		}
		e = stream_read(r->ap.kv, r->ap.arena, r->tenant,
		    &c->sub.cursor, STREAM_READ_BATCH, &b);
		if (e != R_SUCCESS) {
			arena_reset(r->ap.arena);
			return;
		}
		if (b.status == STREAM_RESYNC) {
			arena_reset(r->ap.arena);
			resync_conn(c);
			return;
		}
		for (size_t k = 0; k < b.n; k++) {
			frames_reset(&r->fr);
			consider(c, &b.v[k], &r->fr);
		}
		/* Past entries it could not parse, too. */
		if (same_epoch(&b.head, &c->sub.cursor) &&
		    b.head.ordinal > c->sub.cursor.ordinal)
			c->sub.cursor = b.head;
		arena_reset(r->ap.arena);
		if (!b.more) {
			/* At the end of the stream: past the relay's head. */
			c->synced = true;
			return;
		}
	}
}

/* ----------------------------------------------------------- ephemeral */

static void
visit_ephemeral(conn *c, const stream_ephemeral *ev, frames *fr, uint64_t gen)
{
	if (c->visit == gen)
		return;
	c->visit = gen;
	if (c->closing || !c->has_sub || c->sub_done ||
	    !stream_sub_accept_ephemeral(&c->sub, ev))
		return;
	if (c->state == C_SSE) {
		if (fr->sse_frame == NULL) {
			buf_reset(&fr->sse);
			stream_format_sse_ephemeral(&fr->sse, ev);
			fr->sse_frame =
			    outq_frame_new(fr->sse.data, fr->sse.len);
		}
		conn_send_frame(c, fr->sse_frame, true);
	} else {
		if (c->lp_n++ > 0)
			buf_putc(&c->lp, ',');
		buf_append(&c->lp, ev->json, ev->json_len);
		mark_ready(c);
	}
}

static void
on_ephemeral(relay *r, const char *msg, size_t len)
{
	stream_ephemeral ev;
	uint64_t gen = ++r->visit_gen;

	frames_reset(&r->fr);
	if (!stream_parse_ephemeral(r->ap.arena, msg, len, &ev)) {
		arena_reset(r->ap.arena);
		return;
	}
	for (size_t i = 0; i < ev.n_rooms; i++)
		for (subidx_node *n = subidx_first(r->by_room, ev.rooms[i]);
		     n != NULL; n = n->next)
			visit_ephemeral(n->owner, &ev, &r->fr, gen);
	if (ev.user_id != 0)
		for (subidx_node *n = subidx_first(r->by_user, ev.user_id);
		     n != NULL; n = n->next)
			visit_ephemeral(n->owner, &ev, &r->fr, gen);
	answer_ready(r);
	arena_reset(r->ap.arena);
}

/* ------------------------------------------- Redis subscriber connection */

static void sub_connect(relay *r);
static void recheck_soon(relay *r);

static void
sub_retry_later(relay *r)
{
	r->sub = NULL;
	r->subscribed = false;
	if (r->tearing_down)
		return;
	r->sub_retry_at = ae_now_ms() + r->sub_backoff_ms;
	r->sub_backoff_ms = r->sub_backoff_ms * 2 > SUB_BACKOFF_MAX_MS
	    ? SUB_BACKOFF_MAX_MS
	    : r->sub_backoff_ms * 2;
}

static void
on_sub_connect(const redisAsyncContext *ac, int status)
{
	relay *r = ac->data;

	if (status == REDIS_OK)
		return;
	/* hiredis frees the context after this returns. */
	if (warn_due(&r->warned_sub))
		log_warn("cannot connect the Redis subscriber: %s",
		    ac->errstr ? ac->errstr : "error");
	sub_retry_later(r);
}

static void
on_sub_disconnect(const redisAsyncContext *ac, int status)
{
	relay *r = ac->data;

	if (!r->tearing_down)
		log_warn("the Redis subscriber disconnected%s%s; reconnecting",
		    status == REDIS_OK ? "" : ": ",
		    status == REDIS_OK ? "" : (ac->errstr ? ac->errstr : "?"));
	sub_retry_later(r);
}

static void
on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
	relay *r = priv;
	redisReply *m = reply;
	char where[160];

	(void)ac;
	if (m != NULL && m->type == REDIS_REPLY_ERROR)
		log_error("the Redis subscriber's authentication failed (%s) "
		          "at %s; check the user and password in "
		          "ROOST_REDIS_URL",
		    m->str, redis_url_where(r->rt, where, sizeof(where)));
}

static void
on_pubsub(redisAsyncContext *ac, void *reply, void *priv)
{
	relay *r = priv;
	redisReply *m = reply;
	const redisReply *kind;

	(void)ac;
	if (m == NULL)
		return; /* the connection is going */
	if (m->type == REDIS_REPLY_ERROR) {
		log_error("Redis SUBSCRIBE failed: %s", m->str);
		return;
	}
	if (m->type != REDIS_REPLY_ARRAY || m->elements < 3 ||
	    (kind = m->element[0])->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(kind->str, "message") == 0 &&
	    m->element[1]->type == REDIS_REPLY_STRING &&
	    m->element[2]->type == REDIS_REPLY_STRING) {
		if (strcmp(m->element[1]->str, r->eph_ch) == 0)
			on_ephemeral(r, m->element[2]->str, m->element[2]->len);
		else if (strcmp(m->element[1]->str, r->drain_ch) == 0)
			r->drain = true;
		else
			r->wake = true;
	} else if (strcmp(kind->str, "subscribe") == 0 &&
	    m->element[2]->type == REDIS_REPLY_INTEGER &&
	    m->element[2]->integer == 3) {
		log_info("subscribed to %s, %s and %s", r->wake_ch, r->eph_ch,
		    r->drain_ch);
		r->sub_backoff_ms = SUB_BACKOFF_MIN_MS;
		r->subscribed = true;
		/* Workers may now leave their drains to us (on the next
		 * tick), and anything published or committed while we were
		 * away is to be read and drained. */
		r->next_alive = 0;
		r->drain = true;
		r->wake = true;
		/* A session.ended published while we were away is read from
		 * the stream; one that never reached it (Redis lost it) is
		 * caught by checking every stream's session now. */
		recheck_soon(r);
	}
}

static void
sub_connect(relay *r)
{
	redisAsyncContext *ac;
	const char *argv[4];

	ac = r->rt->path ? redisAsyncConnectUnix(r->rt->path)
	                 : redisAsyncConnect(r->rt->host, r->rt->port);
	if (ac == NULL || ac->err) {
		if (warn_due(&r->warned_sub))
			log_warn("cannot connect the Redis subscriber: %s",
			    ac ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		sub_retry_later(r);
		return;
	}
	ac->data = r;
	if (redis_epoll_attach(r->loop, ac) != 0) {
		log_error("cannot watch the Redis subscriber socket");
		redisAsyncFree(ac);
		sub_retry_later(r);
		return;
	}
	r->sub = ac;
	redisAsyncSetConnectCallback(ac, on_sub_connect);
	redisAsyncSetDisconnectCallback(ac, on_sub_disconnect);
	if (r->rt->password != NULL) {
		/* As lib/kv.c: AUTH USER PASSWORD for an ACL user. The
		 * database number does not matter to pub/sub. */
		int n = 0;

		argv[n++] = "AUTH";
		if (r->rt->user != NULL)
			argv[n++] = r->rt->user;
		argv[n++] = r->rt->password;
		redisAsyncCommandArgv(ac, on_auth, r, n, argv, NULL);
	}
	/* Subscribed once, for the life of the connection; nothing else is
	 * ever sent on it (PITFALLS.md). */
	argv[0] = "SUBSCRIBE";
	argv[1] = r->wake_ch;
	argv[2] = r->eph_ch;
	argv[3] = r->drain_ch;
	redisAsyncCommandArgv(ac, on_pubsub, r, 4, argv, NULL);
}

/* --------------------------------------------------------- subscribers */

/* Takes over the subscriber the events handler handed off. */
static void
start_sub(conn *c, stream_handoff *ho, const http1_request *q)
{
	relay *r = c->r;
	int64_t now = ae_now_ms();

	c->has_sub = true;
	c->sub = ho->sub;
	memset(&ho->sub, 0, sizeof(ho->sub));
	c->sub_done = false;
	c->synced = false;
	c->keep_alive = q->keep_alive;
	c->minor = q->minor;
	c->lp_n = 0;
	c->state = ho->sse ? C_SSE : C_PARKED;
	if (!ho->sse)
		c->deadline_ms = now +
		    (int64_t)(ho->timeout_s > 0 ? ho->timeout_s : 25) * 1000;
	snprintf(c->conn_id, sizeof(c->conn_id), "relay:%s:%ld:%llu", r->host,
	    (long)getpid(), ++r->conn_seq);
	index_sub(r, c);
	(void)presence_connect(&r->ap, c->sub.user_id, c->conn_id);
	c->presence = true;
	catch_up(r, c);
	answer_ready(r);
}

/* ------------------------------------------------------------ requests */

static ssize_t
read_none(void *ctx, char *dst, size_t n)
{
	(void)ctx;
	(void)dst;
	(void)n;
	return 0;
}

static bool
valid_ip(const char *s)
{
	unsigned char tmp[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, tmp) == 1 ||
	    inet_pton(AF_INET6, s, tmp) == 1;
}

/* REMOTE_ADDR: the peer, or behind a local proxy the last address of the
 * last X-Forwarded-For (the one the proxy added). */
static const char *
client_addr(const conn *c, const http1_request *q, char *out, size_t outlen)
{
	const http1_str *xff = NULL;

	if (!c->peer_local)
		return c->peer;
	for (size_t i = 0; i < q->n_headers; i++)
		if (q->headers[i].name.n == 15 &&
		    strncasecmp(q->headers[i].name.p, "x-forwarded-for", 15) ==
		        0)
			xff = &q->headers[i].value;
	if (xff != NULL) {
		const char *s = xff->p + xff->n, *e = s;

		while (s > xff->p && s[-1] != ',')
			s--;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) < outlen) {
			memcpy(out, s, (size_t)(e - s));
			out[e - s] = '\0';
			if (valid_ip(out))
				return out;
		}
	}
	return c->peer;
}

static bool
same_name(http1_str a, http1_str b)
{
	return a.n == b.n && strncasecmp(a.p, b.p, a.n) == 0;
}

/* The CGI environment app_handle reads, in the app's arena. */
static char **
build_env(conn *c, const http1_request *q, arena *a)
{
	char **env = arena_calloc(a, q->n_headers + 12, sizeof(*env));
	const http1_str *proto;
	char addr[INET6_ADDRSTRLEN + 8];
	size_t n = 0;

	env[n++] = arena_printf(
	    a, "REQUEST_METHOD=%.*s", (int)q->method.n, q->method.p);
	env[n++] =
	    arena_printf(a, "REQUEST_URI=%.*s", (int)q->target.n, q->target.p);
	env[n++] =
	    arena_printf(a, "QUERY_STRING=%.*s", (int)q->query.n, q->query.p);
	env[n++] = arena_printf(a, "SERVER_PROTOCOL=HTTP/1.%d", q->minor);
	env[n++] = arena_printf(
	    a, "REMOTE_ADDR=%s", client_addr(c, q, addr, sizeof(addr)));
	env[n++] = "CONTENT_LENGTH=0";
	env[n++] = "GATEWAY_INTERFACE=CGI/1.1";
	if (c->peer_local &&
	    (proto = http1_header_get(q, "x-forwarded-proto")) != NULL &&
	    proto->n == 5 && strncasecmp(proto->p, "https", 5) == 0)
		env[n++] = "HTTPS=on";
	for (size_t i = 0; i < q->n_headers; i++) {
		http1_str name = q->headers[i].name;
		bool seen = false, cookie;
		buf v = BUF_INIT;
		char *var;

		/* "X_Foo" would pose as "X-Foo"; Proxy is httpoxy; the
		 * framing headers are CGI variables of their own. */
		if (memchr(name.p, '_', name.n) != NULL ||
		    same_name(name, (http1_str){ "proxy", 5 }) ||
		    same_name(name, (http1_str){ "content-length", 14 }) ||
		    same_name(name, (http1_str){ "content-type", 12 }))
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = same_name(q->headers[k].name, name);
		if (seen)
			continue;
		/* Repeated fields become one, as CGI servers do. */
		cookie = same_name(name, (http1_str){ "cookie", 6 });
		for (size_t k = i; k < q->n_headers; k++) {
			if (!same_name(q->headers[k].name, name))
				continue;
			if (v.len > 0)
				buf_puts(&v, cookie ? "; " : ", ");
			buf_append(
			    &v, q->headers[k].value.p, q->headers[k].value.n);
		}
		var = arena_printf(a, "HTTP_%.*s=%s", (int)name.n, name.p,
		    v.data ? v.data : "");
		buf_free(&v);
		for (char *p = var + 5; *p != '='; p++)
			*p = *p == '-'
			    ? '_'
			    : (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A'
			                                      : *p);
		env[n++] = var;
	}
	env[n] = NULL;
	return env;
}

static const char *
response_header(const http_response *res, const char *name)
{
	for (size_t i = 0; i < res->n_headers; i++)
		if (strcasecmp(res->headers[i].name, name) == 0)
			return res->headers[i].value;
	return NULL;
}

/* GET /api/v1/events through the application's pipeline. */
/* The request's id and rate limit, for the answer written later. */
static void
take_request(conn *c, const http_response *res, const stream_handoff *ho)
{
	const char *rid = response_header(res, "X-Request-Id");

	snprintf(c->request_id, sizeof(c->request_id), "%s", rid ? rid : "");
	c->has_rl = ho->has_rl;
	c->rl = ho->rl;
}

static void
serve_events(conn *c, const http1_request *q)
{
	relay *r = c->r;
	app *ap = &r->ap;
	http_response res;
	stream_handoff ho;
	bool take = false;
	char **env = build_env(c, q, ap->arena);

	http_response_init(&res, ap->arena);
	app_handle(ap, env, read_none, NULL, &res);
	ho = ap->handoff;
	memset(&ap->handoff, 0, sizeof(ap->handoff));
	if (!ho.active) {
		write_app_response(c, &res, q->keep_alive, q->minor, false);
	} else if (ho.sse) {
		write_app_response(c, &res, false, q->minor, true);
		take = !res.head_only;
		if (!take)
			c->close_after_write = true;
	} else if (res.head_only) {
		/* HEAD of a long-poll: the head of an empty answer. */
		buf body = BUF_INIT;

		take_request(c, &res, &ho);
		longpoll_body(&body, "", 0, &ho.sub.cursor);
		respond_json(
		    c, 200, body.data, NULL, q->keep_alive, q->minor, true);
		buf_free(&body);
	} else {
		take_request(c, &res, &ho);
		take = true;
	}
	/* Resets the arena: nothing above may be used after this. */
	app_request_done(ap, &res);
	if (take)
		start_sub(c, &ho, q);
	else
		stream_sub_free(&ho.sub);
}

static void
handle_request(conn *c, const http1_request *q)
{
	relay *r = c->r;
	const char *bp = r->ap.cfg.base_path ? r->ap.cfg.base_path : "";
	size_t bl = strlen(bp);
	http1_str path = q->path;
	bool get = http1_eq(q->method, "GET"),
	     head = http1_eq(q->method, "HEAD");
	bool keep = q->keep_alive;

	c->active_ms = ae_now_ms();
	if (bl > 0 && path.n >= bl && memcmp(path.p, bp, bl) == 0 &&
	    (path.n == bl || path.p[bl] == '/')) {
		path.p += bl;
		path.n -= bl;
	}
	if (q->has_body) {
		/* Nothing here takes a body; not reading it means closing. */
		respond_error(c, q->chunked ? 400 : 413,
		    q->chunked ? "BAD_REQUEST" : "PAYLOAD_TOO_LARGE",
		    "this endpoint takes no request body", NULL, false,
		    q->minor, head);
		return;
	}
	if (http1_eq(path, HEALTH_PATH)) {
		char body[96];

		if (!get && !head) {
			respond_error(c, 405, "METHOD_NOT_ALLOWED",
			    "use GET or HEAD", "GET, HEAD", keep, q->minor,
			    false);
			return;
		}
		snprintf(body, sizeof(body),
		    "{\"status\":\"ok\",\"connections\":%zu}", r->n_conns);
		respond_json(c, 200, body, NULL, keep, q->minor, head);
		return;
	}
	if (!http1_eq(path, EVENTS_PATH)) {
		respond_error(c, 404, "NOT_FOUND",
		    "no such endpoint on the relay", NULL, keep, q->minor,
		    head);
		return;
	}
	if (!get && !head) {
		respond_error(c, 405, "METHOD_NOT_ALLOWED",
		    "the event stream is read with GET", "GET, HEAD", keep,
		    q->minor, false);
		return;
	}
	serve_events(c, q);
}

static void
process_input(conn *c)
{
	relay *r = c->r;

	while (!c->closing && c->state == C_HTTP && !c->close_after_write &&
	    c->in_len > 0) {
		http1_request *q = &r->req;
		const char *why;
		int status;
		http1_status st =
		    http1_parse(c->in, c->in_len, q, &status, &why);

		if (st == HTTP1_INCOMPLETE)
			break;
		if (st == HTTP1_ERROR) {
			log_debug("bad request from %s: %s", c->peer, why);
			respond_error(c, status,
			    status == 431       ? "HEADERS_TOO_LARGE"
			        : status == 505 ? "HTTP_VERSION_NOT_SUPPORTED"
			                        : "BAD_REQUEST",
			    why, NULL, false, 1, false);
			c->in_len = 0;
			break;
		}
		handle_request(c, q);
		/* The request pointed into c->in: consume it only now. */
		memmove(c->in, c->in + q->head_len, c->in_len - q->head_len);
		c->in_len -= q->head_len;
		c->head_ms = ae_now_ms();
	}
	if (c->in != NULL && c->in_len == 0) {
		free(c->in);
		c->in = NULL;
	}
}

/* -------------------------------------------------------- connections */

static void on_readable(ae_loop *l, int fd, void *data, int mask);
static void on_writable(ae_loop *l, int fd, void *data, int mask);

static void
conn_close(conn *c)
{
	relay *r = c->r;

	if (c->closing)
		return;
	c->closing = true;
	c->close_next = r->to_close;
	r->to_close = c;
}

/* Frees a closed connection; only from the before-sleep hook (or at
 * exit), when nothing can hold it. */
static void
conn_free(conn *c)
{
	relay *r = c->r;

	end_sub(c, LINGER_SSE_S);
	ae_del(r->loop, c->fd, AE_READABLE | AE_WRITABLE);
	close(c->fd);
	outq_clear(&c->out);
	free(c->in);
	buf_free(&c->lp);
	free(c->room_nodes);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	r->n_conns--;
	free(c);
}

/* All queued bytes are out and the connection is to end: shut our side
 * and read theirs until they close (closing with unread input would send
 * a reset that can destroy the answer in flight). */
static void
finish(conn *c)
{
	if (c->peer_eof) {
		conn_close(c);
		return;
	}
	if (c->lingering)
		return;
	shutdown(c->fd, SHUT_WR);
	c->lingering = true;
	c->deadline_ms = ae_now_ms() + LINGER_CLOSE_MS;
	(void)ae_add(c->r->loop, c->fd, AE_READABLE, on_readable, c);
}

static void
flush_conn(conn *c)
{
	relay *r = c->r;
	int rc;

	if (c->closing)
		return;
	rc = outq_flush(&c->out, c->fd, FLUSH_MAX);
	if (rc < 0) {
		log_debug("write to %s failed: %s", c->peer, strerror(errno));
		conn_close(c);
		return;
	}
	if (rc == 1) {
		if (!(ae_mask(r->loop, c->fd) & AE_WRITABLE) &&
		    ae_add(r->loop, c->fd, AE_WRITABLE, on_writable, c) != 0)
			conn_close(c);
		return;
	}
	ae_del(r->loop, c->fd, AE_WRITABLE);
	if (c->close_after_write)
		finish(c);
}

static void
on_writable(ae_loop *l, int fd, void *data, int mask)
{
	(void)l;
	(void)fd;
	(void)mask;
	flush_conn(data);
}

/* Reads and drops input (streams, lingering closes). false at EOF. */
static bool
discard_input(conn *c)
{
	for (;;) {
		ssize_t n =
		    recv(c->fd, c->r->scratch, sizeof(c->r->scratch), 0);

		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

static void
on_readable(ae_loop *l, int fd, void *data, int mask)
{
	conn *c = data;

	(void)l;
	(void)mask;
	if (c->closing)
		return;
	if (c->lingering || c->state == C_SSE || c->close_after_write) {
		if (discard_input(c))
			return;
		c->peer_eof = true;
		if (c->state == C_HTTP && !c->lingering && c->out.pending > 0) {
			/* Half-closed: the answer still goes out. */
			ae_del(c->r->loop, fd, AE_READABLE);
			return;
		}
		conn_close(c);
		return;
	}
	for (;;) {
		ssize_t n;

		if (c->in == NULL) {
			c->in = malloc(HTTP1_MAX_HEAD);
			if (c->in == NULL)
				abort();
		}
		if (c->in_len == HTTP1_MAX_HEAD) {
			if (c->state == C_PARKED) {
				/* Requests pile up behind a waiting one. */
				conn_close(c);
				return;
			}
			break; /* the parser answers 431 */
		}
		n = recv(fd, c->in + c->in_len, HTTP1_MAX_HEAD - c->in_len, 0);
		if (n > 0) {
			if (c->in_len == 0)
				c->head_ms = ae_now_ms();
			c->in_len += (size_t)n;
			continue;
		}
		if (n == 0) {
			c->peer_eof = true;
			ae_del(c->r->loop, fd, AE_READABLE);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		conn_close(c);
		return;
	}
	if (c->state == C_PARKED) {
		if (c->peer_eof)
			conn_close(c); /* the client gave up waiting */
		return;
	}
	process_input(c);
	if (c->peer_eof && c->state == C_HTTP && !c->closing) {
		/* A half-closed client still gets its answers. */
		c->close_after_write = true;
		want_flush(c);
	}
}

static void
conn_new(relay *r, int fd, const struct sockaddr_storage *ss)
{
	conn *c = xcalloc(1, sizeof(*c));
	int one = 1;

	c->r = r;
	c->fd = fd;
	c->state = C_HTTP;
	c->active_ms = ae_now_ms();
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, c->peer, sizeof(c->peer));
		c->peer_local = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, c->peer, sizeof(c->peer));
		c->peer_local = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		        s6->sin6_addr.s6_addr[12] == 127);
	} else {
		/* A unix socket: only a local proxy can reach it. */
		snprintf(c->peer, sizeof(c->peer), "127.0.0.1");
		c->peer_local = true;
	}
	if (!r->listen_unix)
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ae_add(r->loop, fd, AE_READABLE, on_readable, c) != 0) {
		close(fd);
		free(c);
		return;
	}
	c->next = r->conns;
	if (r->conns != NULL)
		r->conns->prev = c;
	r->conns = c;
	r->n_conns++;
}

static void
on_accept(ae_loop *l, int fd, void *data, int mask)
{
	relay *r = data;

	(void)mask;
	for (int i = 0; i < ACCEPT_PER_EVENT; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: stop accepting for a
				 * moment rather than spin on a ready socket
				 * we cannot take from. */
				if (warn_due(&r->warned_accept))
					log_warn(
					    "accept: %s (%zu connections); "
					    "pausing",
					    strerror(errno), r->n_conns);
				ae_del(l, fd, AE_READABLE);
				r->listen_paused = true;
				r->listen_resume_at =
				    ae_now_ms() + ACCEPT_PAUSE_MS;
				return;
			}
			log_warn("accept: %s", strerror(errno));
			return;
		}
		if (cfd >= r->setsize) {
			close(cfd);
			continue;
		}
		conn_new(r, cfd, &ss);
	}
}

/* --------------------------------------------------------------- timer */

/* Whether the drain may run: the schema is migrated, or PostgreSQL could
 * not be asked (the drain then fails and reports why). */
static bool
schema_ready(relay *r)
{
	bool ready;

	if (r->schema_ready)
		return true;
	if (outbox_ready(&r->ap, &ready) != R_SUCCESS)
		return true;
	if (!ready) {
		if (!r->told_unmigrated)
			log_info("the schema %s has no outbox yet: waiting for "
			         "roostctl migrate",
			    r->tenant);
		r->told_unmigrated = true;
		return false;
	}
	if (r->told_unmigrated)
		log_info("the schema %s is migrated: draining", r->tenant);
	r->schema_ready = true;
	return true;
}

/* Publishes what workers committed: asked for by a worker (outbox_kick),
 * or on the timer for what a worker died before publishing. Kicks that
 * come in together are served by one drain. */
static void
run_drain(relay *r)
{
	int published = 0;
	rerr e;

	if (!schema_ready(r)) {
		r->drain = false;
		r->next_drain = ae_now_ms() + UNMIGRATED_MS;
		return;
	}
	e = outbox_timer_drain(&r->ap, &published);
	r->drain = false;
	if (e == R_SUCCESS) {
		r->drain_backoff = 0;
		r->next_drain = ae_now_ms() + DRAIN_MS;
	} else {
		r->drain_backoff = r->drain_backoff == 0 ? DRAIN_BACKOFF_MIN_MS
		                                         : r->drain_backoff * 2;
		if (r->drain_backoff > DRAIN_BACKOFF_MAX_MS)
			r->drain_backoff = DRAIN_BACKOFF_MAX_MS;
		r->next_drain = ae_now_ms() + r->drain_backoff;
	}
	if (published > 0)
		r->wake = true; /* no need to wait for our own PUBLISH */
}

static void
heartbeat(relay *r)
{
	for (conn *c = r->conns; c != NULL; c = c->next)
		if (c->state == C_SSE && !c->closing && !c->sub_done)
			conn_send_frame(c, r->hb_frame, true);
}

static void
refresh_presence(relay *r)
{
	int64_t uids[REFRESH_CHUNK];
	const char *ids[REFRESH_CHUNK];
	size_t n = 0;

	for (conn *c = r->conns; c != NULL; c = c->next) {
		if (!c->presence || c->closing)
			continue;
		uids[n] = c->sub.user_id;
		ids[n] = c->conn_id;
		if (++n == REFRESH_CHUNK) {
			(void)presence_refresh(&r->ap, uids, ids, n);
			n = 0;
		}
	}
	if (n > 0)
		(void)presence_refresh(&r->ap, uids, ids, n);
}

/* The backstop for a lost session.ended (docs/realtime.md): every open
 * stream's session or API token is checked against PostgreSQL, one batch
 * of up to RECHECK_CHUNK per tick (about 5 ms of PostgreSQL time for
 * 1,000), so 10,000 streams never hold the loop for the whole round. A
 * round starts every session_recheck_s, and again after every
 * resubscription to Redis. */
static void
recheck_step(relay *r)
{
	static conn *cs[RECHECK_CHUNK];
	static auth_stream_cred v[RECHECK_CHUNK];
	size_t n = 0;

	for (conn *c = r->conns; c != NULL && n < RECHECK_CHUNK; c = c->next) {
		if (!c->has_sub || c->sub_done || c->closing ||
		    c->recheck_gen == r->recheck_gen)
			continue;
		c->recheck_gen = r->recheck_gen;
		cs[n] = c;
		v[n].session_id = c->sub.session_id;
		v[n].token_id = c->sub.token_id;
		n++;
	}
	if (n > 0 &&
	    auth_check_streams(r->ap.db, r->ap.arena, r->ap.cfg.schema, v, n) !=
	        R_SUCCESS) {
		if (warn_due(&r->warned_recheck))
			log_warn("cannot check the sessions of open streams; "
			         "trying again in %d s",
			    r->ap.cfg.session_recheck_s);
		n = 0; /* the round ends here; the next one is whole */
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].ended != NULL) {
			stream_sub_end(&cs[i]->sub, v[i].ended);
			end_session(cs[i], NULL);
		}
	arena_reset(r->ap.arena);
	if (n < RECHECK_CHUNK) {
		/* The round's last batch. */
		r->rechecking = false;
		r->next_recheck =
		    ae_now_ms() + (int64_t)r->ap.cfg.session_recheck_s * 1000;
	}
	answer_ready(r);
}

/* A new round of checks: at once when one is running (streams it already
 * passed are checked again), else on the next tick. */
static void
recheck_soon(relay *r)
{
	if (r->rechecking)
		r->recheck_gen++;
	else
		r->next_recheck = 0;
}

/* Long-poll expiry, idle and slow connections, lingering closes. */
static void
expire(relay *r, int64_t now)
{
	for (conn *c = r->conns; c != NULL; c = c->next) {
		if (c->closing)
			continue;
		if (c->lingering) {
			if (now >= c->deadline_ms)
				conn_close(c);
		} else if (c->state == C_PARKED) {
			if (now >= c->deadline_ms)
				mark_ready(c);
		} else if (c->state == C_HTTP && !c->close_after_write &&
		    c->out.pending == 0) {
			if (c->in_len > 0 && now - c->head_ms > HEAD_MS)
				respond_error(c, 408, "REQUEST_TIMEOUT",
				    "the request head took too long", NULL,
				    false, 1, false);
			else if (c->in_len == 0 && now - c->active_ms > IDLE_MS)
				conn_close(c);
		}
	}
	answer_ready(r);
}

static long
on_tick(ae_loop *l, long long id, void *data)
{
	relay *r = data;
	int64_t now = ae_now_ms();

	(void)id;
	if (r->stopping) {
		if (r->n_conns == 0 || now >= r->stop_deadline)
			ae_stop(l);
	} else if (now >= r->next_drain) {
		run_drain(r);
	}
	if (r->subscribed && !r->stopping && now >= r->next_alive) {
		/* Workers kick us instead of draining while this is fresh;
		 * only say so while the kicks can reach us. */
		(void)outbox_relay_alive(&r->ap, ALIVE_TTL_S);
		r->next_alive = now + ALIVE_MS;
	}
	if (now >= r->next_safety) {
		r->wake = true;
		r->next_safety = now + SAFETY_WAKE_MS;
	}
	if (now >= r->next_hb) {
		heartbeat(r);
		r->next_hb = now + r->heartbeat_ms;
	}
	if (!r->stopping && !r->rechecking && now >= r->next_recheck) {
		r->rechecking = true;
		r->recheck_gen++;
	}
	if (!r->stopping && r->rechecking)
		recheck_step(r);
	expire(r, now);
	if (now >= r->next_refresh) {
		refresh_presence(r);
		r->next_refresh = now + PRESENCE_REFRESH_S * 1000;
	}
	if (!r->stopping && now >= r->next_sweep) {
		(void)presence_sweep(&r->ap, NULL);
		r->next_sweep = now + SWEEP_MS;
	}
	if (r->sub == NULL && !r->stopping && now >= r->sub_retry_at)
		sub_connect(r);
	if (r->listen_paused && !r->stopping && now >= r->listen_resume_at) {
		r->listen_paused = false;
		if (ae_add(l, r->lfd, AE_READABLE, on_accept, r) != 0)
			log_error(
			    "cannot resume accepting: %s", strerror(errno));
	}
	return TICK_MS;
}

/* ------------------------------------------------------------ stopping */

static void
begin_stop(relay *r)
{
	if (r->stopping) {
		ae_stop(r->loop); /* asked twice: go now */
		return;
	}
	r->stopping = true;
	r->stop_deadline = ae_now_ms() + STOP_GRACE_MS;
	if (r->subscribed) {
		/* Workers drain for themselves again (another relay that is
		 * still running says otherwise within a second). */
		rerr e;

		(void)kv_cmd(r->ap.kv, r->ap.arena, &e, "DEL",
		    kv_key(r->ap.arena, r->tenant, "relay:alive"), NULL);
		arena_reset(r->ap.arena);
		r->subscribed = false;
	}
	log_info("stopping: %zu connection(s), %zu subscriber(s)", r->n_conns,
	    r->n_subs);
	ae_del(r->loop, r->lfd, AE_READABLE);
	close(r->lfd);
	r->lfd = -1;
	for (conn *c = r->conns; c != NULL; c = c->next) {
		if (c->closing)
			continue;
		if (c->state == C_PARKED) {
			c->keep_alive = false;
			mark_ready(c);
		} else if (c->state == C_SSE) {
			c->sub_done = true;
			c->close_after_write = true;
			want_flush(c);
		} else if (c->out.pending == 0 && !c->lingering) {
			conn_close(c);
		} else {
			c->close_after_write = true;
			want_flush(c);
		}
	}
	answer_ready(r);
}

static void
on_signal(ae_loop *l, int fd, void *data, int mask)
{
	relay *r = data;
	struct signalfd_siginfo si;

	(void)l;
	(void)mask;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			begin_stop(r);
}

/* ------------------------------------------------------- before sleep */

static void
flush_pending(relay *r)
{
	while (r->pending != NULL) {
		conn *c = r->pending;

		r->pending = c->pending_next;
		c->on_pending = false;
		flush_conn(c);
	}
}

static void
before_sleep(ae_loop *l, void *data)
{
	relay *r = data;

	/* A kick is served at once, unless the last drain failed (the
	 * timer retries after its backoff). */
	if (r->drain && !r->stopping &&
	    (r->drain_backoff == 0 || ae_now_ms() >= r->next_drain))
		run_drain(r);
	if (r->wake && !r->stopping)
		process_stream(r);
	answer_ready(r);
	while (r->resume != NULL) {
		conn *c = r->resume;

		r->resume = c->resume_next;
		c->on_resume = false;
		if (!c->closing && c->state == C_HTTP)
			process_input(c);
	}
	flush_pending(r);
	/* Every list above is empty: nothing refers to these any more. */
	while (r->to_close != NULL) {
		conn *c = r->to_close;

		r->to_close = c->close_next;
		conn_free(c);
	}
	if (r->stopping && r->n_conns == 0)
		ae_stop(l);
}

/* ---------------------------------------------------------- listening */

static bool
is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)
		                  ->sin_addr.s_addr) >>
		           24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

static int
listen_unix_path(const char *path, bool probe, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -1;
	}
	if (probe)
		return 0;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(path, 0660) != 0 || listen(fd, 4096) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
relay_listen(const char *spec, bool allow_any, bool reuseport, bool probe,
    char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV },
	                *ai = NULL;
	char host[256];
	const char *port;
	int fd = -1, one = 1, rc;

	if (spec[0] == '/')
		return listen_unix_path(spec, probe, err, errlen);
	if (spec[0] == '[') {
		const char *close_br = strchr(spec, ']');

		if (close_br == NULL || close_br[1] != ':' ||
		    (size_t)(close_br - spec - 1) >= sizeof(host))
			goto bad;
		memcpy(host, spec + 1, (size_t)(close_br - spec - 1));
		host[close_br - spec - 1] = '\0';
		port = close_br + 2;
	} else {
		const char *colon = strrchr(spec, ':');

		if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port = colon + 1;
	}
	if (*host == '\0' || *port == '\0')
		goto bad;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s: %s", spec, gai_strerror(rc));
		return -1;
	}
	if (!allow_any && !is_loopback(ai->ai_addr)) {
		snprintf(err, errlen,
		    "%s is not a loopback address: the relay belongs behind "
		    "the web server's proxy (-A allows any address)",
		    spec);
		freeaddrinfo(ai);
		return -1;
	}
	fd = socket(
	    ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (reuseport &&
	        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) !=
	            0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    (!probe && listen(fd, 4096) != 0)) {
		snprintf(err, errlen, "%s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	if (probe) {
		close(fd);
		return 0;
	}
	return fd;
bad:
	snprintf(err, errlen,
	    "%s: expected host:port, [v6]:port or /path/to.sock", spec);
	return -1;
}

/* ------------------------------------------------------------- running */

static void
teardown(relay *r)
{
	r->tearing_down = true;
	while (r->conns != NULL)
		conn_free(r->conns);
	if (r->sub != NULL)
		redisAsyncFree(r->sub); /* runs the adapter's cleanup */
	r->sub = NULL;
	if (r->lfd >= 0)
		close(r->lfd);
	if (r->sigfd >= 0)
		close(r->sigfd);
	ae_free(r->loop);
	subidx_free(r->by_room);
	subidx_free(r->by_user);
	frames_reset(&r->fr);
	outq_frame_unref(r->hb_frame);
	outq_frame_unref(r->resync_frame);
	buf_free(&r->fr.sse);
	buf_free(&r->fr.json);
	free(r->wake_ch);
	free(r->eph_ch);
	free(r->drain_ch);
	app_free(&r->ap);
}

int
relay_run(const relay_opts *o)
{
	relay *r = xcalloc(1, sizeof(*r));
	struct rlimit rl;
	sigset_t set;
	char err[512];
	int64_t now;
	int rc = 0;

	r->lfd = o->listen_fd;
	r->sigfd = -1;
	r->listen_unix = o->listen_unix;
	r->max_output = o->max_output;
	r->hb_frame =
	    outq_frame_new(HEARTBEAT_FRAME, sizeof(HEARTBEAT_FRAME) - 1);
	r->resync_frame =
	    outq_frame_new(RESYNC_FRAME, sizeof(RESYNC_FRAME) - 1);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) */
	if (app_init(&r->ap, o->config, "relay", err, sizeof(err)) != 0) {
		log_error("cannot start: %s", err);
		close(r->lfd);
		outq_frame_unref(r->hb_frame);
		outq_frame_unref(r->resync_frame);
		free(r);
		return 78;
	}
	r->ap.stream_mode = STREAM_HANDOFF;
	r->tenant = r->ap.cfg.schema;
	r->heartbeat_ms = r->ap.cfg.sse_heartbeat_s * 1000;
	r->rt = kv_target(r->ap.kv);
	r->wake_ch = xstrdup(kv_key(r->ap.arena, r->tenant, "wake"));
	r->eph_ch = xstrdup(kv_key(r->ap.arena, r->tenant, "eph"));
	r->drain_ch = xstrdup(kv_key(r->ap.arena, r->tenant, "drain"));
	arena_reset(r->ap.arena);
	if (gethostname(r->host, sizeof(r->host) - 1) != 0)
		snprintf(r->host, sizeof(r->host), "host");
	r->setsize = getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	        rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1000000
	    ? (int)rl.rlim_cur + 64
	    : 65536;
	r->by_room = subidx_new();
	r->by_user = subidx_new();
	r->loop = ae_new(r->setsize);
	r->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (r->loop == NULL || r->sigfd < 0 ||
	    ae_add(r->loop, r->lfd, AE_READABLE, on_accept, r) != 0 ||
	    ae_add(r->loop, r->sigfd, AE_READABLE, on_signal, r) != 0) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		rc = 70;
		goto out;
	}
	ae_timer_add(r->loop, TICK_MS, on_tick, r);
	ae_set_before_sleep(r->loop, before_sleep, r);

	/* Whatever workers left unpublished, then the end of the stream. */
	if (schema_ready(r))
		(void)outbox_timer_drain(&r->ap, NULL);
	(void)ensure_head(r);
	r->sub_backoff_ms = SUB_BACKOFF_MIN_MS;
	sub_connect(r);
	now = ae_now_ms();
	r->next_drain = now + DRAIN_MS;
	r->next_safety = now + SAFETY_WAKE_MS;
	r->next_hb = now + r->heartbeat_ms;
	r->next_refresh = now + PRESENCE_REFRESH_S * 1000;
	r->next_sweep = now + SWEEP_MS;
	r->next_recheck = now + (int64_t)r->ap.cfg.session_recheck_s * 1000;
	log_info("ready (pid %ld, tenant %s, %d descriptors, output cap %zu)",
	    (long)getpid(), r->tenant, r->setsize - 64, r->max_output);
	if (ae_run(r->loop) != 0) {
		log_error("event loop: %s", strerror(errno));
		rc = 70;
	}
	log_info(
	    "stopped after %llu requests", (unsigned long long)r->ap.served);
out:
	teardown(r);
	free(r);
	outq_release_spares();
	return rc;
}
