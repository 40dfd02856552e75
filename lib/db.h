/* db: the worker's one PostgreSQL connection.
 *
 * One db per process, kept across requests. db_ensure() at the start of
 * each request rolls back a transaction a previous request left open and
 * re-establishes a connection known to be gone. One that died unnoticed
 * (PostgreSQL restarted while the worker was idle: libpq still says
 * CONNECTION_OK) is found by the transaction start, which reconnects and
 * sends it again, once: nothing was written yet. A session that ends
 * later in a request is R_UNAVAILABLE (503) for that request, and the
 * next one reconnects.
 *
 * Queries take parameters only: no SQL is ever built from input. With
 * prepare (ROOST_PG_PREPARED=1) statements inside a transaction run as
 * named prepared statements, which saves their planning on every later
 * call. A name is derived from the SQL text (so it means that SQL on any
 * server connection), and the transaction's first round trip lists what
 * the server connection serving it has prepared, so a statement is
 * prepared exactly where it is missing. That holds behind PgBouncer in
 * transaction mode, which may run each transaction on another server
 * connection; statements outside a transaction run unnamed. The tenant
 * schema is chosen inside each transaction with SET LOCAL, so no session
 * state leaks to the next client of a pooled connection.
 */
#ifndef ROOST_DB_H
#define ROOST_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "arena.h"
#include "error.h"

typedef struct db db;

/* A result column as a value of the API's JSON: SQL NULL becomes JSON
 * null (a NULL json_object), text a string, bigint a number, boolean a
 * boolean. New references; db_col_int() is the column as an integer. */
json_object *db_col_str(const PGresult *res, int row, int col);
json_object *db_col_i64(const PGresult *res, int row, int col);
json_object *db_col_bool(const PGresult *res, int row, int col);
int64_t db_col_int(const PGresult *res, int row, int col);

/* SQL for a timestamptz column as RFC 3339 UTC with milliseconds, the
 * API's one time format: DB_TS("created_at"). */
#define DB_TS(col)                                                             \
	"to_char(" col " AT TIME ZONE 'UTC', "                                 \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* A handle for conninfo (copied). connect_timeout_s and
 * statement_timeout_ms are applied to every connection/transaction. Does not
 * connect: db_ensure() does. Never NULL. The caller owns it: db_free(). */
db *db_new(const char *conninfo, int connect_timeout_s,
    int statement_timeout_ms, bool prepare);
void db_free(db *d);

/* Makes the connection usable: connects or resets it when it is down, rolls
 * back a leftover transaction. R_SUCCESS or R_UNAVAILABLE. */
rerr db_ensure(db *d);

/* BEGIN, then search_path := schema (validated by the caller) and
 * statement_timeout, both local to the transaction. */
rerr db_begin(db *d, const char *schema);

/* db_begin() plus one constant query (no parameters) in the same round
 * trip; its rows come back in *fetched (freed with arena a). Requests use
 * it to read the tenant's settings at no extra cost. */
rerr db_begin_fetch(db *d, arena *a, const char *schema, const char *fetch_sql,
    PGresult **fetched);
rerr db_commit(db *d);
/* Rolls back when a transaction is open; harmless otherwise. */
void db_rollback(db *d);

/* Runs one statement with text parameters (NULL entries are SQL NULL).
 * The result's PQclear is registered on arena a. Returns the result, or
 * NULL with *err set: R_UNAVAILABLE when the connection is gone or the
 * statement timed out, R_CONFLICT on a unique violation (23505), R_INTERNAL
 * otherwise (logged with its SQLSTATE). */
PGresult *db_query(db *d, arena *a, rerr *err, const char *sql, int nparams,
    const char *const *params);

/* The SQLSTATE of the last failed db_query ("" when none). */
const char *db_last_sqlstate(const db *d);

/* The last failure as one line: libpq's reason for a failed connect, or
 * "SQLSTATE xxxxx: message" for a failed statement ("" when the last
 * db_query succeeded). Owned by d, valid until its next call. */
const char *db_last_error(const db *d);

/* A quick liveness round-trip (SELECT 1) outside any transaction; when the
 * connection turns out to have died since the last request, reconnects and
 * tries once more. db_begin() does the same for its BEGIN. */
rerr db_ping(db *d, arena *a);

/* Raw connection for the migrations runner; NULL when not connected. */
PGconn *db_conn(db *d);

/* True while a transaction is open. */
bool db_in_tx(const db *d);

#endif
