/* Unit tests for lib/json: the strict parser, the readers, the writers. */
#include <stdlib.h>

#include "json.h"
#include "tap.h"

static arena *A;

/* Test input made printable for the TAP line (raw newlines or bytes would
 * break the protocol): \xNN escapes, cut at 60 bytes. Arena memory. */
static const char *
show(const char *s, size_t len)
{
	char *out, *o;

	if (s == NULL)
		return "(null)";
	o = out = arena_alloc(A, 60 * 4 + 4);
	for (size_t i = 0; i < len && i < 60; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7F)
			*o++ = (char)c;
		else
			o += sprintf(o, "\\x%02X", c);
	}
	if (len > 60)
		o += sprintf(o, "...");
	*o = '\0';
	return out;
}

/* Parses text[0..len); keeps the message for the caller. */
static rerr
parse_n(const char *text, size_t len, json_object **out, const char **msg)
{
	json_err e = { NULL, NULL };
	json_object *o = NULL;
	rerr r = json_parse_strict(A, text, len, &o, &e);

	if (out != NULL)
		*out = o;
	if (msg != NULL)
		*msg = e.message;
	return r;
}

static json_object *
must_parse(const char *text)
{
	json_object *o = NULL;
	const char *msg = NULL;
	rerr r = parse_n(text, strlen(text), &o, &msg);

	if (!ok(r == R_SUCCESS, "parses: %s", show(text, strlen(text))))
		printf("#   message: %s\n", msg ? msg : "(null)");
	return o;
}

static void
accepts_n(const char *name, const char *text, size_t len)
{
	const char *msg = NULL;
	rerr r = parse_n(text, len, NULL, &msg);

	if (!ok(r == R_SUCCESS, "accepts %s", show(name, strlen(name))))
		printf("#   message: %s\n", msg ? msg : "(null)");
}

static void
accepts(const char *text)
{
	accepts_n(text, text, strlen(text));
}

/* Rejects with R_BAD_REQUEST, *out NULL, and a message containing want. */
static void
rejects_n(const char *name, const char *text, size_t len, const char *want)
{
	json_object *o = (json_object *)&o;
	const char *msg = NULL;
	rerr r = parse_n(text, len, &o, &msg);
	bool good = r == R_BAD_REQUEST && o == NULL && msg != NULL &&
	    strstr(msg, want) != NULL;

	if (!ok(good, "rejects %s", show(name, strlen(name))))
		printf("#   rc %d, message \"%s\", want \"%s\"\n", (int)r,
		    msg ? msg : "(null)", want);
}

static void
rejects(const char *text, const char *want)
{
	rejects_n(text, text, strlen(text), want);
}

static void
message_is(const char *text, const char *want)
{
	const char *msg = NULL;
	rerr r = parse_n(text, strlen(text), NULL, &msg);

	ok(r == R_BAD_REQUEST, "rejects %s", show(text, strlen(text)));
	is_str(msg, want, "message for %s", show(text, strlen(text)));
}

static void
test_valid_documents(void)
{
	json_object *o;
	const char *s;
	size_t len;

	o = must_parse("{}");
	ok(json_object_is_type(o, json_type_object), "{} is an object");
	o = must_parse("[]");
	ok(json_object_is_type(o, json_type_array), "[] is an array");
	o = must_parse("\"hi\"");
	ok(json_object_is_type(o, json_type_string), "string at top level");
	is_str(json_object_get_string(o), "hi", "string value");
	o = must_parse("42");
	ok(json_object_is_type(o, json_type_int), "bare number ends at EOF");
	is_int(json_object_get_int64(o), 42, "bare number value");
	o = must_parse("-0");
	ok(json_object_is_type(o, json_type_int), "-0 is an integer");
	o = must_parse("-1.5e3");
	ok(json_object_is_type(o, json_type_double), "double at top level");
	ok(json_object_get_double(o) == -1500.0, "double value");
	o = must_parse("true");
	ok(json_object_is_type(o, json_type_boolean) &&
	        json_object_get_boolean(o),
	    "true");
	o = must_parse("false");
	ok(json_object_is_type(o, json_type_boolean) &&
	        !json_object_get_boolean(o),
	    "false");
	o = (json_object *)&o;
	ok(parse_n("null", 4, &o, NULL) == R_SUCCESS && o == NULL,
	    "null parses to R_SUCCESS with a NULL object");
	o = must_parse(" \t\r\n{ \"a\" : [ 1 , 2.5 , \"x\" , true , false , "
	               "null , { } , [ ] ] } \n\t\r ");
	ok(json_object_is_type(o, json_type_object), "JSON whitespace");
	is_int(json_object_array_length(json_object_object_get(o, "a")), 8,
	    "array members");

	accepts("0");
	accepts("-0.0");
	accepts("0e0");
	accepts("1E+2");
	accepts("1e-2");
	accepts("123.456e-789");
	accepts("1e400");
	accepts("[1,\"two\",{\"three\":[3]}]");
	accepts("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
	accepts("\"\\u00e9\\u00E9\\ud83d\\ude00\\uD83D\\uDE00\"");
	accepts(
	    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
	accepts("\"\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\"");
	accepts("\"\x7f\"");
	accepts("{\"\":1}");
	accepts("{\"a\":{\"a\":{\"a\":1}}}");
	accepts("[{\"a\":1},{\"a\":2}]");
	accepts("{\"a\":1,\"A\":2,\"a \":3}");

	o = must_parse("{\"s\":\"caf\xc3\xa9\",\"n\":7}");
	s = json_to_arena(A, o, &len);
	is_str(s, "{\"s\":\"caf\xc3\xa9\",\"n\":7}", "round trip");
	is_int(len, strlen(s), "round trip length");
}

static void
test_rejections(void)
{
	char big[128];

	rejects_n("empty body", "", 0, "invalid JSON: empty body");
	rejects_n("NULL text", NULL, 0, "empty body");
	rejects(" \n\t\r ", "invalid JSON: empty body");

	rejects("// c\n1", "comments are not allowed at byte 0");
	rejects("/* c */ 1", "comments are not allowed");
	rejects("[1 /* c */]", "comments are not allowed at byte 3");
	rejects("{\"a\":1 # c\n}", "expected ',' or '}' at byte 7");

	rejects("'a'", "single quotes are not allowed at byte 0");
	rejects("{'a':1}", "single quotes are not allowed at byte 1");
	rejects("[\"a\",'b']", "single quotes are not allowed");

	rejects("[1,]", "invalid JSON: trailing comma at byte 2");
	rejects("{\"a\":1,}", "invalid JSON: trailing comma at byte 6");
	rejects("[1 , ]", "trailing comma at byte 3");
	rejects("[,]", "unexpected character ','");
	rejects("[1,,2]", "unexpected character ','");
	rejects("{,}", "expected a string key");
	rejects("[1,}", "unexpected character '}'");

	rejects("NaN", "invalid literal at byte 0");
	rejects("[Infinity]", "invalid literal at byte 1");
	rejects("-Infinity", "invalid number at byte 0");
	rejects("[nan]", "invalid literal");
	rejects("True", "invalid literal");
	rejects("NULL", "invalid literal");
	rejects("nul", "invalid literal");
	rejects("nulls", "invalid literal");
	rejects("undefined", "invalid literal");

	rejects("01", "leading zero in number at byte 0");
	rejects("[-01]", "leading zero in number at byte 1");
	rejects("00", "leading zero");
	rejects("+1", "invalid number at byte 0");
	rejects(".5", "invalid number at byte 0");
	rejects("1.", "invalid number at byte 0");
	rejects("[1.e5]", "invalid number at byte 1");
	rejects("1e", "invalid number");
	rejects("1e+", "invalid number");
	rejects("-", "invalid number");
	rejects("- 1", "invalid number");
	rejects("0x10", "unexpected data after the value at byte 1");
	rejects("1.5.3", "unexpected data after the value");
	rejects("1,2", "unexpected data after the value at byte 1");

	rejects("\"a\nb\"", "control character in string at byte 2");
	rejects("\"\x01\"", "control character in string at byte 1");
	rejects("\"\x1f\"", "control character in string");
	rejects("\"a\tb\"", "control character in string");
	rejects_n("raw NUL in string", "\"a\0b\"", 5,
	    "control character in string at byte 2");

	rejects("\"\\x41\"", "invalid escape at byte 1");
	rejects("\"\\'\"", "invalid escape");
	rejects("\"\\U0041\"", "invalid escape");
	rejects("\"\\a\"", "invalid escape");
	rejects("\"\\u12\"", "invalid \\u escape at byte 1");
	rejects("\"\\u12G4\"", "invalid \\u escape");
	rejects("\"\\u", "invalid \\u escape");
	rejects("\"\\", "unterminated string at byte 0");

	rejects("\"\\ud800\"", "unpaired surrogate escape at byte 1");
	rejects("\"\\udc00\"", "unpaired surrogate escape");
	rejects("\"\\uDFFF\\uD800\"", "unpaired surrogate escape");
	rejects("\"\\ud800\\u0041\"", "unpaired surrogate escape");
	rejects("\"\\ud800\\ud800\"", "unpaired surrogate escape");
	rejects("\"\\ud800x\"", "unpaired surrogate escape");
	rejects("\"\\udbff\"", "unpaired surrogate escape");
	rejects("{\"\\ud800\":1}", "unpaired surrogate escape");

	rejects("\"\xc0\x80\"", "invalid UTF-8 in string at byte 1");
	rejects("\"\xc1\xbf\"", "invalid UTF-8 in string");
	rejects("\"\xe0\x80\x80\"", "invalid UTF-8 in string");
	rejects("\"\xe0\x9f\xbf\"", "invalid UTF-8 in string");
	rejects("\"\xed\xa0\x80\"", "invalid UTF-8 in string");
	rejects("\"\xed\xbf\xbf\"", "invalid UTF-8 in string");
	rejects("\"\xf0\x80\x80\x80\"", "invalid UTF-8 in string");
	rejects("\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string");
	rejects("\"\xf5\x80\x80\x80\"", "invalid UTF-8 in string");
	rejects("\"\xff\"", "invalid UTF-8 in string");
	rejects("\"\x80\"", "invalid UTF-8 in string");
	rejects("\"ab\xc3\"", "invalid UTF-8 in string at byte 3");
	rejects("\"\xe2\x82\"", "invalid UTF-8 in string");
	rejects("\"\xf0\x9f\x98\"", "invalid UTF-8 in string");
	rejects_n("truncated at end", "\"\xe2\x82", 3, "invalid UTF-8");
	rejects("{\"k\xed\xa0\x80\":1}", "invalid UTF-8 in string");
	rejects("\xc3\xa9", "unexpected byte 0xC3 at byte 0");
	rejects("\xef\xbb\xbf{}", "unexpected byte 0xEF at byte 0");

	rejects("1 2", "unexpected data after the value at byte 2");
	rejects("{} x", "unexpected data after the value at byte 3");
	rejects("[]]", "unexpected data after the value at byte 2");
	rejects("{}{}", "unexpected data after the value");
	rejects_n("NUL after the value", "{}\0", 3,
	    "unexpected data after the value at byte 2");
	rejects("1\f", "unexpected data after the value");
	rejects("\v1", "unexpected byte 0x0B at byte 0");
	rejects("[1,\xc2\xa0"
	        "2]",
	    "unexpected byte 0xC2");

	rejects("\"abc", "unterminated string at byte 0");
	rejects("[1", "unexpected end of input at byte 2");
	rejects("[1,", "unexpected end of input");
	rejects("{\"a\"", "unexpected end of input");
	rejects("{\"a\":", "unexpected end of input");
	rejects("{", "unexpected end of input");
	rejects("{\"a\" 1}", "expected ':' at byte 5");
	rejects("{\"a\":1 \"b\":2}", "expected ',' or '}' at byte 7");
	rejects("[1 2]", "expected ',' or ']' at byte 3");
	rejects("{a:1}", "expected a string key at byte 1");
	rejects("{1:1}", "expected a string key");
	rejects("[}", "unexpected character '}'");
	rejects("{]", "expected a string key");
	rejects("[1}", "expected ',' or ']'");
	rejects("{\"a\":1]", "expected ',' or '}'");
	rejects(":", "unexpected character ':'");

	rejects("{\"a\\u0000b\":1}", "NUL character in key at byte 1");
	rejects("{\"a\\u0000b\":1,\"a\\u0000c\":2}", "NUL character in key");

	/* A message never carries raw input bytes. */
	snprintf(big, sizeof(big), "[\x01]");
	rejects(big, "unexpected byte 0x01 at byte 1");
}

static void
test_depth(void)
{
	char buf[256];
	size_t n = 10000, i, len;
	char *deep;
	json_object *o;

	memset(buf, 0, sizeof(buf));
	memset(buf, '[', JSON_MAX_DEPTH);
	memset(buf + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
	o = must_parse(buf);
	ok(json_object_is_type(o, json_type_array), "32 levels of [ accepted");

	memset(buf, 0, sizeof(buf));
	memset(buf, '[', JSON_MAX_DEPTH + 1);
	memset(buf + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
	message_is(buf, "nesting deeper than 32 levels");

	buf[0] = '\0';
	for (i = 0; i < JSON_MAX_DEPTH; i++)
		strcat(buf, "{\"a\":");
	strcat(buf, "1");
	for (i = 0; i < JSON_MAX_DEPTH; i++)
		strcat(buf, "}");
	accepts_n("32 levels of {\"a\":", buf, strlen(buf));

	deep = malloc(n * 2 + 1);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	rejects_n("10,000 [ balanced", deep, 2 * n, "nesting deeper than 32");
	rejects_n("10,000 [ unbalanced", deep, n, "nesting deeper than 32");
	free(deep);

	deep = malloc(n * 5 + 2);
	for (i = 0; i < n; i++)
		memcpy(deep + 5 * i, "{\"a\":", 5);
	deep[5 * n] = '1';
	rejects_n("10,000 {\"a\": ", deep, 5 * n + 1, "nesting deeper than 32");
	free(deep);

	deep = malloc(n * 5);
	len = 0;
	for (i = 0; i < n; i++) {
		const char *seg = i % 2 ? "{\"\":" : "[1,";

		memcpy(deep + len, seg, strlen(seg));
		len += strlen(seg);
	}
	rejects_n("10,000 mixed", deep, len, "nesting deeper than 32");
	free(deep);
}

static void
test_duplicates(void)
{
	char *doc;
	size_t cap = 200000, len, i;
	const char *msg;

	message_is("{\"role\":\"user\",\"role\":\"admin\"}",
	    "duplicate key \"role\" at byte 15");
	message_is("{\"role\":1,\"r\\u006fle\":2}",
	    "duplicate key \"role\" at byte 10");
	rejects("{\"\\u0072ole\":1,\"role\":2}", "duplicate key \"role\"");
	rejects("{\"caf\xc3\xa9\":1,\"caf\\u00e9\":2}",
	    "duplicate key \"caf\\u00E9\"");
	rejects("{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}",
	    "duplicate key \"\\uD83D\\uDE00\"");
	rejects("{\"a\\/b\":1,\"a/b\":2}", "duplicate key \"a/b\"");
	rejects("{\"q\\\"\":1,\"q\\u0022\":2}", "duplicate key \"q\\\"\"");
	rejects("{\"\\n\":1,\"\\u000a\":2}", "duplicate key \"\\u000A\"");
	rejects("{\"\":1,\"\":2}", "duplicate key \"\"");
	rejects("{\"a\":{\"b\":1,\"b\":2}}", "duplicate key \"b\"");
	rejects("[{\"x\":1},{\"y\":1,\"y\":1}]", "duplicate key \"y\"");
	rejects("{\"a\":1,\"b\":{\"c\":1},\"a\":2}", "duplicate key \"a\"");
	message_is("{\"b\":1,\"a\":1,\"b\":2,\"a\":2}",
	    "duplicate key \"b\" at byte 13");
	message_is(
	    "{\"k\":1,\"k\":2,\"k\":3}", "duplicate key \"k\" at byte 7");
	accepts("{\"a\":{\"a\":1},\"b\":{\"a\":1}}");
	accepts("{\"a\":1,\"b\":{\"a\":2,\"b\":3},\"c\":{\"a\":4}}");
	accepts("[{\"a\":1},{\"a\":1}]");
	accepts("{\"role\":1,\"Role\":2,\"rol\":3,\"rolee\":4}");

	/* Long and unprintable keys are shown escaped and cut short. */
	msg = NULL;
	ok(parse_n("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1,"
	           "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":2}",
	       111, NULL, &msg) == R_BAD_REQUEST,
	    "long duplicate key rejected");
	is_str(msg,
	    "duplicate key \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."
	    "\" at byte 56",
	    "long key cut after 40 code points");
	rejects("{\"\\u001b[31m\":1,\"\\u001b[31m\":2}",
	    "duplicate key \"\\u001B[31m\"");
	rejects("{\"\\u007f\\u202e\":1,\"\x7f\xe2\x80\xae\":2}",
	    "duplicate key \"\\u007F\\u202E\"");

	/* Many keys: sorted at close, so still quick; dup found at the end. */
	doc = malloc(cap);
	len = 0;
	doc[len++] = '{';
	for (i = 0; i < 5000; i++)
		len += (size_t)snprintf(
		    doc + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "", i, i);
	memcpy(doc + len, "}", 2);
	accepts_n("5000 distinct keys", doc, len + 1);
	len += (size_t)snprintf(doc + len, cap - len, ",\"k\\u0031234\":0}");
	rejects_n("5000 keys and a late duplicate", doc, len,
	    "duplicate key \"k1234\"");
	free(doc);
}

static void
test_nul_values(void)
{
	json_object *o = must_parse("{\"s\":\"a\\u0000b\",\"t\":\"\\u0000\"}");
	json_err e = { NULL, NULL };
	const char *s = NULL;
	size_t len = 0;

	ok(json_get_string(o, "s", true, 0, 10, 0, &s, &len, &e) ==
	        R_VALIDATION,
	    "embedded NUL refused by default");
	is_str(e.field, "s", "field named for NUL");
	is_str(e.message, "must not contain control characters", "NUL message");
	ok(s == NULL, "no string on failure");
	ok(json_get_string(o, "s", true, 0, 10, JSTR_MULTILINE, &s, &len, &e) ==
	        R_VALIDATION,
	    "JSTR_MULTILINE does not allow NUL");
	ok(json_get_string(o, "s", true, 0, 10, JSTR_ALLOW_NUL, &s, &len, &e) ==
	        R_SUCCESS,
	    "JSTR_ALLOW_NUL allows NUL");
	is_int(len, 3, "byte length counts the NUL");
	ok(s != NULL && memcmp(s, "a\0b", 3) == 0, "bytes after the NUL kept");
	ok(json_get_string(o, "t", true, 1, 10, JSTR_ALLOW_NUL | JSTR_NOT_BLANK,
	       &s, &len, &e) == R_VALIDATION,
	    "lone NUL is blank");
	is_str(e.message, "must not be blank", "lone NUL message");
	is_str(json_to_arena(A, o, NULL),
	    "{\"s\":\"a\\u0000b\",\"t\":\"\\u0000\"}", "NUL escaped on output");
}

static void
test_get_string(void)
{
	json_object *o = must_parse(
	    "{\"name\":\"h\xc3\xa9llo\",\"emoji\":"
	    "\"\xf0\x9f\x98\x80\",\"n\":5,\"b\":true,\"o\":{},\"a\":[],"
	    "\"z\":null,\"ml\":\"a\\nb\\tc\",\"cr\":\"a\\rb\",\"del\":"
	    "\"a\\u007f\","
	    "\"bell\":\"\\u0007\",\"sp\":\" \\t \",\"nbsp\":\"\\u00a0\\u3000"
	    "\\ufeff\\u200b\\u2003\",\"pad\":\"  x  \",\"empty\":\"\","
	    "\"c1\":\"\\u0085\"}");
	json_err e;
	const char *s;
	size_t len;

#define GS(key, req, lo, hi, fl)                                               \
	(e = (json_err){ NULL, NULL }, s = (const char *)&s, len = 99,         \
	    json_get_string(o, key, req, lo, hi, fl, &s, &len, &e))

	ok(GS("name", true, 1, 5, 0) == R_SUCCESS, "5 code points fit max 5");
	is_str(s, "h\xc3\xa9llo", "string value");
	is_int(len, 6, "byte length");
	ok(GS("name", true, 1, 4, 0) == R_VALIDATION, "5 code points > max 4");
	is_str(e.field, "name", "field for too long");
	is_str(e.message, "is too long", "too long message");
	ok(s == NULL, "*out NULL on failure");
	ok(GS("name", true, 6, 10, 0) == R_VALIDATION, "5 code points < min 6");
	is_str(e.message, "is too short", "too short message");
	ok(GS("emoji", true, 1, 1, 0) == R_SUCCESS, "emoji counts as 1");
	is_int(len, 4, "emoji is 4 bytes");
	ok(GS("empty", true, 0, 0, 0) == R_SUCCESS, "empty string with max 0");
	is_str(s, "", "empty string value");
	ok(GS("empty", true, 1, 10, 0) == R_VALIDATION, "empty string, min 1");
	is_str(e.message, "is too short", "empty string message");

	ok(GS("missing", true, 0, 10, 0) == R_VALIDATION, "required missing");
	is_str(e.field, "missing", "field for required");
	is_str(e.message, "is required", "required message");
	ok(GS("missing", false, 1, 10, 0) == R_SUCCESS && s == NULL && len == 0,
	    "optional missing: R_SUCCESS, NULL");
	ok(GS("z", false, 1, 10, 0) == R_SUCCESS && s == NULL,
	    "null is absent");
	ok(GS("z", true, 1, 10, 0) == R_VALIDATION, "null when required");
	is_str(e.message, "is required", "null required message");

	ok(GS("n", true, 0, 10, 0) == R_VALIDATION, "number is not a string");
	is_str(e.field, "n", "field for wrong type");
	is_str(e.message, "must be a string", "wrong type message");
	ok(GS("b", true, 0, 10, 0) == R_VALIDATION, "bool is not a string");
	ok(GS("o", true, 0, 10, 0) == R_VALIDATION, "object is not a string");
	is_str(e.message, "must be a string", "object message");
	ok(GS("a", false, 0, 10, 0) == R_VALIDATION, "array is not a string");

	ok(GS("ml", true, 0, 10, 0) == R_VALIDATION, "\\n refused by default");
	is_str(e.message, "must not contain control characters",
	    "control message");
	ok(GS("ml", true, 0, 10, JSTR_MULTILINE) == R_SUCCESS,
	    "JSTR_MULTILINE allows \\n and \\t");
	is_str(s, "a\nb\tc", "multiline value");
	ok(GS("cr", true, 0, 10, JSTR_MULTILINE) == R_VALIDATION,
	    "\\r refused even multiline");
	ok(GS("del", true, 0, 10, JSTR_MULTILINE) == R_VALIDATION,
	    "U+007F refused");
	ok(GS("bell", true, 0, 10, JSTR_MULTILINE | JSTR_ALLOW_NUL) ==
	        R_VALIDATION,
	    "U+0007 refused");
	ok(GS("c1", true, 0, 10, 0) == R_VALIDATION, "U+0085 (C1 NEL) refused");

	ok(GS("sp", true, 0, 10, JSTR_MULTILINE | JSTR_NOT_BLANK) ==
	        R_VALIDATION,
	    "spaces and tab are blank");
	is_str(e.message, "must not be blank", "blank message");
	ok(GS("nbsp", true, 0, 10, JSTR_NOT_BLANK) == R_VALIDATION,
	    "Unicode spaces are blank");
	ok(GS("nbsp", true, 0, 10, 0) == R_SUCCESS,
	    "Unicode spaces fine unflagged");
	is_int(json_utf8_chars(s, len), 5, "five Unicode spaces");
	ok(GS("c1", true, 0, 10, JSTR_NOT_BLANK) == R_VALIDATION,
	    "U+0085 is blank");
	ok(GS("empty", true, 0, 10, JSTR_NOT_BLANK) == R_VALIDATION,
	    "empty is blank");
	ok(GS("pad", true, 0, 10, JSTR_NOT_BLANK) == R_SUCCESS,
	    "padded text is not blank");
	ok(GS("emoji", true, 0, 10, JSTR_NOT_BLANK) == R_SUCCESS,
	    "emoji is not blank");

	e = (json_err){ NULL, NULL };
	ok(json_get_string(o, "name", true, 0, 10, 0, &s, NULL, &e) ==
	        R_SUCCESS,
	    "out_len may be NULL");
	ok(json_get_string(NULL, "name", false, 0, 10, 0, &s, NULL, &e) ==
	            R_SUCCESS &&
	        s == NULL,
	    "NULL object: key absent");
#undef GS

	/* Built objects may hold anything; the reader still checks. */
	o = json_object_new_object();
	json_object_object_add(o, "bad", json_strn("a\xff", 2));
	json_object_object_add(o, "sur", json_strn("\xed\xa0\x80", 3));
	e = (json_err){ NULL, NULL };
	ok(json_get_string(o, "bad", true, 0, 10, 0, &s, &len, &e) ==
	        R_VALIDATION,
	    "invalid UTF-8 refused");
	is_str(e.message, "must be valid UTF-8", "invalid UTF-8 message");
	is_str(e.field, "bad", "invalid UTF-8 field");
	ok(json_get_string(o, "sur", true, 0, 10, 0, &s, &len, &e) ==
	        R_VALIDATION,
	    "surrogate bytes refused");
	json_object_put(o);
}

static void
test_get_int(void)
{
	json_object *o = must_parse(
	    "{\"n\":42,\"neg\":-7,\"max\":"
	    "9223372036854775807,\"min\":-9223372036854775808,\"p63\":"
	    "9223372036854775808,\"m63\":-9223372036854775809,\"u64\":"
	    "18446744073709551615,\"p64\":18446744073709551616,\"huge\":"
	    "123456789012345678901234567890,\"mhuge\":-99999999999999999999999,"
	    "\"e2\":1e2,\"f\":1.0,\"half\":0.5,\"big53\":9007199254740993,"
	    "\"s\":\"5\",\"b\":true,\"z\":null,\"arr\":[1]}");
	json_err e;
	int64_t v;
	bool present;

#define GI(key, req, lo, hi)                                                   \
	(e = (json_err){ NULL, NULL }, v = -12345, present = false,            \
	    json_get_int(o, key, req, lo, hi, &v, &present, &e))

	ok(GI("n", true, 0, 100) == R_SUCCESS && present, "int read");
	is_int(v, 42, "int value");
	ok(GI("neg", true, -10, 0) == R_SUCCESS, "negative int");
	is_int(v, -7, "negative value");
	ok(GI("n", true, 42, 42) == R_SUCCESS, "inclusive bounds");
	ok(GI("n", true, 0, 41) == R_VALIDATION && present, "above max");
	is_str(e.field, "n", "field for range");
	is_str(e.message, "is out of range", "range message");
	is_int(v, -12345, "*out untouched on failure");
	ok(GI("n", true, 43, 100) == R_VALIDATION, "below min");
	ok(GI("max", true, INT64_MIN, INT64_MAX) == R_SUCCESS,
	    "INT64_MAX read");
	ok(v == INT64_MAX, "INT64_MAX value");
	ok(GI("min", true, INT64_MIN, INT64_MAX) == R_SUCCESS,
	    "INT64_MIN read");
	ok(v == INT64_MIN, "INT64_MIN value");
	ok(GI("big53", true, INT64_MIN, INT64_MAX) == R_SUCCESS, "2^53+1 read");
	ok(v == INT64_C(9007199254740993), "2^53+1 exact, not rounded");

	ok(GI("p63", true, INT64_MIN, INT64_MAX) == R_VALIDATION,
	    "2^63 refused, not clamped");
	is_str(e.message, "is out of range", "2^63 message");
	is_str(e.field, "p63", "2^63 field");
	ok(GI("m63", true, INT64_MIN, INT64_MAX) == R_VALIDATION,
	    "-2^63-1 refused, not clamped");
	is_str(e.message, "is out of range", "-2^63-1 message");
	ok(GI("u64", true, INT64_MIN, INT64_MAX) == R_VALIDATION,
	    "2^64-1 refused");
	ok(GI("p64", true, INT64_MIN, INT64_MAX) == R_VALIDATION,
	    "2^64 refused");
	is_str(e.message, "is out of range", "2^64 message");
	ok(GI("huge", true, INT64_MIN, INT64_MAX) == R_VALIDATION,
	    "30 digits refused");
	is_str(e.message, "is out of range", "30 digits message");
	ok(GI("mhuge", true, INT64_MIN, INT64_MAX) == R_VALIDATION,
	    "-23 digits refused");

	ok(GI("e2", true, 0, 1000) == R_VALIDATION, "1e2 refused");
	is_str(e.message, "must be an integer", "1e2 message");
	ok(GI("f", true, 0, 1000) == R_VALIDATION, "1.0 refused");
	is_str(e.message, "must be an integer", "1.0 message");
	is_str(e.field, "f", "1.0 field");
	ok(GI("half", true, 0, 1000) == R_VALIDATION, "0.5 refused");
	ok(GI("s", true, 0, 1000) == R_VALIDATION, "string \"5\" refused");
	is_str(e.message, "must be an integer", "string message");
	ok(GI("b", true, 0, 1000) == R_VALIDATION, "bool refused");
	ok(GI("arr", true, 0, 1000) == R_VALIDATION, "array refused");

	ok(GI("missing", false, 0, 1) == R_SUCCESS && !present && v == -12345,
	    "optional missing: untouched, not present");
	ok(GI("z", false, 0, 1) == R_SUCCESS && !present, "null is absent");
	ok(GI("missing", true, 0, 1) == R_VALIDATION && !present,
	    "required missing");
	is_str(e.message, "is required", "required message");
	is_str(e.field, "missing", "required field");
	e = (json_err){ NULL, NULL };
	ok(json_get_int(o, "n", true, 0, 100, &v, NULL, &e) == R_SUCCESS,
	    "present may be NULL");
#undef GI

	/* The big literals survive a round trip instead of being clamped. */
	is_str(json_to_arena(A, json_object_object_get(o, "p64"), NULL),
	    "18446744073709551616", "2^64 keeps its text");
	is_str(json_to_arena(A, json_object_object_get(o, "m63"), NULL),
	    "-9223372036854775809", "-2^63-1 keeps its text");
	is_str(json_to_arena(A, json_object_object_get(o, "p63"), NULL),
	    "9223372036854775808", "2^63 exact as uint64");

	o = must_parse(
	    "[[1,{\"x\":[18446744073709551616]},-9223372036854775809],"
	    "99999999999999999999]");
	is_str(json_to_arena(A, o, NULL),
	    "[[1,{\"x\":[18446744073709551616]},"
	    "-9223372036854775809],99999999999999999999]",
	    "nested big literals kept in place");
	o = must_parse("-18446744073709551616");
	is_str(json_to_arena(A, o, NULL), "-18446744073709551616",
	    "top-level big literal kept");
	ok(json_object_is_type(o, json_type_double), "big literal as double");
}

static void
test_get_bool_enum_object(void)
{
	json_object *o = must_parse(
	    "{\"t\":true,\"f\":false,\"one\":1,"
	    "\"s\":\"true\",\"z\":null,\"role\":\"admin\",\"bad\":\"root\","
	    "\"nul\":\"admin\\u0000\"}");
	static const char *const roles[] = { "user", "moderator", "admin",
		NULL };
	static const char *const allowed[] = { "t", "f", "one", "s", "z",
		"role", "bad", "nul", NULL };
	static const char *const fewer[] = { "t", "f", NULL };
	json_err e = { NULL, NULL };
	bool b = false, present = false;
	int idx = 99;

	ok(json_get_bool(o, "t", true, &b, &present, &e) == R_SUCCESS && b &&
	        present,
	    "true read");
	ok(json_get_bool(o, "f", true, &b, &present, &e) == R_SUCCESS && !b,
	    "false read");
	b = true;
	ok(json_get_bool(o, "one", true, &b, &present, &e) == R_VALIDATION &&
	        b && present,
	    "1 is not a bool");
	is_str(e.field, "one", "bool field");
	is_str(e.message, "must be true or false", "bool message");
	ok(json_get_bool(o, "s", true, &b, NULL, &e) == R_VALIDATION,
	    "\"true\" is not a bool");
	ok(json_get_bool(o, "missing", false, &b, &present, &e) == R_SUCCESS &&
	        !present && b,
	    "optional bool missing, untouched");
	ok(json_get_bool(o, "z", false, &b, &present, &e) == R_SUCCESS &&
	        !present,
	    "null bool is absent");
	ok(json_get_bool(o, "missing", true, &b, &present, &e) == R_VALIDATION,
	    "required bool missing");
	is_str(e.message, "is required", "bool required message");
	is_str(e.field, "missing", "bool required field");

	e = (json_err){ NULL, NULL };
	ok(json_get_enum(o, "role", true, roles, &idx, &e) == R_SUCCESS,
	    "enum read");
	is_int(idx, 2, "enum index");
	ok(json_get_enum(o, "bad", true, roles, &idx, &e) == R_VALIDATION,
	    "enum value not allowed");
	is_int(idx, -1, "enum index -1 on failure");
	is_str(e.field, "bad", "enum field");
	is_str(e.message, "is not one of the allowed values", "enum message");
	ok(json_get_enum(o, "nul", true, roles, &idx, &e) == R_VALIDATION,
	    "enum with NUL suffix refused");
	ok(json_get_enum(o, "one", true, roles, &idx, &e) == R_VALIDATION,
	    "enum wrong type");
	is_str(e.message, "must be a string", "enum wrong type message");
	ok(json_get_enum(o, "missing", false, roles, &idx, &e) == R_SUCCESS &&
	        idx == -1,
	    "optional enum missing is -1");
	ok(json_get_enum(o, "missing", true, roles, &idx, &e) == R_VALIDATION,
	    "required enum missing");
	is_str(e.message, "is required", "enum required message");

	e = (json_err){ "x", NULL };
	ok(json_require_object(o, &e) == R_SUCCESS, "object is an object");
	ok(json_require_object(json_object_object_get(o, "t"), &e) ==
	        R_VALIDATION,
	    "bool is not an object");
	is_str(e.message, "body must be a JSON object", "object message");
	ok(e.field == NULL, "object error names no field");
	ok(json_require_object(NULL, &e) == R_VALIDATION, "null body");
	ok(json_require_object(must_parse("[{}]"), &e) == R_VALIDATION,
	    "array body");

	e = (json_err){ NULL, NULL };
	ok(json_reject_unknown(o, allowed, &e) == R_SUCCESS,
	    "all fields known");
	ok(json_reject_unknown(o, fewer, &e) == R_VALIDATION,
	    "unknown field refused");
	is_str(e.field, "one", "first unknown field named");
	is_str(e.message, "unknown field", "unknown message");
	ok(json_reject_unknown(must_parse("{}"), NULL, &e) == R_SUCCESS,
	    "empty object, nothing allowed");
	ok(json_reject_unknown(must_parse("{\"a\":1}"), NULL, &e) ==
	        R_VALIDATION,
	    "nothing allowed");
	is_str(e.field, "a", "nothing allowed field");
	ok(json_reject_unknown(must_parse("[]"), fewer, &e) == R_VALIDATION,
	    "unknown check on array");
	is_str(e.message, "body must be a JSON object", "array message");
}

static void
test_utf8(void)
{
	static const struct {
		const char *s;
		size_t len;
		bool valid;
		const char *name;
	} cases[] = {
		{ "", 0, true, "empty" },
		{ "abc", 3, true, "ASCII" },
		{ "\0", 1, true, "NUL" },
		{ "\xc3\xa9", 2, true, "U+00E9" },
		{ "\xc2\x80", 2, true, "U+0080" },
		{ "\xdf\xbf", 2, true, "U+07FF" },
		{ "\xe0\xa0\x80", 3, true, "U+0800" },
		{ "\xed\x9f\xbf", 3, true, "U+D7FF" },
		{ "\xee\x80\x80", 3, true, "U+E000" },
		{ "\xef\xbf\xbf", 3, true, "U+FFFF" },
		{ "\xf0\x90\x80\x80", 4, true, "U+10000" },
		{ "\xf4\x8f\xbf\xbf", 4, true, "U+10FFFF" },
		{ "\xc0\x80", 2, false, "C0 80 overlong NUL" },
		{ "\xc1\xbf", 2, false, "C1 BF overlong" },
		{ "\xe0\x80\x80", 3, false, "E0 80 80 overlong" },
		{ "\xe0\x9f\xbf", 3, false, "E0 9F BF overlong" },
		{ "\xf0\x8f\xbf\xbf", 4, false, "F0 8F BF BF overlong" },
		{ "\xed\xa0\x80", 3, false, "ED A0 80 surrogate" },
		{ "\xed\xbf\xbf", 3, false, "ED BF BF surrogate" },
		{ "\xf4\x90\x80\x80", 4, false, "F4 90 80 80 > U+10FFFF" },
		{ "\xf5\x80\x80\x80", 4, false, "F5" },
		{ "\xf8\x88\x80\x80\x80", 5, false, "F8 five-byte form" },
		{ "\xfe", 1, false, "FE" },
		{ "\xff", 1, false, "FF" },
		{ "\x80", 1, false, "lone continuation" },
		{ "\xc3", 1, false, "truncated 2-byte" },
		{ "\xe2\x82", 2, false, "truncated 3-byte" },
		{ "\xf0\x9f\x98", 3, false, "truncated 4-byte" },
		{ "\xc3"
		  "a",
		    2, false, "bad continuation" },
		{ "\xe2\x28\xa1", 3, false, "bad second byte" },
		{ "\xf0\x9f\x98\x28", 4, false, "bad fourth byte" },
		{ "a\xc3\xa9\xc3", 4, false, "valid then truncated" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(json_utf8_valid(cases[i].s, cases[i].len) == cases[i].valid,
		    "utf8_valid %s: %s", cases[i].name,
		    cases[i].valid ? "valid" : "invalid");
	is_int(json_utf8_chars("", 0), 0, "chars: empty");
	is_int(json_utf8_chars("abc", 3), 3, "chars: ASCII");
	is_int(json_utf8_chars("\xc3\xa9", 2), 1, "chars: e-acute is 1");
	is_int(json_utf8_chars("\xf0\x9f\x98\x80", 4), 1, "chars: emoji is 1");
	is_int(json_utf8_chars("h\xc3\xa9llo \xe2\x82\xac\xf0\x9f\x98\x80", 13),
	    8, "chars: mixed");
	is_int(json_utf8_chars("a\0b", 3), 3, "chars: NUL counts");
}

static void
test_writers(void)
{
	json_object *o = json_object_new_object();
	json_object *n;
	const char *s;
	size_t len = 0;

	json_object_object_add(o, "url", json_str("http://x/y"));
	json_object_object_add(o, "nul", json_strn("a\0b", 3));
	json_object_object_add(o, "min", json_i64(INT64_MIN));
	json_object_object_add(o, "ctl", json_str("\x01\"\\"));
	json_object_object_add(o, "u", json_str("\xc3\xa9"));
	s = json_to_arena(A, o, &len);
	is_str(s,
	    "{\"url\":\"http://x/y\",\"nul\":\"a\\u0000b\","
	    "\"min\":-9223372036854775808,\"ctl\":\"\\u0001\\\"\\\\\","
	    "\"u\":\"\xc3\xa9\"}",
	    "compact, slashes unescaped");
	is_int(len, strlen(s), "length reported");
	ok(json_to_arena(A, o, NULL) != s, "a fresh arena copy each time");
	is_int(json_object_get_string_len(json_object_object_get(o, "nul")), 3,
	    "json_strn keeps the NUL");
	json_object_put(o);

	is_str(json_to_arena(A, NULL, NULL), "null", "NULL serialises as null");
	n = json_i64(-5);
	is_str(json_to_arena(A, n, NULL), "-5", "json_i64");
	json_object_put(n);
	n = json_strn("abcdef", 3);
	is_str(json_to_arena(A, n, NULL), "\"abc\"", "json_strn takes n bytes");
	json_object_put(n);

	/* Output of the writer is accepted by the strict parser. */
	o = must_parse(
	    "{\"a\":[1,-2.5e3,\"x\\u0001\",true,null,{}],\"b\":\"/\"}");
	s = json_to_arena(A, o, &len);
	accepts_n("re-parse of serialised output", s, len);
}

static void
test_time(void)
{
	char out[32];

	json_time_rfc3339(out, 0);
	is_str(out, "1970-01-01T00:00:00.000Z", "epoch");
	json_time_rfc3339(out, INT64_C(1795391999123456));
	is_str(out, "2026-11-22T23:59:59.123Z", "milliseconds truncated");
	json_time_rfc3339(out, INT64_C(951825600000999));
	is_str(out, "2000-02-29T12:00:00.000Z", "leap day, sub-ms dropped");
	json_time_rfc3339(out, -1);
	is_str(out, "1969-12-31T23:59:59.999Z", "1 us before the epoch");
	json_time_rfc3339(out, -1000000);
	is_str(out, "1969-12-31T23:59:59.000Z", "1 s before the epoch");
	json_time_rfc3339(out, INT64_MAX);
	is_str(out, "9999-12-31T23:59:59.999Z", "clamped to year 9999");
	json_time_rfc3339(out, INT64_MIN);
	is_str(out, "0000-01-01T00:00:00.000Z", "clamped to year 0");
	is_int(strlen(out), 24, "always 24 characters");
}

static void
test_arena_lifetime(void)
{
	size_t before;

	/* The parsed tree is put at reset: a worker's footprint does not grow
	 * with requests (ASan's leak check covers the json-c side). */
	arena_reset(A);
	before = arena_footprint(A);
	for (int i = 0; i < 2000; i++) {
		json_object *o;

		(void)parse_n("{\"a\":[1,2,{\"b\":\"c\"}]}", 22, &o, NULL);
		(void)parse_n("{\"a\":1,\"a\":2}", 13, &o, NULL);
		(void)parse_n("[18446744073709551616]", 22, &o, NULL);
		arena_reset(A);
	}
	is_int(arena_footprint(A), before, "arena back to one block");
}

int
main(void)
{
	A = arena_new();
	test_valid_documents();
	arena_reset(A);
	test_rejections();
	arena_reset(A);
	test_depth();
	arena_reset(A);
	test_duplicates();
	arena_reset(A);
	test_nul_values();
	arena_reset(A);
	test_get_string();
	arena_reset(A);
	test_get_int();
	arena_reset(A);
	test_get_bool_enum_object();
	arena_reset(A);
	test_utf8();
	test_writers();
	arena_reset(A);
	test_time();
	test_arena_lifetime();
	arena_free(A);
	return tap_done();
}
