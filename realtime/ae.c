/* ae: file events, timers and a before-sleep hook over epoll. */
#include "ae.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* Events taken from the kernel per wait. */
#define AE_BATCH 512

typedef struct ae_file {
	int mask;
	ae_file_fn *rfn, *wfn;
	void *data;
} ae_file;

typedef struct ae_timer {
	long long id; /* 0 once deleted: freed by the next timer pass */
	int64_t when;
	ae_timer_fn *fn;
	void *data;
	struct ae_timer *next;
} ae_timer;

struct ae_loop {
	int epfd;
	int setsize;
	ae_file *files;
	struct epoll_event *fired;
	ae_timer *timers;
	long long next_timer_id;
	ae_hook_fn *before_sleep;
	void *before_sleep_data;
	bool stop;
};

int64_t
ae_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ae_loop *
ae_new(int setsize)
{
	ae_loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		abort();
	l->files = calloc((size_t)setsize, sizeof(*l->files));
	l->fired = calloc(AE_BATCH, sizeof(*l->fired));
	if (l->files == NULL || l->fired == NULL)
		abort();
	l->setsize = setsize;
	l->next_timer_id = 1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int saved = errno;

		free(l->files);
		free(l->fired);
		free(l);
		errno = saved;
		return NULL;
	}
	return l;
}

void
ae_free(ae_loop *l)
{
	ae_timer *t, *next;

	if (l == NULL)
		return;
	for (t = l->timers; t != NULL; t = next) {
		next = t->next;
		free(t);
	}
	close(l->epfd);
	free(l->files);
	free(l->fired);
	free(l);
}

static uint32_t
epoll_bits(int mask)
{
	uint32_t ev = 0;

	if (mask & AE_READABLE)
		ev |= EPOLLIN;
	if (mask & AE_WRITABLE)
		ev |= EPOLLOUT;
	return ev;
}

/* One epoll registration per descriptor carries both directions: adding or
 * dropping one direction is a MOD of the combined mask. */
static int
backend_set(ae_loop *l, int fd, int old, int mask)
{
	struct epoll_event ee = { .events = epoll_bits(mask), .data.fd = fd };
	int op = old == AE_NONE ? EPOLL_CTL_ADD
	    : mask == AE_NONE   ? EPOLL_CTL_DEL
	                        : EPOLL_CTL_MOD;

	return epoll_ctl(l->epfd, op, fd, &ee);
}

int
ae_add(ae_loop *l, int fd, int mask, ae_file_fn *fn, void *data)
{
	ae_file *f;
	int want;

	if (fd < 0 || fd >= l->setsize) {
		errno = ERANGE;
		return -1;
	}
	f = &l->files[fd];
	want = f->mask | mask;
	if (want != f->mask && backend_set(l, fd, f->mask, want) != 0)
		return -1;
	f->mask = want;
	if (mask & AE_READABLE)
		f->rfn = fn;
	if (mask & AE_WRITABLE)
		f->wfn = fn;
	f->data = data;
	return 0;
}

void
ae_del(ae_loop *l, int fd, int mask)
{
	ae_file *f;
	int want;

	if (fd < 0 || fd >= l->setsize)
		return;
	f = &l->files[fd];
	want = f->mask & ~mask;
	if (want == f->mask)
		return;
	/* DEL fails only for a descriptor already closed, which epoll has
	 * forgotten by itself. */
	(void)backend_set(l, fd, f->mask, want);
	f->mask = want;
	if (want == AE_NONE)
		*f = (ae_file){ 0 };
}

int
ae_mask(const ae_loop *l, int fd)
{
	if (fd < 0 || fd >= l->setsize)
		return AE_NONE;
	return l->files[fd].mask;
}

long long
ae_timer_add(ae_loop *l, long ms, ae_timer_fn *fn, void *data)
{
	ae_timer *t = calloc(1, sizeof(*t));

	if (t == NULL)
		abort();
	t->id = l->next_timer_id++;
	t->when = ae_now_ms() + (ms > 0 ? ms : 0);
	t->fn = fn;
	t->data = data;
	t->next = l->timers;
	l->timers = t;
	return t->id;
}

void
ae_timer_del(ae_loop *l, long long id)
{
	for (ae_timer *t = l->timers; t != NULL; t = t->next)
		if (t->id == id) {
			t->id = 0;
			return;
		}
}

void
ae_set_before_sleep(ae_loop *l, ae_hook_fn *fn, void *data)
{
	l->before_sleep = fn;
	l->before_sleep_data = data;
}

void
ae_stop(ae_loop *l)
{
	l->stop = true;
}

/* Milliseconds until the nearest timer; -1 (block) when there is none. */
static int
wait_ms(const ae_loop *l)
{
	int64_t now = ae_now_ms(), best = -1;

	for (const ae_timer *t = l->timers; t != NULL; t = t->next) {
		int64_t d;

		if (t->id == 0)
			continue;
		d = t->when > now ? t->when - now : 0;
		if (best < 0 || d < best)
			best = d;
	}
	return best > 60000 ? 60000 : (int)best;
}

static void
run_timers(ae_loop *l)
{
	/* Timers added by a callback wait for the next pass, so a callback
	 * that re-adds itself with 0 ms cannot starve the loop. */
	long long max_id = l->next_timer_id - 1;
	ae_timer **pp = &l->timers, *t;

	for (t = l->timers; t != NULL; t = t->next) {
		int64_t now = ae_now_ms();
		long next;

		if (t->id == 0 || t->id > max_id || t->when > now)
			continue;
		next = t->fn(l, t->id, t->data);
		if (t->id == 0) /* deleted itself */
			continue;
		if (next == AE_NOMORE)
			t->id = 0;
		else
			t->when = ae_now_ms() + (next > 0 ? next : 0);
	}
	while ((t = *pp) != NULL) {
		if (t->id == 0) {
			*pp = t->next;
			free(t);
		} else {
			pp = &t->next;
		}
	}
}

static int
process_events(ae_loop *l, int timeout)
{
	int n = epoll_wait(l->epfd, l->fired, AE_BATCH, timeout);

	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++) {
		uint32_t ev = l->fired[i].events;
		int fd = l->fired[i].data.fd, mask = 0;
		ae_file *f = &l->files[fd];

		/* An error or hangup wakes whichever direction is waiting,
		 * so its handler meets the error on its next call. */
		if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
			mask |= AE_READABLE;
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			mask |= AE_WRITABLE;
		if ((mask & AE_READABLE) && (f->mask & AE_READABLE))
			f->rfn(l, fd, f->data, AE_READABLE);
		/* The read handler may have dropped the interest: look
		 * again. */
		if ((mask & AE_WRITABLE) && (f->mask & AE_WRITABLE))
			f->wfn(l, fd, f->data, AE_WRITABLE);
	}
	return 0;
}

int
ae_run(ae_loop *l)
{
	l->stop = false;
	while (!l->stop) {
		if (l->before_sleep != NULL)
			l->before_sleep(l, l->before_sleep_data);
		if (l->stop)
			break;
		if (process_events(l, wait_ms(l)) != 0)
			return -1;
		run_timers(l);
	}
	return 0;
}
