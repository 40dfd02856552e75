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

#endif
