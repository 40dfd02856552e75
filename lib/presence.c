/* presence: connection entries in Redis, transitions published as
 * ephemeral events (see presence.h). */
#include "presence.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "app.h"
#include "log.h"
#include "stream.h"

/* KEYS: pconn:<user>, online. ARGV: member, expiry, now, user.
 * Returns 1 when the user was not online before. */
static const char connect_lua[] =
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3]) "
    "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) "
    "redis.call('EXPIRE', KEYS[1], 600) "
    "local was = redis.call('ZSCORE', KEYS[2], ARGV[4]) "
    "redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[4]) "
    "if was then return 0 end "
    "return 1";

/* KEYS: pconn:<user>, online. ARGV: member, now, linger deadline, user. */
static const char disconnect_lua[] =
    "redis.call('ZREM', KEYS[1], ARGV[1]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2]) "
    "if redis.call('ZCARD', KEYS[1]) == 0 and "
    "   redis.call('ZSCORE', KEYS[2], ARGV[4]) then "
    "  redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[4]) "
    "end "
    "return 0";

/* KEYS: online. ARGV: expiry, then pairs (pconn key, member, user). */
static const char refresh_lua[] =
    "for i = 2, #ARGV, 3 do "
    "  redis.call('ZADD', ARGV[i], ARGV[1], ARGV[i + 1]) "
    "  redis.call('EXPIRE', ARGV[i], 600) "
    "  redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[i + 2]) "
    "end "
    "return 0";

/* KEYS: online, last-seen hash. ARGV: now, pconn key prefix.
 * Returns the users who went offline (each once, to one sweeper). */
static const char sweep_lua[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], "
    "'LIMIT', 0, 200) "
    "local gone = {} "
    "for _, uid in ipairs(due) do "
    "  local pk = ARGV[2] .. uid "
    "  redis.call('ZREMRANGEBYSCORE', pk, '-inf', ARGV[1]) "
    "  local top = redis.call('ZREVRANGE', pk, 0, 0, 'WITHSCORES') "
    "  if #top > 0 then "
    "    redis.call('ZADD', KEYS[1], top[2], uid) "
    "  else "
    "    redis.call('ZREM', KEYS[1], uid) "
    "    redis.call('HSET', KEYS[2], uid, ARGV[1]) "
    "    gone[#gone + 1] = uid "
    "  end "
    "end "
    "return gone";

static char *
pconn_key(arena *a, const char *tid, int64_t uid)
{
	return kv_key(a, tid, arena_printf(a, "pconn:%" PRId64, uid));
}

static rerr
publish(app *ap, arena *a, int64_t uid, const int64_t *rooms, size_t n,
    const char *status)
{
	const char *json = arena_printf(a,
	    "{\"type\":\"presence\",\"room_id\":null,\"data\":{\"user_id\":"
	    "%" PRId64 ",\"status\":\"%s\"}}",
	    uid, status);

	return stream_publish_ephemeral(
	    ap->kv, a, ap->cfg.schema, rooms, n, uid, json);
}

/* The user's rooms of at most PRESENCE_ROOM_MAX members (arena memory);
 * none when the database cannot say (the user still sees their own
 * transition). */
static int64_t *
small_rooms(app *ap, arena *a, int64_t user_id, size_t *n)
{
	const char *p[2] = { arena_printf(a, "%" PRId64, user_id),
		arena_printf(a, "%d", PRESENCE_ROOM_MAX) };
	PGresult *res = NULL;
	int64_t *out;
	rerr e;

	*n = 0;
	if (db_ensure(ap->db) == R_SUCCESS &&
	    db_begin(ap->db, ap->cfg.schema) == R_SUCCESS) {
		res = db_query(ap->db, a, &e,
		    "SELECT m.room_id FROM room_members m JOIN rooms r "
		    "ON r.id = m.room_id WHERE m.user_id = $1 "
		    "AND r.member_count <= $2",
		    2, p);
		db_rollback(ap->db);
	}
	if (res == NULL)
		return NULL;
	out = arena_calloc(a, (size_t)PQntuples(res) + 1, sizeof(*out));
	for (int i = 0; i < PQntuples(res); i++)
		out[(*n)++] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	return out;
}

rerr
presence_connect(app *ap, int64_t user_id, const char *conn_id)
{
	arena *a = arena_new();
	long long now = (long long)time(NULL);
	const char *argv[9];
	redisReply *r;
	rerr e;

	argv[0] = "EVAL";
	argv[1] = connect_lua;
	argv[2] = "2";
	argv[3] = pconn_key(a, ap->cfg.schema, user_id);
	argv[4] = kv_key(a, ap->cfg.schema, "online");
	argv[5] = conn_id;
	argv[6] = arena_printf(a, "%lld", now + PRESENCE_TTL_S);
	argv[7] = arena_printf(a, "%lld", now);
	argv[8] = arena_printf(a, "%" PRId64, user_id);
	r = kv_cmdv(ap->kv, a, &e, 9, argv, NULL);
	if (r != NULL && e == R_SUCCESS && r->type == REDIS_REPLY_INTEGER &&
	    r->integer == 1) {
		size_t n = 0;
		int64_t *small = small_rooms(ap, a, user_id, &n);

		e = publish(ap, a, user_id, small, n, "online");
	} else if (r == NULL || e != R_SUCCESS)
		e = R_UNAVAILABLE;
	arena_free(a);
	return e;
}

rerr
presence_disconnect(app *ap, int64_t user_id, const char *conn_id, int linger_s)
{
	arena *a = arena_new();
	long long now = (long long)time(NULL);
	const char *argv[9];
	redisReply *r;
	rerr e;

	argv[0] = "EVAL";
	argv[1] = disconnect_lua;
	argv[2] = "2";
	argv[3] = pconn_key(a, ap->cfg.schema, user_id);
	argv[4] = kv_key(a, ap->cfg.schema, "online");
	argv[5] = conn_id;
	argv[6] = arena_printf(a, "%lld", now);
	argv[7] = arena_printf(a, "%lld", now + (linger_s > 0 ? linger_s : 0));
	argv[8] = arena_printf(a, "%" PRId64, user_id);
	r = kv_cmdv(ap->kv, a, &e, 9, argv, NULL);
	if (r == NULL || e != R_SUCCESS)
		e = R_UNAVAILABLE;
	arena_free(a);
	return e;
}

rerr
presence_refresh(
    app *ap, const int64_t *user_ids, const char *const *conn_ids, size_t n)
{
	arena *a;
	const char **argv;
	long long now = (long long)time(NULL);
	redisReply *r;
	rerr e;

	if (n == 0)
		return R_SUCCESS;
	a = arena_new();
	argv = arena_calloc(a, 5 + n * 3, sizeof(*argv));
	argv[0] = "EVAL";
	argv[1] = refresh_lua;
	argv[2] = "1";
	argv[3] = kv_key(a, ap->cfg.schema, "online");
	argv[4] = arena_printf(a, "%lld", now + PRESENCE_TTL_S);
	for (size_t i = 0; i < n; i++) {
		argv[5 + i * 3] = pconn_key(a, ap->cfg.schema, user_ids[i]);
		argv[6 + i * 3] = conn_ids[i];
		argv[7 + i * 3] = arena_printf(a, "%" PRId64, user_ids[i]);
	}
	r = kv_cmdv(ap->kv, a, &e, (int)(5 + n * 3), argv, NULL);
	if (r == NULL || e != R_SUCCESS)
		e = R_UNAVAILABLE;
	arena_free(a);
	return e;
}

/* Publishes "offline" for each user to the members of their rooms and
 * stores last_seen_at. */
static rerr
went_offline(app *ap, arena *a, const redisReply *gone)
{
	buf ids = BUF_INIT;
	const char *p[2];
	PGresult *res;
	rerr e;

	for (size_t i = 0; i < gone->elements; i++) {
		if (gone->element[i]->type != REDIS_REPLY_STRING)
			continue;
		buf_puts(&ids, ids.len ? "," : "{");
		buf_puts(&ids, gone->element[i]->str);
	}
	if (ids.len == 0)
		return R_SUCCESS;
	buf_putc(&ids, '}');
	p[0] = arena_strdup(a, ids.data);
	p[1] = arena_printf(a, "%d", PRESENCE_ROOM_MAX);
	buf_free(&ids);
	if ((e = db_ensure(ap->db)) != R_SUCCESS ||
	    (e = db_begin(ap->db, ap->cfg.schema)) != R_SUCCESS)
		return e;
	res = db_query(ap->db, a, &e,
	    "WITH u AS (UPDATE users SET last_seen_at = now() "
	    "WHERE id = ANY($1::bigint[]) RETURNING id) "
	    "SELECT u.id, coalesce(array_to_string(array_agg(m.room_id) "
	    "FILTER (WHERE m.room_id IS NOT NULL), ','), '') "
	    "FROM u LEFT JOIN (room_members m JOIN rooms r ON r.id = m.room_id "
	    "AND r.member_count <= $2) "
	    "ON m.user_id = u.id GROUP BY u.id",
	    2, p);
	if (res != NULL)
		e = db_commit(ap->db);
	db_rollback(ap->db);
	if (res == NULL || e != R_SUCCESS)
		return e;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t uid = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		const char *list = PQgetvalue(res, i, 1);
		size_t n = *list ? 1 : 0, k = 0;
		int64_t *rooms;

		for (const char *q = list; *q; q++)
			n += *q == ',';
		rooms = arena_calloc(a, n + 1, sizeof(*rooms));
		for (const char *q = list; *q && k < n;) {
			char *end;

			rooms[k++] = strtoll(q, &end, 10);
			q = *end == ',' ? end + 1 : end;
		}
		(void)publish(ap, a, uid, rooms, k, "offline");
	}
	return R_SUCCESS;
}

rerr
presence_sweep(app *ap, int *went)
{
	arena *a = arena_new();
	long long now = (long long)time(NULL);
	const char *argv[7];
	redisReply *r;
	rerr e;

	if (went)
		*went = 0;
	argv[0] = "EVAL";
	argv[1] = sweep_lua;
	argv[2] = "2";
	argv[3] = kv_key(a, ap->cfg.schema, "online");
	argv[4] = kv_key(a, ap->cfg.schema, "lastseen");
	argv[5] = arena_printf(a, "%lld", now);
	argv[6] = kv_key(a, ap->cfg.schema, "pconn:");
	r = kv_cmdv(ap->kv, a, &e, 7, argv, NULL);
	if (r == NULL || e != R_SUCCESS || r->type != REDIS_REPLY_ARRAY) {
		arena_free(a);
		return R_UNAVAILABLE;
	}
	if (went)
		*went = (int)r->elements;
	if (r->elements > 0)
		e = went_offline(ap, a, r);
	arena_free(a);
	return e;
}
