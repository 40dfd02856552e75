/* api/search: full-text search over the rooms I belong to.
 *
 * The query language is small and never reaches to_tsquery() raw: q is cut
 * into runs of letters and digits; unquoted runs become prefix terms
 * ('mount':*), quoted ones whole-word phrases ('big' <-> 'cat'); all terms
 * must match. Highlights come from ts_headline() with two control
 * characters as markers: messages cannot contain control characters, so
 * the markers are unambiguous, and the client gets plain text plus
 * [offset, length] pairs instead of HTML to trust. */
#include "api.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../messages.h"
#include "../rooms.h"

#define MAX_TERMS 20
#define MARK_START '\x02'
#define MARK_STOP '\x03'

static bool
word_byte(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z') || ch >= 0x80;
}

/* Builds the tsquery text; NULL when q has no word at all. */
static const char *
build_query(req_ctx *c, const char *q)
{
	buf out = BUF_INIT;
	const char *p = q, *result;
	int terms = 0;

	while (*p && terms < MAX_TERMS) {
		bool phrase = *p == '"';
		const char *end;
		int words = 0;

		if (!phrase && !word_byte((unsigned char)*p)) {
			p++;
			continue;
		}
		if (phrase) {
			p++;
			end = strchr(p, '"');
			if (end == NULL)
				end = p + strlen(p);
		} else {
			end = p;
			while (*end && *end != ' ' && *end != '"')
				end++;
		}
		/* Each run of letters and digits in [p, end) is a lexeme. */
		while (p < end) {
			const char *w;

			while (p < end && !word_byte((unsigned char)*p))
				p++;
			w = p;
			while (p < end && word_byte((unsigned char)*p))
				p++;
			if (p == w)
				break;
			if (words == 0)
				buf_puts(&out, terms ? " & (" : "(");
			else
				buf_puts(&out, phrase ? " <-> " : " & ");
			buf_putc(&out, '\'');
			buf_append(&out, w, (size_t)(p - w));
			buf_puts(&out, phrase ? "'" : "':*");
			words++;
		}
		if (words > 0) {
			buf_putc(&out, ')');
			terms++;
		}
		p = *end ? end + 1 : end;
	}
	result = terms ? arena_strdup(c->a, out.data) : NULL;
	buf_free(&out);
	return result;
}

static int
days_in(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
		31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

static bool
digits(const char *s, int n, int *out)
{
	*out = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*out = *out * 10 + (s[i] - '0');
	}
	return true;
}

/* A date (YYYY-MM-DD) or an RFC 3339 time, checked against the calendar
 * so PostgreSQL never sees one it would refuse. *date_only tells which. */
static bool
valid_time(const char *s, bool *date_only)
{
	int y, mo, d, h, mi, se, oh, om;
	size_t n = strlen(s), i = 19;

	if (n < 10 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
	    y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in(y, mo))
		return false;
	*date_only = n == 10;
	if (n == 10)
		return true;
	if (n < 20 || (s[10] != 'T' && s[10] != 't') ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
	    s[16] != ':' || !digits(s + 17, 2, &se) || h > 23 || mi > 59 ||
	    se > 60)
		return false;
	if (s[i] == '.') {
		i++;
		if (!(s[i] >= '0' && s[i] <= '9'))
			return false;
		while (s[i] >= '0' && s[i] <= '9' && i < 30)
			i++;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == '\0')
		return true;
	return (s[i] == '+' || s[i] == '-') && n == i + 6 &&
	    digits(s + i + 1, 2, &oh) && s[i + 3] == ':' &&
	    digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59;
}

/* Strips the markers from a headline, noting [offset, length] pairs in
 * code points. */
static json_object *
snippet(req_ctx *c, const char *h, json_object **highlights)
{
	size_t n = strlen(h), len = 0, cp = 0, start = 0;
	char *out = arena_alloc(c->a, n + 1);

	*highlights = json_object_new_array();
	for (const char *p = h; *p; p++) {
		if (*p == MARK_START) {
			start = cp;
			continue;
		}
		if (*p == MARK_STOP) {
			json_object *pair = json_object_new_array();

			json_object_array_add(pair, json_i64((int64_t)start));
			json_object_array_add(
			    pair, json_i64((int64_t)(cp - start)));
			json_object_array_add(*highlights, pair);
			continue;
		}
		if (((unsigned char)*p & 0xC0) != 0x80)
			cp++;
		out[len++] = *p;
	}
	out[len] = '\0';
	return json_strn(out, len);
}

rerr
api_search(req_ctx *c)
{
	const char *q, *from, *to, *tsq, *p[9];
	bool from_date = false, to_date = false;
	json_object *list, *answer;
	int64_t limit, room_filter;
	size_t qlen;
	PGresult *res;
	rerr e;

	if ((e = api_query_int(c, "limit", 1, 50, 20, &limit)) != R_SUCCESS ||
	    (e = api_query_int(c, "room_id", 1, 9007199254740991LL, 0,
	         &room_filter)) != R_SUCCESS)
		return e;
	q = http_param(c->req, "q", &qlen);
	if (q == NULL || qlen == 0 || qlen != strlen(q) ||
	    json_utf8_chars(q, qlen) > 200)
		return fail(
		    c, R_VALIDATION, "q", "q must be 1 to 200 characters");
	if ((tsq = build_query(c, q)) == NULL)
		return fail(c, R_VALIDATION, "q", "q must contain a word");
	from = http_param(c->req, "from", NULL);
	to = http_param(c->req, "to", NULL);
	if (from != NULL && !valid_time(from, &from_date))
		return fail(c, R_VALIDATION, "from",
		    "from must be a date (2026-11-22) or an RFC 3339 time");
	if (to != NULL && !valid_time(to, &to_date))
		return fail(c, R_VALIDATION, "to",
		    "to must be a date (2026-11-22) or an RFC 3339 time");
	if (room_filter) {
		room r;

		if ((e = rooms_load(c, room_filter, false, &r)) != R_SUCCESS ||
		    (e = rooms_require_member(c, &r)) != R_SUCCESS)
			return e;
	}
	p[0] = api_id(c, c->user.user_id);
	p[1] = tsq;
	p[2] = room_filter ? api_id(c, room_filter) : NULL;
	p[3] = from;
	/* Dates are UTC days; a date as "to" means through its end. */
	p[4] = to;
	p[5] = to_date ? "t" : "f";
	p[6] = api_id(c, limit);
	p[7] = "StartSel=\x02, StopSel=\x03, MaxWords=35, MinWords=15, "
	       "ShortWord=2, MaxFragments=2, FragmentDelimiter=\" ... \"";
	p[8] = from_date ? "t" : "f";
	res = db_query(c->app->db, c->a, &e,
	    "SELECT " MESSAGE_FIELDS ", ts_rank_cd(m.search, tq), "
	    "ts_headline('simple', m.body, tq, $8)" MESSAGE_FROM
	    "CROSS JOIN to_tsquery('simple', $2) tq "
	    "WHERE m.search @@ tq AND m.deleted_at IS NULL "
	    "AND m.room_id IN (SELECT room_id FROM room_members WHERE user_id "
	    "= $1) "
	    "AND ($3::bigint IS NULL OR m.room_id = $3) "
	    "AND ($4::text IS NULL OR m.created_at >= CASE WHEN $9::bool "
	    "THEN $4::date::timestamp AT TIME ZONE 'UTC' "
	    "ELSE $4::timestamptz END) "
	    "AND ($5::text IS NULL OR m.created_at < CASE WHEN $6::bool "
	    "THEN ($5::date + 1)::timestamp AT TIME ZONE 'UTC' "
	    "ELSE $5::timestamptz END) "
	    "ORDER BY 22 DESC, m.id DESC LIMIT $7",
	    9, p);
	if (res == NULL)
		return e;
	list = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *o = json_object_new_object(), *hl;
		double rank = strtod(PQgetvalue(res, i, MESSAGE_COLUMNS), NULL);

		json_object_object_add(o, "message",
		    messages_row_json(c->a, res, i, c->user.user_id));
		json_object_object_add(o, "snippet",
		    snippet(c, PQgetvalue(res, i, MESSAGE_COLUMNS + 1), &hl));
		json_object_object_add(o, "highlights", hl);
		json_object_object_add(o, "rank",
		    json_object_new_double_s(
		        rank, arena_printf(c->a, "%.6g", rank)));
		json_object_array_add(list, o);
	}
	answer = json_object_new_object();
	json_object_object_add(answer, "results", list);
	return reply_json(c, 200, answer);
}
