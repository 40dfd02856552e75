/* json: strict RFC 8259 validation in front of json-c, and typed readers. */
#include "json.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STR_(x) #x
#define STR(x) STR_(x)

/* Shown when json-c refuses a text our own pass accepted. Our pass is meant
 * to be the stricter of the two, so this marks a bug; the fuzz target looks
 * for this prefix. */
#define JSON_DISAGREE "invalid JSON: parser disagreement"

/* A duplicate key is shown to the client: at most this many code points of
 * it, escaped. */
#define KEY_SHOWN 40

static const char too_deep[] =
    "nesting deeper than " STR(JSON_MAX_DEPTH) " levels";

typedef struct keyrec {
	const char *s; /* decoded key: into the text or the arena */
	size_t len;
	size_t at; /* byte offset of its opening quote */
} keyrec;

/* An integer literal that json-c would clamp: outside both int64 and uint64.
 * ordinal numbers values in document order (pre-order, containers count). */
typedef struct bignum {
	size_t ordinal;
	size_t at;
	size_t len;
} bignum;

typedef struct frame {
	bool object;
	size_t key_base; /* this object's keys are keys[key_base..nkeys) */
} frame;

typedef struct parser {
	arena *a;
	const unsigned char *p;
	size_t len;
	size_t pos;
	const char *msg;
	frame stack[JSON_MAX_DEPTH];
	int depth;
	keyrec *keys; /* keys of every open object, innermost last */
	size_t nkeys, capkeys;
	bignum *bigs;
	size_t nbigs, capbigs;
	size_t nvalues;
} parser;

static void
set_err(json_err *e, const char *field, const char *message)
{
	if (e != NULL) {
		e->field = field;
		e->message = message;
	}
}

/* Decodes one UTF-8 sequence at s[0..len) per Unicode table 3-7: no
 * overlongs, no surrogates, nothing above U+10FFFF, nothing truncated.
 * Returns its length (1-4), or 0 when invalid. */
static size_t
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char b0 = s[0], lo = 0x80, hi = 0xBF;
	size_t n;
	uint32_t c;

	if (b0 < 0x80) {
		*cp = b0;
		return 1;
	}
	if (b0 < 0xC2)
		return 0;
	if (b0 < 0xE0) {
		n = 2;
		c = b0 & 0x1Fu;
	} else if (b0 < 0xF0) {
		n = 3;
		c = b0 & 0x0Fu;
		if (b0 == 0xE0)
			lo = 0xA0;
		else if (b0 == 0xED)
			hi = 0x9F;
	} else if (b0 < 0xF5) {
		n = 4;
		c = b0 & 0x07u;
		if (b0 == 0xF0)
			lo = 0x90;
		else if (b0 == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (len < n)
		return 0;
	/* Only the second byte has a narrowed range; the rest are plain
	 * continuation bytes. */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3Fu);
	}
	*cp = c;
	return n;
}

static size_t
utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

bool
json_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		if ((n = utf8_decode(u + i, len - i, &cp)) == 0)
			return false;
		i += n;
	}
	return true;
}

size_t
json_utf8_chars(const char *s, size_t len)
{
	size_t n = 0;

	/* Every code point has exactly one non-continuation byte. */
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* ---- strict validator ---- */

static bool
fail_at(parser *ps, const char *what, size_t at)
{
	ps->msg = arena_printf(ps->a, "invalid JSON: %s at byte %zu", what, at);
	return false;
}

static bool
fail_unexpected(parser *ps)
{
	unsigned char c = ps->p[ps->pos];

	switch (c) {
	case '/': return fail_at(ps, "comments are not allowed", ps->pos);
	case '\'': return fail_at(ps, "single quotes are not allowed", ps->pos);
	case '+':
	case '.': return fail_at(ps, "invalid number", ps->pos);
	}
	if (c > 0x20 && c < 0x7F)
		ps->msg = arena_printf(ps->a,
		    "invalid JSON: unexpected character '%c' at byte %zu", c,
		    ps->pos);
	else
		ps->msg = arena_printf(ps->a,
		    "invalid JSON: unexpected byte 0x%02X at byte %zu", c,
		    ps->pos);
	return false;
}

static void
skip_ws(parser *ps)
{
	while (ps->pos < ps->len) {
		unsigned char c = ps->p[ps->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		ps->pos++;
	}
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at p[at..at+4), or -1. */
static long
hex4(const parser *ps, size_t at)
{
	long v = 0;

	if (ps->len - at < 4)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		int h = hexval(ps->p[at + i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* The \uDC00-\uDFFF escape at ps->pos, or -1. */
static long
low_surrogate(const parser *ps)
{
	long lo;

	if (ps->len - ps->pos < 2 || ps->p[ps->pos] != '\\' ||
	    ps->p[ps->pos + 1] != 'u')
		return -1;
	lo = hex4(ps, ps->pos + 2);
	return lo >= 0xDC00 && lo <= 0xDFFF ? lo : -1;
}

/* Decodes the escape whose backslash is at ps->pos into *cp and moves past
 * it; a high surrogate takes the low one that must follow with it. */
static bool
scan_escape(parser *ps, size_t start, uint32_t *cp)
{
	size_t at = ps->pos;
	long u, lo;

	if (ps->len - at < 2)
		return fail_at(ps, "unterminated string", start);
	ps->pos += 2;
	switch (ps->p[at + 1]) {
	case '"': *cp = '"'; return true;
	case '\\': *cp = '\\'; return true;
	case '/': *cp = '/'; return true;
	case 'b': *cp = '\b'; return true;
	case 'f': *cp = '\f'; return true;
	case 'n': *cp = '\n'; return true;
	case 'r': *cp = '\r'; return true;
	case 't': *cp = '\t'; return true;
	case 'u': break;
	default: return fail_at(ps, "invalid escape", at);
	}
	if ((u = hex4(ps, at + 2)) < 0)
		return fail_at(ps, "invalid \\u escape", at);
	ps->pos = at + 6;
	if (u >= 0xDC00 && u <= 0xDFFF)
		return fail_at(ps, "unpaired surrogate escape", at);
	if (u >= 0xD800 && u <= 0xDBFF) {
		if ((lo = low_surrogate(ps)) < 0)
			return fail_at(ps, "unpaired surrogate escape", at);
		ps->pos += 6;
		u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
	}
	*cp = (uint32_t)u;
	return true;
}

/* Scans the string whose opening quote is at ps->pos and leaves pos after the
 * closing quote. With out non-NULL, also writes the decoded bytes there (the
 * decoded form is never longer than the quoted one) and their count in
 * *outlen. *escaped (may be NULL) tells whether any escape was seen, so a key
 * without one can be compared in place. */
static bool
scan_string(parser *ps, char *out, size_t *outlen, bool *escaped)
{
	size_t start = ps->pos, o = 0, n;
	bool esc = false;
	uint32_t cp;

	ps->pos++;
	for (;;) {
		unsigned char c;

		if (ps->pos >= ps->len)
			return fail_at(ps, "unterminated string", start);
		c = ps->p[ps->pos];
		if (c == '"') {
			ps->pos++;
			break;
		}
		if (c < 0x20)
			return fail_at(
			    ps, "control character in string", ps->pos);
		if (c == '\\') {
			esc = true;
			if (!scan_escape(ps, start, &cp))
				return false;
			if (out != NULL)
				o += utf8_encode(cp, out + o);
			continue;
		}
		n = utf8_decode(ps->p + ps->pos, ps->len - ps->pos, &cp);
		if (n == 0) {
			ps->msg = arena_printf(ps->a,
			    "invalid UTF-8 in string at byte %zu", ps->pos);
			return false;
		}
		if (out != NULL)
			memcpy(out + o, ps->p + ps->pos, n);
		o += n;
		ps->pos += n;
	}
	if (outlen != NULL)
		*outlen = o;
	if (escaped != NULL)
		*escaped = esc;
	return true;
}

/* Compares decimal digit strings without leading zeros. */
static int
cmp_digits(const unsigned char *d, size_t n, const char *limit)
{
	size_t ln = strlen(limit);

	if (n != ln)
		return n < ln ? -1 : 1;
	return memcmp(d, limit, n);
}

static void
note_bignum(parser *ps, size_t ordinal, size_t at, size_t len)
{
	if (ps->nbigs == ps->capbigs) {
		size_t cap = ps->capbigs ? ps->capbigs * 2 : 4;
		bignum *nb = arena_calloc(ps->a, cap, sizeof(*nb));

		if (ps->nbigs > 0)
			memcpy(nb, ps->bigs, ps->nbigs * sizeof(*nb));
		ps->bigs = nb;
		ps->capbigs = cap;
	}
	ps->bigs[ps->nbigs++] = (bignum){ ordinal, at, len };
}

static bool
is_digit(const parser *ps)
{
	return ps->pos < ps->len && ps->p[ps->pos] >= '0' &&
	    ps->p[ps->pos] <= '9';
}

static bool
scan_number(parser *ps, size_t ordinal)
{
	size_t start = ps->pos, dstart;
	bool neg = false, integer = true;

	if (ps->p[ps->pos] == '-') {
		neg = true;
		ps->pos++;
	}
	dstart = ps->pos;
	if (!is_digit(ps))
		return fail_at(ps, "invalid number", start);
	if (ps->p[ps->pos] == '0') {
		ps->pos++;
		if (is_digit(ps))
			return fail_at(ps, "leading zero in number", start);
	} else
		while (is_digit(ps))
			ps->pos++;
	if (ps->pos < ps->len && ps->p[ps->pos] == '.') {
		integer = false;
		ps->pos++;
		if (!is_digit(ps))
			return fail_at(ps, "invalid number", start);
		while (is_digit(ps))
			ps->pos++;
	}
	if (ps->pos < ps->len && (ps->p[ps->pos] | 0x20) == 'e') {
		integer = false;
		ps->pos++;
		if (ps->pos < ps->len &&
		    (ps->p[ps->pos] == '+' || ps->p[ps->pos] == '-'))
			ps->pos++;
		if (!is_digit(ps))
			return fail_at(ps, "invalid number", start);
		while (is_digit(ps))
			ps->pos++;
	}
	/* json-c clamps these to INT64_MIN or UINT64_MAX without a word;
	 * remember them so json_parse_strict() can keep their text. */
	if (integer &&
	    cmp_digits(ps->p + dstart, ps->pos - dstart,
	        neg ? "9223372036854775808" : "18446744073709551615") > 0)
		note_bignum(ps, ordinal, start, ps->pos - start);
	return true;
}

static bool
scan_literal(parser *ps)
{
	static const char *const words[] = { "true", "false", "null" };
	size_t start = ps->pos, n;

	/* Take the whole word so "nulls", "NaN" and "Infinity" are named as
	 * one bad literal rather than a stray letter. */
	while (ps->pos < ps->len &&
	    ((ps->p[ps->pos] | 0x20) >= 'a' && (ps->p[ps->pos] | 0x20) <= 'z'))
		ps->pos++;
	n = ps->pos - start;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i]) == n &&
		    memcmp(ps->p + start, words[i], n) == 0)
			return true;
	return fail_at(ps, "invalid literal", start);
}

static void
push_key(parser *ps, const char *s, size_t len, size_t at)
{
	if (ps->nkeys == ps->capkeys) {
		size_t cap = ps->capkeys ? ps->capkeys * 2 : 16;
		keyrec *nk = arena_calloc(ps->a, cap, sizeof(*nk));

		if (ps->nkeys > 0)
			memcpy(nk, ps->keys, ps->nkeys * sizeof(*nk));
		ps->keys = nk;
		ps->capkeys = cap;
	}
	ps->keys[ps->nkeys++] = (keyrec){ s, len, at };
}

/* Scans an object key and its ':' and records the decoded key. */
static bool
scan_key(parser *ps)
{
	size_t start = ps->pos, len;
	const char *key;
	bool escaped;
	char *dec;

	if (ps->pos >= ps->len)
		return fail_at(ps, "unexpected end of input", ps->pos);
	if (ps->p[ps->pos] == '\'')
		return fail_unexpected(ps);
	if (ps->p[ps->pos] != '"')
		return fail_at(ps, "expected a string key", ps->pos);
	if (!scan_string(ps, NULL, NULL, &escaped))
		return false;
	if (escaped) {
		size_t after = ps->pos;

		/* Second pass, now known to succeed, to decode into a buffer
		 * sized by the quoted form. */
		dec = arena_alloc(ps->a, after - start);
		ps->pos = start;
		scan_string(ps, dec, &len, NULL);
		/* json-c keeps keys as C strings: "a\u0000b" would become
		 * "a" and could silently overwrite another key. */
		if (memchr(dec, '\0', len) != NULL)
			return fail_at(ps, "NUL character in key", start);
		key = dec;
	} else {
		key = (const char *)ps->p + start + 1;
		len = ps->pos - start - 2;
	}
	push_key(ps, key, len, start);
	skip_ws(ps);
	if (ps->pos >= ps->len)
		return fail_at(ps, "unexpected end of input", ps->pos);
	if (ps->p[ps->pos] != ':')
		return fail_at(ps, "expected ':'", ps->pos);
	ps->pos++;
	return true;
}

static int
keyrec_cmp(const void *va, const void *vb)
{
	const keyrec *a = va, *b = vb;
	int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);

	if (c != 0)
		return c;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	/* Equal keys end up in document order, so the second of a pair is
	 * the one to blame. */
	return a->at < b->at ? -1 : a->at > b->at;
}

/* Writes a duplicate key for an error message: printable ASCII as is, the
 * rest as \u escapes, cut after KEY_SHOWN code points. The key is valid
 * UTF-8 (it passed scan_string). */
static const char *
show_key(arena *a, const char *s, size_t len)
{
	/* Worst case per code point: a surrogate pair, 12 bytes. */
	char *out = arena_alloc(a, KEY_SHOWN * 12 + 4), *o = out;
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, shown = 0, n;
	uint32_t cp;

	while (i < len) {
		if (shown == KEY_SHOWN) {
			memcpy(o, "...", 3);
			o += 3;
			break;
		}
		if ((n = utf8_decode(u + i, len - i, &cp)) == 0) {
			cp = 0xFFFD;
			n = 1;
		}
		i += n;
		shown++;
		if (cp == '"' || cp == '\\') {
			*o++ = '\\';
			*o++ = (char)cp;
		} else if (cp >= 0x20 && cp < 0x7F)
			*o++ = (char)cp;
		else if (cp < 0x10000)
			o += sprintf(o, "\\u%04X", (unsigned)cp);
		else
			o += sprintf(o, "\\u%04X\\u%04X",
			    (unsigned)(0xD800 + ((cp - 0x10000) >> 10)),
			    (unsigned)(0xDC00 + ((cp - 0x10000) & 0x3FF)));
	}
	*o = '\0';
	return out;
}

/*
 * Duplicate keys: each object's decoded keys sit on one stack shared by all
 * open objects; when the object closes its slice is sorted and neighbours
 * compared, then popped. That is O(n log n) for any n and cannot be pushed
 * into quadratic time by crafted keys the way a fixed hash could, so there is
 * no cap on keys per object beyond the body size limit.
 */
static bool
close_object(parser *ps)
{
	frame *f = &ps->stack[ps->depth - 1];
	keyrec *k = ps->keys + f->key_base;
	size_t n = ps->nkeys - f->key_base;
	const keyrec *dup = NULL;

	if (n > 1) {
		qsort(k, n, sizeof(*k), keyrec_cmp);
		for (size_t i = 1; i < n; i++)
			if (k[i].len == k[i - 1].len &&
			    memcmp(k[i].s, k[i - 1].s, k[i].len) == 0 &&
			    (dup == NULL || k[i].at < dup->at))
				dup = &k[i];
	}
	if (dup != NULL) {
		ps->msg =
		    arena_printf(ps->a, "duplicate key \"%s\" at byte %zu",
		        show_key(ps->a, dup->s, dup->len), dup->at);
		return false;
	}
	ps->nkeys = f->key_base;
	return true;
}

/* One pass over the whole text: explicit stack, so depth costs nothing but
 * the frame array, and every rejection happens here rather than in json-c. */
static bool
validate(parser *ps)
{
	skip_ws(ps);
	if (ps->pos == ps->len) {
		ps->msg = "invalid JSON: empty body";
		return false;
	}
	for (;;) {
		unsigned char c;
		frame *f;

		/* A value is expected at pos. */
		skip_ws(ps);
		if (ps->pos >= ps->len)
			return fail_at(ps, "unexpected end of input", ps->pos);
		c = ps->p[ps->pos];
		ps->nvalues++;
		if (c == '[' || c == '{') {
			if (ps->depth == JSON_MAX_DEPTH) {
				ps->msg = too_deep;
				return false;
			}
			f = &ps->stack[ps->depth++];
			f->object = c == '{';
			f->key_base = ps->nkeys;
			ps->pos++;
			skip_ws(ps);
			if (ps->pos < ps->len &&
			    ps->p[ps->pos] == (f->object ? '}' : ']')) {
				ps->pos++;
				ps->depth--;
			} else if (f->object) {
				if (!scan_key(ps))
					return false;
				continue;
			} else
				continue;
		} else if (c == '"') {
			if (!scan_string(ps, NULL, NULL, NULL))
				return false;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if (!scan_number(ps, ps->nvalues - 1))
				return false;
		} else if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
			if (!scan_literal(ps))
				return false;
		} else
			return fail_unexpected(ps);

		/* A value just ended: close containers until one wants
		 * another member. */
		for (;;) {
			size_t comma;

			skip_ws(ps);
			if (ps->depth == 0) {
				if (ps->pos < ps->len)
					return fail_at(ps,
					    "unexpected data after the value",
					    ps->pos);
				return true;
			}
			if (ps->pos >= ps->len)
				return fail_at(
				    ps, "unexpected end of input", ps->pos);
			f = &ps->stack[ps->depth - 1];
			c = ps->p[ps->pos];
			if (c == (f->object ? '}' : ']')) {
				if (f->object && !close_object(ps))
					return false;
				ps->pos++;
				ps->depth--;
				continue;
			}
			if (c == '/')
				return fail_unexpected(ps);
			if (c != ',' && f->object)
				return fail_at(
				    ps, "expected ',' or '}'", ps->pos);
			if (c != ',')
				return fail_at(
				    ps, "expected ',' or ']'", ps->pos);
			comma = ps->pos++;
			skip_ws(ps);
			if (ps->pos < ps->len &&
			    ps->p[ps->pos] == (f->object ? '}' : ']'))
				return fail_at(ps, "trailing comma", comma);
			if (f->object && !scan_key(ps))
				return false;
			break;
		}
	}
}

/* ---- json-c ---- */

static void
put_cleanup(void *p)
{
	json_object_put(p);
}

typedef struct patcher {
	parser *ps;
	size_t ordinal;
	size_t next; /* next bignum to place */
	bool broken;
} patcher;

/*
 * Big integers. json-c 0.16 keeps no text for integers and clamps silently:
 * below -2^63 becomes INT64_MIN, above 2^64-1 becomes UINT64_MAX, so an
 * exact INT64_MIN could not be told from a clamped one. The validator notes
 * such literals by their rank in document order; after json-c has parsed,
 * the tree is walked in the same order (arrays by index, objects in
 * insertion order, which is text order since duplicates were refused) and
 * each is swapped for a double that serialises as the literal text.
 * json_get_int() then calls any double whose text is a bare integer "out of
 * range", and 2^63..2^64-1, which json-c holds exactly as uint64, likewise.
 *
 * Returns a replacement for o when it is the next recorded literal, else
 * NULL after patching its children. Depth is bounded by the validator.
 */
static json_object *
patch_value(patcher *pt, json_object *o)
{
	const bignum *b;
	size_t ord = pt->ordinal++;

	if (pt->next == pt->ps->nbigs || pt->broken)
		return NULL;
	b = &pt->ps->bigs[pt->next];
	if (b->ordinal == ord) {
		char *text = arena_strndup(
		    pt->ps->a, (const char *)pt->ps->p + b->at, b->len);
		json_object *d;

		pt->next++;
		if (!json_object_is_type(o, json_type_int)) {
			pt->broken = true;
			return NULL;
		}
		if ((d = json_object_new_double_s(strtod(text, NULL), text)) ==
		    NULL)
			abort();
		return d;
	}
	if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);

		for (size_t i = 0; i < n; i++) {
			json_object *r =
			    patch_value(pt, json_object_array_get_idx(o, i));

			if (r != NULL)
				json_object_array_put_idx(o, i, r);
		}
	} else if (json_object_is_type(o, json_type_object)) {
		struct json_object_iterator it = json_object_iter_begin(o);
		struct json_object_iterator end = json_object_iter_end(o);

		for (; !json_object_iter_equal(&it, &end);
		     json_object_iter_next(&it)) {
			json_object *r =
			    patch_value(pt, json_object_iter_peek_value(&it));

			/* Replacing an existing key keeps its entry (and
			 * the iterator) in place. */
			if (r != NULL)
				json_object_object_add(
				    o, json_object_iter_peek_name(&it), r);
		}
	}
	return NULL;
}

rerr
json_parse_strict(
    arena *a, const char *text, size_t len, json_object **out, json_err *e)
{
	parser ps;
	struct json_tokener *tok;
	json_object *o;
	enum json_tokener_error jerr;
	size_t end;

	*out = NULL;
	if (len == 0 || text == NULL) {
		set_err(e, NULL, "invalid JSON: empty body");
		return R_BAD_REQUEST;
	}
	if (len >= INT_MAX) {
		set_err(e, NULL, "invalid JSON: body too large");
		return R_BAD_REQUEST;
	}
	memset(&ps, 0, sizeof(ps));
	ps.a = a;
	ps.p = (const unsigned char *)text;
	ps.len = len;
	if (!validate(&ps)) {
		set_err(e, NULL, ps.msg);
		return R_BAD_REQUEST;
	}

	if ((tok = json_tokener_new_ex(JSON_MAX_DEPTH + 1)) == NULL)
		abort();
	json_tokener_set_flags(
	    tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue && end == len) {
		/* A bare top-level number or literal only ends at a
		 * delimiter: give json-c the NUL it would have seen at the
		 * end of a C string. */
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	json_tokener_free(tok);
	if (jerr != json_tokener_success || end != len) {
		json_object_put(o);
		set_err(e, NULL,
		    arena_printf(a, JSON_DISAGREE " (%s)",
		        json_tokener_error_desc(jerr)));
		return R_BAD_REQUEST;
	}

	if (ps.nbigs > 0) {
		patcher pt = { &ps, 0, 0, false };
		json_object *r = patch_value(&pt, o);

		if (r != NULL) {
			json_object_put(o);
			o = r;
		}
		if (pt.broken || pt.next != ps.nbigs) {
			json_object_put(o);
			set_err(e, NULL, JSON_DISAGREE " (numbers)");
			return R_BAD_REQUEST;
		}
	}
	arena_on_cleanup(a, put_cleanup, o);
	*out = o;
	return R_SUCCESS;
}

/* ---- readers ---- */

/* Looks key up; JSON null counts as absent. */
static json_object *
lookup(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (obj == NULL || !json_object_is_type(obj, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

/* Blank for JSTR_NOT_BLANK: Unicode White_Space, plus the invisible
 * characters people use to fake an empty name (zero-width spaces and
 * joiners, BOM, Hangul fillers, braille blank) and NUL. */
static bool
is_blank(uint32_t cp)
{
	switch (cp) {
	case 0x00:
	case 0x20:
	case 0x85:
	case 0xA0:
	case 0x115F:
	case 0x1160:
	case 0x1680:
	case 0x180E:
	case 0x2028:
	case 0x2029:
	case 0x202F:
	case 0x205F:
	case 0x2060:
	case 0x2800:
	case 0x3000:
	case 0x3164:
	case 0xFEFF:
	case 0xFFA0: return true;
	}
	return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x2000 && cp <= 0x200D);
}

rerr
json_get_string(json_object *obj, const char *key, bool required,
    size_t min_chars, size_t max_chars, unsigned flags, const char **out,
    size_t *out_len, json_err *e)
{
	json_object *v = lookup(obj, key);
	const unsigned char *s;
	size_t len, i = 0, chars = 0, n;
	bool blank = true;

	*out = NULL;
	if (out_len != NULL)
		*out_len = 0;
	if (v == NULL) {
		if (!required)
			return R_SUCCESS;
		set_err(e, key, "is required");
		return R_VALIDATION;
	}
	if (!json_object_is_type(v, json_type_string)) {
		set_err(e, key, "must be a string");
		return R_VALIDATION;
	}
	s = (const unsigned char *)json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	while (i < len) {
		uint32_t cp;

		/* Parsed text is valid already; built strings may not be. */
		if ((n = utf8_decode(s + i, len - i, &cp)) == 0) {
			set_err(e, key, "must be valid UTF-8");
			return R_VALIDATION;
		}
		i += n;
		chars++;
		/* C0, DEL and C1 (U+0080-U+009F, e.g. NEL) are all Cc. */
		if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
			bool ok = (cp == '\n' || cp == '\t')
			    ? (flags & JSTR_MULTILINE) != 0
			    : cp == 0 && (flags & JSTR_ALLOW_NUL) != 0;

			if (!ok) {
				set_err(e, key,
				    "must not contain control characters");
				return R_VALIDATION;
			}
		}
		if (blank && !is_blank(cp))
			blank = false;
	}
	if ((flags & JSTR_NOT_BLANK) && blank) {
		set_err(e, key, "must not be blank");
		return R_VALIDATION;
	}
	if (chars < min_chars) {
		set_err(e, key, "is too short");
		return R_VALIDATION;
	}
	if (chars > max_chars) {
		set_err(e, key, "is too long");
		return R_VALIDATION;
	}
	*out = (const char *)s;
	if (out_len != NULL)
		*out_len = len;
	return R_SUCCESS;
}

/* A double whose text is a bare integer can only be one json_parse_strict()
 * kept because it overflows 64 bits. */
static bool
double_is_bigint(json_object *v)
{
	const char *t =
	    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);

	if (t == NULL)
		abort();
	if (*t == '-')
		t++;
	if (*t == '\0')
		return false;
	for (; *t != '\0'; t++)
		if (*t < '0' || *t > '9')
			return false;
	return true;
}

rerr
json_get_int(json_object *obj, const char *key, bool required, int64_t min,
    int64_t max, int64_t *out, bool *present, json_err *e)
{
	json_object *v = lookup(obj, key);
	int64_t n;

	if (present != NULL)
		*present = v != NULL;
	if (v == NULL) {
		if (!required)
			return R_SUCCESS;
		set_err(e, key, "is required");
		return R_VALIDATION;
	}
	if (json_object_is_type(v, json_type_double) && double_is_bigint(v)) {
		set_err(e, key, "is out of range");
		return R_VALIDATION;
	}
	if (!json_object_is_type(v, json_type_int)) {
		set_err(e, key, "must be an integer");
		return R_VALIDATION;
	}
	n = json_object_get_int64(v);
	/* json-c holds 2^63..2^64-1 as uint64 and reads them back as
	 * INT64_MAX. */
	if (n == INT64_MAX &&
	    json_object_get_uint64(v) != (uint64_t)INT64_MAX) {
		set_err(e, key, "is out of range");
		return R_VALIDATION;
	}
	if (n < min || n > max) {
		set_err(e, key, "is out of range");
		return R_VALIDATION;
	}
	*out = n;
	return R_SUCCESS;
}

rerr
json_get_bool(json_object *obj, const char *key, bool required, bool *out,
    bool *present, json_err *e)
{
	json_object *v = lookup(obj, key);

	if (present != NULL)
		*present = v != NULL;
	if (v == NULL) {
		if (!required)
			return R_SUCCESS;
		set_err(e, key, "is required");
		return R_VALIDATION;
	}
	if (!json_object_is_type(v, json_type_boolean)) {
		set_err(e, key, "must be true or false");
		return R_VALIDATION;
	}
	*out = json_object_get_boolean(v) != 0;
	return R_SUCCESS;
}

/* When the key is absent and not required, *out is -1. */
rerr
json_get_enum(json_object *obj, const char *key, bool required,
    const char *const *choices, int *out, json_err *e)
{
	const char *s;
	size_t len;
	rerr r;

	*out = -1;
	r = json_get_string(obj, key, required, 0, SIZE_MAX, 0, &s, &len, e);
	if (r != R_SUCCESS || s == NULL)
		return r;
	for (int i = 0; choices != NULL && choices[i] != NULL; i++)
		if (strlen(choices[i]) == len &&
		    memcmp(choices[i], s, len) == 0) {
			*out = i;
			return R_SUCCESS;
		}
	set_err(e, key, "is not one of the allowed values");
	return R_VALIDATION;
}

rerr
json_require_object(json_object *obj, json_err *e)
{
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		set_err(e, NULL, "body must be a JSON object");
		return R_VALIDATION;
	}
	return R_SUCCESS;
}

rerr
json_reject_unknown(json_object *obj, const char *const *allowed, json_err *e)
{
	struct json_object_iterator it, end;
	rerr r;

	if ((r = json_require_object(obj, e)) != R_SUCCESS)
		return r;
	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *name = json_object_iter_peek_name(&it);
		bool known = false;

		for (size_t i = 0; allowed != NULL && allowed[i] != NULL; i++)
			if (strcmp(allowed[i], name) == 0) {
				known = true;
				break;
			}
		if (!known) {
			/* The name belongs to obj, which lives as long as
			 * the error is reported. */
			set_err(e, name, "unknown field");
			return R_VALIDATION;
		}
	}
	return R_SUCCESS;
}

/* ---- writers ---- */

const char *
json_to_arena(arena *a, json_object *obj, size_t *len)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	if (s == NULL)
		abort();
	if (len != NULL)
		*len = n;
	return arena_strndup(a, s, n);
}

json_object *
json_str(const char *s)
{
	json_object *o;

	if (s == NULL || (o = json_object_new_string(s)) == NULL)
		abort();
	return o;
}

json_object *
json_strn(const char *s, size_t n)
{
	json_object *o;

	if (s == NULL || n > INT_MAX ||
	    (o = json_object_new_string_len(s, (int)n)) == NULL)
		abort();
	return o;
}

json_object *
json_i64(int64_t v)
{
	json_object *o = json_object_new_int64(v);

	if (o == NULL)
		abort();
	return o;
}

/* RFC 3339 needs a four-digit year, so times outside 0000..9999 are clamped
 * to the ends of that range rather than printed in a form clients reject. */
#define RFC3339_MIN_SEC (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define RFC3339_MAX_SEC 253402300799LL   /* 9999-12-31T23:59:59Z */

void
json_time_rfc3339(char out[32], int64_t unix_usec)
{
	int64_t sec = unix_usec / 1000000, usec = unix_usec % 1000000;
	time_t t;
	struct tm tm;

	/* Floor, so 1 µs before the epoch is 23:59:59.999 of 1969. */
	if (usec < 0) {
		usec += 1000000;
		sec--;
	}
	if (sec < RFC3339_MIN_SEC) {
		sec = RFC3339_MIN_SEC;
		usec = 0;
	} else if (sec > RFC3339_MAX_SEC) {
		sec = RFC3339_MAX_SEC;
		usec = 999999;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	/* The fields are in range already; the modulos let the compiler see
	 * that the output fits. */
	snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
	    (unsigned)(tm.tm_year + 1900) % 10000u,
	    (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
	    (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
	    (unsigned)tm.tm_sec % 100u, (unsigned)(usec / 1000) % 1000u);
}
