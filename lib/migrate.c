/* migrate: apply sql/NNN_name.sql files once per schema, in order. */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "tenant.h"

#define MAX_MIGRATIONS 1000
#define MAX_MIGRATION_BYTES (4u * 1024u * 1024u)

typedef struct mfile {
	int version;
	char name[128];
} mfile;

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

/* "NNN_name.sql" with digits, then [a-z0-9_]; returns the version or -1. */
static int
parse_name(const char *n)
{
	size_t len = strlen(n), digits = 0;
	int v = 0;

	if (len < 8 || len >= sizeof(((mfile *)0)->name) ||
	    strcmp(n + len - 4, ".sql") != 0)
		return -1;
	while (n[digits] >= '0' && n[digits] <= '9') {
		if (digits >= 6)
			return -1;
		v = v * 10 + (n[digits] - '0');
		digits++;
	}
	if (digits < 3 || n[digits] != '_')
		return -1;
	for (size_t i = digits + 1; i < len - 4; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') ||
		        (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return -1;
	return v;
}

static int
cmp_mfile(const void *a, const void *b)
{
	return ((const mfile *)a)->version - ((const mfile *)b)->version;
}

/* Lists migrations sorted; *files is malloc'd (caller frees). */
static int
list_dir(const char *dir, mfile **files, int *count, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	mfile *out;
	int n = 0;

	*files = NULL;
	*count = 0;
	if (d == NULL) {
		seterr(err, errlen, "cannot open migrations folder %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	out = calloc(MAX_MIGRATIONS, sizeof(*out));
	if (out == NULL)
		abort();
	while ((de = readdir(d)) != NULL) {
		int v = parse_name(de->d_name);

		if (v < 0)
			continue;
		if (n == MAX_MIGRATIONS) {
			seterr(err, errlen, "too many migrations in %s", dir);
			goto fail;
		}
		out[n].version = v;
		/* parse_name() bounded the length. */
		memcpy(out[n].name, de->d_name, strlen(de->d_name) + 1);
		n++;
	}
	qsort(out, (size_t)n, sizeof(*out), cmp_mfile);
	for (int i = 1; i < n; i++)
		if (out[i].version == out[i - 1].version) {
			seterr(err, errlen,
			    "migrations %s and %s share a number",
			    out[i - 1].name, out[i].name);
			goto fail;
		}
	closedir(d);
	*files = out;
	*count = n;
	return 0;
fail:
	closedir(d);
	free(out);
	return -1;
}

/* Reads a file and its SHA-256 (hex). Returns malloc'd text or NULL. */
static char *
read_file(
    const char *dir, const char *name, char sum[65], char *err, size_t errlen)
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	char path[4096];
	size_t len = 0, cap = 8192;
	char *text;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL) {
		seterr(
		    err, errlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	if ((text = malloc(cap)) == NULL)
		abort();
	for (;;) {
		size_t r = fread(text + len, 1, cap - len - 1, f);

		len += r;
		if (r == 0)
			break;
		if (len + 1 == cap) {
			if (cap >= MAX_MIGRATION_BYTES) {
				seterr(err, errlen, "%s is too large", path);
				free(text);
				fclose(f);
				return NULL;
			}
			cap *= 2;
			if ((text = realloc(text, cap)) == NULL)
				abort();
		}
	}
	fclose(f);
	text[len] = '\0';
	if (strlen(text) != len) {
		seterr(err, errlen, "%s contains a NUL byte", path);
		free(text);
		return NULL;
	}
	crypto_hash_sha256(digest, (const unsigned char *)text, len);
	sodium_bin2hex(sum, 65, digest, sizeof(digest));
	return text;
}

/* Executes a statement, expecting no error; logs and fills err on one. */
static int
run(PGconn *c, const char *sql, int n, const char *const *p, PGresult **keep,
    char *err, size_t errlen)
{
	PGresult *res = n >= 0 ? PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0)
	                       : PQexec(c, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		seterr(err, errlen, "%.*s",
		    (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
		PQclear(res);
		return -1;
	}
	if (keep)
		*keep = res;
	else
		PQclear(res);
	return 0;
}

/* BEGIN, serialise against other migrators of this schema, and select it.
 * The lock is transaction-scoped: no session state survives (PgBouncer). */
static int
begin_locked(PGconn *c, const char *schema, char *err, size_t errlen)
{
	const char *p[1] = { schema };

	if (run(c, "BEGIN", -1, NULL, NULL, err, errlen) != 0)
		return -1;
	if (run(c,
	        "SELECT pg_advisory_xact_lock(hashtextextended("
	        "'roost.migrate.' || $1, 0))",
	        1, p, NULL, err, errlen) != 0 ||
	    run(c, "SELECT set_config('search_path', $1, true)", 1, p, NULL,
	        err, errlen) != 0) {
		(void)run(c, "ROLLBACK", -1, NULL, NULL, err, 0);
		return -1;
	}
	return 0;
}

static int
prepare_schema(PGconn *c, const char *schema, char *err, size_t errlen)
{
	char *ident, *sql;
	int rc;

	if (begin_locked(c, schema, err, errlen) != 0)
		return -1;
	/* The one place a schema name enters SQL text: validated against
	 * [a-z_][a-z0-9_]* by the caller and quoted by libpq. */
	ident = PQescapeIdentifier(c, schema, strlen(schema));
	if (ident == NULL)
		abort();
	if (asprintf(&sql, "CREATE SCHEMA IF NOT EXISTS %s", ident) < 0)
		abort();
	PQfreemem(ident);
	rc = run(c, sql, -1, NULL, NULL, err, errlen);
	free(sql);
	if (rc == 0)
		rc = run(c,
		    "CREATE TABLE IF NOT EXISTS schema_migrations ("
		    " version integer PRIMARY KEY,"
		    " name text NOT NULL,"
		    " checksum text NOT NULL,"
		    " applied_at timestamptz NOT NULL DEFAULT now())",
		    -1, NULL, NULL, err, errlen);
	if (rc == 0)
		rc = run(c, "COMMIT", -1, NULL, NULL, err, errlen);
	else
		(void)run(c, "ROLLBACK", -1, NULL, NULL, err, 0);
	return rc;
}

/* Applies or checks one file. *applied is set when it ran now. */
static int
one(PGconn *c, const char *schema, const char *dir, const mfile *m, bool apply,
    int *applied, int *pending, char *err, size_t errlen)
{
	char sum[65], ver[16];
	const char *p[3];
	PGresult *res = NULL;
	char *text;
	int rc = -1;

	text = read_file(dir, m->name, sum, err, errlen);
	if (text == NULL)
		return -1;
	snprintf(ver, sizeof(ver), "%d", m->version);
	if (begin_locked(c, schema, err, errlen) != 0)
		goto out;
	p[0] = ver;
	if (run(c, "SELECT checksum FROM schema_migrations WHERE version = $1",
	        1, p, &res, err, errlen) != 0)
		goto rollback;
	if (PQntuples(res) == 1) {
		if (strcmp(PQgetvalue(res, 0, 0), sum) != 0) {
			seterr(err, errlen,
			    "%s was changed after it was applied (checksum "
			    "differs); "
			    "add a new migration instead",
			    m->name);
			goto rollback;
		}
		rc = run(c, "COMMIT", -1, NULL, NULL, err, errlen);
		goto out;
	}
	if (!apply) {
		(*pending)++;
		rc = run(c, "COMMIT", -1, NULL, NULL, err, errlen);
		goto out;
	}
	if (run(c, text, -1, NULL, NULL, err, errlen) != 0) {
		char inner[512];

		snprintf(inner, sizeof(inner), "%s", err);
		seterr(err, errlen, "%s: %s", m->name, inner);
		goto rollback;
	}
	p[1] = m->name;
	p[2] = sum;
	if (run(c,
	        "INSERT INTO schema_migrations (version, name, checksum) "
	        "VALUES ($1, $2, $3)",
	        3, p, NULL, err, errlen) != 0 ||
	    run(c, "COMMIT", -1, NULL, NULL, err, errlen) != 0)
		goto rollback;
	log_info("applied migration %s to schema %s", m->name, schema);
	(*applied)++;
	rc = 0;
	goto out;
rollback:
	(void)run(c, "ROLLBACK", -1, NULL, NULL, err, 0);
out:
	PQclear(res);
	free(text);
	return rc;
}

static rerr
walk(db *d, const char *schema, const char *dir, bool apply,
    migrate_report *rep, char *err, size_t errlen)
{
	mfile *files;
	int count;
	PGconn *c;

	memset(rep, 0, sizeof(*rep));
	if (!tenant_schema_valid(schema)) {
		seterr(err, errlen, "invalid schema name");
		return R_VALIDATION;
	}
	if (db_ensure(d) != R_SUCCESS || (c = db_conn(d)) == NULL) {
		seterr(err, errlen, "database unreachable");
		return R_UNAVAILABLE;
	}
	if (list_dir(dir, &files, &count, err, errlen) != 0)
		return R_INTERNAL;
	rep->total = count;
	if (prepare_schema(c, schema, err, errlen) != 0) {
		free(files);
		return PQstatus(c) == CONNECTION_OK ? R_INTERNAL
		                                    : R_UNAVAILABLE;
	}
	for (int i = 0; i < count; i++)
		if (one(c, schema, dir, &files[i], apply, &rep->applied,
		        &rep->pending, err, errlen) != 0) {
			free(files);
			return PQstatus(c) == CONNECTION_OK ? R_INTERNAL
			                                    : R_UNAVAILABLE;
		}
	free(files);
	return R_SUCCESS;
}

rerr
migrate_run(db *d, const char *schema, const char *dir, migrate_report *rep,
    char *err, size_t errlen)
{
	return walk(d, schema, dir, true, rep, err, errlen);
}

rerr
migrate_status(db *d, const char *schema, const char *dir, migrate_report *rep,
    char *err, size_t errlen)
{
	return walk(d, schema, dir, false, rep, err, errlen);
}
