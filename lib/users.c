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

bool
users_url_valid(const char *s, size_t len)
{
	if (len > URL_MAX_BYTES || strlen(s) != len)
		return false;
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return false;
	if (len <= (s[4] == 's' ? 8u : 7u))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 ||
		    (unsigned char)s[i] >= 0x7f || s[i] == '"' || s[i] == '<' ||
		    s[i] == '>' || s[i] == '\\')
			return false;
	return true;
}

const char *
users_password_problem(const char *pw, size_t len, int64_t pw_min)
{
	if ((int64_t)len < pw_min)
		return "the password is too short";
	if (len > PASSWORD_MAX_BYTES)
		return "the password is longer than 1024 bytes";
	if (memchr(pw, '\0', len) != NULL)
		return "the password must not contain NUL";
	return NULL;
}

json_object *
users_row_json(const PGresult *res, int row, bool private_view)
{
	json_object *o = json_object_new_object();

	json_object_object_add(
	    o, "id", json_i64(strtoll(PQgetvalue(res, row, 0), NULL, 10)));
	if (private_view)
		json_object_object_add(
		    o, "email", json_str(PQgetvalue(res, row, 1)));
	json_object_object_add(o, "name", json_str(PQgetvalue(res, row, 2)));
	json_object_object_add(o, "display_name", db_col_str(res, row, 3));
	json_object_object_add(o, "about", db_col_str(res, row, 4));
	json_object_object_add(o, "avatar_url", db_col_str(res, row, 5));
	json_object_object_add(o, "role", json_str(PQgetvalue(res, row, 6)));
	json_object_object_add(o, "suspended",
	    json_object_new_boolean(PQgetvalue(res, row, 7)[0] == 't'));
	json_object_object_add(o, "deleted",
	    json_object_new_boolean(PQgetvalue(res, row, 8)[0] == 't'));
	if (private_view) {
		json_object_object_add(o, "must_change_password",
		    json_object_new_boolean(PQgetvalue(res, row, 9)[0] == 't'));
		json_object_object_add(
		    o, "last_seen_at", db_col_str(res, row, 11));
	}
	json_object_object_add(
	    o, "created_at", json_str(PQgetvalue(res, row, 10)));
	return o;
}

rerr
users_create(db *d, arena *a, const char *email, const char *name,
    const char *password, size_t pw_len, int64_t pw_min, const char *role,
    bool must_change, int64_t *id, const char **why)
{
	char hash[PASSWORD_HASH_MAX];
	const char *params[5];
	char *lower;
	PGresult *res;
	rerr e;

	if (!users_email_valid(email, strlen(email))) {
		*why = "invalid email address";
		return R_VALIDATION;
	}
	if ((*why = users_password_problem(password, pw_len, pw_min)) != NULL)
		return R_VALIDATION;
	if (name == NULL || name[0] == '\0' ||
	    !json_utf8_valid(name, strlen(name)) ||
	    json_utf8_chars(name, strlen(name)) > NAME_MAX_CHARS) {
		*why = "the name must be 1 to 64 characters of UTF-8";
		return R_VALIDATION;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f ||
		    (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)) {
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
	params[4] = must_change ? "true" : "false";
	res = db_query(d, a, &e,
	    "INSERT INTO users (email, name, password_hash, role, "
	    "must_change_password) VALUES ($1, $2, $3, $4, $5) RETURNING id",
	    5, params);
	if (res == NULL) {
		*why = e == R_CONFLICT ? "a user with this email exists"
		                       : "the database refused the insert";
		return e;
	}
	*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	return R_SUCCESS;
}
