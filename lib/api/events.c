/* api/events: GET /api/v1/events (long-poll and SSE), tickets, typing and
 * presence (docs/realtime.md). */
#include "api.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../clock.h"
#include "../log.h"
#include "../outbox.h"
#include "../presence.h"
#include "../ratelimit.h"
#include "../rooms.h"
#include "../stream.h"

#define TICKET_TTL_S 30
#define LONGPOLL_DEFAULT_S 25
#define LONGPOLL_MAX_S 60
/* Entries scanned for one long-poll answer before it returns what it has
 * (the client comes straight back from the new cursor). */
#define LONGPOLL_SCAN_MAX (STREAM_READ_BATCH * 8)
/* Backlog an SSE hand-off may carry; a longer one is sent as a complete
 * response and the client reconnects from its last id. */
#define HANDOFF_BACKLOG_MAX (256u * 1024u)
/* Seconds a closed connection keeps its user online. */
#define LINGER_LONGPOLL_S 30
#define LINGER_SSE_S 5

static bool
wants_sse(req_ctx *c)
{
	const char *acc = http_header(c->req, "accept");

	return acc != NULL && strcasestr(acc, "text/event-stream") != NULL;
}

/* The rooms the user is in, into sub. */
static rerr
load_rooms(req_ctx *c, stream_sub *sub)
{
	const char *p[1] = { api_id(c, c->user.user_id) };
	PGresult *res;
	int64_t *ids;
	int n;
	rerr e;

	res = db_query(c->app->db, c->a, &e,
	    "SELECT room_id FROM room_members WHERE user_id = $1", 1, p);
	if (res == NULL)
		return e;
	n = PQntuples(res);
	ids = arena_calloc(c->a, (size_t)n + 1, sizeof(*ids));
	for (int i = 0; i < n; i++)
		ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	stream_sub_set_rooms(sub, ids, (size_t)n);
	return R_SUCCESS;
}

/* Reads from sub's cursor, formatting what sub may see into out (SSE
 * frames or comma-separated JSON objects). Stops at the end of the stream,
 * after scan_max entries, or once out passes out_max bytes. *at_end tells
 * whether the cursor reached the end. */
static rerr
read_into(req_ctx *c, stream_sub *sub, bool sse, buf *out, size_t *n_out,
    size_t scan_max, size_t out_max, bool *at_end, bool *resync)
{
	size_t scanned = 0;

	*at_end = false;
	*resync = false;
	for (;;) {
		stream_batch b;
		arena *a = arena_new();
		rerr e = stream_read(c->app->kv, a, c->tenant.id, &sub->cursor,
		    STREAM_READ_BATCH, &b);

		if (e != R_SUCCESS) {
			arena_free(a);
			return e;
		}
		if (b.status == STREAM_RESYNC) {
			arena_free(a);
			*resync = true;
			return R_SUCCESS;
		}
		for (size_t i = 0; i < b.n; i++) {
			if (!stream_sub_accept(sub, &b.v[i]))
				continue;
			if (sub->end_reason[0] != '\0') {
				/* Its session ended: the last thing it gets. */
				if (sse) {
					stream_format_ended(
					    out, &b.v[i].at, sub->end_reason);
					(*n_out)++;
				}
				arena_free(a);
				*at_end = true;
				return R_SUCCESS;
			}
			if (sse) {
				stream_format_sse(out, &b.v[i]);
			} else {
				if (*n_out)
					buf_putc(out, ',');
				stream_format_json(out, &b.v[i]);
			}
			(*n_out)++;
		}
		sub->cursor = b.head;
		scanned += b.n;
		arena_free(a);
		if (!b.more) {
			*at_end = true;
			return R_SUCCESS;
		}
		if (scanned >= scan_max || out->len >= out_max)
			return R_SUCCESS;
	}
}

static void
longpoll_body(buf *out, const char *events, const stream_cursor *cur)
{
	char s[STREAM_CURSOR_MAX];

	stream_cursor_format(cur, s);
	buf_puts(out, "{\"events\":[");
	buf_puts(out, events);
	buf_printf(out, "],\"last_event_id\":\"%s\"}", s);
}

/* A held long-poll whose session or token ended: what a new request
 * with that credential gets. */
static rerr
session_ended(req_ctx *c)
{
	return fail(
	    c, R_UNAUTHORIZED, NULL, "this session has ended; sign in again");
}

static long long
next_check(req_ctx *c)
{
	return mono_ms() + (long long)c->app->cfg.session_recheck_s * 1000;
}

/* The backstop for a lost session.ended: every session_recheck_s, the
 * waiting stream's own session or token is checked against PostgreSQL.
 * true when it has ended (sub->end_reason set). */
static bool
session_gone(req_ctx *c, stream_sub *sub, long long *next)
{
	auth_stream_cred v = { .session_id = sub->session_id,
		.token_id = sub->token_id };
	arena *a;

	if (sub->end_reason[0] != '\0')
		return true;
	if (mono_ms() < *next)
		return false;
	*next = next_check(c);
	a = arena_new();
	if (auth_check_streams(c->app->db, a, c->tenant.schema, &v, 1) ==
	        R_SUCCESS &&
	    v.ended != NULL)
		stream_sub_end(sub, v.ended);
	arena_free(a);
	return sub->end_reason[0] != '\0';
}

static rerr
resync(req_ctx *c)
{
	return fail(c, R_RESYNC_REQUIRED, NULL,
	    "events after this cursor are no longer available: reload state "
	    "(GET /api/v1/rooms) and continue from its event_cursor");
}

static const char *
conn_id(req_ctx *c)
{
	static unsigned long long n;
	char host[64] = "host";

	(void)gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	return arena_printf(c->a, "%s:%s:%ld:%llu", c->app->frontend, host,
	    (long)getpid(), ++n);
}

/* Waits on the wake and ephemeral channels (roost.fcgi and roost.cgi
 * serving the endpoint themselves). Returns when something for sub
 * arrived (long-poll), the time is up, or the client/server is going. */
typedef struct waiter {
	req_ctx *c;
	stream_sub *sub;
	bool sse;
	kv_sub *ks;
	const char *wake_ch, *eph_ch;
} waiter;

/* One wait step: up to ms milliseconds. Appends deliverable events to out
 * (and counts them). -1 on a Redis failure, 1 on resync, 0 otherwise. */
static int
wait_step(waiter *w, int ms, buf *out, size_t *n_out)
{
	arena *a = arena_new();
	const char *ch, *msg;
	size_t len;
	int r = kv_sub_wait(w->ks, a, ms, &ch, &msg, &len);
	int ret = 0;

	if (r < 0) {
		ret = -1;
	} else if (r == 1 && strcmp(ch, w->eph_ch) == 0) {
		stream_ephemeral ev;

		if (stream_parse_ephemeral(a, msg, len, &ev) &&
		    stream_sub_accept_ephemeral(w->sub, &ev)) {
			if (w->sse) {
				stream_format_sse_ephemeral(out, &ev);
			} else {
				if (*n_out)
					buf_putc(out, ',');
				buf_append(out, ev.json, ev.json_len);
			}
			(*n_out)++;
		}
	} else if (r == 1) {
		bool at_end, rs;

		if (read_into(w->c, w->sub, w->sse, out, n_out, SIZE_MAX,
		        SIZE_MAX, &at_end, &rs) != R_SUCCESS)
			ret = -1;
		else if (rs)
			ret = 1;
	}
	arena_free(a);
	return ret;
}

static bool
stopping(req_ctx *c)
{
	return c->app->stopping != NULL && *c->app->stopping;
}

/* No daemon: the waiting workers also drain the outbox and sweep
 * presence, about once a second. */
static void
chores(req_ctx *c, long long *next)
{
	long long now = mono_ms();

	if (now < *next)
		return;
	(void)outbox_try_drain(c->app, NULL);
	(void)presence_sweep(c->app, NULL);
	*next = now + 1000;
}

static rerr
blocking_longpoll(req_ctx *c, waiter *w, int timeout_s)
{
	buf events = BUF_INIT, body = BUF_INIT;
	size_t n = 0;
	long long deadline = mono_ms() + (long long)timeout_s * 1000;
	long long next_chores = mono_ms() + 1000, next_auth = next_check(c);
	const char *cid = conn_id(c);
	rerr e = R_SUCCESS;
	bool rs = false;

	(void)presence_connect(c->app, w->sub->user_id, cid);
	while (n == 0 && !stopping(c)) {
		long long left = deadline - mono_ms();
		int r;

		if (left <= 0)
			break;
		r = wait_step(w, left > 1000 ? 1000 : (int)left, &events, &n);
		if (r < 0) {
			e = fail(c, R_UNAVAILABLE, NULL,
			    "the event stream is unavailable");
			break;
		}
		if (r == 1) {
			rs = true;
			break;
		}
		if (session_gone(c, w->sub, &next_auth))
			break;
		if (n == 0)
			chores(c, &next_chores);
	}
	(void)presence_disconnect(
	    c->app, w->sub->user_id, cid, LINGER_LONGPOLL_S);
	if (e == R_SUCCESS && w->sub->end_reason[0] != '\0')
		e = session_ended(c);
	else if (e == R_SUCCESS && rs)
		e = resync(c);
	if (e == R_SUCCESS) {
		longpoll_body(
		    &body, events.data ? events.data : "", &w->sub->cursor);
		http_set_header(
		    c->res, c->a, "Content-Type", "application/json");
		buf_append(&c->res->body, body.data, body.len);
		c->res->status = 200;
	}
	buf_free(&events);
	buf_free(&body);
	return e;
}

static int
out_send(req_ctx *c, const char *s, size_t n)
{
	app *ap = c->app;

	while (n > 0) {
		ssize_t w = ap->out_write(ap->out_ctx, s, n);

		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return ap->out_flush ? ap->out_flush(ap->out_ctx) : 0;
}

/* The SSE head. X-Roost-Served-By names the program that holds the
 * stream, so that roostctl check can tell whether the web server sends
 * /api/v1/events to roost-relay or to the workers (no version, no host). */
static void
sse_headers(req_ctx *c)
{
	const char *fe = c->app->frontend;

	http_set_header(c->res, c->a, "Content-Type", "text/event-stream");
	http_set_header(c->res, c->a, "X-Accel-Buffering", "no");
	http_set_header(c->res, c->a, "X-Roost-Served-By",
	    strcmp(fe, "relay") == 0     ? "roost-relay"
	        : strcmp(fe, "cgi") == 0 ? "roost.cgi"
	                                 : "roost.fcgi");
	c->res->status = 200;
}

/* SSE written straight to the front end, until the client goes, the
 * stream's time is up (the client reconnects with Last-Event-ID), a
 * resync, or shutdown. */
static rerr
blocking_sse(req_ctx *c, waiter *w, const buf *backlog)
{
	app *ap = c->app;
	buf head = BUF_INIT, frames = BUF_INIT;
	long long end = mono_ms() + (long long)ap->cfg.sse_max_s * 1000;
	long long next_hb =
	    mono_ms() + (long long)ap->cfg.sse_heartbeat_s * 1000;
	long long next_refresh = mono_ms() + PRESENCE_REFRESH_S * 1000LL;
	long long next_chores = mono_ms() + 1000, next_auth = next_check(c);
	const char *cid = conn_id(c);
	size_t n = 0;

	sse_headers(c);
	/* Written here, before app_handle would: the same headers. */
	app_answer_headers(
	    &ap->cfg, c->res, c->a, c->req->request_id, true, c->rl);
	/* The head in CGI form, then the backlog. */
	buf_printf(&head, "Status: 200 OK\r\n");
	for (size_t i = 0; i < c->res->n_headers; i++)
		buf_printf(&head, "%s: %s\r\n", c->res->headers[i].name,
		    c->res->headers[i].value);
	buf_puts(&head, "\r\n");
	buf_puts(&head, ": stream open\n\n");
	if (backlog->len)
		buf_append(&head, backlog->data, backlog->len);
	ap->response_sent = true;
	if (out_send(c, head.data, head.len) != 0)
		goto done;
	(void)presence_connect(ap, w->sub->user_id, cid);
	while (!stopping(c)) {
		long long now = mono_ms();
		int r;

		if (now >= end)
			break;
		r = wait_step(w, 1000, &frames, &n);
		if (r < 0)
			break;
		if (r == 1) {
			buf_puts(&frames,
			    "event: resync\ndata: "
			    "{\"code\":\"RESYNC_REQUIRED\"}"
			    "\n\n");
			(void)out_send(c, frames.data, frames.len);
			break;
		}
		if (w->sub->end_reason[0] == '\0' &&
		    session_gone(c, w->sub, &next_auth))
			stream_format_ended(&frames, NULL, w->sub->end_reason);
		now = mono_ms();
		if (frames.len == 0 && now >= next_hb)
			buf_puts(&frames, ": hb\n\n");
		if (frames.len) {
			if (out_send(c, frames.data, frames.len) != 0)
				break;
			buf_reset(&frames);
			next_hb =
			    now + (long long)ap->cfg.sse_heartbeat_s * 1000;
		}
		if (w->sub->ended || w->sub->end_reason[0] != '\0')
			break; /* its session was displaced, or ended */
		if (now >= next_refresh) {
			const char *ids[1] = { cid };

			(void)presence_refresh(ap, &w->sub->user_id, ids, 1);
			next_refresh = now + PRESENCE_REFRESH_S * 1000LL;
		}
		chores(c, &next_chores);
	}
	(void)presence_disconnect(ap, w->sub->user_id, cid, LINGER_SSE_S);
done:
	buf_free(&head);
	buf_free(&frames);
	return R_SUCCESS;
}

rerr
api_events_get(req_ctx *c)
{
	app *ap = c->app;
	bool sse = wants_sse(c), at_end = false, rs = false;
	const char *last = http_header(c->req, "last-event-id");
	stream_sub sub = { 0 };
	buf out = BUF_INIT;
	int64_t timeout = LONGPOLL_DEFAULT_S;
	size_t n = 0, len;
	waiter w = { 0 };
	rerr e;

	if (last == NULL || *last == '\0')
		last = http_param(c->req, "last_event_id", &len);
	if (!sse &&
	    (e = api_query_int(c, "timeout", 0, LONGPOLL_MAX_S,
	         LONGPOLL_DEFAULT_S, &timeout)) != R_SUCCESS)
		return e;
	if (last != NULL && *last != '\0' &&
	    !stream_cursor_parse(last, &sub.cursor))
		return fail(c, R_VALIDATION, "last_event_id",
		    "is not a cursor this server gave out");
	sub.user_id = c->user.user_id;
	sub.session_id = c->user.session_id;
	sub.token_id = c->user.token_id;
	if ((e = load_rooms(c, &sub)) != R_SUCCESS)
		goto out;
	/* Nothing below needs the database: let go of it before waiting. */
	if ((e = req_commit(c)) != R_SUCCESS)
		goto out;
	if (last == NULL || *last == '\0') {
		arena *a = arena_new();

		e = stream_head(ap->kv, a, c->tenant.id, &sub.cursor);
		arena_free(a);
		if (e != R_SUCCESS) {
			e = fail(c, R_UNAVAILABLE, NULL,
			    "the event stream is unavailable");
			goto out;
		}
	}
	if (ap->stream_mode == STREAM_BLOCKING) {
		/* Without a relay nobody else may have drained what a worker
		 * that died after COMMIT left behind: the reader drains
		 * before it reads (cheap when there is nothing). */
		(void)outbox_drain(ap, NULL);
		/* Subscribe before reading the backlog: a wake-up that comes
		 * in between is then not lost. */
		w.c = c;
		w.sub = &sub;
		w.sse = sse;
		w.wake_ch = kv_key(c->a, c->tenant.id, "wake");
		w.eph_ch = kv_key(c->a, c->tenant.id, "eph");
		{
			const char *chans[2] = { w.wake_ch, w.eph_ch };

			w.ks = kv_sub_open(ap->kv, chans, 2);
		}
		if (w.ks == NULL) {
			e = fail(c, R_UNAVAILABLE, NULL,
			    "the event stream is unavailable");
			goto out;
		}
	}
	e = read_into(c, &sub, sse, &out, &n,
	    sse ? SIZE_MAX : LONGPOLL_SCAN_MAX,
	    sse ? HANDOFF_BACKLOG_MAX : SIZE_MAX, &at_end, &rs);
	if (e != R_SUCCESS) {
		e = fail(
		    c, R_UNAVAILABLE, NULL, "the event stream is unavailable");
		goto out;
	}
	if (rs && sse) {
		/* EventSource cannot read an error body, and stops
		 * reconnecting on one: an SSE client is told in the stream. */
		sse_headers(c);
		buf_puts(&c->res->body,
		    "event: resync\ndata: {\"code\":\"RESYNC_REQUIRED\"}\n\n");
		goto out;
	}
	if (rs) {
		e = resync(c);
		goto out;
	}
	if (sub.end_reason[0] != '\0') {
		/* Its session ended after this request was let in: the
		 * backlog up to that point, and the end. */
		if (sse) {
			sse_headers(c);
			buf_append(&c->res->body, out.data, out.len);
		} else {
			e = session_ended(c);
		}
		goto out;
	}
	if (sse) {
		if (ap->stream_mode == STREAM_HANDOFF && at_end) {
			sse_headers(c);
			buf_puts(&c->res->body, ": stream open\n\n");
			buf_append(&c->res->body, out.data, out.len);
			ap->handoff.active = true;
			ap->handoff.sse = true;
			ap->handoff.sub = sub;
			sub.rooms = NULL;
		} else if (ap->stream_mode == STREAM_HANDOFF) {
			/* Too much backlog for one hand-off: send it as a
			 * complete response; EventSource reconnects with the
			 * last id and gets the rest. */
			sse_headers(c);
			buf_append(&c->res->body, out.data, out.len);
		} else if (ap->out_write == NULL) {
			e = fail(c, R_NOT_ACCEPTABLE, NULL,
			    "this front end cannot stream; use long-poll");
		} else {
			e = blocking_sse(c, &w, &out);
		}
		goto out;
	}
	/* Long-poll. */
	if (n > 0 || !at_end || timeout == 0) {
		buf body = BUF_INIT;
		const char *cid = conn_id(c);

		/* Answered at once, it still counts as a connection: the
		 * user is online, and stays so while it polls. */
		(void)presence_connect(ap, sub.user_id, cid);
		(void)presence_disconnect(
		    ap, sub.user_id, cid, LINGER_LONGPOLL_S);

		longpoll_body(&body, out.data ? out.data : "", &sub.cursor);
		http_set_header(
		    c->res, c->a, "Content-Type", "application/json");
		buf_append(&c->res->body, body.data, body.len);
		c->res->status = 200;
		buf_free(&body);
	} else if (ap->stream_mode == STREAM_HANDOFF) {
		ap->handoff.active = true;
		ap->handoff.sse = false;
		ap->handoff.timeout_s = (int)timeout;
		ap->handoff.sub = sub;
		sub.rooms = NULL;
	} else {
		e = blocking_longpoll(c, &w, (int)timeout);
	}
out:
	kv_sub_close(w.ks);
	stream_sub_free(&sub);
	buf_free(&out);
	return e;
}

rerr
api_events_ticket(req_ctx *c)
{
	const char *t;
	json_object *o;
	rerr e;

	if ((e = auth_issue_ticket(c, TICKET_TTL_S, &t)) != R_SUCCESS)
		return e;
	o = json_object_new_object();
	json_object_object_add(o, "ticket", json_str(t));
	json_object_object_add(o, "expires_in", json_i64(TICKET_TTL_S));
	return reply_json(c, 201, o);
}

/* KEYS: typing set of the room. ARGV: now (ms), expiry (ms), user,
 * "start"|"stop". Returns who is typing now. */
static const char typing_lua[] =
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) "
    "if ARGV[4] == 'start' then "
    "  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3]) "
    "else "
    "  redis.call('ZREM', KEYS[1], ARGV[3]) "
    "end "
    "redis.call('PEXPIRE', KEYS[1], 60000) "
    "return redis.call('ZRANGE', KEYS[1], 0, -1)";

#define TYPING_TTL_S 6

rerr
api_typing(req_ctx *c)
{
	static const char *const states[] = { "start", "stop", NULL };
	int64_t id = c->match.params[0].num;
	int state = -1;
	json_err je = { 0 };
	json_object *ev, *d, *list;
	const char *argv[8], *p[1];
	int64_t now_ms;
	buf ids = BUF_INIT;
	redisReply *who;
	PGresult *res;
	rl_result rl;
	room r;
	rerr e;

	if ((e = json_reject_unknown(c->body, (const char *[]){ "state", NULL },
	         &je)) != R_SUCCESS ||
	    (e = json_get_enum(c->body, "state", false, states, &state, &je)) !=
	        R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if (state < 0)
		state = 0; /* an empty body means start */
	if ((e = rooms_load(c, id, false, &r)) != R_SUCCESS ||
	    (e = rooms_require_member(c, &r)) != R_SUCCESS ||
	    (e = rooms_require_writable(c, &r)) != R_SUCCESS)
		return e;
	/* Typing is advisory: a client sends start every few seconds while
	 * the user types. More than that is refused, not relayed. */
	e = ratelimit_hit(c->app->kv, c->a, c->tenant.id, "typing",
	    api_id(c, c->user.user_id), 30, 10, &rl);
	if (e == R_SUCCESS) {
		req_ratelimit_headers(c, &rl);
		if (rl.limited)
			return fail(c, R_RATE_LIMITED, NULL,
			    "typing notices are limited to 30 per 10 seconds");
	}
	now_ms = wall_ms();
	argv[0] = "EVAL";
	argv[1] = typing_lua;
	argv[2] = "1";
	argv[3] = kv_key(
	    c->a, c->tenant.id, arena_printf(c->a, "typing:%" PRId64, id));
	argv[4] = arena_printf(c->a, "%" PRId64, now_ms);
	argv[5] = arena_printf(c->a, "%" PRId64, now_ms + TYPING_TTL_S * 1000);
	argv[6] = api_id(c, c->user.user_id);
	argv[7] = states[state];
	who = kv_cmdv(c->app->kv, c->a, &e, 8, argv, NULL);
	if (who == NULL || e != R_SUCCESS || who->type != REDIS_REPLY_ARRAY)
		return fail(c, R_UNAVAILABLE, NULL,
		    "typing notices cannot be sent right now");
	buf_putc(&ids, '{');
	for (size_t i = 0; i < who->elements; i++) {
		const redisReply *v = who->element[i];

		if (v->type != REDIS_REPLY_STRING || v->len == 0 ||
		    strspn(v->str, "0123456789") != v->len)
			continue;
		if (ids.len > 1)
			buf_putc(&ids, ',');
		buf_append(&ids, v->str, v->len);
	}
	buf_putc(&ids, '}');
	p[0] = arena_strdup(c->a, ids.data);
	buf_free(&ids);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT id, coalesce(display_name, name) FROM users "
	    "WHERE id = ANY($1::bigint[]) ORDER BY id",
	    1, p);
	if (res == NULL)
		return e;
	list = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *u = json_object_new_object();

		json_object_object_add(u, "user_id", db_col_i64(res, i, 0));
		json_object_object_add(
		    u, "display_name", db_col_str(res, i, 1));
		json_object_array_add(list, u);
	}
	d = json_object_new_object();
	json_object_object_add(d, "room_id", json_i64(id));
	json_object_object_add(d, "user_id", json_i64(c->user.user_id));
	json_object_object_add(d, "state", json_str(states[state]));
	/* Everyone typing in the room now; each entry lapses this many
	 * seconds after its last start. */
	json_object_object_add(d, "typing", list);
	json_object_object_add(d, "expires_in", json_i64(TYPING_TTL_S));
	ev = json_object_new_object();
	json_object_object_add(ev, "type", json_str("typing"));
	json_object_object_add(ev, "room_id", json_i64(id));
	json_object_object_add(ev, "data", d);
	e = stream_publish_ephemeral(c->app->kv, c->a, c->tenant.id, &id, 1, 0,
	    json_to_arena(c->a, ev, NULL));
	json_object_put(ev);
	if (e != R_SUCCESS)
		return fail(c, R_UNAVAILABLE, NULL,
		    "typing notices cannot be sent right now");
	c->res->status = 204;
	return R_SUCCESS;
}

rerr
api_presence(req_ctx *c)
{
	const char *p[2] = { api_id(c, c->user.user_id), NULL };
	char now[24];
	json_object *list, *answer;
	redisReply *r;
	PGresult *res;
	buf ids = BUF_INIT;
	rerr e;

	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	r = kv_cmd(c->app->kv, c->a, &e, "ZRANGEBYSCORE",
	    kv_key(c->a, c->tenant.id, "online"),
	    arena_printf(c->a, "(%s", now), "+inf", "LIMIT", "0", "10000",
	    NULL);
	if (r == NULL || e != R_SUCCESS || r->type != REDIS_REPLY_ARRAY)
		return fail(c, R_UNAVAILABLE, NULL,
		    "presence is unavailable right now");
	buf_putc(&ids, '{');
	for (size_t i = 0; i < r->elements; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING)
			continue;
		if (ids.len > 1)
			buf_putc(&ids, ',');
		for (size_t k = 0; k < r->element[i]->len; k++)
			if (r->element[i]->str[k] >= '0' &&
			    r->element[i]->str[k] <= '9')
				buf_putc(&ids, r->element[i]->str[k]);
	}
	buf_putc(&ids, '}');
	p[1] = arena_strdup(c->a, ids.data);
	buf_free(&ids);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT u.id, " DB_TS(
	        "u.last_seen_at") " FROM users u "
	                          "WHERE u.id = ANY($2::bigint[]) AND "
	                          "u.deleted_at IS NULL AND ("
	                          "u.id = $1 OR EXISTS (SELECT 1 FROM "
	                          "room_members a "
	                          "JOIN room_members b ON b.room_id = "
	                          "a.room_id "
	                          "WHERE a.user_id = $1 AND b.user_id = u.id)) "
	                          "ORDER BY u.id",
	    2, p);
	if (res == NULL)
		return e;
	list = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "user_id", db_col_i64(res, i, 0));
		json_object_object_add(o, "status", json_str("online"));
		json_object_object_add(
		    o, "last_seen_at", db_col_str(res, i, 1));
		json_object_array_add(list, o);
	}
	answer = json_object_new_object();
	json_object_object_add(answer, "users", list);
	return reply_json(c, 200, answer);
}
