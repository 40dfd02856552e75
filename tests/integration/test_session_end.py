#!/usr/bin/python3
"""Integration: ending a session ends its open event streams (docs/realtime.md).

Run directly, this file tests the fallback mode (roost.fcgi serves
GET /api/v1/events itself, one waiting worker per client);
test_session_end_relay.py runs every test here again with roost-relay
behind lighttpd, then its relay-only tests.

Every way a session or API token ends is tried against an open SSE stream
and a held long-poll of that credential: logout (session and API token),
DELETE /me/sessions/{id}, a password change from another session,
suspension, admin password reset, user deletion, DELETE /me/tokens/{id}.
Within 2 s of the answer the SSE stream gets `event: session.ended` with
the reason and is closed, and the long-poll answers 401 with the JSON
error body. Streams of the user's other sessions that did not end go on
(they get the next message), and so do other users' streams.

Two stacks: `stack` checks sessions only every hour
(ROOST_SESSION_RECHECK_S=3600), so there only the session.ended event can
end a stream: these tests fail without it. `lost` checks every second and
is where the signal is lost on purpose: the session revoked, expired or
its token revoked by SQL alone, with no event at all. Those streams must
end anyway, through the periodic check (the backstop).
"""
import concurrent.futures
import time

import api
from harness import SSEClient, Stack, closing_test, longpoll, run_tests, wait_until

RELAY = False
stack = None
lost = None
S = {}
_open = []
END_WITHIN_S = 2.0


def start(relay=False):
    global stack, lost, RELAY
    RELAY = relay
    # Fallback: every waiting client holds a worker.
    stack = Stack(workers=4 if relay else 12, relay=relay,
                  env={"ROOST_SESSION_RECHECK_S": "3600", "ROOST_SSE_HEARTBEAT_S": "1"})
    lost = Stack(workers=4 if relay else 8, relay=relay,
                 env={"ROOST_SESSION_RECHECK_S": "1", "ROOST_SSE_HEARTBEAT_S": "1"})
    return stack, lost


def mode():
    return "relay" if RELAY else "fallback"


# ------------------------------------------------------------------ fixtures

def admin(st=None):
    st = st or stack
    if st.dir not in S:
        email, password = api.make_admin(st)
        tok = api.login(st, email, password)["token"]
        api.relax_limits(st, tok)
        S[st.dir] = tok
    return S[st.dir]


def member(st=None):
    """A new member in a private room of their own, signed in on desktop
    and mobile: (user, desktop token, mobile token, room id, password)."""
    st = st or stack
    u, email, password = api.create_user(st, admin(st))
    desk = api.login(st, email, password, device="desktop")["token"]
    mob = api.login(st, email, password, device="mobile")["token"]
    # Out of the default room, where other tests' users come and go.
    for r in api.my_rooms(st, desk):
        if r.get("is_default"):
            api.leave_room(st, desk, r["id"])
    room = api.create_room(st, desk, kind="private")["id"]
    settle(st)
    return u, desk, mob, room, password


def settle(st):
    """Until every committed event is in the stream, so that a stream
    opened now starts after them (in relay mode the relay drains on its
    own timer)."""
    wait_until(lambda: api.sql(st, "SELECT count(*) FROM events WHERE published_at IS NULL") == "0",
               timeout=10, interval=0.05, what="the outbox drained")


def api_token(st, session_token):
    s, _, doc = api.post(st, "/me/tokens", {"name": api.unique("bot")}, token=session_token)
    assert s == 201, (s, doc)
    return doc["id"], doc["token"]


def session_id(st, token):
    s, _, doc = api.get(st, "/me/sessions", token=token)
    assert s == 200, (s, doc)
    cur = [x["id"] for x in doc["sessions"] if x["current"]]
    assert len(cur) == 1, doc
    return cur[0]


def sse(st, token):
    c = SSEClient(st.port, token=token)
    _open.append(c)
    assert c.status == 200 and c.is_stream, f"SSE open ({mode()}): {c.status} {c.body[:300]!r}"
    return c


# @test, closing the SSE clients the test opened, whatever happens.
rt_test = closing_test(_open)


_pool = concurrent.futures.ThreadPoolExecutor(max_workers=8)


def held_longpoll(st, token):
    """A long-poll of up to 30 s, started in a thread, that has reached its
    wait (nothing pending: it starts at the end of the stream)."""
    f = _pool.submit(longpoll, st.port, token=token, timeout=30, http_timeout=40)
    time.sleep(0.5)  # parked by the worker or the relay
    assert not f.done(), f"the long-poll answered at once: {f.result()}"
    return f


def is_ended(e):
    return e.event == "session.ended"


def expect_stream_ended(c, reason, t0, what):
    ev = c.wait_for(is_ended, timeout=END_WITHIN_S + 3, what=f"session.ended ({what}, {mode()})")
    took = ev.t - t0
    assert took <= END_WITHIN_S, f"{what}: session.ended after {took:.2f}s ({mode()})"
    j = ev.json or {}
    assert j.get("type") == "session.ended" and j.get("data", {}).get("reason") == reason, \
        f"{what}: {ev.data!r}, expected reason {reason!r}"
    assert c.wait_closed(2), f"{what}: the stream stayed open after session.ended ({mode()})"
    later = c.events[c.events.index(ev) + 1:]
    assert not later, f"{what}: events after session.ended: {later}"


def expect_longpoll_401(f, t0, what):
    r = f.result(timeout=END_WITHIN_S + 5)
    took = time.monotonic() - t0
    assert r.status == 401, f"{what}: held long-poll answered {r} ({mode()})"
    body = r.body
    assert isinstance(body, dict) and body.get("error", {}).get("code") == "UNAUTHORIZED", \
        f"{what}: 401 without the JSON error body: {r.raw[:300]!r}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert took <= END_WITHIN_S + 0.5, f"{what}: long-poll answered after {took:.2f}s ({mode()})"


def still_delivers(c, st, token, room, what):
    """c (a stream that must live on) still gets the room's next message."""
    m = api.send(st, token, room, f"still here {api.unique('m')}")
    c.wait_for(lambda e: (e.json or {}).get("type") == "message.created" and
               (e.json or {}).get("data", {}).get("id") == m["id"],
               timeout=5, what=f"the next message on a stream that must live on ({what})")
    assert not [e for e in c.events if is_ended(e)], f"{what}: a stream that should live got session.ended"


def check_way(what, reason, victim_token, act, survivor=None, st=None):
    """Opens an SSE stream and a held long-poll with victim_token, runs act(),
    and checks both end in time; survivor: (token, room) of a stream of
    the same user that must live on."""
    st = st or stack
    c = sse(st, victim_token)
    other = sse(st, survivor[0]) if survivor else None
    f = held_longpoll(st, victim_token)
    t0 = time.monotonic()
    act()
    expect_stream_ended(c, reason, t0, what)
    expect_longpoll_401(f, t0, what)
    if survivor:
        still_delivers(other, st, survivor[0], survivor[1], what)
    # A new request with the same credential is refused as well.
    s, _, _ = api.get(st, "/me", token=victim_token)
    assert s == 401, f"{what}: the ended credential still works: {s}"


# ------------------------------------------------------------------ each way

@rt_test
def logout_ends_its_streams():
    u, desk, mob, room, _ = member()

    def act():
        s, _, b = api.post(stack, "/auth/logout", token=desk)
        assert s == 204, (s, b)
    check_way("logout", "logout", desk, act, survivor=(mob, room))


@rt_test
def session_revoked_from_another_session_ends_its_streams():
    u, desk, mob, room, _ = member()
    sid = session_id(stack, mob)

    def act():
        s, _, b = api.delete(stack, f"/me/sessions/{sid}", token=desk)
        assert s == 204, (s, b)
    check_way("DELETE /me/sessions/{id}", "revoked", mob, act, survivor=(desk, room))


@rt_test
def password_change_ends_the_other_sessions_streams():
    u, desk, mob, room, password = member()

    def act():
        s, _, b = api.post(stack, "/me/password",
                           {"current_password": password, "new_password": "another long password 2"},
                           token=desk)
        assert s == 204, (s, b)
    check_way("password change", "password_changed", mob, act, survivor=(desk, room))


@rt_test
def suspension_ends_every_stream_of_the_user():
    u, desk, mob, room, _ = member()
    _, bot = api_token(stack, desk)
    c_bot = sse(stack, bot)
    f_bot = held_longpoll(stack, bot)
    c_mob = sse(stack, mob)
    # Another user's stream lives on.
    v, vdesk, _, vroom, _ = member()
    c_other = sse(stack, vdesk)

    def act():
        s, _, b = api.patch(stack, f"/admin/users/{u['id']}", {"suspended": True}, token=admin())
        assert s == 200, (s, b)
    check_way("suspension", "suspended", desk, act)
    for c, what in ((c_bot, "suspension, API token stream"), (c_mob, "suspension, mobile stream")):
        assert c.wait_closed(3), f"{what}: still open"
        assert [e for e in c.events if is_ended(e)], f"{what}: closed without session.ended"
    r = f_bot.result(timeout=5)
    assert r.status == 401, f"suspension, API token long-poll: {r}"
    still_delivers(c_other, stack, vdesk, vroom, "another user")


@rt_test
def admin_password_reset_ends_the_users_streams():
    u, desk, mob, room, _ = member()

    def act():
        s, _, b = api.post(stack, f"/admin/users/{u['id']}/reset-password", token=admin())
        assert s == 200, (s, b)
    check_way("admin password reset", "password_reset", desk, act)


@rt_test
def user_deletion_ends_every_stream_of_the_user():
    u, desk, mob, room, _ = member()
    _, bot = api_token(stack, desk)
    c_bot = sse(stack, bot)

    def act():
        s, _, b = api.delete(stack, f"/admin/users/{u['id']}", token=admin())
        assert s == 204, (s, b)
    check_way("user deletion", "deleted", mob, act)
    assert c_bot.wait_closed(3) and [e for e in c_bot.events if is_ended(e)], \
        "user deletion: the API token's stream did not end"


@rt_test
def api_token_revocation_ends_its_streams():
    u, desk, mob, room, _ = member()
    tid, bot = api_token(stack, desk)

    def act():
        s, _, b = api.delete(stack, f"/me/tokens/{tid}", token=desk)
        assert s == 204, (s, b)
    check_way("DELETE /me/tokens/{id}", "token_revoked", bot, act, survivor=(desk, room))


@rt_test
def logout_with_an_api_token_ends_its_streams():
    u, desk, mob, room, _ = member()
    _, bot = api_token(stack, desk)

    def act():
        s, _, b = api.post(stack, "/auth/logout", token=bot)
        assert s == 204, (s, b)
    check_way("logout with an API token", "logout", bot, act, survivor=(desk, room))


@rt_test
def every_waiting_stream_of_the_session_ends():
    """Several streams of one session (several workers, or one relay
    holding them all) all end."""
    u, desk, mob, room, _ = member()
    cs = [sse(stack, mob) for _ in range(3)]
    t0 = time.monotonic()
    s, _, _ = api.post(stack, "/auth/logout", token=mob)
    assert s == 204
    for i, c in enumerate(cs):
        expect_stream_ended(c, "logout", t0, f"stream {i + 1} of 3")


# ------------------------------------------------------- the lost signal

def lost_check(what, reason, sql, bot=False):
    """The credential ends by SQL alone (no session.ended event): its
    streams must end through the periodic check."""
    u, desk, mob, room, _ = member(lost)
    tok = desk
    key = session_id(lost, desk)
    if bot:
        key, tok = api_token(lost, desk)
    c = sse(lost, tok)
    survivor = sse(lost, mob)
    f = held_longpoll(lost, tok)
    api.sql(lost, sql.format(id=int(key)))
    before = api.sql(lost, "SELECT count(*) FROM events WHERE type = 'session.ended'")
    t0 = time.monotonic()
    ev = c.wait_for(is_ended, timeout=6, what=f"session.ended by the periodic check ({what}, {mode()})")
    assert (ev.json or {}).get("data", {}).get("reason") == reason, f"{what}: {ev.data!r}"
    assert ev.id is None, f"{what}: the check's frame has no stream id to resume from: {ev.id!r}"
    assert c.wait_closed(2), f"{what}: still open"
    r = f.result(timeout=6)
    assert r.status == 401, f"{what}: long-poll {r}"
    assert time.monotonic() - t0 < 6
    assert api.sql(lost, "SELECT count(*) FROM events WHERE type = 'session.ended'") == before, \
        "an event was written: this was to test the path without one"
    still_delivers(survivor, lost, mob, room, f"{what}: the other session")


@rt_test
def session_revoked_without_an_event_still_ends_its_streams():
    lost_check("revoked by SQL", "revoked",
               "UPDATE sessions SET revoked_at = now(), revoked_reason = 'revoked' WHERE id = {id}")


@rt_test
def expired_session_ends_its_streams():
    lost_check("expired", "expired", "UPDATE sessions SET expires_at = now() WHERE id = {id}")


@rt_test
def api_token_revoked_without_an_event_still_ends_its_streams():
    lost_check("API token revoked by SQL", "token_revoked",
               "UPDATE api_tokens SET revoked_at = now() WHERE id = {id}", bot=True)


if __name__ == "__main__":
    start(relay=False)
    run_tests(stack, lost)
