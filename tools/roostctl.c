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
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "app.h"
#include "clock.h"
#include "log.h"
#include "migrate.h"
#include "outbox.h"
#include "events.h"
#include "json.h"
#include "password.h"
#include "rooms.h"
#include "settings.h"
#include "token.h"
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
	    "migrations,\n"
	    "                               the relay (ROOST_RELAY_URL) and "
	    "streaming\n"
	    "                               through the web server "
	    "(ROOST_PUBLIC_URL)\n"
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

/* --- check: HTTP probes (libcurl) ------------------------------------ */

/* How long the first bytes of an event stream may take through the web
 * server. Unbuffered, the head and the ": stream open" comment arrive at
 * once; a buffering proxy holds them until its buffer fills or the
 * response ends, which for a stream is never. */
#define PROBE_WAIT_MS 3000
#define CHECK_TOKEN_NAME "roostctl check"

/* What one HTTP request saw. */
typedef struct probe {
	long long start_ms, first_byte_ms; /* first_byte_ms: -1 when none */
	char content_type[128];
	char location[256]; /* of a redirect */
	char served_by[32]; /* X-Roost-Served-By of an event stream */
	char body[512];     /* the first bytes of the body, NUL-terminated */
	size_t body_len;
	bool stop_at_first_bytes;
	long status;
	CURLcode rc;
	char curl_err[CURL_ERROR_SIZE];
} probe;

/* Copies the value of the header line data[0..len) into out when its name
 * is name (with the colon), trimmed and truncated to cap - 1. */
static void
header_value(
    const char *data, size_t len, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name), vlen;
	const char *v;

	if (len <= nlen || strncasecmp(data, name, nlen) != 0)
		return;
	v = data + nlen;
	while (v < data + len && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(data + len - v);
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
		vlen--;
	if (vlen >= cap)
		vlen = cap - 1;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
}

static size_t
probe_header(char *data, size_t size, size_t n, void *ctx)
{
	probe *p = ctx;
	size_t len = size * n;

	/* A new status line (after a 1xx) starts over. */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		p->content_type[0] = '\0';
		p->location[0] = '\0';
		p->served_by[0] = '\0';
	}
	header_value(data, len, "Content-Type:", p->content_type,
	    sizeof(p->content_type));
	header_value(data, len, "Location:", p->location, sizeof(p->location));
	header_value(data, len, "X-Roost-Served-By:", p->served_by,
	    sizeof(p->served_by));
	return len;
}

static size_t
probe_body(char *data, size_t size, size_t n, void *ctx)
{
	probe *p = ctx;
	size_t len = size * n, space = sizeof(p->body) - 1 - p->body_len;

	if (len == 0)
		return 0;
	if (p->first_byte_ms < 0)
		p->first_byte_ms = mono_ms() - p->start_ms;
	if (len < space)
		space = len;
	memcpy(p->body + p->body_len, data, space);
	p->body_len += space;
	p->body[p->body_len] = '\0';
	/* Returning less than len ends the transfer (CURLE_WRITE_ERROR):
	 * a stream never ends by itself. */
	return p->stop_at_first_bytes ? 0 : len;
}

/* GET url (through the unix socket unix_path when not NULL) with headers,
 * for at most PROBE_WAIT_MS. Fills p; returns p->rc. */
static CURLcode
probe_get(probe *p, const char *url, const char *unix_path,
    struct curl_slist *headers, bool stop_at_first_bytes)
{
	CURL *h = curl_easy_init();

	memset(p, 0, sizeof(*p));
	p->first_byte_ms = -1;
	p->stop_at_first_bytes = stop_at_first_bytes;
	if (h == NULL) {
		snprintf(p->curl_err, sizeof(p->curl_err), "curl_easy_init");
		return p->rc = CURLE_FAILED_INIT;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (unix_path != NULL)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, unix_path);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(
	    h, CURLOPT_USERAGENT, "roostctl-check/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)PROBE_WAIT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, p->curl_err);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, probe_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, p);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, probe_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
	/* Whatever a proxy in between does with an identity stream, the check
	 * must see the bytes as they come. */
	curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	p->start_ms = mono_ms();
	p->rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p->status);
	if (p->curl_err[0] == '\0')
		snprintf(p->curl_err, sizeof(p->curl_err), "%s",
		    curl_easy_strerror(p->rc));
	curl_easy_cleanup(h);
	return p->rc;
}

/* True for curl errors that mean nothing is listening there at all. */
static bool
probe_refused(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT;
}

/* The relay's own health route, straight to it (not through the web
 * server). *up: whether a relay answered. Returns 1 when the check
 * failed. */
static int
check_relay(app *ap, bool *up)
{
	const char *conf = ap->cfg.relay_url;
	const char *base = conf ? conf : CONFIG_DEFAULT_RELAY_URL;
	const char *unix_path = NULL, *url;
	probe p;
	rerr e;

	if (conf != NULL && strcmp(conf, "none") == 0) {
		printf("skip relay: ROOST_RELAY_URL=none; the workers "
		       "(roost.fcgi or roost.cgi) serve /api/v1/events\n");
		return 0;
	}
	if (strncmp(base, "unix:", 5) == 0) {
		unix_path = base + 5;
		url = "http://localhost/relay/health";
	} else {
		url = arena_printf(ap->arena, "%s/relay/health", base);
	}
	probe_get(&p, url, unix_path, NULL, false);
	if (p.rc == CURLE_OK && p.status == 200 &&
	    strstr(p.body, "\"status\":\"ok\"") != NULL) {
		printf("ok   relay: %s answers %s\n", base, p.body);
		*up = true;
		return 0;
	}
	if (conf == NULL && probe_refused(p.rc)) {
		/* Unset and nothing there: a deployment without a relay,
		 * unless a relay of this tenant is alive somewhere else. */
		redisReply *r = kv_cmd(ap->kv, ap->arena, &e, "EXISTS",
		    kv_key(ap->arena, ap->cfg.schema, "relay:alive"), NULL);

		if (r != NULL && e == R_SUCCESS &&
		    r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
			printf("FAIL relay: a roost-relay serves this tenant, "
			       "but not at %s; set ROOST_RELAY_URL to its "
			       "address\n",
			    base);
			return 1;
		}
		printf("skip relay: nothing listens at %s (ROOST_RELAY_URL "
		       "unset); the workers serve /api/v1/events. "
		       "Set ROOST_RELAY_URL to the relay's address, or to "
		       "none\n",
		    base);
		return 0;
	}
	if (p.rc != CURLE_OK)
		printf("FAIL relay: %s: %s; is roost-relay running (systemctl "
		       "status roost-relay), and is ROOST_RELAY_URL its -l "
		       "address?\n",
		    unix_path != NULL ? base : url, p.curl_err);
	else
		printf("FAIL relay: %s answered %ld (%.80s), not roost-relay's "
		       "{\"status\":\"ok\"}; is ROOST_RELAY_URL its -l "
		       "address?\n",
		    url, p.status, p.body);
	return 1;
}

/* A temporary API token of the first admin, for the stream probe. The
 * token lives only in this process and in its row (as its SHA-256), which
 * check_stream deletes again; rows left by a check that was killed are
 * deleted by the next. Returns the token (arena memory) and its row id, or
 * NULL after printing the FAIL line. */
static const char *
check_token(app *ap, char *id_out, size_t id_cap)
{
	char hash[65];
	const char *p[3], *tok;
	PGresult *res;
	rerr e;

	if (db_ensure(ap->db) != R_SUCCESS ||
	    db_begin(ap->db, ap->cfg.schema) != R_SUCCESS) {
		printf("FAIL stream: needs the database to sign in\n");
		return NULL;
	}
	(void)db_query(ap->db, ap->arena, &e,
	    "DELETE FROM api_tokens WHERE name = '" CHECK_TOKEN_NAME "' "
	    "AND created_at < now() - interval '10 minutes'",
	    0, NULL);
	res = db_query(ap->db, ap->arena, &e,
	    "SELECT id FROM users WHERE role = 'admin' AND NOT suspended "
	    "AND deleted_at IS NULL AND NOT must_change_password "
	    "ORDER BY id LIMIT 1",
	    0, NULL);
	if (res == NULL || PQntuples(res) != 1) {
		db_rollback(ap->db);
		printf("FAIL stream: %s\n",
		    res == NULL ? "cannot read the users (run roostctl migrate)"
		                : "no admin account to sign in with; run "
		                  "roostctl create-admin first");
		return NULL;
	}
	tok = token_api_new(ap->arena, hash);
	p[0] = PQgetvalue(res, 0, 0);
	p[1] = hash;
	p[2] = arena_strndup(ap->arena, tok, API_TOKEN_SHOWN);
	res = db_query(ap->db, ap->arena, &e,
	    "INSERT INTO api_tokens (user_id, name, token_hash, prefix) "
	    "VALUES ($1, '" CHECK_TOKEN_NAME "', $2, $3) RETURNING id",
	    3, p);
	if (res == NULL || db_commit(ap->db) != R_SUCCESS) {
		db_rollback(ap->db);
		printf("FAIL stream: could not create a temporary API token\n");
		return NULL;
	}
	snprintf(id_out, id_cap, "%s", PQgetvalue(res, 0, 0));
	return tok;
}

static void
drop_check_token(app *ap, const char *id)
{
	const char *p[1] = { id };
	rerr e;

	if (db_begin(ap->db, ap->cfg.schema) != R_SUCCESS ||
	    db_query(ap->db, ap->arena, &e,
	        "DELETE FROM api_tokens WHERE id = $1", 1, p) == NULL ||
	    db_commit(ap->db) != R_SUCCESS) {
		db_rollback(ap->db);
		fprintf(stderr,
		    "roostctl: could not delete the temporary API token "
		    "(id %s, \"" CHECK_TOKEN_NAME "\"); the next check "
		    "deletes it\n",
		    id);
	}
}

static void
print_buffering_fix(void)
{
	printf("     Something between the client and Roost buffers the "
	       "response; Server-Sent\n"
	       "     Events need it to pass bytes on as they come "
	       "(docs/deploy.md):\n"
	       "       nginx:    proxy_buffering off; (to roost-relay) or "
	       "fastcgi_buffering off;\n"
	       "                 (to roost.fcgi) in the location of "
	       "/api/v1/events\n"
	       "       lighttpd: server.stream-response-body = 2\n"
	       "       Apache mod_proxy_fcgi: flushpackets=on (on the "
	       "ProxyPass line, or\n"
	       "                 ProxySet flushpackets=on in <Proxy "
	       "\"fcgi://...\">)\n"
	       "       Apache mod_fcgid: FcgidOutputBufferSize 0\n"
	       "       a CDN or load balancer in front: turn its response "
	       "buffering off for\n"
	       "                 /api/v1/events\n");
}

static void
print_cgipassauth_fix(void)
{
	printf("     Roost did not see the Authorization header. Apache "
	       "passes it to FastCGI\n"
	       "     and CGI only with \"CGIPassAuth On\" "
	       "(httpd-conf/apache-*.conf): without it\n"
	       "     every API token and bearer session gets 401\n");
}

/* GET <public>/api/v1/me with the temporary API token, through the web
 * server to roost.fcgi: the Authorization header must reach the workers
 * (the event stream may go to the relay by another path, so it does not
 * tell). Returns 1 when the check failed. */
static int
check_api(app *ap, const char *base, const char *tok)
{
	const char *url = arena_printf(ap->arena, "%s/api/v1/me", base);
	struct curl_slist *h = NULL;
	probe p;

	h = curl_slist_append(
	    h, arena_printf(ap->arena, "Authorization: Bearer %s", tok));
	probe_get(&p, url, NULL, h, false);
	curl_slist_free_all(h);
	if (p.rc == CURLE_OK && p.status == 200 &&
	    strstr(p.body, "\"email\"") != NULL) {
		printf("ok   api: %s answered 200 to an API token "
		       "(Authorization reaches the workers)\n",
		    url);
		return 0;
	}
	if (p.status == 0)
		printf("FAIL api: %s: %s; is ROOST_PUBLIC_URL the address "
		       "browsers use?\n",
		    url, p.curl_err);
	else if (p.status == 401) {
		printf("FAIL api: %s answered 401 to a valid API token\n", url);
		print_cgipassauth_fix();
	} else if (p.status >= 300 && p.status < 400)
		printf("FAIL api: %s answered %ld, to %s; set ROOST_PUBLIC_URL "
		       "to the address\n"
		       "     browsers end up at (https://...?)\n",
		    url, p.status, p.location[0] ? p.location : "(nowhere)");
	else
		printf("FAIL api: %s answered %ld (%.80s); /api/ must reach "
		       "roost.fcgi\n",
		    url, p.status, p.body);
	return 1;
}

/* GET <public>/api/v1/events as an SSE client, through the web server,
 * timing the first bytes, and who served it: with a relay up, the web
 * server must send the stream there. Returns the number of failed
 * checks (api and stream). */
static int
check_stream(app *ap, bool relay_up)
{
	const char *base = ap->cfg.public_url, *tok, *url;
	struct curl_slist *h = NULL;
	char tok_id[32];
	int failed;
	probe p;

	if (base == NULL) {
		printf("skip stream: ROOST_PUBLIC_URL is not set (the address "
		       "browsers use, e.g.\n"
		       "     https://chat.example.org); set it to check that "
		       "events stream through\n"
		       "     the web server unbuffered\n");
		return 0;
	}
	if ((tok = check_token(ap, tok_id, sizeof(tok_id))) == NULL)
		return 1;
	failed = check_api(ap, base, tok);
	url = arena_printf(ap->arena, "%s/api/v1/events", base);
	h = curl_slist_append(h, "Accept: text/event-stream");
	h = curl_slist_append(h, "Cache-Control: no-cache");
	h = curl_slist_append(
	    h, arena_printf(ap->arena, "Authorization: Bearer %s", tok));
	probe_get(&p, url, NULL, h, true);
	curl_slist_free_all(h);
	drop_check_token(ap, tok_id);

	if (p.first_byte_ms >= 0 && p.status == 200 &&
	    strncmp(p.content_type, "text/event-stream", 17) == 0) {
		if (relay_up && strcmp(p.served_by, "roost-relay") != 0 &&
		    p.served_by[0] != '\0') {
			printf(
			    "FAIL stream: %s was served by %s, not by "
			    "roost-relay: the web server\n"
			    "     sends /api/v1/events to the workers, where "
			    "every waiting client holds a\n"
			    "     whole process. Give /api/v1/events to the "
			    "relay (the sample's \"Realtime\n"
			    "     events\" part), or set ROOST_RELAY_URL = "
			    "none if there is to be no relay\n",
			    url, p.served_by);
			return failed + 1;
		}
		printf("ok   stream: %s sent its first event-stream bytes "
		       "after %lld ms (unbuffered), served by %s\n",
		    url, p.first_byte_ms,
		    p.served_by[0] ? p.served_by : "an unnamed program");
		return failed;
	}
	if (p.rc == CURLE_OPERATION_TIMEDOUT) {
		if (p.status == 0)
			printf("FAIL stream: %s: nothing arrived within %d ms, "
			       "not even the response head\n",
			    url, PROBE_WAIT_MS);
		else
			printf("FAIL stream: %s: the head came (%ld %s) but "
			       "no event-stream bytes within %d ms\n",
			    url, p.status, p.content_type, PROBE_WAIT_MS);
		print_buffering_fix();
		return failed + 1;
	}
	if (p.status == 0) {
		printf("FAIL stream: %s: %s; is ROOST_PUBLIC_URL the address "
		       "browsers use?\n",
		    url, p.curl_err);
		return failed + 1;
	}
	if (p.status == 401) {
		printf("FAIL stream: %s answered 401\n", url);
		print_cgipassauth_fix();
		return failed + 1;
	}
	if (p.status >= 300 && p.status < 400) {
		printf("FAIL stream: %s answered %ld, to %s; set "
		       "ROOST_PUBLIC_URL to the address\n"
		       "     browsers end up at (https://...?)\n",
		    url, p.status, p.location[0] ? p.location : "(nowhere)");
		return failed + 1;
	}
	if (p.status != 200) {
		printf("FAIL stream: %s answered %ld (%.80s); /api/v1/events "
		       "must reach roost-relay or\n"
		       "     roost.fcgi (is the relay running? is "
		       "ROOST_PUBLIC_URL right?)\n",
		    url, p.status, p.body);
		return failed + 1;
	}
	printf("FAIL stream: %s answered 200 %s, not text/event-stream: the "
	       "Accept header\n"
	       "     did not reach Roost, or this URL is not Roost's\n",
	    url, p.content_type[0] ? p.content_type : "(no Content-Type)");
	return failed + 1;
}

/* "srwxrwx---" for a stat mode. */
static void
mode_string(mode_t m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";

	out[0] = S_ISSOCK(m) ? 's' : S_ISDIR(m) ? 'd' : '-';
	for (int i = 0; i < 9; i++)
		out[i + 1] = (m & (0400 >> i)) ? rwx[i] : '-';
	out[10] = '\0';
}

/* Whether users other than the socket's owner and group can connect to
 * the unix socket at path: connecting takes write permission on the
 * socket and search permission on every folder above it. 1 closed (with
 * what closes it in why), 0 open, -1 when it cannot be told (no such
 * socket). desc gets "MODE owner:group". */
static int
socket_closed(
    const char *path, char *desc, size_t desclen, char *why, size_t whylen)
{
	char dir[4096], mode[11];
	struct passwd *pw;
	struct group *gr;
	struct stat st;
	char *slash;

	if (stat(path, &st) != 0)
		return -1;
	mode_string(st.st_mode, mode);
	pw = getpwuid(st.st_uid);
	gr = getgrgid(st.st_gid);
	if (pw != NULL && gr != NULL)
		snprintf(
		    desc, desclen, "%s %s:%s", mode, pw->pw_name, gr->gr_name);
	else
		snprintf(desc, desclen, "%s %ld:%ld", mode, (long)st.st_uid,
		    (long)st.st_gid);
	if ((st.st_mode & S_IWOTH) == 0) {
		if (st.st_mode & S_IWGRP)
			snprintf(why, whylen,
			    "; members of group %s can "
			    "connect",
			    gr ? gr->gr_name : "?");
		else
			why[0] = '\0';
		return 1;
	}
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return 0;
	while ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (stat(dir, &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
			snprintf(why, whylen,
			    " (its folder %.200s is not searchable by others)",
			    dir);
			return 1;
		}
	}
	return 0;
}

/* Connects to Roost's Redis as an outsider would: same address, no
 * credentials, and PINGs. A Redis that answers gives every local
 * account (or, beyond loopback, every host that reaches it) the event
 * stream's message bodies and the power to forge stream tickets. */
static int
check_redis_outsiders(app *ap)
{
	const redis_url *u = kv_target(ap->kv);
	struct timeval tv = { .tv_sec = ap->cfg.connect_timeout_s };
	char desc[300] = "", why[300] = "", where[160];
	redisContext *c;
	redisReply *r;
	int closed = 0, failed = 0;

	redis_url_where(u, where, sizeof(where));
	if (u->path != NULL &&
	    (closed = socket_closed(
	         u->path, desc, sizeof(desc), why, sizeof(why))) == 1)
		printf("ok   redis: unix socket %s, closed to other users%s\n",
		    desc, why);
	c = u->path ? redisConnectUnixWithTimeout(u->path, tv)
	            : redisConnectWithTimeout(u->host, u->port, tv);
	if (c == NULL || c->err) {
		if (closed != 1)
			printf("     note: could not connect again without "
			       "credentials to see whether Redis asks for a "
			       "password (%s)\n",
			    c ? c->errstr : "out of memory");
		redisFree(c);
		return 0;
	}
	redisSetTimeout(c, tv);
	r = redisCommand(c, "PING");
	if (r != NULL && r->type == REDIS_REPLY_ERROR &&
	    (strncmp(r->str, "NOAUTH", 6) == 0 ||
	        strncmp(r->str, "NOPERM", 6) == 0 ||
	        strncmp(r->str, "WRONGPASS", 9) == 0 ||
	        strncmp(r->str, "DENIED", 6) == 0)) {
		printf(
		    "ok   redis: refuses clients without a password (%.*s)\n",
		    (int)strcspn(r->str, " "), r->str);
	} else if (r == NULL) {
		if (closed != 1)
			printf("     note: Redis did not answer a PING without "
			       "credentials (%s)\n",
			    c->errstr);
	} else if (closed == 1) {
		printf("     note: it answers without a password: only the "
		       "socket's permissions keep other users out\n");
	} else {
		printf("FAIL redis: %s answers a client without a password "
		       "(PING: %s): any local\n"
		       "     account (any host, beyond loopback) can read "
		       "every message from the event stream\n"
		       "     and forge stream tickets. Give Redis an ACL user "
		       "with a password and turn its\n"
		       "     \"default\" user off (or set requirepass), or use "
		       "a unix socket closed to other\n"
		       "     users: docs/deploy.md, \"3. Redis\", has the "
		       "lines\n",
		    where,
		    r->type == REDIS_REPLY_STATUS ||
		            r->type == REDIS_REPLY_ERROR
		        ? r->str
		        : "answered");
		failed = 1;
	}
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return failed;
}

static int
check_redis(app *ap)
{
	const redis_url *u = kv_target(ap->kv);
	char where[160];
	redisReply *r;
	rerr e;

	redis_url_where(u, where, sizeof(where));
	r = kv_cmd(ap->kv, ap->arena, &e, "PING", NULL);
	if (r == NULL || e != R_SUCCESS) {
		printf("FAIL redis: %s\n",
		    kv_last_error(ap->kv)[0] ? kv_last_error(ap->kv)
		                             : "unreachable");
		return 1;
	}
	printf("ok   redis: PING answered (%s%s%s)\n", where,
	    u->user           ? ", as user "
	        : u->password ? ", with a password"
	                      : "",
	    u->user ? u->user : "");
	/* Not a failure (Roost works), but every Redis restart would then
	 * resync every client. A Redis that refuses CONFIG (renamed, ACL)
	 * is not asked twice. */
	r = kv_cmd(ap->kv, ap->arena, &e, "CONFIG", "GET", "appendonly", NULL);
	if (r != NULL && e == R_SUCCESS && r->type == REDIS_REPLY_ARRAY &&
	    r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[1]->str, "no") == 0)
		printf(
		    "     note: appendonly is off: a Redis restart loses the "
		    "event stream and every client must reload\n"
		    "     (set appendonly yes and appendfsync everysec in "
		    "redis.conf; docs/deploy.md)\n");
	return check_redis_outsiders(ap);
}

static int
cmd_check(app *ap)
{
	migrate_report rep;
	char err[1024];
	PGresult *res;
	bool relay_up = false;
	int failed = 0;
	rerr e;

	printf("ok   config: %s (schema %s)\n",
	    ap->cfg.source ? ap->cfg.source : "environment", ap->cfg.schema);
	if (ap->cfg.jwt_secret == NULL) {
		printf("FAIL config: ROOST_JWT_SECRET is not set\n");
		failed++;
	}
	if (db_ensure(ap->db) != R_SUCCESS) {
		printf("FAIL database: unreachable: %s\n",
		    db_last_error(ap->db)[0] ? db_last_error(ap->db)
		                             : "no reason given");
		failed++;
	} else if ((res = db_query(ap->db, ap->arena, &e,
	                "SELECT current_setting('server_version')", 0, NULL)) ==
	    NULL) {
		/* Connected, but the statement failed: say why (a pooler in
		 * the way, a role's settings), not "unreachable". */
		printf("FAIL database: connected, but a statement failed: %s\n",
		    db_last_error(ap->db)[0] ? db_last_error(ap->db)
		                             : "no reason given");
		failed++;
	} else {
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
	}
	failed += check_redis(ap);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		printf("FAIL relay, stream: libcurl cannot start\n");
		return EX_FAIL;
	}
	failed += check_relay(ap, &relay_up);
	failed += check_stream(ap, relay_up);
	curl_global_cleanup();
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
