/* settings: defaults + stored overrides, validated updates. */
#include "settings.h"

#include <string.h>

typedef enum { S_BOOL, S_INT, S_STR } stype;

typedef struct sdef {
	const char *key;
	stype type;
	size_t offset;
	int64_t min, max; /* ints: value range; strings: characters */
} sdef;

#define F(k, t, f, lo, hi)                                                     \
	{                                                                      \
		k, t, offsetof(settings, f), lo, hi                            \
	}

static const sdef defs[] = {
	F("open_registration", S_BOOL, open_registration, 0, 1),
	F("password_min_length", S_INT, password_min_length, 8, 1024),
	F("session_lifetime_hours", S_INT, session_lifetime_hours, 1, 8760),
	F("app_name", S_STR, app_name, 1, 50),
	F("login_attempts_per_15min", S_INT, login_attempts_per_15min, 1, 1000),
	F("registrations_per_hour", S_INT, registrations_per_hour, 1, 1000),
	F("requests_per_minute", S_INT, requests_per_minute, 10, 100000),
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static void
defaults(settings *s)
{
	s->open_registration = false;
	s->password_min_length = 12;
	s->session_lifetime_hours = 720;
	s->app_name = "Roost";
	s->login_attempts_per_15min = 10;
	s->registrations_per_hour = 5;
	s->requests_per_minute = 600;
}

/* Reads one value of def's type from obj[key] into s. */
static rerr
read_value(arena *a, const sdef *d, json_object *obj, settings *s, json_err *e)
{
	char *slot = (char *)s + d->offset;
	bool present;
	rerr r;

	switch (d->type) {
	case S_BOOL:
		return json_get_bool(
		    obj, d->key, true, (bool *)(void *)slot, &present, e);
	case S_INT:
		return json_get_int(obj, d->key, true, d->min, d->max,
		    (int64_t *)(void *)slot, &present, e);
	case S_STR: {
		const char *v;

		r = json_get_string(obj, d->key, true, (size_t)d->min,
		    (size_t)d->max, JSTR_NOT_BLANK, &v, NULL, e);
		if (r == R_SUCCESS)
			*(const char **)(void *)slot = arena_strdup(a, v);
		return r;
	}
	}
	return R_INTERNAL;
}

rerr
settings_load(db *d, arena *a, settings *out)
{
	PGresult *res;
	rerr err;

	defaults(out);
	res = db_query(
	    d, a, &err, "SELECT key, value::text FROM settings", 0, NULL);
	if (res == NULL)
		return err;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *key = PQgetvalue(res, i, 0);
		const char *val = PQgetvalue(res, i, 1);

		for (size_t k = 0; k < NDEFS; k++) {
			json_object *wrap, *v;
			json_err e;

			if (strcmp(defs[k].key, key) != 0)
				continue;
			/* Stored values were validated on the way in; one
			 * that no longer parses keeps the default. */
			if (json_parse_strict(a, val, strlen(val), &v, &e) !=
			    R_SUCCESS)
				break;
			wrap = json_object_new_object();
			json_object_object_add(wrap, key, json_object_get(v));
			(void)read_value(a, &defs[k], wrap, out, &e);
			json_object_put(wrap);
			break;
		}
	}
	return R_SUCCESS;
}

json_object *
settings_json(const settings *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "open_registration",
	    json_object_new_boolean(s->open_registration));
	json_object_object_add(
	    o, "password_min_length", json_i64(s->password_min_length));
	json_object_object_add(
	    o, "session_lifetime_hours", json_i64(s->session_lifetime_hours));
	json_object_object_add(o, "app_name", json_str(s->app_name));
	json_object_object_add(o, "login_attempts_per_15min",
	    json_i64(s->login_attempts_per_15min));
	json_object_object_add(
	    o, "registrations_per_hour", json_i64(s->registrations_per_hour));
	json_object_object_add(
	    o, "requests_per_minute", json_i64(s->requests_per_minute));
	return o;
}

rerr
settings_update(db *d, arena *a, json_object *patch, json_err *e)
{
	const char *allowed[NDEFS + 1];
	settings scratch;
	rerr r;

	for (size_t k = 0; k < NDEFS; k++)
		allowed[k] = defs[k].key;
	allowed[NDEFS] = NULL;
	if ((r = json_reject_unknown(patch, allowed, e)) != R_SUCCESS)
		return r;
	/* Validate everything first: a bad field stores nothing. */
	for (size_t k = 0; k < NDEFS; k++)
		if (json_object_object_get_ex(patch, defs[k].key, NULL) &&
		    (r = read_value(a, &defs[k], patch, &scratch, e)) !=
		        R_SUCCESS)
			return r;
	for (size_t k = 0; k < NDEFS; k++) {
		json_object *v;
		const char *params[2];

		if (!json_object_object_get_ex(patch, defs[k].key, &v))
			continue;
		params[0] = defs[k].key;
		params[1] = json_to_arena(a, v, NULL);
		if (db_query(d, a, &r,
		        "INSERT INTO settings (key, value) VALUES ($1, "
		        "$2::jsonb) "
		        "ON CONFLICT (key) DO UPDATE SET value = "
		        "EXCLUDED.value, "
		        "updated_at = now()",
		        2, params) == NULL)
			return r;
	}
	return R_SUCCESS;
}
