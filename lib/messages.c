/* messages: message objects, content rules and mentions. */
#include "messages.h"

#include <stdlib.h>
#include <string.h>

#define DRAW_MAX_SIDE 4096
#define DRAW_MAX_OPS 2000
#define DRAW_MAX_POINTS_PER_OP 1000
#define DRAW_MAX_POINTS 20000
#define MENTION_MAX_AT 20
#define MENTION_MAX_WORDS 4
#define MENTION_MAX_BYTES 256

/* Parses JSON the database produced; NULL if it somehow does not parse.
 * The result is a new reference the caller adds to an object. */
static json_object *
from_db(arena *a, const char *text)
{
	json_object *o;
	json_err e;

	if (json_parse_strict(a, text, strlen(text), &o, &e) != R_SUCCESS)
		return NULL;
	return json_object_get(o);
}

json_object *
messages_row_json(arena *a, const PGresult *res, int row, int64_t viewer)
{
	json_object *o = json_object_new_object(), *author = NULL;
	bool deleted = PQgetvalue(res, row, 16)[0] == 't';
	const char *type = PQgetvalue(res, row, 2);

	json_object_object_add(o, "id", json_i64(db_col_int(res, row, 0)));
	json_object_object_add(o, "room_id", json_i64(db_col_int(res, row, 1)));
	json_object_object_add(o, "type", json_str(type));
	if (deleted)
		json_object_object_add(o, "content", NULL);
	else if (strcmp(type, "text") == 0)
		json_object_object_add(o, "content", db_col_str(res, row, 3));
	else
		json_object_object_add(o, "content",
		    PQgetisnull(res, row, 4)
		        ? NULL
		        : from_db(a, PQgetvalue(res, row, 4)));
	if (!PQgetisnull(res, row, 5)) {
		author = json_object_new_object();
		json_object_object_add(
		    author, "id", json_i64(db_col_int(res, row, 5)));
		json_object_object_add(author, "name", db_col_str(res, row, 6));
		json_object_object_add(
		    author, "display_name", db_col_str(res, row, 7));
		json_object_object_add(
		    author, "avatar_url", db_col_str(res, row, 8));
	}
	json_object_object_add(o, "author", author);
	if (PQgetisnull(res, row, 9)) {
		json_object_object_add(o, "reply_to", NULL);
	} else {
		json_object *r = json_object_new_object();

		json_object_object_add(
		    r, "id", json_i64(db_col_int(res, row, 9)));
		json_object_object_add(r, "author_id",
		    PQgetisnull(res, row, 10)
		        ? NULL
		        : json_i64(db_col_int(res, row, 10)));
		json_object_object_add(
		    r, "author_name", db_col_str(res, row, 11));
		json_object_object_add(
		    r, "excerpt", json_str(PQgetvalue(res, row, 12)));
		json_object_object_add(r, "deleted",
		    json_object_new_boolean(
		        PQgetvalue(res, row, 13)[0] == 't'));
		json_object_object_add(o, "reply_to", r);
	}
	json_object_object_add(o, "mentions",
	    deleted ? json_object_new_array()
	            : from_db(a, PQgetvalue(res, row, 19)));
	json_object_object_add(o, "reactions",
	    deleted ? json_object_new_array()
	            : from_db(a, PQgetvalue(res, row, 18)));
	json_object_object_add(o, "pinned",
	    json_object_new_boolean(PQgetvalue(res, row, 20)[0] == 't'));
	json_object_object_add(o, "edited_at", db_col_str(res, row, 15));
	json_object_object_add(o, "deleted", json_object_new_boolean(deleted));
	json_object_object_add(
	    o, "created_at", json_str(PQgetvalue(res, row, 17)));
	if (viewer != 0 && !PQgetisnull(res, row, 5) &&
	    db_col_int(res, row, 5) == viewer)
		json_object_object_add(
		    o, "client_msg_id", db_col_str(res, row, 14));
	else
		json_object_object_add(o, "client_msg_id", NULL);
	return o;
}

rerr
messages_get_json(
    db *d, arena *a, int64_t id, int64_t viewer, json_object **out)
{
	const char *p[1] = { arena_printf(a, "%lld", (long long)id) };
	PGresult *res;
	rerr e;

	res = db_query(d, a, &e, MESSAGE_SELECT "WHERE m.id = $1", 1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return R_NOT_FOUND;
	*out = messages_row_json(a, res, 0, viewer);
	return R_SUCCESS;
}

static rerr
bad(json_err *e, const char *field, const char *message)
{
	e->field = field;
	e->message = message;
	return R_VALIDATION;
}

static bool
int_in(json_object *v, int64_t lo, int64_t hi, int64_t *out)
{
	if (!json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return *out >= lo && *out <= hi;
}

static bool
color_ok(json_object *v)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) != 7)
		return false;
	s = json_object_get_string(v);
	if (s[0] != '#')
		return false;
	for (int i = 1; i < 7; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		        (s[i] >= 'a' && s[i] <= 'f') ||
		        (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static rerr
check_drawing(json_object *c, json_err *e)
{
	static const char *const keys[] = { "width", "height", "operations",
		NULL };
	static const char *const op_keys[] = { "tool", "color", "size",
		"points", NULL };
	json_object *w, *h, *ops;
	int64_t width, height, total = 0;
	size_t n;

	if (!json_object_is_type(c, json_type_object))
		return bad(e, "content", "content must be a drawing object");
	if (json_reject_unknown(c, keys, e) != R_SUCCESS)
		return bad(e, "content",
		    "a drawing has only width, height and operations");
	if (!json_object_object_get_ex(c, "width", &w) ||
	    !int_in(w, 1, DRAW_MAX_SIDE, &width) ||
	    !json_object_object_get_ex(c, "height", &h) ||
	    !int_in(h, 1, DRAW_MAX_SIDE, &height))
		return bad(e, "content",
		    "width and height must be whole numbers from 1 to 4096");
	if (!json_object_object_get_ex(c, "operations", &ops) ||
	    !json_object_is_type(ops, json_type_array) ||
	    (n = json_object_array_length(ops)) < 1 || n > DRAW_MAX_OPS)
		return bad(
		    e, "content", "operations must list 1 to 2000 operations");
	for (size_t i = 0; i < n; i++) {
		json_object *op = json_object_array_get_idx(ops, i), *v, *pts;
		int64_t size;
		size_t np;

		if (!json_object_is_type(op, json_type_object) ||
		    json_reject_unknown(op, op_keys, e) != R_SUCCESS)
			return bad(e, "content",
			    "each operation is {tool, color, size, points}");
		if (!json_object_object_get_ex(op, "tool", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    (strcmp(json_object_get_string(v), "pen") != 0 &&
		        strcmp(json_object_get_string(v), "eraser") != 0))
			return bad(e, "content", "tool must be pen or eraser");
		if (!json_object_object_get_ex(op, "color", &v) || !color_ok(v))
			return bad(e, "content", "color must be #rrggbb");
		if (!json_object_object_get_ex(op, "size", &v) ||
		    !int_in(v, 1, 100, &size))
			return bad(e, "content", "size must be 1 to 100");
		if (!json_object_object_get_ex(op, "points", &pts) ||
		    !json_object_is_type(pts, json_type_array) ||
		    (np = json_object_array_length(pts)) < 1 ||
		    np > DRAW_MAX_POINTS_PER_OP)
			return bad(e, "content",
			    "points must list 1 to 1000 points per operation");
		total += (int64_t)np;
		if (total > DRAW_MAX_POINTS)
			return bad(
			    e, "content", "a drawing has at most 20000 points");
		for (size_t k = 0; k < np; k++) {
			json_object *pt = json_object_array_get_idx(pts, k);
			int64_t x, y;

			if (!json_object_is_type(pt, json_type_array) ||
			    json_object_array_length(pt) != 2 ||
			    !int_in(json_object_array_get_idx(pt, 0), 0, width,
			        &x) ||
			    !int_in(json_object_array_get_idx(pt, 1), 0, height,
			        &y))
				return bad(e, "content",
				    "each point is [x, y] inside the canvas");
		}
	}
	return R_SUCCESS;
}

rerr
messages_check_content(arena *a, const settings *s, const char *type,
    json_object *body, const char **text, const char **data, json_err *e)
{
	json_object *c;

	*text = NULL;
	*data = NULL;
	if (strcmp(type, "text") == 0) {
		rerr r = json_get_string(body, "content", true, 1,
		    (size_t)s->message_max_chars,
		    JSTR_MULTILINE | JSTR_NOT_BLANK, text, NULL, e);

		return r;
	}
	if (!json_object_object_get_ex(body, "content", &c) || c == NULL)
		return bad(e, "content", "content is required");
	if (strcmp(type, "drawing") == 0) {
		if (check_drawing(c, e) != R_SUCCESS)
			return R_VALIDATION;
		*data = json_to_arena(a, c, NULL);
		return R_SUCCESS;
	}
	if (strcmp(type, "image") == 0) {
		static const char *const keys[] = { "upload_id", "alt", NULL };
		int64_t upload;
		json_object *v;

		if (!json_object_is_type(c, json_type_object) ||
		    json_reject_unknown(c, keys, e) != R_SUCCESS)
			return bad(
			    e, "content", "content must be {upload_id, alt?}");
		if (json_object_object_get_ex(c, "alt", &v) &&
		    json_get_string(
		        c, "alt", false, 0, 200, 0, text, NULL, e) != R_SUCCESS)
			return R_VALIDATION;
		if (!json_object_object_get_ex(c, "upload_id", &v) ||
		    !int_in(v, 1, 9007199254740991LL, &upload))
			return bad(e, "upload_id",
			    "upload_id must be a positive integer");
		/* No upload exists until the uploads feature stores them. */
		return bad(e, "upload_id", "no such upload of yours");
	}
	return bad(e, "type", "type must be text, drawing or image");
}

static bool
word_char(unsigned char ch)
{
	return ch > ' ' && strchr(",;:!?()[]{}<>\"@", ch) == NULL;
}

static void
append_candidate(
    char *out, size_t *len, size_t cap, const char *s, size_t n, bool *first)
{
	if (*len + 2 * n + 4 >= cap)
		return;
	if (!*first)
		out[(*len)++] = ',';
	*first = false;
	out[(*len)++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			out[(*len)++] = '\\';
		out[(*len)++] = s[i];
	}
	out[(*len)++] = '"';
}

const char *
messages_mention_candidates(arena *a, const char *text)
{
	size_t cap =
	    MENTION_MAX_AT * MENTION_MAX_WORDS * (2 * MENTION_MAX_BYTES + 4) +
	    3;
	char *out = arena_alloc(a, cap),
	     *words = arena_alloc(a, MENTION_MAX_BYTES + 1);
	size_t len = 0;
	bool first = true;
	int ats = 0;

	out[len++] = '{';
	for (const char *p = text; *p && ats < MENTION_MAX_AT; p++) {
		const char *q;
		size_t wl = 0;
		int nwords = 0;

		if (*p != '@' ||
		    (p > text && word_char((unsigned char)p[-1]) &&
		        p[-1] != '\''))
			continue; /* an email address, not a mention */
		ats++;
		q = p + 1;
		while (nwords < MENTION_MAX_WORDS &&
		    word_char((unsigned char)*q)) {
			size_t start = wl, keep;

			if (nwords > 0 && wl < MENTION_MAX_BYTES)
				words[wl++] = ' ';
			while (word_char((unsigned char)*q) &&
			    wl < MENTION_MAX_BYTES)
				words[wl++] = *q++;
			/* "Ana." at the end of a sentence is "Ana" */
			keep = wl;
			while (keep > start &&
			    (words[keep - 1] == '.' || words[keep - 1] == '\''))
				keep--;
			if (keep > start + (nwords > 0))
				append_candidate(
				    out, &len, cap, words, keep, &first);
			nwords++;
			if (*q != ' ')
				break; /* names are words joined by one space */
			q++;
		}
	}
	out[len++] = '}';
	out[len] = '\0';
	return out;
}

rerr
messages_store_mentions(db *d, arena *a, int64_t msg_id, int64_t room_id,
    int64_t author_id, const char *text, bool replace)
{
	const char *p[4];
	rerr e;

	p[0] = arena_printf(a, "%lld", (long long)msg_id);
	p[1] = arena_printf(a, "%lld", (long long)room_id);
	p[2] = arena_printf(a, "%lld", (long long)author_id);
	p[3] = messages_mention_candidates(a, text ? text : "");
	if (replace &&
	    db_query(d, a, &e,
	        "DELETE FROM message_mentions WHERE message_id = $1", 1,
	        p) == NULL)
		return e;
	if (strcmp(p[3], "{}") == 0)
		return R_SUCCESS;
	(void)db_query(d, a, &e,
	    "INSERT INTO message_mentions (message_id, user_id, room_id) "
	    "SELECT DISTINCT $1::bigint, u.id, $2::bigint FROM room_members rm "
	    "JOIN users u ON u.id = rm.user_id WHERE rm.room_id = $2 "
	    "AND u.id <> $3 AND u.deleted_at IS NULL AND "
	    "(lower(u.name) IN (SELECT lower(x) FROM unnest($4::text[]) x) OR "
	    "lower(u.display_name) IN (SELECT lower(x) FROM unnest($4::text[]) "
	    "x))",
	    4, p);
	return e;
}
