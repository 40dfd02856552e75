/* ratelimit: INCR + EXPIRE in one Lua step per hit. */
#include "ratelimit.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "token.h"

/* Returns the new count; sets the expiry when the key is new. The expiry
 * is a little past the window's end so a slow clock never resets early. */
static const char script[] = RATELIMIT_LUA_STEP("1") "return n";

char *
ratelimit_key(arena *a, const char *tenant, const char *bucket, const char *who,
    int64_t window_s, int64_t *window)
{
	char who_hash[65];

	*window = (int64_t)time(NULL) / window_s;
	token_sha256_hex(who, strlen(who), who_hash);
	who_hash[32] = '\0'; /* 128 bits keep keys short and distinct */
	return kv_key(a, tenant,
	    arena_printf(a, "rl:%s:%s:%" PRId64, bucket, who_hash, *window));
}

char *
ratelimit_ttl(arena *a, int64_t window_s)
{
	return arena_printf(a, "%" PRId64, window_s + 5);
}

void
ratelimit_fill(int64_t count, int64_t limit, int64_t window, int64_t window_s,
    rl_result *out)
{
	out->limit = limit;
	out->remaining = count >= limit ? 0 : limit - count;
	out->reset = (window + 1) * window_s;
	out->limited = count > limit;
}

rerr
ratelimit_hit(kv *k, arena *a, const char *tenant, const char *bucket,
    const char *who, int64_t limit, int64_t window_s, rl_result *out)
{
	const char *argv[5];
	int64_t window;
	redisReply *r;
	rerr e;

	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = "1";
	argv[3] = ratelimit_key(a, tenant, bucket, who, window_s, &window);
	argv[4] = ratelimit_ttl(a, window_s);
	r = kv_cmdv(k, a, &e, 5, argv, NULL);
	if (r == NULL || e != R_SUCCESS || r->type != REDIS_REPLY_INTEGER)
		return R_UNAVAILABLE;
	ratelimit_fill(r->integer, limit, window, window_s, out);
	return R_SUCCESS;
}

/* KEYS: the counters; ARGV[1] the expiry, ARGV[1 + i] the limit of
 * KEYS[i]. Returns {over, count 1, ..., count n}: over is 0 and the counts
 * are the incremented ones, or over is the first counter at its limit and
 * the counts are as found (nothing incremented). */
static const char reserve_script[] =
    "local c, over = {}, 0 "
    "for i = 1, #KEYS do "
    "c[i] = tonumber(redis.call('GET', KEYS[i]) or '0') "
    "if over == 0 and c[i] >= tonumber(ARGV[i + 1]) then over = i end "
    "end "
    "if over == 0 then for i = 1, #KEYS do "
    "c[i] = redis.call('INCR', KEYS[i]) "
    "if c[i] == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end "
    "end end "
    "return {over, unpack(c)}";

/* A key that expired meanwhile is not brought back as -1 without expiry. */
static const char release_script[] =
    "for i = 1, #KEYS do "
    "if redis.call('EXISTS', KEYS[i]) == 1 then "
    "redis.call('DECR', KEYS[i]) end "
    "end return 0";

rerr
ratelimit_reserve(kv *k, arena *a, const char *tenant, rl_counter *cs, int n,
    int64_t window_s, int *over)
{
	const char *argv[4 + 2 * RL_MAX_COUNTERS];
	int argc = 0;
	redisReply *r;
	rerr e;

	assert(n >= 1 && n <= RL_MAX_COUNTERS);
	argv[argc++] = "EVAL";
	argv[argc++] = reserve_script;
	argv[argc++] = arena_printf(a, "%d", n);
	for (int i = 0; i < n; i++)
		argv[argc++] = cs[i].key = ratelimit_key(a, tenant,
		    cs[i].bucket, cs[i].who, window_s, &cs[i].window);
	argv[argc++] = ratelimit_ttl(a, window_s);
	for (int i = 0; i < n; i++)
		argv[argc++] = arena_printf(a, "%" PRId64, cs[i].limit);
	r = kv_cmdv(k, a, &e, argc, argv, NULL);
	if (r == NULL || e != R_SUCCESS || r->type != REDIS_REPLY_ARRAY ||
	    r->elements != (size_t)n + 1)
		return R_UNAVAILABLE;
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i]->type != REDIS_REPLY_INTEGER)
			return R_UNAVAILABLE;
	if (r->element[0]->integer < 0 || r->element[0]->integer > n)
		return R_UNAVAILABLE;
	for (int i = 0; i < n; i++)
		cs[i].count = r->element[i + 1]->integer;
	*over = (int)r->element[0]->integer - 1;
	return R_SUCCESS;
}

rerr
ratelimit_release(kv *k, arena *a, const rl_counter *cs, int n)
{
	const char *argv[3 + RL_MAX_COUNTERS];
	int argc = 0;
	redisReply *r;
	rerr e;

	assert(n >= 1 && n <= RL_MAX_COUNTERS);
	argv[argc++] = "EVAL";
	argv[argc++] = release_script;
	argv[argc++] = arena_printf(a, "%d", n);
	for (int i = 0; i < n; i++)
		argv[argc++] = cs[i].key;
	r = kv_cmdv(k, a, &e, argc, argv, NULL);
	if (r == NULL || e != R_SUCCESS)
		return R_UNAVAILABLE;
	return R_SUCCESS;
}
