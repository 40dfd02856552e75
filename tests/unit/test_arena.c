/* Unit tests: lib/arena and lib/buf. */
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "buf.h"
#include "tap.h"

static int cleaned[4], order[4], n_order;

static void
mark(void *p)
{
	int i = (int)(intptr_t)((int *)p - cleaned);

	cleaned[i]++;
	order[n_order++] = i;
}

int
main(void)
{
	arena *a = arena_new();
	size_t base = arena_footprint(a);
	char *s, *big;
	buf b = BUF_INIT;

	/* alignment and distinctness */
	void *p1 = arena_alloc(a, 1), *p2 = arena_alloc(a, 1);
	ok(((uintptr_t)p1 % 16) == 0 && ((uintptr_t)p2 % 16) == 0,
	    "allocations are 16-byte aligned");
	ok(p1 != p2, "two allocations differ");
	ok(arena_alloc(a, 0) != arena_alloc(a, 0),
	    "zero-size allocations are unique");

	s = arena_strndup(a, "ab\0cd", 5);
	ok(s[2] == '\0' && s[3] == 'c' && s[5] == '\0',
	    "strndup copies embedded NULs and terminates");
	is_str(arena_printf(a, "%d-%s", 42, "x"), "42-x", "printf");
	is_str(arena_strdup(a, ""), "", "strdup of empty string");

	int *z = arena_calloc(a, 100, sizeof(int));
	int allzero = 1;
	for (int i = 0; i < 100; i++)
		allzero &= z[i] == 0;
	ok(allzero, "calloc zeroes");

	/* a large allocation gets its own block, released at reset */
	big = arena_alloc(a, 1 << 20);
	memset(big, 'x', 1 << 20);
	ok(arena_footprint(a) >= base + (1 << 20), "large block accounted");

	/* cleanups run once, last registered first, at reset */
	arena_on_cleanup(a, mark, &cleaned[0]);
	arena_on_cleanup(a, mark, &cleaned[1]);
	arena_on_cleanup(a, mark, NULL);
	arena_reset(a);
	is_int(cleaned[0], 1, "first cleanup ran once");
	is_int(cleaned[1], 1, "second cleanup ran once");
	ok(n_order == 2 && order[0] == 1 && order[1] == 0,
	    "cleanups run in LIFO order; NULL registers nothing");
	is_int(arena_footprint(a), base, "reset returns to the first block");

	/* thousands of request-like cycles do not grow the footprint */
	for (int r = 0; r < 5000; r++) {
		for (int i = 0; i < 50; i++)
			(void)arena_alloc(a, 300);
		arena_on_cleanup(a, free, malloc(64));
		arena_reset(a);
	}
	is_int(arena_footprint(a), base, "footprint stable over 5000 cycles");
	arena_on_cleanup(a, mark, &cleaned[2]);
	arena_free(a);
	is_int(cleaned[2], 1, "free runs pending cleanups");
	arena_free(NULL);
	ok(1, "arena_free(NULL) is a no-op");

	/* buf */
	buf_puts(&b, "hello");
	buf_putc(&b, ' ');
	buf_printf(&b, "%s %d", "world", 7);
	is_str(b.data, "hello world 7", "buf appends and formats");
	is_int(b.len, 13, "buf length");
	for (int i = 0; i < 100000; i++)
		buf_putc(&b, 'y');
	is_int(b.len, 100013, "buf grows");
	buf_reset(&b);
	ok(b.data == NULL && b.cap == 0, "reset releases a buffer over 64 KiB");
	buf_puts(&b, "abc");
	buf_reset(&b);
	ok(b.len == 0 && b.cap > 0 && b.data[0] == '\0',
	    "reset keeps a small buffer's memory");
	buf_free(&b);
	ok(b.data == NULL && b.len == 0, "free empties");
	return tap_done();
}
