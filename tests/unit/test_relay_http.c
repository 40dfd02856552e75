/* Unit tests: realtime/http1 (the relay's request-head parser). */
#include <stdlib.h>

#include "buf.h"
#include "http1.h"
#include "tap.h"

static http1_request req;

static http1_status
parse(const char *s, int *status)
{
	const char *why;

	return http1_parse(s, strlen(s), &req, status, &why);
}

static bool
str_is(http1_str s, const char *want)
{
	return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static void
test_simple(void)
{
	const char *s =
	    "GET /api/v1/events?last_event_id=x&timeout=5 HTTP/1.1\r\n"
	    "Host: example\r\n"
	    "Accept:  text/event-stream \r\n"
	    "Cookie: a=1\r\n"
	    "\r\n";
	int st;

	is_int(parse(s, &st), HTTP1_DONE, "a complete head parses");
	ok(str_is(req.method, "GET"), "method");
	ok(str_is(req.target, "/api/v1/events?last_event_id=x&timeout=5"),
	    "target as sent");
	ok(str_is(req.path, "/api/v1/events"), "path stops at '?'");
	ok(str_is(req.query, "last_event_id=x&timeout=5"), "query");
	is_int(req.minor, 1, "HTTP/1.1");
	is_int(req.n_headers, 3, "three headers");
	ok(req.keep_alive, "1.1 keeps the connection by default");
	ok(!req.has_body, "no body");
	is_int(req.head_len, strlen(s), "head_len covers the blank line");
	ok(http1_header_get(&req, "ACCEPT") != NULL &&
	        str_is(*http1_header_get(&req, "accept"), "text/event-stream"),
	    "header lookup ignores case; value trimmed");
	ok(http1_header_get(&req, "x-missing") == NULL, "absent header");
	is_int(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &st), HTTP1_DONE,
	    "no query");
	ok(req.query.n == 0 && str_is(req.path, "/"), "empty query");
}

static void
test_incremental(void)
{
	const char *s = "GET /x HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n";
	size_t n = strlen(s);
	bool all_incomplete = true;
	const char *why;
	int st;

	for (size_t i = 0; i < n; i++)
		if (http1_parse(s, i, &req, &st, &why) != HTTP1_INCOMPLETE)
			all_incomplete = false;
	ok(all_incomplete, "every proper prefix is incomplete");
	is_int(http1_parse(s, n, &req, &st, &why), HTTP1_DONE,
	    "the whole head is done");
}

static void
test_pipelined(void)
{
	const char *s = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
	                "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t first;
	int st;

	is_int(parse(s, &st), HTTP1_DONE, "first of two");
	ok(str_is(req.path, "/a"), "first path");
	first = req.head_len;
	is_int(http1_parse(s + first, strlen(s) - first, &req, &st,
	           &(const char *){ NULL }),
	    HTTP1_DONE, "second of two");
	ok(str_is(req.path, "/b"), "second path");
}

static void
test_keep_alive(void)
{
	int st;

	parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", &st);
	ok(!req.keep_alive, "1.1 with close");
	parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n",
	    &st);
	ok(!req.keep_alive, "close among tokens, any case");
	parse("GET / HTTP/1.0\r\n\r\n", &st);
	ok(!req.keep_alive, "1.0 closes by default");
	is_int(req.minor, 0, "HTTP/1.0");
	parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &st);
	ok(req.keep_alive, "1.0 with keep-alive");
	ok(http1_has_token((http1_str){ " a , b,c ", 9 }, "b"), "token list");
	ok(!http1_has_token((http1_str){ "keep-alivex", 11 }, "keep-alive"),
	    "no prefix match");
}

static void
test_leniency(void)
{
	int st;

	is_int(parse("GET / HTTP/1.1\nHost: h\n\n", &st), HTTP1_DONE,
	    "bare LF line ends");
	is_int(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &st),
	    HTTP1_DONE, "empty lines before the request line");
	ok(str_is(req.method, "GET"), "method after empty lines");
	is_int(parse("GET / HTTP/1.1\r\nHost: h\r\nX-Bin: caf\xc3\xa9\r\n\r\n",
	           &st),
	    HTTP1_DONE, "obs-text in a value");
}

static void
expect_error(const char *s, int want, const char *name)
{
	int st = 0;
	http1_status r = parse(s, &st);

	ok(r == HTTP1_ERROR && st == want, "%s: %d", name, want);
	if (r != HTTP1_ERROR || st != want)
		printf("#   got status %d, code %d\n", (int)r, st);
}

static void
test_errors(void)
{
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400,
	    "obsolete line folding");
	expect_error("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400,
	    "space before the colon");
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400,
	    "control character in a value");
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400,
	    "bare CR in a value");
	expect_error("GET / HTTP/1.1\r\n\r\n", 400, "1.1 without Host");
	expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
	    "two Host headers");
	expect_error("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "HTTP/2.0");
	expect_error("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "HTTP/1.2");
	expect_error("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "lower case");
	expect_error("GET / HTTP/1.11\r\nHost: h\r\n\r\n", 400, "long version");
	expect_error(
	    "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "absolute-form");
	expect_error("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "asterisk-form");
	expect_error(
	    "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "space in the target");
	expect_error("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "double space");
	expect_error(
	    "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "method not a token");
	expect_error(
	    "GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400, "DEL in the target");
	expect_error("GET / HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n", 400,
	    "empty header name");
}

static void
test_bodies(void)
{
	int st;

	is_int(parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
	           &st),
	    HTTP1_DONE, "Content-Length: 0");
	ok(!req.has_body, "no body for 0");
	parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", &st);
	ok(req.has_body && req.content_length == 5, "a body of 5");
	parse(
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
	    &st);
	ok(req.has_body && req.chunked, "chunked body");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5x\r\n\r\n",
	    400, "malformed Content-Length");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	             "Content-Length: 6\r\n\r\n",
	    400, "conflicting Content-Length");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	             "Transfer-Encoding: chunked\r\n\r\n",
	    400, "Content-Length with Transfer-Encoding");
	expect_error("POST / HTTP/1.1\r\nHost: h\r\n"
	             "Content-Length: 99999999999999999999\r\n\r\n",
	    400, "overlong Content-Length");
}

static void
test_limits(void)
{
	char *big = malloc(HTTP1_MAX_HEAD + 64);
	const char *why;
	size_t n;
	int st;
	buf b = BUF_INIT;

	/* A head that never ends. */
	n = (size_t)snprintf(big, 64, "GET / HTTP/1.1\r\nX: ");
	memset(big + n, 'a', HTTP1_MAX_HEAD + 32 - n);
	is_int(http1_parse(big, HTTP1_MAX_HEAD - 1, &req, &st, &why),
	    HTTP1_INCOMPLETE, "just under the limit: wait");
	is_int(http1_parse(big, HTTP1_MAX_HEAD, &req, &st, &why), HTTP1_ERROR,
	    "at the limit without an end: error");
	is_int(st, 431, "431");
	/* One that ends just past the limit. */
	memcpy(big + HTTP1_MAX_HEAD - 2, "\r\n\r\n", 4);
	is_int(http1_parse(big, HTTP1_MAX_HEAD + 2, &req, &st, &why),
	    HTTP1_ERROR, "ending past the limit is too large");
	free(big);

	buf_puts(&b, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < HTTP1_MAX_HEADERS; i++)
		buf_printf(&b, "X-%d: v\r\n", i);
	buf_puts(&b, "\r\n");
	is_int(http1_parse(b.data, b.len, &req, &st, &why), HTTP1_ERROR,
	    "more than HTTP1_MAX_HEADERS fields");
	is_int(st, 431, "too many headers: 431");
	buf_free(&b);
}

int
main(void)
{
	test_simple();
	test_incremental();
	test_pipelined();
	test_keep_alive();
	test_leniency();
	test_errors();
	test_bodies();
	test_limits();
	return tap_done();
}
