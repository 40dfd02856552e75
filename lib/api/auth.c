/* api/auth: register, login, logout. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../events.h"
#include "../log.h"
#include "../password.h"
#include "../ratelimit.h"
#include "../rooms.h"
#include "../users.h"

static const char *const devices[] = { "desktop", "mobile", NULL };

static char *
lower(req_ctx *c, const char *s)
{
	char *out = arena_strdup(c->a, s);

	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}

/* Counts one registration from this client IP. Fails closed: without
 * Redis, nothing is hashed or stored. */
static rerr
register_limit(req_ctx *c, int64_t limit)
{
	rl_result r;

	if (ratelimit_hit(c->app->kv, c->a, c->tenant.id, "register",
	        auth_client_ip(c), limit, 3600, &r) != R_SUCCESS)
		return fail(c, R_UNAVAILABLE, NULL,
		    "sign-in is unavailable right now; try again shortly");
	req_ratelimit_headers(c, &r);
	if (r.limited)
		return fail(c, R_RATE_LIMITED, NULL,
		    "too many attempts; try again later");
	return R_SUCCESS;
}

/* Sign-in failures are counted per account and per client IP
 * (docs/auth.md, "Rate limits"). */
#define LOGIN_WINDOW_S 900
enum { FAIL_ACCOUNT, FAIL_IP, N_FAIL };

/* Reserves this attempt's failure on both counters before any password
 * is hashed, or refuses it: 429 when a counter is at its ceiling, 503
 * without Redis (fails closed: no Redis, no guessing). */
static rerr
login_reserve(
    req_ctx *c, const settings *s, const char *email, rl_counter fails[N_FAIL])
{
	int over;
	rl_result r;

	/* The normalised email whether or not such an account exists, so a
	 * lockout tells nothing about which accounts do. */
	fails[FAIL_ACCOUNT] = (rl_counter){ .bucket = "login-fail",
		.who = email,
		.limit = s->login_attempts_per_15min };
	fails[FAIL_IP] = (rl_counter){ .bucket = "login-fail-ip",
		.who = auth_client_ip(c),
		.limit = s->login_failures_per_ip_per_15min };
	if (ratelimit_reserve(c->app->kv, c->a, c->tenant.id, fails, N_FAIL,
	        LOGIN_WINDOW_S, &over) != R_SUCCESS)
		return fail(c, R_UNAVAILABLE, NULL,
		    "sign-in is unavailable right now; try again shortly");
	if (over < 0)
		return R_SUCCESS;
	ratelimit_fill(fails[over].count, fails[over].limit, fails[over].window,
	    LOGIN_WINDOW_S, &r);
	r.limited = true;
	req_ratelimit_headers(c, &r);
	return fail(c, R_RATE_LIMITED, NULL,
	    over == FAIL_ACCOUNT
	        ? "too many failed sign-ins for this account; try again later"
	        : "too many failed sign-ins from this address; try again "
	          "later");
}

/* Settles the reservation once the password is checked: a failure stays
 * counted; anything else gives its hits back. A success does not reset
 * the account's counter: the owner's own frequent sign-ins (a script)
 * would otherwise reopen the budget of whoever guesses at the account.
 * The headers show the counter closer to its ceiling. */
static void
login_settle(req_ctx *c, rl_counter fails[N_FAIL], bool failed)
{
	if (!failed &&
	    ratelimit_release(c->app->kv, c->a, fails, N_FAIL) != R_SUCCESS)
		log_warn("could not give back a sign-in's failure counts; "
		         "they stay until the window ends");
	for (int i = 0; i < N_FAIL; i++) {
		rl_result r;

		ratelimit_fill(fails[i].count - (failed ? 0 : 1),
		    fails[i].limit, fails[i].window, LOGIN_WINDOW_S, &r);
		req_ratelimit_headers(c, &r);
	}
}

/* Reads {email, password, device?} shared by login and register. */
static rerr
read_credentials(req_ctx *c, const char **email, const char **pw,
    size_t *pw_len, const char **device, json_err *je)
{
	int dev = 0;
	size_t elen;
	rerr r;

	if ((r = json_get_string(c->body, "email", true, 3, EMAIL_MAX_BYTES, 0,
	         email, &elen, je)) != R_SUCCESS)
		return r;
	if (elen > EMAIL_MAX_BYTES || !users_email_valid(*email, elen)) {
		je->field = "email";
		je->message =
		    "must be a valid email address of at most 254 bytes";
		return R_VALIDATION;
	}
	if ((r = json_get_string(c->body, "password", true, 1,
	         PASSWORD_MAX_BYTES, JSTR_ALLOW_NUL | JSTR_MULTILINE, pw,
	         pw_len, je)) != R_SUCCESS)
		return r;
	if (*pw_len > PASSWORD_MAX_BYTES || memchr(*pw, '\0', *pw_len)) {
		je->field = "password";
		je->message = "must be at most 1024 bytes, without NUL";
		return R_VALIDATION;
	}
	if (json_object_object_get_ex(c->body, "device", NULL) &&
	    (r = json_get_enum(c->body, "device", true, devices, &dev, je)) !=
	        R_SUCCESS)
		return r;
	*device = devices[dev];
	*email = lower(c, *email);
	return R_SUCCESS;
}

/* The session answer, shared by login and register. */
static rerr
answer_with_session(
    req_ctx *c, int status, int64_t uid, const char *device, const settings *s)
{
	json_object *answer = json_object_new_object(), *user;
	const char *p[1] = { api_id(c, uid) };
	PGresult *res;
	rerr e;

	if ((e = auth_start_session(c, uid, device,
	         s->single_session_per_device, s->session_lifetime_hours,
	         answer)) != R_SUCCESS)
		goto out;
	res = db_query(c->app->db, c->a, &e,
	    "UPDATE users SET last_seen_at = now() WHERE id = $1 "
	    "RETURNING " USER_COLUMNS,
	    1, p);
	if (res == NULL)
		goto out;
	user = users_row_json(res, 0, true);
	json_object_object_add(answer, "user", user);
	return reply_json(c, status, answer);
out:
	json_object_put(answer);
	return e;
}

rerr
api_login(req_ctx *c)
{
	static const char *const allowed[] = { "email", "password", "device",
		NULL };
	const char *email, *pw, *device;
	rl_counter fails[N_FAIL];
	const settings *s;
	json_err je = { 0 };
	size_t pw_len;
	PGresult *res;
	int64_t uid;
	bool known, match;
	rerr e;

	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = read_credentials(c, &email, &pw, &pw_len, &device, &je)) !=
	        R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((s = req_settings(c, &e)) == NULL)
		return e;
	if ((e = login_reserve(c, s, email, fails)) != R_SUCCESS)
		return e;

	res = db_query(c->app->db, c->a, &e,
	    "SELECT id, coalesce(password_hash, ''), suspended "
	    "FROM users WHERE email = $1 AND deleted_at IS NULL",
	    1, &email);
	if (res == NULL) {
		login_settle(c, fails, false); /* not a failed password */
		return e;
	}
	known = PQntuples(res) == 1 && PQgetvalue(res, 0, 1)[0] != '\0';
	if (!known) {
		/* The same work as a wrong password: no timing oracle. */
		if (c->app->dummy_hash[0] == '\0') {
			char seed[32];

			randombytes_buf(seed, sizeof(seed));
			if (password_hash(seed, sizeof(seed),
			        c->app->dummy_hash) != R_SUCCESS) {
				login_settle(c, fails, false);
				return R_INTERNAL;
			}
		}
		(void)password_verify(c->app->dummy_hash, pw, pw_len);
		login_settle(c, fails, true);
		return fail(
		    c, R_UNAUTHORIZED, NULL, "invalid email or password");
	}
	match = password_verify(PQgetvalue(res, 0, 1), pw, pw_len);
	login_settle(c, fails, !match);
	if (!match)
		return fail(
		    c, R_UNAUTHORIZED, NULL, "invalid email or password");
	uid = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (PQgetvalue(res, 0, 2)[0] == 't')
		return fail(c, R_FORBIDDEN, NULL, "this account is suspended");
	if (password_needs_rehash(PQgetvalue(res, 0, 1))) {
		char hash[PASSWORD_HASH_MAX];
		const char *p[2] = { hash, api_id(c, uid) };

		if (password_hash(pw, pw_len, hash) == R_SUCCESS &&
		    db_query(c->app->db, c->a, &e,
		        "UPDATE users SET "
		        "password_hash = $1 WHERE id = $2",
		        2, p) == NULL)
			return e;
		log_info("upgraded the password hash of user %s", p[1]);
	}
	return answer_with_session(c, 200, uid, device, s);
}

rerr
api_register(req_ctx *c)
{
	static const char *const allowed[] = { "email", "password", "name",
		"device", NULL };
	const char *email, *pw, *device, *name, *why, *problem;
	const settings *s;
	json_err je = { 0 };
	size_t pw_len;
	int64_t uid;
	rerr e;

	if ((s = req_settings(c, &e)) == NULL)
		return e;
	if (!s->open_registration)
		return fail(c, R_FORBIDDEN, NULL,
		    "registration is closed; ask an admin for an account");
	if ((e = json_reject_unknown(c->body, allowed, &je)) != R_SUCCESS ||
	    (e = read_credentials(c, &email, &pw, &pw_len, &device, &je)) !=
	        R_SUCCESS ||
	    (e = json_get_string(c->body, "name", true, 1, NAME_MAX_CHARS,
	         JSTR_NOT_BLANK, &name, NULL, &je)) != R_SUCCESS)
		return JSON_FAIL(c, e, je);
	if ((problem = users_password_problem(
	         pw, pw_len, s->password_min_length)) != NULL)
		return fail(c, R_VALIDATION, "password",
		    "%s (at least %lld bytes)", problem,
		    (long long)s->password_min_length);
	if ((e = register_limit(c, s->registrations_per_hour)) != R_SUCCESS)
		return e;
	e = users_create(c->app->db, c->a, email, name, pw, pw_len,
	    s->password_min_length, "member", false, &uid, &why);
	if (e == R_CONFLICT)
		return fail(c, e, "email", "an account with this email exists");
	if (e != R_SUCCESS)
		return fail(c, e, NULL, "%s", why);
	if ((e = rooms_join_default(c->app->db, c->a, s, uid)) != R_SUCCESS)
		return e;
	return answer_with_session(c, 201, uid, device, s);
}

rerr
api_logout(req_ctx *c)
{
	const char *p[1];
	PGresult *res;
	rerr e;

	/* Its open event streams end too (session.ended). */
	if (c->user.session_id) {
		p[0] = api_id(c, c->user.session_id);
		res = db_query(c->app->db, c->a, &e,
		    "UPDATE sessions SET "
		    "revoked_at = now(), revoked_reason = 'logout' "
		    "WHERE id = $1 AND revoked_at IS NULL RETURNING id",
		    1, p);
		if (res == NULL ||
		    (e = events_session_ended(c->app->db, c->a, c->user.user_id,
		         "logout", false, res, NULL)) != R_SUCCESS)
			return e;
		auth_forget_session(c, c->user.session_id);
	} else {
		p[0] = api_id(c, c->user.token_id);
		res = db_query(c->app->db, c->a, &e,
		    "UPDATE api_tokens SET "
		    "revoked_at = now() WHERE id = $1 RETURNING id",
		    1, p);
		if (res == NULL ||
		    (e = events_session_ended(c->app->db, c->a, c->user.user_id,
		         "logout", false, NULL, res)) != R_SUCCESS)
			return e;
	}
	auth_clear_cookies(c);
	c->res->status = 204;
	return R_SUCCESS;
}
