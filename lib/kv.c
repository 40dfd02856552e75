/* kv: one synchronous hiredis connection with timeouts and reconnect. */
#include "kv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>

#include "log.h"
#include "redis_url.h"

struct kv {
	redis_url u;
	struct timeval timeout;
	redisContext *ctx;
	char last_error[256]; /* why the last connect or command failed */
};

kv *
kv_new(const char *url, int timeout_ms, char *err, size_t errlen)
{
	kv *k = calloc(1, sizeof(*k));

	if (k == NULL)
		abort();
	k->timeout.tv_sec = timeout_ms / 1000;
	k->timeout.tv_usec = (timeout_ms % 1000) * 1000;
	if (redis_url_parse(url, &k->u, err, errlen) != 0) {
		free(k);
		return NULL;
	}
	return k;
}

void
kv_free(kv *k)
{
	if (k == NULL)
		return;
	if (k->ctx)
		redisFree(k->ctx);
	redis_url_free(&k->u);
	free(k);
}

static void
drop(kv *k, const char *why)
{
	snprintf(
	    k->last_error, sizeof(k->last_error), "connection lost: %s", why);
	log_warn("redis connection lost: %s", why);
	redisFree(k->ctx);
	k->ctx = NULL;
}

/* Runs a setup command right after connecting; -1 drops the connection
 * with the reason in k->last_error. what names the step for it. */
static int
setup_cmd(kv *k, int argc, const char **argv, const char *what)
{
	redisReply *r = redisCommandArgv(k->ctx, argc, argv, NULL);
	int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
	char where[160];

	redis_url_where(&k->u, where, sizeof(where));
	if (r == NULL) {
		drop(k, k->ctx->errstr);
	} else if (!ok) {
		snprintf(k->last_error, sizeof(k->last_error), "%s (%s)", what,
		    r->str);
		log_error("redis %s: %s; check ROOST_REDIS_URL%s%s", where,
		    k->last_error, k->u.user ? ", user " : "",
		    k->u.user ? k->u.user : "");
		redisFree(k->ctx);
		k->ctx = NULL;
	}
	if (r)
		freeReplyObject(r);
	return ok ? 0 : -1;
}

rerr
kv_ensure(kv *k)
{
	char where[160];

	if (k->ctx != NULL)
		return R_SUCCESS;
	k->ctx = k->u.path
	    ? redisConnectUnixWithTimeout(k->u.path, k->timeout)
	    : redisConnectWithTimeout(k->u.host, k->u.port, k->timeout);
	if (k->ctx == NULL)
		abort();
	if (k->ctx->err) {
		snprintf(k->last_error, sizeof(k->last_error),
		    "unreachable: %s: %s",
		    redis_url_where(&k->u, where, sizeof(where)),
		    k->ctx->errstr);
		log_warn("redis connection failed: %s", k->last_error);
		redisFree(k->ctx);
		k->ctx = NULL;
		return R_UNAVAILABLE;
	}
	/* The same bound for commands: a hung Redis fails a request in
	 * bounded time instead of wedging the worker. */
	redisSetTimeout(k->ctx, k->timeout);
	if (k->u.host)
		redisEnableKeepAlive(k->ctx);
	if (k->u.password) {
		/* AUTH USER PASSWORD for an ACL user (Redis 6+), AUTH
		 * PASSWORD for requirepass or the "default" user. */
		const char *argv[] = { "AUTH", k->u.user ? k->u.user : "",
			k->u.password };

		if (k->u.user == NULL) {
			argv[1] = k->u.password;
			if (setup_cmd(k, 2, argv, "authentication failed") != 0)
				return R_UNAVAILABLE;
		} else if (setup_cmd(k, 3, argv, "authentication failed") != 0)
			return R_UNAVAILABLE;
	}
	if (k->u.dbnum != 0) {
		char num[8];
		const char *argv[] = { "SELECT", num };

		snprintf(num, sizeof(num), "%d", k->u.dbnum);
		if (setup_cmd(k, 2, argv, "SELECT of the database failed") != 0)
			return R_UNAVAILABLE;
	}
	k->last_error[0] = '\0';
	return R_SUCCESS;
}

const char *
kv_last_error(const kv *k)
{
	return k->last_error;
}

const redis_url *
kv_target(const kv *k)
{
	return &k->u;
}

static void
free_reply(void *r)
{
	freeReplyObject(r);
}

redisReply *
kv_cmdv(
    kv *k, arena *a, rerr *err, int argc, const char **argv, const size_t *lens)
{
	bool reused = k->ctx != NULL;
	redisReply *r;

	if ((*err = kv_ensure(k)) != R_SUCCESS)
		return NULL;
	r = redisCommandArgv(k->ctx, argc, argv, lens);
	if (r == NULL && reused) {
		/* A connection kept from an earlier request found dead (Redis
		 * restarted meanwhile): one more try on a fresh one, so the
		 * first request after a restart does not fail. The command
		 * may then run twice if the old connection died after Redis
		 * ran it; everything we send tolerates that (counters,
		 * idempotent sets, appends that clients de-duplicate). */
		drop(k, k->ctx->errstr);
		if ((*err = kv_ensure(k)) != R_SUCCESS)
			return NULL;
		r = redisCommandArgv(k->ctx, argc, argv, lens);
	}
	if (r == NULL) {
		drop(k, k->ctx->errstr);
		*err = R_UNAVAILABLE;
		return NULL;
	}
	arena_on_cleanup(a, free_reply, r);
	if (r->type == REDIS_REPLY_ERROR) {
		/* LOADING / MASTERDOWN mean "not now", not "bug". */
		if (strncmp(r->str, "LOADING", 7) == 0 ||
		    strncmp(r->str, "MASTERDOWN", 10) == 0 ||
		    strncmp(r->str, "BUSY", 4) == 0) {
			*err = R_UNAVAILABLE;
		} else {
			/* A Redis that wants a password Roost was not given,
			 * or an ACL that does not cover a command or key:
			 * configuration, so say where to look. */
			const char *hint = strncmp(r->str, "NOAUTH", 6) == 0
			    ? " (set the user and password in ROOST_REDIS_URL)"
			    : strncmp(r->str, "NOPERM", 6) == 0
			    ? " (widen the Redis user's ACL: docs/deploy.md, "
			      "\"3. Redis\")"
			    : "";

			snprintf(k->last_error, sizeof(k->last_error),
			    "%s refused: %s%s", argv[0], r->str, hint);
			log_error("redis %s", k->last_error);
			*err = R_INTERNAL;
		}
	}
	return r;
}

redisReply *
kv_cmd(kv *k, arena *a, rerr *err, const char *arg0, ...)
{
	const char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = arg0;
	va_start(ap, arg0);
	for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
		if (argc == (int)(sizeof(argv) / sizeof(argv[0])))
			abort();
		argv[argc++] = s;
	}
	va_end(ap);
	return kv_cmdv(k, a, err, argc, argv, NULL);
}

rerr
kv_ping(kv *k, arena *a)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		bool had_ctx = k->ctx != NULL;
		rerr e;
		redisReply *r = kv_cmd(k, a, &e, "PING", NULL);

		if (r != NULL && e == R_SUCCESS &&
		    r->type == REDIS_REPLY_STATUS &&
		    strcmp(r->str, "PONG") == 0)
			return R_SUCCESS;
		/* Only a connection that died since the last use is worth a
		 * second try; a fresh one that failed will fail again. */
		if (!had_ctx || r != NULL)
			break;
	}
	return R_UNAVAILABLE;
}

char *
kv_key(arena *a, const char *tenant, const char *suffix)
{
	return arena_printf(a, "roost:{%s}:%s", tenant, suffix);
}

struct kv_sub {
	kv conn; /* endpoint copy; only ctx is owned */
};

kv_sub *
kv_sub_open(kv *k, const char *const *channels, size_t n)
{
	kv_sub *s = calloc(1, sizeof(*s));
	const char **argv;
	redisReply *r;

	if (s == NULL || (argv = calloc(n + 1, sizeof(*argv))) == NULL)
		abort();
	s->conn = *k;
	s->conn.ctx = NULL;
	if (kv_ensure(&s->conn) != R_SUCCESS) {
		free(argv);
		free(s);
		return NULL;
	}
	argv[0] = "SUBSCRIBE";
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = channels[i];
	if (redisAppendCommandArgv(s->conn.ctx, (int)n + 1, argv, NULL) !=
	    REDIS_OK) {
		free(argv);
		kv_sub_close(s);
		return NULL;
	}
	free(argv);
	/* One confirmation per channel. */
	for (size_t i = 0; i < n; i++) {
		if (redisGetReply(s->conn.ctx, (void **)&r) != REDIS_OK ||
		    r == NULL) {
			kv_sub_close(s);
			return NULL;
		}
		freeReplyObject(r);
	}
	return s;
}

int
kv_sub_wait(kv_sub *s, arena *a, int timeout_ms, const char **channel,
    const char **msg, size_t *len)
{
	redisContext *c = s->conn.ctx;
	struct timespec t0, t1;
	void *reply;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		long left;
		int pr;

		if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
			return -1;
		if (reply != NULL) {
			redisReply *r = reply;

			if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
			    r->element[0]->type == REDIS_REPLY_STRING &&
			    strcmp(r->element[0]->str, "message") == 0 &&
			    r->element[1]->type == REDIS_REPLY_STRING &&
			    r->element[2]->type == REDIS_REPLY_STRING) {
				*channel = arena_strndup(
				    a, r->element[1]->str, r->element[1]->len);
				*msg = arena_strndup(
				    a, r->element[2]->str, r->element[2]->len);
				*len = r->element[2]->len;
				freeReplyObject(r);
				return 1;
			}
			freeReplyObject(r);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = timeout_ms -
		    ((t1.tv_sec - t0.tv_sec) * 1000L +
		        (t1.tv_nsec - t0.tv_nsec) / 1000000L);
		if (left <= 0)
			return 0;
		pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			return 0; /* a signal: let the caller look at it */
		if (pr < 0)
			return -1;
		if (pr == 0)
			return 0;
		if (redisBufferRead(c) != REDIS_OK)
			return -1;
	}
}

void
kv_sub_close(kv_sub *s)
{
	if (s == NULL)
		return;
	if (s->conn.ctx)
		redisFree(s->conn.ctx);
	free(s);
}
