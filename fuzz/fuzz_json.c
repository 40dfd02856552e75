/* fuzz_json: json_parse_strict and the readers on arbitrary bytes.
 *
 * Besides crashes and leaks, it aborts when an invariant breaks:
 *   - json-c refuses a text the strict pass accepted (the pass must be the
 *     stricter of the two);
 *   - an accepted text is not valid UTF-8;
 *   - the serialised tree does not parse again, or changes when it does;
 *   - a reader succeeds on the wrong JSON type, or fails without naming
 *     its field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define DISAGREE "invalid JSON: parser disagreement"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static arena *A;

static void
check(bool cond)
{
	if (!cond)
		abort();
}

/* A second UTF-8 validator written the other way round (decode by value,
 * then judge the value) to cross-check json_utf8_valid(). Returns the code
 * point count, or -1 when invalid. */
static long
ref_utf8_count(const uint8_t *s, size_t len)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	long count = 0;

	for (size_t i = 0; i < len; count++) {
		size_t n = s[i] < 0x80            ? 1
		    : s[i] >= 0xC0 && s[i] < 0xE0 ? 2
		    : s[i] >= 0xE0 && s[i] < 0xF0 ? 3
		    : s[i] >= 0xF0 && s[i] < 0xF8 ? 4
		                                  : 0;
		uint32_t cp;

		if (n == 0 || len - i < n)
			return -1;
		cp = n == 1 ? s[i] : s[i] & (0x7Fu >> n);
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return -1;
			cp = cp << 6 | (s[i + k] & 0x3Fu);
		}
		if (cp < min[n] || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return -1;
		i += n;
	}
	return count;
}

static void
read_key(json_object *obj, const char *key)
{
	json_object *v = NULL;
	bool there = json_object_object_get_ex(obj, key, &v) && v != NULL;
	json_type t = json_object_get_type(v);
	json_err e = { NULL, NULL };
	const char *s = NULL;
	size_t len = 0;
	int64_t n = 0;
	bool b = false, present = !there;
	int idx = 0;
	static const char *const choices[] = { "", "a", "admin", "user", NULL };
	rerr r;

	r = json_get_string(obj, key, false, 0, SIZE_MAX,
	    JSTR_MULTILINE | JSTR_ALLOW_NUL, &s, &len, &e);
	if (r == R_SUCCESS) {
		check(there ? t == json_type_string && s != NULL : s == NULL);
		if (s != NULL) {
			check(json_utf8_valid(s, len));
			check(json_utf8_chars(s, len) <= len);
		}
	} else
		check(r == R_VALIDATION && e.field == key && e.message != NULL);

	r = json_get_string(obj, key, true, 1, 8, JSTR_NOT_BLANK, &s, &len, &e);
	if (r == R_SUCCESS)
		check(t == json_type_string && json_utf8_chars(s, len) >= 1 &&
		    json_utf8_chars(s, len) <= 8 &&
		    memchr(s, '\0', len) == NULL);
	else
		check(r == R_VALIDATION && e.field == key);

	r = json_get_int(
	    obj, key, false, INT64_MIN, INT64_MAX, &n, &present, &e);
	check(present == there);
	check(r == R_SUCCESS ? !there || t == json_type_int
	                     : r == R_VALIDATION && e.field == key);
	r = json_get_int(obj, key, true, -100, 100, &n, NULL, &e);
	check(r == R_SUCCESS ? t == json_type_int && n >= -100 && n <= 100
	                     : r == R_VALIDATION && e.field == key);

	r = json_get_bool(obj, key, false, &b, &present, &e);
	check(present == there);
	check(r == R_SUCCESS ? !there || t == json_type_boolean
	                     : r == R_VALIDATION && e.field == key);

	r = json_get_enum(obj, key, false, choices, &idx, &e);
	check(r == R_SUCCESS ? idx >= -1 && idx <= 3
	                     : r == R_VALIDATION && e.field == key);
}

static void
read_object(json_object *obj)
{
	static const char *const allowed[] = { "a", "id", "name", NULL };
	static const char *const fixed[] = { "a", "id", "name", "role", "",
		NULL };
	struct json_object_iterator it, end;
	json_err e = { NULL, NULL };
	int count = 0;

	for (int i = 0; fixed[i] != NULL; i++)
		read_key(obj, fixed[i]);
	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end) && count < 16;
	     json_object_iter_next(&it), count++)
		read_key(obj, json_object_iter_peek_name(&it));
	check(json_require_object(obj, &e) == R_SUCCESS);
	if (json_reject_unknown(obj, allowed, &e) != R_SUCCESS)
		check(e.field != NULL && e.message != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_object *o = NULL, *again = NULL;
	json_err e = { NULL, NULL };
	const char *out, *out2;
	size_t len, len2;
	long ref;
	rerr r;

	if (A == NULL)
		A = arena_new();
	ref = ref_utf8_count(data, size);
	check(json_utf8_valid(text, size) == (ref >= 0));
	if (ref >= 0)
		check(json_utf8_chars(text, size) == (size_t)ref);

	r = json_parse_strict(A, text, size, &o, &e);
	if (r != R_SUCCESS) {
		check(r == R_BAD_REQUEST && o == NULL && e.message != NULL);
		check(strncmp(e.message, DISAGREE, strlen(DISAGREE)) != 0);
		arena_reset(A);
		return 0;
	}
	/* Outside strings only ASCII is allowed, inside only valid UTF-8. */
	check(ref >= 0);

	if (json_object_is_type(o, json_type_object))
		read_object(o);
	else if (json_object_is_type(o, json_type_array) &&
	    json_object_array_length(o) > 0 &&
	    json_object_is_type(
	        json_object_array_get_idx(o, 0), json_type_object))
		read_object(json_object_array_get_idx(o, 0));
	else {
		json_err e2 = { NULL, NULL };

		check(json_require_object(o, &e2) == R_VALIDATION);
	}

	out = json_to_arena(A, o, &len);
	check(strlen(out) == len);
	r = json_parse_strict(A, out, len, &again, &e);
	check(r == R_SUCCESS);
	out2 = json_to_arena(A, again, &len2);
	check(len == len2 && memcmp(out, out2, len) == 0);

	arena_reset(A);
	return 0;
}
