/* libFuzzer target: session token verification, from untrusted input.
 *
 * First byte even: the rest is a raw bearer token. Odd: the rest is a
 * header and a payload (split at the first NUL, or the default header),
 * signed with the right key, so the fuzzer gets past the signature and
 * explores header and claim checking too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "arena.h"
#include "token.h"

static const char *KEY = "fuzzing-key-0123456789abcdef0123456789";
static arena *a;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	token_claims c;
	const char *why;
	char *tok;

	if (a == NULL) {
		if (sodium_init() < 0)
			abort();
		a = arena_new();
	}
	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		tok = arena_strndup(a, (const char *)data + 1, size - 1);
	} else {
		const char *rest = (const char *)data + 1;
		size_t n = size - 1;
		const char *nul = memchr(rest, '\0', n);
		const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
		size_t hlen = strlen(hdr);
		unsigned char mac[crypto_auth_hmacsha256_BYTES];
		char *signing;

		if (nul != NULL) {
			hdr = rest;
			hlen = (size_t)(nul - rest);
			n -= hlen + 1;
			rest = nul + 1;
		}
		signing =
		    arena_printf(a, "%s.%s", b64(hdr, hlen), b64(rest, n));
		crypto_auth_hmacsha256(mac, (const unsigned char *)signing,
		    strlen(signing), (const unsigned char *)KEY);
		tok = arena_printf(a, "%s.%s", signing, b64(mac, sizeof(mac)));
	}
	(void)token_verify(a, KEY, tok, 1795000000, 86400, &c, &why);
	arena_reset(a);
	return 0;
}
