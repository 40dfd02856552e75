/* auth: who is making a request, and sessions.
 *
 * Credentials, in order: "Authorization: Bearer <JWT>", "Authorization:
 * Bearer roost_<API token>", the roost_session cookie (state-changing
 * requests by cookie also need X-CSRF-Token). A session is live when its
 * row says so and its user is neither suspended nor deleted.
 *
 * Session state is cached in Redis for 30 s under roost:{t}:sess:<sid>.
 * Anything that changes a session or its user marks the key stale ("x",
 * 60 s) AFTER its transaction commits; a stale key sends every reader to
 * PostgreSQL and forbids re-caching, so a reader racing the change cannot
 * put the old state back. With Redis down, PostgreSQL decides.
 */
#ifndef ROOST_AUTH_H
#define ROOST_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "arena.h"
#include "db.h"
#include "error.h"

struct req_ctx;

typedef struct principal {
	int64_t user_id;
	int64_t session_id; /* 0 when an API token was used */
	int64_t token_id;   /* 0 when a session was used */
	bool admin;
	bool must_change_password;
	bool via_cookie;
} principal;

#define SESSION_COOKIE "roost_session"
#define CSRF_COOKIE "roost_csrf"

/* Identifies the request's user into c->user. R_SUCCESS, R_UNAUTHORIZED,
 * R_SESSION_DISPLACED, R_FORBIDDEN (CSRF), or R_UNAVAILABLE. */
rerr auth_authenticate(struct req_ctx *c);

/* Starts a session for user_id on device ("desktop"/"mobile"), lasting
 * lifetime_hours. With displace (the tenant's single_session_per_device),
 * the user's live sessions of that class end as 'displaced' and each one's
 * stream hears session.displaced; without it, the new session is one more.
 * Adds token, token_type, expires_at, session_id and csrf_token to answer
 * and sets the cookies. */
rerr auth_start_session(struct req_ctx *c, int64_t user_id, const char *device,
    bool displace, int64_t lifetime_hours, json_object *answer);

/* Stores a single-use ticket for the signed-in principal, valid ttl_s
 * seconds, accepted only by routes flagged ROUTE_TICKET_OK as ?ticket=. */
rerr auth_issue_ticket(struct req_ctx *c, int ttl_s, const char **ticket);

/* Sets cookies that clear the session and CSRF cookies. */
void auth_clear_cookies(struct req_ctx *c);

/* Marks one session's cache entry stale once the transaction commits. */
void auth_forget_session(struct req_ctx *c, int64_t session_id);

/* Marks every recent session of user_id stale once the transaction
 * commits (role, suspension, password, deletion changes). */
rerr auth_forget_user(struct req_ctx *c, int64_t user_id);

/* Runs the stale-marks recorded by this request (the pipeline calls it
 * after COMMIT). */
void auth_after_commit(struct req_ctx *c);

/* One open event stream's credential, for auth_check_streams. */
typedef struct auth_stream_cred {
	int64_t session_id; /* or 0 */
	int64_t token_id;   /* or 0 */
	const char *ended;  /* out: NULL while live, else why it ended
	                     * ("logout", "expired", ...; arena memory) */
} auth_stream_cred;

/* The backstop for a lost session.ended event (docs/realtime.md): checks
 * in one query whether each credential is still live (not revoked, not
 * expired, its user neither suspended, deleted, nor made to change the
 * password) and sets ended for those that are not. Runs its own
 * read-only transaction on d, which must not be inside one, in schema.
 * R_SUCCESS, or R_UNAVAILABLE (nothing set) when PostgreSQL fails. */
rerr auth_check_streams(
    db *d, arena *a, const char *schema, auth_stream_cred *v, size_t n);

/* A client address and user agent safe to store: printable ASCII only,
 * bounded. Arena memory. */
const char *auth_client_ip(struct req_ctx *c);
const char *auth_user_agent(struct req_ctx *c);

#endif
