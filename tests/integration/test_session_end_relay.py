#!/usr/bin/python3
"""Integration: ending a session ends its open streams, through roost-relay.

Runs every test of test_session_end.py with roost-relay behind lighttpd
(Stack(relay=True)), then these relay-only ones:

- A revocation made while the relay's Redis subscriber is reconnecting
  (its connection killed with CLIENT KILL just before) still ends the
  stream within 2 s: the session.ended event is durable, and the relay
  reads the stream on its own timer even without a wake-up.
- A revocation that left no event at all (SQL alone) on a relay that
  checks sessions only hourly is caught when the relay's subscriber
  reconnects: it re-checks every open stream's session then.
- Every relay process: two relays on one Redis, a stream of the session on
  each; one logout ends both.
- The periodic check runs at its interval when that is longer than the
  relay's other timers (a relay checking every 7 s: a session revoked by
  SQL alone ends within one interval and a little).
- The periodic check goes through every stream when there are more than
  one batch of them (1,000 per query, one batch per loop turn): 1,200
  streams on the relay that checks every second, three of them revoked by
  SQL alone (the first, a middle and the last opened), all three ended
  within a few seconds and the others untouched.
"""
import socket
import time

import api
import test_session_end as se
from harness import SSEClient, run_tests, wait_until
from test_session_end import END_WITHIN_S, expect_stream_ended, is_ended, member, rt_test, session_id


def wait_subscribed(st):
    """Until a relay's subscriber is connected again, and its tick (every
    250 ms) has run the re-check that follows a resubscription."""
    wait_until(lambda: "cmd=subscribe" in st.redis_cli("CLIENT", "LIST", "TYPE", "pubsub"),
               timeout=10, what="the relay's subscriber")
    time.sleep(0.6)


def kill_relay_subscribers(st):
    """Kills every pub/sub connection on the stack's Redis (the relays'
    subscribers); returns how many."""
    n = st.redis_cli("CLIENT", "KILL", "TYPE", "pubsub")
    return int(n or 0)


@rt_test
def revocation_while_the_relay_reconnects_to_redis_still_ends_the_stream():
    st = se.stack
    u, desk, mob, room, _ = member()
    c = se.sse(st, desk)
    wait_subscribed(st)
    assert kill_relay_subscribers(st) >= 1, "no subscriber connection to kill"
    t0 = time.monotonic()
    s, _, _ = api.post(st, "/auth/logout", token=desk)
    assert s == 204
    expect_stream_ended(c, "logout", t0, "logout while the relay resubscribes")


@rt_test
def relay_rechecks_every_stream_when_it_reconnects_to_redis():
    st = se.stack  # sessions are checked only hourly there
    u, desk, mob, room, _ = member()
    c = se.sse(st, desk)
    survivor = se.sse(st, mob)
    wait_subscribed(st)
    sid = session_id(st, desk)
    api.sql(st, f"UPDATE sessions SET revoked_at = now(), revoked_reason = 'revoked' WHERE id = {int(sid)}")
    time.sleep(1.5)
    assert not [e for e in c.events if is_ended(e)] and not c.closed, \
        "ended before the reconnect: this test needs the hourly check not to run"
    assert kill_relay_subscribers(st) >= 1
    t0 = time.monotonic()
    ev = c.wait_for(is_ended, timeout=END_WITHIN_S + 3, what="session.ended after the reconnect")
    assert (ev.json or {}).get("data", {}).get("reason") == "revoked", ev
    assert ev.t - t0 <= END_WITHIN_S + 1, f"ended {ev.t - t0:.2f}s after the reconnect"
    assert c.wait_closed(2)
    se.still_delivers(survivor, st, mob, room, "the other session after the reconnect")


@rt_test
def logout_ends_the_sessions_streams_on_every_relay():
    st = se.stack
    other = st.spawn_relay(name="second")
    u, desk, mob, room, _ = member()
    a = se.sse(st, desk)
    b = SSEClient(other.port, token=desk)
    se._open.append(b)
    assert b.status == 200 and b.is_stream, (b.status, b.body[:200])
    t0 = time.monotonic()
    s, _, _ = api.post(st, "/auth/logout", token=desk)
    assert s == 204
    expect_stream_ended(a, "logout", t0, "relay A")
    expect_stream_ended(b, "logout", t0, "relay B")
    other.stop()


@rt_test
def periodic_check_runs_at_a_longer_interval():
    st = se.stack  # its own relay checks only hourly: this one every 7 s
    relay = st.spawn_relay(env={"ROOST_SESSION_RECHECK_S": "7"}, name="recheck7")
    try:
        u, desk, mob, room, _ = member()
        c = SSEClient(relay.port, token=desk)
        se._open.append(c)
        assert c.status == 200 and c.is_stream, (c.status, c.body[:200])
        sid = session_id(st, desk)
        api.sql(st, f"UPDATE sessions SET revoked_at = now(), revoked_reason = 'revoked' WHERE id = {int(sid)}")
        t0 = time.monotonic()
        ev = c.wait_for(is_ended, timeout=12, what="session.ended from a relay checking every 7 s")
        assert (ev.json or {}).get("data", {}).get("reason") == "revoked", ev
        assert ev.t - t0 <= 9, f"ended {ev.t - t0:.1f}s after the revocation (interval 7 s)"
    finally:
        relay.stop()


def open_raw_sse(port, token):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n"
              f"Authorization: Bearer {token}\r\n\r\n".encode())
    return s


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, f"closed before the head: {data!r}"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    return data


@rt_test
def periodic_check_covers_more_streams_than_one_batch():
    st = se.lost
    u, desk, mob, room, _ = member(st)
    victims = []
    for _ in range(3):
        _, email, password = api.create_user(st, se.admin(st))
        victims.append(api.login(st, email, password)["token"])
    order = [victims[0]] + [desk] * 599 + [victims[1]] + [desk] * 599 + [victims[2]]
    socks = []
    try:
        for i in range(0, len(order), 100):
            batch = [open_raw_sse(st.relay_port, t) for t in order[i:i + 100]]
            for s in batch:
                read_head(s)
            socks += batch
        assert len(socks) == 1201
        vs = [socks[0], socks[600], socks[1200]]
        for t in victims:
            sid = session_id(st, t)
            api.sql(st, f"UPDATE sessions SET revoked_at = now(), revoked_reason = 'revoked' WHERE id = {int(sid)}")
        t0 = time.monotonic()
        for k, s in enumerate(vs):
            s.settimeout(0.5)
            got = b""
            while True:
                # heartbeats come every second: a deadline of our own
                assert time.monotonic() - t0 < 6, \
                    f"victim {k + 1} of 3 still open 6 s after its session was revoked: {got[-300:]!r}"
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                got += chunk
            assert b"event: session.ended" in got and b'"reason":"revoked"' in got, (k, got[-300:])
        # The others live on: a filler stream gets the next message.
        filler = socks[300]
        filler.settimeout(0.2)
        try:
            while filler.recv(65536):
                pass
        except socket.timeout:
            pass
        m = api.send(st, desk, room, "still here")
        filler.settimeout(1)
        got, deadline = b"", time.monotonic() + 5
        while f'"id": {m["id"]},'.encode() not in got:
            assert time.monotonic() < deadline, f"a live session's stream did not get the message: {got[-300:]!r}"
            try:
                chunk = filler.recv(65536)
            except socket.timeout:
                continue
            assert chunk, "a stream of a live session was closed"
            got += chunk
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    se.start(relay=True)
    run_tests(se.stack, se.lost)
