/* events: INSERT into the outbox, in the caller's transaction. */
#include "events.h"

#include <inttypes.h>
#include <stdio.h>

#include "json.h"

static rerr
emit(db *d, arena *a, int64_t room_id, int64_t user_id, const char *type,
    json_object *data)
{
	const char *p[4];
	rerr e;

	p[0] = room_id ? arena_printf(a, "%" PRId64, room_id) : NULL;
	p[1] = user_id ? arena_printf(a, "%" PRId64, user_id) : NULL;
	p[2] = type;
	p[3] = json_to_arena(a, data, NULL);
	json_object_put(data);
	(void)db_query(d, a, &e,
	    "INSERT INTO events (room_id, user_id, type, data) "
	    "VALUES ($1, $2, $3, $4::jsonb)",
	    4, p);
	return e;
}

rerr
events_room(
    db *d, arena *a, int64_t room_id, const char *type, json_object *data)
{
	return emit(d, a, room_id, 0, type, data);
}

rerr
events_user(
    db *d, arena *a, int64_t user_id, const char *type, json_object *data)
{
	return emit(d, a, 0, user_id, type, data);
}
