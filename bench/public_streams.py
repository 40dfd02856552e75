#!/usr/bin/python3
"""Benchmark: event streams through the public URL, and REST next to them.

Starts the stack the way `./roost up` does (scripts/stack start with
roost-relay, 4 roost.fcgi workers, ROOST_PG_PREPARED=1, durable
PostgreSQL; binaries from $ROOST_BUILD_DIR, default <repo>/build), makes
--streams users with one session each (SQL, in rooms of 20, tokens signed
here: bench/relay_load.py's setup) and opens one Server-Sent Events stream
per user through the PUBLIC port, GET /api/v1/events on lighttpd, which
proxies it to the relay, with the C load client bench/relay_load (`make -C
build bench/relay_load`; epoll; one process per 15,000 streams). While
they open, GET /api/v1/health is asked every 100 ms; once they are open,
--probes more times one after the other (a new connection each, as a
monitor does). Prints the latency of those answers (p50, p99, max), how
many failed, whether one more stream still opens, and the web server's and
the relay's RSS and descriptor counts, before and with the streams.

--server nginx or --server apache puts the SHIPPED configuration of that
server in front instead (httpd-conf/nginx.conf.in with the events {}
settings docs/deploy.md gives; apache-proxy-fcgi.conf.in, mpm_event),
rendered and started as tests/integration/test_matrix.py does, with
spawn-fcgi workers; the stack's own lighttpd then stays idle.

Target (issue 12): 8,000 streams, every health answer under 50 ms.
Loopback only; bounded (--limit, default 900 s, and every wait has its own
deadline). Exits 1 when a stream failed to open or was closed, or a health
request failed or took over 5 s; a missed latency target is reported.

Usage: bench/public_streams.py [--streams 8000] [--probes 300]
        [--server lighttpd|nginx|apache] [--hold 20] [--limit 900]"""
import argparse
import os
import resource
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import relay_load as rl  # noqa: E402  (its setup helpers and the C client)
from relay_load import api, jwt, Stack, log, loadavg, pct  # noqa: E402

TARGET_MS = 50.0
PROBE_TIMEOUT = 5.0
PROBE_EVERY = 0.1          # while the streams open
ROOM_SIZE = 20


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def tree(pid):
    """pid and its descendants (Apache's children, nginx's workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def pss_kib(pids):
    """Proportional set size (shared pages split between their users):
    the memory a group of processes really costs."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            return None
    return total


def threads(pids):
    n = 0
    for p in pids:
        try:
            n += len(os.listdir(f"/proc/{p}/task"))
        except OSError:
            pass
    return n


class Probe:
    """GET /api/v1/health on a new connection: (status or None, ms)."""

    def __init__(self, port):
        self.req = (f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Connection: close\r\n\r\n").encode()
        self.port = port

    def __call__(self):
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=PROBE_TIMEOUT) as s:
                s.settimeout(max(0.1, PROBE_TIMEOUT - (time.monotonic() - t0)))
                s.sendall(self.req)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return None, (time.monotonic() - t0) * 1000
        ms = (time.monotonic() - t0) * 1000
        line = data.split(b"\r\n", 1)[0].split()
        st = int(line[1]) if len(line) > 1 and line[1].isdigit() else None
        if st == 200 and b'"status":"ok"' not in data.replace(b" ", b""):
            st = -200  # 200 without the body of a healthy answer
        return st, ms


class Background:
    """Probes every PROBE_EVERY s in a thread until stopped."""

    def __init__(self, probe):
        self.probe, self.res, self.stop_ev = probe, [], threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            self.res.append(self.probe())
            self.stop_ev.wait(PROBE_EVERY)

    def stop(self):
        self.stop_ev.set()
        self.t.join(PROBE_TIMEOUT + 2)
        return self.res


def summary(res):
    ok = [ms for st, ms in res if st == 200]
    bad = [(st, round(ms)) for st, ms in res if st != 200]
    return {"n": len(res), "ok": len(ok), "bad": bad[:5], "nbad": len(bad),
            "p50": pct(ok, 50), "p99": pct(ok, 99), "max": max(ok) if ok else float("nan"),
            "over": sum(1 for ms in ok if ms >= TARGET_MS)}


def fmt(s):
    return (f"{s['ok']} of {s['n']} answered 200: p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms, "
            f"max {s['max']:.1f} ms; {s['over']} at or over {TARGET_MS:.0f} ms"
            + (f"; failed: {s['nbad']} (first {s['bad']})" if s["nbad"] else ""))


# ------------------------------------------------------------ front ends

class Lighttpd:
    """The stack's own lighttpd: what `./roost up` serves."""
    name = "lighttpd (scripts/stack, httpd-conf/lighttpd-dev.conf.in)"

    def __init__(self, stack):
        self.stack, self.port = stack, stack.port

    def pids(self):
        pid = self.stack.lighttpd_pid()
        return [pid] if pid else []

    def limits(self):
        conf = open(os.path.join(self.stack.dir, "lighttpd.conf")).read()
        vals = [ln.split("=", 1)[1].strip() for ln in conf.splitlines()
                if ln.startswith(("server.max-fds", "server.max-connections"))]
        return f"server.max-fds {vals[0]}, server.max-connections {vals[1]}" if len(vals) == 2 else "?"

    def notes(self):
        try:
            with open(self.stack.log_path("error")) as f:
                n = sum(1 for ln in f if "sockets disabled" in ln)
        except OSError:
            n = 0
        return f"\"sockets disabled\" in lighttpd's error.log: {n} times"

    def stop(self):
        pass


class Shipped:
    """nginx or Apache from the shipped file, as test_matrix.py runs them."""

    def __init__(self, stack, kind, base):
        import matrix_servers as ms  # tests/integration, on the path through relay_load
        self.ms = ms
        ms.become_subreaper()
        ms.open_backends_to(stack)
        self.site = ms.Site(base, kind, stack)
        self.site.spawn_fcgi(workers=4)
        if kind == "nginx":
            self.name = "nginx (httpd-conf/nginx.conf.in, events {} as docs/deploy.md)"
            conf = self.site.render("nginx.conf.in", {"PORT": f"127.0.0.1:{self.site.port}"})
            self.proc = self.site.start_nginx(self.site.nginx_wrapper(conf))
        else:
            self.name = "Apache mpm_event (httpd-conf/apache-proxy-fcgi.conf.in)"
            conf = self.site.apache_wrapper(self.site.render("apache-proxy-fcgi.conf.in"))
            self.proc = self.site.start_apache(conf)
        self.port = self.site.port
        self.kind = kind

    def pids(self):
        return tree(self.proc.pid)

    def limits(self):
        return "as shipped"

    def notes(self):
        pids = self.pids()
        return (f"{len(pids)} processes, {threads(pids)} threads; descriptors per process "
                f"{[fd_count(p) for p in pids]}")

    def stop(self):
        self.site.stop()


# ------------------------------------------------------------ the run

def status(front, relay_pid):
    pids = front.pids()
    return {"web_rss": rl.rss_kib(pids), "web_pss": pss_kib(pids),
            "web_fds": sum(fd_count(p) or 0 for p in pids),
            "relay_rss": rl.proc_status(relay_pid, "VmRSS"), "relay_fds": fd_count(relay_pid)}


def show(what, s):
    log(f"   {what}: web server RSS {s['web_rss']:,} KiB (PSS {s['web_pss']:,}), {s['web_fds']:,} descriptors; "
        f"relay RSS {s['relay_rss']:,} KiB, {s['relay_fds']:,} descriptors")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=8000)
    ap.add_argument("--probes", type=int, default=300, help="health requests once the streams are open")
    ap.add_argument("--server", choices=("lighttpd", "nginx", "apache"), default="lighttpd")
    ap.add_argument("--hold", type=float, default=20, help="seconds to hold the streams before the probes")
    ap.add_argument("--limit", type=float, default=900, help="seconds for the whole run")
    args = ap.parse_args()
    if not os.access(rl.LOAD_BIN, os.X_OK):
        raise SystemExit(f"{rl.LOAD_BIN} is not built: make -C {rl.BUILD_DIR} bench/relay_load")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def on_alarm(sig, frame):
        raise SystemExit(f"time limit (--limit {args.limit:.0f} s) reached")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.limit))

    log(f"Public URL streams: {args.streams:,} SSE streams through {args.server}; {os.cpu_count()} cores "
        f"shared by everything; load average {loadavg()}; open-file limit {hard}")
    t_setup = time.monotonic()
    # scripts/stack start as ./roost up runs it: durable PostgreSQL,
    # prepared statements, 4 workers, the relay behind lighttpd.
    stack = Stack(workers=4, relay=True, env={"ROOST_PG_FAST": "0", "ROOST_PG_PREPARED": "1",
                                              "ROOST_LOG_LEVEL": "warn"})
    front = rc = None
    problems = []
    try:
        email, password = api.make_admin(stack)
        admin = api.login(stack, email, password)["token"]
        api.relax_limits(stack, admin)
        tid = jwt.decode(admin, options={"verify_signature": False})["tid"]
        people = rl.make_people(stack, [("ps", args.streams)])["ps"]
        rl.make_small_rooms(stack, "ps", [u for u, _ in people], ROOM_SIZE)
        tmp = os.path.join(stack.dir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        tokfile = rl.write_tokens(os.path.join(tmp, "streams.tok"),
                                  rl.sign_tokens(stack.env_vars["ROOST_JWT_SECRET"], tid, people))
        if args.server == "lighttpd":
            front = Lighttpd(stack)
        else:
            front = Shipped(stack, args.server, tmp)
        relay_pid = stack.relay_pid()
        probe = Probe(front.port)
        st, _ = probe()
        if st != 200:
            raise SystemExit(f"GET /api/v1/health through {front.name} answered {st} before any stream")
        log(f"setup in {time.monotonic() - t_setup:.1f} s: {args.streams:,} users (sessions, rooms of "
            f"{ROOM_SIZE}, tokens) by SQL; {front.name} on port {front.port}, {front.limits()}; "
            f"roost-relay pid {relay_pid} on 127.0.0.1:{stack.relay_port}")
        idle = [probe() for _ in range(50)]
        log(f"   health with no stream open: {fmt(summary(idle))}")
        s0 = status(front, relay_pid)
        show("before", s0)

        bg = Background(probe)
        t0 = time.monotonic()
        rc = rl.Recv(front.port, tokfile, args.streams, 0, 100, args.limit)
        ready = rc.ready(timeout=args.limit)
        t_open = time.monotonic() - t0
        during = summary(bg.stop())
        log(f"\n{ready['ok']:,} of {args.streams:,} streams opened in {t_open:.1f} s "
            f"({ready['failed']} failed{', first: ' + repr(ready['fail_why']) if ready['failed'] else ''}; "
            f"{ready['procs']} client process(es)); load average {loadavg()}")
        log(f"   health while they opened (every {PROBE_EVERY * 1000:.0f} ms): {fmt(during)}")
        time.sleep(args.hold)
        s1 = status(front, relay_pid)
        held = rc.cmd("stats")
        # (relay_load counts heartbeat frames, but lighttpd re-chunks the
        # stream and the client does not de-chunk: count bytes instead.)
        log(f"   after {args.hold:.0f} s: {held['open']:,} open, {held['closed']} closed "
            f"({held['close_why']!r}); {held['bytes'] / max(1, held['open']):.0f} bytes received per "
            f"stream (head, presence of the room, heartbeats)")
        show("with the streams", s1)
        log(f"   per stream: web server {(s1['web_pss'] - s0['web_pss']) * 1024 / max(1, held['open']):,.0f} B (PSS) "
            f"and {(s1['web_fds'] - s0['web_fds']) / max(1, held['open']):.2f} descriptors; relay "
            f"{(s1['relay_rss'] - s0['relay_rss']) * 1024 / max(1, held['open']):,.0f} B and "
            f"{(s1['relay_fds'] - s0['relay_fds']) / max(1, held['open']):.2f} descriptors")
        res = [probe() for _ in range(args.probes)]
        after = summary(res)
        log(f"   health with {held['open']:,} streams open ({args.probes} one after the other): {fmt(after)}")
        one = rl.Recv(front.port, tokfile, 1, 0, 99, 60)
        extra = one.ready(timeout=60)
        one.quit()
        log(f"   one more stream: {'opened' if extra['ok'] == 1 else 'FAILED: ' + repr(extra['fail_why'])}")
        log(f"   {front.notes()}; load average {loadavg()}")
        met = after["nbad"] == 0 and after["ok"] and after["max"] < TARGET_MS
        log(f"\ntarget: {args.streams:,} streams open and every health answer under {TARGET_MS:.0f} ms: "
            f"{'met' if met and held['open'] == args.streams else 'MISSED'}")

        if ready["failed"] or ready["ok"] != args.streams:
            problems.append(f"{args.streams - ready['ok']} streams did not open: {ready['fail_why']!r}")
        if held["closed"] or held["open"] != args.streams:
            problems.append(f"{held['closed']} streams closed, {held['open']} open: {held['close_why']!r}")
        if during["nbad"] or after["nbad"]:
            problems.append(f"health failed: {during['nbad']} while opening, {after['nbad']} after")
        if extra["ok"] != 1:
            problems.append(f"one more stream did not open: {extra['fail_why']!r}")
    finally:
        signal.alarm(0)
        if rc is not None:
            rc.kill()
        if front is not None:
            front.stop()
        stack.stop()
    if problems:
        print("\nPROBLEMS:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
