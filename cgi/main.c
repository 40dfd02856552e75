/* roost.cgi: the same handlers as roost.fcgi, one request per process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "events.h"
#include "log.h"
#include "outbox.h"

extern char **environ;

static ssize_t
stdin_read(void *ctx, char *dst, size_t n)
{
	(void)ctx;
	return read(STDIN_FILENO, dst, n);
}

static ssize_t
stdout_write(void *ctx, const char *src, size_t n)
{
	(void)ctx;
	return write(STDOUT_FILENO, src, n);
}

int
main(void)
{
	char err[512], scratch[8192];
	http_response res;
	app ap;
	ssize_t r;
	size_t drained = 0;

	log_init("roost.cgi", LOG_INFO);
	if (getenv("GATEWAY_INTERFACE") == NULL &&
	    getenv("REQUEST_METHOD") == NULL) {
		fprintf(stderr,
		    "roost.cgi: run me from a web server as a CGI "
		    "program (REQUEST_METHOD is not set)\n");
		return 64;
	}
	if (app_init(&ap, NULL, "cgi", err, sizeof(err)) != 0) {
		static const char body[] =
		    "{\"error\":{\"code\":\"INTERNAL\",\"message\":"
		    "\"the server is misconfigured; see its error log\"}}";

		log_error("cannot start: %s", err);
		printf("Status: 500 Internal Server Error\r\n"
		       "Content-Type: application/json; charset=utf-8\r\n"
		       "Content-Length: %zu\r\n\r\n%s",
		    sizeof(body) - 1, body);
		return 0;
	}
	http_response_init(&res, ap.arena);
	/* SSE (GET /api/v1/events) writes straight to stdout, unbuffered. */
	ap.out_write = stdout_write;
	ap.out_flush = NULL;
	ap.out_ctx = NULL;
	app_handle(&ap, environ, stdin_read, NULL, &res);
	while (drained < 8u * 1024u * 1024u &&
	    (r = read(STDIN_FILENO, scratch, sizeof(scratch))) > 0)
		drained += (size_t)r;
	if (!ap.response_sent &&
	    http_response_write(&res, stdout_write, NULL) != 0)
		log_warn("client went away before the response was sent");
	app_request_done(&ap, &res);
	/* The answer ends when stdout closes; then move what this request
	 * committed to the event stream (docs/realtime.md). */
	close(STDOUT_FILENO);
	if (events_take_written() > 0 && !outbox_kick(&ap))
		(void)outbox_try_drain(&ap, NULL);
	app_free(&ap);
	return 0;
}
