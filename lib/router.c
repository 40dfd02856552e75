/* router: method + path -> route, with typed path parameters. */
#include "router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"

#define MAX_SEGMENTS 16
#define MAX_STR_PARAM 200
#define MAX_INT_ID 9007199254740991LL /* 2^53 - 1: exact in JSON numbers */

typedef struct seg {
	const char *p;
	size_t n;
} seg;

/* Splits "/a/b/c" into segments; "/" has none. Returns the count, or -1
 * when there are too many. */
static int
split(const char *path, seg *out)
{
	int n = 0;
	const char *p = path;

	if (*p == '/')
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (n == MAX_SEGMENTS)
			return -1;
		out[n].p = p;
		out[n].n = len;
		n++;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return n;
}

typedef enum { P_LITERAL, P_INT, P_STR, P_BAD } ptype;

/* Classifies a pattern segment; for parameters, *name and *name_len get
 * the parameter's name. */
static ptype
pattern_seg(const seg *s, const char **name, size_t *name_len)
{
	const char *colon;

	if (s->n < 2 || s->p[0] != '{' || s->p[s->n - 1] != '}')
		return memchr(s->p, '{', s->n) || memchr(s->p, '}', s->n)
		    ? P_BAD
		    : P_LITERAL;
	colon = memchr(s->p, ':', s->n);
	if (colon == NULL || colon == s->p + 1)
		return P_BAD;
	*name = s->p + 1;
	*name_len = (size_t)(colon - s->p - 1);
	if ((size_t)(s->p + s->n - 1 - colon - 1) == 3 &&
	    strncmp(colon + 1, "int", 3) == 0)
		return P_INT;
	if ((size_t)(s->p + s->n - 1 - colon - 1) == 3 &&
	    strncmp(colon + 1, "str", 3) == 0)
		return P_STR;
	return P_BAD;
}

int
router_check_table(const route *table, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		seg segs[MAX_SEGMENTS];
		int count, params = 0;

		if (table[i].method == NULL || table[i].pattern == NULL ||
		    table[i].handler == NULL || table[i].pattern[0] != '/')
			return (int)i;
		count = split(table[i].pattern, segs);
		if (count < 0)
			return (int)i;
		for (int k = 0; k < count; k++) {
			const char *name;
			size_t nl;
			ptype t = pattern_seg(&segs[k], &name, &nl);

			if (t == P_BAD || segs[k].n == 0)
				return (int)i;
			if (t != P_LITERAL)
				params++;
		}
		if (params > ROUTER_MAX_PARAMS)
			return (int)i;
	}
	return -1;
}

/* Tries one route's pattern against the path segments. Returns false when
 * the shape does not fit. On a fit, *score ranks specificity (literals to
 * the left weigh most) and *bad names an invalid typed value, if any. */
static bool
fit(const route *r, const seg *ps, int np, arena *a, route_match *m,
    unsigned *score, const char **bad, size_t *bad_len)
{
	seg rs[MAX_SEGMENTS];
	int nr = split(r->pattern, rs);

	if (nr != np)
		return false;
	*score = 0;
	*bad = NULL;
	m->n_params = 0;
	for (int i = 0; i < nr; i++) {
		const char *name = NULL;
		size_t nl = 0;
		ptype t = pattern_seg(&rs[i], &name, &nl);
		const seg *s = &ps[i];

		if (t == P_LITERAL) {
			if (s->n != rs[i].n || memcmp(s->p, rs[i].p, s->n) != 0)
				return false;
			*score |= 1u << (MAX_SEGMENTS - 1 - i);
			continue;
		}
		if (s->n == 0)
			return false;
		route_param *rp = &m->params[m->n_params++];

		rp->name = name;
		rp->name_len = nl;
		rp->num = 0;
		if (t == P_INT) {
			bool numeric = true, digits = true;
			long long v = 0;

			for (size_t k = 0; k < s->n; k++) {
				char c = s->p[k];

				if (c < '0' || c > '9') {
					digits = false;
					if (c != '-' && c != '+')
						numeric = false;
				}
			}
			if (!numeric)
				return false;
			if (!digits || s->n > 16 || s->p[0] == '0') {
				*bad = name;
				*bad_len = nl;
			} else {
				for (size_t k = 0; k < s->n; k++)
					v = v * 10 + (s->p[k] - '0');
				if (v < 1 || v > MAX_INT_ID) {
					*bad = name;
					*bad_len = nl;
				}
				rp->num = v;
			}
		} else if (s->n > MAX_STR_PARAM) {
			*bad = name;
			*bad_len = nl;
		}
		rp->str = a ? arena_strndup(a, s->p, s->n) : NULL;
	}
	return true;
}

static void
allow_add(char *allow, size_t cap, const char *method)
{
	size_t n = strlen(method), have = strlen(allow);
	const char *p = allow;

	/* Already listed? */
	while ((p = strstr(p, method)) != NULL) {
		if ((p == allow || p[-2] == ',') &&
		    (p[n] == '\0' || p[n] == ','))
			return;
		p += n;
	}
	if (have + n + 3 > cap)
		return;
	if (have > 0)
		strcat(allow, ", ");
	strcat(allow, method);
}

rerr
router_match(const route *table, size_t n, const char *method, const char *path,
    arena *a, route_match *m)
{
	seg ps[MAX_SEGMENTS];
	int np = split(path, ps);
	const route *best = NULL;
	unsigned best_score = 0;
	bool any = false, is_head = strcmp(method, "HEAD") == 0;
	route_match scratch;

	memset(m, 0, sizeof(*m));
	if (np < 0)
		return R_NOT_FOUND;
	/* Pass 1: which routes fit the path, and the best for the method. */
	for (size_t i = 0; i < n; i++) {
		const char *bad;
		size_t bad_len;
		unsigned score;

		if (!fit(&table[i], ps, np, NULL, &scratch, &score, &bad,
		        &bad_len))
			continue;
		any = true;
		allow_add(m->allow, sizeof(m->allow), table[i].method);
		if (strcmp(table[i].method, "GET") == 0)
			allow_add(m->allow, sizeof(m->allow), "HEAD");
		if (strcmp(table[i].method, method) != 0 &&
		    !(is_head && strcmp(table[i].method, "GET") == 0))
			continue;
		if (best == NULL || score > best_score ||
		    (score == best_score &&
		        strcmp(table[i].method, method) == 0 &&
		        strcmp(best->method, method) != 0)) {
			best = &table[i];
			best_score = score;
		}
	}
	if (!any)
		return R_NOT_FOUND;
	if (best == NULL)
		return R_METHOD_NOT_ALLOWED;
	/* Pass 2: fill the parameters of the chosen route. */
	{
		const char *bad;
		size_t bad_len;
		unsigned score;

		fit(best, ps, np, a, m, &score, &bad, &bad_len);
		m->route = best;
		if (bad != NULL) {
			snprintf(m->bad_param, sizeof(m->bad_param), "%.*s",
			    (int)bad_len, bad);
			return R_VALIDATION;
		}
	}
	return R_SUCCESS;
}

const route_param *
router_param(const route_match *m, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < m->n_params; i++)
		if (m->params[i].name_len == n &&
		    memcmp(m->params[i].name, name, n) == 0)
			return &m->params[i];
	return NULL;
}
