/* config: defaults, then an optional KEY = value file, then environment. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tenant.h"

#ifndef ROOST_DEFAULT_SQL_DIR
#define ROOST_DEFAULT_SQL_DIR "/usr/local/share/roost/sql"
#endif

typedef enum { K_STR, K_SIZE, K_INT, K_BOOL } key_type;

typedef struct key {
	const char *name;
	key_type type;
	size_t offset;
	long long min, max; /* for numbers */
} key;

#define STR(n, f)                                                              \
	{                                                                      \
		n, K_STR, offsetof(roost_config, f), 0, 0                      \
	}
#define NUM(n, t, f, lo, hi)                                                   \
	{                                                                      \
		n, t, offsetof(roost_config, f), lo, hi                        \
	}

static const key keys[] = {
	STR("ROOST_DATABASE_URL", database_url),
	STR("ROOST_REDIS_URL", redis_url),
	STR("ROOST_JWT_SECRET", jwt_secret),
	STR("ROOST_SCHEMA", schema),
	STR("ROOST_TENANT_MODE", tenant_mode),
	STR("ROOST_SQL_DIR", sql_dir),
	STR("ROOST_BASE_PATH", base_path),
	STR("ROOST_LOG_LEVEL", log_level),
	NUM("ROOST_BODY_LIMIT", K_SIZE, body_limit, 1024, 1LL << 30),
	NUM("ROOST_STATEMENT_TIMEOUT_MS", K_INT, statement_timeout_ms, 100,
	    600000),
	NUM("ROOST_CONNECT_TIMEOUT", K_INT, connect_timeout_s, 1, 60),
	NUM("ROOST_MIGRATE_ON_START", K_BOOL, migrate_on_start, 0, 1),
	NUM("ROOST_PG_PREPARED", K_BOOL, pg_prepared, 0, 1),
	NUM("ROOST_EVENTS_RETAIN", K_INT, events_retain, 1000, 10000000),
	NUM("ROOST_SSE_HEARTBEAT_S", K_INT, sse_heartbeat_s, 1, 300),
	NUM("ROOST_SSE_MAX_S", K_INT, sse_max_s, 5, 86400),
	NUM("ROOST_SESSION_RECHECK_S", K_INT, session_recheck_s, 1, 3600),
	STR("ROOST_RELAY_LISTEN", relay_listen),
	NUM("ROOST_RELAY_MAX_OUTPUT", K_SIZE, relay_max_output, 1024,
	    1LL << 30),
	STR("ROOST_RELAY_URL", relay_url),
	STR("ROOST_PUBLIC_URL", public_url),
	NUM("ROOST_HSTS_MAX_AGE", K_INT, hsts_max_age, 0, 63072000),
	NUM("ROOST_HSTS_INCLUDE_SUBDOMAINS", K_BOOL, hsts_subdomains, 0, 1),
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

static int
set_value(roost_config *c, const key *k, const char *val, const char *where,
    char *err, size_t errlen)
{
	char *slot = (char *)c + k->offset;
	long long n;
	char *end;

	switch (k->type) {
	case K_STR: {
		char **s = (char **)(void *)slot;

		free(*s);
		*s = xstrdup(val);
		return 0;
	}
	case K_SIZE:
	case K_INT:
	case K_BOOL:
		if (k->type == K_BOOL &&
		    (strcmp(val, "true") == 0 || strcmp(val, "yes") == 0 ||
		        strcmp(val, "on") == 0))
			val = "1";
		else if (k->type == K_BOOL &&
		    (strcmp(val, "false") == 0 || strcmp(val, "no") == 0 ||
		        strcmp(val, "off") == 0))
			val = "0";
		errno = 0;
		n = strtoll(val, &end, 10);
		if (errno != 0 || end == val || *end != '\0' || n < k->min ||
		    n > k->max) {
			seterr(err, errlen,
			    "%s (%s): must be a whole number from %lld to %lld",
			    k->name, where, k->min, k->max);
			return -1;
		}
		if (k->type == K_SIZE)
			*(size_t *)(void *)slot = (size_t)n;
		else if (k->type == K_INT)
			*(int *)(void *)slot = (int)n;
		else
			*(bool *)(void *)slot = n != 0;
		return 0;
	}
	return -1;
}

static const key *
find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int
load_file(roost_config *c, const char *path, char *err, size_t errlen)
{
	char line[4096], where[64];
	int lineno = 0, rc = 0;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL) {
		seterr(
		    err, errlen, "config file %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *name, *val, *eq;
		const key *k;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			seterr(
			    err, errlen, "%s:%d: line too long", path, lineno);
			rc = -1;
			break;
		}
		name = trim(line);
		if (*name == '\0' || *name == '#')
			continue;
		eq = strchr(name, '=');
		if (eq == NULL) {
			seterr(err, errlen, "%s:%d: expected KEY = value", path,
			    lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		name = trim(name);
		val = trim(eq + 1);
		if (val[0] == '"') {
			size_t n = strlen(val);

			if (n < 2 || val[n - 1] != '"') {
				seterr(err, errlen, "%s:%d: unterminated quote",
				    path, lineno);
				rc = -1;
				break;
			}
			val[n - 1] = '\0';
			val++;
		}
		k = find_key(name);
		if (k == NULL) {
			seterr(err, errlen, "%s:%d: unknown key %s", path,
			    lineno, name);
			rc = -1;
			break;
		}
		/* The environment wins: skip keys it sets. */
		if (getenv(k->name) != NULL)
			continue;
		snprintf(where, sizeof(where), "line %d", lineno);
		if (set_value(c, k, val, where, err, errlen) != 0) {
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* An empty URL key counts as unset. */
static void
empty_is_unset(char **s)
{
	if (*s != NULL && **s == '\0') {
		free(*s);
		*s = NULL;
	}
}

/* True when s is scheme (e.g. "http://") followed by a host and nothing
 * a URL never holds unencoded (space, control characters, quotes). */
static bool
url_ok(const char *s, const char *scheme)
{
	size_t n = strlen(scheme);

	if (strncmp(s, scheme, n) != 0 || s[n] == '\0' || s[n] == '/')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\\')
			return false;
	return true;
}

/* "https://chat.example.org/" means the same as without the slash; paths
 * are appended to these. */
static void
strip_slashes(char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
}

static int
validate_urls(roost_config *c, char *err, size_t errlen)
{
	empty_is_unset(&c->relay_url);
	empty_is_unset(&c->public_url);
	if (c->relay_url != NULL && strncmp(c->relay_url, "http://", 7) == 0)
		strip_slashes(c->relay_url);
	strip_slashes(c->public_url);
	if (c->relay_url != NULL && strcmp(c->relay_url, "none") != 0 &&
	    !url_ok(c->relay_url, "http://") &&
	    !(strncmp(c->relay_url, "unix:/", 6) == 0 &&
	        c->relay_url[6] != '\0')) {
		seterr(err, errlen,
		    "ROOST_RELAY_URL must be http://host:port, "
		    "unix:/path/to/relay.sock or none");
		return -1;
	}
	if (c->public_url != NULL && !url_ok(c->public_url, "https://") &&
	    !url_ok(c->public_url, "http://")) {
		seterr(err, errlen,
		    "ROOST_PUBLIC_URL must be the address browsers use, "
		    "http(s)://host[:port][/path]");
		return -1;
	}
	/* Decided once here: whether browsers use HTTPS, and the HSTS
	 * header's value. A request's own HTTPS variable cannot tell behind
	 * a proxy that ends TLS and speaks plain HTTP to Roost. */
	c->public_https =
	    c->public_url != NULL && strncmp(c->public_url, "https://", 8) == 0;
	c->hsts[0] = '\0';
	if (c->public_https)
		snprintf(c->hsts, sizeof(c->hsts), "max-age=%d%s",
		    c->hsts_max_age,
		    c->hsts_subdomains ? "; includeSubDomains" : "");
	return 0;
}

static int
validate(roost_config *c, char *err, size_t errlen)
{
	if (c->database_url == NULL || c->database_url[0] == '\0') {
		seterr(err, errlen, "ROOST_DATABASE_URL is not set");
		return -1;
	}
	if (c->redis_url == NULL || c->redis_url[0] == '\0') {
		seterr(err, errlen, "ROOST_REDIS_URL is not set");
		return -1;
	}
	/* A short HMAC key makes every token forgeable (PITFALLS.md). */
	if (c->jwt_secret != NULL && strlen(c->jwt_secret) < 32) {
		seterr(err, errlen,
		    "ROOST_JWT_SECRET must be at least 32 bytes (use 64 random "
		    "hex characters)");
		return -1;
	}
	if (!tenant_schema_valid(c->schema)) {
		seterr(err, errlen,
		    "ROOST_SCHEMA must match [a-z_][a-z0-9_]* (at most 63 "
		    "characters) and not be a system schema");
		return -1;
	}
	if (strcmp(c->tenant_mode, "single") != 0) {
		seterr(err, errlen,
		    "ROOST_TENANT_MODE: only \"single\" is supported by this "
		    "version");
		return -1;
	}
	if (log_level_parse(c->log_level) < 0) {
		seterr(err, errlen,
		    "ROOST_LOG_LEVEL must be debug, info, warn or error");
		return -1;
	}
	/* The base path is compared with the decoded request path. */
	if (c->base_path[0] != '\0' &&
	    (c->base_path[0] != '/' ||
	        c->base_path[strlen(c->base_path) - 1] == '/')) {
		seterr(err, errlen,
		    "ROOST_BASE_PATH must start with '/' and not end with one");
		return -1;
	}
	return validate_urls(c, err, errlen);
}

int
config_load(roost_config *c, const char *file, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->schema = xstrdup("roost");
	c->tenant_mode = xstrdup("single");
	c->sql_dir = xstrdup(ROOST_DEFAULT_SQL_DIR);
	c->base_path = xstrdup("");
	c->log_level = xstrdup("info");
	c->body_limit = 1024 * 1024;
	c->statement_timeout_ms = 15000;
	c->connect_timeout_s = 3;
	c->events_retain = 100000;
	c->sse_heartbeat_s = 15;
	c->sse_max_s = 300;
	c->session_recheck_s = 10;
	c->relay_max_output = CONFIG_DEFAULT_RELAY_MAX_OUTPUT;
	c->hsts_max_age = 31536000; /* one year */

	if (file == NULL)
		file = getenv("ROOST_CONFIG");
	if (file != NULL && *file != '\0') {
		c->source = xstrdup(file);
		if (load_file(c, file, err, errlen) != 0)
			goto fail;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = getenv(keys[i].name);

		if (v != NULL &&
		    set_value(c, &keys[i], v, "environment", err, errlen) != 0)
			goto fail;
	}
	if (validate(c, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	config_free(c);
	return -1;
}

void
config_free(roost_config *c)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].type == K_STR) {
			char **s =
			    (char **)(void *)((char *)c + keys[i].offset);

			free(*s);
			*s = NULL;
		}
	free(c->source);
	c->source = NULL;
}
