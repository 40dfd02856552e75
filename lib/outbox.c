/* outbox: the drain pass (see outbox.h for why it looks like this). */
#include "outbox.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "app.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "stream.h"

#define PASS_ROWS 500
#define HOLD_MS 1000 /* a try-drainer hands over after this long */
/* A pass's statements are a few milliseconds; one stuck on a lock must
 * not keep a worker (and, with lighttpd, the request queued behind it)
 * for the request timeout. The rows stay for the next pass. */
#define DRAIN_STATEMENT_MS 3000

/* One pass in its own transaction. *held: this pass had the drain lock
 * (and let it go when it returned); *n: the rows it published. */
static rerr
pass(app *ap, arena *a, bool wait, bool *held, int *n)
{
	const char **fields;
	PGresult *res;
	buf idlist = BUF_INIT;
	const char *upd[2];
	stream_cursor expect, appended;
	char cur[STREAM_CURSOR_MAX];
	bool have_expect, rotated;
	rerr e;
	int rows;

	*n = 0;
	*held = false;
	if ((e = db_ensure(ap->db)) != R_SUCCESS)
		return e;
	/* One round trip: the transaction, its settings and the lock. The
	 * schema matches [a-z_][a-z0-9_]* (tenant_schema_valid), so it
	 * needs no quoting inside the literal. The lock is a statement of
	 * its own, before the SELECT below, so that SELECT's snapshot
	 * already sees every row the previous holder published.
	 * synchronous_commit off: a pass's COMMIT only stamps published_at;
	 * if a crash loses the stamp, the rows are offered again and the
	 * publish script skips those it already appended (its window of
	 * outbox ids, lib/stream.h), so it need not wait for the disk while
	 * every other drainer waits for the lock. Its statements get
	 * DRAIN_STATEMENT_MS. */
	e = db_begin_fetch(ap->db, a, ap->cfg.schema,
	    arena_printf(a,
	        "SET LOCAL synchronous_commit = off; "
	        "SET LOCAL statement_timeout = %d; %s"
	        "SELECT %s(hashtextextended('roost.drain.%s', 0))",
	        DRAIN_STATEMENT_MS,
	        wait ? "SET LOCAL lock_timeout = '2s'; " : "",
	        wait ? "pg_advisory_xact_lock" : "pg_try_advisory_xact_lock",
	        ap->cfg.schema),
	    &res);
	if (e != R_SUCCESS)
		return e;
	/* pg_advisory_xact_lock returns void (an empty value): either way
	 * only a try that failed says 'f'. */
	if (res == NULL || PQntuples(res) != 1 ||
	    PQgetvalue(res, 0, 0)[0] == 'f')
		goto out;
	*held = true;
	/* The rows, and where the last pass left the stream (always one
	 * row: the events columns are NULL when none wait). */
	res = db_query(ap->db, a, &e,
	    "SELECT s.last_cursor, e.id, e.room, e.usr, e.type, e.data, "
	    "e.origin FROM (SELECT (SELECT last_cursor FROM stream_state) "
	    "AS last_cursor) s LEFT JOIN LATERAL (SELECT id, "
	    "coalesce(room_id::text, '') AS room, "
	    "coalesce(user_id::text, '') AS usr, type, data::text AS data, "
	    "coalesce(origin_session::text, '') AS origin FROM events "
	    "WHERE published_at IS NULL ORDER BY id LIMIT 500) e ON true",
	    0, NULL);
	if (res == NULL)
		goto out;
	rows = PQgetisnull(res, 0, 1) ? 0 : PQntuples(res);
	have_expect = !PQgetisnull(res, 0, 0) &&
	    stream_cursor_parse(PQgetvalue(res, 0, 0), &expect);
	fields = arena_calloc(a, (size_t)rows * 6 + 1, sizeof(*fields));
	for (int i = 0; i < rows; i++) {
		fields[i * 6 + 0] = PQgetvalue(res, i, 4);
		fields[i * 6 + 1] = PQgetvalue(res, i, 2);
		fields[i * 6 + 2] = PQgetvalue(res, i, 3);
		fields[i * 6 + 3] = PQgetvalue(res, i, 6);
		fields[i * 6 + 4] = PQgetvalue(res, i, 5);
		fields[i * 6 + 5] = PQgetvalue(res, i, 1);
		buf_puts(&idlist, i ? "," : "{");
		buf_puts(&idlist, PQgetvalue(res, i, 1));
	}
	if (rows > 0)
		buf_putc(&idlist, '}');
	/* With no rows too: a stream that lost its last entries (a Redis
	 * crash) is noticed within one drain, not at the next write. */
	if ((e = stream_publish(ap->kv, a, ap->cfg.schema,
	         ap->cfg.events_retain, have_expect ? &expect : NULL,
	         (size_t)rows, fields, &appended, &rotated)) != R_SUCCESS)
		goto out;
	if (rotated)
		log_warn("the event stream lost its last entries (a Redis "
		         "crash): new epoch; every client resyncs");
	if (rows == 0)
		goto out;
	/* Published. If this COMMIT is lost, the next pass offers the rows
	 * again: the script finds their outbox ids in its window and appends
	 * none of them twice (appended is then the stream's end), and it
	 * checks the stream against an older end, which is still there. */
	stream_cursor_format(&appended, cur);
	upd[0] = arena_strdup(a, idlist.data);
	upd[1] = cur;
	if (db_query(ap->db, a, &e,
	        "WITH s AS (INSERT INTO stream_state (id, last_cursor) "
	        "VALUES (true, $2) ON CONFLICT (id) DO UPDATE SET "
	        "last_cursor = EXCLUDED.last_cursor, updated_at = now()) "
	        "UPDATE events SET published_at = now() "
	        "WHERE id = ANY($1::bigint[])",
	        2, upd) == NULL)
		goto out;
	if ((e = db_commit(ap->db)) == R_SUCCESS)
		*n = rows;
out:
	buf_free(&idlist);
	db_rollback(ap->db);
	return e;
}

/* After the lock is let go: are rows left? A writer whose try found the
 * lock taken had committed before it tried, so a look taken now sees its
 * rows. */
static bool
pending(app *ap, arena *a)
{
	PGresult *res;
	bool left;

	if (db_begin_fetch(ap->db, a, ap->cfg.schema,
	        "SELECT EXISTS (SELECT 1 FROM events "
	        "WHERE published_at IS NULL)",
	        &res) != R_SUCCESS)
		return false;
	left = res != NULL && PQntuples(res) == 1 &&
	    PQgetvalue(res, 0, 0)[0] == 't';
	db_rollback(ap->db);
	return left;
}

/* Drainers hand over without waiting (wait == false): one whose try
 * finds the lock taken leaves, and every holder, once it has let go,
 * looks again (look) and drains what came in meanwhile. So a row is
 * never left behind by everyone: its writer tried after committing, and
 * the holder that turned it away looks after that. A holder stops
 * looking after HOLD_MS even with rows left, so a worker does not become
 * a full-time drainer under a steady load: the next writer, the relay's
 * timer or a waiting reader takes over. A waiting drain (roostctl, a
 * reader without a relay) still finishes every full pass: it promises
 * that what was committed before it started is published. An event loop
 * with a timer of its own (look == false) lets the timer look again. */
static rerr
drain(app *ap, bool wait, bool look, int *published)
{
	int64_t until = mono_ms() + HOLD_MS;
	int total = 0, n;
	bool held, again;
	rerr e;

	do {
		arena *a = arena_new();

		e = pass(ap, a, wait, &held, &n);
		if (e != R_SUCCESS)
			log_warn("outbox drain failed: %s", rerr_code(e));
		total += n;
		if (e != R_SUCCESS || !held)
			again = false; /* failed, or another holder looks */
		else if (n == PASS_ROWS && (wait || !look))
			again = true; /* a full pass: more rows wait */
		else if (!look || mono_ms() >= until)
			again = false; /* the timer, or the next drainer */
		else
			again = n == PASS_ROWS || pending(ap, a);
		arena_free(a);
	} while (again);
	if (published)
		*published = total;
	return e;
}

rerr
outbox_drain(app *ap, int *published)
{
	return drain(ap, true, true, published);
}

rerr
outbox_try_drain(app *ap, int *published)
{
	return drain(ap, false, true, published);
}

rerr
outbox_timer_drain(app *ap, int *published)
{
	return drain(ap, false, false, published);
}

rerr
outbox_ready(app *ap, bool *ready)
{
	arena *a = arena_new();
	PGresult *res;
	rerr e;

	*ready = false;
	if ((e = db_ensure(ap->db)) == R_SUCCESS &&
	    (e = db_begin_fetch(ap->db, a, ap->cfg.schema,
	         "SELECT to_regclass('events') IS NOT NULL AND "
	         "to_regclass('stream_state') IS NOT NULL",
	         &res)) == R_SUCCESS)
		*ready = res != NULL && PQntuples(res) == 1 &&
		    PQgetvalue(res, 0, 0)[0] == 't';
	db_rollback(ap->db);
	arena_free(a);
	return e;
}

static const char kick_lua[] = "if redis.call('EXISTS', KEYS[1]) == 1 then "
                               "  redis.call('PUBLISH', ARGV[1], '1') "
                               "  return 1 "
                               "end "
                               "return 0";

bool
outbox_kick(app *ap)
{
	arena *a = arena_new();
	const char *argv[5];
	redisReply *r;
	bool taken;
	rerr e;

	argv[0] = "EVAL";
	argv[1] = kick_lua;
	argv[2] = "1";
	argv[3] = kv_key(a, ap->cfg.schema, "relay:alive");
	argv[4] = kv_key(a, ap->cfg.schema, "drain");
	r = kv_cmdv(ap->kv, a, &e, 5, argv, NULL);
	taken = r != NULL && e == R_SUCCESS && r->type == REDIS_REPLY_INTEGER &&
	    r->integer == 1;
	arena_free(a);
	return taken;
}

rerr
outbox_relay_alive(app *ap, int ttl_s)
{
	arena *a = arena_new();
	redisReply *r;
	rerr e;

	r = kv_cmd(ap->kv, a, &e, "SET",
	    kv_key(a, ap->cfg.schema, "relay:alive"), "1", "EX",
	    arena_printf(a, "%d", ttl_s > 0 ? ttl_s : 10), NULL);
	if (r == NULL || e != R_SUCCESS)
		e = R_UNAVAILABLE;
	arena_free(a);
	return e;
}
