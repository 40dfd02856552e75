/* Unit tests: lib/app's request pipeline, in process, with fixture routes.
 * The database and Redis point at sockets that do not exist, so this also
 * checks that an unreachable backend is a 503, never a crash. */
#include <stdlib.h>

#include "app.h"
#include "json.h"
#include "log.h"
#include "tap.h"

static rerr
h_ping(req_ctx *c)
{
	return reply_json(c, 200, json_str("pong"));
}

static rerr
h_echo(req_ctx *c)
{
	const char *name;
	json_err e = { 0 };
	static const char *const allowed[] = { "name", NULL };

	if (json_reject_unknown(c->body, allowed, &e) != R_SUCCESS ||
	    json_get_string(c->body, "name", true, 1, 10, 0, &name, NULL, &e) !=
	        R_SUCCESS)
		return fail(c, R_VALIDATION, e.field, "%s", e.message);
	return reply_json(c, 201, json_str(name));
}

static rerr
h_item(req_ctx *c)
{
	return reply_json(c, 200, json_i64(router_param(&c->match, "id")->num));
}

static rerr
h_fails(req_ctx *c)
{
	return fail(c, R_CONFLICT, "thing", "already %s", "there");
}

static const route fixtures[] = {
	{ .method = "GET",
	    .pattern = "/t/ping",
	    .handler = h_ping,
	    .flags = ROUTE_NO_DB },
	{ .method = "POST",
	    .pattern = "/t/echo",
	    .handler = h_echo,
	    .flags = ROUTE_NO_DB | ROUTE_JSON_BODY },
	{ .method = "GET",
	    .pattern = "/t/items/{id:int}",
	    .handler = h_item,
	    .flags = ROUTE_NO_DB },
	{ .method = "GET", .pattern = "/t/needs-db", .handler = h_ping },
	{ .method = "GET",
	    .pattern = "/t/private",
	    .handler = h_ping,
	    .auth = AUTH_USER },
	{ .method = "GET",
	    .pattern = "/t/misdeclared",
	    .handler = h_ping,
	    .auth = AUTH_USER,
	    .flags = ROUTE_NO_DB },
	{ .method = "GET",
	    .pattern = "/t/fails",
	    .handler = h_fails,
	    .flags = ROUTE_NO_DB },
};

typedef struct {
	const char *data;
	size_t len, pos;
} src;

static ssize_t
mem_read(void *ctx, char *dst, size_t n)
{
	src *s = ctx;
	size_t k = s->len - s->pos < n ? s->len - s->pos : n;

	memcpy(dst, s->data + s->pos, k);
	s->pos += k;
	return (ssize_t)k;
}

static ssize_t
buf_write(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
	return (ssize_t)n;
}

static app ap;
static buf out;

/* Runs one request; returns the status; out holds the CGI output. */
static int
run(const char *method, const char *uri, const char *ctype, const char *body,
    size_t body_len)
{
	char m[64], u[4096], ct[128], cl[64];
	char *env[8] = { m, u, NULL };
	int n = 2;
	src s = { body, body_len, 0 };
	http_response res;
	int status;

	snprintf(m, sizeof(m), "REQUEST_METHOD=%s", method);
	snprintf(u, sizeof(u), "REQUEST_URI=%s", uri);
	if (ctype) {
		snprintf(ct, sizeof(ct), "CONTENT_TYPE=%s", ctype);
		env[n++] = ct;
	}
	if (body) {
		snprintf(cl, sizeof(cl), "CONTENT_LENGTH=%zu", body_len);
		env[n++] = cl;
	}
	buf_reset(&out);
	http_response_init(&res, ap.arena);
	app_handle(&ap, env, mem_read, &s, &res);
	http_response_write(&res, buf_write, &out);
	status = res.status;
	app_request_done(&ap, &res);
	return status;
}

static bool
has(const char *needle)
{
	return out.data && strstr(out.data, needle) != NULL;
}

int
main(void)
{
	char err[256];

	log_init("test_app", LOG_ERROR);
	setenv("ROOST_DATABASE_URL", "host=/nonexistent/socket dbname=x", 1);
	setenv("ROOST_REDIS_URL", "unix:///nonexistent/redis.sock", 1);
	setenv("ROOST_BODY_LIMIT", "65536", 1);
	setenv("ROOST_LOG_LEVEL", "error", 1);
	setenv("ROOST_JWT_SECRET",
	    "0123456789abcdef0123456789abcdef0123456789abcdef", 1);
	ok(app_init(&ap, NULL, "test", err, sizeof(err)) == 0, "app starts: %s",
	    err);
	ap.routes = fixtures;
	ap.n_routes = sizeof(fixtures) / sizeof(fixtures[0]);

	is_int(
	    run("GET", "/t/ping", NULL, NULL, 0), 200, "fixture route answers");
	ok(has("\r\n\r\n\"pong\""), "JSON body");
	ok(has("Content-Type: application/json; charset=utf-8"),
	    "JSON content type");
	ok(has("X-Request-Id: "), "request id header");
	ok(has("Cache-Control: no-store"), "no-store on API answers");

	is_int(run("GET", "/t/nope", NULL, NULL, 0), 404, "unknown path");
	ok(has("\"code\":\"NOT_FOUND\""), "404 error body");
	is_int(run("DELETE", "/t/ping", NULL, NULL, 0), 405, "wrong method");
	ok(has("Allow: GET, HEAD"), "405 has Allow");
	ok(has("\"code\":\"METHOD_NOT_ALLOWED\""), "405 error body");
	is_int(run("HEAD", "/t/ping", NULL, NULL, 0), 200, "HEAD works");
	ok(!has("pong"), "HEAD has no body");

	is_int(run("GET", "/t/items/12", NULL, NULL, 0), 200, "typed param");
	ok(has("\r\n\r\n12"), "param value reaches the handler");
	is_int(run("GET", "/t/items/-1", NULL, NULL, 0), 400,
	    "negative id is 400");
	ok(has("\"field\":\"id\"") && has("VALIDATION_ERROR"),
	    "names the id field");

	const char *good = "{\"name\":\"ana\"}";
	is_int(run("POST", "/t/echo", "application/json", good, strlen(good)),
	    201, "JSON route");
	ok(has("\"ana\""), "echoed");
	is_int(run("POST", "/t/echo", "text/plain", good, strlen(good)), 415,
	    "wrong content type");
	ok(has("UNSUPPORTED_MEDIA_TYPE"), "415 code");
	is_int(run("POST", "/t/echo", NULL, good, strlen(good)), 415,
	    "missing content type");
	is_int(run("POST", "/t/echo", "application/json", "", 0), 400,
	    "empty JSON body");
	is_int(run("POST", "/t/echo", "application/json", "{\"name\":", 8), 400,
	    "truncated JSON");
	ok(has("BAD_REQUEST"), "malformed JSON is BAD_REQUEST");
	is_int(run("POST", "/t/echo", "application/json", "[1]", 3), 400,
	    "array body refused");
	ok(has("VALIDATION_ERROR"), "non-object body is a validation error");
	const char *dup = "{\"name\":\"a\",\"name\":\"b\"}";
	is_int(run("POST", "/t/echo", "application/json", dup, strlen(dup)),
	    400, "duplicate keys refused");
	const char *bad8 = "{\"name\":\"\xff\"}";
	is_int(run("POST", "/t/echo", "application/json", bad8, strlen(bad8)),
	    400, "invalid UTF-8 refused");
	{
		char *deep = malloc(20001);

		memset(deep, '[', 10000);
		memset(deep + 10000, ']', 10000);
		is_int(run("POST", "/t/echo", "application/json", deep, 20000),
		    400, "10,000-deep nesting is 400");
		ok(has("BAD_REQUEST"), "deep nesting error body");
		free(deep);
		deep = calloc(1, 70000);
		memset(deep, ' ', 69999);
		is_int(run("POST", "/t/echo", "application/json", deep, 69999),
		    413, "body over the limit is 413");
		ok(has("PAYLOAD_TOO_LARGE"), "413 code");
		free(deep);
	}
	const char *unk = "{\"name\":\"a\",\"role\":\"admin\"}";
	is_int(run("POST", "/t/echo", "application/json", unk, strlen(unk)),
	    400, "unknown field refused");
	ok(has("\"field\":\"role\""), "names the unknown field");
	const char *lng = "{\"name\":\"abcdefghijk\"}";
	is_int(run("POST", "/t/echo", "application/json", lng, strlen(lng)),
	    400, "too long refused");
	ok(has("\"field\":\"name\""), "names the long field");

	is_int(run("GET", "/t/needs-db", NULL, NULL, 0), 503,
	    "database down is 503");
	ok(has("SERVICE_UNAVAILABLE") && has("Retry-After: 1"),
	    "503 body and Retry-After");
	is_int(run("GET", "/t/private", NULL, NULL, 0), 503,
	    "an auth route needs the database before anything else");
	is_int(run("GET", "/t/misdeclared", NULL, NULL, 0), 500,
	    "an auth route declared database-free is refused");
	is_int(
	    run("GET", "/t/fails", NULL, NULL, 0), 409, "handler error status");
	ok(has("\"field\":\"thing\"") && has("already there"),
	    "handler error detail");
	is_int(run("GET", "/t/../etc/passwd", NULL, NULL, 0), 400,
	    "traversal is 400");
	ok(has("BAD_REQUEST"), "traversal error body");

	/* the real table: health with both backends down */
	ap.routes = api_routes;
	ap.n_routes = api_routes_count;
	is_int(run("GET", "/api/v1/health", NULL, NULL, 0), 503,
	    "health with nothing up");
	ok(has("\"db\":\"down\"") && has("\"redis\":\"down\""),
	    "health names what is down");

	/* no growth over many requests */
	ap.routes = fixtures;
	ap.n_routes = sizeof(fixtures) / sizeof(fixtures[0]);
	for (int i = 0; i < 2000; i++)
		run("POST", "/t/echo", "application/json", good, strlen(good));
	ok(ap.served > 2000, "served counter");
	buf_free(&out);
	app_free(&ap);
	return tap_done();
}
