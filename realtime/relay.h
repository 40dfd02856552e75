/* relay: roost-relay's server, one event loop per process.
 *
 * Serves GET /api/v1/events over HTTP/1.1 (keep-alive, long-poll and
 * Server-Sent Events) for thousands of waiting clients in one thread. The
 * request itself goes through the application's pipeline (lib/app.h in
 * STREAM_HANDOFF mode: the same authentication, membership loading,
 * cursor parsing and backlog reading as roost.fcgi); the relay then holds
 * the subscriber and feeds it from the tenant's Redis stream, woken by a
 * PUBLISH on the wake channel (docs/realtime.md, realtime/README.md).
 *
 * The application calls (libpq, synchronous hiredis) block the loop for
 * about a millisecond each; that is accepted: they happen once per
 * request, once per batch of stream entries, and on the timer.
 */
#ifndef ROOST_RELAY_H
#define ROOST_RELAY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct relay_opts {
	const char *config; /* config file or NULL (ROOST_* environment) */
	int listen_fd;      /* a listening socket (relay_listen) */
	bool listen_unix;   /* it is a unix socket (no TCP_NODELAY) */
	size_t max_output;  /* output queue cap per connection, bytes */
} relay_opts;

/* Opens a listening socket for spec: "host:port", "[v6]:port" or an
 * absolute unix socket path (replaced if it exists, mode 0660). A host
 * other than loopback is refused unless allow_any. reuseport sets
 * SO_REUSEPORT (-w: one socket per worker process). probe only checks that
 * the address can be bound (no listen) and closes it again: returns 0.
 * Returns the descriptor, or -1 with a message in err. */
int relay_listen(const char *spec, bool allow_any, bool reuseport, bool probe,
    char *err, size_t errlen);

/* Runs one relay process until SIGTERM or SIGINT, then drains (answers
 * waiting long-polls, flushes and closes streams) and returns the exit
 * status: 0, or 70/78 when the loop or the configuration fails. Takes the
 * listening socket. Blocks SIGTERM and SIGINT (read through a signalfd)
 * and ignores SIGPIPE for the process. */
int relay_run(const relay_opts *o);

#endif
