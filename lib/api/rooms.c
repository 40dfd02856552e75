/* api/rooms: rooms, membership, invite codes and direct messages. */
#include "api.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../events.h"
#include "../messages.h"
#include "../password.h"
#include "../rooms.h"
#include "../stream.h"
#include "../token.h"
#include "../users.h"

#define ROOM_NAME_MAX 50
#define TOPIC_MAX 250
#define MAX_MEMBERS_CAP 100000
#define RETENTION_MAX 87600
#define ADD_MAX_IDS 100

static const char *const kinds[] = { "public", "private", NULL };

static int64_t
room_id(req_ctx *c)
{
	return router_param(&c->match, "id")->num;
}

/* Answers with the room object. */
static rerr
reply_room(req_ctx *c, int status, int64_t id)
{
	json_object *o;
	rerr e;

	if ((e = rooms_json(c, id, &o)) != R_SUCCESS)
		return e;
	return reply_json(c, status, o);
}

static rerr
room_event(req_ctx *c, int64_t id, const char *type)
{
	json_object *o;
	rerr e;

	if ((e = rooms_json(c, id, &o)) != R_SUCCESS)
		return e;
	/* The viewer-specific parts are not for everyone. */
	json_object_object_add(o, "invite_code", NULL);
	if (strcmp(type, "room.created") == 0) {
		/* Who is in it from the start (the creator; both people of a
		 * DM): their open event streams add the room on this event
		 * (docs/realtime.md), so nothing of the new room is missed. */
		const char *p[1] = { api_id(c, id) };
		PGresult *res = db_query(c->app->db, c->a, &e,
		    "SELECT user_id FROM room_members WHERE room_id = $1 "
		    "ORDER BY user_id",
		    1, p);
		json_object *ids;

		if (res == NULL) {
			json_object_put(o);
			return e;
		}
		ids = json_object_new_array();
		for (int i = 0; i < PQntuples(res); i++)
			json_object_array_add(ids, db_col_i64(res, i, 0));
		json_object_object_add(o, "member_ids", ids);
	}
	return events_room(c->app->db, c->a, id, type, o);
}

/* Checks a room password against the room; 403 with field password. */
static rerr
check_password(req_ctx *c, const room *r)
{
	const char *pw = NULL;
	size_t len = 0;
	json_err je = { 0 };
	rerr e;

	/* A malformed password is a bad request whether or not the room
	 * has one; a missing or wrong one for a room that has one is 403. */
	if ((e = json_get_string(c->body, "password", false, 0, 1024,
	         JSTR_ALLOW_NUL | JSTR_MULTILINE, &pw, &len, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if (r->password_hash == NULL)
		return R_SUCCESS;
	if (pw == NULL || !password_verify(r->password_hash, pw, len))
		return fail(
		    c, R_FORBIDDEN, "password", "this room needs its password");
	return R_SUCCESS;
}

static rerr
my_room_count(req_ctx *c, int64_t *n)
{
	const char *p[1] = { api_id(c, c->user.user_id) };
	PGresult *res;
	rerr e;

	res = db_query(c->app->db, c->a, &e,
	    "SELECT count(*) FROM room_members WHERE user_id = $1", 1, p);
	if (res == NULL)
		return e;
	*n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	return R_SUCCESS;
}

rerr
api_rooms_list(req_ctx *c)
{
	const char *p[2] = { api_id(c, c->user.user_id), NULL };
	json_object *list, *answer, *last = NULL;
	PGresult *res, *msgs = NULL;
	char *ids;
	size_t len = 0;
	stream_cursor cur;
	char cursor[STREAM_CURSOR_MAX];
	bool have_cursor;
	int n;
	rerr e;

	/* The cursor is taken BEFORE the state is read: a client that loads
	 * this list and then subscribes from event_cursor may see an event
	 * twice, never miss one. Without Redis the list still loads. */
	have_cursor =
	    stream_head(c->app->kv, c->a, c->tenant.id, &cur) == R_SUCCESS;
	if (have_cursor)
		stream_cursor_format(&cur, cursor);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT " ROOM_FIELDS ", me.last_read_message_id, "
	    "(SELECT count(*) FROM messages x WHERE x.room_id = r.id "
	    "AND x.id > me.last_read_message_id AND x.deleted_at IS NULL "
	    "AND x.type <> 'system' AND x.author_id IS DISTINCT FROM $1), "
	    "(SELECT count(*) FROM message_mentions mm WHERE mm.user_id = $1 "
	    "AND mm.room_id = r.id AND mm.message_id > "
	    "me.last_read_message_id), "
	    "(SELECT max(id) FROM messages WHERE room_id = r.id) AS "
	    "last_id" ROOM_FROM "WHERE me.user_id IS NOT NULL "
	    "ORDER BY last_id DESC NULLS LAST, r.id DESC",
	    1, p);
	if (res == NULL)
		return e;
	n = PQntuples(res);
	/* The last messages of all rooms in one more query: no N+1. */
	ids = arena_alloc(c->a, (size_t)n * 21 + 3);
	ids[len++] = '{';
	for (int i = 0; i < n; i++)
		if (!PQgetisnull(res, i, ROOM_COLUMNS + 3))
			len += (size_t)sprintf(ids + len, "%s%s",
			    len > 1 ? "," : "",
			    PQgetvalue(res, i, ROOM_COLUMNS + 3));
	ids[len++] = '}';
	ids[len] = '\0';
	if (len > 2) {
		p[1] = ids;
		msgs = db_query(c->app->db, c->a, &e,
		    MESSAGE_SELECT
		    "WHERE m.id = ANY ($2::bigint[]) AND $1 = $1",
		    2, p);
		if (msgs == NULL)
			return e;
	}
	list = json_object_new_array();
	for (int i = 0; i < n; i++) {
		json_object *o = rooms_row_json(res, i);

		json_object_object_add(o, "last_read_message_id",
		    json_i64(
		        strtoll(PQgetvalue(res, i, ROOM_COLUMNS), NULL, 10)));
		json_object_object_add(o, "unread_count",
		    json_i64(strtoll(
		        PQgetvalue(res, i, ROOM_COLUMNS + 1), NULL, 10)));
		json_object_object_add(o, "mention_count",
		    json_i64(strtoll(
		        PQgetvalue(res, i, ROOM_COLUMNS + 2), NULL, 10)));
		last = NULL;
		for (int k = 0; msgs && k < PQntuples(msgs); k++)
			if (strcmp(PQgetvalue(msgs, k, 0),
			        PQgetvalue(res, i, ROOM_COLUMNS + 3)) == 0)
				last = messages_row_json(
				    c->a, msgs, k, c->user.user_id);
		json_object_object_add(o, "last_message", last);
		json_object_array_add(list, o);
	}
	answer = json_object_new_object();
	json_object_object_add(answer, "rooms", list);
	json_object_object_add(
	    answer, "event_cursor", have_cursor ? json_str(cursor) : NULL);
	return reply_json(c, 200, answer);
}

rerr
api_rooms_discover(req_ctx *c)
{
	const char *p[4], *q;
	json_object *list;
	int64_t after, limit;
	size_t qlen;
	PGresult *res;
	int n;
	rerr e;

	if ((e = api_query_int(c, "limit", 1, 100, 50, &limit)) != R_SUCCESS ||
	    (e = api_query_int(c, "after", 0, 9007199254740991LL, 0, &after)) !=
	        R_SUCCESS)
		return e;
	q = http_param(c->req, "q", &qlen);
	if (q != NULL && (qlen == 0 || qlen != strlen(q) || qlen > 200))
		return fail(
		    c, R_VALIDATION, "q", "q must be 1 to 50 characters");
	p[0] = api_id(c, c->user.user_id);
	p[1] = api_id(c, after);
	p[2] = api_id(c, limit + 1);
	p[3] = q ? api_like_prefix(c, q) : NULL;
	res = db_query(c->app->db, c->a, &e,
	    ROOM_SELECT "WHERE r.kind = 'public' AND NOT r.archived "
	                "AND r.id > $2 AND ($4::text IS NULL OR "
	                "lower(r.name) LIKE lower($4)) ORDER BY r.id LIMIT $3",
	    4, p);
	if (res == NULL)
		return e;
	n = PQntuples(res);
	list = json_object_new_array();
	for (int i = 0; i < n && i < limit; i++)
		json_object_array_add(list, rooms_row_json(res, i));
	return api_reply_page(c, "rooms", list, res, n, limit);
}

/* Reads the optional room fields shared by create and update. Each
 * *set_x tells whether the body has the key (null included). */
typedef struct room_fields {
	const char *name, *topic, *password;
	size_t password_len;
	int64_t max_members, retention_hours;
	bool archived, managed;
	bool set_name, set_topic, set_password, set_max, set_retention,
	    set_archived, set_managed;
} room_fields;

static bool
has(req_ctx *c, const char *key, bool *is_null)
{
	json_object *v;
	bool present = json_object_object_get_ex(c->body, key, &v);

	*is_null = present && v == NULL;
	return present;
}

static rerr
read_fields(req_ctx *c, room_fields *f)
{
	json_err je = { 0 };
	bool null;
	rerr e;

	memset(f, 0, sizeof(*f));
	if ((f->set_name = has(c, "name", &null)) &&
	    (e = json_get_string(c->body, "name", true, 1, ROOM_NAME_MAX,
	         JSTR_NOT_BLANK, &f->name, NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((f->set_topic = has(c, "topic", &null)) && !null &&
	    (e = json_get_string(c->body, "topic", true, 0, TOPIC_MAX,
	         JSTR_MULTILINE, &f->topic, NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((f->set_password = has(c, "password", &null)) && !null) {
		if ((e = json_get_string(c->body, "password", true, 1, 1024,
		         JSTR_ALLOW_NUL | JSTR_MULTILINE, &f->password,
		         &f->password_len, &je)) != R_SUCCESS)
			return JSON_FAIL(c, e, je);
		if (f->password_len > 1024 ||
		    memchr(f->password, '\0', f->password_len))
			return fail(c, R_VALIDATION, "password",
			    "password must be 1 to 1024 bytes without NUL");
	}
	if ((f->set_max = has(c, "max_members", &null)) &&
	    (e = json_get_int(c->body, "max_members", true, 0, MAX_MEMBERS_CAP,
	         &f->max_members, NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((f->set_retention = has(c, "retention_hours", &null)) && !null &&
	    (e = json_get_int(c->body, "retention_hours", true, 1,
	         RETENTION_MAX, &f->retention_hours, NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((f->set_archived = has(c, "archived", &null)) &&
	    (e = json_get_bool(c->body, "archived", true, &f->archived, NULL,
	         &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((f->set_managed = has(c, "managed", &null)) &&
	    (e = json_get_bool(c->body, "managed", true, &f->managed, NULL,
	         &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if (f->set_managed && !c->user.admin)
		return fail(c, R_FORBIDDEN, "managed",
		    "only admins manage membership of managed rooms");
	return R_SUCCESS;
}

static const char *
hash_or_null(req_ctx *c, const room_fields *f, rerr *e)
{
	char *hash;

	*e = R_SUCCESS;
	if (f->password == NULL)
		return NULL;
	hash = arena_alloc(c->a, PASSWORD_HASH_MAX);
	if ((*e = password_hash(f->password, f->password_len, hash)) !=
	    R_SUCCESS)
		return NULL;
	return hash;
}

rerr
api_room_create(req_ctx *c)
{
	static const char *const allowed[] = { "name", "kind", "topic",
		"max_members", "password", "retention_hours", "managed", NULL };
	const settings *s;
	room_fields f;
	json_err je = { 0 };
	const char *p[9];
	PGresult *res;
	int64_t id, count;
	int kind;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = json_get_enum(c->body, "kind", true, kinds, &kind, &je)) !=
	        R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((e = read_fields(c, &f)) != R_SUCCESS)
		return e;
	if (!f.set_name)
		return fail(c, R_VALIDATION, "name", "name is required");
	if ((s = req_settings(c, &e)) == NULL ||
	    (e = my_room_count(c, &count)) != R_SUCCESS)
		return e;
	if (count >= s->rooms_per_user)
		return fail(c, R_CONFLICT, NULL,
		    "you are in %" PRId64 " rooms, the most allowed", count);
	p[0] = kinds[kind];
	p[1] = f.name;
	p[2] = f.topic;
	p[3] = api_id(c, c->user.user_id);
	p[4] = f.managed ? "true" : "false";
	p[5] = api_id(c, f.set_max ? f.max_members : s->default_max_members);
	if ((p[6] = hash_or_null(c, &f, &e)) == NULL && e != R_SUCCESS)
		return e;
	p[7] = token_random_b64(c->a, 9);
	p[8] = f.set_retention && f.retention_hours
	    ? api_id(c, f.retention_hours)
	    : NULL;
	res = db_query(c->app->db, c->a, &e,
	    "INSERT INTO rooms (kind, name, topic, owner_id, managed, "
	    "max_members, password_hash, invite_code, retention_hours, "
	    "member_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) "
	    "RETURNING id",
	    9, p);
	if (res == NULL)
		return e;
	id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	p[0] = api_id(c, id);
	if (db_query(c->app->db, c->a, &e,
	        "INSERT INTO room_members (room_id, user_id) VALUES ($1, $2)",
	        2, (const char *[]){ p[0], p[3] }) == NULL ||
	    (e = room_event(c, id, "room.created")) != R_SUCCESS)
		return e;
	return reply_room(c, 201, id);
}

rerr
api_room_get(req_ctx *c)
{
	room r;
	rerr e;

	if ((e = rooms_load(c, room_id(c), false, &r)) != R_SUCCESS)
		return e;
	return reply_room(c, 200, r.id);
}

rerr
api_room_patch(req_ctx *c)
{
	static const char *const allowed[] = { "name", "topic", "max_members",
		"password", "retention_hours", "archived", "managed", NULL };
	static const char *const not_null[] = { "name", "max_members",
		"archived", "managed", NULL };
	room_fields f;
	json_err je = { 0 };
	const char *p[14];
	bool was_archived;
	room r;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((e = api_reject_nulls(c, not_null)) != R_SUCCESS ||
	    (e = read_fields(c, &f)) != R_SUCCESS ||
	    (e = rooms_load(c, room_id(c), true, &r)) != R_SUCCESS)
		return e;
	if (strcmp(r.kind, "dm") == 0)
		return fail(
		    c, R_FORBIDDEN, NULL, "a direct message has no settings");
	if (!rooms_can_manage(c, &r))
		return fail(c, R_FORBIDDEN, NULL,
		    "only the room's owner or an admin may change it");
	was_archived = r.archived;
	p[0] = api_id(c, r.id);
	p[1] = f.set_name ? "t" : "f";
	p[2] = f.name;
	p[3] = f.set_topic ? "t" : "f";
	p[4] = f.topic;
	p[5] = f.set_max ? "t" : "f";
	p[6] = api_id(c, f.max_members);
	p[7] = f.set_password ? "t" : "f";
	if ((p[8] = hash_or_null(c, &f, &e)) == NULL && e != R_SUCCESS)
		return e;
	p[9] = f.set_retention ? "t" : "f";
	p[10] = f.retention_hours ? api_id(c, f.retention_hours) : NULL;
	p[11] = f.set_archived ? (f.archived ? "t" : "f") : NULL;
	p[12] = f.set_managed ? (f.managed ? "t" : "f") : NULL;
	p[13] = NULL;
	if (db_query(c->app->db, c->a, &e,
	        "UPDATE rooms SET "
	        "name = CASE WHEN $2::bool THEN $3 ELSE name END, "
	        "topic = CASE WHEN $4::bool THEN $5 ELSE topic END, "
	        "max_members = CASE WHEN $6::bool THEN $7::int ELSE "
	        "max_members END, "
	        "password_hash = CASE WHEN $8::bool THEN $9 ELSE password_hash "
	        "END, "
	        "retention_hours = CASE WHEN $10::bool THEN $11::int "
	        "ELSE retention_hours END, "
	        "archived = coalesce($12::bool, archived), "
	        "managed = coalesce($13::bool, managed), updated_at = now() "
	        "WHERE id = $1",
	        13, p) == NULL)
		return e;
	if (f.set_archived && f.archived && !was_archived) {
		json_object *d = json_object_new_object();

		json_object_object_add(d, "room_id", json_i64(r.id));
		if ((e = events_room(c->app->db, c->a, r.id, "room.archived",
		         d)) != R_SUCCESS)
			return e;
	} else if ((e = room_event(c, r.id, "room.updated")) != R_SUCCESS) {
		return e;
	}
	return reply_room(c, 200, r.id);
}

rerr
api_room_delete(req_ctx *c)
{
	const char *p[1];
	PGresult *res;
	room r;
	rerr e;

	if ((e = rooms_load(c, room_id(c), true, &r)) != R_SUCCESS)
		return e;
	if (strcmp(r.kind, "dm") == 0 || !rooms_can_manage(c, &r))
		return fail(c, R_FORBIDDEN, NULL,
		    "only the room's owner or an admin may delete it");
	p[0] = api_id(c, r.id);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT user_id FROM room_members WHERE room_id = $1", 1, p);
	if (res == NULL)
		return e;
	/* Former members hear of it on their own channel: the room's is
	 * gone with it. */
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *d = json_object_new_object();

		json_object_object_add(d, "room_id", json_i64(r.id));
		if ((e = events_user(c->app->db, c->a,
		         strtoll(PQgetvalue(res, i, 0), NULL, 10),
		         "room.deleted", d)) != R_SUCCESS)
			return e;
	}
	if (db_query(c->app->db, c->a, &e, "DELETE FROM rooms WHERE id = $1", 1,
	        p) == NULL)
		return e;
	c->res->status = 204;
	return R_SUCCESS;
}

/* Joins the signed-in user to r (locked) after the shared checks. */
static rerr
join(req_ctx *c, room *r)
{
	int64_t me = c->user.user_id, *added;
	size_t n;
	rerr e;

	if (r->is_member)
		return reply_room(c, 200, r->id);
	if (strcmp(r->kind, "dm") == 0)
		return fail(c, R_NOT_FOUND, "id", "no such room");
	if (r->managed && !c->user.admin)
		return fail(c, R_FORBIDDEN, NULL,
		    "membership of this room is managed by admins");
	if (r->archived)
		return fail(c, R_FORBIDDEN, NULL, "this room is archived");
	if ((e = check_password(c, r)) != R_SUCCESS ||
	    (e = rooms_add_members(c, r, &me, 1, 0, &added, &n)) != R_SUCCESS)
		return e;
	return reply_room(c, 200, r->id);
}

rerr
api_room_join(req_ctx *c)
{
	static const char *const allowed[] = { "password", NULL };
	json_err je = { 0 };
	room r;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((e = rooms_load(c, room_id(c), true, &r)) != R_SUCCESS)
		return e;
	if (!r.is_member && strcmp(r.kind, "public") != 0)
		return fail(c, R_NOT_FOUND, "id", "no such room");
	return join(c, &r);
}

rerr
api_rooms_join_by_code(req_ctx *c)
{
	static const char *const allowed[] = { "invite_code", "password",
		NULL };
	const char *code;
	json_err je = { 0 };
	PGresult *res;
	room r;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "invite_code", true, 1, 64, 0, &code,
	         NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT id FROM rooms WHERE invite_code = $1 AND kind <> 'dm'", 1,
	    &code);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(
		    c, R_NOT_FOUND, "invite_code", "no room has this code");
	if ((e = rooms_load_unchecked(
	         c, strtoll(PQgetvalue(res, 0, 0), NULL, 10), true, &r)) !=
	    R_SUCCESS)
		return e;
	return join(c, &r);
}

rerr
api_room_leave(req_ctx *c)
{
	room r;
	rerr e;

	if ((e = rooms_load(c, room_id(c), true, &r)) != R_SUCCESS ||
	    (e = rooms_require_member(c, &r)) != R_SUCCESS)
		return e;
	if (strcmp(r.kind, "dm") == 0)
		return fail(
		    c, R_FORBIDDEN, NULL, "a direct message cannot be left");
	if (r.managed)
		return fail(c, R_FORBIDDEN, NULL,
		    "membership of this room is managed by admins");
	if ((e = rooms_remove_member(c, &r, c->user.user_id, 0)) != R_SUCCESS)
		return e;
	c->res->status = 204;
	return R_SUCCESS;
}

rerr
api_room_members(req_ctx *c)
{
	const char *p[3];
	json_object *list;
	int64_t after, limit;
	PGresult *res;
	room r;
	int n;
	rerr e;

	if ((e = api_query_int(c, "limit", 1, 200, 100, &limit)) != R_SUCCESS ||
	    (e = api_query_int(c, "after", 0, 9007199254740991LL, 0, &after)) !=
	        R_SUCCESS ||
	    (e = rooms_load(c, room_id(c), false, &r)) != R_SUCCESS)
		return e;
	if (!c->user.admin && (e = rooms_require_member(c, &r)) != R_SUCCESS)
		return e;
	p[0] = api_id(c, r.id);
	p[1] = api_id(c, after);
	p[2] = api_id(c, limit + 1);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT " USER_COLUMNS_OF("u.") ", " DB_TS(
	        "rm.joined_at") ", "
	                        "u.id = coalesce(r.owner_id, 0) FROM "
	                        "room_members rm "
	                        "JOIN users u ON u.id = rm.user_id JOIN rooms "
	                        "r ON r.id = rm.room_id "
	                        "WHERE rm.room_id = $1 AND u.id > $2 ORDER BY "
	                        "u.id LIMIT $3",
	    3, p);
	if (res == NULL)
		return e;
	n = PQntuples(res);
	list = json_object_new_array();
	for (int i = 0; i < n && i < limit; i++) {
		json_object *m = json_object_new_object();
		int64_t uid = strtoll(PQgetvalue(res, i, 0), NULL, 10);

		json_object_object_add(m, "user",
		    users_row_json(
		        res, i, c->user.admin || uid == c->user.user_id));
		json_object_object_add(m, "role",
		    json_str(
		        PQgetvalue(res, i, 13)[0] == 't' ? "owner" : "member"));
		json_object_object_add(
		    m, "joined_at", json_str(PQgetvalue(res, i, 12)));
		json_object_array_add(list, m);
	}
	return api_reply_page(c, "members", list, res, n, limit);
}

rerr
api_room_members_add(req_ctx *c)
{
	static const char *const allowed[] = { "user_ids", NULL };
	json_object *v, *answer, *list;
	int64_t *ids, *added;
	json_err je = { 0 };
	size_t n, n_added;
	room r;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if (!json_object_object_get_ex(c->body, "user_ids", &v) ||
	    !json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) < 1 || n > ADD_MAX_IDS)
		return fail(c, R_VALIDATION, "user_ids",
		    "user_ids must list 1 to 100 user ids");
	ids = arena_calloc(c->a, n, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(v, i);

		if (!json_object_is_type(item, json_type_int) ||
		    (ids[i] = json_object_get_int64(item)) < 1 ||
		    ids[i] > 9007199254740991LL)
			return fail(c, R_VALIDATION, "user_ids",
			    "user_ids must be positive integer ids");
	}
	if ((e = rooms_load(c, room_id(c), true, &r)) != R_SUCCESS)
		return e;
	if (!c->user.admin && (e = rooms_require_member(c, &r)) != R_SUCCESS)
		return e;
	if (strcmp(r.kind, "dm") == 0)
		return fail(c, R_FORBIDDEN, NULL,
		    "a direct message has exactly two members");
	if (r.managed && !c->user.admin)
		return fail(c, R_FORBIDDEN, NULL,
		    "membership of this room is managed by admins");
	if ((e = rooms_require_writable(c, &r)) != R_SUCCESS ||
	    (e = rooms_add_members(c, &r, ids, n, c->user.user_id, &added,
	         &n_added)) != R_SUCCESS)
		return e;
	list = json_object_new_array();
	for (size_t i = 0; i < n_added; i++)
		json_object_array_add(list, json_i64(added[i]));
	answer = json_object_new_object();
	json_object_object_add(answer, "added", list);
	json_object_object_add(
	    answer, "member_count", json_i64(r.member_count));
	return reply_json(c, 200, answer);
}

rerr
api_room_member_remove(req_ctx *c)
{
	int64_t uid = router_param(&c->match, "user_id")->num;
	room r;
	rerr e;

	if ((e = rooms_load(c, room_id(c), true, &r)) != R_SUCCESS)
		return e;
	if (strcmp(r.kind, "dm") == 0 || !rooms_can_manage(c, &r) ||
	    (r.managed && !c->user.admin))
		return fail(c, R_FORBIDDEN, NULL,
		    "only the room's owner or an admin may remove members");
	if (uid == c->user.user_id)
		return fail(c, R_VALIDATION, "user_id",
		    "to leave, use POST /api/v1/rooms/{id}/leave");
	if ((e = rooms_remove_member(c, &r, uid, c->user.user_id)) != R_SUCCESS)
		return e;
	c->res->status = 204;
	return R_SUCCESS;
}

rerr
api_room_invite_code(req_ctx *c)
{
	const char *p[2];
	json_object *answer;
	room r;
	rerr e;

	if ((e = rooms_load(c, room_id(c), true, &r)) != R_SUCCESS)
		return e;
	if (strcmp(r.kind, "dm") == 0 || !rooms_can_manage(c, &r))
		return fail(c, R_FORBIDDEN, NULL,
		    "only the room's owner or an admin may change its invite "
		    "code");
	p[0] = api_id(c, r.id);
	p[1] = token_random_b64(c->a, 9);
	if (db_query(c->app->db, c->a, &e,
	        "UPDATE rooms SET invite_code = $2, updated_at = now() "
	        "WHERE id = $1",
	        2, p) == NULL ||
	    (e = room_event(c, r.id, "room.updated")) != R_SUCCESS)
		return e;
	answer = json_object_new_object();
	json_object_object_add(answer, "invite_code", json_str(p[1]));
	return reply_json(c, 200, answer);
}

rerr
api_dm_create(req_ctx *c)
{
	static const char *const allowed[] = { "user_id", NULL };
	int64_t other, me = c->user.user_id, count;
	const settings *s;
	json_err je = { 0 };
	const char *p[3];
	PGresult *res;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = json_get_int(c->body, "user_id", true, 1, 9007199254740991LL,
	         &other, NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if (other == me)
		return fail(c, R_VALIDATION, "user_id",
		    "a direct message needs another person");
	p[0] = api_id(c, other);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL", 1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, "user_id", "no such user");
	p[0] = arena_printf(c->a, "%" PRId64 ":%" PRId64,
	    me < other ? me : other, me < other ? other : me);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT id FROM rooms WHERE dm_key = $1", 1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) == 1)
		return reply_room(
		    c, 200, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
	if ((s = req_settings(c, &e)) == NULL ||
	    (e = my_room_count(c, &count)) != R_SUCCESS)
		return e;
	if (count >= s->rooms_per_user)
		return fail(c, R_CONFLICT, NULL,
		    "you are in %" PRId64 " rooms, the most allowed", count);
	res = db_query(c->app->db, c->a, &e,
	    "INSERT INTO rooms (kind, name, max_members, dm_key, member_count) "
	    "VALUES ('dm', '', 2, $1, 2) ON CONFLICT (dm_key) DO NOTHING "
	    "RETURNING id",
	    1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1) {
		/* Created by the other person a moment ago. */
		res = db_query(c->app->db, c->a, &e,
		    "SELECT id FROM rooms WHERE dm_key = $1", 1, p);
		if (res == NULL)
			return e;
		return reply_room(
		    c, 200, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
	}
	p[0] = arena_strdup(c->a, PQgetvalue(res, 0, 0));
	p[1] = api_id(c, me);
	p[2] = api_id(c, other);
	if (db_query(c->app->db, c->a, &e,
	        "INSERT INTO room_members (room_id, user_id) VALUES ($1, $2), "
	        "($1, $3)",
	        3, p) == NULL ||
	    (e = room_event(c, strtoll(p[0], NULL, 10), "room.created")) !=
	        R_SUCCESS)
		return e;
	return reply_room(c, 201, strtoll(p[0], NULL, 10));
}
