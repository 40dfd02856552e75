/* rooms: visibility, membership, system messages, the default room. */
#include "rooms.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "events.h"
#include "json.h"
#include "messages.h"
#include "token.h"

static const char *
num(arena *a, int64_t v)
{
	return arena_printf(a, "%" PRId64, v);
}

/* "{1,2,3}" for a bigint[] parameter. */
static const char *
id_array(arena *a, const int64_t *ids, size_t n)
{
	char *out = arena_alloc(a, n * 21 + 3), *p = out;

	*p++ = '{';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%" PRId64, i ? "," : "", ids[i]);
	*p++ = '}';
	*p = '\0';
	return out;
}

json_object *
rooms_row_json(const PGresult *res, int row)
{
	json_object *o = json_object_new_object();
	bool member = PQgetvalue(res, row, 15)[0] == 't';
	bool dm = strcmp(PQgetvalue(res, row, 1), "dm") == 0;
	bool other_deleted = dm && !PQgetisnull(res, row, 16) &&
	    PQgetvalue(res, row, 20)[0] == 't';

	json_object_object_add(o, "id", db_col_i64(res, row, 0));
	json_object_object_add(o, "kind", db_col_str(res, row, 1));
	json_object_object_add(o, "name", db_col_str(res, row, 2));
	json_object_object_add(o, "topic", db_col_str(res, row, 3));
	json_object_object_add(o, "owner_id", db_col_i64(res, row, 4));
	json_object_object_add(o, "managed", db_col_bool(res, row, 5));
	json_object_object_add(o, "max_members", db_col_i64(res, row, 6));
	json_object_object_add(o, "member_count", db_col_i64(res, row, 7));
	json_object_object_add(o, "has_password", db_col_bool(res, row, 8));
	json_object_object_add(
	    o, "invite_code", member && !dm ? db_col_str(res, row, 9) : NULL);
	json_object_object_add(o, "retention_hours", db_col_i64(res, row, 10));
	json_object_object_add(o, "archived", db_col_bool(res, row, 11));
	json_object_object_add(o, "is_default", db_col_bool(res, row, 12));
	json_object_object_add(o, "read_only",
	    json_object_new_boolean(
	        PQgetvalue(res, row, 11)[0] == 't' || other_deleted));
	if (dm && !PQgetisnull(res, row, 16)) {
		json_object *u = json_object_new_object();

		json_object_object_add(u, "id", db_col_i64(res, row, 16));
		json_object_object_add(u, "name", db_col_str(res, row, 17));
		json_object_object_add(
		    u, "display_name", db_col_str(res, row, 18));
		json_object_object_add(
		    u, "avatar_url", db_col_str(res, row, 19));
		json_object_object_add(u, "deleted", db_col_bool(res, row, 20));
		json_object_object_add(o, "dm_user", u);
	} else {
		json_object_object_add(o, "dm_user", NULL);
	}
	json_object_object_add(o, "created_at", db_col_str(res, row, 13));
	json_object_object_add(o, "updated_at", db_col_str(res, row, 14));
	return o;
}

rerr
rooms_json(req_ctx *c, int64_t id, json_object **out)
{
	const char *p[2] = { num(c->a, c->user.user_id), num(c->a, id) };
	PGresult *res;
	rerr e;

	res =
	    db_query(c->app->db, c->a, &e, ROOM_SELECT "WHERE r.id = $2", 2, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, "id", "no such room");
	*out = rooms_row_json(res, 0);
	return R_SUCCESS;
}

static rerr load(req_ctx *c, int64_t id, bool lock, bool check, room *out);

rerr
rooms_load(req_ctx *c, int64_t id, bool lock, room *out)
{
	return load(c, id, lock, true, out);
}

rerr
rooms_load_unchecked(req_ctx *c, int64_t id, bool lock, room *out)
{
	return load(c, id, lock, false, out);
}

static rerr
load(req_ctx *c, int64_t id, bool lock, bool check, room *out)
{
	const char *p[2] = { num(c->a, id), num(c->a, c->user.user_id) };
	PGresult *res;
	rerr e;

	res = db_query(c->app->db, c->a, &e,
	    lock ? "SELECT r.id, r.kind, coalesce(r.owner_id, 0), r.managed, "
	           "r.archived, r.is_default, r.max_members, r.member_count, "
	           "r.password_hash, EXISTS (SELECT 1 FROM room_members "
	           "WHERE room_id = r.id AND user_id = $2), r.kind = 'dm' AND "
	           "EXISTS (SELECT 1 FROM room_members om JOIN users u ON "
	           "u.id = om.user_id WHERE om.room_id = r.id AND om.user_id "
	           "<> $2 AND u.deleted_at IS NOT NULL) FROM rooms r "
	           "WHERE r.id = $1 FOR UPDATE OF r"
	         : "SELECT r.id, r.kind, coalesce(r.owner_id, 0), r.managed, "
	           "r.archived, r.is_default, r.max_members, r.member_count, "
	           "r.password_hash, EXISTS (SELECT 1 FROM room_members "
	           "WHERE room_id = r.id AND user_id = $2), r.kind = 'dm' AND "
	           "EXISTS (SELECT 1 FROM room_members om JOIN users u ON "
	           "u.id = om.user_id WHERE om.room_id = r.id AND om.user_id "
	           "<> $2 AND u.deleted_at IS NOT NULL) FROM rooms r "
	           "WHERE r.id = $1",
	    2, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, "id", "no such room");
	memset(out, 0, sizeof(*out));
	out->id = id;
	snprintf(out->kind, sizeof(out->kind), "%s", PQgetvalue(res, 0, 1));
	out->owner_id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	out->managed = PQgetvalue(res, 0, 3)[0] == 't';
	out->archived = PQgetvalue(res, 0, 4)[0] == 't';
	out->is_default = PQgetvalue(res, 0, 5)[0] == 't';
	out->max_members = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
	out->member_count = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
	out->password_hash = PQgetisnull(res, 0, 8)
	    ? NULL
	    : arena_strdup(c->a, PQgetvalue(res, 0, 8));
	out->is_member = PQgetvalue(res, 0, 9)[0] == 't';
	out->dm_other_deleted = PQgetvalue(res, 0, 10)[0] == 't';
	/* Outsiders must not learn that a private room or DM exists;
	 * admins may see private rooms (to manage them), never DMs. */
	if (check && !out->is_member && strcmp(out->kind, "public") != 0 &&
	    !(c->user.admin && strcmp(out->kind, "private") == 0))
		return fail(c, R_NOT_FOUND, "id", "no such room");
	return R_SUCCESS;
}

rerr
rooms_require_member(req_ctx *c, const room *r)
{
	if (r->is_member)
		return R_SUCCESS;
	if (strcmp(r->kind, "public") != 0)
		return fail(c, R_NOT_FOUND, "id", "no such room");
	return fail(c, R_NOT_MEMBER, NULL, NULL);
}

rerr
rooms_require_writable(req_ctx *c, const room *r)
{
	if (r->archived)
		return fail(c, R_FORBIDDEN, NULL, "this room is archived");
	if (r->dm_other_deleted)
		return fail(c, R_FORBIDDEN, NULL,
		    "this conversation is read-only: the other account was "
		    "deleted");
	return R_SUCCESS;
}

bool
rooms_can_manage(req_ctx *c, const room *r)
{
	return c->user.admin ||
	    (r->owner_id != 0 && r->owner_id == c->user.user_id);
}

/* Posts a system message and its event; text is the human summary. */
static rerr
system_message(db *d, arena *a, int64_t room_id, const char *event,
    int64_t actor, const int64_t *ids, size_t n, const char *text)
{
	json_object *data = json_object_new_object(), *list, *msg;
	const char *p[2];
	PGresult *res;
	rerr e;

	list = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(list, json_i64(ids[i]));
	json_object_object_add(data, "event", json_str(event));
	json_object_object_add(data, "user_ids", list);
	json_object_object_add(
	    data, "actor_id", actor ? json_i64(actor) : NULL);
	json_object_object_add(data, "text", json_str(text));
	p[0] = num(a, room_id);
	p[1] = json_to_arena(a, data, NULL);
	json_object_put(data);
	res = db_query(d, a, &e,
	    "INSERT INTO messages (room_id, author_id, type, data) "
	    "VALUES ($1, NULL, 'system', $2::jsonb) RETURNING id",
	    2, p);
	if (res == NULL)
		return e;
	if ((e = messages_get_json(
	         d, a, strtoll(PQgetvalue(res, 0, 0), NULL, 10), 0, &msg)) !=
	    R_SUCCESS)
		return e;
	return events_room(d, a, room_id, "message.created", msg);
}

static json_object *
membership_event(int64_t room_id, const int64_t *ids, size_t n, int64_t by)
{
	json_object *o = json_object_new_object(),
	            *list = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(list, json_i64(ids[i]));
	json_object_object_add(o, "room_id", json_i64(room_id));
	json_object_object_add(o, "user_ids", list);
	json_object_object_add(o, "by", by ? json_i64(by) : NULL);
	return o;
}

/* Inserts members already vetted; count, system message, event. */
static rerr
insert_members(db *d, arena *a, int64_t room_id, const int64_t *ids, size_t n,
    const char *first_name, int64_t by)
{
	const char *p[2] = { num(a, room_id), id_array(a, ids, n) };
	const char *text;
	rerr e;

	if (db_query(d, a, &e,
	        "INSERT INTO room_members (room_id, user_id) "
	        "SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
	        2, p) == NULL ||
	    db_query(d, a, &e,
	        "UPDATE rooms SET member_count = (SELECT count(*) FROM "
	        "room_members WHERE room_id = $1), archived = false "
	        "WHERE id = $1",
	        1, p) == NULL)
		return e;
	text = n == 1 ? arena_printf(a, "%s joined", first_name)
	              : arena_printf(a, "%zu people joined", n);
	if ((e = system_message(d, a, room_id, "joined", by, ids, n, text)) !=
	    R_SUCCESS)
		return e;
	return events_room(d, a, room_id, "member.joined",
	    membership_event(room_id, ids, n, by));
}

rerr
rooms_add_members(req_ctx *c, room *r, const int64_t *ids, size_t n, int64_t by,
    int64_t **added, size_t *n_added)
{
	const settings *s;
	const char *p[2];
	PGresult *res;
	int64_t *fresh;
	const char *first_name = "";
	size_t k = 0;
	rerr e;

	*added = NULL;
	*n_added = 0;
	if ((s = req_settings(c, &e)) == NULL)
		return e;
	p[0] = num(c->a, r->id);
	p[1] = id_array(c->a, ids, n);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT u.id, u.name, u.deleted_at IS NULL, "
	    "EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 "
	    "AND user_id = u.id), (SELECT count(*) FROM room_members "
	    "WHERE user_id = u.id) FROM users u WHERE u.id = ANY "
	    "($2::bigint[]) "
	    "ORDER BY u.id FOR UPDATE OF u",
	    2, p);
	if (res == NULL)
		return e;
	fresh = arena_calloc(c->a, n ? n : 1, sizeof(*fresh));
	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (int row = 0; row < PQntuples(res); row++) {
			if (strtoll(PQgetvalue(res, row, 0), NULL, 10) !=
			    ids[i])
				continue;
			found = PQgetvalue(res, row, 2)[0] == 't';
			if (!found)
				break;
			if (PQgetvalue(res, row, 3)[0] == 't')
				break; /* already a member */
			for (size_t j = 0; j < k; j++)
				if (fresh[j] == ids[i])
					goto next;
			if (strtoll(PQgetvalue(res, row, 4), NULL, 10) >=
			    s->rooms_per_user)
				return fail(c, R_CONFLICT, "user_ids",
				    "user %" PRId64 " is in %" PRId64
				    " rooms already, the most allowed",
				    ids[i], s->rooms_per_user);
			if (k == 0)
				first_name =
				    arena_strdup(c->a, PQgetvalue(res, row, 1));
			fresh[k++] = ids[i];
			break;
		}
		if (!found)
			return fail(c, R_NOT_FOUND, "user_ids",
			    "user %" PRId64 " does not exist", ids[i]);
	next:;
	}
	if (k == 0)
		return R_SUCCESS;
	if (r->max_members > 0 && r->member_count + (int64_t)k > r->max_members)
		return fail(c, R_ROOM_FULL, NULL,
		    "the room holds at most %" PRId64 " members",
		    r->max_members);
	if ((e = insert_members(c->app->db, c->a, r->id, fresh, k, first_name,
	         by)) != R_SUCCESS)
		return e;
	r->member_count += (int64_t)k;
	r->archived = false;
	*added = fresh;
	*n_added = k;
	return R_SUCCESS;
}

rerr
rooms_remove_member(req_ctx *c, room *r, int64_t uid, int64_t by)
{
	const char *p[2] = { num(c->a, r->id), num(c->a, uid) };
	PGresult *res;
	const char *name, *text;
	rerr e;

	res = db_query(c->app->db, c->a, &e,
	    "DELETE FROM room_members rm USING users u WHERE rm.room_id = $1 "
	    "AND rm.user_id = $2 AND u.id = rm.user_id RETURNING u.name",
	    2, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(
		    c, R_NOT_FOUND, "user_id", "not a member of this room");
	name = arena_strdup(c->a, PQgetvalue(res, 0, 0));
	/* Ownership passes to the longest-standing member; an empty room
	 * is archived. */
	res = db_query(c->app->db, c->a, &e,
	    "UPDATE rooms SET member_count = member_count - 1, "
	    "owner_id = CASE WHEN owner_id = $2 THEN (SELECT user_id FROM "
	    "room_members WHERE room_id = $1 ORDER BY joined_at, user_id "
	    "LIMIT 1) ELSE owner_id END, archived = archived OR "
	    "member_count - 1 = 0, updated_at = now() WHERE id = $1 "
	    "RETURNING archived, member_count",
	    2, p);
	if (res == NULL)
		return e;
	r->member_count--;
	text = by && by != uid ? arena_printf(c->a, "%s was removed", name)
	                       : arena_printf(c->a, "%s left", name);
	if ((e = system_message(c->app->db, c->a, r->id,
	         by ? "removed" : "left", by, &uid, 1, text)) != R_SUCCESS ||
	    (e = events_room(c->app->db, c->a, r->id, "member.left",
	         membership_event(r->id, &uid, 1, by))) != R_SUCCESS ||
	    (e = events_user(c->app->db, c->a, uid, "member.left",
	         membership_event(r->id, &uid, 1, by))) != R_SUCCESS)
		return e;
	if (PQgetvalue(res, 0, 0)[0] == 't' && !r->archived) {
		json_object *d = json_object_new_object();

		r->archived = true;
		json_object_object_add(d, "room_id", json_i64(r->id));
		if ((e = events_room(c->app->db, c->a, r->id, "room.archived",
		         d)) != R_SUCCESS)
			return e;
	}
	return R_SUCCESS;
}

rerr
rooms_join_default(db *d, arena *a, const settings *s, int64_t uid)
{
	const char *p[2];
	PGresult *res;
	int64_t room_id;
	rerr e;

	p[0] = s->default_room_name;
	p[1] = token_random_b64(a, 9);
	if (db_query(d, a, &e,
	        "INSERT INTO rooms (kind, name, max_members, is_default, "
	        "invite_code) VALUES ('public', $1, 0, true, $2) "
	        "ON CONFLICT (is_default) WHERE is_default DO NOTHING",
	        2, p) == NULL)
		return e;
	res = db_query(d, a, &e,
	    "SELECT id FROM rooms WHERE is_default FOR UPDATE", 0, NULL);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return R_INTERNAL;
	room_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	p[0] = num(a, uid);
	res = db_query(d, a, &e, "SELECT name FROM users WHERE id = $1", 1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return R_NOT_FOUND;
	return insert_members(
	    d, a, room_id, &uid, 1, arena_strdup(a, PQgetvalue(res, 0, 0)), 0);
}
