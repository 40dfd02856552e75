/* api: the REST handlers, one file per resource; the table is routes.c. */
#ifndef ROOST_API_H
#define ROOST_API_H

#include "../app.h"
#include "../json.h"

/* Returns the failure a JSON reader described (see fail_json()). */
#define JSON_FAIL(c, r, je) fail_json((c), (r), &(je))

/* The signed-in user's row id, as a query parameter. */
const char *api_id(req_ctx *c, int64_t id);

/* Reads query parameter name as an integer in [min, max]; absent gives
 * def. R_VALIDATION naming the parameter for anything else. */
rerr api_query_int(req_ctx *c, const char *name, int64_t min, int64_t max,
    int64_t def, int64_t *out);

/* A LIKE pattern for strings starting with q: q's wildcards escaped. Fold
 * case in the SQL (lower() on both sides), which knows Unicode. */
const char *api_like_prefix(req_ctx *c, const char *q);

/* R_VALIDATION naming the first of keys (NULL-terminated) that is present
 * with a JSON null: for fields a PATCH may change but never clear. */
rerr api_reject_nulls(req_ctx *c, const char *const *keys);

/* Answers a page of a list ordered by id: {key: list, has_more,
 * next_after}. The query asked for limit + 1 rows (n of them came back);
 * next_after is the id (column 0) of the last row shown. Takes list. */
rerr api_reply_page(req_ctx *c, const char *key, json_object *list,
    const PGresult *res, int n, int64_t limit);

/* Selects the user id with USER_COLUMNS and answers it with status. */
rerr api_reply_user(req_ctx *c, int status, int64_t id, bool private_view);

rerr api_health(req_ctx *c);

rerr api_events_get(req_ctx *c);
rerr api_events_ticket(req_ctx *c);
rerr api_typing(req_ctx *c);
rerr api_presence(req_ctx *c);
rerr api_settings_public(req_ctx *c);

rerr api_register(req_ctx *c);
rerr api_login(req_ctx *c);
rerr api_logout(req_ctx *c);

rerr api_me_get(req_ctx *c);
rerr api_me_patch(req_ctx *c);
rerr api_me_password(req_ctx *c);
rerr api_me_sessions(req_ctx *c);
rerr api_me_session_delete(req_ctx *c);
rerr api_me_token_create(req_ctx *c);
rerr api_me_tokens(req_ctx *c);
rerr api_me_token_delete(req_ctx *c);

rerr api_users_list(req_ctx *c);
rerr api_user_get(req_ctx *c);

rerr api_rooms_list(req_ctx *c);
rerr api_rooms_discover(req_ctx *c);
rerr api_room_create(req_ctx *c);
rerr api_room_get(req_ctx *c);
rerr api_room_patch(req_ctx *c);
rerr api_room_delete(req_ctx *c);
rerr api_room_join(req_ctx *c);
rerr api_rooms_join_by_code(req_ctx *c);
rerr api_room_leave(req_ctx *c);
rerr api_room_members(req_ctx *c);
rerr api_room_members_add(req_ctx *c);
rerr api_room_member_remove(req_ctx *c);
rerr api_room_invite_code(req_ctx *c);
rerr api_dm_create(req_ctx *c);

rerr api_messages_post(req_ctx *c);
rerr api_messages_list(req_ctx *c);
rerr api_message_get(req_ctx *c);
rerr api_message_patch(req_ctx *c);
rerr api_message_delete(req_ctx *c);
rerr api_message_pin(req_ctx *c);
rerr api_message_unpin(req_ctx *c);
rerr api_room_pins(req_ctx *c);
rerr api_reaction_put(req_ctx *c);
rerr api_reaction_delete(req_ctx *c);
rerr api_room_read(req_ctx *c);
rerr api_search(req_ctx *c);
rerr api_visitor_message(req_ctx *c);

rerr api_admin_user_create(req_ctx *c);
rerr api_admin_user_patch(req_ctx *c);
rerr api_admin_user_reset_password(req_ctx *c);
rerr api_admin_user_delete(req_ctx *c);
rerr api_admin_settings_get(req_ctx *c);
rerr api_admin_settings_patch(req_ctx *c);

#endif
