/* redis_url: ROOST_REDIS_URL taken apart, for every process that connects
 * to Redis (the workers' kv, the relay's subscriber, roostctl check).
 *
 * Accepted forms (docs/configuration.md):
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *   unix://[[USER]:PASSWORD@]/PATH[?QUERY]
 *
 * HOST is a name, an IPv4 address or a bracketed IPv6 address; PORT
 * defaults to 6379 and DB to 0 (0..15). For a socket, QUERY is
 * '&'-separated db=N, user=USER and password=PASSWORD (as redis-py and
 * Jedis write them); credentials given twice are refused. USER and
 * PASSWORD are percent-decoded, so any byte but NUL can be written
 * ("p%40ss" is "p@ss"); a '%' not followed by two hex digits is refused.
 * The socket path is taken as written, up to the first '?'.
 *
 * With a user, connections send AUTH USER PASSWORD (a Redis 6+ ACL user);
 * with a password alone, AUTH PASSWORD (requirepass, or the ACL's
 * "default" user). A user without a password is refused: Redis has no
 * AUTH without one.
 */
#ifndef ROOST_REDIS_URL_H
#define ROOST_REDIS_URL_H

#include <stddef.h>

typedef struct redis_url {
	char *host;     /* TCP: the host (no brackets); NULL for a socket */
	int port;       /* TCP: 1..65535 */
	char *path;     /* unix socket: absolute path; NULL for TCP */
	char *user;     /* NULL: none (AUTH PASSWORD, or no AUTH) */
	char *password; /* NULL: no AUTH; may hold any byte but NUL */
	int dbnum;      /* 0..15 */
} redis_url;

/* Parses url into *u (every field malloc'd; release with
 * redis_url_free()). 0 on success; -1 with a reason in err that never
 * repeats the password, and *u left empty. */
int redis_url_parse(const char *url, redis_url *u, char *err, size_t errlen);

/* Frees what redis_url_parse() allocated and empties *u. */
void redis_url_free(redis_url *u);

/* "unix socket PATH" or "HOST:PORT" (with brackets for IPv6), for log
 * lines and roostctl; never the credentials. Writes into out. */
const char *redis_url_where(const redis_url *u, char *out, size_t outlen);

#endif
