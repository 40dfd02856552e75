#!/usr/bin/python3
"""Integration: realtime delivery through roost-relay (docs/realtime.md).

Runs every test of test_realtime.py against a stack whose lighttpd sends
GET /api/v1/events to roost-relay (Stack(relay=True)), then these
relay-only ones:

- lighttpd routes exactly GET /api/v1/events to the relay: with the relay
  stopped that path answers 503 while POST /api/v1/events/ticket and the
  rest of /api/ still work, and no worker ever served GET /api/v1/events.
- Every status the relay answers by itself (400, 401, 404, 405, 408,
  410, 413, 431, 505, 200) carries its RFC 9110 reason phrase: raw
  sockets straight to the relay (the 408 waits out its 30 s head limit).
- Two relays on one Redis (guarantee 5): a second roost-relay on its own
  port with the stack's environment; a client moves from relay A to relay
  B mid-conversation (a poster keeps posting) with its cursor and misses
  nothing, in order, no duplicates.
- kill -9 of the relay under load (three clients, a poster thread), then a
  restart: every client resumes with its cursor and ends with every
  message of its rooms exactly once, in order, no gap, with no
  de-duplication by the client or the check (a drain cut by the kill
  between its append and its COMMIT offers its rows again, and the
  publish script skips those it appended: docs/realtime.md, "Exactly
  once").
- A slow consumer (SO_RCVBUF 4 KiB, never reads) on a relay started with
  ROOST_RELAY_MAX_OUTPUT=65536 is disconnected once large messages pile
  up (~8.8 MB of them: the kernel's send buffer takes the first ~4 MiB),
  while a normal client on the same relay receives each one promptly.
- Start order: on a fresh database the relay, started before roostctl
  migrate, waits for the schema without logging a failed query, then
  drains; with ROOST_STACK_MIGRATE=1 (./roost up) scripts/stack migrates
  before starting the relay.
(The Redis restart, the relay's own drain timer and heartbeats are in
test_realtime.py and run here in relay mode.)
"""
import os
import re
import signal
import socket
import threading
import time

import api
import test_realtime as rt
from harness import SSEClient, Stack, longpoll, raw_request, run_tests, wait_until
from test_realtime import ev_data, ev_room, ev_type, is_msg, rt_test, send, sse, sse_ok, user


def stack():
    return rt.stack


def msg_ids(events, rooms=None):
    return [ev_data(e)["id"] for e in events if ev_type(e) == "message.created"
            and (rooms is None or ev_room(e) in rooms)]


def check_rooms(ids, per_room, what):
    """ids (in arrival order) hold exactly each room's posted ids, in order."""
    for rid, want in per_room.items():
        w = set(want)
        mine = [x for x in ids if x in w]
        assert mine == want, f"{what}, room {rid}: {len(mine)} of {len(want)} " \
                             f"(first missing {next((x for x in want if x not in set(mine)), None)}, " \
                             f"in order: {mine == sorted(mine, key=want.index)})"


class Poster(threading.Thread):
    """Posts n messages into rooms (round robin) at about rate per second;
    .per_room[room_id] lists the ids in posting order (each room's own
    thread order is its commit order: one poster, sequential)."""

    def __init__(self, token, rooms, n, rate=50.0, text="load {i}"):
        super().__init__(daemon=True)
        self.token, self.rooms, self.n, self.rate, self.text = token, rooms, n, rate, text
        self.per_room = {r["id"]: [] for r in rooms}
        self.all = []
        self.error = None

    def run(self):
        try:
            for i in range(self.n):
                r = self.rooms[i % len(self.rooms)]
                for attempt in range(5):
                    st, _, doc = api.send_resp(stack(), self.token, r["id"], self.text.format(i=i))
                    if st == 201:
                        break
                    time.sleep(0.1)
                else:
                    raise AssertionError(f"post {i}: {st} {doc}")
                self.per_room[r["id"]].append(doc["id"])
                self.all.append(doc["id"])
                time.sleep(1.0 / self.rate)
        except Exception as e:  # reported by the test
            self.error = e


# ------------------------------------------------------------------ routing

@rt_test
def lighttpd_sends_only_the_events_route_to_the_relay():
    s = stack()
    _, at = user()
    c = sse_ok(at, last_event_id=rt.event_cursor(at))
    c.close()
    s.relay_stop()
    try:
        st, _, body = raw_request(s.port, b"GET /api/v1/events HTTP/1.1\r\nHost: t\r\n"
                                          b"Authorization: Bearer " + at.encode() + b"\r\n"
                                          b"Connection: close\r\n\r\n")
        assert st in (502, 503), f"relay down: GET /api/v1/events answered {st} {body[:200]!r}"
        st, _, doc = api.post(s, "/events/ticket", token=at)
        assert st == 201, f"POST /api/v1/events/ticket goes to roost.fcgi: {st} {doc}"
        st, _, doc = api.get(s, "/health")
        assert st == 200, (st, doc)
    finally:
        s.relay_start()
    r = rt.lp(at, rt.event_cursor(at), timeout=0)
    assert r.status == 200, r
    with open(s.log_path("worker"), "rb") as f:
        served = re.findall(rb"GET /api/v1/events[ ?]", f.read())
    assert served == [], f"roost.fcgi served GET /api/v1/events {len(served)} times in relay mode"


@rt_test
def sighup_does_not_stop_the_relay():
    s = stack()
    _, at = user()
    c = sse_ok(at, last_event_id=rt.event_cursor(at))
    pid = s.relay_kill(signal.SIGHUP)
    room = api.create_room(s, at)
    m = send(at, room["id"], "after a hangup")
    c.wait_for(is_msg(m["id"]), timeout=5, what="a message after SIGHUP")
    assert s.relay_pid() == pid, "the relay was restarted or stopped by SIGHUP"


def status_line(port, data, timeout=5, sock=None):
    """The first line of the relay's answer to raw bytes (or of what an
    open socket receives within timeout), without its CRLF."""
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.settimeout(timeout)
        if data:
            s.sendall(data)
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got.split(b"\r\n", 1)[0]
    finally:
        s.close()


@rt_test
def relay_status_lines_carry_their_reason_phrase():
    """Every status the relay answers by itself has RFC 9110's phrase, not
    "Unknown" (408 and 505 had none). Raw sockets, straight to the relay."""
    s = stack()
    port = s.relay_port
    # A request head that never ends: 408 after the relay's 30 s head limit
    # (realtime/relay.c HEAD_MS). Opened first; the other checks run meanwhile.
    slow = socket.create_connection(("127.0.0.1", port), timeout=5)
    slow.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: t\r\n")
    t0 = time.monotonic()
    _, at = user()
    epoch, ordinal, ms, seq = rt.event_cursor(at).split("-")
    other = "0123456789abcdef" if epoch != "0123456789abcdef" else "fedcba9876543210"
    want = [
        (b"GET /api/v1/events HTTP/2.0\r\nHost: t\r\n\r\n", b"505 HTTP Version Not Supported"),
        (b"GET /api/v1/events HTTP/1.2\r\nHost: t\r\n\r\n", b"505 HTTP Version Not Supported"),
        (b"GARBAGE\r\n\r\n", b"400 Bad Request"),
        (b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n", b"404 Not Found"),
        (b"POST /api/v1/events HTTP/1.1\r\nHost: t\r\n\r\n", b"405 Method Not Allowed"),
        (b"GET /api/v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
         b"413 Content Too Large"),
        (b"GET /api/v1/events HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
         b"431 Request Header Fields Too Large"),
        (b"GET /api/v1/events HTTP/1.1\r\nHost: t\r\n\r\n", b"401 Unauthorized"),
        (f"GET /api/v1/events?last_event_id={other}-{ordinal}-{ms}-{seq}&timeout=0 HTTP/1.1\r\n"
         f"Host: t\r\nAuthorization: Bearer {at}\r\n\r\n".encode(), b"410 Gone"),
        (b"GET /relay/health HTTP/1.1\r\nHost: t\r\n\r\n", b"200 OK"),
    ]
    for data, reason in want:
        line = status_line(port, data)
        assert line == b"HTTP/1.1 " + reason, f"{data[:50]!r}: {line!r}, expected {reason!r}"
    line = status_line(port, None, timeout=45, sock=slow)
    assert line == b"HTTP/1.1 408 Request Timeout", \
        f"an unfinished head, after {time.monotonic() - t0:.1f}s: {line!r}"


# ------------------------------------------------------------------ two relays

@rt_test
def client_moves_between_two_relays_and_misses_nothing():
    s = stack()
    relay_b = s.spawn_relay(name="b")
    _, at = user()
    _, bt = user()
    rooms = [api.create_room(s, bt), api.create_room(s, bt)]
    for r in rooms:
        api.join_room(s, at, r["id"])
    rids = {r["id"] for r in rooms}
    cur = rt.event_cursor(at)
    watcher = sse_ok(at, last_event_id=cur, port=s.relay_port)  # stays on relay A
    ca = sse_ok(at, last_event_id=cur, port=s.relay_port)
    poster = Poster(bt, rooms, 80, rate=40)
    poster.start()
    ca.wait_count(25, lambda e: ev_type(e) == "message.created", timeout=10, what="first part on A")
    part_a = msg_ids(ca.since(0), rids)
    last = ca.last_id
    ca.close()
    cb = sse_ok(at, last_event_id=last, port=relay_b.port)
    poster.join(30)
    assert poster.error is None, poster.error
    assert len(poster.all) == 80, len(poster.all)
    final = poster.all[-1]
    cb.wait_for(is_msg(final), timeout=10, what="the last message on relay B")
    part_b = msg_ids(cb.since(0), rids)
    got = part_a + part_b
    assert len(got) == len(set(got)), f"duplicates across the move: {len(got) - len(set(got))}"
    check_rooms(got, poster.per_room, f"moved A -> B (A had {len(part_a)}, B {len(part_b)})")
    watcher.wait_for(is_msg(final), timeout=5)
    check_rooms(msg_ids(watcher.since(0), rids), poster.per_room, "the client that stayed on A")
    # live on B after the move, and B also serves long-poll
    m = send(bt, rooms[0]["id"], "live on B")
    cb.wait_for(is_msg(m["id"]), timeout=5, what="a live message on relay B")
    r = longpoll(relay_b.port, token=at, last_event_id=last, timeout=0)
    assert r.status == 200 and m["id"] in msg_ids(r.events), r
    relay_b.stop()


# ------------------------------------------------------------------ kill -9 under load

@rt_test
def relay_killed_under_load_clients_resume_without_loss():
    s = stack()
    _, pt = user()
    users = [user() for _ in range(3)]
    rooms = [api.create_room(s, pt), api.create_room(s, pt)]
    for _, t in users:
        for r in rooms:
            api.join_room(s, t, r["id"])
    rids = {r["id"] for r in rooms}
    clients = {}
    got = {i: [] for i in range(3)}
    for i, (_, t) in enumerate(users):
        clients[i] = sse_ok(t, last_event_id=rt.event_cursor(t))
    poster = Poster(pt, rooms, 150, rate=50)
    poster.start()
    wait_until(lambda: len(poster.all) >= 50, timeout=15, what="50 messages posted")
    pid = s.relay_kill(signal.SIGKILL)
    for i, c in clients.items():
        assert c.wait_closed(5), f"client {i}: stream still open after kill -9 of relay {pid}"
        got[i] += msg_ids(c.since(0), rids)
    cursors = {i: c.last_id for i, c in clients.items()}
    time.sleep(0.5)
    s.relay_start(wait_proxy=False)
    assert s.relay_pid() not in (None, pid)
    poster.join(30)
    assert poster.error is None, poster.error
    final = poster.all[-1]
    for i, (_, t) in enumerate(users):
        # reconnect like EventSource: retry until the proxy reaches the relay
        deadline = time.monotonic() + 10
        while True:
            c = sse(t, last_event_id=cursors[i])
            if c.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert c.status == 200 and c.is_stream, (c.status, c.body[:200])
        c.wait_for(is_msg(final), timeout=15, what=f"client {i}: the last message after the restart")
        got[i] += msg_ids(c.since(0), rids)
    for i in range(3):
        assert len(got[i]) == len(set(got[i])), \
            f"client {i}: {len(got[i]) - len(set(got[i]))} messages delivered twice"
        check_rooms(got[i], poster.per_room, f"client {i} after kill -9 and restart")


# ------------------------------------------------------------------ slow consumer

@rt_test
def slow_consumer_is_dropped_others_keep_up():
    s = stack()
    cap = 65536
    relay_c = s.spawn_relay(env={"ROOST_RELAY_MAX_OUTPUT": str(cap)}, name="small")
    api.set_settings(s, rt.admin(), message_max_chars=40000)
    try:
        _, pt = user()
        (_, st_), (_, nt) = user(), user()
        room = api.create_room(s, pt)
        for t in (st_, nt):
            api.join_room(s, t, room["id"])
        slow = SSEClient(relay_c.port, token=st_, last_event_id=rt.event_cursor(st_), rcvbuf=4096,
                         read=False)
        rt._open.append(slow)
        assert slow.status == 200 and slow.is_stream, (slow.status, slow.body[:200])
        normal = sse_ok(nt, last_event_id=rt.event_cursor(nt), port=relay_c.port)
        # The kernel alone absorbs ~4 MiB for a client that does not read
        # (loopback send-buffer autotuning up to tcp_wmem's 4 MiB, whatever
        # the client's SO_RCVBUF): send well past that, so that the relay's
        # own queue must grow past its bound.
        big = "x" * 39900
        n = 220
        lat = []
        for i in range(n):
            m = send(pt, room["id"], f"{i} {big}")
            t0 = time.monotonic()
            e = normal.wait_for(is_msg(m["id"]), timeout=5, what=f"big message {i} on the normal client")
            lat.append(max(0.0, e.t - t0))
        assert max(lat) < 2.0, f"the normal client waited up to {max(lat):.2f}s (slow consumer held it up?)"
        # now drain the slow one: the relay must have closed it
        slow.start_reading()
        closed = slow.wait_closed(10)
        n_slow = len(msg_ids(slow.since(0)))
        assert closed, f"the slow consumer is still connected ({n_slow} of {n} messages delivered)"
        assert n_slow < n, f"the slow consumer got all {n} messages: never dropped"
        assert relay_c.alive(), "the relay died"
        # the relay still serves
        m = send(pt, room["id"], "after the drop")
        normal.wait_for(is_msg(m["id"]), timeout=5)
    finally:
        api.set_settings(s, rt.admin(), message_max_chars=4000)
        relay_c.stop()


# ------------------------------------------------------------------ start order

def relay_log(st):
    with open(os.path.join(st.dir, "log", "relay.log"), errors="replace") as f:
        return f.read()


def log_failures(log):
    return [ln for ln in log.splitlines()
            if " error " in ln or "does not exist" in ln or "drain failed" in ln]


@rt_test
def relay_on_a_fresh_database_logs_no_failed_query():
    """A fresh stack: scripts/stack start (the relay with it), then roostctl
    migrate, the order of this harness and of a deployment that migrates
    after starting its services. The relay says once that it waits for the
    migration and logs no failed query (it logged `relation "events" does
    not exist` at every drain tick); once migrated it drains: a message
    reaches the stream. With ROOST_STACK_MIGRATE=1, as ./roost up starts
    the stack, the schema is migrated before the relay starts: it never
    waits, and logs no failure either."""
    fresh = Stack(workers=1, relay=True)
    try:
        time.sleep(1.5)  # drain ticks on a database without the schema
        email, password = api.make_admin(fresh)  # roostctl migrate, then the admin
        tok = api.login(fresh, email, password)["token"]
        room = api.create_room(fresh, tok)
        m = api.send(fresh, tok, room["id"], "after the migration")
        wait_until(lambda: api.sql(fresh, "SELECT count(*) FROM events WHERE published_at IS NULL") == "0",
                   timeout=5, what="the relay to drain once the schema is there")
        raw = fresh.redis_cli("XRANGE", "roost:{roost}:events", "-", "+")
        assert "after the migration" in raw, f"message {m['id']} is not in the stream"
        log = relay_log(fresh)
        assert not log_failures(log), "relay started before migrate:\n" + "\n".join(log_failures(log))
        assert log.count("waiting for roostctl migrate") == 1, log
    finally:
        fresh.stop()
    first = Stack(workers=1, relay=True, env={"ROOST_STACK_MIGRATE": "1"})
    try:
        assert int(api.sql(first, "SELECT count(*) FROM schema_migrations")) > 0, "not migrated by the start"
        time.sleep(1)
        log = relay_log(first)
        assert not log_failures(log), "ROOST_STACK_MIGRATE=1:\n" + "\n".join(log_failures(log))
        assert "waiting for roostctl migrate" not in log, "the relay started before the migration:\n" + log
    finally:
        first.stop()


if __name__ == "__main__":
    rt.start(relay=True)
    run_tests(rt.stack)
