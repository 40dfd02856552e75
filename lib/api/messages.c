/* api/messages: sending, paging, editing, deleting, pins, reactions,
 * read markers and visitor messages. */
#include "api.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../events.h"
#include "../messages.h"
#include "../ratelimit.h"
#include "../rooms.h"
#include "../users.h"

static const char *const types[] = { "text", "drawing", "image", NULL };

typedef struct msg {
	int64_t id, room_id, author_id;
	bool deleted, text, in_window;
	room r;
} msg;

/* Loads message id (locked) and its room for the signed-in member. A
 * message of a room the user may not see is simply not found. */
static rerr load_message_as(req_ctx *c, int64_t id, bool moderating, msg *m);

static rerr
load_message(req_ctx *c, int64_t id, msg *m)
{
	return load_message_as(c, id, false, m);
}

/* Every action on a deleted message but deleting it again answers this
 * (docs/rooms.md): the message is gone, whatever the action. field names
 * where the id came from ("id" in the path, "reply_to" in a send). */
static rerr
deleted_message(req_ctx *c, const char *field)
{
	return fail(c, R_NOT_FOUND, field, "this message was deleted");
}

/* Loads room_id (a message's room) into *r and requires membership, as
 * reading the room's messages does: NOT_MEMBER for a public room, and for
 * a private room or DM the same 404 as a message that does not exist, so
 * that a message id tells an outsider nothing. */
static rerr
message_room(req_ctx *c, int64_t room_id, bool moderating, room *r)
{
	rerr e = rooms_load(c, room_id, false, r);

	if (e == R_SUCCESS && !(moderating && c->user.admin))
		e = rooms_require_member(c, r);
	if (e == R_NOT_FOUND)
		return fail(c, R_NOT_FOUND, "id", "no such message");
	return e;
}

/* moderating: an admin acts on a room without being in it (deleting a
 * message); everyone else must be a member. */
static rerr
load_message_as(req_ctx *c, int64_t id, bool moderating, msg *m)
{
	const settings *s;
	const char *p[2];
	PGresult *res;
	rerr e;

	if ((s = req_settings(c, &e)) == NULL)
		return e;
	p[0] = api_id(c, id);
	p[1] = api_id(c, s->edit_window_minutes);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT room_id, coalesce(author_id, 0), deleted_at IS NOT NULL, "
	    "type = 'text', $2::int = 0 OR created_at > now() - "
	    "make_interval(mins => $2::int) FROM messages WHERE id = $1 "
	    "FOR UPDATE",
	    2, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, "id", "no such message");
	m->id = id;
	m->room_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	m->author_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	m->deleted = PQgetvalue(res, 0, 2)[0] == 't';
	m->text = PQgetvalue(res, 0, 3)[0] == 't';
	m->in_window = PQgetvalue(res, 0, 4)[0] == 't';
	return message_room(c, m->room_id, moderating, &m->r);
}

/* A message for the room's event: without the author-only fields. */
static rerr
message_event(req_ctx *c, int64_t id, const char *type)
{
	json_object *o;
	rerr e;

	if ((e = messages_get_json(c->app->db, c->a, id, 0, &o)) != R_SUCCESS)
		return e;
	return events_room(c->app->db, c->a,
	    json_object_get_int64(json_object_object_get(o, "room_id")), type,
	    o);
}

static rerr
reply_message(req_ctx *c, int status, int64_t id)
{
	json_object *o;
	rerr e;

	if ((e = messages_get_json(
	         c->app->db, c->a, id, c->user.user_id, &o)) != R_SUCCESS)
		return e;
	return reply_json(c, status, o);
}

static bool
client_id_ok(const char *s, size_t n)
{
	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		        s[i] == '_'))
			return false;
	return true;
}

/* The message I sent before with client_msg_id cid, if any: answered
 * with 200 (*found set) when it is in room_id, CONFLICT when it is in
 * another room; R_SUCCESS with nothing answered when there is none. */
static rerr
answer_retry(req_ctx *c, int64_t room_id, const char *cid, bool *found)
{
	const char *p[2] = { api_id(c, c->user.user_id), cid };
	PGresult *res;
	rerr e;

	*found = false;
	res = db_query(c->app->db, c->a, &e,
	    "SELECT id, room_id FROM messages WHERE author_id = $1 "
	    "AND client_msg_id = $2",
	    2, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return R_SUCCESS;
	if (strtoll(PQgetvalue(res, 0, 1), NULL, 10) != room_id)
		return fail(c, R_CONFLICT, "client_msg_id",
		    "this client_msg_id was used for another room");
	*found = true;
	return reply_message(c, 200, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
}

rerr
api_messages_post(req_ctx *c)
{
	static const char *const allowed[] = { "type", "content", "reply_to",
		"client_msg_id", NULL };
	const char *text, *data, *cid = NULL, *p[7];
	int64_t reply_to = 0, rid = router_param(&c->match, "id")->num;
	const settings *s;
	json_err je = { 0 };
	bool has_reply;
	size_t cid_len;
	PGresult *res;
	rl_result rl;
	int type;
	room r;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = json_get_enum(c->body, "type", false, types, &type, &je)) !=
	        R_SUCCESS ||
	    (e = json_get_int(c->body, "reply_to", false, 1, 9007199254740991LL,
	         &reply_to, &has_reply, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "client_msg_id", false, 1, 64, 0,
	         &cid, &cid_len, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if (cid != NULL && !client_id_ok(cid, cid_len))
		return fail(c, R_VALIDATION, "client_msg_id",
		    "client_msg_id must be 1 to 64 of [A-Za-z0-9_-]");
	if (type < 0)
		type = 0; /* absent or null: "text", what scripts send */
	if ((s = req_settings(c, &e)) == NULL)
		return e;
	if ((e = messages_check_content(c->a, s, types[type], c->body, &text,
	         &data, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((e = rooms_load(c, rid, false, &r)) != R_SUCCESS ||
	    (e = rooms_require_member(c, &r)) != R_SUCCESS ||
	    (e = rooms_require_writable(c, &r)) != R_SUCCESS)
		return e;
	if (ratelimit_hit(c->app->kv, c->a, c->tenant.id, "send",
	        api_id(c, c->user.user_id), s->messages_per_10s, 10,
	        &rl) == R_SUCCESS) {
		req_ratelimit_headers(c, &rl);
		if (rl.limited)
			return fail(c, R_RATE_LIMITED, NULL,
			    "at most %" PRId64 " messages per 10 seconds",
			    rl.limit);
	}
	p[0] = api_id(c, r.id);
	if (has_reply) {
		p[1] = api_id(c, reply_to);
		res = db_query(c->app->db, c->a, &e,
		    "SELECT deleted_at IS NOT NULL FROM messages WHERE id = $2 "
		    "AND room_id = $1",
		    2, p);
		if (res == NULL)
			return e;
		if (PQntuples(res) != 1)
			return fail(c, R_VALIDATION, "reply_to",
			    "reply_to must be a message of this room");
		if (PQgetvalue(res, 0, 0)[0] == 't') {
			bool found = false;

			/* A retried send whose reply target was deleted
			 * meanwhile still gets its original. */
			if (cid != NULL &&
			    (e = answer_retry(c, r.id, cid, &found)) !=
			        R_SUCCESS)
				return e;
			return found ? R_SUCCESS
			             : deleted_message(c, "reply_to");
		}
	}
	p[1] = api_id(c, c->user.user_id);
	p[2] = types[type];
	p[3] = text;
	p[4] = data;
	p[5] = has_reply ? api_id(c, reply_to) : NULL;
	p[6] = cid;
	res = db_query(c->app->db, c->a, &e,
	    "INSERT INTO messages (room_id, author_id, type, body, data, "
	    "reply_to, client_msg_id) VALUES ($1, $2, $3, $4, $5::jsonb, $6, "
	    "$7) "
	    "ON CONFLICT (author_id, client_msg_id) WHERE client_msg_id IS NOT "
	    "NULL "
	    "DO NOTHING RETURNING id",
	    7, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) == 0) {
		/* A retry of a send that already happened: the original. */
		bool found = false;

		if ((e = answer_retry(c, r.id, cid, &found)) != R_SUCCESS)
			return e;
		return found ? R_SUCCESS
		             : fail(c, R_CONFLICT, "client_msg_id",
		                   "this client_msg_id was used for another "
		                   "room");
	}
	{
		int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		json_object *o;

		if ((type == 0 &&
		        (e = messages_store_mentions(c->app->db, c->a, id, r.id,
		             c->user.user_id, text, false)) != R_SUCCESS) ||
		    (e = messages_get_json(c->app->db, c->a, id,
		         c->user.user_id, &o)) != R_SUCCESS)
			return e;
		/* Read once: the answer as the author sees it, then the event
		 * without the author-only client_msg_id. */
		reply_json(c, 201, json_object_get(o));
		json_object_object_add(o, "client_msg_id", NULL);
		return events_room(
		    c->app->db, c->a, r.id, "message.created", o);
	}
}

/* Reads one of before/after/around; R_SUCCESS with *which 0 when none. */
static rerr
read_cursor(req_ctx *c, int64_t room_id, int *which, int64_t *cursor)
{
	static const char *const names[] = { "before", "after", "around" };
	const char *p[2];
	PGresult *res;
	rerr e;

	*which = 0;
	for (int i = 0; i < 3; i++) {
		int64_t v;

		if (http_param(c->req, names[i], NULL) == NULL)
			continue;
		if (*which != 0)
			return fail(c, R_VALIDATION, names[i],
			    "use one of before, after and around");
		if ((e = api_query_int(c, names[i], 1, 9007199254740991LL, 0,
		         &v)) != R_SUCCESS)
			return e;
		*which = i + 1;
		*cursor = v;
	}
	if (*which == 0)
		return R_SUCCESS;
	p[0] = api_id(c, *cursor);
	p[1] = api_id(c, room_id);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT 1 FROM messages WHERE id = $1 AND room_id = $2", 2, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, names[*which - 1],
		    "no such message in this room");
	return R_SUCCESS;
}

/* Adds rows of res to list in order (reverse when desc), at most max. */
static void
add_rows(req_ctx *c, json_object *list, const PGresult *res, int max, bool desc)
{
	int n = PQntuples(res) < max ? PQntuples(res) : max;

	for (int i = 0; i < n; i++)
		json_object_array_add(list,
		    messages_row_json(
		        c->a, res, desc ? n - 1 - i : i, c->user.user_id));
}

rerr
api_messages_list(req_ctx *c)
{
	int64_t limit, cursor = 0, rid = router_param(&c->match, "id")->num;
	json_object *list, *answer;
	PGresult *res, *after = NULL;
	const char *p[3];
	int which, half;
	room r;
	rerr e;

	if ((e = api_query_int(c, "limit", 1, 100, 50, &limit)) != R_SUCCESS ||
	    (e = rooms_load(c, rid, false, &r)) != R_SUCCESS ||
	    (e = rooms_require_member(c, &r)) != R_SUCCESS ||
	    (e = read_cursor(c, r.id, &which, &cursor)) != R_SUCCESS)
		return e;
	p[0] = api_id(c, r.id);
	p[1] = api_id(c, cursor);
	half = which == 3 ? (int)limit / 2 : (int)limit;
	p[2] = api_id(c, half + 1);
	/* Newest first from the cursor backwards (no cursor: from the end),
	 * or oldest first after it; the array is always oldest first. */
	if (which == 2)
		res = db_query(c->app->db, c->a, &e,
		    MESSAGE_SELECT "WHERE m.room_id = $1 AND m.id > $2 "
		                   "ORDER BY m.id LIMIT $3",
		    3, p);
	else
		res = db_query(c->app->db, c->a, &e,
		    MESSAGE_SELECT
		    "WHERE m.room_id = $1 AND ($2 = 0 OR m.id < $2) "
		    "ORDER BY m.id DESC LIMIT $3",
		    3, p);
	if (res == NULL)
		return e;
	if (which == 3) {
		p[2] = api_id(c, limit - half + 1);
		after = db_query(c->app->db, c->a, &e,
		    MESSAGE_SELECT "WHERE m.room_id = $1 AND m.id >= $2 "
		                   "ORDER BY m.id LIMIT $3",
		    3, p);
		if (after == NULL)
			return e;
	}
	list = json_object_new_array();
	answer = json_object_new_object();
	if (which == 2) {
		add_rows(c, list, res, (int)limit, false);
		json_object_object_add(answer, "has_more",
		    json_object_new_boolean(PQntuples(res) > limit));
	} else {
		add_rows(c, list, res, half, true);
		json_object_object_add(answer, "has_more",
		    json_object_new_boolean(PQntuples(res) > half));
	}
	if (after != NULL) {
		add_rows(c, list, after, (int)limit - half, false);
		json_object_object_add(answer, "has_more_after",
		    json_object_new_boolean(PQntuples(after) > limit - half));
	}
	json_object_object_add(answer, "messages", list);
	return reply_json(c, 200, answer);
}

rerr
api_message_get(req_ctx *c)
{
	const char *p[1] = { api_id(c, router_param(&c->match, "id")->num) };
	PGresult *res;
	room r;
	rerr e;

	/* The object first (one query), then whether I may see it. */
	res = db_query(
	    c->app->db, c->a, &e, MESSAGE_SELECT "WHERE m.id = $1", 1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, "id", "no such message");
	if ((e = message_room(c, db_col_int(res, 0, 1), false, &r)) !=
	    R_SUCCESS)
		return e;
	return reply_json(
	    c, 200, messages_row_json(c->a, res, 0, c->user.user_id));
}

rerr
api_message_patch(req_ctx *c)
{
	static const char *const allowed[] = { "content", NULL };
	const char *text, *data, *p[2];
	const settings *s;
	json_err je = { 0 };
	msg m;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((s = req_settings(c, &e)) == NULL ||
	    (e = load_message(c, router_param(&c->match, "id")->num, &m)) !=
	        R_SUCCESS)
		return e;
	if (m.author_id != c->user.user_id)
		return fail(
		    c, R_FORBIDDEN, NULL, "only its author edits a message");
	if ((e = rooms_require_writable(c, &m.r)) != R_SUCCESS)
		return e;
	if (m.deleted)
		return deleted_message(c, "id");
	if (!m.text)
		return fail(c, R_VALIDATION, "content",
		    "only text messages are edited");
	if (!m.in_window)
		return fail(c, R_FORBIDDEN, NULL,
		    "messages can be edited for %" PRId64 " minutes",
		    s->edit_window_minutes);
	if ((e = messages_check_content(
	         c->a, s, "text", c->body, &text, &data, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	p[0] = api_id(c, m.id);
	p[1] = text;
	if (db_query(c->app->db, c->a, &e,
	        "UPDATE messages SET body = $2, edited_at = now() WHERE id = "
	        "$1",
	        2, p) == NULL ||
	    (e = messages_store_mentions(c->app->db, c->a, m.id, m.room_id,
	         c->user.user_id, text, true)) != R_SUCCESS ||
	    (e = message_event(c, m.id, "message.updated")) != R_SUCCESS)
		return e;
	return reply_message(c, 200, m.id);
}

rerr
api_message_delete(req_ctx *c)
{
	const char *p[1];
	json_object *d;
	msg m;
	rerr e;

	if ((e = load_message_as(
	         c, router_param(&c->match, "id")->num, true, &m)) != R_SUCCESS)
		return e;
	if (m.author_id != c->user.user_id && !rooms_can_manage(c, &m.r))
		return fail(c, R_FORBIDDEN, NULL,
		    "only the author, the room's owner or an admin deletes a "
		    "message");
	c->res->status = 204;
	if (m.deleted)
		return R_SUCCESS; /* deleting again: idempotent, no event */
	p[0] = api_id(c, m.id);
	if (db_query(c->app->db, c->a, &e,
	        "UPDATE messages SET body = NULL, data = NULL, deleted_at = "
	        "now() "
	        "WHERE id = $1",
	        1, p) == NULL ||
	    db_query(c->app->db, c->a, &e,
	        "DELETE FROM reactions WHERE message_id = $1", 1, p) == NULL ||
	    db_query(c->app->db, c->a, &e,
	        "DELETE FROM pins WHERE message_id = $1", 1, p) == NULL ||
	    db_query(c->app->db, c->a, &e,
	        "DELETE FROM message_mentions WHERE message_id = $1", 1,
	        p) == NULL)
		return e;
	d = json_object_new_object();
	json_object_object_add(d, "id", json_i64(m.id));
	json_object_object_add(d, "room_id", json_i64(m.room_id));
	return events_room(c->app->db, c->a, m.room_id, "message.deleted", d);
}

static rerr
pin(req_ctx *c, bool on)
{
	const char *p[3];
	json_object *d;
	PGresult *res;
	msg m;
	rerr e;

	if ((e = load_message(c, router_param(&c->match, "id")->num, &m)) !=
	        R_SUCCESS ||
	    (e = rooms_require_writable(c, &m.r)) != R_SUCCESS)
		return e;
	if (m.deleted)
		return deleted_message(c, "id");
	p[0] = api_id(c, m.id);
	p[1] = api_id(c, m.room_id);
	p[2] = api_id(c, c->user.user_id);
	res = on
	    ? db_query(c->app->db, c->a, &e,
	          "INSERT INTO pins (message_id, room_id, pinned_by) "
	          "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
	          3, p)
	    : db_query(c->app->db, c->a, &e,
	          "DELETE FROM pins WHERE message_id = $1 RETURNING 1", 1, p);
	if (res == NULL)
		return e;
	c->res->status = 204;
	if (PQntuples(res) == 0)
		return R_SUCCESS; /* already so: idempotent, no event */
	d = json_object_new_object();
	json_object_object_add(d, "message_id", json_i64(m.id));
	json_object_object_add(d, "pinned", json_object_new_boolean(on));
	json_object_object_add(
	    d, "pinned_by", on ? json_i64(c->user.user_id) : NULL);
	return events_room(c->app->db, c->a, m.room_id, "pin.changed", d);
}

rerr
api_message_pin(req_ctx *c)
{
	return pin(c, true);
}

rerr
api_message_unpin(req_ctx *c)
{
	return pin(c, false);
}

rerr
api_room_pins(req_ctx *c)
{
	const char *p[1];
	json_object *list, *answer;
	PGresult *res;
	room r;
	rerr e;

	if ((e = rooms_load(c, router_param(&c->match, "id")->num, false,
	         &r)) != R_SUCCESS ||
	    (e = rooms_require_member(c, &r)) != R_SUCCESS)
		return e;
	p[0] = api_id(c, r.id);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT " MESSAGE_FIELDS ", pn.pinned_by, " DB_TS("pn.pinned_at")
	        MESSAGE_FROM "JOIN pins pn ON pn.message_id = m.id "
	                     "WHERE pn.room_id = $1 ORDER BY pn.pinned_at DESC",
	    1, p);
	if (res == NULL)
		return e;
	list = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "message",
		    messages_row_json(c->a, res, i, c->user.user_id));
		json_object_object_add(o, "pinned_by",
		    PQgetisnull(res, i, MESSAGE_COLUMNS)
		        ? NULL
		        : json_i64(strtoll(
		              PQgetvalue(res, i, MESSAGE_COLUMNS), NULL, 10)));
		json_object_object_add(o, "pinned_at",
		    json_str(PQgetvalue(res, i, MESSAGE_COLUMNS + 1)));
		json_object_array_add(list, o);
	}
	answer = json_object_new_object();
	json_object_object_add(answer, "pins", list);
	return reply_json(c, 200, answer);
}

static rerr
react(req_ctx *c, bool on)
{
	const char *emoji = router_param(&c->match, "emoji")->str, *p[3];
	json_object *summary, *d, *answer;
	const settings *s;
	PGresult *res;
	bool changed;
	msg m;
	rerr e;

	if ((s = req_settings(c, &e)) == NULL)
		return e;
	if (!settings_has_reaction(s, emoji))
		return fail(c, R_VALIDATION, "emoji",
		    "emoji must be one of this server's reactions");
	if ((e = load_message(c, router_param(&c->match, "id")->num, &m)) !=
	        R_SUCCESS ||
	    (e = rooms_require_writable(c, &m.r)) != R_SUCCESS)
		return e;
	if (m.deleted)
		return deleted_message(c, "id");
	p[0] = api_id(c, m.id);
	p[1] = api_id(c, c->user.user_id);
	p[2] = emoji;
	res = on ? db_query(c->app->db, c->a, &e,
	               "INSERT INTO reactions (message_id, user_id, emoji) "
	               "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
	               3, p)
	         : db_query(c->app->db, c->a, &e,
	               "DELETE FROM reactions WHERE message_id = $1 AND "
	               "user_id = $2 AND emoji = $3 RETURNING 1",
	               3, p);
	if (res == NULL)
		return e;
	changed = PQntuples(res) > 0;
	res = db_query(
	    c->app->db, c->a, &e, MESSAGE_SELECT "WHERE m.id = $1", 1, p);
	if (res == NULL)
		return e;
	{
		json_object *whole = messages_row_json(c->a, res, 0, 0);

		summary =
		    json_object_get(json_object_object_get(whole, "reactions"));
		json_object_put(whole);
	}
	if (changed) {
		d = json_object_new_object();
		json_object_object_add(d, "message_id", json_i64(m.id));
		json_object_object_add(
		    d, "reactions", json_object_get(summary));
		if ((e = events_room(c->app->db, c->a, m.room_id,
		         "reaction.updated", d)) != R_SUCCESS) {
			json_object_put(summary);
			return e;
		}
	}
	answer = json_object_new_object();
	json_object_object_add(answer, "reactions", summary);
	return reply_json(c, 200, answer);
}

rerr
api_reaction_put(req_ctx *c)
{
	return react(c, true);
}

rerr
api_reaction_delete(req_ctx *c)
{
	return react(c, false);
}

rerr
api_room_read(req_ctx *c)
{
	static const char *const allowed[] = { "message_id", NULL };
	int64_t mid, before, after;
	json_object *answer, *d;
	json_err je = { 0 };
	const char *p[3];
	PGresult *res;
	room r;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = json_get_int(c->body, "message_id", true, 1,
	         9007199254740991LL, &mid, NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((e = rooms_load(c, router_param(&c->match, "id")->num, false,
	         &r)) != R_SUCCESS ||
	    (e = rooms_require_member(c, &r)) != R_SUCCESS)
		return e;
	p[0] = api_id(c, r.id);
	p[1] = api_id(c, c->user.user_id);
	p[2] = api_id(c, mid);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT 1 FROM messages WHERE id = $1 AND room_id = $2", 2,
	    (const char *[]){ p[2], p[0] });
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, "message_id",
		    "no such message in this room");
	/* The marker only moves forward. */
	res = db_query(c->app->db, c->a, &e,
	    "UPDATE room_members SET last_read_message_id = "
	    "greatest(last_read_message_id, $3) WHERE room_id = $1 "
	    "AND user_id = $2 RETURNING last_read_message_id, "
	    "(SELECT last_read_message_id FROM room_members WHERE room_id = $1 "
	    "AND user_id = $2)",
	    3, p);
	if (res == NULL)
		return e;
	after = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	before = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	p[2] = api_id(c, after);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT (SELECT count(*) FROM messages WHERE room_id = $1 "
	    "AND id > $3 AND deleted_at IS NULL AND type <> 'system' "
	    "AND author_id IS DISTINCT FROM $2), "
	    "(SELECT count(*) FROM message_mentions WHERE user_id = $2 "
	    "AND room_id = $1 AND message_id > $3)",
	    3, p);
	if (res == NULL)
		return e;
	if (after != before) {
		d = json_object_new_object();
		json_object_object_add(d, "room_id", json_i64(r.id));
		json_object_object_add(
		    d, "last_read_message_id", json_i64(after));
		if ((e = events_user_from(c->app->db, c->a, c->user.user_id,
		         "read.updated", d, c->user.session_id)) != R_SUCCESS)
			return e;
	}
	answer = json_object_new_object();
	json_object_object_add(answer, "last_read_message_id", json_i64(after));
	json_object_object_add(answer, "unread_count",
	    json_i64(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
	json_object_object_add(answer, "mention_count",
	    json_i64(strtoll(PQgetvalue(res, 0, 1), NULL, 10)));
	return reply_json(c, 200, answer);
}

rerr
api_visitor_message(req_ctx *c)
{
	static const char *const allowed[] = { "name", "email", "content",
		NULL };
	const char *name, *email, *text, *data, *p[3];
	json_object *content, *answer;
	const settings *s;
	json_err je = { 0 };
	size_t elen;
	PGresult *res;
	rl_result rl;
	int64_t id;
	rerr e;

	if ((s = req_settings(c, &e)) == NULL)
		return e;
	if (s->visitor_room_id == 0)
		return fail(c, R_NOT_FOUND, NULL,
		    "this server takes no visitor messages");
	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "name", true, 1, NAME_MAX_CHARS,
	         JSTR_NOT_BLANK, &name, NULL, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "email", true, 3, EMAIL_MAX_BYTES, 0,
	         &email, &elen, &je)) != R_SUCCESS ||
	    (e = messages_check_content(
	         c->a, s, "text", c->body, &text, &data, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if (elen > EMAIL_MAX_BYTES || !users_email_valid(email, elen))
		return fail(c, R_VALIDATION, "email",
		    "email must be a valid address of at most 254 bytes");
	/* Anyone may call this: the limit fails closed. */
	if (ratelimit_hit(c->app->kv, c->a, c->tenant.id, "visitor",
	        auth_client_ip(c), s->visitor_messages_per_hour, 3600,
	        &rl) != R_SUCCESS)
		return fail(c, R_UNAVAILABLE, NULL, "try again shortly");
	req_ratelimit_headers(c, &rl);
	if (rl.limited)
		return fail(
		    c, R_RATE_LIMITED, NULL, "too many messages; try later");
	content = json_object_new_object();
	json_object_object_add(content, "text", json_str(text));
	json_object_object_add(content, "name", json_str(name));
	json_object_object_add(content, "email", json_str(email));
	p[0] = api_id(c, s->visitor_room_id);
	p[1] = text;
	p[2] = json_to_arena(c->a, content, NULL);
	json_object_put(content);
	res = db_query(c->app->db, c->a, &e,
	    "INSERT INTO messages (room_id, author_id, type, body, data) "
	    "SELECT id, NULL, 'visitor', $2, $3::jsonb FROM rooms "
	    "WHERE id = $1 AND kind <> 'dm' RETURNING id",
	    3, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, NULL,
		    "this server takes no visitor messages");
	id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if ((e = message_event(c, id, "message.created")) != R_SUCCESS)
		return e;
	answer = json_object_new_object();
	json_object_object_add(answer, "id", json_i64(id));
	return reply_json(c, 201, answer);
}
