/* migrate: numbered SQL migrations, applied once per tenant schema.
 *
 * sql/NNN_name.sql files are applied in numeric order, each in its own
 * transaction together with its row in <schema>.schema_migrations, under a
 * transaction-scoped advisory lock keyed by the schema, so workers starting
 * together never apply one twice. An applied migration is never edited;
 * a file whose checksum differs from the recorded one is reported.
 */
#ifndef ROOST_MIGRATE_H
#define ROOST_MIGRATE_H

#include <stddef.h>

#include "db.h"
#include "error.h"

typedef struct migrate_report {
	int applied; /* applied by this run */
	int pending; /* not yet applied (after a status check) */
	int total;   /* files found */
} migrate_report;

/* Creates schema if missing and applies pending migrations from dir.
 * R_SUCCESS, or an error with a message in err. */
rerr migrate_run(db *d, const char *schema, const char *dir,
    migrate_report *rep, char *err, size_t errlen);

/* Counts pending migrations without applying any. A changed checksum of an
 * applied file is an error. */
rerr migrate_status(db *d, const char *schema, const char *dir,
    migrate_report *rep, char *err, size_t errlen);

#endif
