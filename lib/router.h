/* router: routes as data.
 *
 * A route is {method, pattern, auth, handler}. Patterns are paths whose
 * segments are literals or typed parameters:
 *   "/api/v1/rooms/{id:int}/messages"   "/api/v1/reactions/{emoji:str}"
 * int: a segment of digits, value 1..2^53-1 (a JSON-safe positive id);
 * anything else made of digits and signs is a VALIDATION_ERROR naming the
 * parameter, anything not numeric does not match. str: any non-empty
 * segment (already percent-decoded), at most 200 bytes.
 *
 * Matching: literal segments beat parameters at the same position, so
 * "/rooms/discover" wins over "/rooms/{id:int}". No route for the path: 404.
 * A route for the path but not the method: 405 with the allowed methods.
 * HEAD is served by the GET route.
 */
#ifndef ROOST_ROUTER_H
#define ROOST_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct req_ctx;

typedef enum route_auth {
	AUTH_NONE,  /* anyone */
	AUTH_USER,  /* a signed-in user */
	AUTH_ADMIN, /* a signed-in tenant admin */
} route_auth;

typedef rerr (*route_handler)(struct req_ctx *c);

typedef struct route {
	const char *method;
	const char *pattern;
	route_auth auth;
	route_handler handler;
	unsigned flags; /* ROUTE_* */
} route;

/* The route reads a JSON body: Content-Type must be application/json. */
#define ROUTE_JSON_BODY 0x1u
/* The route needs no database (health answers even when it is down). */
#define ROUTE_NO_DB 0x2u
/* With ROUTE_JSON_BODY: an empty body stands for {}. */
#define ROUTE_BODY_OPTIONAL 0x8u
/* Also authenticates by a single-use ?ticket= (GET /api/v1/events). */
#define ROUTE_TICKET_OK 0x10u
/* Allowed while the user must change their password. */
#define ROUTE_PW_CHANGE_OK 0x4u

#define ROUTER_MAX_PARAMS 6

typedef struct route_param {
	const char *name; /* points into the pattern (not terminated) */
	size_t name_len;
	const char *str; /* the segment, NUL-terminated */
	int64_t num;     /* int parameters */
} route_param;

typedef struct route_match {
	const route *route;
	route_param params[ROUTER_MAX_PARAMS];
	size_t n_params;
	char allow[96];     /* for 405: "GET, HEAD, POST" */
	char bad_param[32]; /* for a VALIDATION_ERROR on a typed param */
} route_match;

/* Checks every pattern in the table: well-formed, at most
 * ROUTER_MAX_PARAMS parameters. Returns the index of the first bad route,
 * or -1 when all are fine. Called once at start and by the unit tests. */
int router_check_table(const route *table, size_t n);

/* Finds the route for method + path. Segment copies are made in a (see
 * route_param.str). Returns R_SUCCESS, R_NOT_FOUND, R_METHOD_NOT_ALLOWED (allow
 * filled) or R_VALIDATION (bad_param filled). */
struct arena;
rerr router_match(const route *table, size_t n, const char *method,
    const char *path, struct arena *a, route_match *m);

/* The value of parameter name, or NULL. */
const route_param *router_param(const route_match *m, const char *name);

#endif
