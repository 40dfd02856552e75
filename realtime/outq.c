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

struct outq_chunk {
	outq_chunk *next;
	size_t len;  /* bytes stored */
	size_t sent; /* bytes of them written */
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
	c = malloc(sizeof(*c) + cap);
	if (c == NULL)
		abort();
	c->cap = cap;
	return c;
}

static void
chunk_free(outq_chunk *c)
{
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
}

void
outq_append(outq *q, const void *p, size_t n)
{
	outq_chunk *t = q->tail;

	if (n == 0)
		return;
	if (t != NULL && t->cap - t->len >= n) {
		memcpy(t->data + t->len, p, n);
		t->len += n;
	} else {
		size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;

		t = chunk_new(cap);
		t->next = NULL;
		t->len = n;
		t->sent = 0;
		memcpy(t->data, p, n);
		if (q->tail != NULL)
			q->tail->next = t;
		else
			q->head = t;
		q->tail = t;
	}
	q->pending += n;
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
			iov[n].iov_base = c->data + c->sent;
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
