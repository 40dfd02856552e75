/* outbox: moves committed events from the tenant's events table into its
 * Redis stream (docs/realtime.md).
 *
 * Never uses the outbox id as a cursor: ids are taken at INSERT, not at
 * COMMIT, so a slow transaction can commit id 10 after id 11 was drained.
 * A pass takes every row with published_at IS NULL in id order, publishes
 * them, and marks them, in one transaction that holds the tenant's drain
 * lock (pg_advisory_xact_lock), so drainers never interleave and a row
 * committed late is found by the next pass.
 *
 * Who drains: roost.fcgi after every response whose request wrote events
 * (after the client has its answer), and roost-relay on a timer, so an
 * acknowledged change reaches the stream even when the worker that wrote
 * it dies right after COMMIT.
 */
#ifndef ROOST_OUTBOX_H
#define ROOST_OUTBOX_H

#include <stdbool.h>

#include "error.h"

struct app;

/* One drain of the configured tenant: passes of up to 500 rows, each
 * in its own transaction under the tenant's drain lock. Uses its own
 * arena and transactions: call it when the app's connection is not
 * inside a request's transaction. *published (may be NULL) gets the
 * number of events appended. R_SUCCESS, or R_UNAVAILABLE when PostgreSQL
 * or Redis is down (nothing is marked; the next drain retries).
 *
 * outbox_drain waits for the lock and returns when everything committed
 * before the call is published (roostctl, a reader without a relay). */
rerr outbox_drain(struct app *ap, int *published);

/* For a worker after a request that wrote events: never waits for the
 * lock. When another drainer holds it, returns at once (R_SUCCESS,
 * *published 0): every holder looks for new rows once it has let go,
 * and this caller's rows were committed before it tried. A holder keeps
 * draining what came in while it held the lock, for at most a second. */
rerr outbox_try_drain(struct app *ap, int *published);

/* For an event loop with its own drain timer (roost-relay): like
 * outbox_try_drain, but does not look again after letting go: the
 * timer's next round does, so the loop is never held up by a steady
 * stream of writes. */
rerr outbox_timer_drain(struct app *ap, int *published);

/* After a request that wrote events: when a relay is alive (it keeps
 * roost:{t}:relay:alive fresh), wakes it with one PUBLISH on
 * roost:{t}:drain and returns true, and the relay drains, batching the
 * work of many requests; otherwise returns false and the caller drains
 * itself. One Redis round trip instead of a drain's seven database ones
 * per write. If the caller dies before this, the relay's timer finds the
 * rows anyway. */
bool outbox_kick(struct app *ap);

/* Whether the tenant's schema has the outbox yet (roostctl migrate has
 * run): *ready. Asks PostgreSQL without touching the tables, so a daemon
 * started before the migrations (./roost up's first run, a deployment
 * that migrates after starting its services) waits quietly instead of
 * logging a failed query on every drain. R_UNAVAILABLE when PostgreSQL
 * cannot be asked. */
rerr outbox_ready(struct app *ap, bool *ready);

/* For roost-relay: marks a relay alive for ttl_s seconds (refresh it
 * well within that). */
rerr outbox_relay_alive(struct app *ap, int ttl_s);

#endif
