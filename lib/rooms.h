/* rooms: loading rooms with their visibility rules, membership changes,
 * system messages and the default room (docs/rooms.md). */
#ifndef ROOST_ROOMS_H
#define ROOST_ROOMS_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "arena.h"
#include "db.h"
#include "error.h"
#include "settings.h"

struct req_ctx;

typedef struct room {
	int64_t id;
	char kind[8];     /* "public", "private", "dm" */
	int64_t owner_id; /* 0 when none */
	bool managed, archived, is_default, is_member, dm_other_deleted;
	int64_t max_members, member_count;
	const char *password_hash; /* NULL when none */
} room;

/* Like rooms_load(), without the visibility rule: for joining by invite
 * code, where knowing the code is the permission. */
rerr rooms_load_unchecked(struct req_ctx *c, int64_t id, bool lock, room *out);

/* Loads room id for the signed-in user. R_NOT_FOUND when it does not
 * exist, or is a private room or DM the user is not in. lock takes the
 * row lock, for membership changes. */
rerr rooms_load(struct req_ctx *c, int64_t id, bool lock, room *out);

/* R_NOT_MEMBER unless the user is a member. */
rerr rooms_require_member(struct req_ctx *c, const room *r);

/* R_FORBIDDEN when the room takes no new messages: archived, or a DM
 * whose other user was deleted. */
rerr rooms_require_writable(struct req_ctx *c, const room *r);

/* True for the room's owner and tenant admins. */
bool rooms_can_manage(struct req_ctx *c, const room *r);

/* The room object's columns; $1 is the viewer's user id. ROOM_SELECT
 * takes a WHERE on "r"; "me" is the viewer's membership row (NULL when
 * not a member). Extra columns go between ROOM_FIELDS and ROOM_FROM, from
 * index ROOM_COLUMNS on. */
#define ROOM_FIELDS                                                            \
	"r.id, r.kind, r.name, r.topic, r.owner_id, r.managed, "               \
	"r.max_members, r.member_count, r.password_hash IS NOT NULL, "         \
	"r.invite_code, r.retention_hours, r.archived, r.is_default, " DB_TS(  \
	    "r.created_at") ", " DB_TS("r.updated_at") ", "                    \
	                                               "me.user_id IS NOT "    \
	                                               "NULL, du.id, "         \
	                                               "du.name, "             \
	                                               "du.display_name, "     \
	                                               "du.avatar_url, "       \
	                                               "du.deleted_at IS NOT " \
	                                               "NULL"

#define ROOM_FROM                                                              \
	" FROM rooms r LEFT JOIN room_members me ON me.room_id = r.id "        \
	"AND me.user_id = $1 LEFT JOIN LATERAL (SELECT u.id, u.name, "         \
	"u.display_name, u.avatar_url, u.deleted_at FROM room_members om "     \
	"JOIN users u ON u.id = om.user_id WHERE r.kind = 'dm' AND "           \
	"om.room_id = r.id AND om.user_id <> $1 LIMIT 1) du ON true "

#define ROOM_SELECT "SELECT " ROOM_FIELDS ROOM_FROM
#define ROOM_COLUMNS 21

/* The room in row of a ROOM_SELECT result. */
json_object *rooms_row_json(const PGresult *res, int row);

/* The room object as the signed-in user sees it. */
rerr rooms_json(struct req_ctx *c, int64_t id, json_object **out);

/* Adds users to r (locked): every one must exist and be active, the room
 * must have space for all, and none may pass rooms_per_user; otherwise
 * nobody is added (R_ROOM_FULL, R_CONFLICT, R_NOT_FOUND). Users already
 * in are skipped. by is the adding user, 0 when joining by oneself. Posts
 * the system message and the member.joined event. *added (arena memory)
 * and *n_added get the users actually added. */
rerr rooms_add_members(struct req_ctx *c, room *r, const int64_t *ids, size_t n,
    int64_t by, int64_t **added, size_t *n_added);

/* Removes uid from r (locked), passing ownership on and archiving the
 * room when it empties; system message and member.left event. */
rerr rooms_remove_member(struct req_ctx *c, room *r, int64_t uid, int64_t by);

/* Puts uid in the tenant's default room, creating it when missing. Used
 * wherever accounts are created (also by roostctl, without a request). */
rerr rooms_join_default(db *d, arena *a, const settings *s, int64_t uid);

#endif
