/* outq: chunked output queue written with sendmsg (see outq.h). */
#include "outq.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Smallest chunk: one frame or a few, without a 16 KiB buffer per idle
 * subscriber when a broadcast is queued to thousands of them at once. */
#define CHUNK_MIN 4096
/* Chunks per sendmsg. */
#define IOV_BATCH 64

struct outq_frame {
	size_t refs;
	size_t len;
	char data[];
};

/* A chunk owns data[cap]; a reference node (cap 0) holds a frame. */
struct outq_chunk {
	outq_chunk *next;
	const char *bytes; /* data, or the frame's data */
	outq_frame *frame; /* the reference held (reference nodes only) */
	size_t len;        /* bytes stored */
	size_t sent;       /* bytes of them written */
	size_t cap;
	char data[];
};

/* Spare CHUNK_MIN chunks. A broadcast queues a chunk on every subscriber
 * and the flush frees them all moments later; through malloc that was a
 * heap grown and trimmed back on every event (measured: 62% of the relay's
 * CPU in brk with 2,000 subscribers, bench/relay_bench.py). Reusing them
 * keeps at most SPARE_MAX * 4 KiB around. The relay is one thread. */
#define SPARE_MAX 1024
static outq_chunk *spare;
static size_t n_spare;
/* Spare reference nodes (48 bytes each): a broadcast to 10,000
 * subscribers takes 10,000 of them and gives them back moments later. */
#define REF_SPARE_MAX 65536
static outq_chunk *ref_spare;
static size_t n_ref_spare;

static outq_chunk *
chunk_new(size_t cap)
{
	outq_chunk *c;

	if (cap == CHUNK_MIN && spare != NULL) {
		c = spare;
		spare = c->next;
		n_spare--;
		return c;
	}
	if (cap == 0 && ref_spare != NULL) {
		c = ref_spare;
		ref_spare = c->next;
		n_ref_spare--;
		return c;
	}
	c = malloc(sizeof(*c) + cap);
	if (c == NULL)
		abort();
	c->cap = cap;
	c->frame = NULL;
	c->bytes = c->data;
	return c;
}

static void
chunk_free(outq_chunk *c)
{
	if (c->frame != NULL) {
		outq_frame_unref(c->frame);
		c->frame = NULL;
	}
	if (c->cap == 0 && n_ref_spare < REF_SPARE_MAX) {
		c->next = ref_spare;
		ref_spare = c;
		n_ref_spare++;
		return;
	}
	if (c->cap == CHUNK_MIN && n_spare < SPARE_MAX) {
		c->next = spare;
		spare = c;
		n_spare++;
		return;
	}
	free(c);
}

void
outq_release_spares(void)
{
	while (spare != NULL) {
		outq_chunk *c = spare;

		spare = c->next;
		free(c);
	}
	n_spare = 0;
	while (ref_spare != NULL) {
		outq_chunk *c = ref_spare;

		ref_spare = c->next;
		free(c);
	}
	n_ref_spare = 0;
}

outq_frame *
outq_frame_new(const void *p, size_t n)
{
	outq_frame *f = malloc(sizeof(*f) + n);

	if (f == NULL)
		abort();
	f->refs = 1;
	f->len = n;
	memcpy(f->data, p, n);
	return f;
}

void
outq_frame_unref(outq_frame *f)
{
	if (f != NULL && --f->refs == 0)
		free(f);
}

static void
link_tail(outq *q, outq_chunk *t)
{
	t->next = NULL;
	if (q->tail != NULL)
		q->tail->next = t;
	else
		q->head = t;
	q->tail = t;
	q->pending += t->len;
}

void
outq_append_frame(outq *q, outq_frame *f)
{
	outq_chunk *t;

	if (f->len == 0)
		return;
	f->refs++;
	t = chunk_new(0);
	t->bytes = f->data;
	t->frame = f;
	t->len = f->len;
	t->sent = 0;
	link_tail(q, t);
}

void
outq_append(outq *q, const void *p, size_t n)
{
	outq_chunk *t = q->tail;

	if (n == 0)
		return;
	if (t != NULL && t->cap > 0 && t->cap - t->len >= n) {
		memcpy(t->data + t->len, p, n);
		t->len += n;
		q->pending += n;
		return;
	}
	t = chunk_new(n > CHUNK_MIN ? n : CHUNK_MIN);
	t->len = n;
	t->sent = 0;
	memcpy(t->data, p, n);
	link_tail(q, t);
}

static void
drop_head(outq *q)
{
	outq_chunk *c = q->head;

	q->head = c->next;
	if (q->head == NULL)
		q->tail = NULL;
	chunk_free(c);
}

int
outq_flush(outq *q, int fd, size_t max_bytes)
{
	size_t budget = max_bytes;

	while (q->head != NULL && budget > 0) {
		struct iovec iov[IOV_BATCH];
		struct msghdr msg = { .msg_iov = iov };
		size_t want = 0;
		ssize_t w;
		bool short_write;
		int n = 0;

		for (outq_chunk *c = q->head;
		     c != NULL && n < IOV_BATCH && want < budget; c = c->next) {
			size_t len = c->len - c->sent;

			if (len > budget - want)
				len = budget - want;
			iov[n].iov_base = (void *)(c->bytes + c->sent);
			iov[n].iov_len = len;
			want += len;
			n++;
		}
		msg.msg_iovlen = (size_t)n;
		w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -1;
		}
		q->pending -= (size_t)w;
		budget = (size_t)w >= budget ? 0 : budget - (size_t)w;
		short_write = (size_t)w < want;
		while (w > 0) {
			outq_chunk *c = q->head;
			size_t left = c->len - c->sent;

			if ((size_t)w >= left) {
				w -= (ssize_t)left;
				drop_head(q);
			} else {
				c->sent += (size_t)w;
				w = 0;
			}
		}
		if (short_write) /* the socket is full */
			return q->head == NULL ? 0 : 1;
	}
	return q->head == NULL ? 0 : 1;
}

void
outq_clear(outq *q)
{
	while (q->head != NULL)
		drop_head(q);
	q->pending = 0;
}
