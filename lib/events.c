/* events: INSERT into the outbox, in the caller's transaction. */
#include "events.h"

#include <inttypes.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "json.h"

static unsigned written;

static rerr
emit(db *d, arena *a, int64_t room_id, int64_t user_id, const char *type,
    json_object *data, int64_t origin)
{
	const char *p[5];
	rerr e;

	p[0] = room_id ? arena_printf(a, "%" PRId64, room_id) : NULL;
	p[1] = user_id ? arena_printf(a, "%" PRId64, user_id) : NULL;
	p[2] = type;
	p[3] = json_to_arena(a, data, NULL);
	p[4] = origin ? arena_printf(a, "%" PRId64, origin) : NULL;
	json_object_put(data);
	(void)db_query(d, a, &e,
	    "INSERT INTO events (room_id, user_id, type, data, origin_session) "
	    "VALUES ($1, $2, $3, $4::jsonb, $5)",
	    5, p);
	if (e == R_SUCCESS)
		written++;
	return e;
}

rerr
events_room(
    db *d, arena *a, int64_t room_id, const char *type, json_object *data)
{
	return emit(d, a, room_id, 0, type, data, 0);
}

rerr
events_user(
    db *d, arena *a, int64_t user_id, const char *type, json_object *data)
{
	return emit(d, a, 0, user_id, type, data, 0);
}

rerr
events_user_from(db *d, arena *a, int64_t user_id, const char *type,
    json_object *data, int64_t origin_session)
{
	return emit(d, a, 0, user_id, type, data, origin_session);
}

rerr
events_tenant(db *d, arena *a, const char *type, json_object *data)
{
	return emit(d, a, 0, 0, type, data, 0);
}

static size_t
add_ids(json_object *o, const char *key, const PGresult *rows)
{
	json_object *ids;
	int n = rows != NULL ? PQntuples(rows) : 0;

	if (n == 0)
		return 0;
	ids = json_object_new_array_ext(n);
	for (int i = 0; i < n; i++)
		json_object_array_add(ids, db_col_i64(rows, i, 0));
	json_object_object_add(o, key, ids);
	return (size_t)n;
}

rerr
events_session_ended(db *d, arena *a, int64_t user_id, const char *reason,
    bool all, const PGresult *sessions, const PGresult *tokens)
{
	json_object *o = json_object_new_object();
	size_t named = 0;

	json_object_object_add(o, "reason", json_object_new_string(reason));
	if (all)
		json_object_object_add(o, "all", json_object_new_boolean(1));
	named += add_ids(o, "session_ids", sessions);
	named += add_ids(o, "token_ids", tokens);
	if (!all && named == 0) {
		json_object_put(o);
		return R_SUCCESS;
	}
	return emit(d, a, 0, user_id, "session.ended", o, 0);
}

rerr
events_user_updated(db *d, arena *a, int64_t user_id)
{
	const char *p[1] = { arena_printf(a, "%" PRId64, user_id) };
	json_object *o;
	PGresult *res;
	rerr e;

	res = db_query(d, a, &e,
	    "SELECT id, name, display_name, avatar_url, role, suspended, "
	    "deleted_at IS NOT NULL FROM users WHERE id = $1",
	    1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return R_SUCCESS;
	o = json_object_new_object();
	json_object_object_add(o, "id", db_col_i64(res, 0, 0));
	json_object_object_add(o, "name", db_col_str(res, 0, 1));
	json_object_object_add(o, "display_name", db_col_str(res, 0, 2));
	json_object_object_add(o, "avatar_url", db_col_str(res, 0, 3));
	json_object_object_add(o, "role", db_col_str(res, 0, 4));
	json_object_object_add(o, "suspended", db_col_bool(res, 0, 5));
	json_object_object_add(o, "deleted", db_col_bool(res, 0, 6));
	return events_tenant(d, a, "user.updated", o);
}

unsigned
events_take_written(void)
{
	unsigned n = written;

	written = 0;
	return n;
}
