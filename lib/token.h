/* token: session JWTs, API tokens and CSRF tokens.
 *
 * Session tokens are HS256 JWTs. libjwt 1.10 verifies a signature and
 * nothing else, and accepts whatever algorithm a token names when the key
 * "fits" (../shared/PITFALLS.md). So verification here: checks the shape
 * and the header (alg exactly "HS256") before libjwt sees the token, lets
 * libjwt check the signature, requires libjwt's algorithm to be HS256
 * again, then decodes the payload itself with the strict JSON parser (no
 * duplicate claims) and checks every claim and its JSON type.
 *
 * API tokens are "roost_" + 43 base64url characters (256 random bits),
 * stored only as their SHA-256. CSRF tokens are an HMAC of the session id.
 */
#ifndef ROOST_TOKEN_H
#define ROOST_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "error.h"

#define TOKEN_ISSUER "roost"
#define TOKEN_AUDIENCE "roost"
#define TOKEN_SKEW_S 60
#define TOKEN_MAX_BYTES 4096
#define API_TOKEN_PREFIX "roost_"
#define API_TOKEN_LEN 49   /* "roost_" + 43 */
#define API_TOKEN_SHOWN 12 /* characters kept for display */

typedef struct token_claims {
	int64_t user_id;    /* sub */
	int64_t session_id; /* sid */
	const char *tenant; /* tid */
	int64_t iat, exp;
} token_claims;

/* Signs claims with key (>= 32 bytes). Returns the token in arena memory,
 * or NULL if libjwt fails (allocation). */
char *token_issue(arena *a, const char *key, const token_claims *c);

/* Verifies token at time now (Unix seconds). max_lifetime_s bounds how far
 * in the future exp may be. On success fills out (tenant in arena memory)
 * and returns R_SUCCESS; otherwise R_UNAUTHORIZED with *why saying what
 * was wrong (for the log, not for the client). */
rerr token_verify(arena *a, const char *key, const char *token, int64_t now,
    int64_t max_lifetime_s, token_claims *out, const char **why);

/* A new API token (arena memory), its SHA-256 hex in hash[65]. */
char *token_api_new(arena *a, char hash[65]);

/* SHA-256 hex of s (for looking up API tokens). */
void token_sha256_hex(const char *s, size_t len, char hex[65]);

/* The CSRF token bound to a session: base64url(HMAC-SHA256(key,
 * "csrf:" tenant ":" session_id)), 43 characters, in arena memory. */
char *token_csrf(
    arena *a, const char *key, const char *tenant, int64_t session_id);

/* Constant-time comparison of NUL-terminated strings. */
int token_equal(const char *a, const char *b);

/* n random bytes as base64url without padding (arena memory). */
char *token_random_b64(arena *a, size_t n);

#endif
