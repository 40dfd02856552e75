/* users: accounts, as far as the foundation needs them (create an admin). */
#ifndef ROOST_USERS_H
#define ROOST_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "db.h"
#include "error.h"

#define EMAIL_MAX_BYTES 254
#define NAME_MAX_CHARS 64

/* A plausible address: one '@', a non-empty local part and a domain with a
 * dot, no spaces or control characters, at most 254 bytes. */
bool users_email_valid(const char *s, size_t len);

/* Creates a user inside the current transaction (db_begin done). The email
 * is stored lower-cased. role is "admin" or "member". R_SUCCESS with *id set;
 * R_CONFLICT when the email is taken; R_VALIDATION for a bad email or
 * password (message in *why). */
rerr users_create(db *d, arena *a, const char *email, const char *name,
    const char *password, size_t pw_len, const char *role, int64_t *id,
    const char **why);

#endif
