/* password: argon2id via libsodium, PHC strings. */
#include "password.h"

#include <string.h>

#include <sodium.h>

/* t=2, m=19 MiB: OWASP's argon2id baseline; see password.h. */
#define PW_OPSLIMIT 2ULL
#define PW_MEMLIMIT (19u * 1024u * 1024u)

_Static_assert(crypto_pwhash_STRBYTES <= PASSWORD_HASH_MAX,
    "PASSWORD_HASH_MAX too small for libsodium's hash strings");

int
password_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

rerr
password_hash(const char *pw, size_t len, char out[PASSWORD_HASH_MAX])
{
	if (crypto_pwhash_str_alg(out, pw, len, PW_OPSLIMIT, PW_MEMLIMIT,
	        crypto_pwhash_ALG_ARGON2ID13) != 0)
		return R_INTERNAL;
	return R_SUCCESS;
}

bool
password_verify(const char *hash, const char *pw, size_t len)
{
	if (hash == NULL || hash[0] == '\0')
		return false;
	return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

bool
password_needs_rehash(const char *hash)
{
	return crypto_pwhash_str_needs_rehash(hash, PW_OPSLIMIT, PW_MEMLIMIT) !=
	    0;
}
