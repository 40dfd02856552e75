/* outq: a connection's queue of bytes waiting for the socket.
 *
 * Bytes are appended into a list of heap chunks (small appends share a
 * chunk) and written with one sendmsg of many chunks when the socket
 * takes them. A frame that goes to many queues (a broadcast) is shared,
 * not copied: each queue holds a reference (a small node), and the frame
 * is freed when the last queue has written it (a constant frame, such as
 * a heartbeat, is one its creator keeps a reference to). The queue's owner
 * checks pending against its cap after each append: a client that does not read
 * is dropped, never waited for (STYLE.md rule 7). An empty queue holds no
 * memory.
 */
#ifndef ROOST_OUTQ_H
#define ROOST_OUTQ_H

#include <stddef.h>

typedef struct outq_chunk outq_chunk;
typedef struct outq_frame outq_frame;

typedef struct outq {
	outq_chunk *head, *tail;
	size_t pending; /* bytes not yet written */
} outq;

#define OUTQ_INIT                                                              \
	{                                                                      \
		NULL, NULL, 0                                                  \
	}

/* Copies p[0..n) to the end of the queue. Allocation failure aborts. */
void outq_append(outq *q, const void *p, size_t n);

/* A frame of p[0..n) with one reference, the caller's. */
outq_frame *outq_frame_new(const void *p, size_t n);
/* Drops a reference; the last one frees the frame. */
void outq_frame_unref(outq_frame *f);
/* Queues the frame's bytes by reference (the queue takes its own). */
void outq_append_frame(outq *q, outq_frame *f);

/* Writes queued bytes to the non-blocking socket fd, at most max_bytes in
 * this call. Returns 0 when the queue is empty, 1 when bytes remain (the
 * socket is full or max_bytes was reached: wait until it is writable), -1
 * when the socket failed (errno set; the queue is left as it was). */
int outq_flush(outq *q, int fd, size_t max_bytes);

/* Drops everything queued and releases the memory (small chunks are kept
 * for reuse, at most 4 MiB in all). */
void outq_clear(outq *q);

/* Frees the chunks and nodes kept for reuse (at exit, so leak checks stay
 * quiet). */
void outq_release_spares(void);

#endif
