/* libFuzzer target: the whole request path from untrusted input.
 *
 * Input: CGI variables, one "NAME=value" per line, then an empty line, then
 * the body. Everything a web server could hand a worker goes through
 * app_handle() exactly as in production (the database and Redis point at
 * sockets that do not exist, so backends answer 503), and the body is also
 * run through the strict JSON parser and the route table directly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "json.h"
#include "log.h"

#define MAX_VARS 64

static app ap;
static buf out;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	setenv("ROOST_DATABASE_URL", "host=/nonexistent/pg dbname=x", 1);
	setenv("ROOST_REDIS_URL", "unix:///nonexistent/redis.sock", 1);
	setenv("ROOST_BODY_LIMIT", "65536", 1);
	setenv("ROOST_LOG_LEVEL", "error", 1);
	setenv("ROOST_JWT_SECRET",
	    "0123456789abcdef0123456789abcdef0123456789abcdef", 1);
	log_init("fuzz_request", LOG_ERROR);
	if (app_init(&ap, NULL, "fuzz", err, sizeof(err)) != 0)
		abort();
	return 0;
}

typedef struct {
	const char *p;
	size_t len, pos;
} src;

static ssize_t
mem_read(void *ctx, char *dst, size_t n)
{
	src *s = ctx;
	size_t k = s->len - s->pos < n ? s->len - s->pos : n;

	memcpy(dst, s->p + s->pos, k);
	s->pos += k;
	return (ssize_t)k;
}

static ssize_t
sink(void *ctx, const char *p, size_t n)
{
	buf_append(ctx, p, n);
	return (ssize_t)n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *vars[MAX_VARS + 1];
	size_t nv = 0, i = 0;
	http_response res;
	src body;

	memcpy(copy, data, size);
	copy[size] = '\0';
	/* Split the variables; NULs inside end a variable early, as they
	 * would in a real environment. */
	while (i < size && nv < MAX_VARS) {
		char *line = copy + i, *nl = memchr(line, '\n', size - i);
		size_t n = nl ? (size_t)(nl - line) : size - i;

		if (n == 0) {
			i++;
			break;
		}
		line[n] = '\0';
		if (strchr(line, '=') != NULL)
			vars[nv++] = line;
		i += n + 1;
	}
	vars[nv] = NULL;
	body.p = copy + (i < size ? i : size);
	body.len = i < size ? size - i : 0;
	body.pos = 0;

	http_response_init(&res, ap.arena);
	app_handle(&ap, vars, mem_read, &body, &res);
	buf_reset(&out);
	http_response_write(&res, sink, &out);
	app_request_done(&ap, &res);

	/* The body straight into the strict parser, and the path straight
	 * into the router, independent of what the pipeline decided. */
	{
		json_object *obj;
		json_err je;
		route_match m;

		(void)json_parse_strict(ap.arena, body.p, body.len, &obj, &je);
		(void)router_match(ap.routes, ap.n_routes, "GET",
		    body.len ? arena_strndup(
		                   ap.arena, body.p, strnlen(body.p, body.len))
		             : "/",
		    ap.arena, &m);
		arena_reset(ap.arena);
	}
	free(copy);
	return 0;
}
