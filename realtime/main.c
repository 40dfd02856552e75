/* roost-relay: parses options, opens the listening socket, and runs one
 * relay (realtime/relay.c), or with -w N supervises N of them sharing the
 * port through SO_REUSEPORT. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "relay.h"

#define MAX_WORKERS 64
/* A worker that exits with one of these soon after starting cannot start
 * at all (configuration, address): restarting it would loop forever. */
#define EX_UNAVAILABLE_ 69
#define EX_CONFIG_ 78
#define EARLY_EXIT_MS 3000
#define RESTART_MIN_MS 500
#define RESTART_MAX_MS 30000
#define STABLE_MS 60000 /* a worker that ran this long restarts at once */
#define STOP_WAIT_MS 10000
/* The soft open-file limit the relay raises itself to (as far as the hard
 * limit allows): one descriptor per client. roost-relay.service sets
 * LimitNOFILE to the same. */
#define FD_WANT 65536

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: roost-relay [-c config] [-l 127.0.0.1:PORT | -l "
	    "/path.sock] [-w N] [-A] [-L logfile] [-V] [-h]\n"
	    "  -l  where to listen (default $ROOST_RELAY_LISTEN, else %s)\n"
	    "  -w  run N worker processes sharing the port (SO_REUSEPORT)\n"
	    "  -A  allow a non-loopback address (normally the relay sits "
	    "behind the web server's proxy)\n"
	    "  -L  append the log to a file (created 0640) instead of "
	    "stderr\n"
	    "  Environment: ROOST_* as for roost.fcgi; "
	    "ROOST_RELAY_MAX_OUTPUT (bytes\n"
	    "  queued for one slow client before it is dropped, default "
	    "%u), ROOST_SSE_HEARTBEAT_S.\n",
	    CONFIG_DEFAULT_RELAY_LISTEN, CONFIG_DEFAULT_RELAY_MAX_OUTPUT);
}

static int
parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (size_t)v;
	return 0;
}

typedef struct worker {
	pid_t pid;
	int64_t started, restart_at;
	int backoff_ms;
} worker;

typedef struct supervisor {
	const char *listen;
	bool allow_any;
	relay_opts opts; /* listen_fd: the shared unix socket, else -1 */
	worker w[MAX_WORKERS];
	int n;
} supervisor;

/* A shell's soft limit is often 1,024 while its hard one is far higher:
 * started from it, the relay would refuse its 1,025th client. Raise the
 * soft limit as lighttpd and nginx do for themselves; relay_run() sizes its
 * loop by it, and logs the number. Workers inherit it. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= FD_WANT ||
	    rl.rlim_cur >= rl.rlim_max)
		return;
	/* (RLIM_INFINITY is the largest rlim_t) */
	rl.rlim_cur = rl.rlim_max < FD_WANT ? rl.rlim_max : FD_WANT;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn(
		    "cannot raise the open-file limit: %s", strerror(errno));
}

static pid_t
spawn(supervisor *s, int i, int sigfd)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		relay_opts o = s->opts;
		sigset_t none;
		char err[512];

		/* A supervisor killed outright takes its workers along. */
		(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			exit(0);
		close(sigfd);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGCHLD, SIG_DFL);
		if (o.listen_fd < 0) {
			o.listen_fd = relay_listen(s->listen, s->allow_any,
			    true, false, err, sizeof(err));
			if (o.listen_fd < 0) {
				log_error(
				    "worker %d: cannot listen: %s", i, err);
				exit(EX_UNAVAILABLE_);
			}
		}
		exit(relay_run(&o));
	}
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		s->w[i].restart_at = mono_ms() + RESTART_MAX_MS;
		return -1;
	}
	s->w[i].pid = pid;
	s->w[i].started = mono_ms();
	s->w[i].restart_at = 0;
	return pid;
}

static int
alive(const supervisor *s)
{
	int n = 0;

	for (int i = 0; i < s->n; i++)
		n += s->w[i].pid > 0;
	return n;
}

static void
signal_all(supervisor *s, int sig)
{
	for (int i = 0; i < s->n; i++)
		if (s->w[i].pid > 0)
			kill(s->w[i].pid, sig);
}

/* The parent of -w N: starts the workers, restarts one that dies (with
 * backoff), and on SIGTERM or SIGINT passes it on and waits for them. */
static int
supervise(supervisor *s)
{
	sigset_t set;
	int sigfd, rc = 0;
	bool stopping = false;
	int64_t stop_deadline = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return 70;
	}
	for (int i = 0; i < s->n; i++) {
		s->w[i].backoff_ms = RESTART_MIN_MS;
		spawn(s, i, sigfd);
	}
	log_info("supervising %d workers on %s (pid %ld)", s->n, s->listen,
	    (long)getpid());
	while (!stopping || alive(s) > 0) {
		struct pollfd pfd = { .fd = sigfd, .events = POLLIN };
		struct signalfd_siginfo si;
		int64_t now = mono_ms(), next = -1;
		int timeout;

		for (int i = 0; i < s->n && !stopping; i++)
			if (s->w[i].pid == 0 &&
			    (next < 0 || s->w[i].restart_at < next))
				next = s->w[i].restart_at;
		if (stopping)
			next = stop_deadline;
		timeout = next < 0 ? -1 : next <= now ? 0 : (int)(next - now);
		(void)poll(&pfd, 1, timeout);
		while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGCHLD)
				continue; /* reaped below */
			if (!stopping) {
				log_info("stopping %d workers", alive(s));
				stopping = true;
				stop_deadline = mono_ms() + STOP_WAIT_MS;
			}
			signal_all(s, SIGTERM);
		}
		for (;;) {
			int st, i;
			pid_t pid = waitpid(-1, &st, WNOHANG);
			int64_t lived;

			if (pid <= 0)
				break;
			for (i = 0; i < s->n && s->w[i].pid != pid; i++)
				;
			if (i == s->n)
				continue;
			s->w[i].pid = 0;
			lived = mono_ms() - s->w[i].started;
			if (stopping)
				continue;
			if (WIFEXITED(st) && lived < EARLY_EXIT_MS &&
			    (WEXITSTATUS(st) == EX_UNAVAILABLE_ ||
			        WEXITSTATUS(st) == EX_CONFIG_)) {
				log_error("worker %d cannot start (exit %d); "
				          "stopping",
				    i, WEXITSTATUS(st));
				rc = WEXITSTATUS(st);
				stopping = true;
				stop_deadline = mono_ms() + STOP_WAIT_MS;
				signal_all(s, SIGTERM);
				continue;
			}
			if (lived >= STABLE_MS)
				s->w[i].backoff_ms = RESTART_MIN_MS;
			if (WIFSIGNALED(st))
				log_warn("worker %d (pid %ld) killed by signal "
				         "%d; restarting in %d ms",
				    i, (long)pid, WTERMSIG(st),
				    s->w[i].backoff_ms);
			else
				log_warn("worker %d (pid %ld) exited with %d; "
				         "restarting in %d ms",
				    i, (long)pid, WEXITSTATUS(st),
				    s->w[i].backoff_ms);
			s->w[i].restart_at = mono_ms() + s->w[i].backoff_ms;
			s->w[i].backoff_ms =
			    s->w[i].backoff_ms * 2 > RESTART_MAX_MS
			    ? RESTART_MAX_MS
			    : s->w[i].backoff_ms * 2;
		}
		now = mono_ms();
		if (stopping && now >= stop_deadline && alive(s) > 0) {
			log_warn("%d workers did not stop in time; killing",
			    alive(s));
			signal_all(s, SIGKILL);
			stop_deadline = now + STOP_WAIT_MS;
		}
		for (int i = 0; i < s->n && !stopping; i++)
			if (s->w[i].pid == 0 && now >= s->w[i].restart_at)
				spawn(s, i, sigfd);
	}
	close(sigfd);
	if (s->opts.listen_fd >= 0)
		close(s->opts.listen_fd);
	log_info("stopped");
	return rc;
}

int
main(int argc, char **argv)
{
	const char *listen_on = NULL, *log_file = NULL;
	static roost_config cfg;
	static supervisor s;
	relay_opts o = { .listen_fd = -1 };
	bool allow_any = false;
	size_t workers = 0;
	char err[512];
	int opt;

	/* A hangup of the terminal that started it, or a habitual
	 * `kill -HUP`, must not stop the streams: the relay reads its
	 * configuration once and logs to stderr (or -L's file, opened for
	 * appending: logrotate's copytruncate suits it), so there is nothing
	 * to reload or reopen. Workers inherit this. */
	signal(SIGHUP, SIG_IGN);
	while ((opt = getopt(argc, argv, "c:l:w:L:AVh")) != -1) {
		switch (opt) {
		case 'c': o.config = optarg; break;
		case 'l': listen_on = optarg; break;
		case 'A': allow_any = true; break;
		case 'L': log_file = optarg; break;
		case 'w':
			if (parse_size(optarg, 1, MAX_WORKERS, &workers) != 0) {
				fprintf(stderr, "roost-relay: -w takes 1..%d\n",
				    MAX_WORKERS);
				return 64;
			}
			break;
		case 'V': printf("roost-relay %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 64;
	}
	log_init("roost-relay", LOG_INFO);
	if (log_file != NULL && log_to_file(log_file) != 0) {
		fprintf(stderr, "roost-relay: cannot open the log %s: %s\n",
		    log_file, strerror(errno));
		return 73;
	}
	raise_fd_limit();
	/* ROOST_RELAY_LISTEN and ROOST_RELAY_MAX_OUTPUT, from the
	 * environment or the config file like every other key. */
	if (config_load(&cfg, o.config, err, sizeof(err)) != 0) {
		log_error("cannot start: %s", err);
		return 78;
	}
	if (listen_on == NULL)
		listen_on = cfg.relay_listen;
	if (listen_on == NULL || *listen_on == '\0')
		listen_on = CONFIG_DEFAULT_RELAY_LISTEN;
	o.max_output = cfg.relay_max_output;
	o.listen_unix = listen_on[0] == '/';
	if (workers == 0 || o.listen_unix) {
		/* One socket, inherited by the workers if there are any. */
		o.listen_fd = relay_listen(
		    listen_on, allow_any, false, false, err, sizeof(err));
		if (o.listen_fd < 0) {
			log_error("cannot listen: %s", err);
			return 69;
		}
		if (workers == 0)
			return relay_run(&o);
	} else if (relay_listen(listen_on, allow_any, false, true, err,
	               sizeof(err)) != 0) {
		/* Each worker binds its own socket; this only catches a bad
		 * or busy address before forking. */
		log_error("cannot listen: %s", err);
		return 69;
	}
	s.listen = listen_on;
	s.allow_any = allow_any;
	s.opts = o;
	s.n = (int)workers;
	return supervise(&s);
}
