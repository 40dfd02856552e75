/* Unit tests: lib/redis_url (ROOST_REDIS_URL: TCP and unix socket forms,
 * credentials, percent-decoding, and what is refused). */
#include <stdio.h>
#include <string.h>

#include "redis_url.h"
#include "tap.h"

static redis_url u;
static char err[256];

static int
parse(const char *url)
{
	redis_url_free(&u);
	err[0] = '\0';
	return redis_url_parse(url, &u, err, sizeof(err));
}

/* Refused, with a reason that mentions want and never the secret. */
static void
refused(const char *url, const char *want, const char *secret)
{
	int rc = parse(url);

	ok(rc == -1 && strstr(err, want) != NULL, "refused: %s (%s)", url, err);
	ok(secret == NULL || strstr(err, secret) == NULL,
	    "the reason does not repeat the password: %s", url);
	ok(u.host == NULL && u.path == NULL && u.user == NULL &&
	        u.password == NULL,
	    "nothing kept after a refusal: %s", url);
}

int
main(void)
{
	char where[160];

	/* TCP, as before. */
	is_int(parse("redis://127.0.0.1:6379/0"), 0, "plain TCP");
	is_str(u.host, "127.0.0.1", "host");
	is_int(u.port, 6379, "port");
	ok(u.path == NULL && u.user == NULL && u.password == NULL,
	    "no socket, no credentials");
	is_int(parse("redis://cache.example.org"), 0, "host only");
	is_int(u.port, 6379, "default port");
	is_int(u.dbnum, 0, "default db");
	is_int(parse("redis://h:7000/"), 0, "trailing slash");
	is_int(parse("redis://h/15"), 0, "db without port");
	is_int(u.dbnum, 15, "db 15");
	is_str(redis_url_where(&u, where, sizeof(where)), "h:6379", "where");

	/* requirepass: AUTH PASSWORD. */
	is_int(parse("redis://:s3cret@127.0.0.1:6380/2"), 0, ":password@");
	ok(u.user == NULL, "no user");
	is_str(u.password, "s3cret", "password");
	is_int(u.port, 6380, "port after credentials");
	is_int(u.dbnum, 2, "db after credentials");

	/* An ACL user: AUTH USER PASSWORD. */
	is_int(parse("redis://roost:pw@localhost:6379/0"), 0, "user:password@");
	is_str(u.user, "roost", "user");
	is_str(u.password, "pw", "user's password");
	is_str(u.host, "localhost", "host after user");

	/* Percent-decoding, and raw ':' '@' '/' in the password. */
	is_int(parse("redis://ro%6Fst:p%40ss%3Aw%2Fo%25rd@h"), 0, "escapes");
	is_str(u.user, "roost", "decoded user");
	is_str(u.password, "p@ss:w/o%rd", "decoded password");
	is_int(parse("redis://u:a:b@c/d@h:1/3"), 0, "raw : @ / in password");
	is_str(u.password, "a:b@c/d", "everything before the last @");
	is_str(u.host, "h", "host after the last @");
	is_int(u.dbnum, 3, "db after a raw @");

	/* IPv6. */
	is_int(parse("redis://:pw@[::1]:6390/1"), 0, "bracketed IPv6");
	is_str(u.host, "::1", "brackets dropped");
	is_int(u.port, 6390, "IPv6 port");
	is_str(redis_url_where(&u, where, sizeof(where)), "[::1]:6390",
	    "IPv6 where");
	ok(strstr(where, "pw") == NULL, "where has no password");

	/* Unix sockets. */
	is_int(parse("unix:///run/redis/redis-server.sock"), 0, "socket");
	is_str(u.path, "/run/redis/redis-server.sock", "path");
	ok(u.host == NULL && u.password == NULL, "no host, no password");
	is_str(redis_url_where(&u, where, sizeof(where)),
	    "unix socket /run/redis/redis-server.sock", "socket where");
	is_int(parse("unix:///tmp/r.sock?db=3"), 0, "?db=");
	is_int(u.dbnum, 3, "socket db");
	is_int(parse("unix:///tmp/r.sock?user=roost&password=p%26w%3D&db=1"), 0,
	    "query credentials");
	is_str(u.path, "/tmp/r.sock", "path before the query");
	is_str(u.user, "roost", "query user");
	is_str(u.password, "p&w=", "query password decoded");
	is_int(u.dbnum, 1, "db after credentials");
	is_int(parse("unix:///tmp/r.sock?password=only"), 0, "password only");
	ok(u.user == NULL, "no user in the query");
	is_str(u.password, "only", "query password alone");
	is_int(parse("unix://roost:p%40w@/tmp/x@y/r.sock?db=2"), 0,
	    "redis-py's user:password@/path");
	is_str(u.user, "roost", "userinfo user");
	is_str(u.password, "p@w", "userinfo password");
	is_str(u.path, "/tmp/x@y/r.sock", "an @ in the path stays");
	is_int(u.dbnum, 2, "userinfo then db");
	is_int(parse("unix://:pw@/tmp/r.sock"), 0, "socket :password@");
	ok(u.user == NULL, "no user");

	/* Refused. */
	refused("http://h", "must start with", NULL);
	refused("", "must start with", NULL);
	refused("redis://", "missing host", NULL);
	refused("redis://:pw@", "missing host", "pw");
	refused("redis://h:0", "bad port", NULL);
	refused("redis://h:65536", "bad port", NULL);
	refused("redis://h:12x", "bad port", NULL);
	refused("redis://h/16", "database", NULL);
	refused("redis://h/0?x=1", "database", NULL);
	refused("redis://ho st", "bad character", NULL);
	refused("redis://roost@h", "needs a password", NULL);
	refused("redis://roost:@h", "password is empty", NULL);
	refused("redis://:hunter2%@h", "%-escape", "hunter2");
	refused("redis://:hunter2%4@h", "%-escape", "hunter2");
	refused("redis://:hunter2%zz@h", "%-escape", "hunter2");
	refused("redis://:hunter2%00x@h", "%-escape", "hunter2");
	refused("redis://[::1", "]", NULL);
	refused("redis://[::1]x", "PORT", NULL);
	refused("redis://[zz]:1", "IPv6", NULL);
	refused("unix://", "absolute", NULL);
	refused("unix:///", "absolute", NULL);
	refused("unix://tmp/r.sock", "absolute", NULL);
	refused("unix:///tmp/r.sock?db=16", "db=0..15", NULL);
	refused("unix:///tmp/r.sock?db=1&db=2", "db=0..15", NULL);
	refused("unix:///tmp/r.sock?pass=x", "unknown parameter", NULL);
	refused("unix:///tmp/r.sock?user=roost", "needs a password", NULL);
	refused("unix:///tmp/r.sock?password=", "empty", NULL);
	refused("unix:///tmp/r.sock?password=hunter2&password=x", "twice",
	    "hunter2");
	refused("unix://u:hunter2@/tmp/r.sock?password=x", "twice", "hunter2");
	refused(
	    "unix:///tmp/r.sock?password=hunter2%G0", "%-escape", "hunter2");
	{
		char longp[200] = "unix:///";

		memset(longp + 8, 'a', 120);
		longp[128] = '\0';
		refused(longp, "more than a unix socket takes", NULL);
	}
	redis_url_free(&u);
	return tap_done();
}
