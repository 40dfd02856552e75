/* presence: who is online (docs/realtime.md).
 *
 * A user is online while at least one event connection of theirs is open
 * on any relay or waiting worker. Each such connection is an entry in
 * roost:{t}:pconn:<user> (a sorted set scored by expiry), refreshed by its
 * holder; roost:{t}:online scores each online user by the time they stop
 * counting as online. A holder that dies stops refreshing, so its users
 * drop out within the TTL. Online and offline are published (ephemeral
 * "presence" events to the members of the user's rooms) on transitions
 * only: a connection that closes leaves its user online for a linger time,
 * so a reconnect (or the next long-poll) does not flap.
 */
#ifndef ROOST_PRESENCE_H
#define ROOST_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct app;

/* Seconds a connection entry lives without a refresh. */
#define PRESENCE_TTL_S 60
/* Refresh period for holders of connections. */
#define PRESENCE_REFRESH_S 20
/* Presence events go to the members of the user's rooms of at most this
 * many members (DMs, teams). In a 10,000-member room every member coming
 * online would reach every connected member: N^2 / 2 frames (measured:
 * 57 million when 10,000 members connected, bench/relay_load.py). Large
 * rooms see presence through GET /api/v1/presence instead. */
#define PRESENCE_ROOM_MAX 100

/* A connection of user_id opened. conn_id identifies it uniquely across
 * processes (e.g. "relay:<host>:<pid>:<n>"). On a transition to online,
 * the "online" event goes to the user and to the members of their rooms
 * of at most PRESENCE_ROOM_MAX members (looked up then). Call it outside
 * a request's transaction. */
rerr presence_connect(struct app *ap, int64_t user_id, const char *conn_id);

/* The connection closed. The user stays online for linger_s more seconds
 * unless another connection is open; presence_sweep then turns them
 * offline. */
rerr presence_disconnect(
    struct app *ap, int64_t user_id, const char *conn_id, int linger_s);

/* Extends n open connections by PRESENCE_TTL_S (one round trip). */
rerr presence_refresh(struct app *ap, const int64_t *user_ids,
    const char *const *conn_ids, size_t n);

/* Turns users whose time ran out offline: publishes "presence" offline
 * events to their rooms and stores last_seen_at. Any process may run it
 * (each user is turned offline by exactly one sweeper). Uses the app's
 * database and arena between requests. */
rerr presence_sweep(struct app *ap, int *went_offline);

#endif
