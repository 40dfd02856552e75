/* roost.fcgi: the FastCGI responder. Parses options, builds the app once,
 * and loops accepting requests; lib/ does everything else. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "app.h"
#include "events.h"
#include "log.h"
#include "outbox.h"

/* Unread request input is drained up to this much before the answer is
 * finished: closing a socket with unread data makes the kernel send a RST,
 * which can destroy the response in flight. */
#define DRAIN_MAX (8u * 1024u * 1024u)

static ssize_t
fcgx_read(void *ctx, char *dst, size_t n)
{
	int cap = n > 65536 ? 65536 : (int)n;

	return FCGX_GetStr(dst, cap, ctx);
}

static ssize_t
fcgx_write(void *ctx, const char *src, size_t n)
{
	int cap = n > 65536 ? 65536 : (int)n;
	int w = FCGX_PutStr(src, cap, ctx);

	return w < 0 ? -1 : w;
}

static volatile int stopping;

static int
fcgx_flush(void *ctx)
{
	return FCGX_FFlush(ctx) == 0 ? 0 : -1;
}

static void
on_term(int sig)
{
	(void)sig;
	stopping = 1; /* ends a long-poll or SSE stream in progress */
	/* Makes libfcgi's accept loop give up instead of retrying, so the
	 * worker finishes its current request and exits. */
	FCGX_ShutdownPending();
}

/* The listening socket passed by systemd socket activation (sd_listen_fds
 * protocol: LISTEN_PID is us, LISTEN_FDS >= 1, the first at fd 3), or 0.
 * The variables are removed so nothing we start inherits them. */
static int
systemd_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	struct stat st;
	int ok;

	if (pid == NULL || fds == NULL)
		return 0;
	ok = strtol(pid, NULL, 10) == (long)getpid() &&
	    strtol(fds, NULL, 10) >= 1 && fstat(3, &st) == 0 &&
	    S_ISSOCK(st.st_mode);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return ok ? 3 : 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: roost.fcgi [-c config] [-s host:port|/path.sock] "
	    "[-L logfile]\n"
	    "  Without -s, serves the FastCGI listening socket on fd 0\n"
	    "  (mod_fcgid, lighttpd bin-path, spawn-fcgi), or the one\n"
	    "  systemd passes (LISTEN_FDS, roost-fcgi.socket).\n"
	    "  -s listens itself: a unix socket (mode 0660) or "
	    "127.0.0.1:port.\n"
	    "  -L appends the log to a file (created 0640) instead of\n"
	    "  stderr, which spawn-fcgi sends to /dev/null.\n");
}

int
main(int argc, char **argv)
{
	const char *config = NULL, *listen_on = NULL, *log_file = NULL;
	char err[512];
	FCGX_Request rq;
	struct sigaction sa;
	app ap;
	int opt, sock = 0;

	while ((opt = getopt(argc, argv, "c:s:L:hV")) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 's': listen_on = optarg; break;
		case 'L': log_file = optarg; break;
		case 'V': printf("roost.fcgi %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	log_init("roost.fcgi", LOG_INFO);
	if (log_file != NULL && log_to_file(log_file) != 0) {
		/* stderr may still be /dev/null: the exit status says it. */
		fprintf(stderr, "roost.fcgi: cannot open the log %s: %s\n",
		    log_file, strerror(errno));
		return 73;
	}
	if (FCGX_Init() != 0) {
		log_error("FCGX_Init failed");
		return 70;
	}
	if (listen_on != NULL) {
		/* Never expose the FastCGI port beyond the host (PITFALLS.md:
		 * libfcgi's parameter parser has had overflows). */
		if (listen_on[0] != '/' &&
		    strncmp(listen_on, "127.0.0.1:", 10) &&
		    strncmp(listen_on, "localhost:", 10) &&
		    strncmp(listen_on, "[::1]:", 6)) {
			fprintf(stderr,
			    "roost.fcgi: -s must be a unix socket "
			    "path or a loopback host:port\n");
			return 64;
		}
		if (listen_on[0] == '/')
			unlink(listen_on);
		sock = FCGX_OpenSocket(listen_on, 128);
		if (sock < 0) {
			fprintf(stderr, "roost.fcgi: cannot listen on %s: %s\n",
			    listen_on, strerror(errno));
			return 69;
		}
		if (listen_on[0] == '/' && chmod(listen_on, 0660) != 0) {
			fprintf(stderr, "roost.fcgi: chmod %s: %s\n", listen_on,
			    strerror(errno));
			return 69;
		}
	} else if ((sock = systemd_socket()) > 0) {
		/* socket activation: roost-fcgi.socket hands us fd 3 */
	} else if (FCGX_IsCGI()) {
		fprintf(stderr,
		    "roost.fcgi: fd 0 is not a FastCGI socket; "
		    "use -s to listen, or roost.cgi for plain CGI\n");
		return 64;
	}
	if (app_init(&ap, config, "fcgi", err, sizeof(err)) != 0) {
		log_error("cannot start: %s", err);
		return 78;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL); /* Apache's graceful stop */
	signal(SIGPIPE, SIG_IGN);
	ap.stopping = &stopping;
	FCGX_InitRequest(&rq, sock, 0);
	log_info("ready (pid %ld)", (long)getpid());

	while (FCGX_Accept_r(&rq) >= 0) {
		http_response res;
		char scratch[8192];
		size_t drained = 0;
		int r;

		http_response_init(&res, ap.arena);
		/* GET /api/v1/events streams SSE through these. */
		ap.out_write = fcgx_write;
		ap.out_flush = fcgx_flush;
		ap.out_ctx = rq.out;
		app_handle(&ap, rq.envp, fcgx_read, rq.in, &res);
		while (drained < DRAIN_MAX &&
		    (r = FCGX_GetStr(scratch, sizeof(scratch), rq.in)) > 0)
			drained += (size_t)r;
		if (!ap.response_sent &&
		    http_response_write(&res, fcgx_write, rq.out) != 0)
			log_warn(
			    "client went away before the response was sent");
		FCGX_Finish_r(&rq);
		app_request_done(&ap, &res);
		/* The client has its answer; now move what this request
		 * committed to the event stream (docs/realtime.md). */
		if (events_take_written() > 0 && !outbox_kick(&ap))
			(void)outbox_try_drain(&ap, NULL);
		if (stopping)
			break;
	}
	log_info("stopping after %llu requests", (unsigned long long)ap.served);
	app_free(&ap);
	return 0;
}
