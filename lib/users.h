/* users: accounts: validation, creation, and their JSON form. */
#ifndef ROOST_USERS_H
#define ROOST_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "arena.h"
#include "db.h"
#include "error.h"

#define EMAIL_MAX_BYTES 254
#define NAME_MAX_CHARS 64
#define ABOUT_MAX_CHARS 500
#define URL_MAX_BYTES 2048

/* The columns users_row_json() reads, in order, for a SELECT on users;
 * USER_COLUMNS_OF("u.") qualifies them for a join. */
#define USER_COLUMNS_OF(t)                                                     \
	t "id, " t "email, " t "name, " t "display_name, " t "about, " t       \
	  "avatar_url, " t "role, " t "suspended, " t                          \
	  "deleted_at IS NOT NULL, " t "must_change_password, " DB_TS(         \
	      t "created_at") ", " DB_TS(t "last_seen_at")
#define USER_COLUMNS USER_COLUMNS_OF("")

/* A plausible address: one '@', a non-empty local part and a domain with a
 * dot, no spaces or control characters, at most 254 bytes. */
bool users_email_valid(const char *s, size_t len);

/* An http:// or https:// URL of printable ASCII, at most 2,048 bytes. */
bool users_url_valid(const char *s, size_t len);

/* The user in row of res (selected with USER_COLUMNS). private_view adds
 * email, must_change_password and last_seen_at (the user themself, admins). */
json_object *users_row_json(const PGresult *res, int row, bool private_view);

/* Creates a user inside the current transaction. The email is stored
 * lower-cased. role is "admin" or "member". pw_min is the tenant's minimum
 * password length. R_SUCCESS with *id set; R_CONFLICT when the email is
 * taken; R_VALIDATION for a bad email, name or password (message in *why,
 * the field's name in *field when field is not NULL). */
rerr users_create(db *d, arena *a, const char *email, const char *name,
    const char *password, size_t pw_len, int64_t pw_min, const char *role,
    bool must_change, int64_t *id, const char **why);

/* Checks a new password against the tenant's rules: pw_min..1024 bytes,
 * no NUL. NULL when fine, else the reason. */
const char *users_password_problem(const char *pw, size_t len, int64_t pw_min);

#endif
