#!/usr/bin/python3
"""The scenario test_matrix.py runs against every deployment shape, over
plain HTTP to 127.0.0.1:PORT (stdlib only; see test_matrix.py's docstring
for the steps).

    findings = scenario(Target(port, admin_email, admin_password,
                               served_by_relay, prefix=""), "relay")

served_by_relay(request_id) -> whether the relay served the request with
that X-Request-Id (its log names every request it serves): the scenario
checks with it that the events went where the shape says ("relay" or
"worker"); None when no relay runs (the workers then also drain the
outbox themselves). (A count of the relay's connections could not tell:
a proxy may reuse a kept-alive connection to the relay.)"""
import http.client
import json
import os
import re
import threading
import time

import api
from harness import REPO, SSEClient, longpoll, raw_request

DELIVERY_S = 1.0          # an event must reach both clients this fast


def _dev_csp():
    """The web client's Content-Security-Policy as the development
    configuration sends it (docs/web-client.md): every shipped sample must
    send the same one for the static files."""
    src = os.path.abspath(os.environ.get("ROOST_SRC_DIR") or REPO)
    with open(os.path.join(src, "httpd-conf", "lighttpd-dev.conf.in"), encoding="utf-8") as f:
        m = re.search(r'"Content-Security-Policy" => "([^"]+)"', f.read())
    assert m, "lighttpd-dev.conf.in no longer sends a Content-Security-Policy"
    return m.group(1)


WEB_CSP = _dev_csp()
# What the static files (and the server's own error pages for them) carry.
STATIC_HEADERS = {"content-security-policy": WEB_CSP, "x-frame-options": "DENY",
                  "referrer-policy": "no-referrer", "x-content-type-options": "nosniff"}


class Target:
    def __init__(self, port, admin_email, admin_password, served_by_relay, prefix="",
                 body_limit=1048576, column=None):
        self.port, self.prefix = port, prefix
        # The shape's column of docs/api.md's path table (api.PATH_COLUMNS).
        self.column = column
        self.admin_email, self.admin_password = admin_email, admin_password
        self.served_by_relay = served_by_relay
        self.body_limit = body_limit
        # Ticket and cursor values the scenario put in URLs: no log may
        # hold them (test_matrix.py checks the shape's logs afterwards).
        self.secrets = []


# ----------------------------------------------------------------- HTTP

class Http:
    """Requests to one shape: path prefix (a user's folder) and port."""

    def __init__(self, port, prefix=""):
        self.port = port
        self.prefix = prefix

    def url(self, path):
        return self.prefix + path

    def req(self, method, path, body=None, token=None, cookies=None, headers=None, raw=None,
            timeout=15):
        hdrs = {"Connection": "close", "User-Agent": "roost-matrix/1"}
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method, self.url(path), skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            if data is not None or method in ("POST", "PUT", "PATCH", "DELETE"):
                conn.putheader("Content-Length", str(len(data or b"")))
            conn.endheaders(data)
            resp = conn.getresponse()
            rawbody = resp.read()
            status, rh = resp.status, resp.msg
        finally:
            conn.close()
        try:
            doc = json.loads(rawbody) if rawbody else None
        except ValueError:
            doc = None
        return status, rh, doc, rawbody


def error_code(doc):
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return doc["error"].get("code")
    return None


def is_message(ev, msg_id):
    d = ev.json if ev.json is not None else {}
    return ev.event == "message.created" and isinstance(d.get("data"), dict) and \
        d["data"].get("id") == msg_id


class LongPoller(threading.Thread):
    """Long-polls (Bearer) in a loop, each poll continuing from the last
    answer's cursor, until an answer carries a message.created (the
    scenario posts one message while it runs); notes when it arrived and
    when its poll had started. .current = (start, end or None) of the
    latest poll."""

    def __init__(self, http, token, cursor):
        super().__init__(daemon=True)
        self.http, self.token, self.cursor = http, token, cursor
        self.current = (None, None)
        self.seen = {}            # message id -> (answer time, poll start)
        self.polls = []
        self.error = None
        self.stop = False

    def run(self):
        try:
            deadline = time.monotonic() + 60
            while not self.stop and time.monotonic() < deadline:
                start = time.monotonic()
                self.current = (start, None)
                r = longpoll(self.http.port, token=self.token, last_event_id=self.cursor,
                             timeout=20, path=self.http.url("/api/v1/events"), http_timeout=40)
                end = time.monotonic()
                self.polls.append((round(start, 3), round(end, 3), r.status))
                if r.status != 200:
                    self.error = f"long-poll answered {r.status}: {r.raw[:300]!r} {r.headers}"
                    return
                for e in r.events or []:
                    if e.get("type") == "message.created":
                        self.seen.setdefault((e.get("data") or {}).get("id"), (end, start))
                self.cursor = r.cursor or self.cursor
                self.current = (start, end)
                if self.seen:
                    return  # the one live message: done (frees the worker)
        except Exception as e:  # reported by the scenario
            self.error = repr(e)

    def wait_for(self, msg_id, timeout):
        deadline = time.monotonic() + timeout
        while msg_id not in self.seen:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, \
                f"the long-poll never delivered message {msg_id}: polls {self.polls}"
            time.sleep(0.01)
        return self.seen[msg_id]


def no_version(hd, what):
    """The Server header, if any, names no version."""
    for v in hd.get_all("Server") or []:
        assert not re.search(r"\d", v), f"{what}: Server: {v!r} tells the version"
    return ", ".join(hd.get_all("Server") or []) or "none"


def security_headers(h, token):
    """The static files (an index page, a script, a missing file: the
    server's own 404) carry the web client's CSP, X-Frame-Options,
    Referrer-Policy and nosniff, once each; Roost's /api/ answers carry
    each of those exactly once too (Roost's own, not doubled by the
    server); no Server header names a version. Returns findings."""
    servers = set()
    for path, want_st in (("/", 200), ("/js/main.js", 200), ("/no-such-file.js", 404)):
        st, hd, _, raw = h.req("GET", path)
        what = f"GET {h.url(path)} ({st})"
        assert st == want_st, f"{what}: {raw[:200]!r}"
        for k, v in STATIC_HEADERS.items():
            got = hd.get_all(k) or []
            assert got == [v], f"{what}: {k}: {got}, want [{v!r}]"
        servers.add(no_version(hd, what))
    for path, tok in (("/api/v1/health", None), ("/api/v1/no-such-thing", None),
                      ("/api/v1/me", token), ("/api/v1/events?timeout=0", token)):
        st, hd, _, raw = h.req("GET", path, token=tok)
        what = f"GET {h.url(path)} ({st})"
        assert st in (200, 404) and hd["X-Request-Id"], f"{what}: not Roost's answer: {raw[:200]!r}"
        for k in STATIC_HEADERS:
            got = hd.get_all(k) or []
            assert len(got) == 1, f"{what}: {k} {len(got)} times: {got}"
        assert "frame-ancestors 'none'" in hd["Content-Security-Policy"], \
            f"{what}: CSP {hd['Content-Security-Policy']!r}"
        assert hd["X-Frame-Options"] == "DENY", f"{what}: X-Frame-Options {hd['X-Frame-Options']!r}"
        servers.add(no_version(hd, what))
    return {"security headers": "static and /api/ as expected", "Server": " | ".join(sorted(servers))}


# ----------------------------------------------------------------- scenario

def scenario(t, events):
    """The shared scenario against one shape; returns its findings."""
    port = t.port
    h = Http(port, t.prefix)
    served_by_relay = t.served_by_relay
    BODY_LIMIT = t.body_limit
    f = {}

    # The web client: static files from the web root.
    st, hd, _, raw = h.req("GET", "/")
    assert st == 200 and b"<html" in raw.lower() and "text/html" in (hd["Content-Type"] or ""), \
        f"GET {h.url('/')}: {st} {hd['Content-Type']} {raw[:200]!r}"

    st, _, doc, raw = h.req("GET", "/api/v1/health")
    assert st == 200 and doc and doc.get("status") == "ok", f"health: {st} {raw[:300]!r}"

    # Roost's own errors pass through untouched (no server error page).
    st, hd, doc, raw = h.req("GET", "/api/v1/no-such-thing")
    assert st == 404 and error_code(doc) == "NOT_FOUND" and hd["X-Request-Id"], \
        f"Roost's 404 was replaced or lost: {st} {raw[:300]!r}"

    # Dot segments, backslashes, encoded slashes: what docs/api.md's path
    # table says this shape answers, and the events path as it describes.
    if t.column is not None:
        rows = api.check_path_answers(port, t.column, t.prefix)
        f["paths"] = f"{len(rows)} as docs/api.md's {t.column} column says"
        want = {("relay", "lighttpd"): (401, "UNAUTHORIZED"), ("relay", "apache"): (401, "UNAUTHORIZED"),
                ("relay", "nginx"): (404, "NOT_FOUND")}.get((events, t.column), (400, "BAD_REQUEST"))
        st, _, doc, raw = h.req("GET", "/api/v1/x/../events")
        assert (st, error_code(doc)) == want, \
            f"GET /api/v1/x/../events: expected {want} (docs/api.md), got {st} {raw[:200]!r}"

    # Login: a token (Bearer) and the session cookie (browsers, EventSource).
    st, hd, doc, raw = h.req("POST", "/api/v1/auth/login",
                             {"email": t.admin_email, "password": t.admin_password,
                              "device": "desktop"})
    assert st == 200 and doc.get("token"), f"login: {st} {raw[:300]!r}"
    token = doc["token"]
    cookies = {n: v for n, (v, _) in api.set_cookies(hd).items()}
    assert "roost_session" in cookies, f"login set no session cookie: {hd.get_all('Set-Cookie')}"
    st, _, me, raw = h.req("GET", "/api/v1/me", token=token)
    assert st == 200 and me["email"] == t.admin_email, \
        f"GET /me with Authorization: Bearer: {st} {raw[:300]!r} " \
        f"(the Authorization header not passed on?)"
    f.update(security_headers(h, token))

    st, _, room, raw = h.req("POST", "/api/v1/rooms", {"name": api.unique("mx"), "kind": "public"},
                             token=token)
    assert st == 201, f"create room: {st} {raw[:300]!r}"
    rid = room["id"]

    # Post and page the history.
    posted = []
    for i in range(3):
        st, _, m, raw = h.req("POST", f"/api/v1/rooms/{rid}/messages",
                              {"type": "text", "content": f"history {i}"}, token=token)
        assert st == 201, f"post: {st} {raw[:300]!r}"
        posted.append(m["id"])
    st, _, page, raw = h.req("GET", f"/api/v1/rooms/{rid}/messages?limit=2", token=token)
    assert st == 200 and [m["id"] for m in page["messages"]] == posted[1:] and page["has_more"], \
        f"page 1: {st} {raw[:400]!r}"
    st, _, page2, raw = h.req("GET", f"/api/v1/rooms/{rid}/messages?limit=2&before={posted[1]}",
                              token=token)
    assert st == 200 and posted[0] in [m["id"] for m in page2["messages"]] and \
        all(m["id"] < posted[1] for m in page2["messages"]), f"page 2: {st} {raw[:400]!r}"

    # The ticket route is the workers', even where the relay takes
    # GET /api/v1/events (the relay would answer 404 or 405).
    st, _, tk, raw = h.req("POST", "/api/v1/events/ticket", token=token)
    assert st == 201 and tk.get("ticket"), f"POST /events/ticket: {st} {raw[:300]!r}"

    st, _, rooms, raw = h.req("GET", "/api/v1/rooms", token=token)
    assert st == 200 and rooms.get("event_cursor"), f"GET /rooms: {st} {raw[:300]!r}"
    cursor = rooms["event_cursor"]
    t.secrets += [tk["ticket"], cursor]

    # The ticket and the cursor in the URL, as a browser's EventSource
    # sends them (a long-poll answered at once: it holds no worker).
    r = longpoll(port, last_event_id=cursor, timeout=0, params={"ticket": tk["ticket"]},
                 path=h.url("/api/v1/events"))
    assert r.status == 200, f"a long-poll with ?ticket=: {r.status} {r.raw[:300]!r}"

    # Realtime: an SSE stream (the session cookie, as EventSource sends
    # it) and a waiting long-poll (Bearer), then one post.
    sse = SSEClient(port, path=h.url("/api/v1/events"), cookies=cookies, last_event_id=cursor,
                    timeout=15)
    try:
        assert sse.status == 200 and sse.is_stream, \
            f"SSE: {sse.status} {sse.headers} {sse.body[:300]!r}"
        if served_by_relay:
            req_id = sse.headers.get("x-request-id", "")
            by_relay = bool(req_id) and served_by_relay(req_id)
            assert by_relay == (events == "relay"), \
                f"events should be served by the {events}, but the relay's log " \
                f"{'names' if by_relay else 'does not name'} the stream's request {req_id!r}"
        f["events served by"] = events
        lp = LongPoller(h, token, cursor)
        lp.start()
        try:
            # Post once a long-poll has been waiting for a moment (an early
            # answer, e.g. a presence change, starts the next one).
            deadline = time.monotonic() + 15
            while True:
                assert lp.error is None, lp.error
                start, end = lp.current
                if start is not None and end is None and time.monotonic() - start > 0.5:
                    break
                assert time.monotonic() < deadline, f"no long-poll stayed open: {lp.polls}"
                time.sleep(0.02)
            t_post = time.monotonic()
            st, _, m, raw = h.req("POST", f"/api/v1/rooms/{rid}/messages",
                                  {"type": "text", "content": "live over every shape"},
                                  token=token)
            t_ack = time.monotonic()
            assert st == 201, f"post: {st} {raw[:300]!r}"
            ev = sse.wait_for(lambda e: is_message(e, m["id"]), timeout=10,
                              what=f"message.created {m['id']} over SSE")
            f["SSE delivery"] = f"{ev.t - t_ack:+.3f}s after the post's answer"
            assert ev.t - t_ack <= DELIVERY_S, \
                f"SSE: the event came {ev.t - t_ack:.2f}s after the post: something buffers"
            found_at, poll_start = lp.wait_for(m["id"], timeout=10)
            assert poll_start < t_post, "the delivering long-poll started after the post"
            f["long-poll delivery"] = f"{found_at - t_ack:+.3f}s after the post's answer"
            assert found_at - t_ack <= DELIVERY_S, \
                f"long-poll: answered {found_at - t_ack:.2f}s after the post: something buffers"
        finally:
            lp.stop = True
            t.secrets.append(lp.cursor)

        # React; the reaction's event follows on the same stream.
        mark = sse.mark()
        st, _, rx, raw = h.req("PUT", f"/api/v1/messages/{m['id']}/reactions/heart", token=token)
        assert st == 200 and any(r["emoji"] == "heart" and r["count"] == 1
                                 for r in rx["reactions"]), f"react: {st} {raw[:300]!r}"
        sse.wait_for(lambda e: e.event == "reaction.updated", start=mark, timeout=5,
                     what="reaction.updated over SSE")

        # Heartbeats flow as well (every 2 s in this run).
        deadline = time.monotonic() + 5
        while not any(c[1] == "hb" for c in sse.comments):
            assert time.monotonic() < deadline and not sse.closed, \
                f"no heartbeat comment over SSE: {sse.comments}"
            sse.wait_comments(len(sse.comments) + 1, timeout=0.5)
    finally:
        sse.close()

    # A body just under the limit reaches Roost whole: its own validation
    # error (the text is too long), not a server's 413 or 500, nor
    # "invalid JSON" from a truncated body.
    content = "x" * (BODY_LIMIT - 200)
    st, _, doc, raw = h.req("POST", f"/api/v1/rooms/{rid}/messages",
                            {"type": "text", "content": content}, token=token)
    assert st == 400 and error_code(doc) == "VALIDATION_ERROR", \
        f"a {BODY_LIMIT - 150}-byte body did not reach Roost whole: {st} {raw[:300]!r}"

    # A chunked body (no Content-Length): the server de-chunks it, or
    # passes it without a length (mod_proxy_fcgi), and Roost reads it whole.
    payload = json.dumps({"type": "text", "content": "sent chunked"}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    head = (f"POST {h.url(f'/api/v1/rooms/{rid}/messages')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    st, hd, body = raw_request(port, head + chunked, timeout=15)
    f["chunked body"] = f"{st}"
    assert st == 201 and b"sent chunked" in body, \
        f"a chunked POST: expected 201 with the message, got {st} {hd} {body[:300]!r}"

    # Over the limit: 413, promptly, whoever answers.
    big = b"{" + b" " * (2 * 1024 * 1024 - 2) + b"}"
    head = (f"POST {h.url(f'/api/v1/rooms/{rid}/messages')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(big)}\r\nConnection: close\r\n\r\n").encode()
    t0 = time.monotonic()
    st, hd, body = raw_request(port, head + big, timeout=15)
    took = time.monotonic() - t0
    assert st == 413, f"2 MiB body: expected 413, got {st} {hd} {body[:300]!r}"
    try:
        code = error_code(json.loads(body))
    except ValueError:
        code = None
    f["2 MiB body"] = f"413 {code or body[:60]!r} in {took:.2f}s, " + \
        ("from Roost" if "x-request-id" in hd else "from the server")
    assert took < 10, f"the 413 took {took:.1f}s"

    # An oversize header: a clean 4xx, no hang, and the server lives on.
    t0 = time.monotonic()
    st, hd, body = raw_request(port, (f"GET {h.url('/api/v1/health')} HTTP/1.1\r\n"
                                      f"Host: 127.0.0.1\r\nCookie: big={'c' * 20480}\r\n"
                                      f"Connection: close\r\n\r\n").encode(), timeout=10)
    took = time.monotonic() - t0
    assert st is not None and 400 <= st < 500, f"20 KiB Cookie: {st} {hd} {body[:200]!r}"
    assert took < 5, f"20 KiB Cookie: answered after {took:.1f}s"
    try:
        code = error_code(json.loads(body))
    except ValueError:
        code = None
    f["20 KiB Cookie"] = f"{st} {code or body[:50]!r}"
    st, _, doc, raw = h.req("GET", "/api/v1/health")
    assert st == 200, f"health after the oversize header: {st} {raw[:200]!r}"

    # Logout; the token is dead afterwards.
    st, _, _, raw = h.req("POST", "/api/v1/auth/logout", token=token)
    assert st == 204, f"logout: {st} {raw[:300]!r}"
    st, _, doc, raw = h.req("GET", "/api/v1/me", token=token)
    assert st == 401, f"GET /me after logout: {st} {raw[:200]!r}"
    return f
