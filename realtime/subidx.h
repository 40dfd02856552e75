/* subidx: which subscribers listen to a key (a room id, a user id).
 *
 * Fan-out of an event must not visit every connection: the relay keeps one
 * index from room id to the subscribers in that room and one from user id
 * to that user's subscribers, and visits only the matching list.
 *
 * The lists are intrusive: the owner embeds a subidx_node per key it is
 * linked under (it owns that memory), the index owns only its hash table
 * and one small bucket per key in use. Unlinking is O(1). While walking a
 * list, take n->next before doing anything that may unlink n.
 */
#ifndef ROOST_SUBIDX_H
#define ROOST_SUBIDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct subidx subidx;
typedef struct subidx_bucket subidx_bucket;

typedef struct subidx_node {
	struct subidx_node *prev, *next;
	subidx_bucket *bucket; /* NULL while not linked */
	void *owner;
} subidx_node;

/* A new, empty index; the caller owns it: subidx_free(). */
subidx *subidx_new(void);
/* Frees the index; nodes still linked are left dangling (unlink first). */
void subidx_free(subidx *ix);

/* Links n (not linked) under key, for owner. */
void subidx_link(subidx *ix, int64_t key, subidx_node *n, void *owner);
/* Unlinks n; a node that is not linked is left alone. */
void subidx_unlink(subidx *ix, subidx_node *n);

/* The first node under key, or NULL; walk on with ->next. */
subidx_node *subidx_first(const subidx *ix, int64_t key);

/* Keys with at least one node (for tests and health). */
size_t subidx_keys(const subidx *ix);

#endif
