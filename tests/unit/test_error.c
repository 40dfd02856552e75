/* Unit tests: lib/error. */
#include "error.h"
#include "tap.h"

int
main(void)
{
	is_int(rerr_status(R_SUCCESS), 200, "ok is 200");
	is_int(rerr_status(R_VALIDATION), 400, "validation is 400");
	is_str(rerr_code(R_VALIDATION), "VALIDATION_ERROR", "validation code");
	is_int(rerr_status(R_NOT_MEMBER), 403, "not member is 403");
	is_str(rerr_code(R_NOT_MEMBER), "NOT_MEMBER", "not member code");
	is_int(rerr_status(R_ROOM_FULL), 409, "room full is 409");
	is_int(rerr_status(R_RESYNC_REQUIRED), 410, "resync is 410");
	is_int(rerr_status(R_PAYLOAD_TOO_LARGE), 413, "too large is 413");
	is_int(rerr_status(R_RATE_LIMITED), 429, "rate limited is 429");
	is_int(rerr_status(R_UNAVAILABLE), 503, "unavailable is 503");
	is_int(rerr_status((rerr)9999), 500, "out of range is 500");
	is_str(rerr_code((rerr)-1), "INTERNAL", "negative is INTERNAL");
	/* every error has a code, a message and a real status */
	int complete = 1;
	for (int e = 0; e < R__COUNT; e++) {
		const char *c = rerr_code((rerr)e);
		complete &= c != NULL && c[0] >= 'A' && c[0] <= 'Z';
		complete &= rerr_message((rerr)e)[0] != '\0';
		complete &= rerr_status((rerr)e) >= 200;
		complete &=
		    strcmp(http_reason(rerr_status((rerr)e)), "Unknown") != 0;
	}
	ok(complete, "every rerr has a code, message, status and reason");
	is_str(http_reason(404), "Not Found", "reason phrase");
	/* Every status roost-relay answers on its own (realtime/http1.c,
	 * realtime/relay.c), and the ones handlers set, with RFC 9110's
	 * phrase. */
	{
		static const struct {
			int status;
			const char *reason;
		} own[] = {
			{ 200, "OK" },
			{ 201, "Created" },
			{ 204, "No Content" },
			{ 400, "Bad Request" },
			{ 404, "Not Found" },
			{ 405, "Method Not Allowed" },
			{ 408, "Request Timeout" },
			{ 410, "Gone" },
			{ 413, "Content Too Large" },
			{ 431, "Request Header Fields Too Large" },
			{ 505, "HTTP Version Not Supported" },
		};

		for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
			is_str(http_reason(own[i].status), own[i].reason,
			    "reason phrase of %d", own[i].status);
	}
	return tap_done();
}
