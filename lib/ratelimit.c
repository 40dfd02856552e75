/* ratelimit: INCR + EXPIRE in one Lua step per hit. */
#include "ratelimit.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "token.h"

/* Returns the new count; sets the expiry when the key is new. The expiry
 * is a little past the window's end so a slow clock never resets early. */
static const char script[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "return n";

rerr
ratelimit_hit(kv *k, arena *a, const char *tenant, const char *bucket,
    const char *who, int64_t limit, int64_t window_s, rl_result *out)
{
	int64_t now = (int64_t)time(NULL), window = now / window_s;
	char who_hash[65], ttl[24], *suffix, *key;
	const char *argv[5];
	redisReply *r;
	rerr e;

	token_sha256_hex(who, strlen(who), who_hash);
	who_hash[32] = '\0'; /* 128 bits keep keys short and distinct */
	suffix = arena_printf(a, "rl:%s:%s:%" PRId64, bucket, who_hash, window);
	key = kv_key(a, tenant, suffix);
	snprintf(ttl, sizeof(ttl), "%" PRId64, window_s + 5);
	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = "1";
	argv[3] = key;
	argv[4] = ttl;
	r = kv_cmdv(k, a, &e, 5, argv, NULL);
	if (r == NULL || e != R_SUCCESS || r->type != REDIS_REPLY_INTEGER)
		return R_UNAVAILABLE;
	out->limit = limit;
	out->remaining = r->integer >= limit ? 0 : limit - r->integer;
	out->reset = (window + 1) * window_s;
	out->limited = r->integer > limit;
	return R_SUCCESS;
}
