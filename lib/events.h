/* events: the transactional outbox (docs/events.md).
 *
 * Every state change calls one of these inside its transaction, so the
 * event commits or rolls back with the change it describes. The realtime
 * relay drains the table in id order.
 */
#ifndef ROOST_EVENTS_H
#define ROOST_EVENTS_H

#include <stdint.h>

#include <json-c/json.h>

#include "arena.h"
#include "db.h"
#include "error.h"

/* Records an event for the members of room_id. Takes ownership of data. */
rerr events_room(
    db *d, arena *a, int64_t room_id, const char *type, json_object *data);

/* Records an event for one user's sessions. Takes ownership of data. */
rerr events_user(
    db *d, arena *a, int64_t user_id, const char *type, json_object *data);

/* Records an event for everyone in the tenant (user.updated). */
rerr events_tenant(db *d, arena *a, const char *type, json_object *data);

/* user.updated with the user's public fields, for everyone in the tenant:
 * after a profile change, a role change, a suspension or a deletion. */
rerr events_user_updated(db *d, arena *a, int64_t user_id);

/* events_user for a change one session made: that session is not sent
 * the event (read.updated goes to the user's other devices). */
rerr events_user_from(db *d, arena *a, int64_t user_id, const char *type,
    json_object *data, int64_t origin_session);

/* session.ended for user_id's open streams (docs/realtime.md): those
 * of the sessions and API tokens whose ids are the first column of
 * sessions' and tokens' rows (either may be NULL), or, with all, every
 * stream of the user. reason is a constant ("logout", "suspended", ...).
 * Records nothing when it names nothing. Every relay and waiting worker
 * ends those streams once the transaction commits. */
rerr events_session_ended(db *d, arena *a, int64_t user_id, const char *reason,
    bool all, const PGresult *sessions, const PGresult *tokens);

/* How many events this process inserted since the last call (whether or
 * not their transactions committed), and resets the count: a front end
 * drains the outbox after a request that wrote some. Processes here are
 * single-threaded. */
unsigned events_take_written(void);

#endif
