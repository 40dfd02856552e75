/* messages: the message object, content validation, mentions.
 *
 * MESSAGE_SELECT reads everything a message object shows in one query,
 * with the reactions summary, mentions and pin as correlated subqueries,
 * so a page of 100 messages is one round-trip.
 */
#ifndef ROOST_MESSAGES_H
#define ROOST_MESSAGES_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "arena.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "settings.h"

#define MESSAGE_FIELDS                                                         \
	"m.id, m.room_id, m.type, m.body, m.data::text, m.author_id, "         \
	"au.name, au.display_name, au.avatar_url, m.reply_to, "                \
	"rp.author_id, ru.name, left(coalesce(rp.body, ''), 100), "            \
	"rp.deleted_at IS NOT NULL, m.client_msg_id, " DB_TS(                  \
	    "m.edited_at") ", m.deleted_at IS NOT NULL, " DB_TS("m.created_"   \
	                                                        "at") ", "     \
	                                                              "(SELEC" \
	                                                              "T "     \
	                                                              "coales" \
	                                                              "ce("    \
	                                                              "json_"  \
	                                                              "agg("   \
	                                                              "json_"  \
	                                                              "build_" \
	                                                              "object" \
	                                                              "('"     \
	                                                              "emoji'" \
	                                                              ", "     \
	                                                              "x."     \
	                                                              "emoji," \
	                                                              " "      \
	                                                              "'count" \
	                                                              "', "    \
	                                                              "x.n, "  \
	                                                              "'user_" \
	                                                              "ids', " \
	                                                              "x.ids)" \
	                                                              " ORDER" \
	                                                              " BY "   \
	                                                              "x."     \
	                                                              "first)" \
	                                                              ", "     \
	                                                              "'[]') " \
	                                                              "FROM "  \
	                                                              "(SELEC" \
	                                                              "T "     \
	                                                              "emoji," \
	                                                              " count" \
	                                                              "(*) "   \
	                                                              "AS n, " \
	                                                              "array_" \
	                                                              "agg("   \
	                                                              "user_"  \
	                                                              "id "    \
	                                                              "ORDER " \
	                                                              "BY "    \
	                                                              "create" \
	                                                              "d_at, " \
	                                                              "user_"  \
	                                                              "id) "   \
	                                                              "AS "    \
	                                                              "ids, "  \
	                                                              "min("   \
	                                                              "create" \
	                                                              "d_at) " \
	                                                              "AS "    \
	                                                              "first " \
	                                                              "FROM "  \
	                                                              "reacti" \
	                                                              "ons "   \
	                                                              "WHERE " \
	                                                              "messag" \
	                                                              "e_id "  \
	                                                              "= "     \
	                                                              "m.id "  \
	                                                              "GROUP " \
	                                                              "BY "    \
	                                                              "emoji)" \
	                                                              " x)::"  \
	                                                              "text, " \
	                                                              "(SELEC" \
	                                                              "T "     \
	                                                              "coales" \
	                                                              "ce("    \
	                                                              "json_"  \
	                                                              "agg("   \
	                                                              "user_"  \
	                                                              "id "    \
	                                                              "ORDER " \
	                                                              "BY "    \
	                                                              "user_"  \
	                                                              "id), "  \
	                                                              "'[]') " \
	                                                              "FROM "  \
	                                                              "messag" \
	                                                              "e_"     \
	                                                              "mentio" \
	                                                              "ns "    \
	                                                              "WHERE " \
	                                                              "messag" \
	                                                              "e_id "  \
	                                                              "= "     \
	                                                              "m.id):" \
	                                                              ":text," \
	                                                              " "      \
	                                                              "EXISTS" \
	                                                              " ("     \
	                                                              "SELECT" \
	                                                              " 1 "    \
	                                                              "FROM "  \
	                                                              "pins "  \
	                                                              "WHERE " \
	                                                              "messag" \
	                                                              "e_id "  \
	                                                              "= "     \
	                                                              "m.id)"

#define MESSAGE_FROM                                                           \
	" FROM messages m LEFT JOIN users au ON au.id = m.author_id "          \
	"LEFT JOIN messages rp ON rp.id = m.reply_to "                         \
	"LEFT JOIN users ru ON ru.id = rp.author_id "

/* Everything a message object shows, in one query; add a WHERE on "m".
 * Extra columns go between MESSAGE_FIELDS and MESSAGE_FROM, from index
 * MESSAGE_COLUMNS on. */
#define MESSAGE_SELECT "SELECT " MESSAGE_FIELDS MESSAGE_FROM
#define MESSAGE_COLUMNS 21

/* The message in row of a MESSAGE_SELECT result, as viewer sees it
 * (client_msg_id only to its author). */
json_object *messages_row_json(
    arena *a, const PGresult *res, int row, int64_t viewer);

/* Loads message id as viewer sees it into *out. R_NOT_FOUND if missing. */
rerr messages_get_json(
    db *d, arena *a, int64_t id, int64_t viewer, json_object **out);

/* Validates content for type ("text", "drawing", "image") against the
 * tenant's settings. For text, *body gets the text; for the others,
 * *data gets the JSON to store. R_VALIDATION with e filled. */
rerr messages_check_content(arena *a, const settings *s, const char *type,
    json_object *body, const char **text, const char **data, json_err *e);

/* The candidate names after each '@' in text, as a PostgreSQL text[]
 * literal ("{}" when none): one to four words per '@'. */
const char *messages_mention_candidates(arena *a, const char *text);

/* Stores the mentions of message msg_id (room room_id, author author_id)
 * found in text; replace drops earlier ones first (an edit). A message
 * without '@' costs no query. */
rerr messages_store_mentions(db *d, arena *a, int64_t msg_id, int64_t room_id,
    int64_t author_id, const char *text, bool replace);

#endif
