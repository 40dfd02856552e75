#!/usr/bin/python3
"""Benchmark: roost-relay against the load targets of issue #5.

Starts a private stack (PostgreSQL, Redis, lighttpd + roost.fcgi workers;
binaries from $ROOST_BUILD_DIR, default <repo>/build), replaces its relay
with `roost-relay -w W` (default 2 processes sharing the port with
SO_REUSEPORT; each holds at most ~19,000 sockets on this box) and drives it
with the C load client bench/relay_load (`make -C build bench/relay_load`;
epoll, several processes). The users are made with SQL, not the API (an
argon2 login costs ~25 ms): users, sessions and room memberships are
inserted through psql, and the tokens are signed here with python3-jwt, the
stack's ROOST_JWT_SECRET and the claims lib/token.c checks (HS256; iss,
aud, sub, tid, sid, iat, exp). Then:

1. idle: N = 10,000, then 30,000 SSE streams (users in rooms of 20), held
   --hold seconds (past a heartbeat); prints the relay's RSS per stream
   (VmRSS of every relay process, /proc/PID/status, against the RSS before
   connecting, after a warm-up of 200 streams), 1 s after the streams
   opened and after the hold. Target: <= 5 KB. --trim-check then calls
   malloc_trim(0) in the relay workers through gdb and measures again
   (how much of the RSS is memory freed but kept by malloc).
2. fan-out: 10,000 streams, one per member of one 10,000-member room;
   --fanout-messages single messages (default 20) posted --fanout-gap s
   apart; per message the time until the last member had it, and the
   latency of every delivery; the relay's CPU per delivery. Target: p99
   of "until the last" <= 50 ms.
3. saturation: on the same streams, --sat-messages messages posted as fast
   as the API takes them: frames delivered per second, and per CPU-second
   of the relay processes (/proc/PID/stat) = events per second per relay
   core.
4. rate: 1,000 streams of a 1,000-member room; --rate messages/s (500) for
   --rate-secs (10) through the REST API from the C poster (32 kept-alive
   connections, paced); send->receive p50/p99. Target: p99 <= 10 ms.

Latency = CLOCK_REALTIME when the frame's recv() returned, minus the
CLOCK_REALTIME stamp the poster put in the message ("rlb <seq> <ns>") just
before writing the POST: it includes the whole send path (lighttpd,
roost.fcgi, PostgreSQL, the outbox drain, Redis) and the receiving client.
"From the 201" figures subtract each message's own POST answer time (the
poster reports it per message): the relay path after the API said yes.
Everything shares this box's 2 cores: the load average and other Roost
processes are printed with the figures.

Loopback only; bounded (every wait has a deadline, the C client has its own
time limit, --limit bounds the whole run: default 1,800 s). Exits 1 when
the relay dropped a stream, missed a delivery, failed a connect or died,
and says which; that is reported, not worked around.

Usage: bench/relay_load.py [--idle 10000,30000] [--fanout-members 10000]
        [--rate-members 1000] [--rate 500] [--rate-secs 10] [--relays 2]
        [--workers 4] [--unix] [--skip idle,fanout,sat,rate] [--hold 20] [--trim-check]"""
import argparse
import json
import os
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

os.environ.setdefault("ROOST_SRC_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tests/integration"))
import jwt  # noqa: E402  (python3-jwt)

import api  # noqa: E402
from harness import BUILD_DIR, RELAY_BIN, Stack, free_port, raw_request, wait_until  # noqa: E402

LOAD_BIN = os.path.join(BUILD_DIR, "bench", "relay_load")
PER_PROC = 15000          # streams per client process
IDLE_ROOM_SIZE = 20       # idle users sit in rooms of this many
SENDERS = 100             # members that post (per-user send limits)
STALL_SECS = 10.0         # waiting for deliveries: give up after this long without one
QUIET_SECS = 2.0          # presence storm over: no frame for this long


def log(msg=""):
    print(msg, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def proc_status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_kib(pids, field="VmRSS"):
    vals = [proc_status(p, field) for p in pids]
    return None if None in vals else sum(vals)


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rpartition(")")[2].split()
            total += int(rest[11]) + int(rest[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def box_cpu():
    """(busy, total) jiffies of the whole box, /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def nsockets(pid):
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        return None
    return n


def foreign_roost(mine):
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        try:
            with open(f"/proc/{name}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith(("roost-relay", "roost.fcgi", "relay_load")):
            n += 1
    return n


def pct(vals, p):
    if not vals:
        return float("nan")
    s = sorted(vals)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.4999)) - 1))]


def ms(us):
    return f"{us / 1000:.1f} ms"


# ------------------------------------------------------------ C client

class Recv:
    """One `relay_load recv`: N streams over several processes; commands
    and JSON answers over its stdin/stdout."""

    def __init__(self, port, tokfile, n, offset, src, limit, procs=None, path=None):
        self.n = n
        procs = procs or max(1, -(-n // PER_PROC))
        cmd = [LOAD_BIN, "recv", *(["-U", path] if path else ["-p", str(port)]), "-f", tokfile, "-n", str(n), "-o", str(offset),
               "-P", str(procs), "-a", str(src), "-T", str(int(limit)), "-D", "300"]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _line(self, timeout):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise SystemExit(f"relay_load recv: no answer within {timeout:.0f} s")
        if line is None:
            raise SystemExit(f"relay_load recv ended (exit {self.p.wait()})")
        return line

    def ready(self, timeout=400):
        line = self._line(timeout)
        if not line.startswith("READY "):
            raise SystemExit(f"relay_load recv: expected READY, got {line[:300]!r}")
        return json.loads(line[6:])

    def cmd(self, c, timeout=120):
        self.p.stdin.write(c + "\n")
        self.p.stdin.flush()
        return json.loads(self._line(timeout))

    def pids(self):
        """The client's processes (the parent and its children)."""
        out = [self.p.pid]
        try:
            with open(f"/proc/{self.p.pid}/task/{self.p.pid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return out

    def quit(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.flush()
                self.p.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def post(port, tokfile, room, count, rate, conns, seq0, limit):
    cmd = [LOAD_BIN, "post", "-p", str(port), "-f", tokfile, "-r", str(room), "-n", str(count),
           "-R", str(rate), "-C", str(conns), "-q", str(seq0), "-T", str(int(limit))]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=limit + 30)
    if not p.stdout.strip():
        raise SystemExit(f"relay_load post failed (exit {p.returncode}): {p.stderr[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def after_answer(p, seqs, seq0):
    """Per message, from its POST's answer (201) to its first and last
    delivery: what the relay path adds after the API said yes. seqs:
    [seq, count, min_us, max_us] rows of a report."""
    first, last = [], []
    for seq, _, lo, hi in seqs:
        i = seq - seq0
        if 0 <= i < len(p["answer_us"]) and p["answer_us"][i] >= 0:
            first.append(lo - p["answer_us"][i])
            last.append(hi - p["answer_us"][i])
    return first, last


def wait_settled(rc, deadline_s):
    """Polls stats until no frame arrived for QUIET_SECS (the presence
    storm of the connects is over); returns (stats, seconds)."""
    t0 = time.monotonic()
    last, last_change = -1, t0
    while True:
        st = rc.cmd("stats")
        now = time.monotonic()
        if st["frames"] - st["hb"] != last:
            last, last_change = st["frames"] - st["hb"], now
        if now - last_change >= QUIET_SECS or now - t0 > deadline_s:
            return st, last_change - t0
        time.sleep(0.25)


def wait_deliveries(rc, want, max_s):
    """Polls stats until `want` marked frames arrived, or none arrived for
    STALL_SECS, or max_s passed; returns (stats, monotonic time)."""
    t0 = time.monotonic()
    last, last_change = -1, t0
    while True:
        st = rc.cmd("stats")
        now = time.monotonic()
        if st["rlb"] != last:
            last, last_change = st["rlb"], now
        if st["rlb"] >= want or now - last_change > STALL_SECS or now - t0 > max_s:
            return st, now
        time.sleep(0.1)


# ------------------------------------------------------------ setup

def make_people(stack, groups):
    """groups: [(prefix, count)]. Inserts users and one live session each
    with SQL; returns {prefix: [(user_id, session_id), ...]} in id order."""
    out = {}
    for prefix, count in groups:
        api.sql(stack, f"INSERT INTO users (email, name, display_name) "
                       f"SELECT '{prefix}' || g || '@bench.invalid', '{prefix} ' || g, '{prefix} ' || g "
                       f"FROM generate_series(1, {count}) g")
        rows = api.sql(stack, f"INSERT INTO sessions (user_id, device, ip, user_agent, expires_at) "
                              f"SELECT id, 'desktop', '127.0.0.1', 'relay_load', now() + interval '2 days' "
                              f"FROM users WHERE email LIKE '{prefix}%@bench.invalid' ORDER BY id "
                              f"RETURNING user_id, id")
        pairs = sorted(tuple(int(x) for x in line.split("|")) for line in rows.splitlines() if line)
        assert len(pairs) == count, (prefix, len(pairs), count)
        out[prefix] = pairs
    return out


def make_room(stack, name, user_ids):
    """One private room with these members (SQL); returns its id."""
    rid = int(api.sql(stack, f"INSERT INTO rooms (kind, name, owner_id, max_members, member_count) "
                             f"VALUES ('private', {api.q(name)}, {user_ids[0]}, 0, {len(user_ids)}) "
                             f"RETURNING id").split("|")[0])
    lo, hi = min(user_ids), max(user_ids)
    assert hi - lo + 1 == len(user_ids)
    api.sql(stack, f"INSERT INTO room_members (room_id, user_id) SELECT {rid}, id FROM users "
                   f"WHERE id BETWEEN {lo} AND {hi}")
    return rid


def make_small_rooms(stack, prefix, user_ids, size):
    lo, hi = min(user_ids), max(user_ids)
    assert hi - lo + 1 == len(user_ids)
    nrooms = -(-len(user_ids) // size)
    api.sql(stack, f"INSERT INTO rooms (kind, name, max_members, member_count) "
                   f"SELECT 'private', '{prefix} room ' || g, 0, {size} FROM generate_series(0, {nrooms - 1}) g")
    api.sql(stack, f"INSERT INTO room_members (room_id, user_id) "
                   f"SELECT r.id, u.id FROM users u JOIN rooms r "
                   f"ON r.name = '{prefix} room ' || ((u.id - {lo}) / {size}) "
                   f"WHERE u.id BETWEEN {lo} AND {hi}")
    return nrooms


def sign_tokens(secret, tid, pairs):
    now = int(time.time())
    out = []
    for uid, sid in pairs:
        out.append(jwt.encode({"iss": "roost", "aud": "roost", "sub": str(uid), "tid": tid, "sid": sid,
                               "iat": now, "exp": now + 2 * 86400}, secret, algorithm="HS256"))
    return out


def write_tokens(path, tokens):
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
    return path


def unix_request(path, req):
    """One request on a unix socket; the whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as so:
        so.settimeout(2)
        so.connect(path)
        so.sendall(req)
        data = b""
        while True:
            chunk = so.recv(65536)
            if not chunk:
                return data
            data += chunk


class Relay:
    """roost-relay -w N on a free port with the stack's environment."""

    def __init__(self, stack, workers, unix=False):
        self.port = free_port()
        # --unix: the relay on a unix socket, as behind a web server on the same host
        self.path = os.path.join(stack.dir, "run", "relay-load.sock") if unix else None
        self.log = os.path.join(stack.dir, "log", "relay-load.log")
        env = stack.env()
        env["ROOST_LOG_LEVEL"] = "warn"
        if self.path:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.log, "ab") as lf:
            self.proc = subprocess.Popen([RELAY_BIN, "-w", str(workers),
                                          "-l", self.path or f"127.0.0.1:{self.port}"],
                                         env=env, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                                         cwd=stack.dir, start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise SystemExit(f"roost-relay -w {workers} exited ({self.proc.returncode}): "
                                 f"{open(self.log, errors='replace').read()[-1500:]}")
            req = b"GET /relay/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            try:
                if self.path:
                    ok = unix_request(self.path, req).startswith(b"HTTP/1.1 200")
                else:
                    ok = raw_request(self.port, req, timeout=2)[0] == 200
            except OSError:
                return False
            return ok and len(self.workers()) == workers
        wait_until(up, timeout=20, interval=0.1, what="roost-relay -w")
        self.worker_pids = self.workers()

    def workers(self):
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return sorted(int(x) for x in f.read().split())
        except OSError:
            return []

    def pids(self):
        return [self.proc.pid] + self.worker_pids

    def healthy(self):
        """None when the supervisor and the same workers still run, else why."""
        if self.proc.poll() is not None:
            return f"the supervisor exited ({self.proc.returncode})"
        now = self.workers()
        if now != self.worker_pids:
            return f"workers changed: {self.worker_pids} -> {now} (one died and was restarted)"
        return None

    def log_problems(self):
        try:
            text = open(self.log, errors="replace").read()
        except OSError:
            return []
        return [line for line in text.splitlines()
                if any(w in line.lower() for w in ("error", "warn", "slow consumer", "sanitizer", "abort"))]

    def sockets(self):
        return {pid: nsockets(pid) for pid in self.worker_pids}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ------------------------------------------------------------ phases

class Bench:
    def __init__(self, args, stack, relay, files, rooms, counts):
        self.args, self.stack, self.relay, self.files, self.rooms, self.counts = \
            args, stack, relay, files, rooms, counts
        self.problems = []
        self.results = {}
        self.clients = []
        self.t_end = time.monotonic() + args.limit

    def left(self):
        return max(30, self.t_end - time.monotonic())

    def recv(self, key, n, offset, src, procs=None):
        rc = Recv(self.relay.port, self.files[key], n, offset, src, self.left(), procs, self.relay.path)
        self.clients.append(rc)
        return rc

    def check_recv(self, what, st, want_open):
        if st["failed"]:
            self.problems.append(f"{what}: {st['failed']} streams failed to open; first: {st['fail_why']!r}")
        if st["closed"]:
            self.problems.append(f"{what}: the relay closed {st['closed']} streams; first: {st['close_why']!r}")
        if st["resync"]:
            self.problems.append(f"{what}: {st['resync']} resync frames")
        if st["open"] != want_open:
            self.problems.append(f"{what}: {st['open']} of {want_open} streams open")

    def check_relay(self, what):
        why = self.relay.healthy()
        if why:
            self.problems.append(f"{what}: relay {why}")

    def wait_drained(self, base):
        """After closing streams: until the relay holds about as many
        sockets as before them (deadline 60 s)."""
        def low():
            s = self.relay.sockets()
            return None not in s.values() and sum(s.values()) <= base + 50
        try:
            wait_until(low, timeout=60, interval=0.5, what="the relay to close the streams")
        except AssertionError as e:
            self.problems.append(str(e))

    def measure_rss(self):
        pids = self.relay.pids()
        return {"rss": rss_kib(pids), "hwm": rss_kib(pids, "VmHWM"),
                "per_proc": {p: proc_status(p, "VmRSS") for p in pids}}

    # -- 1. idle --------------------------------------------------------
    def idle(self):
        a = self.args
        sizes = sorted(a.idle)
        log(f"\n1. idle streams: {', '.join(f'{n:,}' for n in sizes)} (users in rooms of {IDLE_ROOM_SIZE}), "
            f"held {a.hold:.0f} s each; load average {loadavg()}")
        base_socks = sum(self.relay.sockets().values())
        # warm-up: the first requests of a relay process allocate what it
        # keeps for its life (caches, buffers); not a per-stream cost
        rc = self.recv("idle", 200, 0, 200)
        rc.ready()
        rc.quit()
        self.wait_drained(base_socks)
        time.sleep(1)
        r0 = self.measure_rss()
        log(f"   relay RSS before: {r0['rss']:,} KiB ({', '.join(f'{p}: {v:,}' for p, v in r0['per_proc'].items())})")
        held, clients, src = 0, [], 10
        out = []
        prev = None
        for n in sizes:
            add = n - held
            rc = self.recv("idle", add, held, src)
            src += 10
            t0 = time.monotonic()
            st = rc.ready()
            clients.append(rc)
            log(f"   +{add:,} streams opened in {time.monotonic() - t0:.1f} s "
                f"({st['ok']:,} ok, {st['failed']} failed, {st['procs']} client processes)")
            time.sleep(1)
            r_open = self.measure_rss()
            held = n
            time.sleep(a.hold)
            tot = {"open": 0, "hb": 0, "closed": 0, "failed": 0, "presence": 0, "resync": 0}
            for c in clients:
                s = c.cmd("stats")
                self.check_recv(f"idle {n}", s, c.n)
                for k in tot:
                    tot[k] += s[k]
            r1 = self.measure_rss()
            socks = self.relay.sockets()
            delta = (r1["rss"] - r0["rss"]) * 1024 / max(1, tot["open"])
            total = r1["rss"] * 1024 / max(1, tot["open"])
            marginal = None
            if prev is not None and tot["open"] > prev["open"]:
                marginal = (r1["rss"] - prev["rss_kib"]) * 1024 / (tot["open"] - prev["open"])
            out.append({"n": n, "open": tot["open"], "rss_kib": r1["rss"], "hwm_kib": r1["hwm"],
                        "base_kib": r0["rss"], "per_conn_b": delta, "total_per_conn_b": total,
                        "marginal_b": marginal, "rss_open_kib": r_open["rss"],
                        "per_conn_open_b": (r_open["rss"] - r0["rss"]) * 1024 / max(1, n), "from_n": prev["n"] if prev else None, "socks": socks, "hb": tot["hb"], "load": loadavg()})
            prev = out[-1]
            self.results_open = tot["open"]
            log(f"   {n:,} streams: {tot['open']:,} open, {tot['closed']} closed by the relay, "
                f"{tot['hb']:,} heartbeats received; relay sockets per process {list(socks.values())}")
            log(f"   relay RSS 1 s after the last stream opened: {r_open['rss']:,} KiB "
                f"({out[-1]['per_conn_open_b']:,.0f} B per stream); after holding {a.hold:.0f} s:")
            log(f"   relay RSS {r1['rss']:,} KiB (peak {r1['hwm']:,}); per stream: "
                f"{delta:,.0f} B over the RSS before ({delta / 1024:.2f} KiB), "
                f"{total:,.0f} B counting the whole RSS"
                + (f", {marginal:,.0f} B per stream from {out[-2]['n']:,} to {n:,}" if marginal else "")
                + f"; load average {loadavg()}")
        if a.trim_check:
            self.trim_check(r0)
        for c in clients:
            c.quit()
        self.wait_drained(base_socks)
        self.check_relay("idle")
        self.results["idle"] = out

    def trim_check(self, r0):
        """Diagnostic (--trim-check): how much of the RSS is memory the
        relay freed but malloc kept. Calls malloc_trim(0) in each relay
        worker through gdb (pauses them for a moment) and measures again."""
        for pid in self.relay.worker_pids:
            g = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex",
                                "call ((int (*)(unsigned long)) malloc_trim)(0)"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
            if "$1 = " not in g.stdout:
                log(f"   --trim-check: gdb on {pid} failed (exit {g.returncode}): "
                    f"{(g.stdout + g.stderr).strip()[-300:]!r}")
        time.sleep(0.5)
        r = self.measure_rss()
        n = self.results_open
        log(f"   --trim-check: after malloc_trim(0) in the relay workers: RSS {r['rss']:,} KiB, "
            f"{(r['rss'] - r0['rss']) * 1024 / max(1, n):,.0f} B per stream over the RSS before")
        self.results["trim_check"] = {"rss_kib": r["rss"], "per_conn_b": (r["rss"] - r0["rss"]) * 1024 / max(1, n)}

    # -- 2. fan-out and 3. saturation -----------------------------------
    def fanout(self, do_fan, do_sat):
        n = self.counts["fan"]
        log(f"\n2. fan-out: {n:,} streams, one per member of a {n:,}-member room; load average {loadavg()}")
        base_socks = sum(self.relay.sockets().values())
        rc = self.recv("fan", n, 0, 40, procs=max(2, -(-n // PER_PROC)))
        t0 = time.monotonic()
        st = rc.ready()
        t_conn = time.monotonic() - t0
        st, quiet = wait_settled(rc, min(600, self.left() - 60))
        log(f"   opened {st['ok']:,} in {t_conn:.1f} s ({st['failed']} failed); presence frames while "
            f"connecting: {st['presence']:,} ({st['bytes'] / 1e6:,.0f} MB), quiet {quiet:.1f} s after READY")
        self.results["fan_connect"] = {"secs": t_conn, "presence": st["presence"], "mb": st["bytes"] / 1e6,
                                       "quiet": quiet}
        self.check_recv("fan-out connect", st, n)
        r1 = self.measure_rss()
        log(f"   relay RSS {r1['rss']:,} KiB (peak {r1['hwm']:,}); relay sockets {list(self.relay.sockets().values())}")
        if do_fan:
            self.fan_messages(rc, n)
        if do_sat:
            self.saturation(rc, n)
        rc.quit()
        self.wait_drained(base_socks)
        self.check_relay("fan-out")

    def fan_messages(self, rc, n):
        a = self.args
        st = rc.cmd("reset")
        live = st["open"]
        cnt = a.fanout_messages
        load0 = loadavg()
        pids = self.relay.pids()
        cpu0, t0 = cpu_ticks(pids), time.monotonic()
        p = post(self.stack.port, self.files["fan_send"], self.rooms["fan"], cnt, 1.0 / a.fanout_gap, 1, 0,
                 cnt * a.fanout_gap + 60)
        st, t1 = wait_deliveries(rc, p["ok"] * live, 60)
        relay_cpu = (cpu_ticks(pids) - cpu0) / os.sysconf("SC_CLK_TCK")
        rep = rc.cmd("report")
        seqs = rep["seqs"]
        last = [s[3] for s in seqs]
        counts = [s[1] for s in seqs]
        lat = rep["lat_us"]
        a_first, a_last = after_answer(p, seqs, 0)
        res = {"messages": cnt, "ok": p["ok"], "live": live, "delivered": rep["rlb"],
               "after201_first_p50": pct(a_first, 50), "after201_last_p50": pct(a_last, 50),
               "after201_last_p99": pct(a_last, 99),
               "expected": p["ok"] * live, "last_p50": pct(last, 50), "last_p90": pct(last, 90),
               "last_p99": pct(last, 99), "last_max": max(last) if last else float("nan"),
               "first_p50": pct([s[2] for s in seqs], 50), "lat": lat, "post": p["post_us"],
               "relay_cpu": relay_cpu, "wall": t1 - t0,
               "cpu_us_per_delivery": relay_cpu * 1e6 / max(1, rep["rlb"]),
               "load": f"{load0} -> {loadavg()}"}
        self.results["fan"] = res
        log(f"   {p['ok']} of {cnt} messages posted (one every {a.fanout_gap:g} s; POST p50 "
            f"{ms(p['post_us']['p50'])}), {rep['rlb']:,} of {p['ok'] * live:,} deliveries")
        log(f"   until the last member had it: p50 {ms(res['last_p50'])}, p90 {ms(res['last_p90'])}, "
            f"p99 {ms(res['last_p99'])}, max {ms(res['last_max'])}   (target p99 <= 50 ms)")
        log(f"   until the first member had it: p50 {ms(res['first_p50'])}; every delivery: p50 {ms(lat['p50'])}, "
            f"p99 {ms(lat['p99'])}, max {ms(lat['max'])}; load average {res['load']}")
        log(f"   from the 201 (relay path only): first member p50 {ms(res['after201_first_p50'])}, "
            f"last member p50 {ms(res['after201_last_p50'])}, p99 {ms(res['after201_last_p99'])}")
        log(f"   relay CPU over those {res['wall']:.1f} s: {relay_cpu:.2f} s = {res['cpu_us_per_delivery']:.1f} us "
            f"per delivery (timers and heartbeats of {live:,} streams included)")
        if p["ok"] != cnt:
            self.problems.append(f"fan-out: {cnt - p['ok']} POSTs failed: {p['first_error']!r}")
        if rep["rlb"] != p["ok"] * live or any(c != live for c in counts) or len(seqs) != p["ok"]:
            short = [(s[0], s[1]) for s in seqs if s[1] != live][:5]
            self.problems.append(f"fan-out: {rep['rlb']:,} of {p['ok'] * live:,} deliveries; messages "
                                 f"short: {short}; per stream {rep['conn_rlb_min']}..{rep['conn_rlb_max']}")
        self.check_recv("fan-out", rep, live)

    def saturation(self, rc, n):
        a = self.args
        st = rc.cmd("reset")
        live = st["open"]
        cnt = a.sat_messages
        pids = self.relay.pids()
        clk = os.sysconf("SC_CLK_TCK")
        cpu0, box0, t0 = cpu_ticks(pids), box_cpu(), time.monotonic()
        rx0 = cpu_ticks(rc.pids())
        load0 = loadavg()
        p = post(self.stack.port, self.files["fan_send"], self.rooms["fan"], cnt, 0, a.sat_conns, 1000, 300)
        st, t1 = wait_deliveries(rc, p["ok"] * live, 300)
        cpu1, box1 = cpu_ticks(pids), box_cpu()
        rx1 = cpu_ticks(rc.pids())
        rep = rc.cmd("report")
        wall = t1 - t0
        window = (rep["last_ns"] - rep["first_ns"]) / 1e9
        relay_cpu = (cpu1 - cpu0) / clk
        res = {"messages": cnt, "ok": p["ok"], "post_rate": p["rate"], "delivered": rep["rlb"],
               "expected": p["ok"] * live, "window": window,
               "per_s": rep["rlb"] / window if window > 0 else float("nan"),
               "relay_cpu": relay_cpu, "relay_cores": relay_cpu / wall,
               "per_core": rep["rlb"] / relay_cpu if relay_cpu > 0 else float("nan"),
               "client_cores": (rx1 - rx0) / clk / wall,
               "box_busy": (box1[0] - box0[0]) / max(1, box1[1] - box0[1]),
               "lat": rep["lat_us"], "load": f"{load0} -> {loadavg()}", "bytes": rep["bytes"]}
        self.results["sat"] = res
        log(f"\n3. saturation: {p['ok']} of {cnt} messages into the {n:,}-member room as fast as the API "
            f"took them ({p['rate']:.0f}/s, {a.sat_conns} connections)")
        log(f"   {rep['rlb']:,} of {p['ok'] * live:,} deliveries in {window:.2f} s (first to last frame) = "
            f"{res['per_s']:,.0f} events/s ({rep['bytes'] / window / 1e6:,.0f} MB/s)")
        log(f"   relay CPU {relay_cpu:.2f} s over {wall:.1f} s ({res['relay_cores']:.2f} cores of 2) -> "
            f"{res['per_core']:,.0f} events per relay CPU-second; client {res['client_cores']:.2f} cores; "
            f"box busy {res['box_busy']:.0%}")
        log(f"   latency: p50 {ms(res['lat']['p50'])}, p99 {ms(res['lat']['p99'])}, max {ms(res['lat']['max'])}; "
            f"load average {res['load']}")
        if rep["rlb"] != p["ok"] * live:
            self.problems.append(f"saturation: {rep['rlb']:,} of {p['ok'] * live:,} deliveries; per stream "
                                 f"{rep['conn_rlb_min']}..{rep['conn_rlb_max']}")
        self.check_recv("saturation", rep, live)

    # -- 4. rate --------------------------------------------------------
    def rate(self):
        a = self.args
        n = self.counts["rate"]
        cnt = int(a.rate * a.rate_secs)
        log(f"\n4. rate: {a.rate:g} messages/s for {a.rate_secs:g} s into a room with {n:,} connected members; "
            f"load average {loadavg()}")
        base_socks = sum(self.relay.sockets().values())
        rc = self.recv("rate", n, 0, 70)
        st = rc.ready()
        st, quiet = wait_settled(rc, min(300, self.left() - 60))
        self.check_recv("rate connect", st, n)
        st = rc.cmd("reset")
        live = st["open"]
        pids = self.relay.pids()
        clk = os.sysconf("SC_CLK_TCK")
        cpu0, box0, t0, load0 = cpu_ticks(pids), box_cpu(), time.monotonic(), loadavg()
        p = post(self.stack.port, self.files["rate_send"], self.rooms["rate"], cnt, a.rate, a.post_conns, 2000,
                 a.rate_secs * 3 + 120)
        st, t1 = wait_deliveries(rc, p["ok"] * live, 120)
        cpu1, box1 = cpu_ticks(pids), box_cpu()
        rep = rc.cmd("report")
        lat = rep["lat_us"]
        a_first, a_last = after_answer(p, rep["seqs"], 2000)
        res = {"messages": cnt, "ok": p["ok"], "rate": p["rate"], "delivered": rep["rlb"],
               "after201_first_p50": pct(a_first, 50), "after201_first_p99": pct(a_first, 99),
               "after201_last_p50": pct(a_last, 50), "after201_last_p99": pct(a_last, 99),
               "expected": p["ok"] * live, "lat": lat, "post": p["post_us"], "lag": p["lag_us"],
               "relay_cores": (cpu1 - cpu0) / clk / (t1 - t0),
               "box_busy": (box1[0] - box0[0]) / max(1, box1[1] - box0[1]),
               "load": f"{load0} -> {loadavg()}", "errors": p["errors"], "first_error": p["first_error"]}
        self.results["rate"] = res
        log(f"   posted {p['ok']:,} of {cnt:,} (201) at {p['rate']:.0f}/s over {p['conns']} connections; "
            f"POST p50 {ms(p['post_us']['p50'])}, p99 {ms(p['post_us']['p99'])}; sends late against the "
            f"schedule: p99 {ms(p['lag_us']['p99'])}, max {ms(p['lag_us']['max'])}; errors {p['errors']}")
        log(f"   {rep['rlb']:,} of {p['ok'] * live:,} deliveries; send->receive p50 {ms(lat['p50'])}, "
            f"p90 {ms(lat['p90'])}, p99 {ms(lat['p99'])}, max {ms(lat['max'])}   (target p99 <= 10 ms)")
        log(f"   from the 201 (relay path only), per message: first member p50 {ms(res['after201_first_p50'])}, "
            f"p99 {ms(res['after201_first_p99'])}; last member p50 {ms(res['after201_last_p50'])}, "
            f"p99 {ms(res['after201_last_p99'])}")
        log(f"   relay {res['relay_cores']:.2f} cores, box busy {res['box_busy']:.0%}; load average {res['load']}")
        if p["errors"]:
            self.problems.append(f"rate: {p['errors']} POST errors; first: {p['first_error']!r}")
        if rep["rlb"] != p["ok"] * live:
            self.problems.append(f"rate: {rep['rlb']:,} of {p['ok'] * live:,} deliveries; per stream "
                                 f"{rep['conn_rlb_min']}..{rep['conn_rlb_max']}")
        self.check_recv("rate", rep, live)
        rc.quit()
        self.wait_drained(base_socks)
        self.check_relay("rate")


def summary(b, args):
    r = b.results
    log("\n" + "=" * 72)
    log("SUMMARY (target / measured)")
    log("=" * 72)
    for it in r.get("idle", []):
        ok = it["per_conn_b"] <= 5000
        log(f"RSS per idle stream, N={it['n']:,}: <= 5 KB / {it['per_conn_b']:,.0f} B "
            f"({it['total_per_conn_b']:,.0f} B with the base RSS"
            + (f"; {it['marginal_b']:,.0f} B each from {it['from_n']:,} to {it['n']:,}" if it["marginal_b"] else "")
            + f")  {'MET' if ok else 'MISSED'}")
    if "fan" in r:
        f = r["fan"]
        log(f"fan-out to {f['live']:,}, until the last member: p99 <= 50 ms / p50 {ms(f['last_p50'])}, "
            f"p99 {ms(f['last_p99'])} ({f['messages']} messages; per delivery p50 {ms(f['lat']['p50'])}, "
            f"p99 {ms(f['lat']['p99'])})  {'MET' if f['last_p99'] <= 50000 else 'MISSED'}")
    if "rate" in r:
        x = r["rate"]
        log(f"{args.rate:g} msg/s to {b.counts['rate']:,} members: p99 <= 10 ms / p50 {ms(x['lat']['p50'])}, "
            f"p99 {ms(x['lat']['p99'])} (sent at {x['rate']:.0f}/s)  "
            f"{'MET' if x['lat']['p99'] <= 10000 and x['ok'] == x['messages'] else 'MISSED'}")
    if "sat" in r:
        s = r["sat"]
        log(f"saturation: {s['per_core']:,.0f} events per relay CPU-second "
            f"({s['per_s']:,.0f} events/s delivered, relay on {s['relay_cores']:.2f} cores)")
    log(f"load average at the end: {loadavg()}; other Roost processes on this box: "
        f"{foreign_roost(set(b.relay.pids()) | set(b.stack.fcgi_pids()))}")
    probs = b.relay.log_problems()
    if probs:
        log(f"relay log: {len(probs)} warning/error lines; first: {probs[:3]}")
    log("JSON " + json.dumps(r, default=str))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle", default="10000,30000", help="idle stream counts, comma-separated")
    ap.add_argument("--fanout-members", type=int, default=10000)
    ap.add_argument("--fanout-messages", type=int, default=20)
    ap.add_argument("--fanout-gap", type=float, default=0.5, help="seconds between fan-out messages")
    ap.add_argument("--sat-messages", type=int, default=300)
    ap.add_argument("--sat-conns", type=int, default=8)
    ap.add_argument("--rate-members", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--rate-secs", type=float, default=10)
    ap.add_argument("--post-conns", type=int, default=32)
    ap.add_argument("--relays", type=int, default=2, help="roost-relay -w N")
    ap.add_argument("--unix", action="store_true",
                    help="streams over the relay's unix socket (as behind a web server on the same "
                         "host) instead of TCP on 127.0.0.1")
    ap.add_argument("--workers", type=int, default=4, help="roost.fcgi workers")
    ap.add_argument("--hold", type=float, default=20, help="seconds to hold the idle streams (> heartbeat)")
    ap.add_argument("--trim-check", action="store_true",
                    help="diagnostic: after the idle phase, malloc_trim(0) in the relay workers (gdb) and RSS again")
    ap.add_argument("--skip", default="", help="phases to skip: idle,fanout,sat,rate")
    ap.add_argument("--limit", type=float, default=1800, help="seconds for the whole run")
    args = ap.parse_args()
    args.idle = [int(x) for x in args.idle.split(",") if x]
    skip = set(x for x in args.skip.split(",") if x)
    if not os.access(LOAD_BIN, os.X_OK):
        raise SystemExit(f"{LOAD_BIN} is not built: make -C {BUILD_DIR} bench/relay_load")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per_relay = max(args.idle + [args.fanout_members]) / args.relays
    if per_relay > hard - 1000:
        raise SystemExit(f"{per_relay:.0f} streams per relay process is too many for the open-file limit "
                         f"{hard}: raise --relays")

    def on_alarm(sig, frame):
        raise SystemExit(f"time limit (--limit {args.limit:.0f} s) reached")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.limit) + 120)

    n_idle = max(args.idle) if "idle" not in skip and args.idle else 0
    n_fan = args.fanout_members if not {"fanout", "sat"} <= skip else 0
    n_rate = args.rate_members if "rate" not in skip else 0
    log(f"Roost relay load benchmark: {os.cpu_count()} cores shared by everything; load average {loadavg()}; "
        f"open-file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
    t_setup = time.monotonic()
    stack = Stack(workers=args.workers, relay=True, env={"ROOST_LOG_LEVEL": "warn"})
    relay = None
    b = None
    try:
        email, password = api.make_admin(stack)
        admin = api.login(stack, email, password)["token"]
        api.relax_limits(stack, admin)
        api.set_settings(stack, admin, messages_per_10s=1000, requests_per_minute=100000)
        tid = jwt.decode(admin, options={"verify_signature": False})["tid"]
        secret = stack.env_vars["ROOST_JWT_SECRET"]
        groups = [(p, c) for p, c in (("rli", n_idle), ("rlf", n_fan), ("rlr", n_rate)) if c]
        people = make_people(stack, groups)
        files, rooms = {}, {}
        tmp = os.path.join(stack.dir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        if n_idle:
            ids = [u for u, _ in people["rli"]]
            make_small_rooms(stack, "rli", ids, IDLE_ROOM_SIZE)
            files["idle"] = write_tokens(os.path.join(tmp, "idle.tok"), sign_tokens(secret, tid, people["rli"]))
        if n_fan:
            rooms["fan"] = make_room(stack, "relay load fan-out", [u for u, _ in people["rlf"]])
            toks = sign_tokens(secret, tid, people["rlf"])
            files["fan"] = write_tokens(os.path.join(tmp, "fan.tok"), toks)
            files["fan_send"] = write_tokens(os.path.join(tmp, "fan_send.tok"), toks[:SENDERS])
        if n_rate:
            rooms["rate"] = make_room(stack, "relay load rate", [u for u, _ in people["rlr"]])
            toks = sign_tokens(secret, tid, people["rlr"])
            files["rate"] = write_tokens(os.path.join(tmp, "rate.tok"), toks)
            files["rate_send"] = write_tokens(os.path.join(tmp, "rate_send.tok"), toks[:SENDERS])
        # one signed token must work through the API before anything else
        any_tok = open(next(iter(files.values()))).readline().strip()
        st, _, body = api.get(stack, "/me", token=any_tok)
        if st != 200:
            raise SystemExit(f"a token signed here is refused: GET /me {st} {body!r}")
        stack.relay_stop()
        relay = Relay(stack, args.relays, unix=args.unix)
        counts = {"idle": n_idle, "fan": n_fan, "rate": n_rate}
        log(f"setup: {sum(c for _, c in groups):,} users with sessions, rooms and tokens by SQL in "
            f"{time.monotonic() - t_setup:.1f} s; roost-relay -w {args.relays} on "
            f"{'unix socket ' + relay.path if relay.path else 'port ' + str(relay.port)} "
            f"(pids {relay.pids()}), {args.workers} roost.fcgi workers, lighttpd on {stack.port}")
        b = Bench(args, stack, relay, files, rooms, counts)
        if n_idle:
            b.idle()
        if n_fan:
            b.fanout("fanout" not in skip, "sat" not in skip)
        if n_rate:
            b.rate()
        summary(b, args)
        if b.problems:
            print("\nPROBLEMS (the relay misbehaved or the run is incomplete):", file=sys.stderr)
            for p in b.problems:
                print(f"  - {p}", file=sys.stderr)
            print(f"relay log tail:\n{open(relay.log, errors='replace').read()[-2000:]}", file=sys.stderr)
            sys.exit(1)
    finally:
        signal.alarm(0)
        if b is not None:
            for c in b.clients:
                c.kill()
        if relay is not None:
            relay.stop()
        stack.stop()


if __name__ == "__main__":
    main()
