/* password: argon2id hashing (libsodium).
 *
 * Parameters: t=2, m=19 MiB (OWASP's argon2id baseline), about 35 ms and
 * 20 MiB per hash on our reference machine (PITFALLS.md): cheaper in memory
 * and 3x faster than yescrypt at comparable strength, and unlike bcrypt it
 * uses every byte of long passwords. Stored in the PHC string form, so the
 * parameters can be raised later and old hashes upgraded on login.
 */
#ifndef ROOST_PASSWORD_H
#define ROOST_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define PASSWORD_HASH_MAX 128
#define PASSWORD_MAX_BYTES 1024

/* Initialises libsodium; call once at start. 0 or -1. */
int password_init(void);

/* Hashes pw[0..len) into out (NUL-terminated). R_SUCCESS or R_INTERNAL (out of
 * memory). The caller validated the length. */
rerr password_hash(const char *pw, size_t len, char out[PASSWORD_HASH_MAX]);

/* True when pw matches hash. */
bool password_verify(const char *hash, const char *pw, size_t len);

/* True when hash was made with other parameters than today's. */
bool password_needs_rehash(const char *hash);

#endif
