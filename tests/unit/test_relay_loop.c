/* Unit tests: realtime/ae (event loop), outq (output queue), subidx. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ae.h"
#include "outq.h"
#include "subidx.h"
#include "tap.h"

/* ------------------------------------------------------------------ ae */

typedef struct state {
	int fired_once, periodic, hooks, reads, writes;
	long long deleted_id;
	int pipe_r, pipe_w;
} state;

static long
once(ae_loop *l, long long id, void *data)
{
	state *s = data;

	(void)l;
	(void)id;
	s->fired_once++;
	return AE_NOMORE;
}

static long
periodic(ae_loop *l, long long id, void *data)
{
	state *s = data;

	(void)id;
	if (++s->periodic == 3)
		ae_stop(l);
	return 5;
}

static long
never(ae_loop *l, long long id, void *data)
{
	(void)l;
	(void)id;
	(void)data;
	abort();
}

static void
hook(ae_loop *l, void *data)
{
	state *s = data;

	(void)l;
	s->hooks++;
}

static void
on_read(ae_loop *l, int fd, void *data, int mask)
{
	state *s = data;
	char c;

	(void)mask;
	if (read(fd, &c, 1) == 1)
		s->reads++;
	/* Drop the interest from inside the callback. */
	ae_del(l, fd, AE_READABLE);
	ae_stop(l);
}

static void
on_write(ae_loop *l, int fd, void *data, int mask)
{
	state *s = data;

	(void)mask;
	s->writes++;
	ae_del(l, fd, AE_WRITABLE);
	ae_stop(l);
}

static void
test_ae(void)
{
	ae_loop *l = ae_new(1024);
	state s = { 0 };
	int p[2];
	int64_t t0;

	ok(l != NULL, "ae_new");
	ae_set_before_sleep(l, hook, &s);
	ae_timer_add(l, 1, once, &s);
	ae_timer_add(l, 2, periodic, &s);
	s.deleted_id = ae_timer_add(l, 3, never, &s);
	ae_timer_del(l, s.deleted_id);
	t0 = ae_now_ms();
	is_int(ae_run(l), 0, "runs until stopped");
	is_int(s.fired_once, 1, "a one-shot timer fires once");
	is_int(s.periodic, 3, "a periodic timer repeats");
	ok(ae_now_ms() - t0 >= 10, "periodic timer waits between runs");
	ok(s.hooks >= 3, "before-sleep runs each iteration");

	ok(pipe(p) == 0, "pipe");
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	is_int(ae_add(l, p[0], AE_READABLE, on_read, &s), 0, "watch read end");
	is_int(ae_mask(l, p[0]), AE_READABLE, "mask is readable");
	is_int(
	    ae_add(l, p[1], AE_WRITABLE, on_write, &s), 0, "watch write end");
	ae_run(l);
	is_int(s.writes, 1, "writable fires");
	is_int(ae_mask(l, p[1]), AE_NONE, "deleted in the callback");
	is_int(write(p[1], "x", 1), 1, "write a byte");
	ae_run(l);
	is_int(s.reads, 1, "readable fires");
	is_int(ae_mask(l, p[0]), AE_NONE, "read interest dropped");
	/* Read and write interest together on one descriptor: one epoll
	 * registration, changed with MOD. */
	is_int(ae_add(l, p[0], AE_READABLE, on_read, &s), 0, "re-add read");
	is_int(ae_add(l, p[0], AE_WRITABLE, on_write, &s), 0,
	    "add write to the same fd");
	is_int(ae_mask(l, p[0]), AE_READABLE | AE_WRITABLE, "both");
	ae_del(l, p[0], AE_WRITABLE);
	is_int(ae_mask(l, p[0]), AE_READABLE, "write dropped, read kept");
	ae_del(l, p[0], AE_READABLE);
	ok(ae_add(l, 5000, AE_READABLE, on_read, &s) != 0,
	    "fd beyond the set size is refused");
	close(p[0]);
	close(p[1]);
	ae_free(l);
}

/* ---------------------------------------------------------------- outq */

static void
test_outq(void)
{
	outq q = OUTQ_INIT;
	int sv[2];
	char *big, *back;
	size_t total = 0, got = 0;
	int sndbuf = 4096, rc;
	bool same = true;

	ok(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	is_int(outq_flush(&q, sv[0], 1 << 20), 0, "empty queue flushes");

	big = malloc(1 << 20);
	for (size_t i = 0; i < (1 << 20); i++)
		big[i] = (char)(i * 7 + 3);
	/* Small appends share chunks, large ones get their own. */
	for (size_t off = 0; off < 1000; off += 10) {
		outq_append(&q, big + total, 10);
		total += 10;
	}
	outq_append(&q, big + total, 300000);
	total += 300000;
	outq_append(&q, big + total, 5);
	total += 5;
	is_int(q.pending, total, "pending counts appended bytes");

	rc = outq_flush(&q, sv[0], 1 << 20);
	is_int(rc, 1, "a full socket leaves bytes queued");
	ok(q.pending > 0 && q.pending < total, "some went out: %zu left",
	    q.pending);

	back = malloc(total);
	while (got < total) {
		ssize_t n = read(sv[1], back + got, total - got);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		rc = outq_flush(&q, sv[0], 1 << 20);
		if (rc < 0)
			break;
	}
	is_int(got, total, "everything arrives");
	is_int(q.pending, 0, "nothing pending");
	for (size_t i = 0; i < total; i++)
		if (back[i] != big[i])
			same = false;
	ok(same, "in order and intact");
	ok(q.head == NULL && q.tail == NULL, "an empty queue holds no chunk");

	/* max_bytes: a budget per call. */
	outq_append(&q, big, 3000);
	is_int(outq_flush(&q, sv[0], 1000), 1, "budget reached: more later");
	ok(q.pending <= 2000, "at least the budget went out");
	outq_clear(&q);
	is_int(q.pending, 0, "clear empties");

	close(sv[1]);
	outq_append(&q, "x", 1);
	rc = outq_flush(&q, sv[0], 100);
	ok(rc == -1 && errno == EPIPE, "a closed peer is an error, no signal");
	outq_clear(&q);
	close(sv[0]);
	free(big);
	free(back);
}

/* Reads what fd has, up to want bytes, without waiting: the bytes were
 * flushed before, so a short count is a failure, not a hang. */
static size_t
read_all(int fd, char *to, size_t want)
{
	size_t got = 0;

	while (got < want) {
		ssize_t n = recv(fd, to + got, want - got, MSG_DONTWAIT);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void
test_outq_shared(void)
{
	static const char hb[] = ": hb\n\n";
	outq q1 = OUTQ_INIT, q2 = OUTQ_INIT;
	char frame_bytes[700], want[800], back[1600];
	outq_frame *f, *hb_frame;
	size_t wn = 0;
	int a[2], b[2];

	ok(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0 &&
	        socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0,
	    "socketpairs");
	for (size_t i = 0; i < sizeof(frame_bytes); i++)
		frame_bytes[i] = (char)('a' + i % 26);
	f = outq_frame_new(frame_bytes, sizeof(frame_bytes));
	/* A constant frame: its creator keeps a reference (the relay's
	 * heartbeat). */
	hb_frame = outq_frame_new(hb, sizeof(hb) - 1);
	/* q1: copy, frame, constant frame, copy; q2: the frame alone. A copy
	 * after a reference gets a chunk of its own (it must not write into
	 * the frame). */
	outq_append(&q1, "head", 4);
	outq_append_frame(&q1, f);
	outq_append_frame(&q1, hb_frame);
	outq_append(&q1, "tail", 4);
	outq_append_frame(&q2, f);
	outq_frame_unref(f); /* the queues hold it now */
	memcpy(want, "head", 4);
	wn = 4;
	memcpy(want + wn, frame_bytes, sizeof(frame_bytes));
	wn += sizeof(frame_bytes);
	memcpy(want + wn, hb, sizeof(hb) - 1);
	wn += sizeof(hb) - 1;
	memcpy(want + wn, "tail", 4);
	wn += 4;
	is_int(q1.pending, wn, "q1 counts every byte, shared or not");
	is_int(q2.pending, sizeof(frame_bytes), "q2 counts the frame");

	is_int(outq_flush(&q1, a[0], 1 << 20), 0, "q1 written");
	ok(read_all(a[1], back, wn) == wn && memcmp(back, want, wn) == 0,
	    "q1's bytes in order");
	outq_frame_unref(hb_frame); /* its creator's reference, the last */
	/* q1 let go of its reference: q2's is still good (ASan would see a
	 * use after free here), and the last one frees the frame (LSan would
	 * see a leak). */
	is_int(outq_flush(&q2, b[0], 1 << 20), 0, "q2 written after q1");
	ok(read_all(b[1], back, sizeof(frame_bytes)) == sizeof(frame_bytes) &&
	        memcmp(back, frame_bytes, sizeof(frame_bytes)) == 0,
	    "q2 has the frame intact");

	/* Cleared before writing: the reference goes too. */
	f = outq_frame_new("x", 1);
	outq_append_frame(&q1, f);
	outq_frame_unref(f);
	outq_clear(&q1);
	ok(q1.head == NULL && q1.pending == 0, "clear drops references");

	/* A partial write keeps its place inside a shared frame. */
	f = outq_frame_new(frame_bytes, sizeof(frame_bytes));
	outq_append_frame(&q1, f);
	outq_append_frame(&q1, f);
	outq_frame_unref(f);
	is_int(outq_flush(&q1, a[0], 500), 1, "a budget stops inside a frame");
	is_int(outq_flush(&q1, a[0], 1 << 20), 0, "the rest goes");
	ok(read_all(a[1], back, 2 * sizeof(frame_bytes)) ==
	            2 * sizeof(frame_bytes) &&
	        memcmp(back, frame_bytes, sizeof(frame_bytes)) == 0 &&
	        memcmp(back + sizeof(frame_bytes), frame_bytes,
	            sizeof(frame_bytes)) == 0,
	    "both copies arrive whole");
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

/* -------------------------------------------------------------- subidx */

typedef struct owner {
	subidx_node node[3];
	int id;
} owner;

static int
count(subidx *ix, int64_t key)
{
	int n = 0;

	for (subidx_node *p = subidx_first(ix, key); p != NULL; p = p->next)
		n++;
	return n;
}

static void
test_subidx(void)
{
	subidx *ix = subidx_new();
	owner *o = calloc(1000, sizeof(*o));
	int bad = 0;

	for (int i = 0; i < 1000; i++) {
		o[i].id = i;
		subidx_link(ix, i % 300, &o[i].node[0], &o[i]);
		subidx_link(ix, 100000 + i, &o[i].node[1], &o[i]);
	}
	is_int(subidx_keys(ix), 1300, "keys counted (the table grew)");
	is_int(count(ix, 7), 4, "four owners under key 7");
	is_int(count(ix, 100500), 1, "one under 100500");
	is_int(count(ix, -1), 0, "none under an unknown key");
	for (subidx_node *p = subidx_first(ix, 7); p != NULL; p = p->next)
		if (((owner *)p->owner)->id % 300 != 7)
			bad++;
	is_int(bad, 0, "owners are the right ones");

	/* Unlink the node being visited, taking next first. */
	for (subidx_node *p = subidx_first(ix, 7), *next; p != NULL; p = next) {
		next = p->next;
		if (((owner *)p->owner)->id == 307)
			subidx_unlink(ix, p);
	}
	is_int(count(ix, 7), 3, "unlinked while walking");
	subidx_unlink(ix, &o[307].node[0]);
	is_int(count(ix, 7), 3, "unlinking twice is harmless");
	for (int i = 0; i < 1000; i++) {
		subidx_unlink(ix, &o[i].node[0]);
		subidx_unlink(ix, &o[i].node[1]);
	}
	is_int(subidx_keys(ix), 0, "empty keys are forgotten");
	subidx_link(ix, 42, &o[0].node[2], &o[0]);
	is_int(count(ix, 42), 1, "linking again works");
	subidx_unlink(ix, &o[0].node[2]);
	subidx_free(ix);
	free(o);
}

int
main(void)
{
	test_ae();
	test_outq();
	test_outq_shared();
	outq_release_spares();
	test_subidx();
	return tap_done();
}
