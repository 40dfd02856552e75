#!/usr/bin/python3
"""Benchmark: roost-relay fan-out to many Server-Sent Events connections.

Starts a private stack (PostgreSQL, Redis, lighttpd + roost.fcgi workers)
with roost-relay (Stack(relay=True); binaries from $ROOST_BUILD_DIR, default
<repo>/build), makes --users members (default 50) of one room, then:

1. connects: opens --connections SSE streams (default 2,000) straight to
   the relay's port, GET /api/v1/events with Accept: text/event-stream
   and `Authorization: Bearer`, each user holding N/users of them. The
   sockets are non-blocking and served by epoll in --procs receiver
   processes (default: one per 15,000 connections; the fd limit of this
   box is 20,000 per process). Every connection must answer with a
   200 text/event-stream head. Prints how long the connects took.
2. posts: --messages text messages (default 1,000) into the room through
   lighttpd + roost.fcgi (the REST API), from --posters threads (default
   4) with kept-alive connections, at most --rate messages a second
   (default 50), the senders taken in turn from the members. Halfway, the
   posting pauses until the first half has reached every connection.
3. measures: every message.created frame is timestamped on arrival
   (CLOCK_MONOTONIC, taken right after recv() on the socket it arrived on)
   and matched by message id to the moment just before its POST was
   sent. Prints deliveries (must be messages x connections; missing and
   duplicate ones are reported), p50/p99/max fan-out latency, the
   messages/s posted, the CPU seconds of the relay and of the receivers,
   and the relay's VmRSS (/proc/PID/status) before connecting, after
   connecting, after the first half and after all the messages (each
   once the deliveries are in): RSS per connection and the growth per
   1,000 messages, with the peak (VmHWM). --verbose adds the latency by
   tenth of the messages (does it build up?).
4. optionally (--longpoll K): K long-poll clients on the relay's port loop
   with their cursor (timeout 5 s) and must also receive every message.

The latency is measured by Python receivers on the same two cores as the
relay, PostgreSQL, lighttpd and the workers: it is an upper bound of what
the relay alone adds. It also prints the binary measured (sha256, mtime)
and whether other Roost processes ran on the box meanwhile (they skew the
figures). Loopback only; bounded in time (about 40 s at the defaults, 40 s
for 10,000 connections x 200 messages; every wait has a deadline). Exits 1
when a delivery is missing, a connection failed or closed, or the relay
died, and says which (first missing messages and connections, relay log).

Usage: bench/relay_bench.py [--connections N] [--messages M] [--users U]
                            [--rate R] [--posters P] [--longpoll K]
                            [--procs P] [--workers W]"""
import argparse
import array
import http.client
import itertools
import json
import multiprocessing
import os
import re
import resource
import select
import signal
import socket
import sys
import threading
import time

os.environ.setdefault("ROOST_SRC_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tests/integration"))
import api  # noqa: E402
from harness import RELAY_BIN, Stack, longpoll  # noqa: E402

PER_PROC_MAX = 15000
CONNECT_IN_FLIGHT = 256   # opening requests outstanding per receiver process
CONNECT_TIMEOUT = 60.0    # for all the heads of one receiver process
STALL_SECS = 10.0         # waiting for deliveries: give up after this long without one
MAX_WAIT = 300.0          # ... and after this long in any case
RECV_SIZE = 32768         # below glibc's mmap threshold: no mmap/munmap per recv()

# One message.created frame, as the relay writes it (lib/stream.c):
# id: <cursor>\nevent: message.created\ndata: {"id":"<cursor>","type":
# "message.created","room_id":R,"data":{<message as jsonb text>}}\n\n
# jsonb puts the shortest keys first, so the message's "id" leads its object.
FAST_RE = re.compile(rb'event: message\.created\ndata: \{"id":"[^"]*","type":"message\.created",'
                     rb'"room_id":(\d+),"data":\{"id": ?(\d+)[,}]')
MSG_EVENT = b"event: message.created\n"


def ms(s):
    return f"{s * 1000:.1f} ms"


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values))) - 1))
    return sorted_values[i]


def rss_kib(pids, field="VmRSS"):
    """Sum of VmRSS (or another /proc/PID/status field, in KiB) of the pids
    (None when one of them is gone)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
                        break
        except OSError:
            return None
    return total


def cpu_secs(pids):
    """user + system CPU seconds used so far by the pids (gone ones: 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rpartition(")")[2].split()
            total += int(rest[11]) + int(rest[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def foreign_roost(stack):
    """Roost processes on this box that are not this stack's (another
    benchmark or test run sharing the cores skews the figures)."""
    mine = set(stack.relay_pids()) | set(stack.fcgi_pids())
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        try:
            with open(f"/proc/{name}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith(("roost-relay", "roost.fcgi")):
            n += 1
    return n


def binary_id(path):
    """sha256 prefix and mtime of a binary: which build was measured."""
    import hashlib
    try:
        with open(path, "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()[:12]
        return f"{path} (sha256 {h}, built {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(os.path.getmtime(path)))} UTC)"
    except OSError as e:
        return f"{path}: {e}"


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def fmt_kib(k):
    return "gone" if k is None else f"{k / 1024:.1f} MiB"


# ------------------------------------------------------------ receivers

class Conn:
    __slots__ = ("sock", "fd", "user", "state", "buf", "seen", "distinct", "dups", "closed_at",
                 "status", "head")

    def __init__(self, sock, user):
        self.sock, self.fd, self.user = sock, sock.fileno(), user
        self.state = "head"      # head -> stream -> closed
        self.buf = b""
        self.seen = None         # bytearray: index mid - base - 1
        self.distinct = 0
        self.dups = 0
        self.closed_at = None
        self.status = None
        self.head = b""


def receiver(idx, port, tokens, room_id, ctl):
    """One receiver process: opens len(tokens) SSE connections (tokens[i] is
    the token of connection i), then reads them all with epoll, following
    the commands on the pipe ctl. Everything it reports goes through ctl."""
    ep = select.epoll()
    conns = {}
    ep.register(ctl.fileno(), select.EPOLLIN)
    base = None            # bench message ids are > base
    cap = 0
    arrivals = {}          # message id -> array('d') of first-arrival times
    dup_total = 0
    other_frames = 0       # durable events that are not our messages
    slow_path = 0
    failures = []          # (connection index, reason)
    closed = []            # (connection index, when)
    state = {"finish": None}
    order = {}

    def on_frames(c, chunk, now):
        nonlocal dup_total, other_frames, slow_path
        n_msg = chunk.count(MSG_EVENT)
        found = FAST_RE.findall(chunk) if n_msg else []
        if len(found) != n_msg:
            # not the layout FAST_RE expects: parse these frames properly
            slow_path += 1
            found = []
            for frame in chunk.split(b"\n\n"):
                if MSG_EVENT not in frame:
                    continue
                for line in frame.split(b"\n"):
                    if line.startswith(b"data:"):
                        doc = json.loads(line[5:])
                        found.append((str(doc["room_id"]).encode(), str(doc["data"]["id"]).encode()))
        for rid, mid in found:
            if int(rid) != room_id or base is None:
                other_frames += 1
                continue
            i = int(mid) - base - 1
            if i < 0:
                other_frames += 1
                continue
            if c.seen is None or i >= len(c.seen):
                grow = max(cap, i + 1 + 64)
                c.seen = (c.seen or bytearray()) + bytearray(grow - len(c.seen or b""))
            if c.seen[i]:
                c.dups += 1
                dup_total += 1
                continue
            c.seen[i] = 1
            c.distinct += 1
            a = arrivals.get(i)
            if a is None:
                a = arrivals[i] = array.array("d")
            a.append(now)

    def on_data(c, data, now):
        if c.state == "head":
            c.head += data
            if b"\r\n\r\n" not in c.head:
                if len(c.head) > 65536:
                    fail(c, f"no end of head in {len(c.head)} bytes")
                return
            head, _, rest = c.head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            try:
                c.status = int(lines[0].split()[1])
            except (IndexError, ValueError):
                c.status = None
            hdrs = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            ctype = hdrs.get("content-type", "").split(";")[0].strip()
            if c.status != 200 or ctype != "text/event-stream" or \
                    "chunked" in hdrs.get("transfer-encoding", "").lower():
                fail(c, f"{lines[0]!r} content-type {ctype!r} "
                        f"transfer-encoding {hdrs.get('transfer-encoding')!r} body {rest[:200]!r}")
                return
            c.head = b""
            c.state = "stream"
            data = rest
            if not data:
                return
        buf = c.buf + data if c.buf else data
        end = buf.rfind(b"\n\n")
        if end < 0:
            c.buf = buf
            return
        c.buf = buf[end + 2:]
        on_frames(c, buf[:end + 2], now)

    def fail(c, why):
        failures.append((order[c.fd], why))
        drop(c)

    def drop(c):
        if c.state == "closed":
            return
        c.state = "closed"
        try:
            ep.unregister(c.fd)
        except OSError:
            pass
        c.sock.close()

    def read_ready(events):
        for fd, ev in events:
            c = conns.get(fd)
            if c is None:
                if fd == ctl.fileno():
                    handle_ctl()
                continue
            if c.state == "closed":
                continue
            while True:
                try:
                    data = c.sock.recv(RECV_SIZE)
                except BlockingIOError:
                    break
                except OSError as e:
                    data = None
                    why = f"recv: {e}"
                else:
                    why = "EOF"
                if not data:
                    if c.state == "head":
                        fail(c, f"closed before a head ({why}); got {c.head[:200]!r}")
                    else:
                        c.closed_at = time.monotonic()
                        closed.append((order[fd], c.closed_at, why))
                        drop(c)
                    break
                on_data(c, data, time.monotonic())
                if len(data) < RECV_SIZE:
                    break

    def totals():
        return sum(c.distinct for c in conns.values())

    def handle_ctl():
        nonlocal base, cap
        msg = ctl.recv()
        cmd = msg[0]
        if cmd == "base":
            base, cap = msg[1], msg[2] + 64
        elif cmd == "progress":
            ctl.send(("progress", totals(), len(closed)))
        elif cmd == "finish":
            state["finish"] = (msg[1], time.monotonic() + msg[2])
        elif cmd == "close":
            state["close"] = True

    # -- connect, a window of CONNECT_IN_FLIGHT opening requests at a time
    t0 = time.monotonic()
    pending = list(range(len(tokens)))
    pending.reverse()
    in_head = 0
    connect_errors = 0
    deadline = t0 + CONNECT_TIMEOUT
    heads_done = 0
    while (pending or in_head) and time.monotonic() < deadline:
        while pending and in_head < CONNECT_IN_FLIGHT:
            i = pending.pop()
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(5)
                s.connect(("127.0.0.1", port))
                s.setblocking(False)
                s.sendall(("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Accept: text/event-stream\r\nUser-Agent: roost-relay-bench/1\r\n"
                           f"Authorization: Bearer {tokens[i]}\r\n\r\n").encode())
            except OSError as e:
                s.close()
                failures.append((i, f"connect/send: {e}"))
                connect_errors += 1
                continue
            c = Conn(s, i)
            conns[c.fd] = c
            order[c.fd] = i
            ep.register(c.fd, select.EPOLLIN)
            in_head += 1
        for fd, ev in ep.poll(0.5):
            c = conns.get(fd)
            was_head = c is not None and c.state == "head"
            read_ready([(fd, ev)])
            if was_head and c.state != "head":
                in_head -= 1
                heads_done += 1
    for c in conns.values():
        if c.state == "head":
            fail(c, f"no head within {CONNECT_TIMEOUT:.0f} s (got {c.head[:200]!r})")
    for i in pending:
        failures.append((i, "never connected (connect phase timed out)"))
    ok = sum(1 for c in conns.values() if c.state == "stream")
    ctl.send(("connected", ok, failures[:50], len(failures), time.monotonic() - t0))

    # -- read until told to finish and done, or until nothing more arrived
    # for STALL_SECS (or the hard deadline), then report
    last_total, last_change = -1, time.monotonic()
    while True:
        fin = state["finish"]
        if fin is not None:
            want, until = fin
            now = time.monotonic()
            total = totals()
            if total != last_total:
                last_total, last_change = total, now
            live = [c for c in conns.values() if c.state == "stream"]
            if all(c.distinct >= want for c in live) or now >= until or now - last_change > STALL_SECS:
                break
        read_ready(ep.poll(0.2))
    per_conn = [(order[c.fd], c.user, c.distinct, c.dups,
                 [j for j in range(min(len(c.seen or b""), fin[0] + 64)) if not (c.seen and c.seen[j])]
                 [:5] if c.distinct < fin[0] else [])
                for c in conns.values()]
    ctl.send(("result", {i: a.tobytes() for i, a in arrivals.items()}, per_conn, dup_total,
              other_frames, slow_path, [(i, t, w) for i, t, w in closed], failures[:50], len(failures)))
    # -- keep the sockets open (and read them) until told to close
    while not state.get("close"):
        read_ready(ep.poll(0.2))
    for c in conns.values():
        if c.state != "closed":
            c.sock.close()
    ep.close()
    ctl.send(("closed",))


# ------------------------------------------------------------ long-poll

class LongPoller(threading.Thread):
    def __init__(self, port, token, cursor, room_id, base):
        super().__init__(daemon=True)
        self.port, self.token, self.cursor, self.room_id, self.base = port, token, cursor, room_id, base
        self.ids, self.dups, self.polls, self.errors = set(), 0, 0, []
        self.want = None
        self.deadline = None
        self.stop = False

    def run(self):
        while not self.stop:
            if self.want is not None and (len(self.ids) >= self.want or time.monotonic() > self.deadline):
                return
            try:
                r = longpoll(self.port, token=self.token, last_event_id=self.cursor, timeout=5)
            except OSError as e:
                self.errors.append(f"long-poll: {e}")
                time.sleep(0.5)
                continue
            self.polls += 1
            if r.status != 200:
                self.errors.append(f"long-poll {r.status}: {r.raw[:200]!r}")
                if len(self.errors) > 20:
                    return
                time.sleep(0.5)
                continue
            for e in r.events or []:
                if e.get("type") == "message.created" and e.get("room_id") == self.room_id:
                    mid = e["data"]["id"]
                    if mid > self.base:
                        if mid in self.ids:
                            self.dups += 1
                        self.ids.add(mid)
            self.cursor = r.cursor or self.cursor


# ------------------------------------------------------------ posting

class Posting:
    """--posters threads post messages[lo:hi] with schedule t_start + k / rate."""

    def __init__(self, stack, tokens, room_id, rate, posters):
        self.stack, self.tokens, self.room_id = stack, tokens, room_id
        self.rate, self.posters = rate, posters
        self.sent = {}        # message id -> (t before POST, t after 201)
        self.errors = []
        self.lock = threading.Lock()
        self.seq = itertools.count()

    def run(self, n):
        counter = itertools.count()
        t_start = time.monotonic()
        lock = threading.Lock()

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
            while True:
                with lock:
                    k = next(counter)
                if k >= n:
                    break
                due = t_start + k / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                g = next(self.seq)
                tok = self.tokens[g % len(self.tokens)]
                body = json.dumps({"type": "text", "content": f"relay bench message {g}",
                                   "client_msg_id": f"rb{os.getpid()}-{g}"})
                t0 = time.monotonic()
                try:
                    conn.request("POST", f"/api/v1/rooms/{self.room_id}/messages", body=body,
                                 headers={"Authorization": f"Bearer {tok}",
                                          "Content-Type": "application/json"})
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
                    with self.lock:
                        self.errors.append(f"message {g}: {e!r}")
                    continue
                t1 = time.monotonic()
                if resp.status != 201:
                    with self.lock:
                        self.errors.append(f"message {g}: {resp.status} {data[:200]!r}")
                    continue
                with self.lock:
                    self.sent[json.loads(data)["id"]] = (t0, t1)
            conn.close()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.posters)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - t_start


# ------------------------------------------------------------ main

def make_users(stack, admin, n):
    import concurrent.futures

    def one(i):
        user, email, password = api.create_user(stack, admin, name=f"Fan{i}")
        return user, api.login(stack, email, password)["token"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        return list(ex.map(one, range(n)))


def wait_deliveries(pipes, want):
    """Ask the receivers for their delivery totals until they reach want,
    or nothing more arrived for STALL_SECS (or MAX_WAIT passed)."""
    t0 = time.monotonic()
    last, last_change = -1, t0
    while True:
        got = closed = 0
        for p in pipes:
            p.send(("progress",))
        for p in pipes:
            _, g, c = p.recv()
            got += g
            closed += c
        now = time.monotonic()
        if got != last:
            last, last_change = got, now
        if got >= want or now - last_change > STALL_SECS or now - t0 > MAX_WAIT:
            return got, closed, now - t0
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--rate", type=float, default=50.0, help="messages posted per second, at most")
    ap.add_argument("--posters", type=int, default=4)
    ap.add_argument("--longpoll", type=int, default=0, metavar="K")
    ap.add_argument("--procs", type=int, default=0,
                    help=f"receiver processes (default: one per {PER_PROC_MAX} connections)")
    ap.add_argument("--workers", type=int, default=2, help="roost.fcgi workers")
    ap.add_argument("--verbose", action="store_true", help="also the latency by tenth of the messages")
    ap.add_argument("--limit", type=float, default=1800, help="seconds for the whole run")
    args = ap.parse_args()

    def on_alarm(sig, frame):
        raise SystemExit(f"time limit (--limit {args.limit:.0f} s) reached")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.limit))
    n, m = args.connections, args.messages
    procs = args.procs or max(1, -(-n // PER_PROC_MAX))
    if n < 1 or m < 2 or args.users < 1:
        raise SystemExit("need --connections >= 1, --messages >= 2, --users >= 1")
    if -(-n // procs) > PER_PROC_MAX:
        raise SystemExit(f"at most {PER_PROC_MAX} connections per receiver process: use --procs")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = -(-n // procs) + 200
    # the relay inherits this limit through scripts/stack: it needs n + some
    want = min(hard, max(soft, need, n + 500)) if hard != resource.RLIM_INFINITY else max(soft, need, n + 500)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need or want < n + 100:
        raise SystemExit(f"open-file limit {soft}/{hard} is too low for {n} connections")

    env = {"ROOST_LOG_LEVEL": "warn"}
    stack = Stack(workers=args.workers, relay=True, env=env)
    relay_pids = []
    failed = []
    pipes, children = [], []
    pollers = []
    try:
        email, password = api.make_admin(stack)
        admin = api.login(stack, email, password)["token"]
        api.set_settings(stack, admin, messages_per_10s=1000, requests_per_minute=100000,
                         login_attempts_per_15min=1000, rooms_per_user=10000)
        t0 = time.monotonic()
        people = make_users(stack, admin, args.users)
        tokens = [t for _, t in people]
        room = api.create_room(stack, tokens[0], name="Relay bench room", max_members=0)
        for tok in tokens[1:]:
            api.join_room(stack, tok, room["id"])
        relay_pids = stack.relay_pids()
        print(f"Roost relay benchmark: {os.cpu_count()} CPU cores (everything on this box), "
              f"{args.workers} roost.fcgi workers, roost-relay pid {relay_pids}, "
              f"open-file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
        print(f"  {binary_id(RELAY_BIN)}")
        print(f"  setup: {args.users} users signed in, one room, in {time.monotonic() - t0:.1f} s", flush=True)
        # the relay has served a few requests (none so far): its RSS at rest
        time.sleep(0.5)
        rss_start = rss_kib(relay_pids)

        # -- 1. connect
        conn_tokens = [tokens[i % len(tokens)] for i in range(n)]
        share = -(-n // procs)
        ctx = multiprocessing.get_context("fork")
        t0 = time.monotonic()
        for p in range(procs):
            part = conn_tokens[p * share:(p + 1) * share]
            a, b = ctx.Pipe()
            ch = ctx.Process(target=receiver, args=(p, stack.relay_port, part, room["id"], b), daemon=True)
            ch.start()
            b.close()
            pipes.append(a)
            children.append(ch)
        ok = nfail = 0
        for a in pipes:
            if not a.poll(CONNECT_TIMEOUT + 30):
                raise SystemExit("a receiver process did not report its connections")
            _, k, fails, nf, secs = a.recv()
            ok += k
            nfail += nf
            failed += fails
        connect_secs = time.monotonic() - t0
        print(f"1. connected {ok} of {n} SSE streams ({args.users} users, {n // args.users}+ each) "
              f"in {connect_secs:.1f} s ({ok / connect_secs:.0f}/s), {procs} receiver process(es)", flush=True)
        if nfail:
            print(f"   FAILED connections: {nfail}; first: {failed[:5]}", flush=True)
        time.sleep(1.0)  # presence events of the new connections settle
        rss_conn = rss_kib(relay_pids)
        hwm_conn = rss_kib(relay_pids, "VmHWM")

        # -- the base id: one message before the measured ones, not counted
        base = api.send(stack, tokens[0], room["id"], "relay bench: start")["id"]
        for a in pipes:
            a.send(("base", base, m))
        st, _, doc = api.get(stack, "/rooms", token=tokens[0])
        cursor = doc["event_cursor"]
        for k in range(args.longpoll):
            lp = LongPoller(stack.relay_port, tokens[k % len(tokens)], cursor, room["id"], base)
            lp.start()
            pollers.append(lp)
        time.sleep(0.5)

        # -- 2. post, in two halves
        posting = Posting(stack, tokens, room["id"], args.rate, args.posters)
        half = m // 2
        print(f"2. posting {m} messages, at most {args.rate:g}/s, {args.posters} threads ...", flush=True)
        rx_pids = [ch.pid for ch in children]
        others0, load0 = foreign_roost(stack), loadavg()
        cpu0 = (cpu_secs(relay_pids), cpu_secs(rx_pids), time.monotonic())
        secs1 = posting.run(half)
        posted1 = set(posting.sent)
        got1, _, wait1 = wait_deliveries(pipes, len(posted1) * ok)
        time.sleep(0.3)
        rss_half = rss_kib(relay_pids)
        t_half2 = time.monotonic()
        secs2 = posting.run(m - half)
        post_secs = secs1 + secs2
        posted = len(posting.sent)
        for a in pipes:
            a.send(("finish", posted, MAX_WAIT))
        results = []
        for a in pipes:
            if not a.poll(MAX_WAIT + 60):
                raise SystemExit("a receiver process did not report its results")
            results.append(a.recv())
        cpu1 = (cpu_secs(relay_pids), cpu_secs(rx_pids), time.monotonic())
        others1, load1 = foreign_roost(stack), loadavg()
        time.sleep(0.3)
        rss_end = rss_kib(relay_pids)
        hwm_end = rss_kib(relay_pids, "VmHWM")
        for lp in pollers:
            lp.want, lp.deadline = posted, time.monotonic() + 15
        for lp in pollers:
            lp.join(20)

        # -- 3. results
        ids = sorted(posting.sent)
        t_post = {i - base - 1: posting.sent[i][0] for i in ids}
        t_201 = {i - base - 1: posting.sent[i][1] for i in ids}
        lat, lat201 = [], []
        per_msg = {}
        per_conn, dups, other, slow, closed, rfails = [], 0, 0, 0, [], 0
        stray = 0
        frames2, last2, last_all = 0, 0.0, 0.0
        for _, arr, pc, d, o, s, cl, fl, nf in results:
            dups += d
            other += o
            slow += s
            closed += cl
            rfails += nf
            per_conn += pc
            for i, raw in arr.items():
                a = array.array("d")
                a.frombytes(raw)
                per_msg[i] = per_msg.get(i, 0) + len(a)
                if i not in t_post:
                    stray += len(a)
                    continue
                tp, t1 = t_post[i], t_201[i]
                if a:
                    last_all = max(last_all, max(a))
                if (i + base + 1) not in posted1 and a:
                    frames2 += len(a)
                    last2 = max(last2, max(a))
                lat.extend(x - tp for x in a)
                lat201.extend(x - t1 for x in a)
        by_tenth = []
        if args.verbose:
            for k in range(10):
                part = ids[k * len(ids) // 10:(k + 1) * len(ids) // 10]
                ls = []
                for i in part:
                    j = i - base - 1
                    for _, arr, *_rest in results:
                        if j in arr:
                            a = array.array("d")
                            a.frombytes(arr[j])
                            ls.extend(x - t_post[j] for x in a)
                ls.sort()
                by_tenth.append((pct(ls, 50), ls[-1] if ls else float("nan")))
        delivered = len(lat)
        expected = posted * ok
        lat.sort()
        lat201.sort()
        missing_conns = [(i, u, dn) for i, u, dn, _, _ in per_conn if dn < posted]
        post_lat = sorted(t1 - t0 for t0, t1 in posting.sent.values())
        print()
        print("=" * 72)
        print("RESULTS")
        print("=" * 72)
        print(f"connections: {ok} of {n} opened (200 text/event-stream) in {connect_secs:.1f} s; "
              f"{len(closed)} closed by the relay during the run")
        print(f"posted: {posted} of {m} messages (201) in {post_secs:.1f} s = {posted / post_secs:.1f} messages/s "
              f"(POST p50 {ms(pct(post_lat, 50))}, p99 {ms(pct(post_lat, 99))}); "
              f"{len(posting.errors)} errors")
        print(f"delivered: {delivered} of {expected} (= {posted} x {ok}) message frames; "
              f"missing {expected - delivered}, duplicates {dups}"
              + (f", {stray} for ids never acknowledged" if stray else ""))
        if frames2:
            print(f"fan-out, second half: {frames2:,} frames delivered in {last2 - t_half2:.1f} s "
                  f"from its first POST to its last frame = {frames2 / (last2 - t_half2):,.0f} frames/s; "
                  f"the last frame came {last_all - max(t for _, t in posting.sent.values()):.1f} s after the last 201")
        print(f"fan-out latency (just before the POST -> frame on the socket): p50 {ms(pct(lat, 50))}, "
              f"p99 {ms(pct(lat, 99))}, max {ms(lat[-1] if lat else float('nan'))}")
        print(f"   (from the 201: p50 {ms(pct(lat201, 50))}, p99 {ms(pct(lat201, 99))}, "
              f"max {ms(lat201[-1] if lat201 else float('nan'))})")
        alive = rss_kib(relay_pids) is not None and stack.relay_pids() == relay_pids
        wall = cpu1[2] - cpu0[2]
        if by_tenth:
            print("   by tenth of the messages (p50/max ms): " +
                  " ".join(f"{a * 1000:.0f}/{b * 1000:.0f}" for a, b in by_tenth))
        if alive:
            print(f"CPU from the first POST to the last delivery ({wall:.1f} s): roost-relay "
                  f"{cpu1[0] - cpu0[0]:.1f} s ({(cpu1[0] - cpu0[0]) / wall:.0%} of a core), "
                  f"Python receivers {cpu1[1] - cpu0[1]:.1f} s ({(cpu1[1] - cpu0[1]) / wall:.0%})")
        print(f"relay RSS: at start {fmt_kib(rss_start)}, after connecting {fmt_kib(rss_conn)}, "
              f"after {half} messages {fmt_kib(rss_half)}, after {posted} {fmt_kib(rss_end)} "
              f"(peak, VmHWM: {fmt_kib(hwm_conn)} by the end of connecting, {fmt_kib(hwm_end)} by the end)")
        if None not in (rss_start, rss_conn, rss_half, rss_end):
            per = (rss_conn - rss_start) * 1024 / max(ok, 1)
            grow = (rss_end - rss_conn) / max(posted, 1) * 1000
            print(f"   per connection: {per / 1024:.1f} KiB; from connected to the end: "
                  f"{rss_end - rss_conn:+d} KiB ({grow:+.0f} KiB per 1,000 messages); "
                  f"from message {half} to {posted}: {rss_end - rss_half:+d} KiB")
        print(f"   halfway pause: {got1} of {len(posted1) * ok} deliveries of the first half had arrived "
              f"{wait1:.1f} s after its last POST")
        if pollers:
            full = sum(1 for lp in pollers if len(lp.ids) == posted)
            print(f"long-poll: {full} of {len(pollers)} clients got all {posted} messages "
                  f"(got {sorted(len(lp.ids) for lp in pollers)[:10]}, "
                  f"{sum(lp.polls for lp in pollers)} polls, {sum(lp.dups for lp in pollers)} duplicates, "
                  f"{sum(len(lp.errors) for lp in pollers)} errors)")
            for lp in pollers:
                if lp.errors:
                    print(f"   long-poll errors: {lp.errors[:3]}")
                    break
        print(f"other durable frames (the unmeasured start message, ...): {other}; "
              f"chunks parsed the slow way: {slow}")
        print(f"relay alive at the end: {'yes' if alive else 'NO'} {stack.relay_pids()}; load average "
              f"{load0} -> {load1}; other Roost processes on this box: {others0} -> {others1}"
              + (" (ANOTHER RUN SHARED THE CORES: figures skewed)" if others0 or others1 else ""))
        bad = False
        if posting.errors:
            bad = True
            print(f"POST errors: {posting.errors[:5]}", file=sys.stderr)
        if ok < n or rfails:
            bad = True
            print(f"FAILED connections: {rfails}; first: {failed[:5]}", file=sys.stderr)
        if closed:
            bad = True
            print(f"connections closed during the run: {len(closed)}; first (connection, seconds after "
                  f"the first POST, why): {[(i, round(t - cpu0[2], 2), w) for i, t, w in closed[:5]]}",
                  file=sys.stderr)
        if delivered != expected or missing_conns:
            bad = True
            print(f"MISSING deliveries: {expected - delivered} over {len(missing_conns)} connections; "
                  f"first (conn, user, got): {missing_conns[:5]}", file=sys.stderr)
            short = [(i + base + 1, c) for i, c in sorted(per_msg.items()) if c < ok and i in t_post]
            never = [i for i in ids if (i - base - 1) not in per_msg]
            print(f"   messages short of {ok} deliveries: {short[:10]}; never delivered: {never[:10]}",
                  file=sys.stderr)
        if pollers and any(len(lp.ids) != posted for lp in pollers):
            bad = True
            print("a long-poll client missed messages", file=sys.stderr)
        if not alive:
            bad = True
            print("the relay died", file=sys.stderr)
        # -- clean shutdown: the receivers close their sockets
        for a in pipes:
            a.send(("close",))
        for a in pipes:
            if a.poll(30):
                a.recv()
        for ch in children:
            ch.join(10)
        if bad:
            print(f"relay log tail:\n{open(stack.log_path('relay'), errors='replace').read()[-2000:]}",
                  file=sys.stderr)
            sys.exit(1)
    finally:
        for lp in pollers:
            lp.stop = True
        for ch in children:
            if ch.is_alive():
                ch.terminate()
                ch.join(5)
        stack.stop()


if __name__ == "__main__":
    main()
