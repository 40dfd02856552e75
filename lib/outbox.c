/* outbox: the drain pass (see outbox.h for why it looks like this). */
#include "outbox.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "app.h"
#include "buf.h"
#include "log.h"
#include "stream.h"

#define PASS_ROWS 500

/* One pass in its own transaction. *n gets the rows published. */
static rerr
pass(app *ap, arena *a, bool wait, int *n)
{
	const char *lock[1] = { arena_printf(
	    a, "roost.drain.%s", ap->cfg.schema) };
	const char **fields;
	PGresult *res;
	buf idlist = BUF_INIT;
	const char *upd[1];
	rerr e;
	int rows;

	*n = 0;
	if ((e = db_ensure(ap->db)) != R_SUCCESS ||
	    (e = db_begin(ap->db, ap->cfg.schema)) != R_SUCCESS)
		return e;
	/* Drainers take turns: one waiting here sees, once it has the lock,
	 * every row the previous one did not publish, including rows whose
	 * transactions committed while the previous pass ran. */
	if (wait) {
		if (db_query(ap->db, a, &e, "SET LOCAL lock_timeout = '5s'", 0,
		        NULL) == NULL ||
		    db_query(ap->db, a, &e,
		        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
		        1, lock) == NULL)
			goto out;
	} else {
		/* An event loop never waits: the holder publishes. */
		res = db_query(ap->db, a, &e,
		    "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
		    1, lock);
		if (res == NULL || PQgetvalue(res, 0, 0)[0] != 't')
			goto out;
	}
	res = db_query(ap->db, a, &e,
	    "SELECT id, coalesce(room_id::text, ''), coalesce(user_id::text, "
	    "''), type, data::text, coalesce(origin_session::text, '') "
	    "FROM events WHERE published_at IS NULL ORDER BY id LIMIT 500",
	    0, NULL);
	if (res == NULL)
		goto out;
	rows = PQntuples(res);
	if (rows == 0)
		goto out;
	fields = arena_calloc(a, (size_t)rows * 6, sizeof(*fields));
	for (int i = 0; i < rows; i++) {
		fields[i * 6 + 0] = PQgetvalue(res, i, 3);
		fields[i * 6 + 1] = PQgetvalue(res, i, 1);
		fields[i * 6 + 2] = PQgetvalue(res, i, 2);
		fields[i * 6 + 3] = PQgetvalue(res, i, 5);
		fields[i * 6 + 4] = PQgetvalue(res, i, 4);
		fields[i * 6 + 5] = PQgetvalue(res, i, 0);
		buf_puts(&idlist, i ? "," : "{");
		buf_puts(&idlist, PQgetvalue(res, i, 0));
	}
	buf_putc(&idlist, '}');
	if ((e = stream_publish(ap->kv, a, ap->cfg.schema,
	         ap->cfg.events_retain, (size_t)rows, fields)) != R_SUCCESS)
		goto out;
	/* Published. If this COMMIT is lost, the next pass publishes the
	 * rows again: a duplicate, which clients absorb (events carry entity
	 * ids), never a gap. */
	upd[0] = arena_strdup(a, idlist.data);
	if (db_query(ap->db, a, &e,
	        "UPDATE events SET published_at = now() "
	        "WHERE id = ANY($1::bigint[])",
	        1, upd) == NULL)
		goto out;
	if ((e = db_commit(ap->db)) == R_SUCCESS)
		*n = rows;
out:
	buf_free(&idlist);
	db_rollback(ap->db);
	return e;
}

static rerr
drain(app *ap, bool wait, int *published)
{
	int total = 0, n;
	rerr e;

	if (published)
		*published = 0;
	do {
		arena *a = arena_new();

		e = pass(ap, a, wait, &n);
		arena_free(a);
		if (e != R_SUCCESS) {
			log_warn("outbox drain failed: %s", rerr_code(e));
			break;
		}
		total += n;
	} while (n == PASS_ROWS);
	if (published)
		*published = total;
	return e;
}

rerr
outbox_drain(app *ap, int *published)
{
	return drain(ap, true, published);
}

rerr
outbox_try_drain(app *ap, int *published)
{
	return drain(ap, false, published);
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
