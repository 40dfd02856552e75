/* app: long-lived state and the request pipeline shared by all front ends. */
#include "app.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "migrate.h"
#include "password.h"
#include "ratelimit.h"
#include "rooms.h"
#include "users.h"

/* ROOST_ADMIN_EMAIL + ROOST_ADMIN_PASSWORD: create that admin on first
 * start, when the tenant has no admin yet. Workers starting together may
 * race; the unique email makes the loser's insert fail harmlessly. */
static void
bootstrap_admin(app *ap)
{
	const char *email = getenv("ROOST_ADMIN_EMAIL");
	const char *pw = getenv("ROOST_ADMIN_PASSWORD");
	const char *why = NULL;
	PGresult *res;
	int64_t id;
	rerr e;

	if (email == NULL || pw == NULL || *email == '\0')
		return;
	if (db_ensure(ap->db) != R_SUCCESS ||
	    db_begin(ap->db, ap->cfg.schema) != R_SUCCESS) {
		log_warn("ROOST_ADMIN_EMAIL: the database is unreachable; "
		         "the admin will be created at a later start");
		return;
	}
	res = db_query(ap->db, ap->arena, &e,
	    "SELECT 1 FROM users WHERE "
	    "role = 'admin' AND deleted_at IS NULL LIMIT 1",
	    0, NULL);
	if (res != NULL && PQntuples(res) == 0) {
		settings s;

		e = settings_load(ap->db, ap->arena, &s);
		if (e == R_SUCCESS)
			e = users_create(ap->db, ap->arena, email, "Admin", pw,
			    strlen(pw), s.password_min_length, "admin", false,
			    &id, &why);
		if (e == R_SUCCESS)
			e = rooms_join_default(ap->db, ap->arena, &s, id);
		if (e == R_SUCCESS && db_commit(ap->db) == R_SUCCESS)
			log_info(
			    "created the first admin %s from ROOST_ADMIN_EMAIL",
			    email);
		else if (e != R_CONFLICT)
			log_error(
			    "ROOST_ADMIN_EMAIL: %s", why ? why : "failed");
	}
	db_rollback(ap->db);
	arena_reset(ap->arena);
}

int
app_init(app *ap, const char *config_file, const char *frontend, char *err,
    size_t errlen)
{
	int bad;

	memset(ap, 0, sizeof(*ap));
	if (config_load(&ap->cfg, config_file, err, errlen) != 0)
		return -1;
	log_set_level((log_level)log_level_parse(ap->cfg.log_level));
	if (password_init() != 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		goto fail;
	}
	/* Without a strong key every token would be forgeable (libjwt
	 * verifies nothing with an empty key): refuse to serve at all. */
	if (strcmp(frontend, "roostctl") != 0 && ap->cfg.jwt_secret == NULL) {
		snprintf(err, errlen,
		    "ROOST_JWT_SECRET is not set (64 random "
		    "hex characters: openssl rand -hex 32)");
		goto fail;
	}
	ap->frontend = frontend;
	ap->routes = api_routes;
	ap->n_routes = api_routes_count;
	bad = router_check_table(ap->routes, ap->n_routes);
	if (bad >= 0) {
		snprintf(err, errlen, "route table entry %d is malformed", bad);
		goto fail;
	}
	ap->limits = (http_limits){
		.max_uri = 8192,
		.max_headers = 100,
		.max_header_bytes = 32768,
		.max_body = ap->cfg.body_limit,
		.max_query_params = 64,
	};
	ap->db = db_new(ap->cfg.database_url, ap->cfg.connect_timeout_s,
	    ap->cfg.statement_timeout_ms, ap->cfg.pg_prepared);
	ap->kv = kv_new(
	    ap->cfg.redis_url, ap->cfg.connect_timeout_s * 1000, err, errlen);
	if (ap->kv == NULL)
		goto fail;
	ap->arena = arena_new();
	if (ap->cfg.migrate_on_start) {
		migrate_report rep;
		char merr[512];

		if (migrate_run(ap->db, ap->cfg.schema, ap->cfg.sql_dir, &rep,
		        merr, sizeof(merr)) != R_SUCCESS)
			log_error("migrations at start failed: %s", merr);
		else if (rep.applied > 0)
			log_info(
			    "applied %d migration(s) at start", rep.applied);
	}
	if (strcmp(frontend, "roostctl") != 0)
		bootstrap_admin(ap);
	return 0;
fail:
	db_free(ap->db);
	kv_free(ap->kv);
	config_free(&ap->cfg);
	memset(ap, 0, sizeof(*ap));
	return -1;
}

void
app_free(app *ap)
{
	db_free(ap->db);
	kv_free(ap->kv);
	arena_free(ap->arena);
	config_free(&ap->cfg);
	memset(ap, 0, sizeof(*ap));
}

rerr
reply_json(req_ctx *c, int status, json_object *obj)
{
	const char *s = json_object_to_json_string_ext(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	c->res->status = status;
	buf_reset(&c->res->body);
	buf_puts(&c->res->body, s);
	json_object_put(obj);
	http_set_header(
	    c->res, c->a, "Content-Type", "application/json; charset=utf-8");
	return R_SUCCESS;
}

rerr
fail(req_ctx *c, rerr e, const char *field, const char *fmt, ...)
{
	va_list ap;

	c->err_field = field;
	if (fmt != NULL) {
		va_start(ap, fmt);
		c->err_message = arena_vprintf(c->a, fmt, ap);
		va_end(ap);
	}
	return e;
}

rerr
fail_json(req_ctx *c, rerr e, const json_err *je)
{
	if (je->field == NULL)
		return fail(c, e, NULL, "%s", je->message);
	return fail(c, e, je->field, "%s %s", je->field, je->message);
}

void
render_error(req_ctx *c, rerr e)
{
	json_object *body = json_object_new_object(), *err;

	if (e == R_SUCCESS)
		e = R_INTERNAL;
	err = json_object_new_object();
	json_object_object_add(err, "code", json_str(rerr_code(e)));
	json_object_object_add(err, "message",
	    json_str(c->err_message ? c->err_message : rerr_message(e)));
	if (c->err_field != NULL)
		json_object_object_add(err, "field", json_str(c->err_field));
	json_object_object_add(body, "error", err);
	/* A 503's Retry-After comes from app_answer_headers. */
	reply_json(c, rerr_status(e), body);
}

const settings *
req_settings(req_ctx *c, rerr *err)
{
	if (c->settings == NULL) {
		settings *s = arena_calloc(c->a, 1, sizeof(*s));

		if (c->settings_rows != NULL)
			settings_from_rows(c->a, c->settings_rows, s);
		else if ((*err = settings_load(c->app->db, c->a, s)) !=
		    R_SUCCESS)
			return NULL;
		c->settings = s;
	}
	*err = R_SUCCESS;
	return c->settings;
}

void
req_ratelimit_headers(req_ctx *c, const rl_result *r)
{
	if (c->rl == NULL) {
		c->rl = arena_alloc(c->a, sizeof(*c->rl));
	} else if (c->rl->limited ||
	    (!r->limited && c->rl->remaining <= r->remaining)) {
		return;
	}
	*c->rl = *r;
}

void
app_answer_headers(const roost_config *cfg, http_response *res, arena *a,
    const char *request_id, bool event_stream, const rl_result *rl)
{
	if (request_id != NULL && *request_id != '\0')
		http_set_header(res, a, "X-Request-Id", request_id);
	http_set_header(
	    res, a, "Cache-Control", event_stream ? "no-cache" : "no-store");
	http_set_header(res, a, "X-Content-Type-Options", "nosniff");
	/* An answer is JSON or an event stream, never a page to render: it
	 * may load nothing, be framed by no one, and send no Referer onward.
	 * The web client's own pages get their policy from the web server
	 * (httpd-conf/), which leaves /api/ alone so these come once. */
	http_set_header(res, a, "Content-Security-Policy",
	    "default-src 'none'; frame-ancestors 'none'");
	http_set_header(res, a, "X-Frame-Options", "DENY");
	http_set_header(res, a, "Referrer-Policy", "no-referrer");
	/* On every answer, whatever the transport of this hop: behind a
	 * proxy that ends TLS the request arrives as plain HTTP, yet the
	 * browser is on HTTPS (and ignores the header over plain HTTP). */
	if (cfg->hsts[0] != '\0')
		http_set_header(res, a, "Strict-Transport-Security", cfg->hsts);
	/* A 503 (PostgreSQL or Redis down) says when to try again; a 429
	 * gets the end of its window below. */
	if (res->status == 503)
		http_set_header(res, a, "Retry-After", "1");
	if (rl == NULL)
		return;
	http_set_header(res, a, "X-RateLimit-Limit",
	    arena_printf(a, "%lld", (long long)rl->limit));
	http_set_header(res, a, "X-RateLimit-Remaining",
	    arena_printf(a, "%lld", (long long)rl->remaining));
	http_set_header(res, a, "X-RateLimit-Reset",
	    arena_printf(a, "%lld", (long long)rl->reset));
	if (rl->limited) {
		long long wait = (long long)rl->reset - (long long)time(NULL);

		http_set_header(res, a, "Retry-After",
		    arena_printf(a, "%lld", wait < 1 ? 1 : wait));
	}
}

rerr
req_commit(req_ctx *c)
{
	rerr e;

	if (!db_in_tx(c->app->db))
		return R_SUCCESS;
	e = db_commit(c->app->db);
	db_rollback(c->app->db);
	if (e != R_SUCCESS)
		return fail(c, e, NULL, "the change could not be saved");
	auth_after_commit(c);
	return R_SUCCESS;
}

/* Identity, role, forced password change and the per-user request limit,
 * for routes that need a signed-in user. */
static rerr
authorize(req_ctx *c, const route *r)
{
	const settings *s;
	rl_result rl;
	rerr e;

	c->api_hits = -1; /* counted with the session check, if it can */
	if ((e = auth_authenticate(c)) != R_SUCCESS) {
		/* Only signed-in requests count: a refused session (revoked,
		 * suspended) must not use up its user's requests. */
		rerr ignored;

		if (c->api_hits >= 0)
			(void)kv_cmd(c->app->kv, c->a, &ignored, "DECR",
			    c->api_key, NULL);
		return e;
	}
	if (r->auth == AUTH_ADMIN && !c->user.admin)
		return fail(c, R_FORBIDDEN, NULL, "this needs the admin role");
	if (c->user.must_change_password && !(r->flags & ROUTE_PW_CHANGE_OK))
		return fail(c, R_PASSWORD_CHANGE_REQUIRED, NULL, NULL);
	if ((s = req_settings(c, &e)) == NULL)
		return e;
	if (c->api_hits >= 0) {
		ratelimit_fill(c->api_hits, s->requests_per_minute,
		    c->api_window, API_LIMIT_WINDOW_S, &rl);
		e = R_SUCCESS;
	} else {
		/* API tokens (and tickets of API tokens) have no session,
		 * and when Redis failed PostgreSQL checked it: count on its
		 * own. */
		e = ratelimit_hit(c->app->kv, c->a, c->tenant.id, "api",
		    arena_printf(c->a, "%lld", (long long)c->user.user_id),
		    s->requests_per_minute, API_LIMIT_WINDOW_S, &rl);
	}
	if (e != R_SUCCESS) {
		/* Fails open: a cache outage must not take the API down. */
		log_warn("rate limiter unavailable; request allowed");
		return R_SUCCESS;
	}
	req_ratelimit_headers(c, &rl);
	if (rl.limited)
		return fail(c, R_RATE_LIMITED, NULL,
		    "more than %lld requests a minute; slow down",
		    (long long)rl.limit);
	return R_SUCCESS;
}

static void
put_json(void *o)
{
	json_object_put(o);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Everything between parsing and the handler. Returns the handler's
 * outcome, or the error that stopped the request first. */
static rerr
pipeline(req_ctx *c, char *const *envp, http_read_fn read_fn, void *read_ctx)
{
	app *ap = c->app;
	const char *why = NULL;
	const route *r;
	rerr e;

	e = http_request_from_env(
	    c->req, c->a, envp, ap->cfg.base_path, &ap->limits, &why);
	log_set_request_id(c->req->request_id);
	if (strcmp(c->req->method, "HEAD") == 0)
		c->res->head_only = true;
	if (e != R_SUCCESS)
		return fail(c, e, NULL, "%s", why);

	e = router_match(ap->routes, ap->n_routes, c->req->method, c->req->path,
	    c->a, &c->match);
	switch (e) {
	case R_SUCCESS: break;
	case R_NOT_FOUND: return fail(c, e, NULL, "no such endpoint");
	case R_METHOD_NOT_ALLOWED:
		http_set_header(c->res, c->a, "Allow", c->match.allow);
		return fail(c, e, NULL, "%s is not allowed here; allowed: %s",
		    c->req->method, c->match.allow);
	case R_VALIDATION:
		return fail(c, e, arena_strdup(c->a, c->match.bad_param),
		    "must be a positive integer id");
	default: return e;
	}
	r = c->match.route;

	/* Read the body even when the route ignores it: the front end must
	 * consume its input before answering. */
	if ((e = http_read_body(c->req, read_fn, read_ctx, &why)) != R_SUCCESS)
		return fail(c, e, NULL, "%s", why);
	if ((r->flags & ROUTE_JSON_BODY) && (r->flags & ROUTE_BODY_OPTIONAL) &&
	    c->req->body_len == 0) {
		c->body = json_object_new_object();
		arena_on_cleanup(c->a, put_json, c->body);
	} else if (r->flags & ROUTE_JSON_BODY) {
		const char *mt = http_media_type(c->req);
		json_err je = { 0 };

		if (c->req->body_len == 0)
			return fail(
			    c, R_BAD_REQUEST, NULL, "a JSON body is required");
		if (mt == NULL || strcmp(mt, "application/json") != 0)
			return fail(c, R_UNSUPPORTED_MEDIA_TYPE, NULL,
			    "the body must be sent as application/json");
		e = json_parse_strict(
		    c->a, c->req->body, c->req->body_len, &c->body, &je);
		if (e == R_SUCCESS)
			e = json_require_object(c->body, &je);
		if (e != R_SUCCESS)
			return fail_json(c, e, &je);
	}
	if ((e = tenant_resolve(&ap->cfg, c->req, &c->tenant)) != R_SUCCESS)
		return fail(c, e, NULL, "unknown tenant");
	if (!(r->flags & ROUTE_NO_DB)) {
		/* One transaction per request: everything a handler writes
		 * commits together, before the response goes out. */
		if ((e = db_ensure(ap->db)) != R_SUCCESS ||
		    (e = db_begin_fetch(ap->db, c->a, c->tenant.schema,
		         SETTINGS_QUERY, &c->settings_rows)) != R_SUCCESS)
			return fail(c, e, NULL, "the database is unavailable");
	}
	c->allow_ticket = (r->flags & ROUTE_TICKET_OK) != 0;
	if (r->auth != AUTH_NONE) {
		if (r->flags & ROUTE_NO_DB)
			return fail(c, R_INTERNAL, NULL, "misdeclared route");
		if ((e = authorize(c, r)) != R_SUCCESS)
			return e;
	}
	return r->handler(c);
}

void
app_handle(app *ap, char *const *envp, http_read_fn read_fn, void *read_ctx,
    http_response *res)
{
	http_request req;
	req_ctx c = {
		.app = ap,
		.a = ap->arena,
		.req = &req,
		.res = res,
	};
	double t0 = now_ms();
	rerr e;

	memset(&ap->handoff, 0, sizeof(ap->handoff));
	ap->response_sent = false;
	e = pipeline(&c, envp, read_fn, read_ctx);
	if (db_in_tx(ap->db)) {
		if (e == R_SUCCESS) {
			e = db_commit(ap->db);
			if (e == R_SUCCESS) {
				auth_after_commit(&c);
			} else {
				/* Nothing the handler promised (cookies, a
				 * Location) may leave with the error. */
				res->n_headers = 0;
				fail(&c, e, NULL,
				    "the change could not be saved");
			}
		}
		db_rollback(ap->db);
	}
	if (e != R_SUCCESS) {
		buf_reset(&res->body);
		render_error(&c, e);
	}
	/* A handler that wrote its own response (a worker's SSE stream)
	 * put these on its head already. */
	if (!ap->response_sent)
		app_answer_headers(&ap->cfg, res, c.a, req.request_id,
		    ap->handoff.active && ap->handoff.sse, c.rl);
	if (ap->handoff.active && c.rl != NULL) {
		ap->handoff.has_rl = true;
		ap->handoff.rl = *c.rl;
	}
	ap->served++;
	log_info("%s %s %d %.1fms", req.method, req.path, res->status,
	    now_ms() - t0);
}

void
app_request_done(app *ap, http_response *res)
{
	http_response_free(res);
	arena_reset(ap->arena);
	log_set_request_id(NULL);
}
