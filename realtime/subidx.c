/* subidx: a chained hash of int64 keys to intrusive lists (subidx.h). */
#include "subidx.h"

#include <stdlib.h>

struct subidx_bucket {
	int64_t key;
	subidx_node *head;
	subidx_bucket *chain;
};

struct subidx {
	subidx_bucket **slots;
	size_t n_slots; /* a power of two */
	size_t n_keys;
};

static size_t
slot_of(const subidx *ix, int64_t key)
{
	uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;

	return (size_t)(h >> 32) & (ix->n_slots - 1);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		abort();
	return p;
}

subidx *
subidx_new(void)
{
	subidx *ix = xcalloc(1, sizeof(*ix));

	ix->n_slots = 64;
	ix->slots = xcalloc(ix->n_slots, sizeof(*ix->slots));
	return ix;
}

void
subidx_free(subidx *ix)
{
	if (ix == NULL)
		return;
	for (size_t i = 0; i < ix->n_slots; i++) {
		subidx_bucket *b = ix->slots[i], *next;

		for (; b != NULL; b = next) {
			next = b->chain;
			free(b);
		}
	}
	free(ix->slots);
	free(ix);
}

static void
grow(subidx *ix)
{
	size_t old_n = ix->n_slots;
	subidx_bucket **old = ix->slots;

	ix->n_slots = old_n * 2;
	ix->slots = xcalloc(ix->n_slots, sizeof(*ix->slots));
	for (size_t i = 0; i < old_n; i++) {
		subidx_bucket *b = old[i], *next;

		for (; b != NULL; b = next) {
			size_t s = slot_of(ix, b->key);

			next = b->chain;
			b->chain = ix->slots[s];
			ix->slots[s] = b;
		}
	}
	free(old);
}

static subidx_bucket *
find(const subidx *ix, int64_t key)
{
	subidx_bucket *b = ix->slots[slot_of(ix, key)];

	while (b != NULL && b->key != key)
		b = b->chain;
	return b;
}

void
subidx_link(subidx *ix, int64_t key, subidx_node *n, void *owner)
{
	subidx_bucket *b = find(ix, key);

	if (b == NULL) {
		size_t s;

		if (ix->n_keys >= ix->n_slots)
			grow(ix);
		s = slot_of(ix, key);
		b = xcalloc(1, sizeof(*b));
		b->key = key;
		b->chain = ix->slots[s];
		ix->slots[s] = b;
		ix->n_keys++;
	}
	n->owner = owner;
	n->bucket = b;
	n->prev = NULL;
	n->next = b->head;
	if (b->head != NULL)
		b->head->prev = n;
	b->head = n;
}

void
subidx_unlink(subidx *ix, subidx_node *n)
{
	subidx_bucket *b = n->bucket, **pp;

	if (b == NULL)
		return;
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		b->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	n->prev = n->next = NULL;
	n->bucket = NULL;
	if (b->head != NULL)
		return;
	/* The last listener left: forget the key. */
	for (pp = &ix->slots[slot_of(ix, b->key)]; *pp != b; pp = &(*pp)->chain)
		;
	*pp = b->chain;
	free(b);
	ix->n_keys--;
}

subidx_node *
subidx_first(const subidx *ix, int64_t key)
{
	subidx_bucket *b = find(ix, key);

	return b ? b->head : NULL;
}

size_t
subidx_keys(const subidx *ix)
{
	return ix->n_keys;
}
