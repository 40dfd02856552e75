/* tenant: which tenant a request belongs to.
 *
 * Each tenant has its own PostgreSQL schema and its own Redis key prefix.
 * In single mode every request belongs to the configured schema. Host mode
 * (a hosting provider's install: tenant from the Host header) plugs in here
 * and nowhere else.
 */
#ifndef ROOST_TENANT_H
#define ROOST_TENANT_H

#include <stdbool.h>

#include "config.h"
#include "error.h"
#include "http.h"

typedef struct tenant {
	const char *id;     /* key prefix for Redis: the schema name */
	const char *schema; /* validated schema name */
} tenant;

/* True for [a-z_][a-z0-9_]{0,62} that is not a reserved name (pg_*,
 * information_schema, public). */
bool tenant_schema_valid(const char *s);

/* Resolves the tenant of req. Strings point into cfg. R_SUCCESS, or R_NOT_FOUND
 * when host mode finds no tenant for the Host. */
rerr tenant_resolve(
    const roost_config *cfg, const http_request *req, tenant *out);

#endif
