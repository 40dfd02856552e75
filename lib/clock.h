/* clock: milliseconds, for deadlines (monotonic) and for timestamps that
 * other processes compare (wall clock). */
#ifndef ROOST_CLOCK_H
#define ROOST_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_ms(clockid_t which)
{
	struct timespec ts;

	clock_gettime(which, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* For timeouts and periods: never jumps. */
static inline int64_t
mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* Epoch milliseconds. */
static inline int64_t
wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

#endif
