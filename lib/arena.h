/* arena: request-scoped memory with cleanups.
 *
 * One arena lives for one request. Everything allocated from it is released
 * at once by arena_reset() (between requests) or arena_free() (at exit).
 * Resources that are not arena memory (a PGresult, a json_object, a
 * redisReply) register a cleanup, which runs at reset, last registered first.
 * So an error path just returns: nothing it touched can leak.
 *
 * Allocation failure aborts: the sizes asked for are bounded by the request
 * limits, and a worker that cannot allocate a few KiB cannot answer anyway.
 */
#ifndef ROOST_ARENA_H
#define ROOST_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct arena arena;

/* A new, empty arena. Never NULL. The caller owns it: arena_free(). */
arena *arena_new(void);

/* Runs every cleanup, then releases the arena and all its memory. NULL is a
 * no-op. */
void arena_free(arena *a);

/* Runs every cleanup and forgets every allocation, keeping the first block
 * for reuse so a long-running worker does not churn malloc. */
void arena_reset(arena *a);

/* n bytes aligned for any type; uninitialised. n == 0 returns a valid
 * unique pointer. Lives until the next reset. */
void *arena_alloc(arena *a, size_t n);

/* nmemb * size zeroed bytes; aborts on overflow. */
void *arena_calloc(arena *a, size_t nmemb, size_t size);

/* Copies of strings, NUL-terminated, owned by the arena. strndup copies
 * exactly n bytes (which may include NULs) and appends a NUL. */
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);

/* printf into arena memory. */
char *arena_printf(arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Registers fn(ptr) to run at the next reset or free. ptr may be NULL, in
 * which case nothing is registered. */
void arena_on_cleanup(arena *a, void (*fn)(void *), void *ptr);

/* Bytes currently held in blocks (for tests and benchmarks). */
size_t arena_footprint(const arena *a);

#endif
