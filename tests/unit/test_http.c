/* Unit tests: lib/http (CGI environment parsing, limits, output). */
#include <stdlib.h>

#include "http.h"
#include "tap.h"

static const http_limits lim = {
	.max_uri = 256,
	.max_headers = 4,
	.max_header_bytes = 200,
	.max_body = 100,
	.max_query_params = 3,
};

static rerr
parse(arena *a, http_request *r, const char **why, const char *method,
    const char *uri, const char *extra1, const char *extra2)
{
	static char m[64], u[1024];
	char *env[6] = { 0 };
	int n = 0;

	snprintf(m, sizeof(m), "REQUEST_METHOD=%s", method);
	env[n++] = m;
	if (uri) {
		snprintf(u, sizeof(u), "REQUEST_URI=%s", uri);
		env[n++] = u;
	}
	if (extra1)
		env[n++] = (char *)extra1;
	if (extra2)
		env[n++] = (char *)extra2;
	return http_request_from_env(r, a, env, "", &lim, why);
}

typedef struct {
	const char *data;
	size_t len, pos;
} src;

static ssize_t
mem_read(void *ctx, char *dst, size_t n)
{
	src *s = ctx;
	size_t k = s->len - s->pos < n ? s->len - s->pos : n;

	/* one byte at a time stresses the read loop */
	if (k > 1)
		k = 1;
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

int
main(void)
{
	arena *a = arena_new();
	http_request r;
	const char *why;
	size_t len;

	ok(parse(a, &r, &why, "GET", "/api/v1/health?x=1&y=a%20b&z=c+d",
	       "HTTP_ACCEPT=application/json",
	       "HTTP_X_FORWARDED_FOR=1.2.3.4") == R_SUCCESS,
	    "plain request parses");
	is_str(r.method, "GET", "method");
	is_str(r.path, "/api/v1/health", "path");
	is_str(r.query, "x=1&y=a%20b&z=c+d", "raw query");
	is_int(r.n_params, 3, "three params");
	is_str(http_param(&r, "y", NULL), "a b", "percent-decoded param");
	is_str(http_param(&r, "z", NULL), "c d", "plus is space in query");
	ok(http_param(&r, "nope", NULL) == NULL, "absent param is NULL");
	is_str(http_header(&r, "Accept"), "application/json",
	    "header lookup is case-insensitive");
	is_str(http_header(&r, "x-forwarded-for"), "1.2.3.4",
	    "underscores become dashes");
	is_int(strlen(r.request_id), 32, "request id is 32 hex chars");
	arena_reset(a);

	/* path decoding and traversal */
	ok(parse(a, &r, &why, "GET", "/api/v1/caf%C3%A9", NULL, NULL) ==
	            R_SUCCESS &&
	        strcmp(r.path, "/api/v1/caf\xc3\xa9") == 0,
	    "UTF-8 path decoded");
	is_int(parse(a, &r, &why, "GET", "/api/../etc/passwd", NULL, NULL),
	    R_BAD_REQUEST, "'..' segment refused");
	is_int(parse(a, &r, &why, "GET", "/api/%2e%2e/etc/passwd", NULL, NULL),
	    R_BAD_REQUEST, "encoded '..' refused");
	is_int(parse(a, &r, &why, "GET", "/api/./x", NULL, NULL), R_BAD_REQUEST,
	    "'.' segment refused");
	is_int(parse(a, &r, &why, "GET", "/api/..", NULL, NULL), R_BAD_REQUEST,
	    "trailing '..' refused");
	is_int(parse(a, &r, &why, "GET", "/api/a%2fb", NULL, NULL),
	    R_BAD_REQUEST, "encoded slash refused");
	is_int(parse(a, &r, &why, "GET", "/api/a%00b", NULL, NULL),
	    R_BAD_REQUEST, "encoded NUL refused");
	is_int(parse(a, &r, &why, "GET", "/api/a%5c..%5cb", NULL, NULL),
	    R_BAD_REQUEST, "encoded backslash refused");
	is_int(parse(a, &r, &why, "GET", "/api/%zz", NULL, NULL), R_BAD_REQUEST,
	    "malformed escape refused");
	is_int(parse(a, &r, &why, "GET", "/api/%4", NULL, NULL), R_BAD_REQUEST,
	    "truncated escape refused");
	is_int(parse(a, &r, &why, "GET", "/api/%ff%fe", NULL, NULL),
	    R_BAD_REQUEST, "invalid UTF-8 path refused");
	is_int(parse(a, &r, &why, "GET", "api/v1", NULL, NULL), R_BAD_REQUEST,
	    "relative path refused");
	ok(parse(a, &r, &why, "GET", "/a..b/..c", NULL, NULL) == R_SUCCESS,
	    "dots inside names are fine");

	/* method */
	is_int(parse(a, &r, &why, "G ET", "/", NULL, NULL), R_BAD_REQUEST,
	    "space in method refused");
	is_int(parse(a, &r, &why, "", "/", NULL, NULL), R_BAD_REQUEST,
	    "empty method refused");
	is_int(parse(a, &r, &why, "AVERYLONGMETHODNAME", "/", NULL, NULL),
	    R_BAD_REQUEST, "overlong method refused");

	/* limits */
	{
		char longuri[400];

		memset(longuri, 'a', sizeof(longuri) - 1);
		longuri[0] = '/';
		longuri[sizeof(longuri) - 1] = '\0';
		is_int(parse(a, &r, &why, "GET", longuri, NULL, NULL),
		    R_URI_TOO_LONG, "long URI is 414");
	}
	is_int(parse(a, &r, &why, "GET", "/?a=1&b=2&c=3&d=4", NULL, NULL),
	    R_BAD_REQUEST, "too many query params");
	is_int(parse(a, &r, &why, "GET", "/?a=%zz", NULL, NULL), R_BAD_REQUEST,
	    "malformed query escape");
	is_int(parse(a, &r, &why, "GET", "/?a=%ff", NULL, NULL), R_BAD_REQUEST,
	    "invalid UTF-8 in query");
	is_int(parse(a, &r, &why, "GET", "/?a%00=1", NULL, NULL), R_BAD_REQUEST,
	    "NUL in query key");
	ok(parse(a, &r, &why, "GET", "/?a=x%00y", NULL, NULL) == R_SUCCESS &&
	        (http_param(&r, "a", &len), len == 3),
	    "NUL in a value is kept with its length for the handler to judge");
	{
		char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/",
			"HTTP_A=1", "HTTP_B=2", "HTTP_C=3", "HTTP_D=4",
			"HTTP_E=5", NULL };

		is_int(http_request_from_env(&r, a, env, "", &lim, &why),
		    R_HEADERS_TOO_LARGE, "too many headers is 431");
	}
	{
		static char big[300];
		char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/", big,
			NULL };

		memset(big, 'v', sizeof(big) - 1);
		memcpy(big, "HTTP_BIG=", 9);
		is_int(http_request_from_env(&r, a, env, "", &lim, &why),
		    R_HEADERS_TOO_LARGE, "oversized headers are 431");
	}
	is_int(parse(a, &r, &why, "POST", "/", "CONTENT_LENGTH=101", NULL),
	    R_PAYLOAD_TOO_LARGE, "body over the limit is 413 before reading");
	is_int(parse(a, &r, &why, "POST", "/", "CONTENT_LENGTH=-1", NULL),
	    R_BAD_REQUEST, "negative Content-Length");
	is_int(parse(a, &r, &why, "POST", "/", "CONTENT_LENGTH=1e3", NULL),
	    R_BAD_REQUEST, "non-numeric Content-Length");
	is_int(parse(a, &r, &why, "POST", "/",
	           "CONTENT_LENGTH=99999999999999999999999", NULL),
	    R_BAD_REQUEST, "overflowing Content-Length");

	/* body */
	{
		src s = { "{\"a\":1}", 7, 0 };

		ok(parse(a, &r, &why, "POST", "/", "CONTENT_LENGTH=7",
		       "CONTENT_TYPE=Application/JSON; charset=utf-8") ==
		        R_SUCCESS,
		    "POST parses");
		ok(http_read_body(&r, mem_read, &s, &why) == R_SUCCESS &&
		        r.body_len == 7 && strcmp(r.body, "{\"a\":1}") == 0,
		    "body read in pieces");
		is_str(http_media_type(&r), "application/json",
		    "media type lower-cased without parameters");
	}
	{
		src s = { "abc", 3, 0 };

		parse(a, &r, &why, "POST", "/", "CONTENT_LENGTH=10", NULL);
		is_int(http_read_body(&r, mem_read, &s, &why), R_BAD_REQUEST,
		    "short body is 400");
	}

	/* a chunked body without Content-Length (mod_proxy_fcgi): read to
	 * the end of input, within the limit */
	{
		static char big[70000];
		src s = { "{\"a\":[1,2,3]}", 13, 0 };

		ok(parse(a, &r, &why, "POST", "/",
		       "HTTP_TRANSFER_ENCODING=chunked", NULL) == R_SUCCESS,
		    "chunked POST parses");
		ok(http_read_body(&r, mem_read, &s, &why) == R_SUCCESS &&
		        r.body_len == 13 &&
		        strcmp(r.body, "{\"a\":[1,2,3]}") == 0,
		    "chunked body read to the end of input");
		memset(big, 'x', sizeof(big));
		s = (src){ big, sizeof(big), 0 };
		parse(a, &r, &why, "POST", "/",
		    "HTTP_TRANSFER_ENCODING=chunked", NULL);
		r.max_body = 65536 + 100; /* past the first buffer */
		is_int(http_read_body(&r, mem_read, &s, &why),
		    R_PAYLOAD_TOO_LARGE,
		    "a chunked body over the limit is 413");
		s = (src){ big, 65536 + 100, 0 };
		parse(a, &r, &why, "POST", "/",
		    "HTTP_TRANSFER_ENCODING=chunked", NULL);
		r.max_body = 65536 + 100;
		ok(http_read_body(&r, mem_read, &s, &why) == R_SUCCESS &&
		        r.body_len == 65536 + 100,
		    "a chunked body exactly at the limit is read");
		s = (src){ "abc", 3, 0 };
		parse(a, &r, &why, "POST", "/", NULL, NULL);
		ok(http_read_body(&r, mem_read, &s, &why) == R_SUCCESS &&
		        r.body_len == 0,
		    "no length and not chunked: no body is read");
	}

	/* fallbacks: no REQUEST_URI, base path */
	{
		char *env[] = { "REQUEST_METHOD=GET",
			"SCRIPT_NAME=/cgi/roost.cgi",
			"PATH_INFO=/api/v1/health", NULL };

		ok(http_request_from_env(
		       &r, a, env, "/cgi/roost.cgi", &lim, &why) == R_SUCCESS &&
		        strcmp(r.path, "/api/v1/health") == 0,
		    "SCRIPT_NAME + PATH_INFO with base path stripped");
	}
	{
		char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/chatx/api",
			NULL };

		ok(http_request_from_env(&r, a, env, "/chat", &lim, &why) ==
		            R_SUCCESS &&
		        strcmp(r.path, "/chatx/api") == 0,
		    "base path only strips whole segments");
	}
	{
		char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/",
			"HTTP_X_REQUEST_ID=abc-123_XYZ", NULL };

		http_request_from_env(&r, a, env, "", &lim, &why);
		is_str(r.request_id, "abc-123_XYZ",
		    "client request id kept when sane");
	}
	{
		char *env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/",
			"HTTP_X_REQUEST_ID=bad id\" with stuff", NULL };

		http_request_from_env(&r, a, env, "", &lim, &why);
		is_int(strlen(r.request_id), 32, "hostile request id replaced");
	}

	/* output */
	{
		http_response res;
		buf out = BUF_INIT;

		http_response_init(&res, a);
		res.status = 404;
		for (int i = 0; i < 20; i++)
			http_set_header(&res, a, "X-N", "v");
		buf_puts(&res.body, "{}");
		ok(http_response_write(&res, buf_write, &out) == 0, "write ok");
		ok(strncmp(out.data, "Status: 404 Not Found\r\n", 23) == 0,
		    "status line");
		ok(strstr(out.data, "Content-Length: 2\r\n\r\n{}") != NULL,
		    "content length then body");
		is_int(res.n_headers, 20,
		    "headers grow past the initial capacity");
		buf_reset(&out);
		res.head_only = true;
		http_response_write(&res, buf_write, &out);
		ok(strstr(out.data, "Content-Length: 2\r\n\r\n") != NULL &&
		        out.data[out.len - 1] == '\n',
		    "HEAD sends headers only");
		buf_free(&out);
		http_response_free(&res);
	}
	arena_free(a);
	return tap_done();
}
