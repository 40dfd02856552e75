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
    With stacks given, a last test checks that no worker wrote an
    AddressSanitizer / UBSan / LeakSanitizer report to the error log.

raw_request(port, data, timeout=5) -> (status | None, headers, body)
    Sends bytes as they are (malformed HTTP welcome) to 127.0.0.1:port and
    reads one response: status int (None when the server closed or timed
    out without a status line), headers as a dict with lower-case names
    (repeated headers joined with ", "), body bytes (de-chunked).
"""
import atexit
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

__all__ = ["Stack", "StackError", "Skip", "test", "run_tests", "raw_request",
           "free_port", "wait_until", "REPO", "BUILD_DIR"]


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

    def __init__(self, workers=None, port=None, env=None, start=True):
        if workers is None:
            workers = int(os.environ.get("ROOST_WORKERS") or 2)
        self.workers = int(workers)
        self.extra_env = dict(env or {})
        self.port = port
        self.env_vars = {}
        self._stopped = False
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
        for name in ("pg/log/postgres.log", "redis/redis.log", "log/error.log"):
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
        return self.env_vars

    def stop(self):
        """Stop everything and remove the folder (unless ROOST_KEEP_TMP=1)."""
        if self._stopped:
            return
        self._stopped = True
        try:
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
        """{"postgres": bool, "redis": bool, "lighttpd": bool}"""
        _, out = self._run_stack("status", self.dir, check=False)
        res = {}
        for line in out.splitlines():
            name, _, rest = line.partition(":")
            if name in ("postgres", "redis", "lighttpd"):
                res[name] = rest.strip().startswith("running")
        return res

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
        return url[len("unix://"):] if url.startswith("unix://") else url

    def psql(self, sql, user_db=None):
        """Run SQL as the roost user; return stdout (unaligned, tuples only)."""
        p = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                            "-d", user_db or self.env_vars["ROOST_DATABASE_URL"], "-c", sql],
                           env=self.env(), capture_output=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"psql failed: {p.stderr.decode(errors='replace')}")
        return p.stdout.decode().strip()

    def redis_cli(self, *args):
        p = subprocess.run(["redis-cli", "-s", self.redis_socket, *args],
                           capture_output=True, timeout=30)
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
        }[name]

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
            marks = [(s, _log_size(s.log_path())) for s in stacks]
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
                for s, size in marks:
                    lines = _new_log_lines(s.log_path(), size)
                    if lines:
                        _comment(f"--- new lines in {s.log_path()}:")
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
                for log in (s.log_path("worker"), s.log_path("error")):
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
