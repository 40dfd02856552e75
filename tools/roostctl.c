/* roostctl: the administrator's command line.
 *
 * Exit codes (sysexits.h, so scripts can tell failures apart):
 *   0  done / every check passed
 *   1  a check failed (check)
 *   64 usage error        65 invalid input (bad email, short password)
 *   69 database or Redis unreachable
 *   70 internal error     73 the user already exists (create-admin)
 *   78 configuration error
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "app.h"
#include "log.h"
#include "migrate.h"
#include "outbox.h"
#include "events.h"
#include "json.h"
#include "password.h"
#include "rooms.h"
#include "settings.h"
#include "users.h"

#define EX_FAIL 1
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_CANTCREAT 73
#define EX_CONFIG 78

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: roostctl [-c config] command [args]\n"
	    "\n"
	    "commands:\n"
	    "  migrate                      apply pending database migrations\n"
	    "  create-admin EMAIL [--name NAME]\n"
	    "                               create an admin; the password "
	    "comes from\n"
	    "                               ROOST_ADMIN_PASSWORD or the first "
	    "line of stdin\n"
	    "  check                        check config, database, Redis, "
	    "migrations\n"
	    "  run-jobs                     periodic work (cron, every few "
	    "minutes):\n"
	    "                               purge messages past their room's "
	    "retention\n"
	    "  routes                       list the REST routes (method, "
	    "path, auth)\n"
	    "  version                      print the version\n"
	    "\n"
	    "Settings come from ROOST_* environment variables and the "
	    "optional\n"
	    "config file (-c or ROOST_CONFIG).\n"
	    "exit codes: 0 ok, 1 check failed, 64 usage, 65 invalid input,\n"
	    "69 database/Redis unreachable, 70 internal, 73 user exists, 78 "
	    "config\n");
}

static int
cmd_migrate(app *ap)
{
	migrate_report rep;
	char err[1024];
	rerr e;

	e = migrate_run(
	    ap->db, ap->cfg.schema, ap->cfg.sql_dir, &rep, err, sizeof(err));
	if (e != R_SUCCESS) {
		fprintf(stderr, "roostctl: migrate: %s\n", err);
		return e == R_UNAVAILABLE ? EX_UNAVAILABLE : EX_SOFTWARE;
	}
	printf("applied %d migration(s); schema %s is current (%d in total)\n",
	    rep.applied, ap->cfg.schema, rep.total);
	return 0;
}

/* Reads one line of password from stdin, without echo on a terminal. */
static int
read_password(char *out, size_t cap, size_t *len)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO);
	char *nl;

	if (tty) {
		fprintf(stderr, "password: ");
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	if (fgets(out, (int)cap, stdin) == NULL)
		out[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fprintf(stderr, "\n");
	}
	if ((nl = strchr(out, '\n')) == NULL && strlen(out) == cap - 1)
		return -1; /* longer than the cap */
	out[strcspn(out, "\r\n")] = '\0';
	*len = strlen(out);
	return 0;
}

static int
cmd_create_admin(app *ap, int argc, char **argv)
{
	char pwbuf[PASSWORD_MAX_BYTES + 2];
	const char *email = NULL, *name = "Admin", *pw, *why = NULL;
	size_t pw_len;
	int64_t id;
	rerr e;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (argv[i][0] != '-' && email == NULL)
			email = argv[i];
		else {
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (email == NULL) {
		usage(stderr);
		return EX_USAGE;
	}
	pw = getenv("ROOST_ADMIN_PASSWORD");
	if (pw != NULL) {
		pw_len = strlen(pw);
	} else {
		if (read_password(pwbuf, sizeof(pwbuf), &pw_len) != 0) {
			fprintf(stderr,
			    "roostctl: the password is longer "
			    "than %d bytes\n",
			    PASSWORD_MAX_BYTES);
			return EX_DATAERR;
		}
		pw = pwbuf;
	}
	if ((e = db_ensure(ap->db)) != R_SUCCESS ||
	    (e = db_begin(ap->db, ap->cfg.schema)) != R_SUCCESS) {
		fprintf(stderr, "roostctl: the database is unreachable\n");
		return EX_UNAVAILABLE;
	}
	{
		settings s;

		if ((e = settings_load(ap->db, ap->arena, &s)) == R_SUCCESS)
			e = users_create(ap->db, ap->arena, email, name, pw,
			    pw_len, s.password_min_length, "admin", false, &id,
			    &why);
		if (e == R_SUCCESS)
			e = rooms_join_default(ap->db, ap->arena, &s, id);
	}
	if (e == R_SUCCESS)
		e = db_commit(ap->db);
	else
		db_rollback(ap->db);
	sodium_memzero(pwbuf, sizeof(pwbuf));
	switch (e) {
	case R_SUCCESS:
		printf("created admin %s (id %lld)\n", email, (long long)id);
		return 0;
	case R_CONFLICT:
		fprintf(stderr, "roostctl: %s already exists\n", email);
		return EX_CANTCREAT;
	case R_VALIDATION:
		fprintf(stderr, "roostctl: %s\n", why);
		return EX_DATAERR;
	case R_UNAVAILABLE:
		fprintf(stderr, "roostctl: the database is unreachable\n");
		return EX_UNAVAILABLE;
	default:
		if (strcmp(db_last_sqlstate(ap->db), "42P01") == 0)
			fprintf(stderr,
			    "roostctl: the schema is not migrated; "
			    "run roostctl migrate first\n");
		else
			fprintf(stderr, "roostctl: %s\n",
			    why ? why : "internal error");
		return EX_SOFTWARE;
	}
}

/* Deletes messages older than their room's retention_hours, and tells
 * each room's members up to which id history is gone. */
static int
cmd_run_jobs(app *ap)
{
	PGresult *res;
	long long total = 0;
	rerr e;

	if (db_ensure(ap->db) != R_SUCCESS ||
	    db_begin(ap->db, ap->cfg.schema) != R_SUCCESS) {
		fprintf(stderr, "roostctl: the database is unreachable\n");
		return EX_UNAVAILABLE;
	}
	res = db_query(ap->db, ap->arena, &e,
	    "WITH purged AS (DELETE FROM messages m USING rooms r "
	    "WHERE m.room_id = r.id AND r.retention_hours IS NOT NULL "
	    "AND m.created_at < now() - make_interval(hours => "
	    "r.retention_hours) "
	    "RETURNING m.room_id, m.id) "
	    "SELECT room_id, max(id), count(*) FROM purged GROUP BY room_id",
	    0, NULL);
	if (res == NULL) {
		db_rollback(ap->db);
		fprintf(stderr, "roostctl: run-jobs: the purge failed\n");
		return e == R_UNAVAILABLE ? EX_UNAVAILABLE : EX_SOFTWARE;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *d = json_object_new_object();
		long long room_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		long long n = strtoll(PQgetvalue(res, i, 2), NULL, 10);

		json_object_object_add(d, "room_id", json_i64(room_id));
		json_object_object_add(d, "up_to_id",
		    json_i64(strtoll(PQgetvalue(res, i, 1), NULL, 10)));
		json_object_object_add(d, "count", json_i64(n));
		if (events_room(ap->db, ap->arena, room_id, "messages.purged",
		        d) != R_SUCCESS) {
			db_rollback(ap->db);
			fprintf(stderr,
			    "roostctl: run-jobs: could not record events\n");
			return EX_SOFTWARE;
		}
		total += n;
	}
	if (db_commit(ap->db) != R_SUCCESS) {
		fprintf(stderr, "roostctl: run-jobs: commit failed\n");
		return EX_UNAVAILABLE;
	}
	printf("purged %lld message(s) past their room's retention\n", total);
	/* Published outbox rows are only history after a day: the stream in
	 * Redis is what clients resume from. */
	if (db_begin(ap->db, ap->cfg.schema) == R_SUCCESS &&
	    (res = db_query(ap->db, ap->arena, &e,
	         "WITH d AS (DELETE FROM events WHERE published_at < now() - "
	         "interval '1 day' RETURNING 1) SELECT count(*) FROM d",
	         0, NULL)) != NULL &&
	    db_commit(ap->db) == R_SUCCESS)
		printf("deleted %s published event(s) older than a day\n",
		    PQgetvalue(res, 0, 0));
	db_rollback(ap->db);
	{
		int published = 0;

		if (outbox_drain(ap, &published) == R_SUCCESS)
			printf("published %d pending event(s)\n", published);
		else
			fprintf(stderr,
			    "roostctl: run-jobs: the event stream "
			    "is unreachable; events stay queued\n");
	}
	return 0;
}

static int
cmd_check(app *ap)
{
	migrate_report rep;
	char err[1024];
	redisReply *r;
	PGresult *res;
	int failed = 0;
	rerr e;

	printf("ok   config: %s (schema %s)\n",
	    ap->cfg.source ? ap->cfg.source : "environment", ap->cfg.schema);
	if (ap->cfg.jwt_secret == NULL) {
		printf("FAIL config: ROOST_JWT_SECRET is not set\n");
		failed++;
	}
	if (db_ensure(ap->db) == R_SUCCESS &&
	    (res = db_query(ap->db, ap->arena, &e,
	         "SELECT current_setting('server_version')", 0, NULL)) !=
	        NULL) {
		printf("ok   database: PostgreSQL %s\n", PQgetvalue(res, 0, 0));
		e = migrate_status(ap->db, ap->cfg.schema, ap->cfg.sql_dir,
		    &rep, err, sizeof(err));
		if (e != R_SUCCESS) {
			printf("FAIL migrations: %s\n", err);
			failed++;
		} else if (rep.pending > 0) {
			printf("FAIL migrations: %d of %d pending; run "
			       "roostctl migrate\n",
			    rep.pending, rep.total);
			failed++;
		} else {
			printf("ok   migrations: %d applied, none pending\n",
			    rep.total);
		}
	} else {
		printf("FAIL database: unreachable (see the log line above)\n");
		failed++;
	}
	r = kv_cmd(ap->kv, ap->arena, &e, "PING", NULL);
	if (r != NULL && e == R_SUCCESS) {
		printf("ok   redis: PING answered\n");
	} else {
		printf("FAIL redis: unreachable\n");
		failed++;
	}
	return failed ? EX_FAIL : 0;
}

int
main(int argc, char **argv)
{
	const char *config = NULL;
	char err[512];
	app ap;
	int opt, rc;

	while ((opt = getopt(argc, argv, "+c:hV")) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'V': printf("roostctl %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[0], "version") == 0) {
		printf("roostctl %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[0], "routes") == 0) {
		static const char *const auth[] = { "none", "user", "admin" };

		for (size_t i = 0; i < api_routes_count; i++)
			printf("%s %s %s\n", api_routes[i].method,
			    api_routes[i].pattern, auth[api_routes[i].auth]);
		return 0;
	}
	if (strcmp(argv[0], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[0], "migrate") && strcmp(argv[0], "create-admin") &&
	    strcmp(argv[0], "check") && strcmp(argv[0], "run-jobs")) {
		fprintf(stderr, "roostctl: unknown command %s\n", argv[0]);
		usage(stderr);
		return EX_USAGE;
	}
	log_init("roostctl", LOG_WARN);
	if (app_init(&ap, config, "roostctl", err, sizeof(err)) != 0) {
		fprintf(stderr, "roostctl: configuration: %s\n", err);
		return EX_CONFIG;
	}
	log_set_level(LOG_WARN);
	if (strcmp(argv[0], "migrate") == 0)
		rc = cmd_migrate(&ap);
	else if (strcmp(argv[0], "create-admin") == 0)
		rc = cmd_create_admin(&ap, argc - 1, argv + 1);
	else if (strcmp(argv[0], "run-jobs") == 0)
		rc = cmd_run_jobs(&ap);
	else
		rc = cmd_check(&ap);
	app_free(&ap);
	return rc;
}
