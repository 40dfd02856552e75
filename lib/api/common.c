/* api/common: small helpers shared by the handlers. */
#include "api.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../users.h"

const char *
api_id(req_ctx *c, int64_t id)
{
	return arena_printf(c->a, "%" PRId64, id);
}

rerr
api_query_int(req_ctx *c, const char *name, int64_t min, int64_t max,
    int64_t def, int64_t *out)
{
	size_t len;
	const char *v = http_param(c->req, name, &len);
	int64_t n = 0;

	if (v == NULL) {
		*out = def;
		return R_SUCCESS;
	}
	if (len == 0 || len > 18)
		goto bad;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			goto bad;
		n = n * 10 + (v[i] - '0');
	}
	if (n < min || n > max)
		goto bad;
	*out = n;
	return R_SUCCESS;
bad:
	return fail(c, R_VALIDATION, name,
	    "must be a whole number from %" PRId64 " to %" PRId64, min, max);
}

const char *
api_like_prefix(req_ctx *c, const char *q)
{
	size_t n = strlen(q);
	char *out = arena_alloc(c->a, 2 * n + 2), *o = out;

	for (const char *s = q; *s; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '%';
	*o = '\0';
	return out;
}

rerr
api_reject_nulls(req_ctx *c, const char *const *keys)
{
	for (; *keys != NULL; keys++) {
		json_object *v;

		if (json_object_object_get_ex(c->body, *keys, &v) && v == NULL)
			return fail(c, R_VALIDATION, *keys,
			    "%s must not be null", *keys);
	}
	return R_SUCCESS;
}

rerr
api_reply_page(req_ctx *c, const char *key, json_object *list,
    const PGresult *res, int n, int64_t limit)
{
	json_object *answer = json_object_new_object();
	bool more = n > limit;

	json_object_object_add(answer, key, list);
	json_object_object_add(
	    answer, "has_more", json_object_new_boolean(more));
	json_object_object_add(answer, "next_after",
	    more ? json_i64(
	               strtoll(PQgetvalue(res, (int)limit - 1, 0), NULL, 10))
	         : NULL);
	return reply_json(c, 200, answer);
}

rerr
api_reply_user(req_ctx *c, int status, int64_t id, bool private_view)
{
	const char *p[1] = { api_id(c, id) };
	PGresult *res;
	rerr e;

	res = db_query(c->app->db, c->a, &e,
	    "SELECT " USER_COLUMNS " FROM users WHERE id = $1", 1, p);
	if (res == NULL)
		return e;
	if (PQntuples(res) != 1)
		return fail(c, R_NOT_FOUND, NULL, "no such user");
	return reply_json(c, status, users_row_json(res, 0, private_view));
}
