/* settings: defaults + stored overrides, validated updates. */
#include "settings.h"

#include <string.h>

/* S_ID: an id or null (stored 0); S_NAMES: a list of [a-z0-9_] names. */
typedef enum { S_BOOL, S_INT, S_STR, S_ID, S_NAMES } stype;

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
	F("single_session_per_device", S_BOOL, single_session_per_device, 0, 1),
	F("app_name", S_STR, app_name, 1, 50),
	F("login_attempts_per_15min", S_INT, login_attempts_per_15min, 1, 1000),
	F("login_failures_per_ip_per_15min", S_INT,
	    login_failures_per_ip_per_15min, 1, 100000),
	F("registrations_per_hour", S_INT, registrations_per_hour, 1, 1000),
	F("requests_per_minute", S_INT, requests_per_minute, 10, 100000),
	F("default_room_name", S_STR, default_room_name, 1, 50),
	F("default_max_members", S_INT, default_max_members, 0, 100000),
	F("rooms_per_user", S_INT, rooms_per_user, 1, 10000),
	F("message_max_chars", S_INT, message_max_chars, 1, 40000),
	F("edit_window_minutes", S_INT, edit_window_minutes, 0, 525600),
	F("messages_per_10s", S_INT, messages_per_10s, 1, 1000),
	F("reactions", S_NAMES, reactions, 1, 32),
	F("visitor_room_id", S_ID, visitor_room_id, 1, 9007199254740991LL),
	F("visitor_messages_per_hour", S_INT, visitor_messages_per_hour, 1,
	    1000),
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static const char *const default_reactions[] = { "heart", "laugh", "fire",
	"sad", "thumbsup", "thumbsdown", "star", "question", NULL };

static void
defaults(settings *s)
{
	s->open_registration = false;
	s->password_min_length = 12;
	s->session_lifetime_hours = 720;
	s->single_session_per_device = false;
	s->app_name = "Roost";
	s->login_attempts_per_15min = 10;
	s->login_failures_per_ip_per_15min = 100;
	s->registrations_per_hour = 5;
	s->requests_per_minute = 600;
	s->default_room_name = "General";
	s->default_max_members = 16;
	s->rooms_per_user = 200;
	s->message_max_chars = 4000;
	s->edit_window_minutes = 1440;
	s->messages_per_10s = 10;
	s->reactions = default_reactions;
	s->n_reactions = 8;
	s->visitor_room_id = 0;
	s->visitor_messages_per_hour = 5;
}

bool
settings_has_reaction(const settings *s, const char *name)
{
	for (size_t i = 0; i < s->n_reactions; i++)
		if (strcmp(s->reactions[i], name) == 0)
			return true;
	return false;
}

static bool
name_ok(const char *n, size_t len)
{
	if (len == 0 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') ||
		        (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return true;
}

/* Reads a list of reaction names: 1..max distinct names. */
static rerr
read_names(arena *a, json_object *obj, const char *key, int64_t max,
    settings *s, json_err *e)
{
	json_object *v;
	const char **out;
	size_t n;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_array)) {
		e->field = key;
		e->message = "must be a list of names";
		return R_VALIDATION;
	}
	n = json_object_array_length(v);
	if (n < 1 || (int64_t)n > max) {
		e->field = key;
		e->message = "must list 1 to 32 names";
		return R_VALIDATION;
	}
	out = arena_calloc(a, n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(v, i);
		const char *str;

		if (!json_object_is_type(item, json_type_string) ||
		    !name_ok((str = json_object_get_string(item)),
		        (size_t)json_object_get_string_len(item))) {
			e->field = key;
			e->message = "names must be 1 to 32 of [a-z0-9_]";
			return R_VALIDATION;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(out[k], str) == 0) {
				e->field = key;
				e->message = "must not list a name twice";
				return R_VALIDATION;
			}
		out[i] = arena_strdup(a, str);
	}
	s->reactions = out;
	s->n_reactions = n;
	return R_SUCCESS;
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
	case S_ID: {
		json_object *v;

		if (json_object_object_get_ex(obj, d->key, &v) && v == NULL) {
			*(int64_t *)(void *)slot = 0;
			return R_SUCCESS;
		}
		return json_get_int(obj, d->key, true, d->min, d->max,
		    (int64_t *)(void *)slot, &present, e);
	}
	case S_NAMES: return read_names(a, obj, d->key, d->max, s, e);
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

void
settings_from_rows(arena *a, const PGresult *res, settings *out)
{
	defaults(out);
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
}

rerr
settings_load(db *d, arena *a, settings *out)
{
	PGresult *res;
	rerr err;

	res = db_query(d, a, &err, SETTINGS_QUERY, 0, NULL);
	if (res == NULL)
		return err;
	settings_from_rows(a, res, out);
	return R_SUCCESS;
}

json_object *
settings_json(const settings *s)
{
	json_object *o = json_object_new_object(), *reactions;

	json_object_object_add(o, "open_registration",
	    json_object_new_boolean(s->open_registration));
	json_object_object_add(
	    o, "password_min_length", json_i64(s->password_min_length));
	json_object_object_add(
	    o, "session_lifetime_hours", json_i64(s->session_lifetime_hours));
	json_object_object_add(o, "single_session_per_device",
	    json_object_new_boolean(s->single_session_per_device));
	json_object_object_add(o, "app_name", json_str(s->app_name));
	json_object_object_add(o, "login_attempts_per_15min",
	    json_i64(s->login_attempts_per_15min));
	json_object_object_add(o, "login_failures_per_ip_per_15min",
	    json_i64(s->login_failures_per_ip_per_15min));
	json_object_object_add(
	    o, "registrations_per_hour", json_i64(s->registrations_per_hour));
	json_object_object_add(
	    o, "requests_per_minute", json_i64(s->requests_per_minute));
	json_object_object_add(
	    o, "default_room_name", json_str(s->default_room_name));
	json_object_object_add(
	    o, "default_max_members", json_i64(s->default_max_members));
	json_object_object_add(
	    o, "rooms_per_user", json_i64(s->rooms_per_user));
	json_object_object_add(
	    o, "message_max_chars", json_i64(s->message_max_chars));
	json_object_object_add(
	    o, "edit_window_minutes", json_i64(s->edit_window_minutes));
	json_object_object_add(
	    o, "messages_per_10s", json_i64(s->messages_per_10s));
	reactions = json_object_new_array();
	for (size_t i = 0; i < s->n_reactions; i++)
		json_object_array_add(reactions, json_str(s->reactions[i]));
	json_object_object_add(o, "reactions", reactions);
	json_object_object_add(o, "visitor_room_id",
	    s->visitor_room_id ? json_i64(s->visitor_room_id) : NULL);
	json_object_object_add(o, "visitor_messages_per_hour",
	    json_i64(s->visitor_messages_per_hour));
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
