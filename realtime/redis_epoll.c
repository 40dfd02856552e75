/* redis_epoll: hiredis async hooks on the ae loop (see redis_epoll.h). */
#include "redis_epoll.h"

#include <stdlib.h>

typedef struct redis_epoll {
	ae_loop *loop;
	redisAsyncContext *ac;
	int fd;
} redis_epoll;

static void
on_readable(ae_loop *l, int fd, void *data, int mask)
{
	redis_epoll *re = data;

	(void)l;
	(void)fd;
	(void)mask;
	redisAsyncHandleRead(re->ac);
}

static void
on_writable(ae_loop *l, int fd, void *data, int mask)
{
	redis_epoll *re = data;

	(void)l;
	(void)fd;
	(void)mask;
	redisAsyncHandleWrite(re->ac);
}

static void
add_read(void *p)
{
	redis_epoll *re = p;

	(void)ae_add(re->loop, re->fd, AE_READABLE, on_readable, re);
}

static void
del_read(void *p)
{
	redis_epoll *re = p;

	ae_del(re->loop, re->fd, AE_READABLE);
}

static void
add_write(void *p)
{
	redis_epoll *re = p;

	(void)ae_add(re->loop, re->fd, AE_WRITABLE, on_writable, re);
}

static void
del_write(void *p)
{
	redis_epoll *re = p;

	ae_del(re->loop, re->fd, AE_WRITABLE);
}

/* hiredis calls this before it closes the descriptor, so the descriptor
 * leaves epoll while it is still the same file. */
static void
cleanup(void *p)
{
	redis_epoll *re = p;

	ae_del(re->loop, re->fd, AE_READABLE | AE_WRITABLE);
	free(re);
}

int
redis_epoll_attach(ae_loop *loop, redisAsyncContext *ac)
{
	redis_epoll *re;

	if (ac->ev.data != NULL || ac->c.fd < 0)
		return -1;
	re = calloc(1, sizeof(*re));
	if (re == NULL)
		abort();
	re->loop = loop;
	re->ac = ac;
	re->fd = ac->c.fd;
	/* A descriptor the loop cannot hold would make every hook a no-op
	 * and the connection hang silently: refuse it up front. */
	if (ae_add(loop, re->fd, AE_NONE, on_readable, re) != 0) {
		free(re);
		return -1;
	}
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup = cleanup;
	ac->ev.data = re;
	return 0;
}
