/* buf: a growable byte buffer on the heap.
 *
 * The owner of the struct owns its memory and calls buf_free(). Used for
 * response bodies, which can be larger than is pleasant in an arena block.
 * data is always NUL-terminated after any append (not counted in len).
 */
#ifndef ROOST_BUF_H
#define ROOST_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
	char *data;
	size_t len;
	size_t cap;
} buf;

#define BUF_INIT                                                               \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

void buf_append(buf *b, const void *p, size_t n);
void buf_puts(buf *b, const char *s);
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Empties the buffer. Keeps up to 64 KiB of capacity for reuse; a larger
 * one is released so one big response does not pin memory forever. */
void buf_reset(buf *b);

/* Releases the memory; the buffer is empty and reusable afterwards. */
void buf_free(buf *b);

#endif
