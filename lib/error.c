/* error: rerr -> HTTP status, API code and default message. */
#include "error.h"

#include <stddef.h>

static const struct {
	int status;
	const char *code;
	const char *message;
} errors[R__COUNT] = {
	[R_SUCCESS] = { 200, "OK", "ok" },
	[R_BAD_REQUEST] = { 400, "BAD_REQUEST", "the request is malformed" },
	[R_VALIDATION] = { 400, "VALIDATION_ERROR", "a field is invalid" },
	[R_UNAUTHORIZED] = { 401, "UNAUTHORIZED", "sign in first" },
	[R_SESSION_DISPLACED] = { 401, "SESSION_DISPLACED",
	    "this session was replaced by a newer sign-in on the same kind of "
	    "device" },
	[R_FORBIDDEN] = { 403, "FORBIDDEN", "you may not do that" },
	[R_NOT_MEMBER] = { 403, "NOT_MEMBER",
	    "you are not a member of this room" },
	[R_PASSWORD_CHANGE_REQUIRED] = { 403, "PASSWORD_CHANGE_REQUIRED",
	    "change your password first (POST /api/v1/me/password)" },
	[R_NOT_FOUND] = { 404, "NOT_FOUND", "no such resource" },
	[R_METHOD_NOT_ALLOWED] = { 405, "METHOD_NOT_ALLOWED",
	    "this method is not allowed here" },
	[R_NOT_ACCEPTABLE] = { 406, "NOT_ACCEPTABLE",
	    "no acceptable representation" },
	[R_CONFLICT] = { 409, "CONFLICT", "this conflicts with existing data" },
	[R_ROOM_FULL] = { 409, "ROOM_FULL", "the room is full" },
	[R_RESYNC_REQUIRED] = { 410, "RESYNC_REQUIRED",
	    "the event cursor is too old; reload state and resubscribe" },
	[R_LENGTH_REQUIRED] = { 411, "LENGTH_REQUIRED",
	    "a request body needs a Content-Length" },
	[R_PAYLOAD_TOO_LARGE] = { 413, "PAYLOAD_TOO_LARGE",
	    "the request body is too large" },
	[R_URI_TOO_LONG] = { 414, "URI_TOO_LONG", "the URI is too long" },
	[R_UNSUPPORTED_MEDIA_TYPE] = { 415, "UNSUPPORTED_MEDIA_TYPE",
	    "the body must be application/json" },
	[R_RATE_LIMITED] = { 429, "RATE_LIMITED",
	    "too many requests; slow down" },
	[R_HEADERS_TOO_LARGE] = { 431, "HEADERS_TOO_LARGE",
	    "the request headers are too large" },
	[R_INTERNAL] = { 500, "INTERNAL", "internal error" },
	[R_UNAVAILABLE] = { 503, "SERVICE_UNAVAILABLE",
	    "a backing service is unavailable; try again shortly" },
};

int
rerr_status(rerr e)
{
	if ((unsigned)e >= R__COUNT)
		return 500;
	return errors[e].status;
}

const char *
rerr_code(rerr e)
{
	if ((unsigned)e >= R__COUNT)
		return "INTERNAL";
	return errors[e].code;
}

const char *
rerr_message(rerr e)
{
	if ((unsigned)e >= R__COUNT)
		return "internal error";
	return errors[e].message;
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
