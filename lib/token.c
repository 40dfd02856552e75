/* token: JWT issue/verify around libjwt, API and CSRF tokens. */
#include "token.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <sodium.h>

#include "json.h"

#define MAX_ID 9007199254740991LL

static bool
b64url_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* Decodes one base64url segment into arena memory; NULL when invalid. */
static char *
b64url_decode(arena *a, const char *s, size_t n, size_t *out_len)
{
	char *out = arena_alloc(a, n + 1);

	if (sodium_base642bin((unsigned char *)out, n, s, n, NULL, out_len,
	        NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return NULL;
	out[*out_len] = '\0';
	return out;
}

char *
token_random_b64(arena *a, size_t n)
{
	unsigned char raw[64];
	size_t cap = sodium_base64_ENCODED_LEN(
	    n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out;

	if (n > sizeof(raw))
		abort();
	randombytes_buf(raw, n);
	out = arena_alloc(a, cap);
	sodium_bin2base64(
	    out, cap, raw, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	return out;
}

char *
token_issue(arena *a, const char *key, const token_claims *c)
{
	char sub[24], *enc, *copy = NULL;
	jwt_t *jwt = NULL;

	snprintf(sub, sizeof(sub), "%" PRId64, c->user_id);
	if (jwt_new(&jwt) != 0)
		return NULL;
	if (jwt_add_grant(jwt, "iss", TOKEN_ISSUER) == 0 &&
	    jwt_add_grant(jwt, "aud", TOKEN_AUDIENCE) == 0 &&
	    jwt_add_grant(jwt, "sub", sub) == 0 &&
	    jwt_add_grant(jwt, "tid", c->tenant) == 0 &&
	    jwt_add_grant_int(jwt, "sid", (long)c->session_id) == 0 &&
	    jwt_add_grant_int(jwt, "iat", (long)c->iat) == 0 &&
	    jwt_add_grant_int(jwt, "exp", (long)c->exp) == 0 &&
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)key,
	        (int)strlen(key)) == 0 &&
	    (enc = jwt_encode_str(jwt)) != NULL) {
		copy = arena_strdup(a, enc);
		free(enc); /* libjwt 1.10 has no jwt_free_str */
	}
	jwt_free(jwt);
	return copy;
}

static bool
get_type(json_object *o, const char *k, json_type t, json_object **v)
{
	return json_object_object_get_ex(o, k, v) && json_object_is_type(*v, t);
}

/* An integer claim: JSON integer type only (1.0 and "1" are refused). */
static bool
int_claim(json_object *o, const char *k, bool required, int64_t *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return !required;
	if (!json_object_is_type(v, json_type_int))
		return false;
	errno = 0;
	*out = json_object_get_int64(v);
	return errno == 0 && *out >= 0 && *out <= MAX_ID;
}

static bool
aud_ok(json_object *o)
{
	json_object *v;

	if (!json_object_object_get_ex(o, "aud", &v))
		return false;
	if (json_object_is_type(v, json_type_string))
		return strcmp(json_object_get_string(v), TOKEN_AUDIENCE) == 0;
	if (json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);

		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(v, i);

			if (json_object_is_type(e, json_type_string) &&
			    strcmp(json_object_get_string(e), TOKEN_AUDIENCE) ==
			        0)
				return true;
		}
	}
	return false;
}

static bool
parse_id(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 16 || s[0] == '0')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > MAX_ID)
		return false;
	*out = v;
	return true;
}

rerr
token_verify(arena *a, const char *key, const char *token, int64_t now,
    int64_t max_lifetime_s, token_claims *out, const char **why)
{
	const char *dot1, *dot2;
	size_t len = strlen(token), hlen, plen;
	char *header, *payload;
	json_object *h, *p, *v;
	json_err je;
	jwt_t *jwt = NULL;
	int64_t sid, iat, exp, nbf = 0;
	bool ok;

	*why = "malformed token";
	if (len == 0 || len > TOKEN_MAX_BYTES)
		return R_UNAUTHORIZED;
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL ||
	    dot1 == token || dot2 == dot1 + 1 || dot2[1] == '\0')
		return R_UNAUTHORIZED;
	if (!b64url_chars(token, (size_t)(dot1 - token)) ||
	    !b64url_chars(dot1 + 1, (size_t)(dot2 - dot1 - 1)) ||
	    !b64url_chars(dot2 + 1, strlen(dot2 + 1)))
		return R_UNAUTHORIZED;

	/* The header, judged before libjwt: only HS256, nothing critical. */
	header = b64url_decode(a, token, (size_t)(dot1 - token), &hlen);
	if (header == NULL ||
	    json_parse_strict(a, header, hlen, &h, &je) != R_SUCCESS ||
	    !json_object_is_type(h, json_type_object))
		return R_UNAUTHORIZED;
	*why = "algorithm is not HS256";
	if (!get_type(h, "alg", json_type_string, &v) ||
	    strcmp(json_object_get_string(v), "HS256") != 0)
		return R_UNAUTHORIZED;
	*why = "unexpected header";
	if (json_object_object_get_ex(h, "crit", &v) ||
	    (json_object_object_get_ex(h, "typ", &v) &&
	        (!json_object_is_type(v, json_type_string) ||
	            strcmp(json_object_get_string(v), "JWT") != 0)))
		return R_UNAUTHORIZED;

	/* The signature: libjwt, with the key, and its verdict on the
	 * algorithm checked again. */
	*why = "bad signature";
	if (key == NULL || strlen(key) < 32)
		return R_UNAUTHORIZED;
	if (jwt_decode(&jwt, token, (const unsigned char *)key,
	        (int)strlen(key)) != 0 ||
	    jwt == NULL)
		return R_UNAUTHORIZED;
	ok = jwt_get_alg(jwt) == JWT_ALG_HS256;
	jwt_free(jwt);
	if (!ok)
		return R_UNAUTHORIZED;

	/* The claims, from our own strict parse of the signed payload. */
	*why = "malformed claims";
	payload = b64url_decode(a, dot1 + 1, (size_t)(dot2 - dot1 - 1), &plen);
	if (payload == NULL ||
	    json_parse_strict(a, payload, plen, &p, &je) != R_SUCCESS ||
	    !json_object_is_type(p, json_type_object))
		return R_UNAUTHORIZED;
	*why = "wrong issuer";
	if (!get_type(p, "iss", json_type_string, &v) ||
	    strcmp(json_object_get_string(v), TOKEN_ISSUER) != 0)
		return R_UNAUTHORIZED;
	*why = "wrong audience";
	if (!aud_ok(p))
		return R_UNAUTHORIZED;
	*why = "bad sub";
	if (!get_type(p, "sub", json_type_string, &v) ||
	    !parse_id(json_object_get_string(v), &out->user_id))
		return R_UNAUTHORIZED;
	*why = "bad tid";
	if (!get_type(p, "tid", json_type_string, &v) ||
	    json_object_get_string_len(v) == 0 ||
	    json_object_get_string_len(v) > 63)
		return R_UNAUTHORIZED;
	out->tenant = arena_strdup(a, json_object_get_string(v));
	*why = "bad sid, iat, exp or nbf";
	if (!int_claim(p, "sid", true, &sid) || sid < 1 || sid > MAX_ID ||
	    !int_claim(p, "iat", true, &iat) ||
	    !int_claim(p, "exp", true, &exp) ||
	    !int_claim(p, "nbf", false, &nbf))
		return R_UNAUTHORIZED;
	*why = "expired";
	if (now >= exp + TOKEN_SKEW_S)
		return R_UNAUTHORIZED;
	*why = "not yet valid";
	if (nbf > now + TOKEN_SKEW_S || iat > now + TOKEN_SKEW_S)
		return R_UNAUTHORIZED;
	*why = "lifetime too long";
	if (exp - now > max_lifetime_s + TOKEN_SKEW_S || exp < iat)
		return R_UNAUTHORIZED;
	out->session_id = sid;
	out->iat = iat;
	out->exp = exp;
	*why = NULL;
	return R_SUCCESS;
}

void
token_sha256_hex(const char *s, size_t len, char hex[65])
{
	unsigned char d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(d, (const unsigned char *)s, len);
	sodium_bin2hex(hex, 65, d, sizeof(d));
}

char *
token_api_new(arena *a, char hash[65])
{
	char *tok =
	    arena_printf(a, "%s%s", API_TOKEN_PREFIX, token_random_b64(a, 32));

	token_sha256_hex(tok, strlen(tok), hash);
	return tok;
}

char *
token_csrf(arena *a, const char *key, const char *tenant, int64_t session_id)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	char *msg = arena_printf(a, "csrf:%s:%" PRId64, tenant, session_id);
	size_t cap = sodium_base64_ENCODED_LEN(
	    sizeof(mac), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = arena_alloc(a, cap);

	crypto_auth_hmacsha256_init(
	    &st, (const unsigned char *)key, strlen(key));
	crypto_auth_hmacsha256_update(
	    &st, (const unsigned char *)msg, strlen(msg));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2base64(out, cap, mac, sizeof(mac),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

int
token_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (n != strlen(b))
		return 0;
	return sodium_memcmp(a, b, n) == 0;
}
