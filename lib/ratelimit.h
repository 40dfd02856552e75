/* ratelimit: fixed-window counters in Redis, per tenant.
 *
 * A hit increments "roost:{tenant}:rl:<bucket>:<who>:<window>" and sets
 * its expiry in one atomic step (a Lua script), so the window index in
 * the key makes the reset time exact and counters clean themselves up.
 */
#ifndef ROOST_RATELIMIT_H
#define ROOST_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "error.h"
#include "kv.h"

typedef struct rl_result {
	int64_t limit;
	int64_t remaining; /* never negative */
	int64_t reset;     /* epoch seconds when the window ends */
	bool limited;      /* this hit went over the limit */
} rl_result;

/* Counts one hit for (bucket, who) against limit per window_s seconds.
 * who is hashed into the key, so any bytes are safe. R_SUCCESS with *out
 * filled, or R_UNAVAILABLE when Redis cannot be reached: the caller decides
 * whether that fails open or closed. */
rerr ratelimit_hit(kv *k, arena *a, const char *tenant, const char *bucket,
    const char *who, int64_t limit, int64_t window_s, rl_result *out);

/* The pieces of ratelimit_hit, for a caller that counts a hit in a
 * script of its own (one round trip with other commands): the key of
 * (bucket, who) in the current window (*window gets the window's index),
 * the INCR-and-EXPIRE step as Lua over KEYS[key_index] with the expiry in
 * ARGV[1], and the result of a count. */
char *ratelimit_key(arena *a, const char *tenant, const char *bucket,
    const char *who, int64_t window_s, int64_t *window);
#define RATELIMIT_LUA_STEP(k)                                                  \
	"local n = redis.call('INCR', KEYS[" k "]) "                           \
	"if n == 1 then redis.call('EXPIRE', KEYS[" k "], ARGV[1]) end "
char *ratelimit_ttl(arena *a, int64_t window_s);
void ratelimit_fill(int64_t count, int64_t limit, int64_t window,
    int64_t window_s, rl_result *out);

/* Failure counters (sign-in, docs/auth.md): unlike ratelimit_hit, which
 * counts every hit, these count only attempts that turn out to fail. An
 * attempt reserves a hit on each counter before the costly work, in one
 * atomic step that first refuses when any counter is already at its
 * limit (then nothing is counted); an attempt that did not fail gives its
 * hits back. So at most `limit` failures per window pass, however many
 * attempts run at once, and refused or successful ones count for nothing.
 * The caller fills bucket, who (hashed into the key, any bytes) and limit;
 * ratelimit_reserve fills the rest. */
typedef struct rl_counter {
	const char *bucket;
	const char *who;
	int64_t limit;
	const char *key;
	int64_t window;
	int64_t count; /* after the reservation, or as found when refused */
} rl_counter;

#define RL_MAX_COUNTERS 4

/* Reserves one hit on each of the n (1..RL_MAX_COUNTERS) counters, all of
 * window_s seconds. R_SUCCESS with *over = -1 when all were incremented,
 * or *over = i when counter i was at its limit and nothing was counted;
 * R_UNAVAILABLE when Redis cannot be reached. */
rerr ratelimit_reserve(kv *k, arena *a, const char *tenant, rl_counter *cs,
    int n, int64_t window_s, int *over);

/* Gives back the hits a successful ratelimit_reserve counted. R_SUCCESS
 * or R_UNAVAILABLE (the hits then stay counted until the window ends). */
rerr ratelimit_release(kv *k, arena *a, const rl_counter *cs, int n);

#endif
