#!/usr/bin/python3
"""Integration: every answer carries the same security and rate-limit headers.

One function writes them (app_answer_headers, lib/app.c); this checks that
no path forgets them, on two stacks: the fallback (roost.fcgi serves
GET /api/v1/events itself) and the relay mode (roost-relay behind
lighttpd).

- Every route the server has (`roostctl routes`, so a new route is
  covered without editing this file), signed out and signed in as an
  admin (ids that do not exist, an empty JSON body): each answer has
  X-Request-Id, Cache-Control: no-store, X-Content-Type-Options:
  nosniff, a Content-Security-Policy that loads nothing and forbids
  framing, X-Frame-Options: DENY and Referrer-Policy: no-referrer; each signed-in answer (the per-user limit counted it) also has
  X-RateLimit-Limit, -Remaining and -Reset.
- The realtime answers in both modes: an SSE head (no-cache), a long-poll
  answered at once, a held long-poll answered by a message (this one had
  neither nosniff nor the rate-limit headers through the relay), a held
  long-poll that times out, a HEAD long-poll, and a held long-poll
  answered 401 because its session ended.
- The relay's own answers (its health, 404, 405, a malformed request).
"""
import concurrent.futures
import os
import subprocess
import time

import api
from harness import SSEClient, Stack, longpoll, raw_request, run_tests, test

BUILD = os.environ.get("ROOST_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
# Heartbeats every second: a fallback worker notices a closed SSE client at
# its next write, and lighttpd may queue a request behind it until then.
ENV = {"ROOST_SSE_HEARTBEAT_S": "1"}
fallback = Stack(workers=4, relay=False, env=ENV)
relay = Stack(workers=3, relay=True, env=ENV)
STACKS = (("fallback", fallback), ("relay", relay))
MISSING_ID = "987654"


def admin(st):
    return api.admin_session(st)[0]


def check(headers, what, limited, stream=False):
    h = {k.lower(): v for k, v in headers.items()}
    assert h.get("x-content-type-options") == "nosniff", f"{what}: no nosniff: {h}"
    assert h.get("content-security-policy") == "default-src 'none'; frame-ancestors 'none'", \
        f"{what}: Content-Security-Policy {h.get('content-security-policy')!r}"
    assert h.get("x-frame-options") == "DENY", f"{what}: X-Frame-Options {h.get('x-frame-options')!r}"
    assert h.get("referrer-policy") == "no-referrer", \
        f"{what}: Referrer-Policy {h.get('referrer-policy')!r}"
    want = "no-cache" if stream else "no-store"
    assert h.get("cache-control") == want, f"{what}: Cache-Control {h.get('cache-control')!r}, want {want}"
    rid = h.get("x-request-id", "")
    assert 8 <= len(rid) <= 40, f"{what}: no X-Request-Id: {h}"
    if limited:
        for k in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
            assert h.get(k, "").isdigit(), f"{what}: no {k}: {h}"


def server_routes():
    p = subprocess.run([os.path.join(BUILD, "roostctl"), "routes"], capture_output=True, text=True,
                       check=True)
    out = []
    for line in p.stdout.splitlines():
        method, path, auth = line.split()
        out.append((method, path, auth))
    return out


def concrete(path):
    path = path.replace("{emoji}", "thumbsup")
    while "{" in path:
        a, b = path.index("{"), path.index("}")
        path = path[:a] + MISSING_ID + path[b + 1:]
    return path


@test
def every_route_answers_with_the_common_headers():
    routes = server_routes()
    assert len(routes) > 40, routes
    for name, st in STACKS:
        tok = admin(st)
        for method, path, auth in routes:
            if path == "/api/v1/auth/logout":
                continue  # below, with a session of its own
            url = concrete(path) + ("?timeout=0" if path == "/api/v1/events" else "")
            body = {} if method in ("POST", "PATCH", "PUT") else None
            for signed_in in (False, True):
                s, h, b = api.request(st, method, url, json=body, token=tok if signed_in else None)
                what = f"{name}: {method} {url} ({'admin' if signed_in else 'no credential'}) -> {s}"
                assert s is not None and s < 500, f"{what}: {b!r}"
                check(h, what, limited=signed_in and auth != "none")
        # logout, once
        _, email, password = api.admin_session(st)
        t2 = api.login(st, email, password, device="mobile")["token"]
        s, h, _ = api.post(st, "/auth/logout", token=t2)
        assert s == 204, s
        check(h, f"{name}: POST /auth/logout", limited=True)


@test
def error_answers_before_routing_have_the_common_headers():
    for name, st in STACKS:
        for method, url, want in (("GET", "/api/v1/nope", 404), ("DELETE", "/api/v1/health", 405),
                                  ("GET", "/api/v1/rooms/99999999999999999999", 400),
                                  ("POST", "/api/v1/auth/login", 415)):
            s, h, _ = api.request(st, method, url, raw_body=b"x" if method == "POST" else None,
                                  content_type="text/plain")
            assert s == want, (name, method, url, s)
            check(h, f"{name}: {method} {url} -> {s}", limited=False)


_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)


def member(st):
    u, email, password = api.create_user(st, admin(st))
    tok = api.login(st, email, password)["token"]
    for r in api.my_rooms(st, tok):
        if r.get("is_default"):
            api.leave_room(st, tok, r["id"])
    room = api.create_room(st, tok, kind="private")["id"]
    return tok, room


def settle(st):
    deadline = time.monotonic() + 10
    while api.sql(st, "SELECT count(*) FROM events WHERE published_at IS NULL") != "0":
        assert time.monotonic() < deadline, "the outbox was not drained"
        time.sleep(0.05)


@test
def realtime_answers_have_the_common_headers_in_both_modes():
    for name, st in STACKS:
        tok, room = member(st)
        settle(st)

        c = SSEClient(st.port, token=tok)
        try:
            assert c.status == 200 and c.is_stream, (name, c.status)
            check(c.headers, f"{name}: SSE head", limited=True, stream=True)
        finally:
            c.close()

        # A long-poll answered by a message while held (relay: answered
        # by the relay itself, after the opening request's answer was
        # never sent).
        cur = longpoll(st.port, token=tok, timeout=0).cursor
        f = _pool.submit(longpoll, st.port, token=tok, last_event_id=cur, timeout=20)
        time.sleep(0.6)
        assert not f.done(), f"{name}: the long-poll did not wait: {f.result()}"
        m = api.send(st, tok, room, "wakes the long-poll")
        r = f.result(timeout=10)
        assert r.status == 200 and [e for e in r.events if e["data"].get("id") == m["id"]], (name, r)
        check(r.headers, f"{name}: held long-poll answered by a message", limited=True)

        # Answered at once (an event waits).
        r = longpoll(st.port, token=tok, last_event_id=cur, timeout=20)
        assert r.status == 200 and r.events and r.elapsed < 5, (name, r)
        check(r.headers, f"{name}: long-poll answered at once", limited=True)

        # Held until its time is up.
        r = longpoll(st.port, token=tok, timeout=1)
        assert r.status == 200 and r.events == [] and r.elapsed >= 0.9, (name, r)
        check(r.headers, f"{name}: long-poll that timed out", limited=True)

        # HEAD.
        s, h, _ = api.request(st, "HEAD", "/api/v1/events?timeout=1", token=tok)
        assert s == 200, (name, s)
        check(h, f"{name}: HEAD long-poll", limited=True)

        # A held long-poll whose session ends.
        f = _pool.submit(longpoll, st.port, token=tok, timeout=20)
        time.sleep(0.6)
        s, _, _ = api.post(st, "/auth/logout", token=tok)
        assert s == 204
        r = f.result(timeout=10)
        assert r.status == 401, (name, r)
        check(r.headers, f"{name}: held long-poll ended by logout", limited=True)


@test
def relay_own_answers_have_the_common_headers():
    port = relay.relay_port
    for req, want in ((b"GET /relay/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200),
                      (b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
                      (b"POST /relay/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405),
                      (b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413),
                      (b"BLAH\r\n\r\n", 400)):
        s, h, _ = raw_request(port, req)
        assert s == want, (req, s, h)
        check(h, f"relay: {req[:30]!r} -> {s}", limited=False)


if __name__ == "__main__":
    run_tests(fallback, relay)
