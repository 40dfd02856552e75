#!/usr/bin/python3
"""Integration: what the public URL of `./roost up` holds (issue 12).

The stack of `./roost up` (scripts/stack renders httpd-conf/lighttpd-dev.conf.in;
roost-relay serves GET /api/v1/events behind lighttpd's proxy), driven
through lighttpd's public port only:

- STREAMS Server-Sent Events streams open through the public URL, and while
  they are open GET /api/v1/health still answers 200 and one more stream
  still opens; closed streams are let go of. lighttpd's defaults
  (server.max-fds 4,096, a third of it in connections) stopped accepting
  at the 1,366th connection ("sockets disabled, connection limit reached"),
  and every request after it, REST included, waited.
- A request head sent one byte every 3 s is dropped within a bounded time
  (lighttpd's read timer restarts on every byte: the old 60 s never
  dropped it), while a request body that pauses as long still arrives.
- roost-relay started with a soft open-file limit of 1,024 (a login
  shell's) raises it to its hard limit, at most 65,536: it needs one
  descriptor per stream, and refused the 1,025th.

Bounded: every wait has a deadline; the streams are opened from this process
(streams.py: non-blocking sockets, STREAMS plus a few descriptors, well under
its 20,000). Loopback only. The 8,000-stream figure is the bench's
(bench/public_streams.py); this test only has to cross the old limit."""
import json
import re
import resource
import time

import api
from harness import Stack, raw_request, run_tests, test, wait_until
from streams import Streams, slow_pieces, trickle

STREAMS = 2000          # > 1,365: the old limit
TRICKLE_GAP = 3.0       # the slow client: one byte every 3 s
DROP_WITHIN = 10.0      # ... is dropped by then
DRAIN_WITHIN = 30.0     # closed streams are let go of by then

# Heartbeats every 5 s: lighttpd notices a stream its client closed when
# it next writes to it (it allows half-closed clients).
stack = Stack(workers=2, relay=True, env={"ROOST_SSE_HEARTBEAT_S": "5"})
PORT = stack.port
email, password = api.make_admin(stack)
TOKEN = api.login(stack, email, password)["token"]
# one user opens every stream: its 600 requests a minute would stop them
api.relax_limits(stack, TOKEN)


def health(timeout=10):
    return raw_request(PORT, b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Connection: close\r\n\r\n", timeout=timeout)


def relay_connections():
    st, _, body = raw_request(stack.relay_port, b"GET /relay/health HTTP/1.1\r\nHost: t\r\n"
                                                b"Connection: close\r\n\r\n", timeout=10)
    assert st == 200, (st, body[:200])
    return json.loads(body)["connections"]


@test
def public_url_holds_streams_while_rest_answers():
    streams = Streams(PORT, TOKEN, STREAMS)
    try:
        assert not streams.failed, (f"{len(streams.ok)} of {STREAMS} streams opened through the public "
                                    f"URL in {streams.took:.1f} s; {streams.failed} failed, the first: "
                                    f"{streams.why}")
        # each one is a stream the relay holds
        held = relay_connections()
        assert held >= STREAMS, f"the relay holds {held} connections, {STREAMS} streams are open"
        # REST answers (a generous timeout: this is about answering at all)
        st, headers, body = health(timeout=10)
        assert st == 200, ("GET /api/v1/health with the streams open", st, body[:200])
        assert json.loads(body)["status"] == "ok", body[:200]
        # and the next stream opens too
        one = Streams(PORT, TOKEN, 1, deadline=10)
        try:
            assert len(one.ok) == 1, f"stream {STREAMS + 1} did not open: {one.why}"
        finally:
            one.close()
    finally:
        streams.close()
    deadline = time.monotonic() + DRAIN_WITHIN
    while relay_connections() > 50 and time.monotonic() < deadline:
        time.sleep(0.2)
    left = relay_connections()
    assert left <= 50, f"{DRAIN_WITHIN:.0f} s after the clients closed, the relay still holds {left}"


@test
def slow_request_heads_are_dropped():
    head = (f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\n"
            f"User-Agent: {'x' * 200}\r\n\r\n").encode()
    took, sent, got = trickle(PORT, head, TRICKLE_GAP, DROP_WITHIN + 5)
    assert took is not None, (f"a head sent one byte every {TRICKLE_GAP:g} s: still open after "
                              f"{DROP_WITHIN + 5:g} s ({sent} bytes sent)")
    assert took <= DROP_WITHIN, f"a head sent one byte every {TRICKLE_GAP:g} s: dropped only after {took:.1f} s"
    assert not got.startswith(b"HTTP/1.1 200"), got[:200]
    # the same after a first request on a kept-alive connection
    first = f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\n\r\n".encode()
    took, sent, got = trickle(PORT, head, TRICKLE_GAP, DROP_WITHIN + 5, first=first)
    assert got.startswith(b"HTTP/1.1 200"), ("the first request", got[:200])
    assert took is not None and took <= DROP_WITHIN, \
        (f"kept alive, the next head sent one byte every {TRICKLE_GAP:g} s: "
         f"{'still open' if took is None else f'dropped only after {took:.1f} s'} ({sent} bytes sent)")
    # a whole head, then a body that pauses as long: the body arrives
    body = json.dumps({"email": "nobody@example.invalid", "password": "x" * 12}).encode()
    head = (f"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    got = slow_pieces(PORT, [head, body[:10], body[10:]], TRICKLE_GAP)
    assert got.startswith(b"HTTP/1.1 401"), ("a body sent in pieces 3 s apart", got[:300])


@test
def relay_raises_its_open_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536)
    # started the way a login shell would: the child inherits 1,024
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        relay = stack.spawn_relay(name="fdlimit")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        with open(f"/proc/{relay.pid}/limits") as f:
            line = next(ln for ln in f if ln.startswith("Max open files"))
        got = int(line.split()[3])
        assert got == want, f"the relay runs with a soft limit of {got} open files, not {want}: {line!r}"

        def ready():
            with open(relay.log, errors="replace") as f:
                m = re.search(r"ready \(.*?(\d+) descriptors", f.read())
            return m and int(m.group(1))
        n = wait_until(ready, timeout=10, what="the relay's ready line")
        assert n == want, f"the relay sized its loop for {n} descriptors, not {want}"
    finally:
        relay.stop()


if __name__ == "__main__":
    run_tests(stack)
