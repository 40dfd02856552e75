/* users: validation and creation of accounts. */
#include "users.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "password.h"

bool
users_email_valid(const char *s, size_t len)
{
	const char *at, *dot;

	if (len < 3 || len > EMAIL_MAX_BYTES || strlen(s) != len)
		return false;
	if (!json_utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' ||
		    c == '(' || c == ')' || c == ',' || c == ';' || c == ':' ||
		    c == '\\' || c == '"' || c == '[' || c == ']')
			return false;
	}
	at = strchr(s, '@');
	if (at == NULL || at == s || strchr(at + 1, '@') != NULL)
		return false;
	dot = strrchr(at + 1, '.');
	if (dot == NULL || dot == at + 1 || dot[1] == '\0')
		return false;
	if (strstr(at + 1, "..") != NULL || s[len - 1] == '.')
		return false;
	return true;
}

rerr
users_create(db *d, arena *a, const char *email, const char *name,
    const char *password, size_t pw_len, const char *role, int64_t *id,
    const char **why)
{
	char hash[PASSWORD_HASH_MAX];
	const char *params[4];
	char *lower;
	PGresult *res;
	rerr e;

	if (!users_email_valid(email, strlen(email))) {
		*why = "invalid email address";
		return R_VALIDATION;
	}
	if (pw_len < 12 || pw_len > PASSWORD_MAX_BYTES ||
	    memchr(password, '\0', pw_len) != NULL) {
		*why = "the password must be 12 to 1024 bytes, without NUL";
		return R_VALIDATION;
	}
	if (name == NULL || name[0] == '\0' ||
	    !json_utf8_valid(name, strlen(name)) ||
	    json_utf8_chars(name, strlen(name)) > NAME_MAX_CHARS) {
		*why = "the name must be 1 to 64 characters of UTF-8";
		return R_VALIDATION;
	}
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*why = "the name must not contain control characters";
			return R_VALIDATION;
		}
	lower = arena_strdup(a, email);
	for (char *p = lower; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if ((e = password_hash(password, pw_len, hash)) != R_SUCCESS) {
		*why = "password hashing failed";
		return e;
	}
	params[0] = lower;
	params[1] = name;
	params[2] = hash;
	params[3] = role;
	res = db_query(d, a, &e,
	    "INSERT INTO users (email, name, password_hash, role) "
	    "VALUES ($1, $2, $3, $4) RETURNING id",
	    4, params);
	if (res == NULL) {
		*why = e == R_CONFLICT ? "a user with this email exists" :
		    "the database refused the insert";
		return e;
	}
	*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	return R_SUCCESS;
}
