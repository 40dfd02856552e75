/* kv: the worker's one Redis connection (hiredis, synchronous).
 *
 * One kv per process, kept across requests, with connect and command
 * timeouts. A NULL reply means the connection is dead (PITFALLS.md): the
 * context is dropped, the command fails with R_UNAVAILABLE, and the next
 * command reconnects.
 *
 * Commands are sent in argv form only: input never reaches a format string.
 * Every key is namespaced by tenant with a hash tag, "roost:{tenant}:...",
 * so a tenant's keys share one Redis Cluster slot.
 */
#ifndef ROOST_KV_H
#define ROOST_KV_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "arena.h"
#include "error.h"
#include "redis_url.h"

typedef struct kv kv;

/* Parses url (redis_url.h) and returns a handle, or NULL with a reason in
 * err. Does not connect. The caller owns it: kv_free(). */
kv *kv_new(const char *url, int timeout_ms, char *err, size_t errlen);
void kv_free(kv *k);

/* Connects when not connected. R_SUCCESS or R_UNAVAILABLE. */
rerr kv_ensure(kv *k);

/* Runs a command given as argc strings with lengths (lens may be NULL for
 * NUL-terminated strings). The reply is freed with the arena. A Redis error
 * reply is returned as is (type REDIS_REPLY_ERROR) with *err R_INTERNAL.
 * NULL with *err R_UNAVAILABLE when the connection is lost. */
redisReply *kv_cmdv(kv *k, arena *a, rerr *err, int argc, const char **argv,
    const size_t *lens);

/* Convenience: NULL-terminated list of C strings. */
redisReply *kv_cmd(kv *k, arena *a, rerr *err, const char *arg0, ...)
    __attribute__((sentinel));

/* PING, retried once on a fresh connection when the old one turns out to
 * be dead (Redis restarted between requests). R_SUCCESS or R_UNAVAILABLE. */
rerr kv_ping(kv *k, arena *a);

/* Where and as whom k connects (ROOST_REDIS_URL taken apart), for a
 * process that opens its own extra connections (roost-relay's
 * asynchronous subscriber, roostctl check's probe). Owned by k. */
const redis_url *kv_target(const kv *k);

/* Why the last connect or command failed, for roostctl check and logs:
 * "unreachable: HOST:PORT: Connection refused", "authentication failed
 * (WRONGPASS ...)", "PING refused: NOAUTH ..."; "" after a successful
 * connect. Never holds the password. Owned by k. */
const char *kv_last_error(const kv *k);

/* A separate connection subscribed to channels, for a blocking wait
 * (roost.fcgi serving GET /api/v1/events itself). */
typedef struct kv_sub kv_sub;

/* Connects and subscribes. NULL when Redis cannot be reached. */
kv_sub *kv_sub_open(kv *k, const char *const *channels, size_t n);

/* Waits up to timeout_ms for one published message. 1 with *channel and
 * *msg (length *len) in arena a; 0 when the time passed; -1 when the
 * connection failed (close it). */
int kv_sub_wait(kv_sub *s, arena *a, int timeout_ms, const char **channel,
    const char **msg, size_t *len);
void kv_sub_close(kv_sub *s);

/* "roost:{tenant}:suffix" in arena memory. */
char *kv_key(arena *a, const char *tenant, const char *suffix);

#endif
