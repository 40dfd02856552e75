/* auth: credentials -> principal; sessions; cache invalidation. */
#include "auth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app.h"
#include "events.h"
#include "json.h"
#include "log.h"
#include "ratelimit.h"
#include "token.h"

#define CACHE_TTL "30"
#define STALE_TTL "60"

static const char *
session_key(req_ctx *c, int64_t sid)
{
	return kv_key(
	    c->a, c->tenant.id, arena_printf(c->a, "sess:%" PRId64, sid));
}

static const char *
id_str(req_ctx *c, int64_t id)
{
	return arena_printf(c->a, "%" PRId64, id);
}

static const char *
printable(req_ctx *c, const char *s, size_t max)
{
	size_t n = 0;
	char *out;

	if (s == NULL)
		return NULL;
	out = arena_alloc(c->a, max + 1);
	for (; *s && n < max; s++)
		if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f)
			out[n++] = *s;
	out[n] = '\0';
	return out;
}

const char *
auth_client_ip(req_ctx *c)
{
	const char *ip = printable(c, c->req->remote_addr, 64);

	return ip && *ip ? ip : "unknown";
}

const char *
auth_user_agent(req_ctx *c)
{
	return printable(c, http_header(c->req, "user-agent"), 256);
}

/* Value of cookie name in the Cookie header, or NULL. */
static const char *
cookie(req_ctx *c, const char *name)
{
	const char *h = http_header(c->req, "cookie");
	size_t n = strlen(name);

	while (h && *h) {
		while (*h == ' ' || *h == ';')
			h++;
		if (strncmp(h, name, n) == 0 && h[n] == '=') {
			const char *v = h + n + 1;

			return arena_strndup(c->a, v, strcspn(v, ";"));
		}
		h = strchr(h, ';');
	}
	return NULL;
}

void
auth_forget_session(req_ctx *c, int64_t sid)
{
	if (c->n_stale == c->cap_stale) {
		size_t cap = c->cap_stale ? c->cap_stale * 2 : 8;
		int64_t *n = arena_alloc(c->a, cap * sizeof(*n));

		if (c->n_stale)
			memcpy(n, c->stale_sessions, c->n_stale * sizeof(*n));
		c->stale_sessions = n;
		c->cap_stale = cap;
	}
	c->stale_sessions[c->n_stale++] = sid;
}

rerr
auth_forget_user(req_ctx *c, int64_t user_id)
{
	const char *p[1] = { id_str(c, user_id) };
	PGresult *res;
	rerr e;

	/* Revoked long ago means already uncached: the cache lives 30 s. */
	res = db_query(c->app->db, c->a, &e,
	    "SELECT id FROM sessions WHERE user_id = $1 AND "
	    "(revoked_at IS NULL OR revoked_at > now() - interval '5 minutes')",
	    1, p);
	if (res == NULL)
		return e;
	for (int i = 0; i < PQntuples(res); i++)
		auth_forget_session(
		    c, strtoll(PQgetvalue(res, i, 0), NULL, 10));
	return R_SUCCESS;
}

void
auth_after_commit(req_ctx *c)
{
	for (size_t i = 0; i < c->n_stale; i++) {
		rerr e;

		(void)kv_cmd(c->app->kv, c->a, &e, "SET",
		    session_key(c, c->stale_sessions[i]), "x", "EX", STALE_TTL,
		    NULL);
		if (e != R_SUCCESS)
			log_warn("could not mark session %" PRId64 " stale in "
			         "Redis; its cache entry expires within 30 s",
			    c->stale_sessions[i]);
	}
	c->n_stale = 0;
}

/* The session's cache entry, and with it the user's hit on the request
 * limit (c->api_hits, for authorize): one round trip instead of two on
 * every signed-in request. NULL when Redis is unavailable. */
static redisReply *
session_get(req_ctx *c, const char *key, int64_t uid)
{
	static const char script[] =
	    "local v = redis.call('GET', KEYS[1]) " RATELIMIT_LUA_STEP(
	        "2") "return {v, n}";
	const char *argv[6];
	redisReply *r;
	rerr e;

	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = "2";
	argv[3] = key;
	argv[4] = c->api_key = ratelimit_key(c->a, c->tenant.id, "api",
	    id_str(c, uid), API_LIMIT_WINDOW_S, &c->api_window);
	argv[5] = ratelimit_ttl(c->a, API_LIMIT_WINDOW_S);
	r = kv_cmdv(c->app->kv, c->a, &e, 6, argv, NULL);
	/* {GET's value or nil, the count} */
	if (r == NULL || e != R_SUCCESS || r->type != REDIS_REPLY_ARRAY ||
	    r->elements != 2 || r->element[1]->type != REDIS_REPLY_INTEGER)
		return NULL;
	c->api_hits = r->element[1]->integer;
	return r->element[0];
}

/* Decides whether session sid of user uid is live, via the cache or
 * PostgreSQL; fills the principal's role flags. */
static rerr
session_state(req_ctx *c, int64_t sid, int64_t uid)
{
	const char *key = session_key(c, sid);
	const char *p[1] = { id_str(c, sid) };
	bool may_cache = true;
	PGresult *res;
	redisReply *r;
	rerr e;

	r = session_get(c, key, uid);
	if (r == NULL) {
		may_cache = false; /* Redis down: PostgreSQL decides */
	} else if (r->type == REDIS_REPLY_STRING) {
		long long cu;
		int admin, must;

		if (strcmp(r->str, "x") == 0) {
			may_cache = false;
		} else if (sscanf(r->str, "%lld:%d:%d", &cu, &admin, &must) ==
		        3 &&
		    cu == uid) {
			c->user.admin = admin == 1;
			c->user.must_change_password = must == 1;
			return R_SUCCESS;
		}
	}
	res = db_query(c->app->db, c->a, &e,
	    "SELECT s.user_id, s.revoked_at IS NULL AND s.expires_at > now(), "
	    "coalesce(s.revoked_reason, ''), u.role = 'admin', u.suspended, "
	    "u.deleted_at IS NOT NULL, u.must_change_password, "
	    "s.last_used_at < now() - interval '60 seconds' "
	    "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
	    1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1 ||
	    strtoll(PQgetvalue(res, 0, 0), NULL, 10) != uid)
		return fail(
		    c, R_UNAUTHORIZED, NULL, "this session does not exist");
	if (PQgetvalue(res, 0, 1)[0] != 't') {
		if (strcmp(PQgetvalue(res, 0, 2), "displaced") == 0)
			return fail(c, R_SESSION_DISPLACED, NULL, NULL);
		return fail(c, R_UNAUTHORIZED, NULL, "this session has ended");
	}
	if (PQgetvalue(res, 0, 4)[0] == 't' || PQgetvalue(res, 0, 5)[0] == 't')
		return fail(c, R_UNAUTHORIZED, NULL,
		    "this account is suspended or deleted");
	c->user.admin = PQgetvalue(res, 0, 3)[0] == 't';
	c->user.must_change_password = PQgetvalue(res, 0, 6)[0] == 't';
	if (PQgetvalue(res, 0, 7)[0] == 't' &&
	    db_query(c->app->db, c->a, &e,
	        "UPDATE sessions SET last_used_at = now() WHERE id = $1", 1,
	        p) == NULL)
		return e;
	if (may_cache) {
		const char *val = arena_printf(c->a, "%" PRId64 ":%d:%d", uid,
		    c->user.admin ? 1 : 0,
		    c->user.must_change_password ? 1 : 0);

		/* NX: never overwrite a stale mark set meanwhile. */
		(void)kv_cmd(c->app->kv, c->a, &e, "SET", key, val, "EX",
		    CACHE_TTL, "NX", NULL);
	}
	return R_SUCCESS;
}

static rerr
api_token_state(req_ctx *c, const char *tok)
{
	char hash[65];
	const char *p[1] = { hash };
	PGresult *res;
	rerr e;

	if (strlen(tok) != API_TOKEN_LEN)
		return fail(c, R_UNAUTHORIZED, NULL, "invalid API token");
	token_sha256_hex(tok, strlen(tok), hash);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT t.id, t.user_id, u.role = 'admin', u.suspended, "
	    "u.deleted_at IS NOT NULL, u.must_change_password, "
	    "t.last_used_at IS NULL OR t.last_used_at < now() - interval '60 "
	    "seconds' "
	    "FROM api_tokens t JOIN users u ON u.id = t.user_id "
	    "WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
	    1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_UNAUTHORIZED, NULL, "invalid API token");
	if (PQgetvalue(res, 0, 3)[0] == 't' || PQgetvalue(res, 0, 4)[0] == 't')
		return fail(c, R_UNAUTHORIZED, NULL,
		    "this account is suspended or deleted");
	c->user.token_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	c->user.user_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	c->user.admin = PQgetvalue(res, 0, 2)[0] == 't';
	c->user.must_change_password = PQgetvalue(res, 0, 5)[0] == 't';
	if (PQgetvalue(res, 0, 6)[0] == 't') {
		p[0] = id_str(c, c->user.token_id);
		if (db_query(c->app->db, c->a, &e,
		        "UPDATE api_tokens SET "
		        "last_used_at = now() WHERE id = $1",
		        1, p) == NULL)
			return e;
	}
	return R_SUCCESS;
}

/* A single-use ticket from POST /api/v1/events/ticket (EventSource cannot
 * send headers, and a long-lived token must never sit in a URL). GETDEL
 * makes it single-use even between racing relays. */
static rerr
ticket_state(req_ctx *c, const char *ticket, size_t len)
{
	char hash[65];
	long long uid, sid, tid;
	redisReply *r;
	rerr e;

	if (len < 16 || len > 128)
		return fail(c, R_UNAUTHORIZED, NULL, "invalid or used ticket");
	token_sha256_hex(ticket, len, hash);
	r = kv_cmd(c->app->kv, c->a, &e, "GETDEL",
	    kv_key(c->a, c->tenant.id, arena_printf(c->a, "ticket:%s", hash)),
	    NULL);
	if (r == NULL || e != R_SUCCESS)
		return fail(c, R_UNAVAILABLE, NULL,
		    "tickets cannot be checked right now");
	if (r->type != REDIS_REPLY_STRING ||
	    sscanf(r->str, "%lld:%lld:%lld", &uid, &sid, &tid) != 3)
		return fail(c, R_UNAUTHORIZED, NULL, "invalid or used ticket");
	c->user.user_id = uid;
	c->user.session_id = sid;
	c->user.token_id = tid;
	if (sid != 0)
		return session_state(c, sid, uid);
	{
		const char *p[1] = { id_str(c, tid) };
		PGresult *res = db_query(c->app->db, c->a, &e,
		    "SELECT u.role = 'admin', u.must_change_password "
		    "FROM api_tokens t JOIN users u ON u.id = t.user_id "
		    "WHERE t.id = $1 AND t.revoked_at IS NULL "
		    "AND NOT u.suspended AND u.deleted_at IS NULL",
		    1, p);

		if (res == NULL)
			return e;
		if (PQntuples(res) != 1)
			return fail(
			    c, R_UNAUTHORIZED, NULL, "invalid or used ticket");
		c->user.admin = PQgetvalue(res, 0, 0)[0] == 't';
		c->user.must_change_password = PQgetvalue(res, 0, 1)[0] == 't';
	}
	return R_SUCCESS;
}

rerr
auth_issue_ticket(req_ctx *c, int ttl_s, const char **ticket)
{
	char hash[65];
	const char *t = token_random_b64(c->a, 32);
	redisReply *r;
	rerr e;

	token_sha256_hex(t, strlen(t), hash);
	r = kv_cmd(c->app->kv, c->a, &e, "SET",
	    kv_key(c->a, c->tenant.id, arena_printf(c->a, "ticket:%s", hash)),
	    arena_printf(c->a, "%" PRId64 ":%" PRId64 ":%" PRId64,
	        c->user.user_id, c->user.session_id, c->user.token_id),
	    "EX", arena_printf(c->a, "%d", ttl_s), NULL);
	if (r == NULL || e != R_SUCCESS)
		return fail(c, R_UNAVAILABLE, NULL,
		    "tickets cannot be issued right now");
	*ticket = t;
	return R_SUCCESS;
}

static bool
safe_method(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
	    strcmp(m, "OPTIONS") == 0;
}

rerr
auth_authenticate(req_ctx *c)
{
	const char *authz = http_header(c->req, "authorization"), *tok;
	token_claims claims;
	size_t tlen;
	const char *why;
	rerr e;

	memset(&c->user, 0, sizeof(c->user));
	if (authz != NULL) {
		/* RFC 7235: the scheme is case-insensitive. */
		if (strncasecmp(authz, "Bearer ", 7) != 0)
			return fail(c, R_UNAUTHORIZED, NULL,
			    "use Authorization: Bearer <token>");
		tok = authz + 7;
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			return fail(
			    c, R_UNAUTHORIZED, NULL, "empty bearer token");
		if (strncmp(tok, API_TOKEN_PREFIX, strlen(API_TOKEN_PREFIX)) ==
		    0)
			return api_token_state(c, tok);
	} else if ((tok = cookie(c, SESSION_COOKIE)) != NULL && *tok) {
		c->user.via_cookie = true;
	} else if (c->allow_ticket &&
	    (tok = http_param(c->req, "ticket", &tlen)) != NULL) {
		return ticket_state(c, tok, tlen);
	} else {
		return fail(c, R_UNAUTHORIZED, NULL, "sign in first");
	}
	e = token_verify(c->a, c->app->cfg.jwt_secret, tok, (int64_t)time(NULL),
	    SETTINGS_MAX_LIFETIME_S, &claims, &why);
	if (e != R_SUCCESS) {
		log_info("token refused: %s", why);
		return fail(
		    c, R_UNAUTHORIZED, NULL, "invalid or expired token");
	}
	if (strcmp(claims.tenant, c->tenant.id) != 0) {
		log_info("token refused: tenant %s on %s", claims.tenant,
		    c->tenant.id);
		return fail(
		    c, R_UNAUTHORIZED, NULL, "invalid or expired token");
	}
	c->user.user_id = claims.user_id;
	c->user.session_id = claims.session_id;
	if ((e = session_state(c, claims.session_id, claims.user_id)) !=
	    R_SUCCESS)
		return e;
	if (c->user.via_cookie && !safe_method(c->req->method)) {
		const char *sent = http_header(c->req, "x-csrf-token");
		const char *want = token_csrf(c->a, c->app->cfg.jwt_secret,
		    c->tenant.id, c->user.session_id);

		if (sent == NULL || !token_equal(sent, want))
			return fail(c, R_FORBIDDEN, NULL,
			    "missing or invalid X-CSRF-Token for a "
			    "cookie-authenticated request");
	}
	return R_SUCCESS;
}

static void
set_cookies(req_ctx *c, const char *jwt, const char *csrf, int64_t max_age)
{
	const char *path =
	    c->app->cfg.base_path[0] ? c->app->cfg.base_path : "/";
	/* Secure when this request came over HTTPS, and always when the
	 * public URL is https (a proxy may end TLS and speak plain HTTP). */
	const char *secure =
	    c->req->https || c->app->cfg.public_https ? "; Secure" : "";

	http_set_header(c->res, c->a, "Set-Cookie",
	    arena_printf(c->a,
	        "%s=%s; Path=%s; Max-Age=%" PRId64 "; HttpOnly; SameSite=Lax%s",
	        SESSION_COOKIE, jwt, path, max_age, secure));
	http_set_header(c->res, c->a, "Set-Cookie",
	    arena_printf(c->a,
	        "%s=%s; Path=%s; Max-Age=%" PRId64 "; SameSite=Lax%s",
	        CSRF_COOKIE, csrf, path, max_age, secure));
}

void
auth_clear_cookies(req_ctx *c)
{
	set_cookies(c, "", "", 0);
}

/* Ends user_id's live sessions of device class (the tenant's
 * single_session_per_device). The user's row is locked first, in its own
 * statement: a racing login of the same user waits, and then sees (and
 * displaces) the session this one starts. */
static rerr
displace_sessions(req_ctx *c, int64_t user_id, const char *device)
{
	const char *p[2] = { id_str(c, user_id), device };
	PGresult *res;
	rerr e;

	if (db_query(c->app->db, c->a, &e,
	        "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", 1, p) == NULL)
		return e;
	res = db_query(c->app->db, c->a, &e,
	    "UPDATE sessions SET revoked_at = now(), revoked_reason = "
	    "'displaced' "
	    "WHERE user_id = $1 AND device = $2 AND revoked_at IS NULL "
	    "RETURNING id",
	    2, p);
	if (res == NULL)
		return e;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t sid = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		json_object *d = json_object_new_object();

		auth_forget_session(c, sid);
		/* The displaced device hears it on its event stream, which
		 * then ends (docs/realtime.md). */
		json_object_object_add(d, "session_id", json_i64(sid));
		json_object_object_add(d, "device", json_str(device));
		if ((e = events_user(c->app->db, c->a, user_id,
		         "session.displaced", d)) != R_SUCCESS)
			return e;
	}
	return R_SUCCESS;
}

rerr
auth_start_session(req_ctx *c, int64_t user_id, const char *device,
    bool displace, int64_t lifetime_hours, json_object *answer)
{
	const char *p[5];
	token_claims claims;
	PGresult *res;
	char *jwt, *csrf;
	rerr e;

	if (displace &&
	    (e = displace_sessions(c, user_id, device)) != R_SUCCESS)
		return e;
	p[0] = id_str(c, user_id);
	p[1] = device;
	p[2] = auth_client_ip(c);
	p[3] = auth_user_agent(c);
	p[4] = id_str(c, lifetime_hours);
	res = db_query(c->app->db, c->a, &e,
	    "INSERT INTO sessions (user_id, device, ip, user_agent, "
	    "expires_at) "
	    "VALUES ($1, $2, $3, $4, now() + make_interval(hours => $5::int)) "
	    "RETURNING id, extract(epoch FROM created_at)::bigint, "
	    "extract(epoch FROM expires_at)::bigint, " DB_TS("expires_at"),
	    5, p);
	if (res == NULL)
		return e;
	claims.user_id = user_id;
	claims.session_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	claims.tenant = c->tenant.id;
	claims.iat = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	claims.exp = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	jwt = token_issue(c->a, c->app->cfg.jwt_secret, &claims);
	if (jwt == NULL)
		return fail(c, R_INTERNAL, NULL, "could not sign the token");
	csrf = token_csrf(
	    c->a, c->app->cfg.jwt_secret, c->tenant.id, claims.session_id);
	json_object_object_add(answer, "token", json_str(jwt));
	json_object_object_add(answer, "token_type", json_str("Bearer"));
	json_object_object_add(
	    answer, "expires_at", json_str(PQgetvalue(res, 0, 3)));
	json_object_object_add(
	    answer, "session_id", json_i64(claims.session_id));
	json_object_object_add(answer, "csrf_token", json_str(csrf));
	set_cookies(c, jwt, csrf, claims.exp - claims.iat);
	return R_SUCCESS;
}

/* {1,2,3} for n ids (0 stands for none: no row has it). */
static const char *
id_array(arena *a, const auth_stream_cred *v, size_t n, bool tokens)
{
	buf b = BUF_INIT;
	const char *s;

	buf_putc(&b, '{');
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%" PRId64, i ? "," : "",
		    tokens ? v[i].token_id : v[i].session_id);
	buf_putc(&b, '}');
	s = arena_strdup(a, b.data);
	buf_free(&b);
	return s;
}

rerr
auth_check_streams(
    db *d, arena *a, const char *schema, auth_stream_cred *v, size_t n)
{
	const char *p[2];
	PGresult *res;
	rerr e;

	for (size_t i = 0; i < n; i++)
		v[i].ended = NULL;
	if (n == 0)
		return R_SUCCESS;
	p[0] = id_array(a, v, n, false);
	p[1] = id_array(a, v, n, true);
	if ((e = db_ensure(d)) != R_SUCCESS ||
	    (e = db_begin(d, schema)) != R_SUCCESS)
		return R_UNAVAILABLE;
	/* The same rules as a request's credential check (session_state,
	 * api_token_state): a row that is gone was deleted with its user. */
	res = db_query(d, a, &e,
	    "SELECT i, why FROM (SELECT q.i, CASE "
	    "WHEN u.id IS NULL THEN 'revoked' "
	    "WHEN u.deleted_at IS NOT NULL THEN 'deleted' "
	    "WHEN u.suspended THEN 'suspended' "
	    "WHEN s.id IS NOT NULL AND s.revoked_at IS NOT NULL "
	    "THEN coalesce(nullif(s.revoked_reason, ''), 'revoked') "
	    "WHEN s.id IS NOT NULL AND s.expires_at <= now() THEN 'expired' "
	    "WHEN t.id IS NOT NULL AND t.revoked_at IS NOT NULL "
	    "THEN 'token_revoked' "
	    "WHEN u.must_change_password THEN 'password_reset' END AS why "
	    "FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY "
	    "AS q(sid, tid, i) "
	    "LEFT JOIN sessions s ON s.id = q.sid AND q.sid <> 0 "
	    "LEFT JOIN api_tokens t ON t.id = q.tid AND q.tid <> 0 "
	    "LEFT JOIN users u ON u.id = coalesce(s.user_id, t.user_id)) x "
	    "WHERE why IS NOT NULL",
	    2, p);
	if (res == NULL) {
		db_rollback(d);
		return R_UNAVAILABLE;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		long long i = strtoll(PQgetvalue(res, r, 0), NULL, 10);

		if (i >= 1 && (size_t)i <= n)
			v[i - 1].ended = PQgetvalue(res, r, 1);
	}
	db_rollback(d);
	return R_SUCCESS;
}
