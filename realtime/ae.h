/* ae: a tiny event loop in the manner of Redis's ae (STYLE.md rule 7).
 *
 * File events (readable / writable interest per descriptor, one callback
 * for each direction and one user pointer per descriptor), timers (one-shot
 * or periodic: the callback returns the delay to the next run or AE_NOMORE),
 * and a before-sleep hook that runs just before the loop blocks, where the
 * owner does its deferred work (flushing output, freeing closed clients).
 * The backend is epoll, kept behind static functions in ae.c.
 *
 * Single-threaded. A callback may add or delete any event, including its
 * own; the loop re-checks the interest mask before each call. Descriptors
 * must be below the set size given to ae_new (the process's file limit).
 * The loop owns nothing but itself: ae_free does not close descriptors or
 * free user data.
 */
#ifndef ROOST_AE_H
#define ROOST_AE_H

#include <stdint.h>

#define AE_NONE 0
#define AE_READABLE 1
#define AE_WRITABLE 2

/* Returned by a timer callback that should not run again. */
#define AE_NOMORE (-1)

typedef struct ae_loop ae_loop;

/* mask says which of AE_READABLE / AE_WRITABLE fired. */
typedef void ae_file_fn(ae_loop *l, int fd, void *data, int mask);
/* Returns milliseconds until the next run, or AE_NOMORE. */
typedef long ae_timer_fn(ae_loop *l, long long id, void *data);
typedef void ae_hook_fn(ae_loop *l, void *data);

/* A loop for descriptors 0 .. setsize-1. NULL when epoll cannot be had
 * (errno set). The caller owns it: ae_free(). */
ae_loop *ae_new(int setsize);
void ae_free(ae_loop *l);

/* Adds interest in mask for fd with fn called for those directions; data
 * replaces the descriptor's user pointer. 0, or -1 (errno) when fd is out
 * of range or epoll refuses. Registering the same interest twice is fine. */
int ae_add(ae_loop *l, int fd, int mask, ae_file_fn *fn, void *data);
/* Removes interest in mask for fd (any of it may be absent). */
void ae_del(ae_loop *l, int fd, int mask);
/* The current interest of fd (AE_NONE when unknown). */
int ae_mask(const ae_loop *l, int fd);

/* A timer that first fires after ms milliseconds. Returns its id (> 0). */
long long ae_timer_add(ae_loop *l, long ms, ae_timer_fn *fn, void *data);
/* Cancels a timer; unknown ids are ignored. Safe inside any callback. */
void ae_timer_del(ae_loop *l, long long id);

/* The hook run before each wait (NULL: none). */
void ae_set_before_sleep(ae_loop *l, ae_hook_fn *fn, void *data);

/* Runs until ae_stop(). Returns 0, or -1 when epoll_wait fails for a
 * reason other than a signal (errno set). */
int ae_run(ae_loop *l);
/* Makes ae_run return after the current iteration. */
void ae_stop(ae_loop *l);

/* Monotonic milliseconds. */
int64_t ae_now_ms(void);

#endif
