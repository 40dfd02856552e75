/* Unit tests: lib/token. Hostile tokens are minted here with libsodium's
 * HMAC-SHA256 and hand-built JSON, independently of libjwt, which the code
 * under test uses. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sodium.h>

#include "arena.h"
#include "token.h"
#include "tap.h"

static const char *KEY = "0123456789abcdef0123456789abcdef-test-key";
static arena *a;
static int64_t now;

static char *
b64(const void *p, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(
	    n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = arena_alloc(a, cap);

	sodium_bin2base64(
	    out, cap, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

/* header.payload.HMAC-SHA256(key) */
static char *
mint(const char *header, const char *payload, const char *key)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	char *signing = arena_printf(a, "%s.%s", b64(header, strlen(header)),
	    b64(payload, strlen(payload)));

	crypto_auth_hmacsha256_init(
	    &st, (const unsigned char *)key, strlen(key));
	crypto_auth_hmacsha256_update(
	    &st, (const unsigned char *)signing, strlen(signing));
	crypto_auth_hmacsha256_final(&st, mac);
	return arena_printf(a, "%s.%s", signing, b64(mac, sizeof(mac)));
}

static const char *H = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static char *
claims(const char *extra_or_override)
{
	return arena_printf(a,
	    "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\",\"tid\":"
	    "\"roost\","
	    "\"sid\":42,\"iat\":%" PRId64 ",\"exp\":%" PRId64 "%s}",
	    now - 10, now + 3600, extra_or_override);
}

static rerr
verify(const char *tok)
{
	token_claims c;
	const char *why;

	return token_verify(a, KEY, tok, now, 86400, &c, &why);
}

int
main(void)
{
	token_claims in, out;
	const char *why;
	char *tok, hash[65], hash2[65];

	if (sodium_init() < 0)
		return 1;
	a = arena_new();
	now = (int64_t)time(NULL);

	/* issue and verify round trip */
	in = (token_claims){ .user_id = 7,
		.session_id = 42,
		.tenant = "roost",
		.iat = now,
		.exp = now + 3600 };
	tok = token_issue(a, KEY, &in);
	ok(tok != NULL && strlen(tok) > 50, "token issued");
	is_int(token_verify(a, KEY, tok, now, 86400, &out, &why), R_SUCCESS,
	    "issued token verifies");
	ok(out.user_id == 7 && out.session_id == 42 &&
	        strcmp(out.tenant, "roost") == 0 && out.exp == now + 3600,
	    "claims read back");

	/* a hand-minted valid token is accepted: the hostile ones below are
	 * meaningful */
	is_int(verify(mint(H, claims(""), KEY)), R_SUCCESS,
	    "independently minted valid token accepted");
	is_int(verify(mint("{\"alg\":\"HS256\"}", claims(""), KEY)), R_SUCCESS,
	    "typ is optional");
	is_int(verify(mint(H, claims(",\"aud\":[\"x\",\"roost\"]"), KEY)),
	    R_UNAUTHORIZED, "duplicate aud claim refused");

	/* signature and algorithm */
	is_int(
	    verify(mint(H, claims(""), "another key of more than 32 bytes!!")),
	    R_UNAUTHORIZED, "wrong key");
	{
		char *t = mint(H, claims(""), KEY);
		char *dot = strchr(t, '.');

		dot[3] = dot[3] == 'A' ? 'B' : 'A'; /* tamper the payload */
		is_int(verify(t), R_UNAUTHORIZED, "tampered payload");
	}
	{
		const char *p = claims("");
		char *none = arena_printf(a, "%s.%s.",
		    b64("{\"alg\":\"none\"}", 14), b64(p, strlen(p)));
		char *None = arena_printf(a, "%s.%s.",
		    b64("{\"alg\":\"None\"}", 14), b64(p, strlen(p)));

		is_int(verify(none), R_UNAUTHORIZED, "alg none, unsigned");
		is_int(verify(None), R_UNAUTHORIZED, "alg None, unsigned");
	}
	is_int(verify(mint("{\"alg\":\"none\"}", claims(""), KEY)),
	    R_UNAUTHORIZED, "alg none with a signature");
	is_int(verify(mint("{\"alg\":\"HS512\"}", claims(""), KEY)),
	    R_UNAUTHORIZED, "HS512 label refused");
	is_int(verify(mint("{\"alg\":\"RS256\"}", claims(""), KEY)),
	    R_UNAUTHORIZED, "RS256 label with an HMAC refused");
	is_int(verify(mint("{\"alg\":\"hs256\"}", claims(""), KEY)),
	    R_UNAUTHORIZED, "alg is case-sensitive");
	is_int(verify(mint(
	           "{\"alg\":\"HS256\",\"crit\":[\"x\"]}", claims(""), KEY)),
	    R_UNAUTHORIZED, "crit header refused");
	is_int(verify(mint(
	           "{\"alg\":\"HS256\",\"alg\":\"none\"}", claims(""), KEY)),
	    R_UNAUTHORIZED, "duplicate alg refused");
	{
		token_claims c;

		is_int(token_verify(a, "", mint(H, claims(""), ""), now, 86400,
		           &c, &why),
		    R_UNAUTHORIZED, "empty key never verifies");
		is_int(token_verify(a, "short", mint(H, claims(""), "short"),
		           now, 86400, &c, &why),
		    R_UNAUTHORIZED, "short key never verifies");
	}

	/* claims */
	is_int(verify(mint(H,
	           arena_printf(a,
	               "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
	               "\"tid\":\"roost\","
	               "\"sid\":42,\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}",
	               now - 7200, now - 100),
	           KEY)),
	    R_UNAUTHORIZED, "expired beyond skew");
	is_int(verify(mint(H,
	           arena_printf(a,
	               "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
	               "\"tid\":\"roost\","
	               "\"sid\":42,\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}",
	               now - 7200, now - 30),
	           KEY)),
	    R_SUCCESS, "expired within skew still accepted");
	is_int(
	    verify(mint(H,
	        claims(arena_printf(a, ",\"nbf\":%" PRId64, now + 600)), KEY)),
	    R_UNAUTHORIZED, "not yet valid");
	{
		const char *missing[] = { "iss", "aud", "sub", "tid", "sid",
			"iat", "exp" };

		for (size_t i = 0; i < 7; i++) {
			char *p = arena_printf(a,
			    "{%s\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":"
			    "\"7\","
			    "\"tid\":\"roost\",\"sid\":42,\"iat\":%" PRId64
			    ",\"exp\":%" PRId64 "}",
			    "", now, now + 60);
			/* blank out the claim's name so it is missing */
			char *k =
			    strstr(p, arena_printf(a, "\"%s\"", missing[i]));

			k[1] = 'x';
			is_int(verify(mint(H, p, KEY)), R_UNAUTHORIZED,
			    "missing %s refused", missing[i]);
		}
	}
	{
		struct {
			const char *payload, *name;
		} bad[] = {
			{ "{\"iss\":\"evil\",\"aud\":\"roost\",\"sub\":\"7\","
			  "\"tid\":\"roost\",\"sid\":42,\"iat\":%lld,\"exp\":%"
			  "lld}",
			    "wrong iss" },
			{ "{\"iss\":\"roost\",\"aud\":\"other\",\"sub\":\"7\","
			  "\"tid\":\"roost\",\"sid\":42,\"iat\":%lld,\"exp\":%"
			  "lld}",
			    "wrong aud" },
			{ "{\"iss\":\"roost\",\"aud\":[\"a\",\"b\"],\"sub\":"
			  "\"7\",\"tid\":\"roost\",\"sid\":42,\"iat\":%lld,"
			  "\"exp\":%lld}",
			    "aud array without roost" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":7,"
			  "\"tid\":\"roost\",\"sid\":42,\"iat\":%lld,\"exp\":%"
			  "lld}",
			    "sub as a number" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"07\","
			  "\"tid\":\"roost\",\"sid\":42,\"iat\":%lld,\"exp\":%"
			  "lld}",
			    "sub with a leading zero" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"-7\","
			  "\"tid\":\"roost\",\"sid\":42,\"iat\":%lld,\"exp\":%"
			  "lld}",
			    "negative sub" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
			  "\"tid\":\"roost\",\"sid\":\"42\",\"iat\":%lld,"
			  "\"exp\":%lld}",
			    "sid as a string" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
			  "\"tid\":\"roost\",\"sid\":42.0,\"iat\":%lld,\"exp\":"
			  "%lld}",
			    "sid as a float" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
			  "\"tid\":\"roost\",\"sid\":0,\"iat\":%lld,\"exp\":%"
			  "lld}",
			    "sid zero" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
			  "\"tid\":7,\"sid\":42,\"iat\":%lld,\"exp\":%lld}",
			    "tid as a number" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
			  "\"tid\":\"roost\",\"sid\":42,\"iat\":%lld,\"exp\":"
			  "\"%lld\"}",
			    "exp as a string" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
			  "\"tid\":\"roost\",\"sid\":42,\"iat\":%lld,\"exp\":%"
			  "lld.5}",
			    "exp as a float" },
			{ "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
			  "\"tid\":\"roost\",\"sid\":42,\"iat\":true,\"exp\":%"
			  "lld%lld}",
			    "iat as a bool" },
			{ "[\"roost\",%lld,%lld]", "payload not an object" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char p[512];

			/* The table's formats are literals of this file. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			snprintf(p, sizeof(p), bad[i].payload, (long long)now,
			    (long long)(now + 60));
#pragma GCC diagnostic pop
			is_int(verify(mint(H, p, KEY)), R_UNAUTHORIZED, "%s",
			    bad[i].name);
		}
	}
	is_int(verify(mint(H,
	           arena_printf(a,
	               "{\"iss\":\"roost\",\"aud\":\"roost\",\"sub\":\"7\","
	               "\"tid\":\"roost\","
	               "\"sid\":42,\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}",
	               now, now + 10 * 86400),
	           KEY)),
	    R_UNAUTHORIZED, "exp beyond the longest lifetime");
	is_int(
	    verify(mint(H,
	        claims(arena_printf(a, ",\"iat\":%" PRId64, now + 600)), KEY)),
	    R_UNAUTHORIZED, "duplicate iat refused");

	/* shapes */
	const char *shapes[] = { "", "a", "a.b", "a.b.c.d", "..", "a..c",
		"a.b.", "a b.c.d", "é.b.c" };
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		is_int(
		    verify(shapes[i]), R_UNAUTHORIZED, "shape '%s'", shapes[i]);
	{
		char *big = arena_alloc(a, 10001);

		memset(big, 'A', 10000);
		big[10000] = '\0';
		big[10] = '.';
		big[20] = '.';
		is_int(verify(big), R_UNAUTHORIZED, "10 KB token");
	}

	/* API tokens and CSRF */
	{
		char *t1 = token_api_new(a, hash),
		     *t2 = token_api_new(a, hash2);

		is_int(strlen(t1), API_TOKEN_LEN, "API token length");
		ok(strncmp(t1, "roost_", 6) == 0, "API token prefix");
		ok(strcmp(t1, t2) != 0 && strcmp(hash, hash2) != 0,
		    "API tokens differ");
		token_sha256_hex(t1, strlen(t1), hash2);
		is_str(hash2, hash, "stored hash is the token's SHA-256");
	}
	{
		char *c1 = token_csrf(a, KEY, "roost", 42);

		is_str(
		    token_csrf(a, KEY, "roost", 42), c1, "CSRF token stable");
		ok(strcmp(token_csrf(a, KEY, "roost", 43), c1) != 0,
		    "CSRF token differs per session");
		ok(strcmp(token_csrf(a, KEY, "other", 42), c1) != 0,
		    "CSRF token differs per tenant");
		ok(token_equal(c1, arena_strdup(a, c1)), "equal");
		ok(!token_equal(c1, "x"), "unequal length");
	}
	arena_free(a);
	return tap_done();
}
