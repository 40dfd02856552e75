/* db: one persistent libpq connection with reconnect and tx hygiene. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

#include <sodium.h>

/* How many statement names one transaction can know about. Past it,
 * statements this transaction has not seen prepared run unnamed. */
#define MAX_PREPARED 512
/* Bytes of SHA-256 in a statement name: "r_" and 32 hex digits. */
#define NAME_BYTES 16
#define NAME_LEN (2 + 2 * NAME_BYTES)

struct db {
	char *conninfo;
	PGconn *conn;
	int connect_timeout_s;
	int statement_timeout_ms;
	char sqlstate[6];
	char error[256]; /* the last failure, one line, for roostctl check */
	/* The last failure ended the session (see session_ended): the
	 * connection may still read CONNECTION_OK, but it is of no use. */
	bool lost;
	bool prepare; /* ROOST_PG_PREPARED */
	/* The statement names the server connection serving the open
	 * transaction has prepared: read in the transaction's first round
	 * trip, grown as it prepares more, forgotten when it ends (behind
	 * PgBouncer the next transaction may run on another server
	 * connection). Valid only while known_valid. known_full: the server
	 * had more than MAX_PREPARED, so a name not listed may still exist
	 * there and is not prepared again. */
	unsigned char known[MAX_PREPARED][NAME_BYTES];
	size_t n_known;
	bool known_valid;
	bool known_full;
};

db *
db_new(const char *conninfo, int connect_timeout_s, int statement_timeout_ms,
    bool prepare)
{
	db *d = calloc(1, sizeof(*d));

	if (d == NULL || (d->conninfo = strdup(conninfo)) == NULL)
		abort();
	d->connect_timeout_s = connect_timeout_s;
	d->statement_timeout_ms = statement_timeout_ms;
	d->prepare = prepare;
	return d;
}

void
db_free(db *d)
{
	if (d == NULL)
		return;
	if (d->conn)
		PQfinish(d->conn);
	free(d->conninfo);
	free(d);
}

static void
quiet_notices(void *arg, const char *msg)
{
	(void)arg;
	/* NOTICEs (e.g. "schema already exists") are routine; keep them at
	 * debug level instead of libpq's bare stderr print. */
	log_debug("postgres: %.*s", (int)strcspn(msg, "\n"), msg);
}

static rerr
connect_now(db *d)
{
	char timeout[16];
	/* Keywords override what the conninfo says only where safety needs
	 * it: a bounded connect, TCP keepalives, and our application name. */
	const char *keys[] = { "dbname", "connect_timeout", "keepalives",
		"keepalives_idle", "application_name", NULL };
	const char *vals[] = { d->conninfo, timeout, "1", "30", "roost", NULL };

	snprintf(timeout, sizeof(timeout), "%d", d->connect_timeout_s);
	if (d->conn)
		PQfinish(d->conn);
	d->known_valid = false; /* prepared statements die with the session */
	d->lost = false;
	/* expand_dbname=1: the "dbname" value is parsed as a full conninfo
	 * string or URI; the keywords after it override what it says, so
	 * the timeout is always ROOST_CONNECT_TIMEOUT. */
	d->conn = PQconnectdbParams(keys, vals, 1);
	if (d->conn == NULL)
		abort();
	if (PQstatus(d->conn) != CONNECTION_OK) {
		snprintf(d->error, sizeof(d->error), "%.*s",
		    (int)strcspn(PQerrorMessage(d->conn), "\n"),
		    PQerrorMessage(d->conn));
		log_warn("database connection failed: %s", d->error);
		PQfinish(d->conn);
		d->conn = NULL;
		return R_UNAVAILABLE;
	}
	PQsetNoticeProcessor(d->conn, quiet_notices, NULL);
	return R_SUCCESS;
}

rerr
db_ensure(db *d)
{
	if (d->conn == NULL || d->lost || PQstatus(d->conn) != CONNECTION_OK)
		return connect_now(d);
	switch (PQtransactionStatus(d->conn)) {
	case PQTRANS_IDLE: return R_SUCCESS;
	case PQTRANS_INTRANS:
	case PQTRANS_INERROR:
		log_warn("rolling back a transaction left open");
		db_rollback(d);
		return PQstatus(d->conn) == CONNECTION_OK ? R_SUCCESS
		                                          : connect_now(d);
	default:
		/* ACTIVE or UNKNOWN: the connection is unusable. */
		return connect_now(d);
	}
}

/* True when the failure in res (NULL: none came back) ended the session,
 * and sets d->lost. After a PostgreSQL restart a kept connection still
 * reads CONNECTION_OK: the first statement sent on it gets the server's
 * parting FATAL ("terminating connection due to administrator command",
 * 57P01), and libpq notices the closed socket only on a later read. Any
 * FATAL or PANIC ends the session, and so do the connection-exception
 * class (08) and the shutdown codes (57P01-57P03). A statement timeout
 * (57014) does not. */
static bool
session_ended(db *d, const PGresult *res)
{
	const char *sev, *state;

	if (res == NULL || d->conn == NULL ||
	    PQstatus(d->conn) != CONNECTION_OK) {
		d->lost = true;
		return true;
	}
	sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if ((sev != NULL &&
	        (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) ||
	    (state != NULL &&
	        (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	            strcmp(state, "57P02") == 0 ||
	            strcmp(state, "57P03") == 0)))
		d->lost = true;
	return d->lost;
}

static void
clear_result(void *p)
{
	PQclear(p);
}

/* A statement's name is derived from its text alone: "r_" and the first
 * 128 bits of the SHA-256 of the SQL, in hex. So a name means the same SQL
 * on every server connection, whoever prepared it there (another worker,
 * behind PgBouncer): a name can never run a different statement. A
 * collision between two of our statements would need 2^64 of them. */
static void
statement_digest(const char *sql, unsigned char out[NAME_BYTES])
{
	unsigned char full[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(full, (const unsigned char *)sql, strlen(sql));
	memcpy(out, full, NAME_BYTES);
}

static void
statement_name(const unsigned char digest[NAME_BYTES], char out[NAME_LEN + 1])
{
	out[0] = 'r';
	out[1] = '_';
	sodium_bin2hex(out + 2, NAME_LEN - 1, digest, NAME_BYTES);
}

static bool
known(const db *d, const unsigned char digest[NAME_BYTES])
{
	for (size_t i = 0; i < d->n_known; i++)
		if (memcmp(d->known[i], digest, NAME_BYTES) == 0)
			return true;
	return false;
}

static void
remember(db *d, const unsigned char digest[NAME_BYTES])
{
	if (d->n_known == MAX_PREPARED) {
		d->known_full = true;
		return;
	}
	memcpy(d->known[d->n_known++], digest, NAME_BYTES);
}

/* Loads the names listed by PREPARED_LIST_SQL: what the server connection
 * serving this transaction has prepared. */
static void
load_known(db *d, const PGresult *names)
{
	d->n_known = 0;
	d->known_full = false;
	d->known_valid = true;
	for (int i = 0; i < PQntuples(names); i++) {
		const char *n = PQgetvalue(names, i, 0);
		unsigned char digest[NAME_BYTES];
		size_t len;

		if (strlen(n) != NAME_LEN ||
		    sodium_hex2bin(digest, sizeof(digest), n + 2, NAME_LEN - 2,
		        NULL, &len, NULL) != 0 ||
		    len != NAME_BYTES)
			continue;
		remember(d, digest);
	}
}

/* Runs sql as a named prepared statement. Only inside a transaction whose
 * first round trip listed the server connection's prepared statements:
 * there the list is exact (PgBouncer in transaction mode keeps one server
 * connection for the whole transaction, and nobody else uses it
 * meanwhile), so a name is executed only where it exists and prepared only
 * where it does not. Either error (26000 "does not exist", 42P05 "already
 * exists") would abort the transaction, so neither is left to chance.
 * Outside such a transaction each statement may reach another server
 * connection than the one before it: run unnamed. */
static PGresult *
exec_prepared(db *d, const char *sql, int nparams, const char *const *params)
{
	unsigned char digest[NAME_BYTES];
	char name[NAME_LEN + 1];

	if (!d->known_valid || PQtransactionStatus(d->conn) != PQTRANS_INTRANS)
		return PQexecParams(
		    d->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	statement_digest(sql, digest);
	statement_name(digest, name);
	if (!known(d, digest)) {
		PGresult *res;

		if (d->known_full)
			return PQexecParams(
			    d->conn, sql, nparams, NULL, params, NULL, NULL, 0);
		res = PQprepare(d->conn, name, sql, nparams, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
			return res; /* the caller reports the error */
		PQclear(res);
		remember(d, digest);
	}
	return PQexecPrepared(d->conn, name, nparams, params, NULL, NULL, 0);
}

/* Keeps res's failure for db_last_sqlstate() and db_last_error(): its
 * SQLSTATE, and one line of its message. */
static void
note_failure(db *d, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorMessage(res);

	snprintf(d->sqlstate, sizeof(d->sqlstate), "%s", state ? state : "");
	snprintf(d->error, sizeof(d->error), "SQLSTATE %s: %.*s",
	    d->sqlstate[0] ? d->sqlstate : "none", (int)strcspn(msg, "\n"),
	    msg);
}

PGresult *
db_query(db *d, arena *a, rerr *err, const char *sql, int nparams,
    const char *const *params)
{
	PGresult *res;
	ExecStatusType st;

	d->sqlstate[0] = '\0';
	d->error[0] = '\0';
	if (d->conn == NULL || d->lost || PQstatus(d->conn) != CONNECTION_OK) {
		*err = R_UNAVAILABLE;
		return NULL;
	}
	res = d->prepare
	    ? exec_prepared(d, sql, nparams, params)
	    : PQexecParams(d->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (res == NULL) {
		d->lost = true;
		*err = R_UNAVAILABLE;
		return NULL;
	}
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		arena_on_cleanup(a, clear_result, res);
		*err = R_SUCCESS;
		return res;
	}
	note_failure(d, res);
	if (session_ended(d, res)) {
		log_warn("database connection lost: %s", d->error);
		*err = R_UNAVAILABLE;
	} else if (strcmp(d->sqlstate, "23505") == 0) {
		*err = R_CONFLICT;
	} else if (strcmp(d->sqlstate, "57014") == 0) {
		log_warn("database unavailable (SQLSTATE %s)", d->sqlstate);
		*err = R_UNAVAILABLE;
	} else {
		const char *msg = PQresultErrorMessage(res);

		log_error("query failed (SQLSTATE %s): %.*s", d->sqlstate,
		    (int)strcspn(msg, "\n"), msg);
		*err = R_INTERNAL;
	}
	PQclear(res);
	return NULL;
}

const char *
db_last_sqlstate(const db *d)
{
	return d->sqlstate;
}

const char *
db_last_error(const db *d)
{
	return d->error;
}

static rerr
simple(db *d, const char *sql)
{
	PGresult *res;
	rerr e = R_SUCCESS;

	if (d->conn == NULL || d->lost || PQstatus(d->conn) != CONNECTION_OK)
		return R_UNAVAILABLE;
	d->known_valid = false; /* COMMIT, ROLLBACK: the transaction ends */
	res = PQexec(d->conn, sql);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		e = session_ended(d, res) ? R_UNAVAILABLE : R_INTERNAL;
		if (e == R_INTERNAL)
			log_error("%s failed: %.*s", sql,
			    (int)strcspn(PQerrorMessage(d->conn), "\n"),
			    PQerrorMessage(d->conn));
	}
	PQclear(res);
	return e;
}

/* True when a failure was the session ending under us and a new one is
 * up: the statement never ran, so a read-only or transaction-start
 * statement may be retried once on it (PostgreSQL restarted between
 * requests). */
static bool
reconnected(db *d, rerr e)
{
	if (e != R_UNAVAILABLE || d->conn == NULL ||
	    (!d->lost && PQstatus(d->conn) == CONNECTION_OK))
		return false;
	log_info("reconnecting to the database");
	return connect_now(d) == R_SUCCESS;
}

/* Sends sql (several statements, no parameters) and collects every
 * result. When names is not NULL the first result with rows goes there;
 * the last other one with rows goes to *last when last is not NULL. Both
 * are registered on arena a. */
static rerr
batch(db *d, arena *a, const char *sql, PGresult **names, PGresult **last)
{
	PGresult *res;
	rerr e = R_SUCCESS;

	if (last)
		*last = NULL;
	if (names)
		*names = NULL;
	if (d->conn == NULL || d->lost || PQstatus(d->conn) != CONNECTION_OK)
		return R_UNAVAILABLE;
	if (!PQsendQuery(d->conn, sql)) {
		d->lost = true; /* nothing was sent */
		return R_UNAVAILABLE;
	}
	while ((res = PQgetResult(d->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_TUPLES_OK && e == R_SUCCESS &&
		    ((names != NULL && *names == NULL) || last != NULL)) {
			arena_on_cleanup(a, clear_result, res);
			if (names != NULL && *names == NULL)
				*names = res;
			else
				*last = res;
			continue;
		}
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
		    e == R_SUCCESS) {
			note_failure(d, res);
			e = session_ended(d, res) ? R_UNAVAILABLE : R_INTERNAL;
			if (e == R_INTERNAL)
				log_error(
				    "transaction start failed: %s", d->error);
		}
		PQclear(res);
	}
	if (e != R_SUCCESS) {
		/* freed with the arena */
		if (last != NULL)
			*last = NULL;
		if (names != NULL)
			*names = NULL;
	}
	return e;
}

/* The statement names prepared on the server connection that serves the
 * transaction; see exec_prepared(). The function behind the
 * pg_prepared_statements view, without the view's planning (about half of
 * the query's cost); names not ours are skipped by load_known(). */
#define PREPARED_LIST_SQL "SELECT name FROM pg_catalog.pg_prepared_statement()"

rerr
db_begin_fetch(db *d, arena *a, const char *schema, const char *fetch_sql,
    PGresult **fetched)
{
	PGresult *names = NULL;
	char *ident, *sql;
	rerr e;

	d->known_valid = false;
	if (d->conn == NULL || PQstatus(d->conn) != CONNECTION_OK)
		return R_UNAVAILABLE;
	/* One round trip. The schema name was validated against
	 * [a-z_][a-z0-9_]* at configuration time and is quoted by libpq;
	 * the timeout is our own integer. SET LOCAL ends with the
	 * transaction, so nothing leaks to the next client of a pooled
	 * server connection (PgBouncer transaction mode). With prepared
	 * statements the same round trip lists the ones this server
	 * connection already has. */
	ident = PQescapeIdentifier(d->conn, schema, strlen(schema));
	if (ident == NULL)
		return R_UNAVAILABLE;
	sql = arena_printf(a,
	    "BEGIN; SET LOCAL search_path TO %s; "
	    "SET LOCAL statement_timeout = %d%s%s%s",
	    ident, d->statement_timeout_ms,
	    d->prepare ? "; " PREPARED_LIST_SQL : "", fetch_sql ? "; " : "",
	    fetch_sql ? fetch_sql : "");
	PQfreemem(ident);
	e = batch(d, a, sql, d->prepare ? &names : NULL, fetched);
	if (e != R_SUCCESS && reconnected(d, e))
		e = batch(d, a, sql, d->prepare ? &names : NULL, fetched);
	if (e != R_SUCCESS)
		db_rollback(d);
	else if (names != NULL)
		load_known(d, names);
	return e;
}

rerr
db_begin(db *d, const char *schema)
{
	arena *a = arena_new();
	rerr e = db_begin_fetch(d, a, schema, NULL, NULL);

	arena_free(a);
	return e;
}

rerr
db_commit(db *d)
{
	return simple(d, "COMMIT");
}

void
db_rollback(db *d)
{
	if (d->conn != NULL && !d->lost && PQstatus(d->conn) == CONNECTION_OK &&
	    PQtransactionStatus(d->conn) != PQTRANS_IDLE)
		(void)simple(d, "ROLLBACK");
}

rerr
db_ping(db *d, arena *a)
{
	rerr e;

	(void)db_query(d, a, &e, "SELECT 1", 0, NULL);
	if (e != R_SUCCESS && reconnected(d, e))
		(void)db_query(d, a, &e, "SELECT 1", 0, NULL);
	return e;
}

PGconn *
db_conn(db *d)
{
	return d->conn;
}

bool
db_in_tx(const db *d)
{
	return d->conn != NULL && PQtransactionStatus(d->conn) != PQTRANS_IDLE;
}

json_object *
db_col_str(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL
	                                  : json_str(PQgetvalue(res, row, col));
}

json_object *
db_col_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL
	                                  : json_i64(db_col_int(res, row, col));
}

json_object *
db_col_bool(const PGresult *res, int row, int col)
{
	return json_object_new_boolean(PQgetvalue(res, row, col)[0] == 't');
}

int64_t
db_col_int(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}
