/* redis_epoll: plugs a hiredis 0.14 async context into the ae loop.
 *
 * hiredis ships adapters for libev, libevent, libuv and Redis's own ae,
 * none for a bare epoll loop (PITFALLS.md). An adapter is five hooks
 * hiredis calls when it wants to start or stop reading or writing, and
 * when the context goes away. Read and write interest are tracked
 * together by ae, so adding one direction is an EPOLL_CTL_MOD of the
 * descriptor's combined mask, never a second registration.
 *
 * Ownership: the adapter's state is freed by hiredis's cleanup hook, which
 * runs when the context is freed (redisAsyncFree, or hiredis itself after a
 * disconnect or a failed connect). The context remains the caller's.
 */
#ifndef ROOST_REDIS_EPOLL_H
#define ROOST_REDIS_EPOLL_H

#include <hiredis/async.h>

#include "ae.h"

/* Attaches ac to loop. 0, or -1 when ac already has an adapter or its
 * descriptor is out of the loop's range. */
int redis_epoll_attach(ae_loop *loop, redisAsyncContext *ac);

#endif
