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

struct kv {
	char *host; /* NULL for a unix socket */
	char *path; /* unix socket path */
	int port;
	char *password; /* NULL when none */
	int dbnum;
	struct timeval timeout;
	redisContext *ctx;
};

static char *
dupn(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		abort();
	return p;
}

static int
parse_num(const char *s, size_t n, int lo, int hi, int *out)
{
	long v = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

kv *
kv_new(const char *url, int timeout_ms, char *err, size_t errlen)
{
	kv *k = calloc(1, sizeof(*k));

	if (k == NULL)
		abort();
	k->timeout.tv_sec = timeout_ms / 1000;
	k->timeout.tv_usec = (timeout_ms % 1000) * 1000;
	if (strncmp(url, "unix://", 7) == 0) {
		const char *p = url + 7, *q = strchr(p, '?');
		size_t n = q ? (size_t)(q - p) : strlen(p);

		if (n == 0 || p[0] != '/') {
			snprintf(err, errlen,
			    "redis URL: unix:// needs an absolute socket path");
			goto fail;
		}
		k->path = dupn(p, n);
		if (q &&
		    (strncmp(q, "?db=", 4) != 0 ||
		        parse_num(q + 4, strlen(q + 4), 0, 15, &k->dbnum) !=
		            0)) {
			snprintf(err, errlen, "redis URL: expected ?db=0..15");
			goto fail;
		}
		return k;
	}
	if (strncmp(url, "redis://", 8) == 0) {
		const char *p = url + 8, *at = strchr(p, '@'), *slash, *colon;

		if (at != NULL) {
			const char *pw = memchr(p, ':', (size_t)(at - p));

			if (pw == NULL) {
				snprintf(err, errlen,
				    "redis URL: expected "
				    "redis://:password@host");
				goto fail;
			}
			k->password = dupn(pw + 1, (size_t)(at - pw - 1));
			p = at + 1;
		}
		slash = strchr(p, '/');
		colon = memchr(p, ':', slash ? (size_t)(slash - p) : strlen(p));
		k->port = 6379;
		if (colon) {
			size_t pn = slash ? (size_t)(slash - colon - 1)
			                  : strlen(colon + 1);

			if (parse_num(colon + 1, pn, 1, 65535, &k->port) != 0) {
				snprintf(err, errlen, "redis URL: bad port");
				goto fail;
			}
		}
		k->host = dupn(p,
		    colon       ? (size_t)(colon - p)
		        : slash ? (size_t)(slash - p)
		                : strlen(p));
		if (k->host[0] == '\0') {
			snprintf(err, errlen, "redis URL: missing host");
			goto fail;
		}
		if (slash && slash[1] != '\0' &&
		    parse_num(slash + 1, strlen(slash + 1), 0, 15, &k->dbnum) !=
		        0) {
			snprintf(err, errlen, "redis URL: bad database number");
			goto fail;
		}
		return k;
	}
	snprintf(err, errlen, "redis URL must start with redis:// or unix://");
fail:
	kv_free(k);
	return NULL;
}

void
kv_free(kv *k)
{
	if (k == NULL)
		return;
	if (k->ctx)
		redisFree(k->ctx);
	free(k->host);
	free(k->path);
	free(k->password);
	free(k);
}

static void
drop(kv *k, const char *why)
{
	log_warn("redis connection lost: %s", why);
	redisFree(k->ctx);
	k->ctx = NULL;
}

/* Runs a setup command right after connecting; -1 drops the connection. */
static int
setup_cmd(kv *k, int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(k->ctx, argc, argv, NULL);
	int ok = r != NULL && r->type != REDIS_REPLY_ERROR;

	if (r == NULL)
		drop(k, k->ctx->errstr);
	else if (!ok) {
		log_warn("redis %s failed: %s", argv[0], r->str);
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
	if (k->ctx != NULL)
		return R_SUCCESS;
	k->ctx = k->path
	    ? redisConnectUnixWithTimeout(k->path, k->timeout)
	    : redisConnectWithTimeout(k->host, k->port, k->timeout);
	if (k->ctx == NULL)
		abort();
	if (k->ctx->err) {
		log_warn("redis connection failed: %s", k->ctx->errstr);
		redisFree(k->ctx);
		k->ctx = NULL;
		return R_UNAVAILABLE;
	}
	/* The same bound for commands: a hung Redis fails a request in
	 * bounded time instead of wedging the worker. */
	redisSetTimeout(k->ctx, k->timeout);
	if (k->host)
		redisEnableKeepAlive(k->ctx);
	if (k->password) {
		const char *argv[] = { "AUTH", k->password };

		if (setup_cmd(k, 2, argv) != 0)
			return R_UNAVAILABLE;
	}
	if (k->dbnum != 0) {
		char num[8];
		const char *argv[] = { "SELECT", num };

		snprintf(num, sizeof(num), "%d", k->dbnum);
		if (setup_cmd(k, 2, argv) != 0)
			return R_UNAVAILABLE;
	}
	return R_SUCCESS;
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
			log_error("redis %s: %s", argv[0], r->str);
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

void
kv_endpoint(const kv *k, const char **host, int *port, const char **path,
    const char **password, int *dbnum)
{
	*host = k->host;
	*port = k->port;
	*path = k->path;
	*password = k->password;
	*dbnum = k->dbnum;
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
