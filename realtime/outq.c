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

		t = malloc(sizeof(*t) + cap);
		if (t == NULL)
			abort();
		t->next = NULL;
		t->len = n;
		t->sent = 0;
		t->cap = cap;
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
	free(c);
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
