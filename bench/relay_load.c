/* relay_load: a load client for roost-relay, driven by bench/relay_load.py.
 *
 *   relay_load recv -p PORT|-U PATH -f TOKENS -n N [-o OFFSET] [-P PROCS]
 *                   [-W WINDOW] [-a SRC] [-D CONNECT_S] [-T LIMIT_S]
 *   relay_load post -p PORT -f TOKENS -r ROOM -n COUNT [-R RATE] [-C CONNS]
 *                   [-q SEQ0] [-T LIMIT_S]
 *
 * recv: opens N Server-Sent Events streams to 127.0.0.1:PORT
 * (GET /api/v1/events, Accept: text/event-stream, Authorization: Bearer
 * <line OFFSET+i of TOKENS, round-robin>) from PROCS forked processes
 * (default one per 15,000 streams: the open-file limit of this box is
 * 20,000 per process), each an epoll loop over non-blocking sockets with at
 * most WINDOW opening requests outstanding. Process p binds its sockets to
 * 127.0.0.(SRC+p) (IP_BIND_ADDRESS_NO_PORT): one source address has only
 * ~28,000 ephemeral ports towards one destination. -U PATH connects to
 * the relay's unix socket instead (ROOST_RELAY_LISTEN=/path: the relay
 * behind a web server on the same host). Every frame is parsed
 * just enough: its event type, and for message.created the marker
 * "rlb <seq> <CLOCK_REALTIME ns at send>" that `post` puts in the content;
 * the arrival time (CLOCK_REALTIME right after recv()) minus that stamp is
 * the send->receive latency, kept in a log-linear histogram (<1% error)
 * and per seq (count, min, max: the max is when the last member got it).
 * When every stream is open (or failed), prints "READY {json}"; then reads
 * commands on stdin, one a line, and answers each with one JSON line on
 * stdout: "stats" (counters), "report" (counters, latency percentiles, per
 * seq), "reset" (zero the measurements), "quit" (or end of input: close
 * everything and exit). The children report through pipes.
 *
 * post: sends COUNT messages to room ROOM through the REST API on
 * 127.0.0.1:PORT (lighttpd), POST /api/v1/rooms/ROOM/messages over CONNS
 * kept-alive HTTP/1.1 connections, message k due at start + k / RATE
 * (RATE 0: as fast as the connections allow), the content
 * "rlb <SEQ0+k> <ns>" stamped just before the request is written; tokens
 * round-robin. Prints one JSON line: answers by status, POST latency,
 * how late the sends were against the schedule, the rate reached.
 *
 * Loopback only. Every phase has a deadline and -T bounds the whole run
 * (default 900 s): then everything is killed and the exit status is 3. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PER_PROC_DEFAULT 15000
#define PER_PROC_MAX 18000
#define MAX_PROCS 16
#define RBUF_SIZE (256 * 1024)
#define HEAD_MAX 16384
#define MAX_SEQ (1u << 17)
#define WHY_MAX 200

/* ----------------------------------------------------------- helpers */

static int64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static int64_t
real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("relay_load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}

static long long
num_arg(const char *s, const char *what, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi)
		die("%s must be an integer in [%lld, %lld], not '%s'", what, lo,
		    hi, s);
	return v;
}

static double
real_arg(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < 0 || v > 1e6)
		die("%s must be a number in [0, 1e6], not '%s'", what, s);
	return v;
}

/* Non-empty lines of a file; *n gets their count. The array and the
 * strings live until exit. */
static char **
read_tokens(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	char **v = NULL, *line = NULL;
	size_t cap = 0, lcap = 0;
	ssize_t len;

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	*n = 0;
	while ((len = getline(&line, &lcap, f)) >= 0) {
		while (
		    len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				abort();
		}
		v[(*n)++] = strdup(line);
		if (v[*n - 1] == NULL)
			abort();
	}
	free(line);
	fclose(f);
	if (*n == 0)
		die("%s: no tokens", path);
	return v;
}

/* All the descriptors this box allows: each stream is one. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static rlim_t
nofile_limit(void)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
}

static int
write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = { .fd = fd,
					.events = POLLOUT };

				(void)poll(&pf, 1, 1000);
				continue;
			}
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, void *p, size_t n)
{
	char *s = p;

	while (n > 0) {
		ssize_t r = read(fd, s, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		s += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Printable copy of at most WHY_MAX - 1 bytes (for reasons in reports). */
static void
set_why(char *dst, const char *src, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k + 1 < WHY_MAX; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
	}
	dst[k] = '\0';
}

static void
json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/* -------------------------------------------------------- histogram */

/* Log-linear: values below 128 exactly, then 64 buckets per power of
 * two (under 1.6% wide). Values in microseconds. */
#define HIST_SUB 64
#define HIST_N (HIST_SUB * 40)

static unsigned
hist_index(uint64_t v)
{
	unsigned msb, e;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	e = msb - 6; /* v >> e in [64, 128) */
	if (e * HIST_SUB + HIST_SUB + HIST_SUB >= HIST_N)
		return HIST_N - 1;
	return e * HIST_SUB + (unsigned)(v >> e);
}

/* The upper end of bucket i (what a percentile reports). */
static uint64_t
hist_value(unsigned i)
{
	unsigned e;

	if (i < 2 * HIST_SUB)
		return i;
	e = i / HIST_SUB - 1;
	return ((uint64_t)(i - e * HIST_SUB + 1) << e) - 1;
}

static uint64_t
hist_pct(const uint64_t *h, double p)
{
	uint64_t total = 0, want, acc = 0;

	for (unsigned i = 0; i < HIST_N; i++)
		total += h[i];
	if (total == 0)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)total + 0.999999);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < HIST_N; i++) {
		acc += h[i];
		if (acc >= want)
			return hist_value(i);
	}
	return hist_value(HIST_N - 1);
}

static void
json_hist(
    FILE *out, const char *name, const uint64_t *h, uint64_t min, uint64_t max)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < HIST_N; i++)
		n += h[i];
	fprintf(out,
	    "\"%s\":{\"n\":%" PRIu64 ",\"min\":%" PRIu64 ",\"p50\":%" PRIu64
	    ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
	    ",\"max\":%" PRIu64 "}",
	    name, n, n ? min : 0, hist_pct(h, 50), hist_pct(h, 90),
	    hist_pct(h, 99), hist_pct(h, 99.9), max);
}

/* ------------------------------------------------------------- recv */

enum { RC_CONNECTING, RC_HEAD, RC_STREAM, RC_DONE };

typedef struct rconn {
	int fd;
	uint8_t state;
	uint32_t rlb; /* marked frames since the last reset */
	uint32_t carry_len, carry_cap;
	char *carry; /* a partial head or frame */
} rconn;

/* What a child reports. Sums, except where said. */
typedef struct wstats {
	uint64_t target, ok, failed, closed;
	uint64_t frames, msgs, rlb, presence, hb, resync, other, bytes, bad_rlb;
	int64_t first_ns, last_ns;           /* marked arrivals: min, max */
	int64_t connect_ns;                  /* max */
	uint64_t lat_min, lat_max;           /* min, max */
	uint32_t conn_rlb_min, conn_rlb_max; /* over open streams */
	uint32_t seq_hi;                     /* per-seq arrays that follow */
	char fail_why[WHY_MAX], close_why[WHY_MAX], other_type[48];
} wstats;

typedef struct seqstat {
	uint32_t count, min_us, max_us;
} seqstat;

enum { MSG_CONNECTED = 1, MSG_STATS, MSG_REPORT };

typedef struct msg_head {
	uint32_t kind;
	uint32_t len;
} msg_head;

typedef struct rworker {
	int idx, port, window, ep, ctl_in, res_out;
	const char *unix_path; /* -U, else NULL: TCP to 127.0.0.1:port */
	uint32_t src;
	size_t n, next, in_flight, done;
	char **tokens;
	size_t ntokens, offset;
	rconn *c;
	char *rbuf;
	wstats st;
	uint64_t *hist;
	seqstat *seq;
	int64_t connect_deadline;
	bool connected_sent;
} rworker;

#define CTL_ID UINT64_MAX

static void
w_reset(rworker *w)
{
	w->st.frames = w->st.msgs = w->st.rlb = w->st.presence = 0;
	w->st.hb = w->st.resync = w->st.other = w->st.bytes = 0;
	w->st.bad_rlb = 0;
	w->st.first_ns = w->st.last_ns = 0;
	w->st.lat_min = UINT64_MAX;
	w->st.lat_max = 0;
	w->st.seq_hi = 0;
	w->st.other_type[0] = '\0';
	memset(w->hist, 0, HIST_N * sizeof(*w->hist));
	memset(w->seq, 0, MAX_SEQ * sizeof(*w->seq));
	for (size_t i = 0; i < w->n; i++)
		w->c[i].rlb = 0;
}

static void
c_close(rworker *w, rconn *c)
{
	if (c->fd >= 0) {
		(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	free(c->carry);
	c->carry = NULL;
	c->carry_len = c->carry_cap = 0;
}

/* A stream that never became one. */
static void
c_fail(rworker *w, rconn *c, const char *why, size_t n)
{
	if (w->st.failed++ == 0)
		set_why(w->st.fail_why, why, n);
	if (c->state == RC_CONNECTING || c->state == RC_HEAD)
		w->in_flight--;
	c->state = RC_DONE;
	w->done++;
	c_close(w, c);
}

static void
carry_append(rconn *c, const char *p, size_t n)
{
	if (c->carry_len + n > c->carry_cap) {
		size_t cap = c->carry_cap ? c->carry_cap : 1024;

		while (cap < c->carry_len + n)
			cap *= 2;
		c->carry = realloc(c->carry, cap);
		if (c->carry == NULL)
			abort();
		c->carry_cap = (uint32_t)cap;
	}
	memcpy(c->carry + c->carry_len, p, n);
	c->carry_len += (uint32_t)n;
}

static void
on_marked(rworker *w, rconn *c, const char *p, const char *end, int64_t t)
{
	uint64_t seq = 0, ns = 0, lat;
	const char *q = p;

	while (q < end && isdigit((unsigned char)*q))
		seq = seq * 10 + (uint64_t)(*q++ - '0');
	if (q == p || q >= end || *q != ' ') {
		w->st.bad_rlb++;
		return;
	}
	p = ++q;
	while (q < end && isdigit((unsigned char)*q))
		ns = ns * 10 + (uint64_t)(*q++ - '0');
	if (q == p || seq >= MAX_SEQ) {
		w->st.bad_rlb++;
		return;
	}
	lat = t > (int64_t)ns ? (uint64_t)(t - (int64_t)ns) / 1000 : 0;
	w->st.rlb++;
	c->rlb++;
	w->hist[hist_index(lat)]++;
	if (lat < w->st.lat_min)
		w->st.lat_min = lat;
	if (lat > w->st.lat_max)
		w->st.lat_max = lat;
	if (w->st.first_ns == 0 || t < w->st.first_ns)
		w->st.first_ns = t;
	if (t > w->st.last_ns)
		w->st.last_ns = t;
	{
		seqstat *s = &w->seq[seq];
		uint32_t l32 = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;

		if (s->count == 0 || l32 < s->min_us)
			s->min_us = l32;
		if (l32 > s->max_us)
			s->max_us = l32;
		s->count++;
		if (seq + 1 > w->st.seq_hi)
			w->st.seq_hi = (uint32_t)seq + 1;
	}
}

/* One frame without its terminating blank line. */
static void
on_frame(rworker *w, rconn *c, const char *f, size_t n, int64_t t)
{
	const char *end = f + n, *ev, *ty, *te;
	size_t tl;

	w->st.frames++;
	if (n > 0 && f[0] == ':') {
		w->st.hb++;
		return;
	}
	if (n >= 7 && memcmp(f, "event: ", 7) == 0)
		ev = f;
	else if ((ev = memmem(f, n, "\nevent: ", 8)) != NULL)
		ev++;
	if (ev == NULL) {
		w->st.other++;
		return;
	}
	ty = ev + 7;
	te = memchr(ty, '\n', (size_t)(end - ty));
	if (te == NULL)
		te = end;
	tl = (size_t)(te - ty);
	if (tl == 15 && memcmp(ty, "message.created", 15) == 0) {
		const char *m = memmem(te, (size_t)(end - te), "\"rlb ", 5);

		w->st.msgs++;
		if (m != NULL)
			on_marked(w, c, m + 5, end, t);
	} else if (tl == 8 && memcmp(ty, "presence", 8) == 0) {
		w->st.presence++;
	} else if (tl == 6 && memcmp(ty, "resync", 6) == 0) {
		w->st.resync++;
	} else {
		if (w->st.other++ == 0)
			set_why(w->st.other_type, ty,
			    tl < sizeof(w->st.other_type) - 1
			        ? tl
			        : sizeof(w->st.other_type) - 1);
	}
}

/* Handles the complete frames of p[0..n); returns the bytes used. */
static size_t
on_frames(rworker *w, rconn *c, const char *p, size_t n, int64_t t)
{
	size_t pos = 0;

	while (pos < n) {
		const char *e = memmem(p + pos, n - pos, "\n\n", 2);

		if (e == NULL)
			break;
		on_frame(w, c, p + pos, (size_t)(e - (p + pos)), t);
		pos = (size_t)(e - p) + 2;
	}
	return pos;
}

static void
on_stream_data(rworker *w, rconn *c, const char *p, size_t n, int64_t t)
{
	size_t used;

	if (c->carry_len > 0) {
		carry_append(c, p, n);
		used = on_frames(w, c, c->carry, c->carry_len, t);
		memmove(c->carry, c->carry + used, c->carry_len - used);
		c->carry_len -= (uint32_t)used;
		if (c->carry_len == 0) {
			free(c->carry);
			c->carry = NULL;
			c->carry_cap = 0;
		}
		return;
	}
	used = on_frames(w, c, p, n, t);
	if (used < n)
		carry_append(c, p + used, n - used);
}

/* The response head: 200 text/event-stream, or the stream failed. */
static void
on_head_data(rworker *w, rconn *c, const char *p, size_t n, int64_t t)
{
	const char *e;
	size_t hl, rest;
	char *head;

	carry_append(c, p, n);
	e = memmem(c->carry, c->carry_len, "\r\n\r\n", 4);
	if (e == NULL) {
		if (c->carry_len > HEAD_MAX)
			c_fail(w, c, "no end of the response head", 27);
		return;
	}
	hl = (size_t)(e - c->carry) + 4;
	head = xmalloc(hl + 1);
	memcpy(head, c->carry, hl);
	head[hl] = '\0';
	if (hl < 12 || strncmp(head, "HTTP/1.", 7) != 0 ||
	    strncmp(head + 8, " 200", 4) != 0 ||
	    strcasestr(head, "\r\ncontent-type: text/event-stream") == NULL) {
		/* the status line and the start of the body say why */
		c_fail(w, c, c->carry, c->carry_len);
		free(head);
		return;
	}
	free(head);
	c->state = RC_STREAM;
	w->in_flight--;
	w->done++;
	w->st.ok++;
	rest = c->carry_len - hl;
	if (rest == 0) {
		free(c->carry);
		c->carry = NULL;
		c->carry_len = c->carry_cap = 0;
		return;
	}
	{
		char *tmp = xmalloc(rest);

		memcpy(tmp, c->carry + hl, rest);
		free(c->carry);
		c->carry = NULL;
		c->carry_len = c->carry_cap = 0;
		on_stream_data(w, c, tmp, rest, t);
		free(tmp);
	}
}

static void
c_start(rworker *w, size_t i)
{
	rconn *c = &w->c[i];
	struct sockaddr_in src = { .sin_family = AF_INET },
	                   dst = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN };
	int one = 1, fd;

	c->state = RC_CONNECTING;
	w->in_flight++;
	if (w->unix_path != NULL) {
		struct sockaddr_un un = { .sun_family = AF_UNIX };

		memcpy(un.sun_path, w->unix_path, strlen(w->unix_path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		c->fd = fd;
		if (fd < 0 ||
		    (connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0 &&
		        errno != EINPROGRESS)) {
			const char *why = strerror(errno);

			c_fail(w, c, why, strlen(why));
			return;
		}
		goto watch;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->fd = -1;
		c_fail(w, c, strerror(errno), strlen(strerror(errno)));
		return;
	}
	c->fd = fd;
	src.sin_addr.s_addr = htonl(w->src);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	dst.sin_port = htons((uint16_t)w->port);
	(void)setsockopt(
	    fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
	    (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 &&
	        errno != EINPROGRESS)) {
		const char *why = strerror(errno);

		c_fail(w, c, why, strlen(why));
		return;
	}
watch:
	ev.data.u64 = i;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		const char *why = strerror(errno);

		c_fail(w, c, why, strlen(why));
	}
}

/* Connected: send the opening request and wait for the head. */
static void
c_connected(rworker *w, size_t i)
{
	rconn *c = &w->c[i];
	int err = 0;
	socklen_t el = sizeof(err);
	char req[8192];
	int len;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
	    err != 0) {
		const char *why = strerror(err ? err : errno);

		c_fail(w, c, why, strlen(why));
		return;
	}
	len = snprintf(req, sizeof(req),
	    "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Accept: text/event-stream\r\nUser-Agent: roost-relay-load/1\r\n"
	    "Authorization: Bearer %s\r\n\r\n",
	    w->tokens[(w->offset + i) % w->ntokens]);
	if (len < 0 || (size_t)len >= sizeof(req)) {
		c_fail(w, c, "token too long", 14);
		return;
	}
	/* A fresh loopback socket takes this whole at once. */
	if (send(c->fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
		const char *why = "short send of the request";

		c_fail(w, c, why, strlen(why));
		return;
	}
	c->state = RC_HEAD;
	(void)epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
c_readable(rworker *w, size_t i)
{
	rconn *c = &w->c[i];

	for (int rounds = 0; rounds < 4 && c->fd >= 0; rounds++) {
		ssize_t r = recv(c->fd, w->rbuf, RBUF_SIZE, 0);
		int64_t t = real_ns();

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			char why[WHY_MAX];
			int k = snprintf(why, sizeof(why), "%s after %s",
			    r == 0 ? "EOF" : strerror(errno),
			    c->state == RC_HEAD ? "the request" : "streaming");

			if (c->state == RC_HEAD) {
				if (c->carry_len)
					c_fail(w, c, c->carry, c->carry_len);
				else
					c_fail(w, c, why, (size_t)k);
				return;
			}
			if (w->st.closed++ == 0)
				set_why(w->st.close_why, why, (size_t)k);
			c->state = RC_DONE;
			c_close(w, c);
			return;
		}
		w->st.bytes += (uint64_t)r;
		if (c->state == RC_HEAD)
			on_head_data(w, c, w->rbuf, (size_t)r, t);
		else
			on_stream_data(w, c, w->rbuf, (size_t)r, t);
		if ((size_t)r < RBUF_SIZE)
			return;
	}
}

static void
send_msg(rworker *w, uint32_t kind, bool full)
{
	msg_head h = { .kind = kind, .len = sizeof(w->st) };
	uint32_t lo = UINT32_MAX, hi = 0;

	for (size_t i = 0; i < w->n; i++) {
		if (w->c[i].state != RC_STREAM)
			continue;
		if (w->c[i].rlb < lo)
			lo = w->c[i].rlb;
		if (w->c[i].rlb > hi)
			hi = w->c[i].rlb;
	}
	w->st.conn_rlb_min = lo == UINT32_MAX ? 0 : lo;
	w->st.conn_rlb_max = hi;
	if (full)
		h.len += (uint32_t)(HIST_N * sizeof(uint64_t) +
		    w->st.seq_hi * sizeof(seqstat));
	if (write_all(w->res_out, &h, sizeof(h)) != 0 ||
	    write_all(w->res_out, &w->st, sizeof(w->st)) != 0 ||
	    (full &&
	        (write_all(w->res_out, w->hist, HIST_N * sizeof(uint64_t)) !=
	                0 ||
	            write_all(w->res_out, w->seq,
	                w->st.seq_hi * sizeof(seqstat)) != 0)))
		_exit(1); /* the parent is gone */
}

static void
worker_quit(rworker *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->c[i].fd >= 0)
			close(w->c[i].fd);
	_exit(0);
}

static void
on_ctl(rworker *w)
{
	char cmd[64];
	ssize_t r = read(w->ctl_in, cmd, sizeof(cmd));

	if (r <= 0)
		worker_quit(w);
	for (ssize_t k = 0; k < r; k++) {
		switch (cmd[k]) {
		case 'S': send_msg(w, MSG_STATS, false); break;
		case 'R': send_msg(w, MSG_REPORT, true); break;
		case 'Z': w_reset(w); break;
		case 'Q': worker_quit(w); break;
		default: break;
		}
	}
}

static void
worker_run(rworker *w, int connect_s)
{
	struct epoll_event evs[512],
	    cev = { .events = EPOLLIN, .data.u64 = CTL_ID };
	int64_t t0 = mono_ns();

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->ctl_in, &cev) != 0)
		_exit(1);
	w->rbuf = xmalloc(RBUF_SIZE);
	w->hist = xcalloc(HIST_N, sizeof(*w->hist));
	w->seq = xcalloc(MAX_SEQ, sizeof(*w->seq));
	w->c = xcalloc(w->n, sizeof(*w->c));
	for (size_t i = 0; i < w->n; i++)
		w->c[i].fd = -1;
	w->st.target = w->n;
	w_reset(w);
	w->connect_deadline = t0 + (int64_t)connect_s * 1000000000;
	for (;;) {
		int k;

		while (w->next < w->n && w->in_flight < (size_t)w->window)
			c_start(w, w->next++);
		if (!w->connected_sent &&
		    (w->done == w->n || mono_ns() > w->connect_deadline)) {
			for (size_t i = 0; i < w->n; i++) {
				rconn *c = &w->c[i];

				if (c->state == RC_CONNECTING ||
				    c->state == RC_HEAD)
					c_fail(w, c, "no response head in time",
					    24);
			}
			for (; w->next < w->n; w->next++) {
				w->c[w->next].state = RC_CONNECTING;
				w->in_flight++;
				c_fail(w, &w->c[w->next], "never started", 13);
			}
			w->st.connect_ns = mono_ns() - t0;
			send_msg(w, MSG_CONNECTED, false);
			w->connected_sent = true;
		}
		k = epoll_wait(w->ep, evs, 512, w->connected_sent ? 1000 : 100);
		if (k < 0 && errno != EINTR)
			_exit(1);
		for (int j = 0; j < k; j++) {
			uint64_t id = evs[j].data.u64;
			rconn *c;

			if (id == CTL_ID) {
				on_ctl(w);
				continue;
			}
			c = &w->c[id];
			if (c->fd < 0)
				continue;
			if (c->state == RC_CONNECTING)
				c_connected(w, (size_t)id);
			else if (evs[j].events &
			    (EPOLLIN | EPOLLERR | EPOLLHUP))
				c_readable(w, (size_t)id);
		}
	}
}

/* ------------------------------------------------------ recv parent */

typedef struct rchild {
	pid_t pid;
	int ctl_out, res_in;
	size_t n;
} rchild;

static rchild children[MAX_PROCS];
static int n_children;

static void
kill_children(void)
{
	for (int i = 0; i < n_children; i++)
		if (children[i].pid > 0)
			kill(children[i].pid, SIGKILL);
}

static void
on_alarm(int sig)
{
	static const char msg[] = "relay_load: time limit reached, stopping\n";

	ssize_t w;

	(void)sig;
	kill_children();
	w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	_exit(3);
}

static void
set_limit(int secs)
{
	struct sigaction sa = { .sa_handler = on_alarm };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned)secs);
}

/* Merged reports of all children. */
typedef struct merged {
	wstats st;
	uint64_t hist[HIST_N];
	seqstat *seq;
	uint32_t seq_hi;
} merged;

static void
merge(merged *m, const wstats *s, bool first)
{
	if (first) {
		m->st = *s;
		return;
	}
	m->st.target += s->target;
	m->st.ok += s->ok;
	m->st.failed += s->failed;
	m->st.closed += s->closed;
	m->st.frames += s->frames;
	m->st.msgs += s->msgs;
	m->st.rlb += s->rlb;
	m->st.presence += s->presence;
	m->st.hb += s->hb;
	m->st.resync += s->resync;
	m->st.other += s->other;
	m->st.bytes += s->bytes;
	m->st.bad_rlb += s->bad_rlb;
	if (s->first_ns && (!m->st.first_ns || s->first_ns < m->st.first_ns))
		m->st.first_ns = s->first_ns;
	if (s->last_ns > m->st.last_ns)
		m->st.last_ns = s->last_ns;
	if (s->connect_ns > m->st.connect_ns)
		m->st.connect_ns = s->connect_ns;
	if (s->lat_min < m->st.lat_min)
		m->st.lat_min = s->lat_min;
	if (s->lat_max > m->st.lat_max)
		m->st.lat_max = s->lat_max;
	if (s->ok > s->closed) {
		/* open streams so far, before adding these */
		bool had = m->st.ok - m->st.closed > s->ok - s->closed;

		if (!had || s->conn_rlb_min < m->st.conn_rlb_min)
			m->st.conn_rlb_min = s->conn_rlb_min;
		if (s->conn_rlb_max > m->st.conn_rlb_max)
			m->st.conn_rlb_max = s->conn_rlb_max;
	}
	if (!m->st.fail_why[0])
		memcpy(m->st.fail_why, s->fail_why, WHY_MAX);
	if (!m->st.close_why[0])
		memcpy(m->st.close_why, s->close_why, WHY_MAX);
	if (!m->st.other_type[0])
		memcpy(
		    m->st.other_type, s->other_type, sizeof(m->st.other_type));
}

/* Sends cmd to every child and reads each one's answer of kind. */
static void
gather(char cmd, uint32_t kind, merged *m)
{
	bool full = kind == MSG_REPORT;

	memset(m->hist, 0, sizeof(m->hist));
	if (full)
		memset(m->seq, 0, MAX_SEQ * sizeof(*m->seq));
	m->seq_hi = 0;
	for (int i = 0; i < n_children; i++)
		if (cmd && write_all(children[i].ctl_out, &cmd, 1) != 0)
			die("child %d is gone", i);
	for (int i = 0; i < n_children; i++) {
		msg_head h;
		wstats s;

		if (read_all(children[i].res_in, &h, sizeof(h)) != 0 ||
		    h.kind != kind ||
		    read_all(children[i].res_in, &s, sizeof(s)) != 0)
			die("child %d did not answer", i);
		merge(m, &s, i == 0);
		if (!full)
			continue;
		{
			uint64_t *hb = xmalloc(HIST_N * sizeof(uint64_t));
			seqstat *sq = xcalloc(s.seq_hi, sizeof(*sq));

			if (read_all(children[i].res_in, hb,
			        HIST_N * sizeof(uint64_t)) != 0 ||
			    read_all(children[i].res_in, sq,
			        s.seq_hi * sizeof(*sq)) != 0)
				die("child %d: short report", i);
			for (unsigned b = 0; b < HIST_N; b++)
				m->hist[b] += hb[b];
			for (uint32_t q = 0; q < s.seq_hi; q++) {
				seqstat *d = &m->seq[q];

				if (sq[q].count == 0)
					continue;
				if (d->count == 0 || sq[q].min_us < d->min_us)
					d->min_us = sq[q].min_us;
				if (sq[q].max_us > d->max_us)
					d->max_us = sq[q].max_us;
				d->count += sq[q].count;
			}
			if (s.seq_hi > m->seq_hi)
				m->seq_hi = s.seq_hi;
			free(hb);
			free(sq);
		}
	}
}

static void
print_stats(const char *tag, const merged *m, bool full)
{
	const wstats *s = &m->st;

	fprintf(stdout,
	    "%s{\"target\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
	    ",\"closed\":%" PRIu64 ",\"open\":%" PRIu64
	    ",\"procs\":%d,\"connect_s\":%.3f,\"frames\":%" PRIu64
	    ",\"msgs\":%" PRIu64 ",\"rlb\":%" PRIu64 ",\"bad_rlb\":%" PRIu64
	    ",\"presence\":%" PRIu64 ",\"hb\":%" PRIu64 ",\"resync\":%" PRIu64
	    ",\"other\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"first_ns\":%" PRId64
	    ",\"last_ns\":%" PRId64 ",\"conn_rlb_min\":%" PRIu32
	    ",\"conn_rlb_max\":%" PRIu32 ",\"fail_why\":",
	    tag, s->target, s->ok, s->failed, s->closed, s->ok - s->closed,
	    n_children, (double)s->connect_ns / 1e9, s->frames, s->msgs, s->rlb,
	    s->bad_rlb, s->presence, s->hb, s->resync, s->other, s->bytes,
	    s->first_ns, s->last_ns, s->conn_rlb_min, s->conn_rlb_max);
	json_str(stdout, s->fail_why);
	fputs(",\"close_why\":", stdout);
	json_str(stdout, s->close_why);
	fputs(",\"other_type\":", stdout);
	json_str(stdout, s->other_type);
	if (full) {
		fputc(',', stdout);
		json_hist(stdout, "lat_us", m->hist,
		    s->lat_min == UINT64_MAX ? 0 : s->lat_min, s->lat_max);
		fputs(",\"seqs\":[", stdout);
		for (uint32_t q = 0, k = 0; q < m->seq_hi; q++) {
			const seqstat *d = &m->seq[q];

			if (d->count == 0)
				continue;
			fprintf(stdout,
			    "%s[%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32
			    "]",
			    k++ ? "," : "", q, d->count, d->min_us, d->max_us);
		}
		fputc(']', stdout);
	}
	fputs("}\n", stdout);
	fflush(stdout);
}

static int
cmd_recv(int argc, char **argv)
{
	long long port = 0, n = 0, offset = 0, procs = 0, window = 128;
	long long src = 10, connect_s = 180, limit = 900;
	const char *tokfile = NULL, *unix_path = NULL;
	char **tokens, line[256];
	size_t ntokens;
	merged m = { 0 };
	int opt;

	while ((opt = getopt(argc, argv, "p:U:f:n:o:P:W:a:D:T:")) != -1) {
		switch (opt) {
		case 'p': port = num_arg(optarg, "-p", 1, 65535); break;
		case 'U': unix_path = optarg; break;
		case 'f': tokfile = optarg; break;
		case 'n': n = num_arg(optarg, "-n", 1, 300000); break;
		case 'o': offset = num_arg(optarg, "-o", 0, 10000000); break;
		case 'P': procs = num_arg(optarg, "-P", 1, MAX_PROCS); break;
		case 'W': window = num_arg(optarg, "-W", 1, 4096); break;
		case 'a': src = num_arg(optarg, "-a", 2, 250); break;
		case 'D': connect_s = num_arg(optarg, "-D", 1, 3600); break;
		case 'T': limit = num_arg(optarg, "-T", 1, 86400); break;
		default: die("recv: bad option (see the top of relay_load.c)");
		}
	}
	if ((port == 0 && unix_path == NULL) || n == 0 || tokfile == NULL)
		die("recv needs -p PORT or -U PATH, -f TOKENS, -n N");
	if (unix_path != NULL &&
	    strlen(unix_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		die("-U: the path is too long for a unix socket");
	if (procs == 0)
		procs = (n + PER_PROC_DEFAULT - 1) / PER_PROC_DEFAULT;
	if ((n + procs - 1) / procs > PER_PROC_MAX)
		die("at most %d streams per process: use -P", PER_PROC_MAX);
	if (src + procs > 254)
		die("-a %lld + %lld processes leaves 127.0.0.0/24", src, procs);
	raise_nofile();
	if ((rlim_t)((n + procs - 1) / procs) + 64 > nofile_limit())
		die("open-file limit %llu is too low for %lld streams in %lld "
		    "processes",
		    (unsigned long long)nofile_limit(), n, procs);
	tokens = read_tokens(tokfile, &ntokens);
	set_limit((int)limit);
	n_children = (int)procs;
	for (int p = 0; p < n_children; p++) {
		int ctl[2], res[2];
		size_t lo = (size_t)(n * p / procs),
		       hi = (size_t)(n * (p + 1) / procs);
		pid_t pid;

		if (pipe2(ctl, O_CLOEXEC) != 0 || pipe2(res, O_CLOEXEC) != 0)
			die("pipe: %s", strerror(errno));
		fflush(NULL);
		pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			rworker w = { 0 };

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			signal(SIGALRM, SIG_DFL);
			alarm((unsigned)limit + 30);
			for (int q = 0; q < p; q++) {
				close(children[q].ctl_out);
				close(children[q].res_in);
			}
			close(ctl[1]);
			close(res[0]);
			w.idx = p;
			w.port = (int)port;
			w.unix_path = unix_path;
			w.window = (int)window;
			w.ctl_in = ctl[0];
			w.res_out = res[1];
			w.src = (127u << 24) | (uint32_t)(src + p);
			w.n = hi - lo;
			w.tokens = tokens;
			w.ntokens = ntokens;
			w.offset = (size_t)offset + lo;
			worker_run(&w, (int)connect_s);
			_exit(0);
		}
		close(ctl[0]);
		close(res[1]);
		children[p] = (rchild){ .pid = pid,
			.ctl_out = ctl[1],
			.res_in = res[0],
			.n = hi - lo };
	}
	signal(SIGPIPE, SIG_IGN);
	m.seq = xcalloc(MAX_SEQ, sizeof(*m.seq));
	gather(0, MSG_CONNECTED, &m);
	print_stats("READY ", &m, false);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, "stats") == 0) {
			gather('S', MSG_STATS, &m);
			print_stats("", &m, false);
		} else if (strcmp(line, "report") == 0) {
			gather('R', MSG_REPORT, &m);
			print_stats("", &m, true);
		} else if (strcmp(line, "reset") == 0) {
			for (int i = 0; i < n_children; i++)
				(void)write_all(children[i].ctl_out, "Z", 1);
			gather('S', MSG_STATS, &m); /* after the reset */
			print_stats("", &m, false);
		} else if (strcmp(line, "quit") == 0) {
			break;
		} else if (line[0]) {
			fprintf(stdout, "{\"error\":\"unknown command\"}\n");
			fflush(stdout);
		}
	}
	for (int i = 0; i < n_children; i++)
		(void)write_all(children[i].ctl_out, "Q", 1);
	for (int i = 0; i < n_children; i++)
		(void)waitpid(children[i].pid, NULL, 0);
	fputs("BYE\n", stdout);
	fflush(stdout);
	return 0;
}

/* ------------------------------------------------------------- post */

typedef struct pconn {
	int fd;
	bool busy;
	uint32_t seq;
	int64_t t_send;
	size_t len;
	char buf[16384];
} pconn;

typedef struct poster {
	int port, ep;
	long long room;
	char **tokens;
	size_t ntokens;
	uint64_t sent, answered, ok, s4xx, s429, s5xx, other, errors;
	uint64_t post_hist[HIST_N], lag_hist[HIST_N];
	uint64_t post_max, lag_max;
	uint32_t seq0;
	size_t count;
	int64_t *answer_us; /* POST -> answer per message (-1: none), by seq */
	char first_error[WHY_MAX];
} poster;

static void
p_error(poster *ps, const char *why, size_t n)
{
	if (ps->errors++ == 0 && ps->first_error[0] == '\0')
		set_why(ps->first_error, why, n);
}

static void
p_close(poster *ps, pconn *c)
{
	if (c->fd >= 0) {
		(void)epoll_ctl(ps->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->len = 0;
}

static int
p_connect(poster *ps, pconn *c, size_t idx)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = idx };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	dst.sin_port = htons((uint16_t)ps->port);
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
		close(fd);
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (epoll_ctl(ps->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->len = 0;
	return 0;
}

/* Writes the POST of seq on c; 0 when it is on its way. */
static int
p_send(poster *ps, pconn *c, size_t idx, uint32_t seq)
{
	char body[128], req[8192];
	int bl, rl;
	int64_t stamp;

	char peek;

	/* An idle keep-alive connection the server has closed meanwhile:
	 * take a fresh one rather than lose a message on it. */
	if (c->fd >= 0 && recv(c->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
		p_close(ps, c);
	if (c->fd < 0 && p_connect(ps, c, idx) != 0)
		return -1;
	stamp = real_ns();
	bl = snprintf(body, sizeof(body),
	    "{\"type\":\"text\",\"content\":\"rlb %" PRIu32 " %" PRId64 "\"}",
	    seq, stamp);
	rl = snprintf(req, sizeof(req),
	    "POST /api/v1/rooms/%lld/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "User-Agent: roost-relay-load/1\r\nAuthorization: Bearer %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
	    ps->room, ps->tokens[seq % ps->ntokens], bl, body);
	if (rl < 0 || (size_t)rl >= sizeof(req))
		return -1;
	c->t_send = mono_ns();
	if (write_all(c->fd, req, (size_t)rl) != 0) {
		p_close(ps, c);
		return -1;
	}
	c->busy = true;
	c->seq = seq;
	c->len = 0;
	ps->sent++;
	return 0;
}

/* Reads the answer on c; true when it is complete (c is idle again). */
static bool
p_readable(poster *ps, pconn *c)
{
	ssize_t r;
	const char *he, *cl;
	size_t hl, need;
	bool chunked, close_after;
	int status;
	char *head;

	r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (r <= 0) {
		if (c->busy) {
			p_error(ps, "connection closed before the answer", 35);
			ps->answered++;
			c->busy = false;
			p_close(ps, c);
			return true;
		}
		p_close(ps, c); /* idle keep-alive closed by the server */
		return false;
	}
	if (!c->busy) {
		p_close(ps, c);
		return false;
	}
	c->len += (size_t)r;
	c->buf[c->len] = '\0';
	he = memmem(c->buf, c->len, "\r\n\r\n", 4);
	if (he == NULL) {
		if (c->len >= sizeof(c->buf) - 1)
			goto too_big;
		return false;
	}
	hl = (size_t)(he - c->buf) + 4;
	head = strndup(c->buf, hl);
	if (head == NULL)
		abort();
	chunked = strcasestr(head, "\r\ntransfer-encoding: chunked") != NULL;
	close_after = strcasestr(head, "\r\nconnection: close") != NULL;
	cl = strcasestr(head, "\r\ncontent-length:");
	need = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
	status = c->len > 12 ? atoi(c->buf + 9) : 0;
	free(head);
	if (chunked) {
		if (memmem(c->buf + hl, c->len - hl, "0\r\n\r\n", 5) == NULL) {
			if (c->len >= sizeof(c->buf) - 1)
				goto too_big;
			return false;
		}
	} else if (c->len < hl + need) {
		if (c->len >= sizeof(c->buf) - 1)
			goto too_big;
		return false;
	}
	{
		uint64_t us = (uint64_t)(mono_ns() - c->t_send) / 1000;

		ps->post_hist[hist_index(us)]++;
		if (us > ps->post_max)
			ps->post_max = us;
		if (c->seq >= ps->seq0 && c->seq - ps->seq0 < ps->count)
			ps->answer_us[c->seq - ps->seq0] = (int64_t)us;
	}
	ps->answered++;
	if (status == 201) {
		ps->ok++;
	} else {
		if (status == 429)
			ps->s429++;
		else if (status >= 400 && status < 500)
			ps->s4xx++;
		else if (status >= 500)
			ps->s5xx++;
		else
			ps->other++;
		p_error(ps, c->buf, c->len);
	}
	c->busy = false;
	c->len = 0;
	if (close_after)
		p_close(ps, c);
	return true;
too_big:
	p_error(ps, "answer larger than 16 KiB", 25);
	ps->answered++;
	c->busy = false;
	p_close(ps, c);
	return true;
}

static int
cmd_post(int argc, char **argv)
{
	long long port = 0, room = 0, count = 0, nconns = 16, seq0 = 0;
	long long limit = 600;
	double rate = 0;
	const char *tokfile = NULL;
	poster ps = { 0 };
	pconn *conns;
	int64_t t0, t_first = 0, t_last = 0, start_real, deadline;
	uint64_t next = 0;
	int opt;

	while ((opt = getopt(argc, argv, "p:f:r:n:R:C:q:T:")) != -1) {
		switch (opt) {
		case 'p': port = num_arg(optarg, "-p", 1, 65535); break;
		case 'f': tokfile = optarg; break;
		case 'r': room = num_arg(optarg, "-r", 1, INT64_MAX / 2); break;
		case 'n': count = num_arg(optarg, "-n", 1, 10000000); break;
		case 'R': rate = real_arg(optarg, "-R"); break;
		case 'C': nconns = num_arg(optarg, "-C", 1, 1024); break;
		case 'q': seq0 = num_arg(optarg, "-q", 0, MAX_SEQ - 1); break;
		case 'T': limit = num_arg(optarg, "-T", 1, 86400); break;
		default: die("post: bad option (see the top of relay_load.c)");
		}
	}
	if (port == 0 || room == 0 || count == 0 || tokfile == NULL)
		die("post needs -p PORT -f TOKENS -r ROOM -n COUNT");
	if (seq0 + count > MAX_SEQ)
		die("-q + -n must stay below %u", MAX_SEQ);
	signal(SIGPIPE, SIG_IGN);
	set_limit((int)limit + 5);
	ps.port = (int)port;
	ps.room = room;
	ps.tokens = read_tokens(tokfile, &ps.ntokens);
	ps.seq0 = (uint32_t)seq0;
	ps.count = (size_t)count;
	ps.answer_us = xmalloc((size_t)count * sizeof(int64_t));
	for (long long i = 0; i < count; i++)
		ps.answer_us[i] = -1;
	ps.ep = epoll_create1(EPOLL_CLOEXEC);
	if (ps.ep < 0)
		die("epoll: %s", strerror(errno));
	conns = xcalloc((size_t)nconns, sizeof(*conns));
	for (long long i = 0; i < nconns; i++) {
		conns[i].fd = -1;
		if (p_connect(&ps, &conns[i], (size_t)i) != 0)
			die("cannot connect to 127.0.0.1:%lld: %s", port,
			    strerror(errno));
	}
	t0 = mono_ns();
	start_real = real_ns();
	deadline = t0 + limit * 1000000000LL;
	while (ps.answered < (uint64_t)count && mono_ns() < deadline) {
		struct epoll_event evs[64];
		struct timespec ts = { 0, 100000000 };
		int64_t now = mono_ns();
		bool idle_left = false;
		int k;

		while (next < (uint64_t)count) {
			int64_t due = rate > 0
			    ? t0 + (int64_t)((double)next * 1e9 / rate)
			    : now;
			size_t i;

			if (due > now)
				break;
			for (i = 0; i < (size_t)nconns && conns[i].busy; i++)
				;
			if (i == (size_t)nconns)
				break;
			{
				uint64_t lag = (uint64_t)(now - due) / 1000;

				ps.lag_hist[hist_index(lag)]++;
				if (lag > ps.lag_max)
					ps.lag_max = lag;
			}
			if (p_send(&ps, &conns[i], i,
			        (uint32_t)(seq0 + next)) != 0) {
				/* one more try on a fresh connection */
				if (p_send(&ps, &conns[i], i,
				        (uint32_t)(seq0 + next)) != 0) {
					p_error(&ps, "cannot send", 11);
					ps.answered++;
				}
			}
			if (t_first == 0)
				t_first = real_ns();
			t_last = real_ns();
			next++;
			now = mono_ns();
		}
		for (long long i = 0; i < nconns; i++)
			idle_left |= !conns[i].busy;
		if (next < (uint64_t)count && idle_left && rate > 0) {
			int64_t due = t0 + (int64_t)((double)next * 1e9 / rate);
			int64_t wait = due - mono_ns();

			if (wait < 0)
				wait = 0;
			if (wait < 100000000) {
				ts.tv_sec = 0;
				ts.tv_nsec = (long)wait;
			}
		}
		k = epoll_pwait2(ps.ep, evs, 64, &ts, NULL);
		if (k < 0 && errno != EINTR)
			die("epoll_pwait2: %s", strerror(errno));
		for (int j = 0; j < k; j++) {
			pconn *c = &conns[evs[j].data.u64];

			if (c->fd >= 0)
				(void)p_readable(&ps, c);
		}
	}
	{
		double secs = (double)(t_last - t_first) / 1e9;

		fprintf(stdout,
		    "{\"count\":%lld,\"sent\":%" PRIu64 ",\"answered\":%" PRIu64
		    ",\"ok\":%" PRIu64 ",\"s4xx\":%" PRIu64 ",\"s429\":%" PRIu64
		    ",\"s5xx\":%" PRIu64 ",\"other\":%" PRIu64
		    ",\"errors\":%" PRIu64 ",\"timed_out\":%s,\"rate_asked\":%g"
		    ",\"send_secs\":%.3f,\"rate\":%.1f,\"start_ns\":%" PRId64
		    ",\"first_ns\":%" PRId64 ",\"last_ns\":%" PRId64
		    ",\"conns\":%lld,",
		    count, ps.sent, ps.answered, ps.ok, ps.s4xx, ps.s429,
		    ps.s5xx, ps.other, ps.errors,
		    ps.answered < (uint64_t)count ? "true" : "false", rate,
		    secs,
		    secs > 0 && ps.sent > 1 ? (double)(ps.sent - 1) / secs : 0.0,
		    start_real, t_first, t_last, nconns);
		json_hist(stdout, "post_us", ps.post_hist, 0, ps.post_max);
		fputc(',', stdout);
		json_hist(stdout, "lag_us", ps.lag_hist, 0, ps.lag_max);
		fputs(",\"first_error\":", stdout);
		json_str(stdout, ps.first_error);
		fputs(",\"answer_us\":[", stdout);
		for (long long i = 0; i < count; i++)
			fprintf(stdout, "%s%" PRId64, i ? "," : "",
			    ps.answer_us[i]);
		fputs("]}\n", stdout);
		fflush(stdout);
	}
	return ps.answered < (uint64_t)count ? 1 : 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: relay_load recv|post ... (see the top of "
		    "bench/relay_load.c)");
	if (strcmp(argv[1], "recv") == 0)
		return cmd_recv(argc - 1, argv + 1);
	if (strcmp(argv[1], "post") == 0)
		return cmd_post(argc - 1, argv + 1);
	die("unknown mode '%s': recv or post", argv[1]);
	return 2;
}
