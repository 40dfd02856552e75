/* api/users: finding people. */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "../users.h"

rerr
api_users_list(req_ctx *c)
{
	const char *q, *p[3];
	json_object *list;
	int64_t after, limit;
	size_t qlen;
	PGresult *res;
	int n;
	rerr e;

	if ((e = api_query_int(c, "limit", 1, 100, 50, &limit)) != R_SUCCESS ||
	    (e = api_query_int(c, "after", 0, 9007199254740991LL, 0, &after)) !=
	        R_SUCCESS)
		return e;
	q = http_param(c->req, "q", &qlen);
	if (q != NULL) {
		if (qlen == 0 || qlen != strlen(q) ||
		    json_utf8_chars(q, qlen) > 64)
			return fail(
			    c, R_VALIDATION, "q", "must be 1 to 64 characters");
		for (size_t i = 0; i < qlen; i++)
			if ((unsigned char)q[i] < 0x20 || q[i] == 0x7f)
				return fail(c, R_VALIDATION, "q",
				    "must not contain control characters");
	}
	p[0] = q ? api_like_prefix(c, q) : NULL;
	p[1] = api_id(c, after);
	p[2] = api_id(c, limit + 1);
	res = db_query(c->app->db, c->a, &e,
	    "SELECT " USER_COLUMNS " FROM users WHERE deleted_at IS NULL "
	    "AND id > $2 AND ($1::text IS NULL OR lower(name) LIKE lower($1) "
	    "OR lower(coalesce(display_name, '')) LIKE lower($1) "
	    "OR email LIKE lower($1)) "
	    "ORDER BY id LIMIT $3",
	    3, p);
	if (res == NULL)
		return e;
	n = PQntuples(res);
	list = json_object_new_array();
	for (int i = 0; i < n && i < limit; i++) {
		int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);

		json_object_array_add(list,
		    users_row_json(
		        res, i, c->user.admin || id == c->user.user_id));
	}
	return api_reply_page(c, "users", list, res, n, limit);
}

rerr
api_user_get(req_ctx *c)
{
	int64_t id = router_param(&c->match, "id")->num;

	return api_reply_user(
	    c, 200, id, c->user.admin || id == c->user.user_id);
}
