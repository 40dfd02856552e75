/* redis_url: the one parser of ROOST_REDIS_URL (forms in redis_url.h). */
#include "redis_url.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "arena.h"
#include "http.h"

static char *
dupn(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		abort();
	return p;
}

/* s[0..n) percent-decoded (http_pct_decode, the request parser's), malloc'd;
 * NULL for a bad escape or a decoded NUL (a C string cannot carry it). */
static char *
pct_decode(const char *s, size_t n)
{
	arena *a = arena_new();
	size_t len;
	char *d = http_pct_decode(a, s, n, false, &len);
	char *out =
	    d != NULL && memchr(d, '\0', len) == NULL ? dupn(d, len) : NULL;

	arena_free(a);
	return out;
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

/* Sets u->user (when given) and u->password from the credentials part,
 * "USER:PASSWORD" or ":PASSWORD". */
static int
parse_userinfo(const char *s, size_t n, redis_url *u, char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', n);

	if (colon == NULL) {
		snprintf(err, errlen,
		    "redis URL: a user name needs a password "
		    "(USER:PASSWORD@, or :PASSWORD@ for requirepass)");
		return -1;
	}
	if ((size_t)(colon - s) + 1 == n) {
		snprintf(err, errlen, "redis URL: the password is empty");
		return -1;
	}
	if (colon > s &&
	    (u->user = pct_decode(s, (size_t)(colon - s))) == NULL) {
		snprintf(
		    err, errlen, "redis URL: bad %%-escape in the user name");
		return -1;
	}
	u->password = pct_decode(colon + 1, n - (size_t)(colon - s) - 1);
	if (u->password == NULL) {
		snprintf(err, errlen,
		    "redis URL: bad %%-escape in the password (write %% as "
		    "%%25; %%00 is not allowed)");
		return -1;
	}
	return 0;
}

/* HOST[:PORT] or [V6][:PORT]. */
static int
parse_hostport(const char *s, size_t n, redis_url *u, char *err, size_t errlen)
{
	const char *end = s + n, *h = s, *he, *p = NULL;

	if (n > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (rb == NULL) {
			snprintf(err, errlen, "redis URL: missing ']'");
			return -1;
		}
		h = s + 1;
		he = rb;
		if (rb + 1 < end) {
			if (rb[1] != ':') {
				snprintf(err, errlen,
				    "redis URL: expected :PORT after ']'");
				return -1;
			}
			p = rb + 2;
		}
		for (const char *c = h; c < he; c++)
			if (!isxdigit((unsigned char)*c) && *c != ':' &&
			    *c != '.') {
				snprintf(
				    err, errlen, "redis URL: bad IPv6 address");
				return -1;
			}
	} else {
		const char *colon = memchr(s, ':', n);

		he = colon ? colon : end;
		p = colon ? colon + 1 : NULL;
		for (const char *c = h; c < he; c++)
			if (!((*c >= 'a' && *c <= 'z') ||
			        (*c >= 'A' && *c <= 'Z') ||
			        (*c >= '0' && *c <= '9') || *c == '.' ||
			        *c == '-' || *c == '_')) {
				snprintf(err, errlen,
				    "redis URL: bad character in the host "
				    "(a password with '@', '/' or '%%' must "
				    "be %%-encoded)");
				return -1;
			}
	}
	if (he == h) {
		snprintf(err, errlen, "redis URL: missing host");
		return -1;
	}
	u->port = 6379;
	if (p != NULL &&
	    parse_num(p, (size_t)(end - p), 1, 65535, &u->port) != 0) {
		snprintf(err, errlen, "redis URL: bad port");
		return -1;
	}
	u->host = dupn(h, (size_t)(he - h));
	return 0;
}

static int
parse_tcp(const char *p, redis_url *u, char *err, size_t errlen)
{
	const char *at = strrchr(p, '@'), *slash;

	/* The last '@': a host, port or database number never holds one,
	 * so a password with a raw '@' or '/' still parses. */
	if (at != NULL) {
		if (parse_userinfo(p, (size_t)(at - p), u, err, errlen) != 0)
			return -1;
		p = at + 1;
	}
	slash = strchr(p, '/');
	if (parse_hostport(p, slash ? (size_t)(slash - p) : strlen(p), u, err,
	        errlen) != 0)
		return -1;
	if (slash && slash[1] != '\0' &&
	    parse_num(slash + 1, strlen(slash + 1), 0, 15, &u->dbnum) != 0) {
		snprintf(err, errlen,
		    "redis URL: bad database number (0..15 after the '/')");
		return -1;
	}
	return 0;
}

static int
parse_query(
    const char *q, redis_url *u, bool had_userinfo, char *err, size_t errlen)
{
	bool seen_db = false;

	while (*q != '\0') {
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		size_t kn = eq ? (size_t)(eq - q) : n;
		const char *v = eq ? eq + 1 : q + n;
		size_t vn = (size_t)(q + n - v);
		char **field = NULL;

		if (kn == 2 && strncmp(q, "db", 2) == 0) {
			if (seen_db ||
			    parse_num(v, vn, 0, 15, &u->dbnum) != 0) {
				snprintf(err, errlen,
				    "redis URL: expected one db=0..15");
				return -1;
			}
			seen_db = true;
		} else if (kn == 4 && strncmp(q, "user", 4) == 0) {
			field = &u->user;
		} else if (kn == 8 && strncmp(q, "password", 8) == 0) {
			field = &u->password;
		} else {
			snprintf(err, errlen,
			    "redis URL: unknown parameter '%.*s' (db, user, "
			    "password)",
			    (int)(kn > 32 ? 32 : kn), q);
			return -1;
		}
		if (field != NULL) {
			if (had_userinfo || *field != NULL) {
				snprintf(err, errlen,
				    "redis URL: the %s is given twice",
				    field == &u->user ? "user" : "password");
				return -1;
			}
			if (vn == 0) {
				snprintf(err, errlen,
				    "redis URL: the %s is empty",
				    field == &u->user ? "user" : "password");
				return -1;
			}
			if ((*field = pct_decode(v, vn)) == NULL) {
				snprintf(err, errlen,
				    "redis URL: bad %%-escape in the %s "
				    "(write %% as %%25; %%00 is not allowed)",
				    field == &u->user ? "user" : "password");
				return -1;
			}
		}
		q += n;
		if (*q == '&')
			q++;
	}
	if (u->user != NULL && u->password == NULL) {
		snprintf(err, errlen,
		    "redis URL: a user name needs a password (user=...&"
		    "password=...)");
		return -1;
	}
	return 0;
}

static int
parse_unix(const char *p, redis_url *u, char *err, size_t errlen)
{
	bool had_userinfo = false;
	const char *q;
	size_t n;

	if (p[0] != '/') {
		/* unix://USER:PASSWORD@/path (redis-py's form). */
		const char *at = strstr(p, "@/");

		if (at == NULL) {
			snprintf(err, errlen,
			    "redis URL: unix:// needs an absolute socket path");
			return -1;
		}
		if (parse_userinfo(p, (size_t)(at - p), u, err, errlen) != 0)
			return -1;
		had_userinfo = true;
		p = at + 1;
	}
	q = strchr(p, '?');
	n = q ? (size_t)(q - p) : strlen(p);
	if (n < 2) {
		snprintf(err, errlen,
		    "redis URL: unix:// needs an absolute socket path");
		return -1;
	}
	if (n >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen,
		    "redis URL: the socket path is %zu bytes, more than a unix "
		    "socket takes (%zu)",
		    n, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -1;
	}
	u->path = dupn(p, n);
	if (q != NULL && parse_query(q + 1, u, had_userinfo, err, errlen) != 0)
		return -1;
	return 0;
}

int
redis_url_parse(const char *url, redis_url *u, char *err, size_t errlen)
{
	int rc;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, "unix://", 7) == 0)
		rc = parse_unix(url + 7, u, err, errlen);
	else if (strncmp(url, "redis://", 8) == 0)
		rc = parse_tcp(url + 8, u, err, errlen);
	else {
		snprintf(err, errlen,
		    "redis URL must start with redis:// or unix://");
		rc = -1;
	}
	if (rc != 0)
		redis_url_free(u);
	return rc;
}

void
redis_url_free(redis_url *u)
{
	free(u->host);
	free(u->path);
	free(u->user);
	if (u->password != NULL) {
		explicit_bzero(u->password, strlen(u->password));
		free(u->password);
	}
	memset(u, 0, sizeof(*u));
}

const char *
redis_url_where(const redis_url *u, char *out, size_t outlen)
{
	if (u->path != NULL)
		snprintf(out, outlen, "unix socket %s", u->path);
	else if (u->host != NULL && strchr(u->host, ':') != NULL)
		snprintf(out, outlen, "[%s]:%d", u->host, u->port);
	else
		snprintf(
		    out, outlen, "%s:%d", u->host ? u->host : "?", u->port);
	return out;
}
