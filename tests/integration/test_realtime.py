#!/usr/bin/python3
"""Integration: realtime delivery, GET /api/v1/events (docs/realtime.md).

Run directly, this file tests the fallback mode: no relay, roost.fcgi
serves the endpoint itself (blocking long-poll, SSE with flushes, one
worker per waiting client). test_realtime_relay.py imports it and runs
every test here again against roost-relay behind lighttpd's mod_proxy
(Stack(relay=True)), then its relay-only tests. A test that applies to one
mode only says so and is skipped in the other.

What is checked (DESIGN.md, Realtime):
1. Resume: a client that reconnects with its cursor gets every durable
   event after it, in order per room, no gaps and no duplicates (200
   messages over four rooms while it was away; SSE and long-poll), or an
   explicit RESYNC_REQUIRED (another epoch, a cursor beyond the end,
   trimmed history, Redis emptied, entries lost in a crash): 410 for
   long-poll, `event: resync` and the end of the stream for SSE. A Redis
   restart that kept its data (append-only file) is no resync: streams go
   on under load, every entry once.
2. Audience: never another room's events, nor another tenant's (a second
   tenant schema on the same Redis, written through roost.cgi, with
   colliding room ids); joining starts delivery with the joiner's own
   member.joined, leaving or removal stops it at once (the leaver gets its
   own member.left, then nothing of the room while a control member still
   gets the room's next message); user events (read.updated) only to the
   user's other sessions.
3. A committed event whose worker died before draining (a message and its
   outbox row inserted with SQL, as a worker killed right after COMMIT
   would leave them) reaches subscribers: in relay mode within ~1 s on the
   relay's drain timer; in fallback mode once any later request has been
   served (the contract: workers drain after sending each response), and
   within ~2 s while a worker is waiting for a client (waiting workers
   drain once a second).
   The drain's own promises: concurrent writers leave nothing unpublished;
   a holder drains what writers it turned away committed (made
   deterministic with a row lock); a stamp lost after the append (a pass
   cut between its append and its COMMIT) still delivers each message
   exactly once, over SSE and long-poll, and the counter does not move
   for a row offered again.
Plus: SSE headers, format and heartbeats (ROOST_SSE_HEARTBEAT_S=1), the
fallback closing SSE after ROOST_SSE_MAX_S, long-poll semantics and
validation, auth (401s, cookie, single-use tickets only on this route),
typing, presence, and GET /rooms's event_cursor.

"Never arrives" is checked with a sentinel rather than a long window: the
stream is ordered, so once an event published after the forbidden one has
arrived, the forbidden one can no longer come (ephemeral events: a later
ephemeral event on the same channel). A short extra window follows.

Test users leave the default room ("General") that every account joins,
so presence and typing of other tests' users cannot reach them.
"""
import concurrent.futures
import os
import re
import threading
import time

import api
from harness import SSEClient, Skip, Stack, closing_test, longpoll, run_tests, wait_until

RELAY = False
stack = None
S = {}
HEARTBEAT_S = 1
SSE_MAX_S = 12
CURSOR_RE = re.compile(r"^[0-9a-f]{16}-\d+-\d+-\d+$")
_open = []


def start(relay=False):
    """Start the stack for this file (fallback) or test_realtime_relay.py."""
    global stack, RELAY
    RELAY = relay
    env = {"ROOST_SSE_HEARTBEAT_S": str(HEARTBEAT_S), "ROOST_SSE_MAX_S": str(SSE_MAX_S)}
    # Fallback mode: every waiting client holds a worker.
    stack = Stack(workers=4 if relay else 10, env=env, relay=relay)
    return stack


def mode():
    return "relay" if RELAY else "fallback"


# ------------------------------------------------------------------ fixtures

def admin():
    if "admin" not in S:
        email, password = api.make_admin(stack)
        tok = api.login(stack, email, password)["token"]
        api.relax_limits(stack, tok)
        api.set_settings(stack, tok, messages_per_10s=1000, rooms_per_user=1000)
        S["admin"] = tok
    return S["admin"]


def general_id(token):
    if "general" not in S:
        rooms = api.my_rooms(stack, token)
        S["general"] = [r["id"] for r in rooms if r.get("is_default")][0]
    return S["general"]


def user(name=None, isolate=True, with_login=False):
    """A new member, logged in: (user, token); with_login also returns
    (email, password). isolate: leaves the default room."""
    u, email, password = api.create_user(stack, admin(), name=name)
    tok = api.login(stack, email, password)["token"]
    if isolate:
        api.leave_room(stack, tok, general_id(tok))
    return (u, tok, email, password) if with_login else (u, tok)


def event_cursor(token):
    st, _, doc = api.get(stack, "/rooms", token=token)
    assert st == 200, (st, doc)
    c = doc.get("event_cursor")
    assert isinstance(c, str) and CURSOR_RE.match(c), f"GET /rooms event_cursor: {c!r}"
    return c


def sse(token=None, last_event_id=None, port=None, path="/api/v1/events", **kw):
    """An SSE client through lighttpd (or port), closed after the test."""
    c = SSEClient(port or stack.port, path=path, token=token, last_event_id=last_event_id, **kw)
    _open.append(c)
    return c


def sse_ok(token=None, **kw):
    c = sse(token, **kw)
    assert c.status == 200 and c.is_stream, \
        f"SSE open ({mode()}): {c.status} {c.headers} {c.body[:300]!r}"
    return c


def lp(token=None, last_event_id=None, timeout=None, **kw):
    return longpoll(stack.port, token=token, last_event_id=last_event_id, timeout=timeout, **kw)


# @test, closing the SSE clients the test opened, whatever happens.
rt_test = closing_test(_open)


def ev_type(e):
    return (e.json or {}).get("type") if hasattr(e, "json") else e.get("type")


def ev_room(e):
    return (e.json or {}).get("room_id") if hasattr(e, "json") else e.get("room_id")


def ev_data(e):
    return ((e.json or {}) if hasattr(e, "json") else e).get("data") or {}


def is_msg(msg_id):
    return lambda e: ev_type(e) == "message.created" and ev_data(e).get("id") == msg_id


def is_presence(user_id, status):
    return lambda e: e.event == "presence" and ev_data(e).get("user_id") == user_id and \
        ev_data(e).get("status") == status


def send(token, room_id, text):
    return api.send(stack, token, room_id, text)


def retry_503(fn, timeout=8):
    """fn() until its status is not 503 (a worker or relay finding its
    Redis connection dead answers 503 once, then reconnects)."""
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        st = r.status if hasattr(r, "status") else r[0]
        if st != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def wait_in_stream(token, cursor, pred, timeout=5, what="the event"):
    """Poll (timeout=0) until an event matching pred is in the stream after
    cursor: the API answers before its worker drains the outbox."""
    def found():
        r = lp(token, cursor, timeout=0)
        assert r.status == 200, r
        return any(pred(e) for e in r.events)
    wait_until(found, timeout=timeout, interval=0.05, what=f"{what} in the stream")


def sse_gather(token, cursor, pred, n, timeout=20, port=None):
    """Resume from cursor and collect n events matching pred, reconnecting
    with the last id when the server ends the stream early (as EventSource
    does). Returns (events, connections used)."""
    got, conns = [], 0
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"{len(got)} of {n} events within {timeout}s ({conns} connections)"
        c = sse(token, last_event_id=cursor, port=port)
        conns += 1
        assert c.status == 200 and c.is_stream, (c.status, c.body[:300])
        try:
            c.wait_count(n - len(got), pred, timeout=left, what="resumed events")
        except AssertionError:
            if not c.closed:
                raise
        evs = [e for e in c.since(0) if pred(e)]
        assert not [e for e in c.since(0) if e.event == "resync"], "unexpected resync"
        got += evs
        if c.last_id:
            cursor = c.last_id
        c.close()
    return got, conns


def lp_gather(token, cursor, pred, n, timeout=20):
    """Long-poll from cursor until n events matching pred arrived."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"long-poll: {len(got)} of {n} within {timeout}s"
        r = lp(token, cursor, timeout=2)
        assert r.status == 200, r
        got += [e for e in r.events if pred(e)]
        assert CURSOR_RE.match(r.cursor or ""), r
        cursor = r.cursor
    return got, cursor


# ------------------------------------------------------------------ SSE basics

@rt_test
def sse_headers_heartbeat_and_event_format():
    a, at = user()
    b, bt = user()
    room = api.create_room(stack, at)
    api.join_room(stack, bt, room["id"])
    c = sse_ok(at, last_event_id=event_cursor(at))
    ctype = c.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "text/event-stream", c.headers
    assert "no-cache" in c.headers.get("cache-control", ""), f"Cache-Control: {c.headers}"
    assert c.headers.get("x-accel-buffering", "").lower() == "no", f"X-Accel-Buffering: {c.headers}"
    assert "content-length" not in c.headers, c.headers
    msg = send(bt, room["id"], "format check")
    e = c.wait_for(is_msg(msg["id"]), what="message.created")
    assert e.event == "message.created", e
    assert e.id and CURSOR_RE.match(e.id), e
    assert e.json["id"] == e.id, f"data.id equals the SSE id: {e}"
    assert set(e.json) == {"id", "type", "room_id", "data"}, e.json
    assert e.json["type"] == "message.created" and e.json["room_id"] == room["id"], e.json
    data = {k: v for k, v in e.json["data"].items() if k != "client_msg_id"}
    want = {k: v for k, v in msg.items() if k != "client_msg_id"}
    assert data == want, f"event data is the message object:\n{data}\n{want}"
    # heartbeats: ": hb" every HEARTBEAT_S seconds
    t0 = time.monotonic()
    n0 = len(c.comments)
    hb = [x for x in c.wait_comments(n0 + 3, timeout=3 * HEARTBEAT_S + 3)[n0:] if x[1] == "hb"]
    assert len(hb) >= 3, f"heartbeats within {time.monotonic() - t0:.1f}s: {c.comments}"
    gaps = [b_[0] - a_[0] for a_, b_ in zip(hb, hb[1:])]
    assert all(g < HEARTBEAT_S + 1.0 for g in gaps), f"heartbeat gaps {gaps}"
    assert not c.closed


@rt_test
def sse_resume_by_query_parameter():
    _, at = user()
    room = api.create_room(stack, at)
    cur = event_cursor(at)
    m1 = send(at, room["id"], "one")
    m2 = send(at, room["id"], "two")
    from urllib.parse import quote
    c = sse_ok(at, path=f"/api/v1/events?last_event_id={quote(cur)}")
    got = c.wait_count(2, lambda e: ev_type(e) == "message.created", what="backlog")
    assert [ev_data(e)["id"] for e in got[:2]] == [m1["id"], m2["id"]], got
    # and by the header, from m1's id: m2 comes next
    c2 = sse_ok(at, last_event_id=got[0].id)
    e = c2.wait_for(lambda e: ev_type(e) == "message.created")
    assert ev_data(e)["id"] == m2["id"], f"resume after m1 starts with m2: {e}"


@rt_test
def fallback_sse_ends_after_max_seconds():
    if RELAY:
        raise Skip("relay mode: roost-relay keeps streams open (ROOST_SSE_MAX_S is for workers)")
    _, at = user()
    room = api.create_room(stack, at)
    t0 = time.monotonic()
    c = sse_ok(at, last_event_id=event_cursor(at))
    m = send(at, room["id"], "before the end")
    e = c.wait_for(is_msg(m["id"]))
    assert c.wait_closed(SSE_MAX_S + 5), f"the worker kept the stream past ROOST_SSE_MAX_S={SSE_MAX_S}"
    took = c.closed_at - t0
    assert SSE_MAX_S - 1.5 <= took <= SSE_MAX_S + 4, f"closed after {took:.1f}s, max {SSE_MAX_S}"
    assert len([x for x in c.comments if x[1] == "hb"]) >= SSE_MAX_S - 4, c.comments
    # the client reconnects with its last id and misses nothing
    m2 = send(at, room["id"], "after the end")
    c2 = sse_ok(at, last_event_id=e.id)
    e2 = c2.wait_for(lambda x: ev_type(x) == "message.created")
    assert ev_data(e2)["id"] == m2["id"], e2


# ------------------------------------------------------------------ auth

@rt_test
def events_need_authentication():
    for accept in ("text/event-stream", None):
        c = sse(None, accept=accept)
        assert c.status == 401, f"no credentials ({accept}): {c.status} {c.body[:200]!r}"
        assert api.err(c.json) == "UNAUTHORIZED", c.json
        c = sse("not-a-token", accept=accept)
        assert c.status == 401, f"bad bearer ({accept}): {c.status} {c.body[:200]!r}"
    r = lp(None, timeout=0)
    assert r.status == 401, r
    r = lp(None, timeout=0, cookies={"roost_session": "forged"})
    assert r.status == 401, r


@rt_test
def cookie_authenticates_the_stream():
    u, tok, email, password = user(with_login=True)
    room = api.create_room(stack, tok)
    br = api.Browser(stack)
    st, _, _ = br.request("POST", "/auth/login", json={"email": email, "password": password,
                                                      "device": "mobile"})
    assert st == 200 and br.cookies, (st, br.cookies)
    c = sse(cookies=br.cookies, last_event_id=event_cursor(tok))
    assert c.status == 200 and c.is_stream, (c.status, c.body[:200])
    m = send(tok, room["id"], "to the cookie stream")
    c.wait_for(is_msg(m["id"]))
    r = lp(None, timeout=0, cookies=br.cookies)
    assert r.status == 200 and isinstance(r.events, list), r


@rt_test
def tickets_are_single_use_and_only_for_events():
    _, at = user()
    room = api.create_room(stack, at)
    st, _, doc = api.post(stack, "/events/ticket", token=at)
    assert st == 201, (st, doc)
    assert isinstance(doc.get("ticket"), str) and len(doc["ticket"]) >= 16, doc
    assert doc.get("expires_in") == 30, doc
    t = doc["ticket"]
    assert t not in (at,), "a ticket is not the session token"
    cur = event_cursor(at)
    c = sse(None, path=f"/api/v1/events?ticket={t}", last_event_id=cur)
    assert c.status == 200 and c.is_stream, f"SSE with a fresh ticket: {c.status} {c.body[:200]!r}"
    m = send(at, room["id"], "ticket stream")
    c.wait_for(is_msg(m["id"]), what="event on the ticket stream")
    c.close()
    # used: 401, for SSE and long-poll alike
    c2 = sse(None, path=f"/api/v1/events?ticket={t}")
    assert c2.status == 401, f"a used ticket: {c2.status} {c2.body[:200]!r}"
    assert lp(None, timeout=0, params={"ticket": t}).status == 401
    # unknown
    assert lp(None, timeout=0, params={"ticket": "A" * 43}).status == 401
    assert lp(None, timeout=0, params={"ticket": "x"}).status == 401
    # a long-poll with a fresh ticket works, once
    t2 = api.post(stack, "/events/ticket", token=at)[2]["ticket"]
    r = lp(None, timeout=0, params={"ticket": t2})
    assert r.status == 200 and isinstance(r.events, list), r
    assert lp(None, timeout=0, params={"ticket": t2}).status == 401
    # not accepted on other routes
    t3 = api.post(stack, "/events/ticket", token=at)[2]["ticket"]
    for method, path in (("GET", "/me"), ("GET", "/rooms"), ("GET", "/presence"),
                         ("POST", f"/rooms/{room['id']}/typing")):
        st, _, doc = api.request(stack, method, f"{path}?ticket={t3}")
        assert st == 401, f"{method} {path}?ticket=: {st} {doc}"
    st, _, doc = api.post(stack, "/events/ticket?ticket=" + t3)
    assert st == 401, f"a ticket cannot buy a ticket: {st} {doc}"
    # and issuing one needs a login
    st, _, doc = api.post(stack, "/events/ticket")
    assert st == 401, (st, doc)


# ------------------------------------------------------------------ long-poll

@rt_test
def longpoll_answers_at_once_when_events_wait():
    _, at = user()
    room = api.create_room(stack, at)
    lp(at, event_cursor(at), timeout=1)  # online already: no presence event of its own
    cur = event_cursor(at)
    m = send(at, room["id"], "waiting")
    wait_in_stream(at, cur, is_msg(m["id"]))
    r = lp(at, cur, timeout=25)
    assert r.status == 200, r
    assert r.elapsed < 2.0, f"events were waiting, yet the answer took {r.elapsed:.2f}s"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert set(r.body) == {"events", "last_event_id"}, r.body
    durable = [e for e in r.events if "id" in e]
    assert [ev_data(e)["id"] for e in durable if ev_type(e) == "message.created"] == [m["id"]], r.events
    e = durable[-1]
    assert set(e) == {"id", "type", "room_id", "data"} and e["room_id"] == room["id"], e
    assert r.cursor == e["id"], f"last_event_id is the last event's id: {r.body}"


@rt_test
def longpoll_holds_then_answers_empty():
    _, at = user()
    api.create_room(stack, at)
    # A first wait makes the user online (its own presence event may end
    # that one early); the next one has nothing to wait for.
    lp(at, event_cursor(at), timeout=1)
    cur = event_cursor(at)
    r = lp(at, cur, timeout=2)
    assert r.status == 200, r
    assert r.events == [], f"nothing happened, yet: {r.events}"
    assert 1.8 <= r.elapsed <= 4.5, f"timeout=2 answered after {r.elapsed:.2f}s"
    assert r.cursor == cur, f"an empty answer keeps the cursor: {cur} -> {r.cursor}"
    r = lp(at, cur, timeout=0)
    assert r.status == 200 and r.events == [] and r.elapsed < 1.5, r


@rt_test
def longpoll_wakes_when_an_event_arrives():
    _, at = user()
    b, bt = user()
    room = api.create_room(stack, at)
    api.join_room(stack, bt, room["id"])
    lp(at, event_cursor(at), timeout=1)  # be online already
    cur = event_cursor(at)
    out = {}

    def poll():
        out["r"] = lp(at, cur, timeout=20)

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(1.0)
    t_post = time.monotonic()
    m = send(bt, room["id"], "wake up")
    th.join(15)
    assert not th.is_alive(), "the long-poll did not answer after the event"
    r = out["r"]
    assert r.status == 200, r
    got = time.monotonic() - t_post
    assert got < 2.5, f"answered {got:.2f}s after the post"
    assert [ev_data(e)["id"] for e in r.events if ev_type(e) == "message.created"] == [m["id"]], r.events


@rt_test
def longpoll_without_cursor_starts_at_the_end():
    _, at = user()
    room = api.create_room(stack, at)
    cur0 = event_cursor(at)
    old = send(at, room["id"], "before the call")
    wait_in_stream(at, cur0, is_msg(old["id"]))
    lp(at, event_cursor(at), timeout=1)  # online already
    r = lp(at, None, timeout=1)
    assert r.status == 200, r
    assert [e for e in r.events if "id" in e] == [], f"old events came back: {r.events}"
    assert CURSOR_RE.match(r.cursor or ""), r
    out = {}

    def poll():
        out["r"] = lp(at, None, timeout=10)

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(1.0)
    new = send(at, room["id"], "after the call")
    th.join(12)
    r = out["r"]
    ids = [ev_data(e)["id"] for e in r.events if ev_type(e) == "message.created"]
    assert ids == [new["id"]], f"without a cursor: {ids} (old {old['id']}, new {new['id']})"
    # and the cursor it gave continues from there
    later = send(at, room["id"], "later")
    r2 = lp(at, r.cursor, timeout=5)
    assert [ev_data(e)["id"] for e in r2.events if ev_type(e) == "message.created"] == [later["id"]], r2


@rt_test
def longpoll_timeout_validation():
    _, at = user()
    lp(at, event_cursor(at), timeout=1)  # online already
    cur = event_cursor(at)
    for bad in ("61", "-1", "abc", "1.5", "", "99999999999999999999"):
        r = lp(at, cur, timeout=bad)
        if bad == "" and r.status == 200:
            continue  # an empty value may read as "not given"
        assert r.status == 400, f"timeout={bad!r}: {r}"
        api.expect_error((r.status, None, r.body), 400, "VALIDATION_ERROR", field="timeout",
                         what=f"timeout={bad!r}")
    for good in ("0", "60"):
        # with an event waiting, even timeout=60 answers at once
        room = api.create_room(stack, at)
        wait_in_stream(at, cur, lambda e: ev_room(e) == room["id"])
        r = lp(at, cur, timeout=good)
        assert r.status == 200 and r.elapsed < 2, f"timeout={good}: {r}"
        assert any(ev_room(e) == room["id"] for e in r.events), r
        cur = r.cursor


@rt_test
def malformed_cursor_is_400():
    _, at = user()
    good = event_cursor(at)
    epoch = good.split("-")[0]
    bad = ["garbage", "1", "0-0", f"{epoch}-1-2", f"{epoch}-x-1-0", f"{epoch[:15]}-1-1-0",
           f"{epoch}g-1-1-0", f"{epoch}-1-1-0-0", "ZZZZZZZZZZZZZZZZ-1-1-0", good + " ",
           "%s-1-1-0" % ("a" * 100), "../../etc/passwd", good[:-1] + "\u00e9"]
    for b in bad:
        r = lp(at, b, timeout=0)
        assert r.status == 400, f"last_event_id={b!r}: {r}"
        api.expect_error((r.status, None, r.body), 400, "VALIDATION_ERROR",
                         field="last_event_id", what=repr(b))
    # a long one is refused, not crashed on
    r = lp(at, "f" * 5000, timeout=0)
    assert r.status in (400, 414, 431), r


def resync_checks(token, cursor, what, errors=None):
    """cursor must get RESYNC_REQUIRED: 410 for long-poll, and for SSE a
    200 stream with `event: resync` {"code":"RESYNC_REQUIRED"}, then the
    end of the stream. With errors (a list), the SSE failure is appended
    there instead of raised, so the caller checks its other cases too."""
    r = retry_503(lambda: lp(token, cursor, timeout=0))
    assert r.status == 410, f"{what}: long-poll expected 410, got {r}"
    api.expect_error((r.status, None, r.body), 410, "RESYNC_REQUIRED", what=what)
    try:
        c = retry_503(lambda: sse(token, last_event_id=cursor))
        assert c.status == 200 and c.is_stream, \
            f"{what}: SSE expected 200 text/event-stream with `event: resync`, got {c.status} " \
            f"{c.headers.get('content-type')} {c.body[:120]!r}"
        e = c.wait_for(lambda x: x.event == "resync", timeout=5, what="event: resync")
        assert e.json == {"code": "RESYNC_REQUIRED"}, e
        assert e.id is None, f"the resync frame has no id: {e}"
        assert [x for x in c.since(0) if x.id is not None] == [], \
            f"a partial replay before resync: {c.since(0)}"
        assert c.wait_closed(5), f"{what}: the server did not close the stream after event: resync"
    except AssertionError as e:
        if errors is None:
            raise
        errors.append(str(e))


@rt_test
def foreign_or_future_cursor_is_resync():
    _, at = user()
    room = api.create_room(stack, at)
    send(at, room["id"], "something")
    good = event_cursor(at)
    epoch, ordinal, ms, seq = good.split("-")
    other = "0123456789abcdef" if epoch != "0123456789abcdef" else "fedcba9876543210"
    errors = []
    resync_checks(at, f"{other}-{ordinal}-{ms}-{seq}", "another epoch", errors)
    resync_checks(at, f"{epoch}-{int(ordinal) + 1000}-{int(ms) + 10 ** 7}-0", "beyond the end", errors)
    assert not errors, "\n".join(errors)


@rt_test
def trimmed_history_is_resync():
    _, at = user()
    room = api.create_room(stack, at)
    cur = event_cursor(at)
    send(at, room["id"], "will be trimmed 1")
    send(at, room["id"], "will be trimmed 2")
    keys = [k for k in stack.redis_cli("--scan", "--pattern", "roost:*:events").split() if k]
    assert keys, "no event stream key in Redis"
    for k in keys:
        stack.redis_cli("XTRIM", k, "MAXLEN", "1")
    errors = []
    resync_checks(at, cur, "cursor older than the retained history", errors)
    # a fresh cursor works again
    fresh = event_cursor(at)
    m = send(at, room["id"], "after the trim")
    got, _ = lp_gather(at, fresh, is_msg(m["id"]), 1, timeout=5)
    assert got, "nothing after the trim"
    assert not errors, "\n".join(errors)


# ------------------------------------------------------------------ 1. resume

def post_many(token, rooms, n):
    """n messages spread over rooms, one poster thread per room; returns
    {room_id: [message ids in posting order]}."""
    per = {r["id"]: [] for r in rooms}

    def poster(ri):
        room_id = rooms[ri]["id"]
        for i in range(ri, n, len(rooms)):
            m = send(token, room_id, f"gap test {i}")
            per[room_id].append(m["id"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(rooms)) as ex:
        list(ex.map(poster, range(len(rooms))))
    return per


def check_exact(evs, per, what):
    ids = [ev_data(e)["id"] for e in evs]
    assert len(ids) == len(set(ids)), f"{what}: duplicates {len(ids) - len(set(ids))}"
    for room_id, want in per.items():
        got = [ev_data(e)["id"] for e in evs if ev_room(e) == room_id]
        assert got == want, f"{what}: room {room_id}: {len(got)} events, want {len(want)}; " \
                            f"first difference at {next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))}"
    assert len(ids) == sum(len(v) for v in per.values()), f"{what}: {len(ids)} events"


@rt_test
def reconnect_with_cursor_gets_every_event_in_order():
    a, at = user()
    _, bt = user()
    rooms = [api.create_room(stack, bt, max_members=0) for _ in range(4)]
    for r in rooms:
        api.join_room(stack, at, r["id"])
    room_ids = {r["id"] for r in rooms}
    c = sse_ok(at, last_event_id=event_cursor(at))
    m0 = send(bt, rooms[0]["id"], "before the gap")
    cur = c.wait_for(is_msg(m0["id"])).id
    c.close()
    per = post_many(bt, rooms, 200)
    want = lambda e: ev_type(e) == "message.created" and ev_room(e) in room_ids and e.id is not None
    evs, conns = sse_gather(at, cur, want, 200, timeout=30)
    for e in evs:
        assert e.json["id"] == e.id, e
    check_exact(evs, per, f"SSE resume ({conns} connection(s))")
    lpev, _ = lp_gather(at, cur, lambda e: ev_type(e) == "message.created" and ev_room(e) in room_ids,
                        200, timeout=30)
    check_exact(lpev, per, "long-poll resume")
    # the ids of SSE and long-poll are the same cursors
    assert [e.id for e in evs] == [e["id"] for e in lpev], "SSE and long-poll disagree on ids"


@rt_test
def event_cursor_from_rooms_misses_nothing():
    _, at = user()
    _, bt = user()
    room = api.create_room(stack, at)
    api.join_room(stack, bt, room["id"])
    st, _, doc = api.get(stack, "/rooms", token=at)
    assert st == 200 and CURSOR_RE.match(doc.get("event_cursor") or ""), doc
    cur = doc["event_cursor"]
    m = send(bt, room["id"], "between load and subscribe")
    c = sse_ok(at, last_event_id=cur)
    c.wait_for(is_msg(m["id"]), what="the message posted after GET /rooms")
    r = lp(at, cur, timeout=5)
    assert any(is_msg(m["id"])(e) for e in r.events), r
    # state and cursor agree: the message is in the state read after it
    m2 = send(bt, room["id"], "next")
    st, _, doc2 = api.get(stack, "/rooms", token=at)
    mine = [x for x in doc2["rooms"] if x["id"] == room["id"]][0]
    assert mine["last_message"]["id"] == m2["id"], mine
    m3 = send(bt, room["id"], "after the second load")
    got, _ = lp_gather(at, doc2["event_cursor"], is_msg(m3["id"]), 1, timeout=5)
    assert got, "nothing after the second event_cursor"


# ------------------------------------------------------------------ 2. audience

@rt_test
def other_rooms_never_delivered():
    a, at = user()
    b, bt = user()
    c_, ct = user()
    shared = api.create_room(stack, bt)
    private = api.create_room(stack, bt, kind="private")
    public_other = api.create_room(stack, bt)
    api.join_room(stack, at, shared["id"])
    api.join_by_code(stack, ct, private["invite_code"])
    st, dm = api.open_dm(stack, bt, c_["id"])
    cur = event_cursor(at)
    s = sse_ok(at, last_event_id=cur)
    for room in (private, public_other, dm):
        send(bt, room["id"], f"not for a in {room['id']}")
    api.request(stack, "PUT", "/messages/%d/reactions/star" % send(ct, private["id"], "x")["id"], token=bt)
    api.mark_read(stack, bt, shared["id"], send(bt, shared["id"], "read this")["id"])
    sentinel = send(bt, shared["id"], "sentinel")
    s.wait_for(is_msg(sentinel["id"]), what="the sentinel")
    time.sleep(0.3)
    mine = {shared["id"]}
    for e in s.since(0):
        if e.id is None:
            continue
        assert ev_room(e) in mine or (ev_room(e) is None and ev_type(e) != "read.updated"), \
            f"a got an event not for it: {e}"
    r = lp(at, cur, timeout=0)
    for e in r.events:
        if "id" in e:
            assert ev_room(e) in mine or ev_room(e) is None, f"long-poll: {e}"
            assert ev_type(e) != "read.updated", f"another user's read.updated: {e}"


@rt_test
def join_starts_and_leave_stops_delivery():
    a, at = user()
    _, bt = user()
    _, ct = user()
    room = api.create_room(stack, bt)
    ctrl = api.create_room(stack, bt)  # a and b stay in it: sentinels
    api.join_room(stack, at, ctrl["id"])
    api.join_room(stack, ct, room["id"])
    s = sse_ok(at, last_event_id=event_cursor(at))
    control = sse_ok(ct, last_event_id=event_cursor(ct))
    before = send(bt, room["id"], "before a joins")
    api.join_room(stack, at, room["id"])
    j = s.wait_for(lambda e: ev_type(e) == "member.joined" and ev_room(e) == room["id"],
                   what="a's own member.joined")
    assert a["id"] in ev_data(j)["user_ids"], j
    assert not [e for e in s.since(0) if is_msg(before["id"])(e)], "a got a message from before its join"
    m1 = send(bt, room["id"], "a is a member")
    s.wait_for(is_msg(m1["id"]), what="a message after the join")
    # leave: a gets its own member.left, then nothing of the room
    api.leave_room(stack, at, room["id"])
    after = send(bt, room["id"], "right after a left")
    sentinel = send(bt, ctrl["id"], "sentinel after leave")
    control.wait_for(is_msg(after["id"]), what="the control member's copy")
    left = s.wait_for(lambda e: ev_type(e) == "member.left" and ev_data(e).get("room_id") == room["id"],
                      what="a's own member.left")
    assert a["id"] in ev_data(left)["user_ids"], left
    mark = s.events.index(left)
    s.wait_for(is_msg(sentinel["id"]), what="the sentinel")
    time.sleep(0.5)
    late = [e for e in s.since(mark + 1) if ev_room(e) == room["id"] or is_msg(after["id"])(e)]
    assert late == [], f"a still got room events after leaving: {late}"
    assert len([e for e in s.since(0) if ev_type(e) == "member.left"
                and ev_data(e).get("room_id") == room["id"]]) == 1, "member.left twice"
    # added by someone else: delivery starts with that member.joined
    api.add_members(stack, bt, room["id"], [a["id"]])
    j2 = s.wait_for(lambda e: ev_type(e) == "member.joined" and ev_room(e) == room["id"], start=mark + 1,
                    what="member.joined when added")
    assert a["id"] in ev_data(j2)["user_ids"], j2
    m2 = send(bt, room["id"], "a is back")
    s.wait_for(is_msg(m2["id"]), what="a message after being added")


@rt_test
def removal_stops_delivery_at_once():
    a, at = user()
    b, bt = user()
    _, ct = user()
    room = api.create_room(stack, bt)
    ctrl = api.create_room(stack, bt)
    for r in (room, ctrl):
        api.join_room(stack, at, r["id"])
    api.join_room(stack, ct, room["id"])
    s = sse_ok(at, last_event_id=event_cursor(at))
    lpcur = event_cursor(at)
    control = sse_ok(ct, last_event_id=event_cursor(ct))
    m = send(bt, room["id"], "still a member")
    s.wait_for(is_msg(m["id"]))
    api.remove_member(stack, bt, room["id"], a["id"])
    after = send(bt, room["id"], "right after the removal")
    sentinel = send(bt, ctrl["id"], "sentinel")
    control.wait_for(is_msg(after["id"]))
    left = s.wait_for(lambda e: ev_type(e) == "member.left" and ev_data(e).get("room_id") == room["id"],
                      what="member.left for the removed member")
    assert ev_data(left).get("by") == b["id"], left
    i = s.events.index(left)
    s.wait_for(is_msg(sentinel["id"]), start=i)
    time.sleep(0.3)
    late = [e for e in s.since(i + 1) if ev_room(e) == room["id"]]
    assert late == [], f"removed member got: {late}"
    # a long-poll that resumes from before the removal: same rule
    r = lp(at, lpcur, timeout=0)
    assert r.status == 200, r
    assert not [e for e in r.events if is_msg(after["id"])(e)], f"long-poll after removal: {r.events}"


class _OtherTenant:
    """roost.cgi and roostctl for a second tenant schema on the same
    PostgreSQL and Redis (what host mode would serve to another Host)."""

    def __init__(self, schema):
        self.schema = schema
        self.dir = stack.dir + "#" + schema

    def env(self):
        e = stack.env()
        e["ROOST_SCHEMA"] = self.schema
        return e


@rt_test
def other_tenant_never_delivered():
    other = _OtherTenant("rt_other")
    p = api.ctl(other, "migrate")
    assert p.returncode == 0, p.stderr
    email = "other-admin@example.com"
    p = api.ctl(other, "create-admin", email, "--name", "Other", env={"ROOST_ADMIN_PASSWORD": "x" * 20})
    assert p.returncode == 0, p.stderr
    st, _, doc = api.cgi_request(other, "POST", "/auth/login", {"email": email, "password": "x" * 20})
    assert st == 200, (st, doc)
    otok = doc["token"]
    st, _, orooms = api.cgi_request(other, "GET", "/rooms", token=otok)
    assert st == 200, (st, orooms)
    oroom = [r for r in orooms["rooms"] if r.get("is_default")][0]
    # our user in our room with the same id as the other tenant's room
    a, at = user(isolate=False)
    mine = [r["id"] for r in api.my_rooms(stack, at)]
    cur = event_cursor(at)
    s = sse_ok(at, last_event_id=cur)
    ours_same_id = oroom["id"] in mine
    assert ours_same_id, f"precondition: our user is in a room with the other tenant's room id " \
                         f"{oroom['id']} (ours: {mine})"
    st, _, omsg = api.cgi_request(other, "POST", f"/rooms/{oroom['id']}/messages",
                                  {"type": "text", "content": "other tenant secret"}, token=otok)
    assert st == 201, (st, omsg)
    # roost.cgi drains after answering: the other tenant's stream has it
    wait_until(lambda: "other tenant secret" in stack.redis_cli(
        "XREVRANGE", "roost:{rt_other}:events", "+", "-", "COUNT", "5"),
        timeout=5, what="the other tenant's event in its own stream")
    mark = send(at, mine[0], "sentinel in our tenant")
    s.wait_for(is_msg(mark["id"]))
    time.sleep(0.3)
    leaked = [e for e in s.since(0) if "other tenant secret" in e.data]
    assert leaked == [], f"another tenant's event arrived (same room id: {ours_same_id}): {leaked}"
    r = lp(at, cur, timeout=0)
    assert "other tenant secret" not in r.raw.decode("utf-8", "replace"), r
    # the other tenant's token is not ours
    c = sse(otok)
    assert c.status == 401, f"a token of another tenant: {c.status} {c.body[:200]!r}"


@rt_test
def read_updated_goes_to_other_sessions_only():
    b, bt, email, password = user(with_login=True)
    bt2 = api.login(stack, email, password, device="mobile")["token"]
    a, at = user()
    room = api.create_room(stack, bt)
    api.join_room(stack, at, room["id"])
    s1 = sse_ok(bt, last_event_id=event_cursor(bt))
    s2 = sse_ok(bt2, last_event_id=event_cursor(bt2))
    sa = sse_ok(at, last_event_id=event_cursor(at))
    lpcur = event_cursor(bt)
    m = send(at, room["id"], "read me")
    api.mark_read(stack, bt, room["id"], m["id"])
    sentinel = send(at, room["id"], "after the read")
    e = s2.wait_for(lambda x: ev_type(x) == "read.updated", what="read.updated on the other session")
    assert e.id is not None and ev_room(e) is None, e
    assert ev_data(e) == {"room_id": room["id"], "last_read_message_id": m["id"]}, e
    for who, c in (("the session that moved the marker", s1), ("another user", sa)):
        c.wait_for(is_msg(sentinel["id"]), what=f"the sentinel ({who})")
        got = [x for x in c.since(0) if ev_type(x) == "read.updated"]
        assert got == [], f"{who} got read.updated: {got}"
    # long-poll with the same sessions: same rule
    r1 = lp(bt, lpcur, timeout=0)
    r2 = lp(bt2, lpcur, timeout=0)
    assert not [x for x in r1.events if ev_type(x) == "read.updated"], r1
    assert [x for x in r2.events if ev_type(x) == "read.updated"], r2


# ------------------------------------------------------------------ typing and presence

@rt_test
def typing_goes_to_room_members_only():
    a, at = user(name="Typist")
    st, _, a = api.patch(stack, "/me", {"display_name": "Typing Tina"}, token=at)
    assert st == 200, (st, a)
    b, bt = user()
    c_, ct = user()
    d, dt = user()
    room = api.create_room(stack, at)
    side = api.create_room(stack, at)  # a and c: the sentinel room
    private = api.create_room(stack, at, kind="private")
    api.join_room(stack, bt, room["id"])
    api.join_room(stack, ct, side["id"])
    sb = sse_ok(bt, last_event_id=event_cursor(bt))
    sa2 = sse_ok(at, last_event_id=event_cursor(at))
    sc = sse_ok(ct, last_event_id=event_cursor(ct))
    before = event_cursor(bt)
    time.sleep(0.3)
    st, _, doc = api.post(stack, f"/rooms/{room['id']}/typing", {"state": "start"}, token=at)
    assert st == 204, (st, doc)

    def typers(e):
        return [(u["user_id"], u["display_name"]) for u in ev_data(e).get("typing", [])]

    def is_typing(rid, state="start", uid=None):
        uid = a["id"] if uid is None else uid
        return lambda e: e.event == "typing" and ev_room(e) == rid and \
            ev_data(e).get("user_id") == uid and ev_data(e).get("state") == state

    e = sb.wait_for(is_typing(room["id"]), what="typing at the other member")
    assert e.id is None, f"typing is ephemeral (no id): {e}"
    assert e.json["type"] == "typing" and e.json["room_id"] == room["id"], e.json
    assert typers(e) == [(a["id"], "Typing Tina")], f"who is typing: {ev_data(e)}"
    assert ev_data(e)["expires_in"] == 6, ev_data(e)
    sa2.wait_for(is_typing(room["id"]), what="typing at the typer's own other connection")
    # a second typer: the event lists both
    assert api.post(stack, f"/rooms/{room['id']}/typing", token=bt)[0] == 204  # no body = start
    e = sa2.wait_for(is_typing(room["id"], uid=b["id"]), what="b typing")
    assert sorted(u for u, _ in typers(e)) == sorted([a["id"], b["id"]]), ev_data(e)
    # a user without a display name is named by their name, never ""
    assert b.get("display_name") is None, b
    assert dict(typers(e))[b["id"]] == b["name"], typers(e)
    # stop: the list no longer names a
    st, _, doc = api.post(stack, f"/rooms/{room['id']}/typing", {"state": "stop"}, token=at)
    assert st == 204, (st, doc)
    e = sb.wait_for(is_typing(room["id"], "stop"), what="typing stop")
    assert [u for u, _ in typers(e)] == [b["id"]], f"after a's stop: {ev_data(e)}"
    # an entry lapses 6 s after its last start: b's is gone from the next list
    time.sleep(6.3)
    assert api.post(stack, f"/rooms/{room['id']}/typing", {"state": "start"}, token=at)[0] == 204
    e = sb.wait_for(lambda x: is_typing(room["id"])(x) and x.t > time.monotonic() - 3,
                    what="a typing again")
    assert [u for u, _ in typers(e)] == [a["id"]], f"b's entry should have lapsed: {ev_data(e)}"
    # c is not in the room: the sentinel (typing in c's room) comes first
    assert api.post(stack, f"/rooms/{side['id']}/typing", token=at)[0] == 204
    sc.wait_for(is_typing(side["id"]), what="the sentinel typing")
    got = [x for x in sc.since(0) if x.event == "typing" and ev_room(x) == room["id"]]
    assert got == [], f"a non-member saw typing: {got}"
    # typing is never replayed
    r = lp(bt, before, timeout=0)
    assert not [x for x in r.events if ev_type(x) == "typing"], f"typing in a resumed backlog: {r.events}"
    # only members; bad input
    api.expect_error(api.post(stack, f"/rooms/{room['id']}/typing", token=dt), 403, "NOT_MEMBER",
                     what="public room, not a member")
    api.expect_error(api.post(stack, f"/rooms/{private['id']}/typing", token=dt), 404, "NOT_FOUND",
                     what="private room, not a member")
    api.expect_error(api.post(stack, "/rooms/987654321/typing", token=at), 404, "NOT_FOUND",
                     what="no such room")
    api.expect_error(api.post(stack, f"/rooms/{room['id']}/typing", {"state": "yes"}, token=at),
                     400, "VALIDATION_ERROR", field="state", what="state not start/stop")
    api.expect_error(api.post(stack, f"/rooms/{room['id']}/typing", {"typing": True}, token=at),
                     400, "VALIDATION_ERROR", what="unknown field")
    api.expect_error(api.post(stack, f"/rooms/{room['id']}/typing", token=None), 401, "UNAUTHORIZED",
                     what="no credentials")


@rt_test
def presence_online_offline_and_list():
    a, at = user()
    b, bt = user()
    c_, ct = user()
    room = api.create_room(stack, at)
    side = api.create_room(stack, at)
    api.join_room(stack, bt, room["id"])
    api.join_room(stack, ct, side["id"])  # c shares a room with a, none with b
    sa = sse_ok(at, last_event_id=event_cursor(at))
    sc = sse_ok(ct, last_event_id=event_cursor(ct))
    time.sleep(0.5)
    t0 = time.monotonic()
    sb = sse_ok(bt, last_event_id=event_cursor(bt))
    sa.wait_for(is_presence(b["id"], "online"), timeout=4, what="b online")
    st, _, doc = api.get(stack, "/presence", token=at)
    assert st == 200, (st, doc)
    entry = [u for u in doc["users"] if u["user_id"] == b["id"]]
    assert len(entry) == 1 and entry[0]["status"] == "online" and "last_seen_at" in entry[0], doc
    st, _, doc = api.get(stack, "/presence", token=ct)
    assert st == 200 and b["id"] not in [u["user_id"] for u in doc["users"]], \
        f"c shares no room with b, yet sees it: {doc}"
    # c got no presence of b: the sentinel (typing in c's room) comes later
    assert api.post(stack, f"/rooms/{side['id']}/typing", token=at)[0] == 204
    sc.wait_for(lambda e: e.event == "typing" and ev_room(e) == side["id"], what="sentinel")
    got = [e for e in sc.since(0) if e.event == "presence" and ev_data(e).get("user_id") == b["id"]]
    assert got == [], f"c saw b's presence: {got}"
    # a second connection of b: no second "online"
    sb2 = sse_ok(bt, last_event_id=event_cursor(bt))
    time.sleep(1.0)
    sb2.close()
    time.sleep(0.5)
    # b goes: offline after the 5 s linger
    sb.close()
    t_close = time.monotonic()
    off = sa.wait_for(is_presence(b["id"], "offline"), timeout=14, what="b offline")
    took = off.t - t_close
    assert took >= 3.5, f"offline {took:.1f}s after the close: no linger"
    onl = [e for e in sa.since(0) if is_presence(b["id"], "online")(e)]
    assert len(onl) == 1, f"online events for b: {onl}"
    st, _, doc = api.get(stack, "/presence", token=at)
    assert b["id"] not in [u["user_id"] for u in doc["users"]], f"b is still listed: {doc}"
    assert time.monotonic() - t0 < 30


@rt_test
def new_rooms_and_dms_reach_open_streams():
    """A room created while my stream is open is delivered from its first
    event, without reconnecting; so is a DM someone opens with me."""
    a, at = user()
    b, bt = user()
    sa = sse_ok(at, last_event_id=event_cursor(at))
    sb = sse_ok(bt, last_event_id=event_cursor(bt))
    time.sleep(0.3)
    room = api.create_room(stack, at)
    sa.wait_for(lambda e: ev_type(e) == "room.created" and ev_room(e) == room["id"],
                what="room.created to its creator")
    m = send(at, room["id"], "first words in a new room")
    sa.wait_for(is_msg(m["id"]), what="a message in the room created after the stream opened")
    st, _, dm = api.post(stack, "/dms", {"user_id": b["id"]}, token=at)
    assert st == 201, (st, dm)
    sb.wait_for(lambda e: ev_type(e) == "room.created" and ev_room(e) == dm["id"],
                what="room.created of the DM to its other member")
    m = send(at, dm["id"], "hello in a new DM")
    sb.wait_for(is_msg(m["id"]), what="a DM message on the other member's open stream")
    sa.wait_for(is_msg(m["id"]), what="the DM message on the opener's stream")
    # nobody else: a third user's stream sees neither
    c_, ct = user()
    sc = sse_ok(ct, last_event_id=event_cursor(ct))
    m2 = send(at, room["id"], "still private to a")
    sa.wait_for(is_msg(m2["id"]), what="a's own message")
    time.sleep(0.5)
    assert not [e for e in sc.since(0) if ev_room(e) in (room["id"], dm["id"])], sc.since(0)


@rt_test
def presence_skips_large_rooms():
    """Presence events go only to rooms of at most 100 members; a big room's
    members see presence through GET /presence (docs/realtime.md)."""
    a, at = user()
    b, bt = user()
    c_, ct = user()
    small = api.create_room(stack, at)
    big = api.create_room(stack, at, max_members=0)
    api.join_room(stack, bt, small["id"])
    api.join_room(stack, ct, big["id"])
    # stand-in for 500 members: the rule reads member_count
    api.sql(stack, f"UPDATE rooms SET member_count = 500 WHERE id = {big['id']}")
    sb = sse_ok(bt, last_event_id=event_cursor(bt))
    sc = sse_ok(ct, last_event_id=event_cursor(ct))
    time.sleep(0.5)
    sa = sse_ok(at, last_event_id=event_cursor(at))
    sb.wait_for(is_presence(a["id"], "online"), timeout=4, what="a online in the small room")
    # the sentinel in the big room comes after any presence would have
    assert api.post(stack, f"/rooms/{big['id']}/typing", token=at)[0] == 204
    sc.wait_for(lambda e: e.event == "typing" and ev_room(e) == big["id"], what="sentinel")
    got = [e for e in sc.since(0) if e.event == "presence" and ev_data(e).get("user_id") == a["id"]]
    assert got == [], f"a big room's member got presence events: {got}"
    st, _, doc = api.get(stack, "/presence", token=ct)
    assert st == 200 and a["id"] in [u["user_id"] for u in doc["users"]], \
        f"GET /presence still lists a for the big room's member: {doc}"
    sa.close()


# ------------------------------------------------------------------ 3. outbox

def inject_committed_message(room_id, author_id, text):
    """A message and its outbox row committed together, with nobody left
    to drain them: what a worker killed right after COMMIT leaves."""
    out = api.sql(stack, f"""
        WITH m AS (INSERT INTO messages (room_id, author_id, type, body)
                   VALUES ({room_id}, {author_id}, 'text', {api.q(text)}) RETURNING id, room_id, created_at)
        INSERT INTO events (room_id, type, data)
        SELECT room_id, 'message.created',
               jsonb_build_object('id', id, 'room_id', room_id, 'type', 'text',
                                  'content', {api.q(text)}, 'author_id', {author_id})
        FROM m RETURNING (data->>'id')::bigint""")
    return int(out.strip().splitlines()[-1])


@rt_test
def committed_event_reaches_stream_without_its_worker():
    a, at = user()
    room = api.create_room(stack, at)
    cur = event_cursor(at)
    if RELAY:
        # Nothing else happens: the relay's drain timer (250 ms) finds it.
        s = sse_ok(at, last_event_id=cur)
        mid = inject_committed_message(room["id"], a["id"], "orphan relay")
        t0 = time.monotonic()
        e = s.wait_for(is_msg(mid), timeout=3, what="the orphaned event")
        assert e.t - t0 < 1.5, f"the relay drained it after {e.t - t0:.2f}s"
        return
    # Fallback, a worker waiting for a client drains about once a second
    # (docs/realtime.md).
    s = sse_ok(at, last_event_id=cur)
    mid = inject_committed_message(room["id"], a["id"], "orphan fallback 1")
    t0 = time.monotonic()
    e = s.wait_for(is_msg(mid), timeout=4, what="the orphaned event with a worker waiting")
    assert e.t - t0 < 2.5, f"drained after {e.t - t0:.2f}s"
    cur = e.id
    s.close()
    # Fallback, no client waiting: the next reader drains before it reads
    # (docs/realtime.md), so even with no write since, it is delivered.
    time.sleep(2.5)  # workers streaming to the client that left end
    mid = inject_committed_message(room["id"], a["id"], "orphan fallback 2")
    schema = stack.env_vars.get("ROOST_SCHEMA", "roost")
    raw = stack.redis_cli("XRANGE", f"roost:{{{schema}}}:events", "-", "+")
    assert "orphan fallback 2" not in raw, "precondition: nothing drained it yet"
    r = lp(at, cur, timeout=0)
    assert r.status == 200, r
    got = [e for e in r.events if is_msg(mid)(e)]
    assert len(got) == 1, f"fallback: the reader did not drain the orphaned event: {r.events}"


@rt_test
def concurrent_writers_hand_the_drain_over_without_leaving_rows():
    """Without a relay, writers only try the drain lock and every holder
    looks again after letting go; with one, writers kick it and it drains
    (docs/realtime.md). Either way, under concurrent sends nothing may stay
    unpublished once the writes stop, with nobody reading."""
    a, at = user()
    rooms = [api.create_room(stack, at) for _ in range(8)]
    time.sleep(2.5)  # no stream of an earlier test is still held by a worker
    per = post_many(at, rooms, 240)
    # Nobody reads: a row left behind now stays unpublished for good, so
    # the bound only has to outlast the drains still running.
    wait_until(lambda: api.sql(stack, "SELECT count(*) FROM events WHERE published_at IS NULL") == "0",
               timeout=3, what="every event published after the last send")
    ids = {m for v in per.values() for m in v}
    schema = stack.env_vars.get("ROOST_SCHEMA", "roost")
    raw = stack.redis_cli("XRANGE", f"roost:{{{schema}}}:events", "-", "+")
    missing = [m for m in ids if f'"id":{m},' not in raw.replace(" ", "")]
    assert not missing, f"{len(missing)} of {len(ids)} messages are not in the stream"


class StuckDrainer:
    """A worker's drain pass held inside its transaction: the drain lock is
    taken (m1's writer leaves m1 unpublished), m1's outbox row is locked,
    the drain lock let go; then m2's writer takes it, appends m1 and m2 to
    the stream and waits in its UPDATE on our row lock, holding the drain
    lock. .release() lets it go on; .pid is its backend.

    relay=True: the relay drains, on its timer (250 ms), so m2 is sent
    while the drain lock is still ours and the relay's next pass appends
    both and waits in its UPDATE."""

    def __init__(self, token, room, label, relay=False):
        schema = stack.env_vars.get("ROOST_SCHEMA", "roost")
        self.drain_lock, self.row_lock = api.SqlSession(stack), api.SqlSession(stack)
        try:
            self.drain_lock.query("BEGIN")
            self.drain_lock.query(f"SELECT pg_advisory_xact_lock(hashtextextended('roost.drain.{schema}', 0))")
            # roost.cgi returns once its drain tried (lighttpd answers
            # before the worker's drain, which could otherwise still be
            # trying when the lock is let go below)
            st, _, self.m1 = api.cgi_request(stack, "POST", f"/rooms/{room['id']}/messages",
                                             {"type": "text", "content": f"{label} one"}, token=token)
            assert st == 201, (st, self.m1)
            assert unpublished(self.m1["id"]) == "t", "precondition: m1's writer found the lock taken"
            self.row_lock.query("BEGIN")
            self.row_lock.query("SELECT id FROM events WHERE type = 'message.created' "
                                f"AND (data->>'id')::bigint = {self.m1['id']} FOR UPDATE")
            if relay:
                self.m2 = send(token, room["id"], f"{label} two")
                assert unpublished(self.m2["id"]) == "t", "precondition: the relay found the lock taken"
            self.drain_lock.query("COMMIT")
            if not relay:
                self.m2 = send(token, room["id"], f"{label} two")
            self.pid = wait_until(
                lambda: api.sql(stack, "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND query LIKE '%UPDATE events SET published_at%'"),
                timeout=5, what="a drainer stuck in its UPDATE")
        except BaseException:
            self.close()
            raise

    def release(self):
        self.row_lock.query("COMMIT")

    def close(self):
        for sess in (self.drain_lock, self.row_lock):
            try:
                sess.query("ROLLBACK")
            except AssertionError:
                pass
            sess.close()


def unpublished(msg_id):
    """"t" while message msg_id's outbox row waits for a drain."""
    return api.sql(stack, "SELECT published_at IS NULL FROM events WHERE type = 'message.created' "
                          f"AND (data->>'id')::bigint = {msg_id}")


@rt_test
def holder_drains_what_writers_it_turned_away_committed():
    """The handover, made deterministic: a drainer is held inside its pass
    while another send commits; that writer's try finds the lock taken and
    leaves. Once the holder lets go it must look again and publish that
    send, with nobody else draining (docs/realtime.md). The third send goes
    through roost.cgi: lighttpd would hand it to the worker that just
    answered, the one stuck in its drain."""
    if RELAY:
        raise Skip("relay mode: workers kick the relay; this is the workers' own handover")
    a, at = user()
    room = api.create_room(stack, at)
    time.sleep(2.5)  # no stream of an earlier test is still held by a worker
    schema = stack.env_vars.get("ROOST_SCHEMA", "roost")
    stuck = StuckDrainer(at, room, "handover")
    try:
        st, _, m3 = api.cgi_request(stack, "POST", f"/rooms/{room['id']}/messages",
                                    {"type": "text", "content": "handover three"}, token=at)
        assert st == 201, (st, m3)
        assert unpublished(m3["id"]) == "t", "precondition: m3's writer found the lock taken"
        stuck.release()
        wait_until(lambda: unpublished(m3["id"]) == "f", timeout=3,
                   what="the holder to publish what came in while it held the lock")
        raw = stack.redis_cli("XRANGE", f"roost:{{{schema}}}:events", "-", "+")
        assert "handover three" in raw, "m3 is stamped but not in the stream"
    finally:
        stuck.close()


def ordinal(cursor):
    return int(cursor.split("-")[1])


def outbox_ids_in_stream(msg_ids):
    """{message id: how many stream entries carry its event}."""
    raw = stack.redis_cli("XRANGE", stream_key(), "-", "+").replace(" ", "")
    return {m: raw.count(f'"id":{m},') for m in msg_ids}


@rt_test
def lost_stamp_after_publish_is_delivered_exactly_once():
    """A drain pass appends to the stream, then its stamping transaction is
    lost (its UPDATE waits on a row lock we hold until the drain's statement
    timeout cancels it). The rows stay unpublished and a later pass offers
    them again; the publish script finds their outbox ids in its window
    (roost:{t}:events:seen) and appends neither again (docs/realtime.md,
    "Exactly once"). So the stream holds each message once, the ordinals
    run on without a hole, and readers resuming from before them get each
    message exactly once, in order: an SSE stream open while they are
    offered again, and a long-poll afterwards. In relay mode the relay's
    pass is the one cut (and its own retry offers them again)."""
    a, at = user()
    room = api.create_room(stack, at)
    time.sleep(2.5)  # no stream of an earlier test is still held by a worker
    cur = event_cursor(at)
    stuck = StuckDrainer(at, room, "stamp lost", relay=RELAY)
    m1, m2 = stuck.m1, stuck.m2
    try:
        t_stuck = time.monotonic()
        assert outbox_ids_in_stream([m1["id"], m2["id"]]) == {m1["id"]: 1, m2["id"]: 1}, \
            "precondition: both appended before the stamp"
        n_appended = int(stack.redis_cli("GET", stream_key(":n")))
        # The stamp is lost: a drain's statements give up after 3 s
        # (lib/outbox.c), so the worker is not kept for the request
        # timeout (15 s), and its transaction rolls back.
        wait_until(lambda: api.sql(stack, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {stuck.pid} "
                                          "AND wait_event_type = 'Lock'") == "0",
                   timeout=8, what="the stuck drain to give up")
        waited = time.monotonic() - t_stuck
        assert 2.0 <= waited <= 6.0, f"the drain gave up after {waited:.1f} s, not about 3 s"
        if not RELAY:
            # (the relay retries its pass on its own, so only here is it
            # certain that both rows are still waiting)
            left = api.sql(stack, "SELECT count(*) FROM events WHERE type = 'message.created' "
                                  "AND published_at IS NULL "
                                  f"AND (data->>'id')::bigint IN ({m1['id']}, {m2['id']})")
            assert left == "2", f"precondition: both stamps lost ({left} left unpublished)"
        stuck.release()
    finally:
        stuck.close()
    s = sse_ok(at, last_event_id=cur)
    try:
        # The next pass offers m1 and m2 again, then appends m3.
        m3 = send(at, room["id"], "stamp lost three")
        wait_until(lambda: api.sql(stack, "SELECT count(*) FROM events WHERE published_at IS NULL") == "0",
                   timeout=5, what="the next drain")
        want = [m1["id"], m2["id"], m3["id"]]
        s.wait_for(is_msg(m3["id"]), timeout=5, what="m3 on the open stream")
        time.sleep(0.3)  # anything that could follow m3 has arrived
        sse_evs = [e for e in s.since(0) if ev_type(e) == "message.created"]
        assert [ev_data(e)["id"] for e in sse_evs] == want, \
            f"SSE: each message once, in order: {[ev_data(e)['id'] for e in sse_evs]}"
    finally:
        s.close()
    r = lp(at, cur, timeout=0)
    assert r.status == 200, r
    evs = [e for e in r.events if ev_type(e) == "message.created"]
    assert [ev_data(e)["id"] for e in evs] == want, \
        f"long-poll: each message once, in order: {[ev_data(e)['id'] for e in evs]}"
    assert [e["id"] for e in evs] == [e.id for e in sse_evs], "SSE and long-poll name the same entries"
    ords = [ordinal(e["id"]) for e in evs]
    assert ords == list(range(ords[0], ords[0] + 3)), f"the ordinals have a hole: {ords}"
    counts = outbox_ids_in_stream(want)
    assert counts == {m: 1 for m in want}, f"stream entries per message (want one each): {counts}"
    assert int(stack.redis_cli("GET", stream_key(":n"))) == n_appended + 1, \
        "the counter moved for entries that were not appended"


@rt_test
def offering_an_appended_outbox_row_again_appends_nothing():
    """What a lost stamp leaves, made directly: a published outbox row
    marked unpublished again. The next pass offers it; the publish script
    skips it (its outbox id is in the window), so the stream gains only the
    next message, whose ordinal follows the last without a hole, and the
    window holds the id once."""
    a, at = user()
    room = api.create_room(stack, at)
    cur = event_cursor(at)
    m1 = send(at, room["id"], "offered again one")
    wait_until(lambda: unpublished(m1["id"]) == "f", timeout=5, what="m1 published")
    oid = api.sql(stack, "SELECT id FROM events WHERE type = 'message.created' "
                         f"AND (data->>'id')::bigint = {m1['id']}")
    n0 = int(stack.redis_cli("GET", stream_key(":n")))
    api.sql(stack, f"UPDATE events SET published_at = NULL WHERE id = {oid}")
    m2 = send(at, room["id"], "offered again two")
    wait_until(lambda: api.sql(stack, "SELECT count(*) FROM events WHERE published_at IS NULL") == "0",
               timeout=5, what="the next drain")
    assert outbox_ids_in_stream([m1["id"], m2["id"]]) == {m1["id"]: 1, m2["id"]: 1}, \
        "m1 was appended a second time"
    assert int(stack.redis_cli("GET", stream_key(":n"))) == n0 + 1, "the counter moved for a skipped row"
    lp_gather(at, cur, lambda e: ev_type(e) == "message.created", 2, timeout=5)
    r = lp(at, cur, timeout=0)
    evs = [e for e in r.events if ev_type(e) == "message.created"]
    assert [ev_data(e)["id"] for e in evs] == [m1["id"], m2["id"]], evs
    assert ordinal(evs[1]["id"]) == ordinal(evs[0]["id"]) + 1, [e["id"] for e in evs]
    assert ordinal(evs[1]["id"]) == n0 + 1
    assert stack.redis_cli("ZSCORE", stream_key(":seen"), oid) != "", "m1's outbox id is not in the window"


# ------------------------------------------------------------------ Redis restarts and losses

class Follower(threading.Thread):
    """One client following its events the way EventSource does: an SSE
    stream from its cursor, and when the server ends it (a worker whose
    Redis connection dropped does; a relay keeps it) a new one with the
    last id, retried while the answer is 503. Records every durable event,
    every resync frame and every connection."""

    def __init__(self, token, cursor):
        super().__init__(daemon=True)
        self.token, self.cursor = token, cursor
        self.events, self.resyncs, self.refused = [], [], []
        self.conns = 0
        self.stopping = False
        self.client = None

    def run(self):
        while not self.stopping:
            try:
                c = SSEClient(stack.port, token=self.token, last_event_id=self.cursor, timeout=5)
            except (AssertionError, OSError) as e:
                self.refused.append(str(e)[:100])
                time.sleep(0.2)
                continue
            if not c.is_stream:
                self.refused.append(c.status)
                c.close()
                time.sleep(0.2)
                continue
            self.conns += 1
            self.client = c
            while not self.stopping:
                e = c.next(0.3)
                if e is None:
                    if c.closed:
                        break
                    continue
                if e.event == "resync":
                    self.resyncs.append(e)
                    self.stopping = True  # a client reloads over REST here
                elif e.id is not None:
                    self.events.append(e)
                    self.cursor = e.id
            c.close()

    def stop(self):
        self.stopping = True
        self.join(10)


def stream_key(suffix=""):
    return "roost:{%s}:events%s" % (stack.env_vars["ROOST_SCHEMA"], suffix)


# Deletes the stream's last ARGV[1] entries and moves the counter back as
# far: what an append-only file cut short by a crash leaves behind.
LOSE_LUA = ("local r = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1]) "
            "for _, e in ipairs(r) do redis.call('XDEL', KEYS[1], e[1]) end "
            "redis.call('DECRBY', KEYS[2], #r) return #r")


def lose_tail(n):
    got = stack.redis_cli("EVAL", LOSE_LUA, "2", stream_key(), stream_key(":n"), str(n))
    assert got == str(n), f"lost {got!r} entries, not {n}"


def redis_run_id():
    return re.search(r"run_id:(\w+)", stack.redis_cli("INFO", "server"))[1]


def recorded_end():
    return api.sql(stack, "SELECT last_cursor FROM stream_state")


@rt_test
def redis_restart_under_load_streams_continue_without_resync():
    """docs/realtime.md, "Redis restarts": Redis keeps an append-only file
    and the stream's epoch lives beside the stream, so a restart (SHUTDOWN
    and start, as `scripts/stack redis-stop` and `redis-start` do) keeps
    every cursor good. Three SSE clients while a poster sends 120
    messages into two rooms and Redis restarts after the 40th: no resync
    frame, every message arrives, each stream entry exactly once, in the
    stream's order. The relay keeps its clients' connections (and its own
    head) across the restart; without a relay the workers end their streams
    when their Redis connection drops, and the clients resume with their
    last id."""
    _, pt = user()
    users = [user() for _ in range(3)]
    rooms = [api.create_room(stack, pt) for _ in range(2)]
    rids = {r["id"] for r in rooms}
    for _, t in users:
        for r in rooms:
            api.join_room(stack, t, r["id"])
    starts = [event_cursor(t) for _, t in users]
    followers = [Follower(t, c) for (_, t), c in zip(users, starts)]
    for f in followers:
        f.start()
    wait_until(lambda: all(f.conns for f in followers), timeout=10, what="every follower connected")
    relay_pid = stack.relay_pid() if RELAY else None
    run_id = redis_run_id()
    posted, n = [], 120
    for i in range(n):
        if i == 40:
            epoch = stack.redis_cli("GET", stream_key(":epoch"))
            stack.redis_stop()
            time.sleep(0.5)
            stack.redis_start()
            assert redis_run_id() != run_id, "Redis did not restart"
            assert stack.redis_cli("GET", stream_key(":epoch")) == epoch, "the epoch did not survive"
        for attempt in range(50):
            st, _, doc = api.send_resp(stack, pt, rooms[i % 2]["id"], f"restart load {i}",
                                       client_msg_id=f"rl-{os.getpid()}-{i}")
            if st == 201 or st == 200:
                break
            assert st == 503, f"send {i}: {st} {doc}"
            time.sleep(0.1)
        else:
            raise AssertionError(f"send {i}: still 503")
        posted.append(doc["id"])
        time.sleep(0.02)
    try:
        for k, f in enumerate(followers):
            wait_until(lambda: f.resyncs or any(is_msg(posted[-1])(e) for e in f.events),
                       timeout=20, what=f"follower {k}: the last message")
    finally:
        for f in followers:
            f.stop()
    if RELAY:
        assert stack.relay_pid() == relay_pid, "the relay was restarted"
    for k, ((_, t), f) in enumerate(zip(users, followers)):
        assert not f.resyncs, f"follower {k}: resync after a Redis restart that kept the data " \
                              f"({f.conns} connections)"
        if RELAY:
            assert f.conns == 1, f"follower {k}: the relay ended the stream ({f.conns} connections)"
        else:
            assert f.conns >= 2, f"follower {k}: the worker's stream outlived its Redis connection?"
        mine = [e for e in f.events if ev_type(e) == "message.created" and ev_room(e) in rids]
        cursors = [e.id for e in mine]
        assert len(cursors) == len(set(cursors)), f"follower {k}: an entry delivered twice"
        got = {ev_data(e)["id"] for e in mine}
        missing = [m for m in posted if m not in got]
        assert not missing, f"follower {k}: {len(missing)} of {n} messages missing, first {missing[0]}"
        # exactly the stream's entries, in its order: a replay from the start agrees
        replay, _ = lp_gather(t, starts[k], lambda e: ev_type(e) == "message.created" and
                              ev_room(e) in rids, len(mine), timeout=10)
        assert [e["id"] for e in replay] == cursors, f"follower {k}: not the stream's entries in order"


@rt_test
def lost_tail_is_resync_never_a_gap():
    """A crash can take Redis's last second of appends and keep the rest,
    the epoch included. Simulated: the last 3 entries deleted and the
    counter moved back by 3, as an append-only file cut short leaves
    them. A client that had read them (its cursor is in the lost tail)
    resyncs, also once 3 new messages have taken their ordinals again;
    so does a client that had not read them yet (the drain finds the stream
    behind the end it recorded in PostgreSQL, and gives the stream a new
    epoch before it appends), and an open stream is told so. Never a
    silent gap."""
    _, at = user()
    room = api.create_room(stack, at)
    early = event_cursor(at)
    lost = [send(at, room["id"], f"lost {i}") for i in range(3)]
    got, late = lp_gather(at, early, lambda e: ev_type(e) == "message.created" and
                          ev_room(e) == room["id"], 3, timeout=5)
    assert [ev_data(e)["id"] for e in got] == [m["id"] for m in lost], got
    wait_until(lambda: recorded_end() == late, timeout=5, what="the drain's record of the end")
    s = sse_ok(at, last_event_id=late)
    lose_tail(3)
    for i in range(3):
        send(at, room["id"], f"after the loss {i}")
    errors = []
    resync_checks(at, late, "a cursor in the lost tail", errors)
    resync_checks(at, early, "a cursor before the lost tail", errors)
    try:
        s.wait_for(lambda e: e.event == "resync", timeout=5, what="event: resync on the open stream")
        assert [e for e in s.since(0) if e.id is not None] == [], s.since(0)
    except AssertionError as e:
        errors.append(str(e))
    assert not errors, "\n".join(errors)
    # a fresh cursor goes on
    fresh = event_cursor(at)
    assert fresh.split("-")[0] != late.split("-")[0], f"the epoch stayed: {late} {fresh}"
    m = send(at, room["id"], "after the resync")
    got, _ = lp_gather(at, fresh, is_msg(m["id"]), 1, timeout=5)


@rt_test
def lost_tail_without_the_record_is_still_resync_for_its_readers():
    """The cursor check on its own, as when the drain has no record of the
    end (a stream older than the record, or the record rolled back): the
    last 3 entries lost, then 3 new messages take their ordinals again.
    A cursor naming a lost entry must not pass for the new entry with its
    ordinal: resync, not "nothing new"."""
    _, at = user()
    room = api.create_room(stack, at)
    early = event_cursor(at)
    for i in range(3):
        send(at, room["id"], f"lost {i}")
    _, late = lp_gather(at, early, lambda e: ev_type(e) == "message.created" and
                        ev_room(e) == room["id"], 3, timeout=5)
    wait_until(lambda: recorded_end() == late, timeout=5, what="the drain's record of the end")
    s = sse_ok(at, last_event_id=late)
    api.sql(stack, "DELETE FROM stream_state")
    lose_tail(3)
    after = [send(at, room["id"], f"after the loss {i}") for i in range(4)]
    wait_until(lambda: int(stack.redis_cli("GET", stream_key(":n"))) > int(late.split("-")[1]),
               timeout=5, what="the counter past the lost cursor's ordinal")
    errors = []
    # The open stream (the relay's, or a worker's) was at the lost end.
    try:
        s.wait_for(lambda e: e.event == "resync", timeout=5, what="event: resync on the open stream")
        assert [e for e in s.since(0) if e.id is not None] == [], \
            f"the open stream went on past a gap: {s.since(0)}"
    except AssertionError as e:
        errors.append(str(e))
    # A resume with a cursor naming a lost entry, once new entries have
    # taken its ordinal (k == n) and once they are past it.
    api.sql(stack, "DELETE FROM stream_state")
    lose_tail(1)
    wait_until(lambda: stack.redis_cli("GET", stream_key(":n")) == late.split("-")[1],
               timeout=5, what="the counter at the lost cursor's ordinal")
    resync_checks(at, late, "a cursor naming a lost entry, its ordinal the end's", errors)
    send(at, room["id"], "past it")
    resync_checks(at, late, "a cursor naming a lost entry, its ordinal reused", errors)
    assert not errors, "\n".join(errors)
    assert after


@rt_test
def flushall_is_resync():
    """Redis emptied (FLUSHALL, or a Redis without persistence restarted):
    the epoch went with the stream, the next script makes a new one, and
    every cursor from before is a resync: an open stream gets event:
    resync, a resume gets 410 or event: resync, a fresh cursor works."""
    _, at = user()
    _, bt = user()
    room = api.create_room(stack, at)
    api.join_room(stack, bt, room["id"])
    cur = event_cursor(at)
    m = send(bt, room["id"], "before the flush")
    s = sse_ok(at, last_event_id=cur)
    old = s.wait_for(is_msg(m["id"])).id
    stack.redis_cli("FLUSHALL")
    send(bt, room["id"], "after the flush")
    try:
        s.wait_for(lambda e: e.event == "resync", timeout=8, what="event: resync on the open stream")
    except AssertionError:
        if not s.closed:
            raise
    errors = []
    resync_checks(at, old, "a cursor from before FLUSHALL", errors)
    fresh = retry_503(lambda: api.get(stack, "/rooms", token=at))[2]["event_cursor"]
    assert fresh.split("-")[0] != old.split("-")[0], f"same epoch after FLUSHALL: {old} {fresh}"
    s2 = retry_503(lambda: sse(at, last_event_id=fresh))
    assert s2.status == 200, (s2.status, s2.body[:200])
    m2 = send(bt, room["id"], "with the new epoch")
    s2.wait_for(is_msg(m2["id"]), timeout=5, what="a message with the new epoch")
    assert not errors, "\n".join(errors)


if __name__ == "__main__":
    start(relay=False)
    run_tests(stack)
