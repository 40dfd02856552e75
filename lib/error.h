/* error: the library's one error enum, and its mapping to HTTP.
 *
 * Every fallible function returns an rerr. The API layer turns it into a
 * status code and the error body of DESIGN.md:
 *   {"error": {"code": "NOT_FOUND", "message": "...", "field": "..."}}
 * Codes are stable: clients branch on them.
 */
#ifndef ROOST_ERROR_H
#define ROOST_ERROR_H

typedef enum rerr {
	R_SUCCESS = 0,
	R_BAD_REQUEST,       /* 400 BAD_REQUEST: malformed HTTP or JSON */
	R_VALIDATION,        /* 400 VALIDATION_ERROR: well-formed but invalid */
	R_UNAUTHORIZED,      /* 401 UNAUTHORIZED */
	R_SESSION_DISPLACED, /* 401 SESSION_DISPLACED */
	R_FORBIDDEN,         /* 403 FORBIDDEN */
	R_NOT_MEMBER,        /* 403 NOT_MEMBER */
	R_PASSWORD_CHANGE_REQUIRED, /* 403 PASSWORD_CHANGE_REQUIRED */
	R_NOT_FOUND,                /* 404 NOT_FOUND */
	R_METHOD_NOT_ALLOWED,       /* 405 METHOD_NOT_ALLOWED */
	R_NOT_ACCEPTABLE,           /* 406 NOT_ACCEPTABLE */
	R_CONFLICT,                 /* 409 CONFLICT */
	R_ROOM_FULL,                /* 409 ROOM_FULL */
	R_RESYNC_REQUIRED,          /* 410 RESYNC_REQUIRED */
	R_LENGTH_REQUIRED,          /* 411 LENGTH_REQUIRED */
	R_PAYLOAD_TOO_LARGE,        /* 413 PAYLOAD_TOO_LARGE */
	R_URI_TOO_LONG,             /* 414 URI_TOO_LONG */
	R_UNSUPPORTED_MEDIA_TYPE,   /* 415 UNSUPPORTED_MEDIA_TYPE */
	R_RATE_LIMITED,             /* 429 RATE_LIMITED */
	R_HEADERS_TOO_LARGE,        /* 431 HEADERS_TOO_LARGE */
	R_INTERNAL,                 /* 500 INTERNAL */
	R_UNAVAILABLE, /* 503 SERVICE_UNAVAILABLE: DB or Redis down */
	R__COUNT
} rerr;

/* HTTP status for e (500 for out-of-range values). */
int rerr_status(rerr e);

/* Stable upper-case API code, e.g. "VALIDATION_ERROR". Static string. */
const char *rerr_code(rerr e);

/* Default human message, used when a handler gives none. Static string. */
const char *rerr_message(rerr e);

/* Reason phrase for an HTTP status ("Not Found"), RFC 9110's. Every status
 * roost.fcgi or roost-relay sends has one (tests/unit/test_error.c);
 * "Unknown" for any other. */
const char *http_reason(int status);

#endif
