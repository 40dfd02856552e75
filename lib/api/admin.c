/* api/admin: managing users and the tenant's settings. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "../events.h"
#include "../password.h"
#include "../token.h"
#include "../rooms.h"
#include "../users.h"

static const char *const roles[] = { "member", "admin", NULL };

rerr
api_admin_user_create(req_ctx *c)
{
	static const char *const allowed[] = { "email", "name", "password",
		"role", "must_change_password", NULL };
	const char *email, *name, *pw, *why, *problem;
	bool must_change = true;
	const settings *s;
	json_err je = { 0 };
	size_t elen, pw_len;
	int role = 0;
	int64_t id;
	rerr e;

	static const char *const not_null[] = { "role", "must_change_password",
		NULL };

	if ((e = api_reject_nulls(c, not_null)) != R_SUCCESS)
		return e;
	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "email", true, 3, EMAIL_MAX_BYTES, 0,
	         &email, &elen, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "name", true, 1, NAME_MAX_CHARS,
	         JSTR_NOT_BLANK, &name, NULL, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "password", true, 1,
	         PASSWORD_MAX_BYTES, JSTR_ALLOW_NUL | JSTR_MULTILINE, &pw,
	         &pw_len, &je)) != R_SUCCESS ||
	    (e = json_get_enum(c->body, "role", false, roles, &role, &je)) !=
	        R_SUCCESS ||
	    (e = json_get_bool(c->body, "must_change_password", false,
	         &must_change, NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if (role < 0)
		role = 0; /* member */
	if (elen > EMAIL_MAX_BYTES || !users_email_valid(email, elen))
		return fail(c, R_VALIDATION, "email",
		    "must be a valid email address of at most 254 bytes");
	if ((s = req_settings(c, &e)) == NULL)
		return e;
	if ((problem = users_password_problem(
	         pw, pw_len, s->password_min_length)) != NULL)
		return fail(c, R_VALIDATION, "password",
		    "%s (at least %lld bytes)", problem,
		    (long long)s->password_min_length);
	e = users_create(c->app->db, c->a, email, name, pw, pw_len,
	    s->password_min_length, roles[role], must_change, &id, &why);
	if (e == R_CONFLICT)
		return fail(c, e, "email", "an account with this email exists");
	if (e != R_SUCCESS)
		return fail(c, e, NULL, "%s", why);
	if ((e = rooms_join_default(c->app->db, c->a, s, id)) != R_SUCCESS)
		return e;
	return api_reply_user(c, 201, id, true);
}

/* Locks the target user row; R_NOT_FOUND when missing or deleted, and
 * R_FORBIDDEN when it is the admin themself (no self-demotion, -suspension
 * or -deletion: a tenant must never lose its last way in). */
static rerr
lock_target(req_ctx *c, int64_t *id)
{
	const char *p[1];
	PGresult *res;
	rerr e;

	*id = router_param(&c->match, "id")->num;
	p[0] = api_id(c, *id);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT 1 FROM users WHERE id = $1 "
	    "AND deleted_at IS NULL FOR UPDATE",
	    1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, "id", "no such user");
	if (*id == c->user.user_id)
		return fail(c, R_FORBIDDEN, "id",
		    "you cannot do this to your own account; ask another "
		    "admin");
	return R_SUCCESS;
}

static rerr
end_sessions(req_ctx *c, int64_t id, const char *reason)
{
	const char *p[2] = { api_id(c, id), reason };
	rerr e;

	if ((e = auth_forget_user(c, id)) != R_SUCCESS)
		return e;
	if (db_query(c->app->db, c->a, &e,
	        "UPDATE sessions SET revoked_at = "
	        "now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at "
	        "IS NULL",
	        2, p) == NULL)
		return e;
	/* API tokens stay, but are refused while this lasts: every open
	 * stream of the user ends. */
	return events_session_ended(
	    c->app->db, c->a, id, reason, true, NULL, NULL);
}

rerr
api_admin_user_patch(req_ctx *c)
{
	static const char *const allowed[] = { "role", "suspended", NULL };
	bool suspended = false, has_susp = false;
	json_err je = { 0 };
	const char *p[3];
	int role = -1;
	int64_t id;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((e = api_reject_nulls(c, allowed)) != R_SUCCESS)
		return e;
	if ((e = json_get_enum(c->body, "role", false, roles, &role, &je)) !=
	        R_SUCCESS ||
	    (e = json_get_bool(c->body, "suspended", false, &suspended,
	         &has_susp, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((e = lock_target(c, &id)) != R_SUCCESS)
		return e;
	p[0] = api_id(c, id);
	p[1] = role >= 0 ? roles[role] : NULL;
	p[2] = has_susp ? (suspended ? "true" : "false") : NULL;
	if (db_query(c->app->db, c->a, &e,
	        "UPDATE users SET "
	        "role = coalesce($2, role), "
	        "suspended = coalesce($3::bool, suspended), updated_at = now() "
	        "WHERE id = $1",
	        3, p) == NULL)
		return e;
	if (has_susp && suspended)
		e = end_sessions(c, id, "suspended");
	else
		e = auth_forget_user(c, id); /* the role is cached */
	if (e != R_SUCCESS ||
	    (e = events_user_updated(c->app->db, c->a, id)) != R_SUCCESS)
		return e;
	return api_reply_user(c, 200, id, true);
}

rerr
api_admin_user_reset_password(req_ctx *c)
{
	char hash[PASSWORD_HASH_MAX];
	const settings *s;
	json_object *answer;
	const char *tmp, *p[2];
	int64_t id;
	rerr e;

	if ((e = lock_target(c, &id)) != R_SUCCESS)
		return e;
	if ((s = req_settings(c, &e)) == NULL)
		return e;
	/* 24 characters (144 bits), or longer when the tenant asks more. */
	tmp = token_random_b64(c->a,
	    s->password_min_length > 24
	        ? (size_t)(s->password_min_length * 3 + 3) / 4
	        : 18);
	if ((e = password_hash(tmp, strlen(tmp), hash)) != R_SUCCESS)
		return e;
	p[0] = api_id(c, id);
	p[1] = hash;
	if (db_query(c->app->db, c->a, &e,
	        "UPDATE users SET password_hash = $2, "
	        "must_change_password = true, updated_at = now() WHERE id = $1",
	        2, p) == NULL ||
	    (e = end_sessions(c, id, "password_reset")) != R_SUCCESS)
		return e;
	answer = json_object_new_object();
	json_object_object_add(answer, "temporary_password", json_str(tmp));
	return reply_json(c, 200, answer);
}

rerr
api_admin_user_delete(req_ctx *c)
{
	const char *p[1];
	int64_t id;
	rerr e;

	if ((e = lock_target(c, &id)) != R_SUCCESS)
		return e;
	p[0] = api_id(c, id);
	/* The row stays, so history keeps its author; everything personal
	 * goes, and the address is free again. */
	if ((e = auth_forget_user(c, id)) != R_SUCCESS ||
	    db_query(c->app->db, c->a, &e,
	        "UPDATE users SET "
	        "email = 'deleted_' || id || '@deleted', name = 'Deleted "
	        "User', "
	        "display_name = NULL, about = NULL, avatar_url = NULL, "
	        "password_hash = NULL, suspended = false, "
	        "must_change_password = false, deleted_at = now(), "
	        "updated_at = now() WHERE id = $1",
	        1, p) == NULL ||
	    db_query(c->app->db, c->a, &e,
	        "DELETE FROM sessions "
	        "WHERE user_id = $1",
	        1, p) == NULL ||
	    db_query(c->app->db, c->a, &e,
	        "DELETE FROM api_tokens "
	        "WHERE user_id = $1",
	        1, p) == NULL ||
	    (e = events_session_ended(c->app->db, c->a, id, "deleted", true,
	         NULL, NULL)) != R_SUCCESS)
		return e;
	/* Out of every room but DMs, which keep the "Deleted User" so the
	 * conversation still makes sense (and turns read-only). */
	{
		PGresult *res = db_query(c->app->db, c->a, &e,
		    "SELECT rm.room_id FROM room_members rm JOIN rooms r "
		    "ON r.id = rm.room_id WHERE rm.user_id = $1 AND r.kind <> "
		    "'dm' "
		    "ORDER BY rm.room_id",
		    1, p);

		if (res == NULL)
			return e;
		for (int i = 0; i < PQntuples(res); i++) {
			room r;

			if ((e = rooms_load_unchecked(c,
			         strtoll(PQgetvalue(res, i, 0), NULL, 10), true,
			         &r)) != R_SUCCESS ||
			    (e = rooms_remove_member(
			         c, &r, id, c->user.user_id)) != R_SUCCESS)
				return e;
		}
	}
	if ((e = events_user_updated(c->app->db, c->a, id)) != R_SUCCESS)
		return e;
	c->res->status = 204;
	return R_SUCCESS;
}

/* What every member's client needs to know of the tenant's settings
 * (GET /api/v1/settings): the reaction set, limits it should enforce
 * before sending, the name to show. Nothing about rate limits or
 * registration policy. */
rerr
api_settings_public(req_ctx *c)
{
	const settings *s;
	json_object *o, *r;
	rerr e;

	if ((s = req_settings(c, &e)) == NULL)
		return e;
	o = json_object_new_object();
	json_object_object_add(o, "app_name", json_str(s->app_name));
	r = json_object_new_array();
	for (size_t i = 0; i < s->n_reactions; i++)
		json_object_array_add(r, json_str(s->reactions[i]));
	json_object_object_add(o, "reactions", r);
	json_object_object_add(
	    o, "message_max_chars", json_i64(s->message_max_chars));
	json_object_object_add(
	    o, "edit_window_minutes", json_i64(s->edit_window_minutes));
	json_object_object_add(
	    o, "password_min_length", json_i64(s->password_min_length));
	return reply_json(c, 200, o);
}

rerr
api_admin_settings_get(req_ctx *c)
{
	const settings *s;
	rerr e;

	if ((s = req_settings(c, &e)) == NULL)
		return e;
	return reply_json(c, 200, settings_json(s));
}

rerr
api_admin_settings_patch(req_ctx *c)
{
	json_err je = { 0 };
	settings s;
	rerr e;

	if (json_object_object_get_ex(c->body, "visitor_room_id", NULL)) {
		json_object *v =
		    json_object_object_get(c->body, "visitor_room_id");

		if (v != NULL && json_object_is_type(v, json_type_int)) {
			const char *p[1] = { api_id(
			    c, json_object_get_int64(v)) };
			PGresult *res = db_query(c->app->db, c->a, &e,
			    "SELECT 1 FROM rooms WHERE id = $1 AND kind <> "
			    "'dm'",
			    1, p);

			if (res == NULL)
				return e;
			if (PQntuples(res) != 1)
				return fail(c, R_VALIDATION, "visitor_room_id",
				    "visitor_room_id must be a room (not a "
				    "DM)");
		}
	}
	if ((e = settings_update(c->app->db, c->a, c->body, &je)) != R_SUCCESS)
		return e == R_VALIDATION ? JSON_FAIL(c, e, je) : e;
	if ((e = settings_load(c->app->db, c->a, &s)) != R_SUCCESS)
		return e;
	return reply_json(c, 200, settings_json(&s));
}
