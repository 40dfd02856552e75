/* Unit tests: lib/router. */
#include "arena.h"
#include "router.h"
#include "tap.h"

static rerr
h(struct req_ctx *c)
{
	(void)c;
	return R_SUCCESS;
}

static const route table[] = {
	{ .method = "GET", .pattern = "/api/v1/rooms", .handler = h },
	{ .method = "POST", .pattern = "/api/v1/rooms", .handler = h },
	{ .method = "GET", .pattern = "/api/v1/rooms/discover", .handler = h },
	{ .method = "GET", .pattern = "/api/v1/rooms/{id:int}", .handler = h },
	{ .method = "PATCH",
	    .pattern = "/api/v1/rooms/{id:int}",
	    .handler = h },
	{ .method = "PUT",
	    .pattern = "/api/v1/messages/{id:int}/reactions/{emoji:str}",
	    .handler = h },
	{ .method = "GET", .pattern = "/", .handler = h },
};
#define N (sizeof(table) / sizeof(table[0]))

int
main(void)
{
	arena *a = arena_new();
	route_match m;

	is_int(router_check_table(table, N), -1, "table is well-formed");
	{
		const route bad[] = { { .method = "GET",
		    .pattern = "/x/{id:float}",
		    .handler = h } };
		const route bad2[] = {
			{ .method = "GET", .pattern = "/x/{id}", .handler = h }
		};
		const route bad3[] = {
			{ .method = "GET", .pattern = "x", .handler = h }
		};

		is_int(router_check_table(bad, 1), 0,
		    "unknown param type refused");
		is_int(router_check_table(bad2, 1), 0, "untyped param refused");
		is_int(
		    router_check_table(bad3, 1), 0, "relative pattern refused");
	}

	is_int(router_match(table, N, "GET", "/api/v1/rooms", a, &m), R_SUCCESS,
	    "literal match");
	ok(m.route == &table[0], "right route");
	is_int(router_match(table, N, "POST", "/api/v1/rooms", a, &m),
	    R_SUCCESS, "method picks route");
	ok(m.route == &table[1], "POST route");
	is_int(router_match(table, N, "GET", "/api/v1/rooms/discover", a, &m),
	    R_SUCCESS, "literal beats param");
	ok(m.route == &table[2], "discover route");
	is_int(router_match(table, N, "GET", "/api/v1/rooms/42", a, &m),
	    R_SUCCESS, "int param");
	ok(m.route == &table[3] && router_param(&m, "id")->num == 42 &&
	        strcmp(router_param(&m, "id")->str, "42") == 0,
	    "param value 42");
	ok(router_param(&m, "nope") == NULL, "absent param");
	is_int(router_match(table, N, "PUT",
	           "/api/v1/messages/7/reactions/heart", a, &m),
	    R_SUCCESS, "two params");
	ok(router_param(&m, "id")->num == 7 &&
	        strcmp(router_param(&m, "emoji")->str, "heart") == 0,
	    "both values");
	is_int(router_match(table, N, "GET", "/", a, &m), R_SUCCESS, "root");

	is_int(router_match(table, N, "GET", "/api/v1/nope", a, &m),
	    R_NOT_FOUND, "unknown path 404");
	is_int(router_match(table, N, "GET", "/api/v1/rooms/abc", a, &m),
	    R_NOT_FOUND, "non-numeric id does not match");
	is_int(router_match(table, N, "GET", "/api/v1/rooms/", a, &m),
	    R_NOT_FOUND, "empty segment does not match");
	is_int(router_match(table, N, "DELETE", "/api/v1/rooms", a, &m),
	    R_METHOD_NOT_ALLOWED, "wrong method 405");
	is_str(
	    m.allow, "GET, HEAD, POST", "Allow lists methods once, with HEAD");
	is_int(router_match(table, N, "DELETE", "/api/v1/rooms/5", a, &m),
	    R_METHOD_NOT_ALLOWED, "405 on param route");
	is_str(m.allow, "GET, HEAD, PATCH", "Allow for the param route");
	is_int(router_match(table, N, "HEAD", "/api/v1/rooms", a, &m),
	    R_SUCCESS, "HEAD served by GET");
	ok(m.route == &table[0], "HEAD maps to the GET route");

	is_int(router_match(table, N, "GET", "/api/v1/rooms/-5", a, &m),
	    R_VALIDATION, "negative id invalid");
	is_str(m.bad_param, "id", "names the param");
	is_int(router_match(table, N, "GET", "/api/v1/rooms/0", a, &m),
	    R_VALIDATION, "zero id invalid");
	is_int(router_match(table, N, "GET", "/api/v1/rooms/007", a, &m),
	    R_VALIDATION, "leading zero invalid");
	is_int(router_match(
	           table, N, "GET", "/api/v1/rooms/9007199254740991", a, &m),
	    R_SUCCESS, "2^53-1 valid");
	is_int(router_match(
	           table, N, "GET", "/api/v1/rooms/9007199254740992", a, &m),
	    R_VALIDATION, "2^53 invalid");
	is_int(router_match(table, N, "GET",
	           "/api/v1/rooms/99999999999999999999999", a, &m),
	    R_VALIDATION, "huge id invalid");
	{
		char seg[260] = "/api/v1/messages/1/reactions/";
		size_t n = strlen(seg);

		memset(seg + n, 'x', 220);
		seg[n + 220] = '\0';
		is_int(router_match(table, N, "PUT", seg, a, &m), R_VALIDATION,
		    "over-long str param invalid");
	}
	is_int(router_match(table, N, "GET",
	           "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r", a, &m),
	    R_NOT_FOUND, "too many segments 404");
	arena_free(a);
	return tap_done();
}
