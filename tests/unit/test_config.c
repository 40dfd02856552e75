/* Unit tests: lib/config (environment, file, precedence, validation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static const char *vars[] = { "ROOST_DATABASE_URL", "ROOST_REDIS_URL",
	"ROOST_JWT_SECRET", "ROOST_SCHEMA", "ROOST_TENANT_MODE",
	"ROOST_SQL_DIR", "ROOST_BASE_PATH", "ROOST_LOG_LEVEL",
	"ROOST_BODY_LIMIT", "ROOST_STATEMENT_TIMEOUT_MS",
	"ROOST_CONNECT_TIMEOUT", "ROOST_MIGRATE_ON_START", "ROOST_PG_PREPARED",
	"ROOST_PUBLIC_URL", "ROOST_HSTS_MAX_AGE",
	"ROOST_HSTS_INCLUDE_SUBDOMAINS", "ROOST_CONFIG", NULL };

static void
clear(void)
{
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
	setenv("ROOST_DATABASE_URL", "dbname=x", 1);
	setenv("ROOST_REDIS_URL", "unix:///tmp/r.sock", 1);
}

static char *
write_file(const char *text)
{
	static char path[] = "/tmp/roost-config-XXXXXX";
	int fd;

	strcpy(path, "/tmp/roost-config-XXXXXX");
	fd = mkstemp(path);
	if (write(fd, text, strlen(text)) < 0)
		abort();
	close(fd);
	return path;
}

int
main(void)
{
	roost_config c;
	char err[256];
	char *f;

	clear();
	ok(config_load(&c, NULL, err, sizeof(err)) == 0, "minimal env loads");
	is_str(c.schema, "roost", "default schema");
	is_int(c.body_limit, 1048576, "default body limit is 1 MiB");
	is_int(c.statement_timeout_ms, 15000, "default statement timeout");
	ok(c.jwt_secret == NULL, "no secret by default");
	ok(!c.pg_prepared,
	    "prepared statements off by default (PgBouncer-safe)");
	config_free(&c);

	unsetenv("ROOST_DATABASE_URL");
	ok(config_load(&c, NULL, err, sizeof(err)) != 0 &&
	        strstr(err, "ROOST_DATABASE_URL") != NULL,
	    "missing database URL is named");

	clear();
	setenv("ROOST_JWT_SECRET", "short", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) != 0 &&
	        strstr(err, "32 bytes") != NULL,
	    "short JWT secret refused");

	clear();
	setenv("ROOST_SCHEMA", "Robert'); DROP", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) != 0 &&
	        strstr(err, "ROOST_SCHEMA") != NULL,
	    "hostile schema name refused");
	setenv("ROOST_SCHEMA", "pg_catalog", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) != 0,
	    "system schema refused");

	clear();
	setenv("ROOST_BODY_LIMIT", "12abc", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) != 0 &&
	        strstr(err, "ROOST_BODY_LIMIT") != NULL,
	    "non-numeric limit refused");
	setenv("ROOST_BODY_LIMIT", "99999999999999999999", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) != 0,
	    "overflowing limit refused");
	setenv("ROOST_BODY_LIMIT", "2048", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) == 0 && c.body_limit == 2048,
	    "numeric limit accepted");
	config_free(&c);

	clear();
	setenv("ROOST_BASE_PATH", "/chat/", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) != 0,
	    "base path with trailing slash refused");

	clear();
	setenv("ROOST_PG_PREPARED", "1", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) == 0 && c.pg_prepared,
	    "ROOST_PG_PREPARED=1 turns prepared statements on");
	config_free(&c);
	setenv("ROOST_PG_PREPARED", "maybe", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) != 0 &&
	        strstr(err, "ROOST_PG_PREPARED") != NULL,
	    "a non-boolean ROOST_PG_PREPARED is refused");

	/* file values, environment precedence, quoting, comments */
	clear();
	f = write_file("# comment\n"
	               "ROOST_SCHEMA = tenant_a\n"
	               "ROOST_BODY_LIMIT = 4096\n"
	               "ROOST_LOG_LEVEL = \"debug\"\n"
	               "ROOST_MIGRATE_ON_START = yes\n\n");
	setenv("ROOST_BODY_LIMIT", "8192", 1);
	ok(config_load(&c, f, err, sizeof(err)) == 0, "file loads");
	is_str(c.schema, "tenant_a", "file sets schema");
	is_int(c.body_limit, 8192, "environment wins over the file");
	is_str(c.log_level, "debug", "quoted value");
	ok(c.migrate_on_start, "boolean yes");
	is_str(c.source, f, "source recorded");
	config_free(&c);
	unlink(f);

	/* TLS: decided once from the public URL (docs/deploy.md, "TLS"). */
	clear();
	ok(config_load(&c, NULL, err, sizeof(err)) == 0 && !c.public_https &&
	        c.hsts[0] == '\0',
	    "no public URL: no HSTS");
	config_free(&c);
	setenv("ROOST_PUBLIC_URL", "http://chat.example.org", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) == 0 && !c.public_https &&
	        c.hsts[0] == '\0',
	    "http public URL: no HSTS");
	config_free(&c);
	setenv("ROOST_PUBLIC_URL", "https://chat.example.org/", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) == 0 && c.public_https,
	    "https public URL");
	is_str(c.hsts, "max-age=31536000", "HSTS for a year, this host only");
	config_free(&c);
	setenv("ROOST_HSTS_MAX_AGE", "300", 1);
	setenv("ROOST_HSTS_INCLUDE_SUBDOMAINS", "yes", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) == 0, "HSTS settings load");
	is_str(c.hsts, "max-age=300; includeSubDomains", "HSTS settings used");
	config_free(&c);
	setenv("ROOST_HSTS_MAX_AGE", "0", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) == 0 &&
	        strncmp(c.hsts, "max-age=0;", 10) == 0,
	    "max-age=0 (browsers forget the policy) is sent");
	config_free(&c);
	setenv("ROOST_HSTS_MAX_AGE", "-1", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) != 0 &&
	        strstr(err, "ROOST_HSTS_MAX_AGE") != NULL,
	    "negative max-age refused");
	setenv("ROOST_PUBLIC_URL", "ftp://chat.example.org", 1);
	unsetenv("ROOST_HSTS_MAX_AGE");
	ok(config_load(&c, NULL, err, sizeof(err)) != 0,
	    "ftp public URL refused");

	clear();
	f = write_file("ROOST_NOPE = 1\n");
	ok(config_load(&c, f, err, sizeof(err)) != 0 &&
	        strstr(err, "unknown key") != NULL,
	    "unknown key in file refused");
	unlink(f);
	f = write_file("just words\n");
	ok(config_load(&c, f, err, sizeof(err)) != 0 &&
	        strstr(err, ":1:") != NULL,
	    "syntax error names the line");
	unlink(f);
	ok(config_load(&c, "/nonexistent/roost.conf", err, sizeof(err)) != 0,
	    "missing file is an error");
	setenv("ROOST_CONFIG", "/nonexistent/x.conf", 1);
	ok(config_load(&c, NULL, err, sizeof(err)) != 0 &&
	        strstr(err, "/nonexistent/x.conf") != NULL,
	    "ROOST_CONFIG is read");
	return tap_done();
}
