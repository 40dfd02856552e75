/* db: one persistent libpq connection with reconnect and tx hygiene. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

#define MAX_PREPARED 256

struct db {
	char *conninfo;
	PGconn *conn;
	int connect_timeout_s;
	int statement_timeout_ms;
	char sqlstate[6];
	/* The last failure ended the session (see session_ended): the
	 * connection may still read CONNECTION_OK, but it is of no use. */
	bool lost;
	bool prepare; /* ROOST_PG_PREPARED */
	/* Statements prepared on this connection, named "r<index>". Keyed
	 * by the SQL's address (db_query is given string literals) and
	 * checked by content, so a reused address is never a wrong hit. */
	const char *prepared[MAX_PREPARED];
	size_t n_prepared;
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
	d->n_prepared = 0; /* prepared statements die with the session */
	d->lost = false;
	/* expand_dbname=1: the "dbname" value is parsed as a full conninfo
	 * string or URI; the keywords after it override what it says, so
	 * the timeout is always ROOST_CONNECT_TIMEOUT. */
	d->conn = PQconnectdbParams(keys, vals, 1);
	if (d->conn == NULL)
		abort();
	if (PQstatus(d->conn) != CONNECTION_OK) {
		log_warn("database connection failed: %.*s",
		    (int)strcspn(PQerrorMessage(d->conn), "\n"),
		    PQerrorMessage(d->conn));
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

/* Runs sql as a named prepared statement, preparing it on first use on
 * this connection; beyond MAX_PREPARED distinct statements, unprepared. */
static PGresult *
exec_prepared(db *d, const char *sql, int nparams, const char *const *params)
{
	char name[16];
	size_t i;

	for (i = 0; i < d->n_prepared; i++)
		if (d->prepared[i] == sql || strcmp(d->prepared[i], sql) == 0)
			break;
	if (i == d->n_prepared) {
		PGresult *res;

		if (i == MAX_PREPARED)
			return PQexecParams(
			    d->conn, sql, nparams, NULL, params, NULL, NULL, 0);
		snprintf(name, sizeof(name), "r%zu", i);
		res = PQprepare(d->conn, name, sql, nparams, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
			return res; /* the caller reports the error */
		PQclear(res);
		d->prepared[d->n_prepared++] = sql;
	}
	snprintf(name, sizeof(name), "r%zu", i);
	return PQexecPrepared(d->conn, name, nparams, params, NULL, NULL, 0);
}

PGresult *
db_query(db *d, arena *a, rerr *err, const char *sql, int nparams,
    const char *const *params)
{
	PGresult *res;
	ExecStatusType st;
	const char *state;

	d->sqlstate[0] = '\0';
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
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	snprintf(d->sqlstate, sizeof(d->sqlstate), "%s", state ? state : "");
	if (session_ended(d, res)) {
		const char *msg = PQresultErrorMessage(res);

		log_warn("database connection lost: %.*s",
		    (int)strcspn(msg, "\n"), msg);
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

static rerr
simple(db *d, const char *sql)
{
	PGresult *res;
	rerr e = R_SUCCESS;

	if (d->conn == NULL || d->lost || PQstatus(d->conn) != CONNECTION_OK)
		return R_UNAVAILABLE;
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
 * result; the last one that returned rows is kept in *last (registered on
 * arena a) when last is not NULL. */
static rerr
batch(db *d, arena *a, const char *sql, PGresult **last)
{
	PGresult *res;
	rerr e = R_SUCCESS;

	if (last)
		*last = NULL;
	if (d->conn == NULL || d->lost || PQstatus(d->conn) != CONNECTION_OK)
		return R_UNAVAILABLE;
	if (!PQsendQuery(d->conn, sql)) {
		d->lost = true; /* nothing was sent */
		return R_UNAVAILABLE;
	}
	while ((res = PQgetResult(d->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_TUPLES_OK && last != NULL && e == R_SUCCESS) {
			arena_on_cleanup(a, clear_result, res);
			*last = res;
			continue;
		}
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
		    e == R_SUCCESS) {
			e = session_ended(d, res) ? R_UNAVAILABLE : R_INTERNAL;
			if (e == R_INTERNAL)
				log_error("transaction start failed: %.*s",
				    (int)strcspn(
				        PQresultErrorMessage(res), "\n"),
				    PQresultErrorMessage(res));
		}
		PQclear(res);
	}
	if (e != R_SUCCESS && last != NULL)
		*last = NULL; /* freed with the arena */
	return e;
}

rerr
db_begin_fetch(db *d, arena *a, const char *schema, const char *fetch_sql,
    PGresult **fetched)
{
	char *ident, *sql;
	rerr e;

	if (d->conn == NULL || PQstatus(d->conn) != CONNECTION_OK)
		return R_UNAVAILABLE;
	/* One round trip. The schema name was validated against
	 * [a-z_][a-z0-9_]* at configuration time and is quoted by libpq;
	 * the timeout is our own integer. SET LOCAL ends with the
	 * transaction, so nothing leaks to the next client of a pooled
	 * server connection (PgBouncer transaction mode). */
	ident = PQescapeIdentifier(d->conn, schema, strlen(schema));
	if (ident == NULL)
		return R_UNAVAILABLE;
	sql = arena_printf(a,
	    "BEGIN; SET LOCAL search_path TO %s; "
	    "SET LOCAL statement_timeout = %d%s%s",
	    ident, d->statement_timeout_ms, fetch_sql ? "; " : "",
	    fetch_sql ? fetch_sql : "");
	PQfreemem(ident);
	e = batch(d, a, sql, fetched);
	if (e != R_SUCCESS && reconnected(d, e))
		e = batch(d, a, sql, fetched);
	if (e != R_SUCCESS)
		db_rollback(d);
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
