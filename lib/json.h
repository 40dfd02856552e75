/* json: strict JSON in, typed and validated fields out, over json-c.
 *
 * json-c's tokener is lenient by default and lets the last of two duplicate
 * keys win (../shared/PITFALLS.md). Request bodies therefore go through
 * json_parse_strict(), which rejects, with a reason:
 *   - anything that is not exactly one RFC 8259 value (comments, single
 *     quotes, trailing commas, NaN/Infinity, leading zeros, trailing bytes
 *     other than JSON whitespace);
 *   - invalid UTF-8, including overlong forms, surrogates in raw bytes, and
 *     lone or mismatched \uD800-\uDFFF escapes;
 *   - nesting deeper than JSON_MAX_DEPTH (checked before json-c sees the
 *     text, so 10,000 '[' cost nothing);
 *   - duplicate keys in one object, compared after unescaping
 *     ("r\u006fle" duplicates "role").
 *
 * Readers take an object, a key and bounds, and on failure fill a json_err
 * naming the field, so the API can answer VALIDATION_ERROR with "field".
 * Every reader checks the JSON type first: no silent coercion.
 */
#ifndef ROOST_JSON_H
#define ROOST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "arena.h"
#include "error.h"

#define JSON_MAX_DEPTH 32

typedef struct json_err {
	const char *field;   /* key at fault, or NULL for the whole body */
	const char *message; /* static or arena string */
} json_err;

/* Parses text[0..len) strictly (see above). On success *out is a new
 * json_object whose json_object_put is registered on arena a (the caller
 * must not put it), and R_SUCCESS is returned. On failure: R_BAD_REQUEST with
 * e->message saying why, and *out NULL. len may be 0 (an error). */
rerr json_parse_strict(
    arena *a, const char *text, size_t len, json_object **out, json_err *e);

/* String flags. */
#define JSTR_MULTILINE 0x1u /* allow \n and \t (otherwise no control chars) */
#define JSTR_NOT_BLANK 0x2u /* must contain a non-whitespace character */
#define JSTR_ALLOW_NUL 0x4u /* allow embedded NUL (almost never) */

/* Reads obj[key] as a string of min_chars..max_chars Unicode code points
 * (not bytes). Control characters (U+0000-U+001F, U+007F-U+009F) are
 * refused except as flags allow. Missing or JSON null: R_SUCCESS with *out NULL
 * when !required, R_VALIDATION "is required" when required. Wrong type:
 * R_VALIDATION "must be a string". *out borrows from obj; *out_len (may be
 * NULL) gets its byte length. */
rerr json_get_string(json_object *obj, const char *key, bool required,
    size_t min_chars, size_t max_chars, unsigned flags, const char **out,
    size_t *out_len, json_err *e);

/* Reads obj[key] as an integer in [min, max]. A JSON number with a fraction
 * or exponent, or out of int64 range, or a string, is R_VALIDATION. *present
 * (may be NULL) tells whether the key was there; *out is untouched when it
 * was not. */
rerr json_get_int(json_object *obj, const char *key, bool required, int64_t min,
    int64_t max, int64_t *out, bool *present, json_err *e);

/* Reads obj[key] as true/false. Same presence rules as json_get_int. */
rerr json_get_bool(json_object *obj, const char *key, bool required, bool *out,
    bool *present, json_err *e);

/* Reads obj[key] as one of the strings in choices (NULL-terminated);
 * returns its index in *out, or -1 when the key is absent or null and not
 * required. */
rerr json_get_enum(json_object *obj, const char *key, bool required,
    const char *const *choices, int *out, json_err *e);

/* R_VALIDATION unless obj is a JSON object ("body must be a JSON object"). */
rerr json_require_object(json_object *obj, json_err *e);

/* R_VALIDATION naming the first key of obj not in allowed (NULL-terminated):
 * "unknown field". */
rerr json_reject_unknown(
    json_object *obj, const char *const *allowed, json_err *e);

/* Counts Unicode code points in valid UTF-8 s[0..len). */
size_t json_utf8_chars(const char *s, size_t len);

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates, <=
 * U+10FFFF). */
bool json_utf8_valid(const char *s, size_t len);

/* Serialises obj compactly (no slash escaping) into arena memory. */
const char *json_to_arena(arena *a, json_object *obj, size_t *len);

/* Builders that never return NULL (abort on allocation failure). */
json_object *json_str(const char *s);
json_object *json_strn(const char *s, size_t n);
json_object *json_i64(int64_t v);

/* Formats a Unix time (seconds, microseconds) as RFC 3339 UTC with
 * milliseconds: "2026-11-22T23:59:59.123Z". out must hold 32 bytes. */
void json_time_rfc3339(char out[32], int64_t unix_usec);

#endif
