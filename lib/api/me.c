/* api/me: my profile, password, sessions and API tokens. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "../events.h"
#include "../password.h"
#include "../ratelimit.h"
#include "../token.h"
#include "../users.h"

#define MAX_API_TOKENS 50

rerr
api_me_get(req_ctx *c)
{
	return api_reply_user(c, 200, c->user.user_id, true);
}

/* An optional profile field: absent leaves it, null (or "" for nullable
 * fields) clears it. *set tells whether to write *val. */
static rerr
profile_field(req_ctx *c, const char *key, size_t max_chars, unsigned flags,
    bool nullable, const char **val, bool *set, json_err *je)
{
	json_object *v;
	rerr r;

	*set = false;
	*val = NULL;
	if (!json_object_object_get_ex(c->body, key, &v))
		return R_SUCCESS;
	*set = true;
	if (v == NULL && nullable)
		return R_SUCCESS;
	r = json_get_string(c->body, key, true, nullable ? 0 : 1, max_chars,
	    flags, val, NULL, je);
	if (r == R_SUCCESS && nullable && (*val)[0] == '\0')
		*val = NULL;
	return r;
}

rerr
api_me_patch(req_ctx *c)
{
	static const char *const allowed[] = { "name", "display_name", "about",
		"avatar_url", NULL };
	const char *name, *display, *about, *avatar, *p[9];
	bool s_name, s_display, s_about, s_avatar;
	json_err je = { 0 };
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = profile_field(c, "name", NAME_MAX_CHARS, JSTR_NOT_BLANK, false,
	         &name, &s_name, &je)) != R_SUCCESS ||
	    (e = profile_field(c, "display_name", NAME_MAX_CHARS, 0, true,
	         &display, &s_display, &je)) != R_SUCCESS ||
	    (e = profile_field(c, "about", ABOUT_MAX_CHARS, JSTR_MULTILINE,
	         true, &about, &s_about, &je)) != R_SUCCESS ||
	    (e = profile_field(c, "avatar_url", URL_MAX_BYTES, 0, true, &avatar,
	         &s_avatar, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if (avatar != NULL && !users_url_valid(avatar, strlen(avatar)))
		return fail(c, R_VALIDATION, "avatar_url",
		    "must be an http:// or https:// URL of at most 2048 bytes");
	p[0] = api_id(c, c->user.user_id);
	p[1] = s_name ? "t" : "f";
	p[2] = name;
	p[3] = s_display ? "t" : "f";
	p[4] = display;
	p[5] = s_about ? "t" : "f";
	p[6] = about;
	p[7] = s_avatar ? "t" : "f";
	p[8] = avatar;
	if (db_query(c->app->db, c->a, &e,
	        "UPDATE users SET "
	        "name = CASE WHEN $2::bool THEN $3 ELSE name END, "
	        "display_name = CASE WHEN $4::bool THEN $5 ELSE display_name "
	        "END, "
	        "about = CASE WHEN $6::bool THEN $7 ELSE about END, "
	        "avatar_url = CASE WHEN $8::bool THEN $9 ELSE avatar_url END, "
	        "updated_at = now() WHERE id = $1",
	        9, p) == NULL ||
	    (e = events_user_updated(c->app->db, c->a, c->user.user_id)) !=
	        R_SUCCESS)
		return e;
	return api_reply_user(c, 200, c->user.user_id, true);
}

rerr
api_me_password(req_ctx *c)
{
	static const char *const allowed[] = { "current_password",
		"new_password", NULL };
	const char *cur, *new_pw, *problem, *p[3];
	char hash[PASSWORD_HASH_MAX];
	size_t cur_len, new_len;
	const settings *s;
	json_err je = { 0 };
	PGresult *res;
	rl_result rl;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "current_password", true, 1,
	         PASSWORD_MAX_BYTES, JSTR_ALLOW_NUL | JSTR_MULTILINE, &cur,
	         &cur_len, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "new_password", true, 1,
	         PASSWORD_MAX_BYTES, JSTR_ALLOW_NUL | JSTR_MULTILINE, &new_pw,
	         &new_len, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((s = req_settings(c, &e)) == NULL)
		return e;
	if ((problem = users_password_problem(
	         new_pw, new_len, s->password_min_length)) != NULL)
		return fail(c, R_VALIDATION, "new_password",
		    "%s (at least %lld bytes)", problem,
		    (long long)s->password_min_length);
	/* Guessing the current password is guessing a password: the login
	 * limit applies, per user, and fails closed. */
	if (ratelimit_hit(c->app->kv, c->a, c->tenant.id, "password",
	        api_id(c, c->user.user_id), s->login_attempts_per_15min, 900,
	        &rl) != R_SUCCESS)
		return fail(c, R_UNAVAILABLE, NULL,
		    "password changes are unavailable right now");
	req_ratelimit_headers(c, &rl);
	if (rl.limited)
		return fail(c, R_RATE_LIMITED, NULL, "too many attempts");
	p[0] = api_id(c, c->user.user_id);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT coalesce(password_hash, "
	    "'') FROM users WHERE id = $1 FOR UPDATE",
	    1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1 ||
	    !password_verify(PQgetvalue(res, 0, 0), cur, cur_len))
		return fail(c, R_FORBIDDEN, "current_password",
		    "the current password is wrong");
	if ((e = password_hash(new_pw, new_len, hash)) != R_SUCCESS)
		return e;
	p[1] = hash;
	p[2] = api_id(c, c->user.session_id);
	if ((e = auth_forget_user(c, c->user.user_id)) != R_SUCCESS ||
	    db_query(c->app->db, c->a, &e,
	        "UPDATE users SET password_hash = $2, "
	        "must_change_password = false, updated_at = now() WHERE id = "
	        "$1",
	        2, p) == NULL ||
	    (res = db_query(c->app->db, c->a, &e,
	         "UPDATE sessions SET revoked_at = "
	         "now(), revoked_reason = 'password_changed' WHERE user_id = "
	         "$1 AND revoked_at IS NULL AND id <> $2 RETURNING id",
	         2, (const char *[]){ p[0], p[2] })) == NULL ||
	    (e = events_session_ended(c->app->db, c->a, c->user.user_id,
	         "password_changed", false, res, NULL)) != R_SUCCESS)
		return e;
	c->res->status = 204;
	return R_SUCCESS;
}

rerr
api_me_sessions(req_ctx *c)
{
	const char *p[1] = { api_id(c, c->user.user_id) };
	json_object *list, *answer;
	PGresult *res;
	rerr e;

	res = db_query(c->app->db, c->a, &e,
	    "SELECT id, device, " DB_TS("created_at") ", " DB_TS(
	        "last_used_at") ", " DB_TS("expires_at") ", ip, user_agent "
	                                                 "FROM sessions WHERE "
	                                                 "user_id = $1 AND "
	                                                 "revoked_at IS NULL "
	                                                 "AND expires_at > "
	                                                 "now() ORDER BY id",
	    1, p);
	if (res == NULL)
		return e;
	list = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *o = json_object_new_object();
		int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);

		json_object_object_add(o, "id", json_i64(id));
		json_object_object_add(
		    o, "device", json_str(PQgetvalue(res, i, 1)));
		json_object_object_add(
		    o, "created_at", json_str(PQgetvalue(res, i, 2)));
		json_object_object_add(
		    o, "last_used_at", json_str(PQgetvalue(res, i, 3)));
		json_object_object_add(
		    o, "expires_at", json_str(PQgetvalue(res, i, 4)));
		json_object_object_add(o, "ip",
		    PQgetisnull(res, i, 5) ? NULL
		                           : json_str(PQgetvalue(res, i, 5)));
		json_object_object_add(o, "user_agent",
		    PQgetisnull(res, i, 6) ? NULL
		                           : json_str(PQgetvalue(res, i, 6)));
		json_object_object_add(o, "current",
		    json_object_new_boolean(id == c->user.session_id));
		json_object_array_add(list, o);
	}
	answer = json_object_new_object();
	json_object_object_add(answer, "sessions", list);
	return reply_json(c, 200, answer);
}

rerr
api_me_session_delete(req_ctx *c)
{
	int64_t sid = router_param(&c->match, "id")->num;
	const char *p[2] = { api_id(c, sid), api_id(c, c->user.user_id) };
	PGresult *res;
	rerr e;

	res = db_query(c->app->db, c->a, &e,
	    "UPDATE sessions SET revoked_at = now(), revoked_reason = "
	    "'revoked' "
	    "WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL "
	    "AND expires_at > now() RETURNING id",
	    2, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(
		    c, R_NOT_FOUND, "id", "no such live session of yours");
	if ((e = events_session_ended(c->app->db, c->a, c->user.user_id,
	         "revoked", false, res, NULL)) != R_SUCCESS)
		return e;
	auth_forget_session(c, sid);
	if (sid == c->user.session_id)
		auth_clear_cookies(c);
	c->res->status = 204;
	return R_SUCCESS;
}

rerr
api_me_token_create(req_ctx *c)
{
	static const char *const allowed[] = { "name", NULL };
	const char *name, *tok, *p[4];
	json_object *answer;
	char hash[65];
	json_err je = { 0 };
	PGresult *res;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = json_get_string(c->body, "name", true, 1, NAME_MAX_CHARS,
	         JSTR_NOT_BLANK, &name, NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	p[0] = api_id(c, c->user.user_id);
	/* Serialise token creation per user so the cap holds under races. */
	if (db_query(c->app->db, c->a, &e,
	        "SELECT 1 FROM users WHERE id = $1 "
	        "FOR UPDATE",
	        1, p) == NULL)
		return e;
	res = db_query(c->app->db, c->a, &e,
	    "SELECT count(*) FROM api_tokens "
	    "WHERE user_id = $1 AND revoked_at IS NULL",
	    1, p);
	if (res == NULL)
		return e;
	if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) >= MAX_API_TOKENS)
		return fail(c, R_CONFLICT, NULL,
		    "at most %d API tokens; revoke one first", MAX_API_TOKENS);
	tok = token_api_new(c->a, hash);
	p[1] = name;
	p[2] = hash;
	p[3] = arena_strndup(c->a, tok, API_TOKEN_SHOWN);
	res = db_query(c->app->db, c->a, &e,
	    "INSERT INTO api_tokens (user_id, name, token_hash, prefix) "
	    "VALUES ($1, $2, $3, $4) RETURNING id, " DB_TS("created_at"),
	    4, p);
	if (res == NULL)
		return e;
	answer = json_object_new_object();
	json_object_object_add(
	    answer, "id", json_i64(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
	json_object_object_add(answer, "name", json_str(name));
	json_object_object_add(answer, "prefix", json_str(p[3]));
	json_object_object_add(answer, "token", json_str(tok));
	json_object_object_add(
	    answer, "created_at", json_str(PQgetvalue(res, 0, 1)));
	return reply_json(c, 201, answer);
}

rerr
api_me_tokens(req_ctx *c)
{
	const char *p[1] = { api_id(c, c->user.user_id) };
	json_object *list, *answer;
	PGresult *res;
	rerr e;

	res = db_query(c->app->db, c->a, &e,
	    "SELECT id, name, prefix, " DB_TS("created_at") ", " DB_TS(
	        "last_used_at") " FROM api_tokens WHERE user_id = $1 "
	                        "AND revoked_at IS NULL ORDER BY id",
	    1, p);
	if (res == NULL)
		return e;
	list = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "id",
		    json_i64(strtoll(PQgetvalue(res, i, 0), NULL, 10)));
		json_object_object_add(
		    o, "name", json_str(PQgetvalue(res, i, 1)));
		json_object_object_add(
		    o, "prefix", json_str(PQgetvalue(res, i, 2)));
		json_object_object_add(
		    o, "created_at", json_str(PQgetvalue(res, i, 3)));
		json_object_object_add(o, "last_used_at",
		    PQgetisnull(res, i, 4) ? NULL
		                           : json_str(PQgetvalue(res, i, 4)));
		json_object_array_add(list, o);
	}
	answer = json_object_new_object();
	json_object_object_add(answer, "tokens", list);
	return reply_json(c, 200, answer);
}

rerr
api_me_token_delete(req_ctx *c)
{
	const char *p[2] = { api_id(c, router_param(&c->match, "id")->num),
		api_id(c, c->user.user_id) };
	PGresult *res;
	rerr e;

	res = db_query(c->app->db, c->a, &e,
	    "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 "
	    "AND user_id = $2 AND revoked_at IS NULL RETURNING id",
	    2, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, "id", "no such API token of yours");
	if ((e = events_session_ended(c->app->db, c->a, c->user.user_id,
	         "token_revoked", false, NULL, res)) != R_SUCCESS)
		return e;
	c->res->status = 204;
	return R_SUCCESS;
}
