/* settings: per-tenant settings, stored in the tenant's settings table.
 *
 * Defaults live here; the table holds only what an admin changed. Read
 * within the request's transaction, so a change is visible to every worker
 * at once (no cross-process cache to go stale).
 */
#ifndef ROOST_SETTINGS_H
#define ROOST_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "arena.h"
#include "db.h"
#include "error.h"
#include "json.h"

typedef struct settings {
	bool open_registration;
	int64_t password_min_length;
	int64_t session_lifetime_hours;
	/* a sign-in ends the user's older session of the same device class */
	bool single_session_per_device;
	const char *app_name;
	/* failed sign-ins per account, and per client IP (docs/auth.md) */
	int64_t login_attempts_per_15min;
	int64_t login_failures_per_ip_per_15min;
	int64_t registrations_per_hour;
	int64_t requests_per_minute;
	/* rooms and messages (docs/rooms.md) */
	const char *default_room_name;
	int64_t default_max_members;
	int64_t rooms_per_user;
	int64_t message_max_chars;
	int64_t edit_window_minutes;
	int64_t messages_per_10s;
	const char *const *reactions; /* NULL-terminated */
	size_t n_reactions;
	int64_t visitor_room_id; /* 0 when unset */
	int64_t visitor_messages_per_hour;
} settings;

/* True when name is one of the tenant's reactions. */
bool settings_has_reaction(const settings *s, const char *name);

/* Loads defaults overlaid with the stored values (inside a transaction). */
rerr settings_load(db *d, arena *a, settings *out);

/* The query settings_load() runs, for db_begin_fetch(), and the same
 * overlay from its rows. */
#define SETTINGS_QUERY "SELECT key, value::text FROM settings"
void settings_from_rows(arena *a, const PGresult *res, settings *out);

/* The settings as a JSON object (new reference). */
json_object *settings_json(const settings *s);

/* Validates a partial update (unknown keys, types, ranges) and stores it.
 * R_VALIDATION with e filled on bad input; nothing is stored then. */
rerr settings_update(db *d, arena *a, json_object *patch, json_err *e);

/* The longest session lifetime that may be configured, in seconds: tokens
 * claiming more are refused outright. */
#define SETTINGS_MAX_LIFETIME_S (8760LL * 3600)

#endif
