/* arena: request-scoped bump allocator with LIFO cleanups. */
#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 16384u
#define ARENA_ALIGN 16u

typedef struct block {
	struct block *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	max_align_t data[];
} block;

typedef struct cleanup {
	struct cleanup *next;
	void (*fn)(void *);
	void *ptr;
} cleanup;

struct arena {
	block *head; /* current block; the first block is the list's tail */
	block *first;
	cleanup *cleanups;
};

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fputs("roost: out of memory\n", stderr);
		abort();
	}
	return p;
}

static block *
block_new(size_t size)
{
	block *b;

	if (size > SIZE_MAX - sizeof(block))
		abort();
	b = xmalloc(sizeof(block) + size);
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

arena *
arena_new(void)
{
	arena *a = xmalloc(sizeof(*a));

	a->first = a->head = block_new(ARENA_BLOCK);
	a->cleanups = NULL;
	return a;
}

static void
run_cleanups(arena *a)
{
	/* A cleanup may not allocate from the arena being reset. */
	while (a->cleanups != NULL) {
		cleanup *c = a->cleanups;

		a->cleanups = c->next;
		c->fn(c->ptr);
	}
}

void
arena_reset(arena *a)
{
	block *b, *next;

	run_cleanups(a);
	for (b = a->head; b != a->first; b = next) {
		next = b->next;
		free(b);
	}
	a->head = a->first;
	a->first->used = 0;
}

void
arena_free(arena *a)
{
	if (a == NULL)
		return;
	arena_reset(a);
	free(a->first);
	free(a);
}

void *
arena_alloc(arena *a, size_t n)
{
	block *b = a->head;
	size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

	if (need < n)
		abort();
	if (need == 0)
		need = ARENA_ALIGN;
	if (b->size - b->used < need) {
		/* Large requests get a block of their own; the current block
		 * keeps serving small ones only when it is the newest. */
		size_t size = need > ARENA_BLOCK / 4 ? need : ARENA_BLOCK;

		b = block_new(size);
		b->next = a->head;
		a->head = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += need;
	return p;
}

void *
arena_calloc(arena *a, size_t nmemb, size_t size)
{
	void *p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		abort();
	p = arena_alloc(a, nmemb * size);
	memset(p, 0, nmemb * size);
	return p;
}

char *
arena_strndup(arena *a, const char *s, size_t n)
{
	char *p;

	if (n == SIZE_MAX)
		abort();
	p = arena_alloc(a, n + 1);
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *
arena_vprintf(arena *a, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	char *p;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		abort();
	p = arena_alloc(a, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *
arena_printf(arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void
arena_on_cleanup(arena *a, void (*fn)(void *), void *ptr)
{
	cleanup *c;

	if (ptr == NULL)
		return;
	c = arena_alloc(a, sizeof(*c));
	c->fn = fn;
	c->ptr = ptr;
	c->next = a->cleanups;
	a->cleanups = c;
}

size_t
arena_footprint(const arena *a)
{
	size_t n = 0;

	for (const block *b = a->head; b != NULL; b = b->next)
		n += b->size;
	return n;
}
