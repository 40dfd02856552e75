#!/usr/bin/python3
"""Integration-test harness for Roost (stdlib only; tests may add requests).

A test file looks like:

    from harness import Stack, raw_request, run_tests, test, Skip

    stack = Stack(workers=2)          # private PostgreSQL + Redis + lighttpd

    @test
    def health_answers():
        status, headers, body = raw_request(stack.port, b"GET /api/v1/health ...")
        assert status == 200, status

    if __name__ == "__main__":
        run_tests(stack)              # TAP on stdout; stops the stack; exits

Stack
    Runs `scripts/stack start DIR PORT` in a fresh short temp folder under
    /tmp, on a free port, with ROOST_PG_FAST=1. The roost.fcgi it serves is
    $ROOST_BUILD_DIR/roost.fcgi (`make check` sets ROOST_BUILD_DIR; default
    <repo>/build). Attributes: dir, port, env_vars (DIR/env as a dict).
    Methods: url(path), env(), fcgi_pids(), pg_stop/pg_start,
    redis_stop/redis_start, web_stop/web_start, status(), psql(sql),
    redis_cli(*args), log_path(name), stop().
    Stack(relay=True) also runs $ROOST_BUILD_DIR/roost-relay on its own
    free port, and lighttpd sends GET /api/v1/events to it; the default,
    relay=False, runs no relay (roost.fcgi serves the events itself: the
    fallback mode). Relay methods: relay_url(path) (straight to the relay,
    not through lighttpd), relay_port, relay_pid(), relay_pids(),
    relay_kill(sig), relay_start(), relay_stop(), and
    spawn_relay(env={...}) -> RelayProcess: one more roost-relay on another
    port with the stack's environment (plus env), e.g. a second relay on
    the same Redis; stopped with the stack.
    stop() always runs: at run_tests' end, at exit, on SIGTERM/SIGINT/SIGHUP,
    and after an uncaught exception. It removes the folder unless
    ROOST_KEEP_TMP=1 (then it says where the folder is).

TAP
    @test registers a function; run_tests() runs them in order and prints
    "ok N - name" / "not ok N - name" (the traceback and the new lines of
    the stack's lighttpd error log, which holds worker stderr, as "# "
    lines), then "1..N"; exits 1 if any failed. A test that raises fails and
    the next ones still run; `raise Skip("why")` gives "ok N - name # SKIP".
    `./test_x.py name1 name2` runs only the named tests (others are skipped).
    With stacks given, a last test stops the web server and the relays
    (so that LeakSanitizer reports at exit) and checks that no worker or
    relay wrote an AddressSanitizer / UBSan / LeakSanitizer report to its
    log (worker.log, error.log, relay*.log).

Realtime clients (GET /api/v1/events)
    SSEClient(port, token=..., last_event_id=...): one Server-Sent Events
    connection with a reader thread; .status, .headers, .events (parsed
    SSEEvent: id, event, data, json, t), .comments (heartbeats), wait_for(),
    next(), since(mark), wait_closed(). longpoll(port, ...) -> LongPoll
    (status, headers, body, elapsed). See their docstrings.

raw_request(port, data, timeout=5) -> (status | None, headers, body)
    Sends bytes as they are (malformed HTTP welcome) to 127.0.0.1:port and
    reads one response: status int (None when the server closed or timed
    out without a status line), headers as a dict with lower-case names
    (repeated headers joined with ", "), body bytes (de-chunked).
"""
import atexit
import codecs
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
STACK_SCRIPT = os.path.join(REPO, "scripts", "stack")
BUILD_DIR = os.path.abspath(os.environ.get("ROOST_BUILD_DIR") or os.path.join(REPO, "build"))

RELAY_BIN = os.path.join(BUILD_DIR, "roost-relay")

__all__ = ["Stack", "StackError", "Skip", "test", "run_tests", "raw_request",
           "free_port", "wait_until", "REPO", "BUILD_DIR", "RELAY_BIN",
           "RelayProcess", "SSEClient", "SSEEvent", "LongPoll", "longpoll"]


class StackError(RuntimeError):
    """scripts/stack failed; the message holds its output and log tails."""


class Skip(Exception):
    """Raise in a test to report it as skipped."""


# ----------------------------------------------------------------- helpers

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Call predicate until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def start_listening(argv, port, log_path, what, timeout=15, **popen):
    """Starts argv in a session of its own (stdout and stderr appended to
    log_path) and waits until 127.0.0.1:port accepts a connection; an early
    exit fails with the log's tail. Returns the Popen."""
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                start_new_session=True, **popen)

    def answers():
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited ({proc.returncode}):\n{_tail(log_path)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(answers, timeout=timeout, what=what)
    return proc


def _tail(path, lines=20):
    try:
        with open(path, "rb") as f:
            data = f.read()[-16384:]
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").splitlines()[-lines:]
    return "\n".join(text)


def parse_env_file(path):
    """Parse the KEY='value' lines written by scripts/stack."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.lstrip().startswith("#") or "=" not in line:
                continue
            key, _, raw = line.partition("=")
            parts = shlex.split(raw, comments=False, posix=True)
            out[key.strip()] = "".join(parts)
    return out


# ----------------------------------------------------------------- Stack

_live_stacks = []


class Stack:
    """A private PostgreSQL + Redis + lighttpd (+ roost.fcgi) in a temp dir."""

    def __init__(self, workers=None, port=None, env=None, start=True, relay=False):
        if workers is None:
            workers = int(os.environ.get("ROOST_WORKERS") or 2)
        self.workers = int(workers)
        self.extra_env = dict(env or {})
        self.port = port
        self.relay = bool(relay)
        self.relay_port = None
        self.env_vars = {}
        self._stopped = False
        self._extra_relays = []
        if self.relay and not os.access(RELAY_BIN, os.X_OK):
            raise StackError(f"Stack(relay=True): {RELAY_BIN} is not built")
        self.dir = tempfile.mkdtemp(prefix="roost-", dir="/tmp")
        # PostgreSQL runs as the "postgres" user when we are root: it must
        # be able to enter this folder.
        os.chmod(self.dir, 0o755)
        _live_stacks.append(self)
        _install_cleanup()
        if start:
            self.start()

    # -- control -----------------------------------------------------------

    def _script_env(self):
        e = dict(os.environ)
        e.update({"ROOST_PG_FAST": "1", "ROOST_WORKERS": str(self.workers),
                  "ROOST_BUILD_DIR": BUILD_DIR})
        e.pop("ROOST_PORT", None)
        e.pop("ROOST_RELAY_PORT", None)
        # The relay runs only when asked for: existing tests keep the
        # fallback mode even once roost-relay is built.
        e["ROOST_RELAY"] = "1" if self.relay else "0"
        if self.relay and self.relay_port:
            e["ROOST_RELAY_PORT"] = str(self.relay_port)
        e.update(self.extra_env)
        return e

    def _run_stack(self, *args, check=True, timeout=180):
        p = subprocess.run([STACK_SCRIPT, *args], env=self._script_env(),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        if check and p.returncode != 0:
            raise StackError(f"scripts/stack {' '.join(args)} failed (exit {p.returncode}):\n"
                             f"{out}{self._log_tails()}")
        return p.returncode, out

    def _log_tails(self):
        parts = []
        for name in ("pg/log/postgres.log", "redis/redis.log", "log/error.log",
                     "log/worker.log", "log/relay.log"):
            t = _tail(os.path.join(self.dir, name))
            if t:
                parts.append(f"--- {name}:\n{t}\n")
        return "".join(parts)

    def start(self):
        """Start (or restart) the whole stack; retries on a port race."""
        fixed = self.port is not None
        for attempt in range(5):
            if not fixed:
                self.port = free_port()
            if self.relay and (attempt or not self.relay_port):
                self.relay_port = free_port()
                while self.relay_port == self.port:
                    self.relay_port = free_port()
            code, out = self._run_stack("start", self.dir, str(self.port), check=False)
            if code == 0:
                break
            if fixed or "in use" not in out and "Address already in use" not in out:
                raise StackError(f"scripts/stack start {self.dir} {self.port} failed "
                                 f"(exit {code}):\n{out}{self._log_tails()}")
        else:
            raise StackError(f"no free port after 5 attempts:\n{out}")
        self.reload_env()
        return self

    def reload_env(self):
        self.env_vars = parse_env_file(os.path.join(self.dir, "env"))
        self.port = int(self.env_vars["ROOST_PORT"])
        if self.env_vars.get("ROOST_RELAY_PORT"):
            self.relay_port = int(self.env_vars["ROOST_RELAY_PORT"])
        elif self.relay:
            raise StackError(f"Stack(relay=True), but {self.dir}/env has no ROOST_RELAY_PORT")
        return self.env_vars

    def stop(self):
        """Stop everything and remove the folder (unless ROOST_KEEP_TMP=1)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._stop_extra_relays()
            if os.path.isdir(self.dir):
                self._run_stack("stop", self.dir, check=False, timeout=120)
        finally:
            if self in _live_stacks:
                _live_stacks.remove(self)
            if os.environ.get("ROOST_KEEP_TMP") == "1":
                sys.stderr.write(f"# ROOST_KEEP_TMP=1: kept {self.dir}\n")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def pg_stop(self):
        self._run_stack("pg-stop", self.dir)

    def pg_start(self):
        self._run_stack("pg-start", self.dir)

    def redis_stop(self):
        self._run_stack("redis-stop", self.dir)

    def redis_start(self):
        self._run_stack("redis-start", self.dir)

    def web_stop(self):
        self._run_stack("web-stop", self.dir)

    def web_start(self):
        self._run_stack("web-start", self.dir)

    def status(self):
        """{"postgres": bool, "redis": bool, "lighttpd": bool, "relay": bool}
        ("relay" only when the stack has one)"""
        _, out = self._run_stack("status", self.dir, check=False)
        res = {}
        for line in out.splitlines():
            name, _, rest = line.partition(":")
            if name in ("postgres", "redis", "lighttpd") or \
                    (name == "relay" and not rest.strip().startswith("disabled")):
                res[name] = rest.strip().startswith("running")
        return res

    # -- the relay (Stack(relay=True)) --------------------------------------

    def _need_relay(self):
        if not self.relay_port:
            raise AssertionError("this Stack runs no relay (Stack(relay=True))")

    def relay_url(self, path="/"):
        """URL straight to the relay (not through lighttpd)."""
        self._need_relay()
        if not path.startswith("/"):
            path = "/" + path
        return f"http://127.0.0.1:{self.relay_port}{path}"

    def relay_pid(self):
        """pid of the stack's relay (DIR/run/relay.pid), or None."""
        try:
            with open(os.path.join(self.dir, "run", "relay.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        st = _proc_stat(pid)
        return pid if st and st[1] != "Z" and st[0].startswith("roost-relay") else None

    def relay_pids(self):
        """Sorted pids of every live roost-relay of this stack: the main one
        and those from spawn_relay (by ROOST_STATE_DIR in their environment)."""
        marker = f"ROOST_STATE_DIR={self.dir}".encode()
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            st = _proc_stat(int(name))
            if not st or st[1] == "Z" or not st[0].startswith("roost-relay"):
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        pids.append(int(name))
            except OSError:
                pass
        return sorted(pids)

    def relay_start(self, wait_proxy=True):
        """scripts/stack relay-start: the relay answers on its port when
        this returns. With wait_proxy, also waits until lighttpd routes
        /api/v1/events to it again (after a failure lighttpd leaves a
        backend alone for its disable-time, 1 s)."""
        self._need_relay()
        self._run_stack("relay-start", self.dir)
        if wait_proxy:
            def routed():
                st, _, _ = raw_request(self.port, b"GET /api/v1/events HTTP/1.1\r\nHost: t\r\n"
                                                  b"Connection: close\r\n\r\n", timeout=5)
                return st is not None and st != 503
            wait_until(routed, timeout=10, interval=0.1, what="lighttpd routing to the restarted relay")

    def relay_stop(self):
        """scripts/stack relay-stop (SIGTERM; also ends spawn_relay ones)."""
        self._need_relay()
        self._run_stack("relay-stop", self.dir)

    def relay_kill(self, sig=signal.SIGKILL, timeout=10):
        """Send sig to the stack's relay; for SIGKILL/SIGTERM wait until it
        is gone. Returns its pid."""
        self._need_relay()
        pid = self.relay_pid()
        if pid is None:
            raise AssertionError("the relay is not running")
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            wait_until(lambda: not _pid_alive(pid), timeout=timeout, what=f"relay {pid} to exit")
        return pid

    def spawn_relay(self, env=None, port=None, name=None):
        """One more roost-relay on 127.0.0.1:port (default: a free one) with
        the stack's environment plus env; stderr to DIR/log/relay-NAME.log."""
        if not os.access(RELAY_BIN, os.X_OK):
            raise AssertionError(f"{RELAY_BIN} is not built")
        r = RelayProcess(self, env=env, port=port, name=name)
        self._extra_relays.append(r)
        return r

    def _stop_extra_relays(self):
        for r in list(self._extra_relays):
            try:
                r.stop()
            except Exception as e:
                sys.stderr.write(f"# stopping relay {r.port} failed: {e}\n")
        self._extra_relays = []

    # -- access ------------------------------------------------------------

    @property
    def url_base(self):
        return self.env_vars["ROOST_URL"]

    def url(self, path="/"):
        if not path.startswith("/"):
            path = "/" + path
        return self.env_vars["ROOST_URL"] + path

    def env(self):
        """os.environ plus the stack's values: for roostctl, roost.cgi, psql."""
        e = dict(os.environ)
        e.update(self.env_vars)
        return e

    @property
    def redis_socket(self):
        url = self.env_vars["ROOST_REDIS_URL"]
        return url[len("unix://"):].split("?", 1)[0] if url.startswith("unix://") else url

    def redis_admin_env(self):
        """Environment for `redis-cli --user admin`: scripts/stack's Redis
        lets no client in without a password (REDISCLI_AUTH keeps it off
        the command line)."""
        with open(os.path.join(self.dir, "redis", "admin.password")) as f:
            return dict(os.environ, REDISCLI_AUTH=f.read().strip())

    def psql(self, sql, user_db=None):
        """Run SQL as the roost user; return stdout (unaligned, tuples only)."""
        p = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                            "-d", user_db or self.env_vars["ROOST_DATABASE_URL"], "-c", sql],
                           env=self.env(), capture_output=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"psql failed: {p.stderr.decode(errors='replace')}")
        return p.stdout.decode().strip()

    def redis_cli(self, *args):
        """redis-cli as the stack's Redis admin user (every key and
        command); stdout, stripped."""
        p = subprocess.run(["redis-cli", "-s", self.redis_socket, "--user", "admin", *args],
                           env=self.redis_admin_env(), capture_output=True, timeout=30)
        if p.returncode != 0:
            raise AssertionError(f"redis-cli failed: {p.stderr.decode(errors='replace')}")
        return p.stdout.decode().strip()

    def log_path(self, name="worker"):
        """Path of a log: "worker" (roost.fcgi stderr: its log lines and any
        sanitizer report, via lighttpd's server.breakagelog), "error"
        (lighttpd's own), "access", "postgres", "redis"."""
        return {
            "worker": os.path.join(self.dir, "log", "worker.log"),
            "error": os.path.join(self.dir, "log", "error.log"),
            "access": os.path.join(self.dir, "log", "access.log"),
            "postgres": os.path.join(self.dir, "pg", "log", "postgres.log"),
            "redis": os.path.join(self.dir, "redis", "redis.log"),
            "relay": os.path.join(self.dir, "log", "relay.log"),
        }[name]

    def relay_logs(self):
        """Every relay log: DIR/log/relay.log and those of spawn_relay."""
        return sorted(glob.glob(os.path.join(self.dir, "log", "relay*.log")))

    def lighttpd_pid(self):
        try:
            with open(os.path.join(self.dir, "run", "lighttpd.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        st = _proc_stat(pid)
        return pid if st and st[1] != "Z" else None

    def fcgi_pids(self):
        """Sorted pids of the live roost.fcgi processes of this stack: the
        children of its lighttpd (or, if lighttpd is gone, processes whose
        environment has this ROOST_STATE_DIR)."""
        parent = self.lighttpd_pid()
        marker = f"ROOST_STATE_DIR={self.dir}".encode()
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            st = _proc_stat(pid)
            if not st:
                continue
            comm, state, ppid = st
            if state == "Z" or "roost.fcgi" not in comm:
                continue
            if parent is not None:
                if ppid == parent:
                    pids.append(pid)
            else:
                try:
                    with open(f"/proc/{pid}/environ", "rb") as f:
                        if marker in f.read().split(b"\0"):
                            pids.append(pid)
                except OSError:
                    pass
        return sorted(pids)


class RelayProcess:
    """A roost-relay started by Stack.spawn_relay(). Attributes: pid, port,
    log (path); url(path); alive(); kill(sig); stop() (SIGTERM, then KILL)."""

    def __init__(self, stack, env=None, port=None, name=None):
        self.stack = stack
        self.port = port or free_port()
        self.name = name or str(self.port)
        self.log = os.path.join(stack.dir, "log", f"relay-{self.name}.log")
        e = stack.env()
        e.update(env or {})
        self.proc = start_listening([RELAY_BIN, "-l", f"127.0.0.1:{self.port}"], self.port,
                                    self.log, f"relay on port {self.port}", env=e, cwd=stack.dir)
        self.pid = self.proc.pid

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path if path.startswith('/') else '/' + path}"

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(timeout=10)

    def stop(self, timeout=10):
        if self in self.stack._extra_relays:
            self.stack._extra_relays.remove(self)
        if not self.alive():
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


def _pid_alive(pid):
    st = _proc_stat(pid)
    return bool(st) and st[1] != "Z"


def _proc_stat(pid):
    """(comm, state, ppid) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    lp, rp = data.find("("), data.rfind(")")
    if lp < 0 or rp < 0:
        return None
    rest = data[rp + 2:].split()
    try:
        return data[lp + 1:rp], rest[0], int(rest[1])
    except (IndexError, ValueError):
        return None


# ----------------------------------------------------------------- cleanup

_cleanup_installed = False


def _stop_all():
    for s in list(_live_stacks):
        try:
            s.stop()
        except Exception as e:  # keep stopping the others
            sys.stderr.write(f"# stopping {s.dir} failed: {e}\n")


def _on_signal(signum, frame):
    signal.signal(signum, signal.SIG_DFL)
    _stop_all()
    os._exit(128 + signum)


def _excepthook(kind, value, tb):
    # An error outside a test (typically Stack() at module level): tell the
    # TAP driver the whole file failed, with the details as comments.
    msg = str(value).splitlines()[0] if str(value) else kind.__name__
    sys.stdout.write(f"Bail out! {kind.__name__}: {msg}\n")
    for line in "".join(traceback.format_exception(kind, value, tb)).splitlines():
        sys.stdout.write(f"# {line}\n")
    sys.stdout.flush()
    _stop_all()


def _install_cleanup():
    global _cleanup_installed
    if _cleanup_installed:
        return
    _cleanup_installed = True
    atexit.register(_stop_all)
    sys.excepthook = _excepthook
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        try:
            signal.signal(sig, _on_signal)
        except (ValueError, OSError):  # not the main thread
            pass


# ----------------------------------------------------------------- TAP

_tests = []


def test(fn):
    """Register a test function (runs in the order of registration)."""
    _tests.append(fn)
    return fn


def closing_test(opened):
    """A @test that closes, whatever happens, every client (SSEClient...)
    the test appended to the list opened."""
    def register(fn):
        def run():
            try:
                fn()
            finally:
                while opened:
                    opened.pop().close()
        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        return test(run)
    return register


SANITIZER_RE = re.compile(rb"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |"
                          rb"WARNING: (AddressSanitizer|ThreadSanitizer)|SUMMARY: UndefinedBehaviorSanitizer")


def _log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _new_log_lines(path, since, limit=60):
    try:
        with open(path, "rb") as f:
            f.seek(since)
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    if len(lines) > limit:
        lines = [f"... ({len(lines) - limit} earlier lines)"] + lines[-limit:]
    return lines


def _comment(text):
    for line in str(text).splitlines() or [""]:
        sys.stdout.write(f"# {line}\n")


def run_tests(*stacks):
    """Run the registered tests as TAP, stop the given stacks, exit."""
    only = set(sys.argv[1:])
    n = failed = 0
    try:
        for fn in _tests:
            n += 1
            name = fn.__name__
            if only and name not in only:
                sys.stdout.write(f"ok {n} - {name} # SKIP not selected\n")
                sys.stdout.flush()
                continue
            marks = [(log, _log_size(log)) for s in stacks
                     for log in [s.log_path()] + s.relay_logs() + ([s.log_path("relay")] if s.relay else [])]
            t0 = time.monotonic()
            try:
                fn()
            except Skip as e:
                sys.stdout.write(f"ok {n} - {name} # SKIP {e}\n")
            except BaseException as e:  # noqa: B902 - a test may raise anything
                if isinstance(e, KeyboardInterrupt):
                    raise
                failed += 1
                sys.stdout.write(f"not ok {n} - {name}\n")
                _comment(traceback.format_exc().rstrip())
                seen = set()
                for log, size in marks:
                    if log in seen:
                        continue
                    seen.add(log)
                    lines = _new_log_lines(log, size)
                    if lines:
                        _comment(f"--- new lines in {log}:")
                        _comment("\n".join(lines))
            else:
                sys.stdout.write(f"ok {n} - {name}\n")
            took = time.monotonic() - t0
            if took >= 1.0:
                _comment(f"{name} took {took:.1f}s")
            sys.stdout.flush()
        if stacks:
            n += 1
            reports = []
            for s in stacks:
                # Stop the web server first: lighttpd SIGTERMs its workers,
                # and LeakSanitizer reports only when a worker exits.
                try:
                    s.web_stop()
                    deadline = time.monotonic() + 15
                    while s.fcgi_pids() and time.monotonic() < deadline:
                        time.sleep(0.05)
                    if s.fcgi_pids():
                        reports.append(f"workers {s.fcgi_pids()} did not exit on SIGTERM")
                except Exception as e:
                    reports.append(f"stopping the web server failed: {e}")
                # The relays too (SIGTERM): LeakSanitizer reports at exit.
                try:
                    s._stop_extra_relays()
                    if s.relay:
                        s.relay_stop()
                    if s.relay_pids():
                        reports.append(f"relays {s.relay_pids()} did not exit on SIGTERM")
                except Exception as e:
                    reports.append(f"stopping the relay failed: {e}")
                for log in [s.log_path("worker"), s.log_path("error")] + s.relay_logs():
                    try:
                        with open(log, "rb") as f:
                            for line in f:
                                if SANITIZER_RE.search(line):
                                    reports.append(f"{log}: "
                                                   f"{line.decode('utf-8', 'replace').rstrip()}")
                    except OSError:
                        pass
            if reports:
                failed += 1
                sys.stdout.write(f"not ok {n} - worker logs have no sanitizer reports\n")
                _comment("\n".join(reports[:40]))
            else:
                sys.stdout.write(f"ok {n} - worker logs have no sanitizer reports\n")
    finally:
        for s in stacks:
            try:
                s.stop()
            except Exception as e:
                _comment(f"stopping the stack failed: {e}")
    sys.stdout.write(f"1..{n}\n")
    sys.stdout.flush()
    sys.exit(1 if failed else 0)


# ----------------------------------------------------------------- raw HTTP

def raw_request(port, data, timeout=5, host="127.0.0.1"):
    """Send raw bytes, read one HTTP response: (status|None, headers, body)."""
    is_head = data.lstrip()[:5].upper() == b"HEAD "
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)

    # Send from a thread: the server may answer (413, 400) and stop reading
    # before a large body is through.
    def sender():
        try:
            sock.sendall(data)
        except OSError:
            pass

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    buf = b""
    eof = False
    deadline = time.monotonic() + timeout

    def fill():
        nonlocal buf, eof
        if eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            eof = True
            return False
        if not chunk:
            eof = True
            return False
        buf += chunk
        return True

    try:
        while True:
            # headers
            while b"\r\n\r\n" not in buf and b"\n\n" not in buf:
                if not fill():
                    status = _parse_status(buf)
                    return status, {}, b""
            sep = b"\r\n\r\n" if b"\r\n\r\n" in buf else b"\n\n"
            head, _, rest = buf.partition(sep)
            lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
            status = _parse_status(lines[0].encode("latin-1"))
            headers = {}
            for line in lines[1:]:
                k, sep2, v = line.partition(":")
                if not sep2:
                    continue
                k = k.strip().lower()
                v = v.strip()
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
            if status is not None and 100 <= status < 200 and status != 101:
                buf = rest  # interim response (100 Continue): read the next
                continue
            buf = rest
            break

        if is_head or status in (204, 304) or (status is not None and status < 200):
            return status, headers, b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                while b"\r\n" not in buf:
                    if not fill():
                        return status, headers, body + buf
                line, _, buf = buf.partition(b"\r\n")
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    return status, headers, body + line + buf
                if size == 0:
                    return status, headers, body
                while len(buf) < size + 2:
                    if not fill():
                        return status, headers, body + buf
                body += buf[:size]
                buf = buf[size + 2:]
        if "content-length" in headers:
            try:
                length = int(headers["content-length"].split(",")[0])
            except ValueError:
                length = None
            if length is not None:
                while len(buf) < length:
                    if not fill():
                        break
                return status, headers, buf[:length]
        while fill():
            pass
        return status, headers, buf
    finally:
        try:
            sock.close()
        except OSError:
            pass


def _parse_status(line):
    m = re.match(rb"HTTP/\d(?:\.\d)? (\d{3})", line or b"")
    return int(m.group(1)) if m else None


# ----------------------------------------------------------------- realtime clients

class SSEEvent:
    """One Server-Sent Event: id (None when the frame had no id line),
    event (the type; "message" when absent), data (text), json (data
    parsed, or None), t (time.monotonic() when it was parsed)."""

    __slots__ = ("id", "event", "data", "json", "t")

    def __init__(self, id, event, data, t):
        self.id, self.event, self.data, self.t = id, event, data, t
        try:
            self.json = json.loads(data)
        except ValueError:
            self.json = None

    def __repr__(self):
        d = self.data if len(self.data) < 160 else self.data[:160] + "..."
        return f"SSEEvent(id={self.id!r}, event={self.event!r}, data={d!r})"


class SSEClient:
    """One GET /api/v1/events with Accept: text/event-stream, on a raw
    socket (HTTP/1.1; chunked, Content-Length or close-delimited bodies).

    The head is read in the constructor: .status, .headers (lower-case
    names). For a 200 text/event-stream answer a reader thread parses the
    stream into .events (every SSEEvent, in order) and .comments ((t, text)
    of ":" lines, e.g. heartbeats); otherwise .body / .json hold the
    answer and the connection is closed.

    Waiting (every wait is bounded by its timeout):
        mark() -> index; since(mark) -> events after it
        wait_for(pred, timeout, start=0, what=) -> the first event from index
            start with pred(ev) true; AssertionError on timeout
        next(timeout) -> the next event not yet returned by next(), or None
        collect(duration) -> every event that arrives within duration
        wait_closed(timeout) -> True once the server closed the stream
    Options: token (Bearer), cookies (dict), last_event_id (header),
    path (with a query, e.g. "?ticket=..."), headers (dict), rcvbuf
    (SO_RCVBUF before connect, for slow consumers), read=False (no reader
    thread until start_reading(): the socket is not read at all)."""

    def __init__(self, port, path="/api/v1/events", token=None, cookies=None,
                 last_event_id=None, headers=None, host="127.0.0.1", rcvbuf=None,
                 timeout=10, read=True, accept="text/event-stream"):
        self.port = port
        self.events = []
        self.comments = []
        self.body = b""
        self.json = None
        self.closed_at = None
        self.error = None
        self._cond = threading.Condition()
        self._next = 0
        self._stop = False
        self._thread = None
        self._raw = b""
        self._chunk_left = 0
        self._chunk_crlf = False
        self._length_left = None
        self._text = ""
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._cur = {"id": None, "event": None, "data": None}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "User-Agent: roost-tests-sse/1"]
        if accept is not None:
            lines.append(f"Accept: {accept}")
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        if last_event_id is not None:
            lines.append(f"Last-Event-ID: {last_event_id}")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._raw:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise AssertionError(f"SSE GET {path}: no response head within {timeout}s "
                                     f"(got {self._raw[:200]!r})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            if not chunk:
                self.close()
                raise AssertionError(f"SSE GET {path}: connection closed before a response head "
                                     f"(got {self._raw[:200]!r})")
            self._raw += chunk
        head, _, self._raw = self._raw.partition(b"\r\n\r\n")
        hl = head.decode("latin-1").split("\r\n")
        self.status = _parse_status(hl[0].encode("latin-1"))
        self.headers = {}
        for line in hl[1:]:
            k, sep, v = line.partition(":")
            if sep:
                k = k.strip().lower()
                self.headers[k] = f"{self.headers[k]}, {v.strip()}" if k in self.headers else v.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        if not self.chunked and "content-length" in self.headers:
            try:
                self._length_left = int(self.headers["content-length"])
            except ValueError:
                self._length_left = None
        self.is_stream = self.status == 200 and \
            self.headers.get("content-type", "").split(";")[0].strip() == "text/event-stream"
        if not self.is_stream:
            self._read_whole_body(deadline=time.monotonic() + timeout)
            return
        self.sock.settimeout(0.2)
        pending, self._raw = self._raw, b""
        if self._feed(pending):
            # the whole (length-delimited) body came with the head
            self._mark_closed()
            return
        if read:
            self.start_reading()

    # -- reading -----------------------------------------------------------

    def _read_whole_body(self, deadline):
        data = self._raw
        self._raw = b""
        while True:
            if self._length_left is not None and not self.chunked and len(data) >= self._length_left:
                break
            if self.chunked and data.endswith(b"0\r\n\r\n"):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        if self.chunked:
            out, rest = b"", data
            while rest:
                line, sep, rest = rest.partition(b"\r\n")
                try:
                    size = int(line.split(b";")[0], 16)
                except ValueError:
                    break
                if size == 0:
                    break
                out += rest[:size]
                rest = rest[size + 2:]
            data = out
        elif self._length_left is not None:
            data = data[:self._length_left]
        self.body = data
        try:
            self.json = json.loads(data) if data else None
        except ValueError:
            self.json = None
        self._mark_closed()
        self.close()

    def start_reading(self):
        """Start the reader thread (for a client made with read=False)."""
        if self._thread is None and self.is_stream:
            self._thread = threading.Thread(target=self._reader, daemon=True)
            self._thread.start()

    def _reader(self):
        while not self._stop:
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            except OSError as e:
                self.error = e
                break
            if not chunk:
                break
            if self._feed(chunk):
                break
        self._mark_closed()

    def _mark_closed(self):
        with self._cond:
            if self.closed_at is None:
                self.closed_at = time.monotonic()
            self._cond.notify_all()

    def _feed(self, data):
        """Body bytes in; returns True at the end of the body."""
        if not self.chunked:
            if self._length_left is not None:
                data = data[:self._length_left]
                self._length_left -= len(data)
                self._sse(data)
                return self._length_left <= 0
            self._sse(data)
            return False
        self._raw += data
        while True:
            if self._chunk_crlf:
                if len(self._raw) < 2:
                    return False
                self._raw = self._raw[2:]
                self._chunk_crlf = False
            if self._chunk_left:
                if not self._raw:
                    return False
                part = self._raw[:self._chunk_left]
                self._raw = self._raw[len(part):]
                self._chunk_left -= len(part)
                self._sse(part)
                if not self._chunk_left:
                    self._chunk_crlf = True
                continue
            line, sep, rest = self._raw.partition(b"\r\n")
            if not sep:
                return False
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.error = ValueError(f"bad chunk size line {line[:40]!r}")
                return True
            self._raw = rest
            if size == 0:
                return True
            self._chunk_left = size

    def _sse(self, data):
        self._text += self._dec.decode(data)
        while True:
            i = self._text.find("\n")
            if i < 0:
                return
            line, self._text = self._text[:i], self._text[i + 1:]
            if line.endswith("\r"):
                line = line[:-1]
            self._line(line)

    def _line(self, line):
        cur = self._cur
        if line == "":
            if cur["data"] is not None or cur["event"] is not None or cur["id"] is not None:
                ev = SSEEvent(cur["id"], cur["event"] or "message", cur["data"] or "", time.monotonic())
                with self._cond:
                    self.events.append(ev)
                    self._cond.notify_all()
            self._cur = {"id": None, "event": None, "data": None}
            return
        if line.startswith(":"):
            with self._cond:
                self.comments.append((time.monotonic(), line[1:].strip()))
                self._cond.notify_all()
            return
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            cur["data"] = value if cur["data"] is None else cur["data"] + "\n" + value
        elif field in ("id", "event"):
            cur[field] = value
        # retry and unknown fields are ignored, as browsers do

    # -- waiting -----------------------------------------------------------

    @property
    def closed(self):
        return self.closed_at is not None

    def mark(self):
        with self._cond:
            return len(self.events)

    def since(self, mark=0):
        with self._cond:
            return list(self.events[mark:])

    def durable(self, mark=0):
        """Events with an id (durable ones) after mark."""
        return [e for e in self.since(mark) if e.id is not None]

    @property
    def last_id(self):
        """The id of the last durable event received (the resume cursor)."""
        with self._cond:
            for e in reversed(self.events):
                if e.id is not None:
                    return e.id
        return None

    def wait_for(self, pred=None, timeout=5.0, start=0, what="an event"):
        """First event at index >= start with pred(ev); AssertionError with
        what arrived on timeout or when the stream closed."""
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self.events):
                    ev = self.events[i]
                    i += 1
                    if pred is None or pred(ev):
                        return ev
                if self.closed_at is not None:
                    raise AssertionError(f"stream closed ({self.error or 'EOF'}) before {what}; "
                                         f"got since {start}: {self.events[start:][-20:]}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; got since {start}: "
                                         f"{self.events[start:][-20:]}")
                self._cond.wait(remaining)

    def wait_count(self, n, pred=None, timeout=5.0, start=0, what=None):
        """Wait until n events at index >= start satisfy pred; returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [e for e in self.events[start:] if pred is None or pred(e)]
                if len(got) >= n:
                    return got
                if self.closed_at is not None or time.monotonic() >= deadline:
                    why = "stream closed" if self.closed_at is not None else f"{timeout}s passed"
                    raise AssertionError(f"{what or 'events'}: {len(got)} of {n} arrived ({why}); "
                                         f"last: {got[-5:]}")
                self._cond.wait(max(0.0, deadline - time.monotonic()))

    def next(self, timeout=5.0):
        """The next event not yet returned by next(); None on timeout/close."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._next >= len(self.events):
                remaining = deadline - time.monotonic()
                if self.closed_at is not None or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            ev = self.events[self._next]
            self._next += 1
            return ev

    def collect(self, duration, start=None):
        """Wait duration seconds (or until the stream closes); return the
        events that arrived in that time (or since index start)."""
        m = self.mark() if start is None else start
        deadline = time.monotonic() + duration
        with self._cond:
            while self.closed_at is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self.events[m:])

    def wait_closed(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.closed_at is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_comments(self, n, timeout=5.0):
        """Wait until n comment lines (heartbeats) arrived; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.comments) < n:
                remaining = deadline - time.monotonic()
                if self.closed_at is not None or remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self.comments)

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class LongPoll:
    """The answer of one long-poll: status, headers (lower-case dict),
    body (parsed JSON or None), raw (bytes), elapsed (seconds)."""

    def __init__(self, status, headers, body, raw, elapsed):
        self.status, self.headers, self.body, self.raw, self.elapsed = \
            status, headers, body, raw, elapsed

    @property
    def events(self):
        return (self.body or {}).get("events")

    @property
    def cursor(self):
        return (self.body or {}).get("last_event_id")

    def __repr__(self):
        return f"LongPoll({self.status}, {self.elapsed:.2f}s, {self.raw[:300]!r})"


def longpoll(port, token=None, last_event_id=None, timeout=None, cookies=None, params=None,
             headers=None, path="/api/v1/events", http_timeout=None):
    """GET /api/v1/events without Accept: text/event-stream (a long-poll)
    on a fresh connection. last_event_id and timeout go into the query as
    given (str(timeout): pass "abc" to test validation); params adds more.
    Waits at most http_timeout (default: timeout + 10 s)."""
    from urllib.parse import urlencode
    q = []
    if last_event_id is not None:
        q.append(("last_event_id", last_event_id))
    if timeout is not None:
        q.append(("timeout", str(timeout)))
    q += list((params or {}).items())
    url = path + ("?" + urlencode(q) if q else "")
    if http_timeout is None:
        try:
            http_timeout = float(timeout) + 10 if timeout is not None else 40
        except ValueError:
            http_timeout = 15
        http_timeout = min(max(http_timeout, 10), 90)
    hdrs = {"Connection": "close", "User-Agent": "roost-tests-lp/1"}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    if cookies:
        hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    hdrs.update(headers or {})
    import http.client
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=http_timeout)
    try:
        conn.request("GET", url, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        status = resp.status
        rh = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    elapsed = time.monotonic() - t0
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return LongPoll(status, rh, body, raw, elapsed)
