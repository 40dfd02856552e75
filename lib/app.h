/* app: the long-lived application state and the per-request pipeline.
 *
 * A front end (FastCGI, CGI, a test) builds one app at start, then for each
 * request: app_handle() with the CGI environment and a body reader, and
 * writes the response it gets back. app_handle does, in order: request id,
 * parse and limits, routing (404/405), tenant, Content-Type and JSON body
 * checks, database and Redis readiness, the handler, error rendering,
 * access log. Handlers see a req_ctx with everything validated.
 */
#ifndef ROOST_APP_H
#define ROOST_APP_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "arena.h"
#include "auth.h"
#include "config.h"
#include "db.h"
#include "error.h"
#include "http.h"
#include "json.h"
#include "kv.h"
#include "ratelimit.h"
#include "router.h"
#include "settings.h"
#include "stream.h"
#include "tenant.h"

/* How GET /api/v1/events is served (lib/api/events.c, docs/realtime.md).
 * STREAM_BLOCKING: the handler waits and writes itself (roost.fcgi and
 * roost.cgi; SSE through the front end's write and flush functions).
 * STREAM_HANDOFF: the handler authenticates, loads the subscriber and its
 * backlog, and hands it to the caller (roost-relay) without waiting. */
typedef enum stream_mode {
	STREAM_BLOCKING,
	STREAM_HANDOFF,
} stream_mode;

/* What the events handler hands to the relay (STREAM_HANDOFF). When active,
 * the response in app_handle's res is the head of the answer: for SSE its
 * body holds the backlog frames and it must be sent without a
 * Content-Length and kept open; for a long-poll with no backlog it is not
 * to be sent at all: the caller holds the request for timeout_s and
 * answers it itself with stream_format_longpoll(). The caller owns sub
 * afterwards (stream_sub_free). */
typedef struct stream_handoff {
	bool active;
	bool sse;
	int timeout_s;  /* long-poll: how long to hold at most */
	stream_sub sub; /* user, session, rooms, cursor */
	/* The request's rate limit, for the answer the caller writes later
	 * (app_answer_headers). */
	bool has_rl;
	rl_result rl;
} stream_handoff;

typedef struct app {
	roost_config cfg;
	db *db;
	kv *kv;
	const route *routes;
	size_t n_routes;
	http_limits limits;
	arena *arena;         /* the per-request arena, reset after each */
	const char *frontend; /* "fcgi", "cgi", ... for logs and health */
	uint64_t served;
	char dummy_hash[128]; /* verified against for unknown emails */
	/* Streaming (GET /api/v1/events). */
	stream_mode stream_mode;
	stream_handoff handoff; /* reset by app_handle; see above */
	/* STREAM_BLOCKING SSE: the front end's raw output for this request
	 * (CGI-form head and body bytes) and its flush; NULL when the front
	 * end cannot stream (then SSE is refused with 406). */
	http_write_fn out_write;
	int (*out_flush)(void *ctx);
	void *out_ctx;
	bool response_sent; /* the handler wrote the response itself */
	/* Set by a signal handler: blocking waits end early. */
	volatile int *stopping;
} app;

/* The per-user request limit counts per minute (requests_per_minute). */
#define API_LIMIT_WINDOW_S 60

typedef struct req_ctx {
	app *app;
	arena *a;
	http_request *req;
	http_response *res;
	route_match match;
	tenant tenant;
	json_object *body;       /* parsed for ROUTE_JSON_BODY routes */
	principal user;          /* for AUTH_USER and AUTH_ADMIN routes */
	settings *settings;      /* loaded on first use: req_settings() */
	PGresult *settings_rows; /* fetched with BEGIN, for req_settings() */
	int64_t *stale_sessions; /* cache entries to mark after COMMIT */
	struct rl_result *rl;    /* the tightest limit this request met */
	size_t n_stale, cap_stale;
	bool allow_ticket; /* the route takes ?ticket= (ROUTE_TICKET_OK) */
	/* The per-user request limit's hit, counted in the same Redis round
	 * trip as the session check (auth.c): the window's count, or -1 when
	 * no session was checked there (API tokens, Redis down). */
	int64_t api_hits, api_window;
	const char *api_key; /* the counter's key, when counted */
	/* error detail for the body of an error response */
	const char *err_field;
	const char *err_message;
} req_ctx;

/* Loads config (file may be NULL), opens (lazily) DB and Redis, and checks
 * the route table. Returns 0, or -1 with a message in err. */
int app_init(app *ap, const char *config_file, const char *frontend, char *err,
    size_t errlen);
void app_free(app *ap);

/* Handles one request. res must be initialised (http_response_init on
 * ap->arena); the caller writes it, then calls app_request_done(). */
void app_handle(app *ap, char *const *envp, http_read_fn read_fn,
    void *read_ctx, http_response *res);

/* Releases per-request memory (resets the arena, frees the body). */
void app_request_done(app *ap, http_response *res);

/* Handler helpers. */

/* Commits the request's transaction now (and runs its after-commit work),
 * for a handler that goes on to wait without holding the database. */
rerr req_commit(req_ctx *c);

/* Sets status and serialises obj as the JSON body; takes ownership of obj. */
rerr reply_json(req_ctx *c, int status, json_object *obj);

/* Records error detail for the response and returns e, so a handler can
 * write: return fail(c, R_VALIDATION, "name", "must not be empty"); */
rerr fail(req_ctx *c, rerr e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The tenant's settings, loaded once per request (inside its transaction).
 * NULL with *err set when the database fails. */
const settings *req_settings(req_ctx *c, rerr *err);

/* Records a rate-limit outcome. The response carries one set of
 * X-RateLimit-* headers, for the tightest limit the request met (the one
 * over its limit, else the one with the fewest requests left), and
 * Retry-After when limited. */
struct rl_result;
void req_ratelimit_headers(req_ctx *c, const struct rl_result *r);

/* The headers every answer carries, set here and nowhere else, whoever
 * writes the answer (app_handle; a worker writing an SSE head itself;
 * roost-relay's held long-polls and its own answers): X-Request-Id,
 * Cache-Control (no-cache for an event stream, which proxies expect of
 * SSE; no-store for everything else), X-Content-Type-Options: nosniff,
 * Content-Security-Policy: default-src 'none'; frame-ancestors 'none',
 * X-Frame-Options: DENY, Referrer-Policy: no-referrer, and, when rl is not
 * NULL, X-RateLimit-Limit, -Remaining, -Reset and (when limited) Retry-After;
 * Retry-After: 1 on a 503; and Strict-Transport-Security when cfg's public
 * URL is https (cfg->hsts). Nothing else sets them, so they are added once
 * per answer, when it is complete. request_id may be NULL only when the
 * answer has none to give. */
void app_answer_headers(const roost_config *cfg, http_response *res, arena *a,
    const char *request_id, bool event_stream, const rl_result *rl);

/* fail() for an error a JSON reader reported. The readers' messages are
 * predicates ("is too long"), so the field's name leads the text. */
rerr fail_json(req_ctx *c, rerr e, const json_err *je);

/* Renders the error body for e with c's detail (or the default message). */
void render_error(req_ctx *c, rerr e);

/* The route table (lib/api/routes.c). */
extern const route api_routes[];
extern const size_t api_routes_count;

#endif
