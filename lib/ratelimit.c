/* ratelimit: INCR + EXPIRE in one Lua step per hit. */
#include "ratelimit.h"

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
