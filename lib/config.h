/* config: settings from the environment first, then an optional file.
 *
 * A variable set in the environment wins over the same key in the file
 * (ROOST_CONFIG or -c names the file). The file is "KEY = value" lines
 * using the same names as the environment (ROOST_DATABASE_URL = ...);
 * '#' starts a comment; values may be double-quoted.
 *
 * The config owns its strings; config_free() releases them.
 */
#ifndef ROOST_CONFIG_H
#define ROOST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* roost-relay's listening address when ROOST_RELAY_LISTEN is unset, and
 * where roostctl check looks for it when ROOST_RELAY_URL is unset. */
#define CONFIG_DEFAULT_RELAY_LISTEN "127.0.0.1:8090"
#define CONFIG_DEFAULT_RELAY_URL "http://" CONFIG_DEFAULT_RELAY_LISTEN
/* ROOST_RELAY_MAX_OUTPUT when unset: bytes queued for one client. */
#define CONFIG_DEFAULT_RELAY_MAX_OUTPUT (1024u * 1024u)

typedef struct roost_config {
	char *database_url; /* ROOST_DATABASE_URL: libpq conninfo or URI */
	char *redis_url;    /* ROOST_REDIS_URL: forms in redis_url.h */
	char *jwt_secret;   /* ROOST_JWT_SECRET: >= 32 bytes when set */
	char *schema;       /* ROOST_SCHEMA: tenant schema (single mode) */
	char *tenant_mode;  /* ROOST_TENANT_MODE: "single" */
	char *sql_dir;      /* ROOST_SQL_DIR: migrations folder */
	char *base_path;    /* ROOST_BASE_PATH: URL prefix to strip, "" */
	char *log_level;    /* ROOST_LOG_LEVEL: debug|info|warn|error */
	size_t body_limit;  /* ROOST_BODY_LIMIT: bytes, default 1 MiB */
	int statement_timeout_ms; /* ROOST_STATEMENT_TIMEOUT_MS: default 15000
	                           */
	int connect_timeout_s;    /* ROOST_CONNECT_TIMEOUT: default 3 */
	bool migrate_on_start;    /* ROOST_MIGRATE_ON_START: 0/1 */
	bool pg_prepared;         /* ROOST_PG_PREPARED: 0/1 (PgBouncer-safe) */
	/* Realtime (docs/realtime.md). */
	int events_retain;   /* ROOST_EVENTS_RETAIN: stream length, 100000 */
	int sse_heartbeat_s; /* ROOST_SSE_HEARTBEAT_S: comment period, 15 */
	int sse_max_s; /* ROOST_SSE_MAX_S: roost.fcgi closes a stream, 300 */
	/* ROOST_SESSION_RECHECK_S: open streams' sessions are checked
	 * against PostgreSQL this often, 10 (the backstop when a
	 * session.ended event is lost) */
	int session_recheck_s;
	char *relay_listen;      /* ROOST_RELAY_LISTEN: roost-relay's -l, or
	                            NULL for its default */
	size_t relay_max_output; /* ROOST_RELAY_MAX_OUTPUT: bytes, 1 MiB */
	/* Deployment checks (roostctl check, docs/deploy.md). NULL when the
	 * key is unset or empty. */
	char *relay_url;  /* ROOST_RELAY_URL: http://host:port, unix:/path or
	                   * "none"; unset means CONFIG_DEFAULT_RELAY_URL */
	char *public_url; /* ROOST_PUBLIC_URL: http(s)://host[/base], the
	                   * address browsers use; no trailing '/' */
	/* Derived from public_url when the config is loaded: browsers reach
	 * Roost over HTTPS (even if a TLS-terminating proxy speaks plain
	 * HTTP to it). Then the session cookies are always Secure and every
	 * answer carries Strict-Transport-Security (docs/deploy.md, "TLS"). */
	bool public_https;
	int hsts_max_age;     /* ROOST_HSTS_MAX_AGE: seconds, 31536000;
	                       * 0 tells browsers to forget the policy */
	bool hsts_subdomains; /* ROOST_HSTS_INCLUDE_SUBDOMAINS: 0/1 */
	char hsts[64];        /* the header's value, "" when not sent */
	char *source;         /* the file read, or NULL */
} roost_config;

/* Loads defaults, then file (may be NULL: then ROOST_CONFIG if set), then
 * the environment. Validates every value. Returns 0, or -1 with a message
 * naming the key in err. On failure the config holds nothing to free. */
int config_load(roost_config *c, const char *file, char *err, size_t errlen);

void config_free(roost_config *c);

#endif
