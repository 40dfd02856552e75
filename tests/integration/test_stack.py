#!/usr/bin/python3
"""Integration: the development stack itself (scripts/stack).

PostgreSQL answers on its unix socket with the env's conninfo, Redis answers
PING to its ACL users only (none without a password; Roost's user only on
Roost's keys), lighttpd serves web/index.html and answers its own errors with JSON,
single services stop and start, Redis keeps its data across a restart
(append-only file), pg-start brings PostgreSQL back at once
after kill -9 of the postmaster (whose zombie pg_ctl takes for a running
server), a second `start` reuses everything, a folder from before Redis had
passwords gets them on `start`, and `stop` leaves nothing running. Needs no Roost binary, except the last check
that lighttpd runs the configured number of workers."""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from harness import BUILD_DIR, REPO, Skip, Stack, raw_request, run_tests, test, wait_until

STACK_SCRIPT = os.path.join(REPO, "scripts", "stack")

WORKERS = 2
stack = Stack(workers=WORKERS)
PORT = stack.port

REQUIRED_KEYS = ["ROOST_DATABASE_URL", "ROOST_REDIS_URL", "ROOST_SCHEMA", "ROOST_SQL_DIR",
                 "ROOST_JWT_SECRET", "ROOST_URL", "ROOST_PORT", "ROOST_STATE_DIR",
                 "ROOST_FCGI_SOCKET"]


def psql(sql):
    return subprocess.run(["psql", "-X", "-A", "-t", "-d", stack.env_vars["ROOST_DATABASE_URL"],
                           "-c", sql], env=stack.env(), capture_output=True, timeout=30)


def redis_ping():
    p = subprocess.run(["redis-cli", "-s", stack.redis_socket, "--user", "admin", "ping"],
                       env=stack.redis_admin_env(), capture_output=True, timeout=10)
    return p.stdout.decode().strip()


def get(path):
    try:
        with urllib.request.urlopen(stack.url(path), timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def port_open():
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
        return True
    except OSError:
        return False


@test
def env_file_has_every_key():
    for key in REQUIRED_KEYS:
        assert stack.env_vars.get(key), f"{key} missing from {stack.dir}/env"
    assert re.fullmatch(r"[0-9a-f]{64}", stack.env_vars["ROOST_JWT_SECRET"])
    assert stack.env_vars["ROOST_URL"] == f"http://127.0.0.1:{PORT}"
    assert stack.env_vars["ROOST_STATE_DIR"] == stack.dir
    assert stack.env_vars["ROOST_SCHEMA"] == "roost"
    assert stack.env_vars["ROOST_REDIS_URL"].startswith("unix:///")
    mode = os.stat(os.path.join(stack.dir, "env")).st_mode & 0o777
    assert mode == 0o600, oct(mode)


@test
def env_file_is_shell_sourceable():
    p = subprocess.run(["bash", "-c", 'set -a; . "$1/env"; printf %s "$ROOST_DATABASE_URL"',
                        "_", stack.dir], capture_output=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == stack.env_vars["ROOST_DATABASE_URL"]


@test
def postgres_reachable_as_roost():
    p = psql("SELECT current_user || ' ' || current_database() || ' ' || "
             "current_setting('server_version_num')")
    assert p.returncode == 0, p.stderr
    user, db, version = p.stdout.decode().split()
    assert (user, db) == ("roost", "roost"), p.stdout
    assert int(version) >= 150000, version
    # the roost role owns its database: it may create tenant schemas
    p = psql("CREATE SCHEMA stack_probe; DROP SCHEMA stack_probe;")
    assert p.returncode == 0, p.stderr


@test
def postgres_has_no_tcp_listener():
    p = psql("SHOW listen_addresses")
    assert p.returncode == 0 and p.stdout.decode().strip() == "", p.stdout


@test
def redis_answers_ping():
    assert redis_ping() == "PONG"
    assert stack.redis_cli("CONFIG", "GET", "port").splitlines()[-1] == "0"


def redis_as(user=None, *args, password=None):
    """redis-cli on the stack's socket: as nobody-in-particular (no
    credentials) when user is None, else as that ACL user. Returns
    (stdout, stderr) stripped."""
    cmd = ["redis-cli", "-s", stack.redis_socket]
    env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
    if user is not None:
        cmd += ["--user", user]
        env["REDISCLI_AUTH"] = password
    p = subprocess.run(cmd + list(args), env=env, capture_output=True, timeout=10)
    return p.stdout.decode().strip(), p.stderr.decode().strip()


def roost_password():
    url = stack.env_vars["ROOST_REDIS_URL"]
    m = re.fullmatch(r"unix://(/[^?]+)\?user=roost&password=([0-9a-f]{64})", url)
    assert m, f"ROOST_REDIS_URL has no roost user and password: {url}"
    return m[2]


def health_redis():
    if not os.access(os.path.join(BUILD_DIR, "roost.fcgi"), os.X_OK):
        return None
    status, _, body = get("/api/v1/health")
    return json.loads(body).get("redis")


@test
def redis_refuses_clients_without_a_password():
    """Issue 13: any local account read the event stream and forged
    stream tickets. No client gets in without a password now; Roost's
    own user reaches only Roost's keys; the passwords stay private."""
    for args in (["PING"], ["XRANGE", "roost:{roost}:events", "-", "+"],
                 ["SET", "roost:{roost}:ticket:forged", "1:1:1"], ["KEYS", "*"]):
        out, _ = redis_as(None, *args)
        assert out.startswith("NOAUTH"), f"{args} without a password: {out!r}"
    out, err = redis_as("default", "PING", password="")
    assert "WRONGPASS" in err + out, (out, err)
    for name in ("roost", "admin"):
        f = os.path.join(stack.dir, "redis", f"{name}.password")
        assert os.stat(f).st_mode & 0o777 == 0o600, oct(os.stat(f).st_mode)
        assert re.fullmatch(r"[0-9a-f]{64}", open(f).read().strip())
    with open(os.path.join(stack.dir, "redis", "redis.conf")) as f:
        conf = f.read()
    assert "user default off" in conf and open(os.path.join(stack.dir, "redis", "admin.password")) \
        .read().strip() not in conf, "redis.conf must hold hashes, not passwords"
    pw = roost_password()
    assert pw == open(os.path.join(stack.dir, "redis", "roost.password")).read().strip()
    assert redis_as("roost", "PING", password=pw)[0] == "PONG"
    assert redis_as("roost", "XLEN", "roost:{roost}:events", password=pw)[0].isdigit()
    for args in (["GET", "other:key"], ["FLUSHALL"], ["CONFIG", "SET", "dir", "/tmp"],
                 ["PUBLISH", "other", "x"]):
        out, _ = redis_as("roost", *args, password=pw)
        assert out.startswith("NOPERM"), f"the roost user ran {args}: {out!r}"
    assert health_redis() in (None, "ok"), "the workers do not get into Redis"


@test
def lighttpd_serves_the_web_root():
    status, headers, body = get("/")
    assert status == 200, status
    assert headers["Content-Type"].startswith("text/html"), headers["Content-Type"]
    # the web client's page: its module entry point, and the strict CSP
    assert b"<title>Roost</title>" in body and b'src="js/main.js"' in body, body[:300]
    csp = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "script-src 'self'" in csp, csp


@test
def lighttpd_errors_are_json():
    cases = [
        (b"GARBAGE\r\n\r\n", 400, "BAD_REQUEST"),
        (b"POST /api/v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n"
         b"Connection: close\r\n\r\n", 413, "PAYLOAD_TOO_LARGE"),
        (b"GET /api/v1/x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 20000 +
         b"\r\nConnection: close\r\n\r\n", 431, "HEADERS_TOO_LARGE"),
        (b"GET /no-such-file HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 404, "NOT_FOUND"),
        (b"GET /.hidden HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 403, "FORBIDDEN"),
    ]
    for raw, want_status, want_code in cases:
        status, headers, body = raw_request(PORT, raw)
        assert status == want_status, (raw[:30], status, body[:200])
        assert headers.get("content-type") == "application/json", (raw[:30], headers)
        doc = json.loads(body)
        assert doc["error"]["code"] == want_code, doc
        assert doc["error"]["message"], doc


@test
def status_reports_all_running():
    assert stack.status() == {"postgres": True, "redis": True, "lighttpd": True}


@test
def postgres_stop_and_start():
    stack.pg_stop()
    try:
        assert psql("SELECT 1").returncode != 0, "psql still works with PostgreSQL stopped"
        assert stack.status()["postgres"] is False
    finally:
        stack.pg_start()
    p = psql("SELECT 1")
    assert p.returncode == 0 and p.stdout.decode().strip() == "1", p.stderr


def postmaster_pid():
    with open(os.path.join(stack.dir, "pg", "data", "postmaster.pid")) as f:
        return int(f.readline())


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@test
def postgres_start_right_after_kill_9():
    """After kill -9 the postmaster is a zombie until it is reaped (about
    2 s here), and `pg_ctl status` counts a zombie as a running server:
    pg-start must see through it and start a new server at once."""
    old = postmaster_pid()
    os.kill(old, signal.SIGKILL)
    t0 = time.monotonic()
    stack.pg_start()
    took = time.monotonic() - t0
    assert took < 15, f"pg-start took {took:.1f} s after kill -9"
    p = psql("SELECT 1")
    assert p.returncode == 0 and p.stdout.decode().strip() == "1", p.stderr
    assert postmaster_pid() != old
    assert stack.status()["postgres"] is True


@test
def postgres_lock_file_naming_a_zombie():
    """Where PID 1 reaps nothing, a killed postmaster stays a zombie for
    good, and PostgreSQL refuses a lock file whose pid kill(pid, 0)
    finds. status says stopped, and pg-start moves the stale lock file
    aside and starts (a zombie child of this test stands in for it)."""
    stack.pg_stop()
    data = os.path.join(stack.dir, "pg", "data")
    owner = os.stat(data).st_uid  # the postgres user when we are root
    zombie = os.fork()
    if zombie == 0:
        # A zombie keeps its owner: PostgreSQL, running as that owner,
        # must be allowed to signal it, as it would be its own postmaster.
        os.setuid(owner)
        os._exit(0)
    try:
        wait_until(lambda: proc_state(zombie) == "Z", timeout=5, what="a zombie")
        with open(os.path.join(data, "postmaster.pid"), "w") as f:
            f.write(f"{zombie}\n{data}\n")
        assert stack.status()["postgres"] is False, "a zombie postmaster counted as running"
        t0 = time.monotonic()
        stack.pg_start()
        took = time.monotonic() - t0
        assert took < 15, f"pg-start took {took:.1f} s"
        assert proc_state(zombie) == "Z", "precondition: still a zombie"
        p = psql("SELECT 1")
        assert p.returncode == 0 and p.stdout.decode().strip() == "1", p.stderr
        assert postmaster_pid() != zombie
        assert os.path.exists(os.path.join(data, "postmaster.pid.stale"))
    finally:
        os.waitpid(zombie, 0)


@test
def redis_stop_and_start():
    stack.redis_stop()
    try:
        assert redis_ping() != "PONG"
        assert stack.status()["redis"] is False
    finally:
        stack.redis_start()
    assert redis_ping() == "PONG"


def redis_cli(*args):
    p = subprocess.run(["redis-cli", "-s", stack.redis_socket, "--user", "admin", *args],
                       env=stack.redis_admin_env(), capture_output=True, timeout=10)
    return p.stdout.decode().strip()


@test
def redis_keeps_its_data_across_a_restart():
    """Redis runs with an append-only file synced every second, and
    redis-stop shuts it down (SIGTERM: SHUTDOWN, which syncs the file):
    what was written before is there after redis-start (the event stream
    and its epoch, so clients go on without a resync)."""
    assert redis_cli("CONFIG", "GET", "appendonly").split() == ["appendonly", "yes"]
    assert redis_cli("CONFIG", "GET", "appendfsync").split() == ["appendfsync", "everysec"]
    redis_cli("SET", "roost-test:kept", "before the restart")
    redis_cli("XADD", "roost-test:stream", "*", "n", "1")
    stack.redis_stop()
    with open(stack.log_path("redis"), errors="replace") as f:
        log = f.read()
    assert "ready to exit" in log, "Redis did not shut down cleanly"
    stack.redis_start()
    assert redis_cli("GET", "roost-test:kept") == "before the restart", "the data is gone"
    assert redis_cli("XLEN", "roost-test:stream") == "1"
    redis_cli("DEL", "roost-test:kept", "roost-test:stream")


@test
def a_scripts_writes_survive_a_redis_restart():
    """Roost writes through scripts (EVAL), which the append-only file
    keeps as MULTI/EXEC blocks; Redis 7.0 replays those with the default
    user's rights, so a default user with none (plain "user default
    off") dropped them all on restart: the event stream, its counter and
    its epoch."""
    pw = roost_password()
    script = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('INCR', KEYS[2]); return 1"
    keys = ["roost:{roost}:test:kept", "roost:{roost}:test:n"]
    out, err = redis_as("roost", "EVAL", script, "2", *keys, "by a script", password=pw)
    assert out == "1", (out, err)
    stack.redis_stop()
    stack.redis_start()
    with open(stack.log_path("redis"), errors="replace") as f:
        assert "NOPERM" not in f.read(), "Redis refused part of its append-only file"
    assert redis_as("roost", "GET", keys[0], password=pw)[0] == "by a script", "the script's writes are gone"
    assert redis_as("roost", "GET", keys[1], password=pw)[0] == "1"
    redis_as("roost", "DEL", *keys, password=pw)


@test
def web_stop_and_start():
    stack.web_stop()
    try:
        assert not port_open(), "port still open with lighttpd stopped"
    finally:
        stack.web_start()
    assert get("/")[0] == 200


@test
def second_start_reuses_everything():
    before = dict(stack.env_vars)
    pg_pid = open(os.path.join(stack.dir, "pg", "data", "postmaster.pid")).readline().strip()
    web_pid = stack.lighttpd_pid()
    stack.start()
    assert stack.env_vars == before, "env changed on a second start"
    assert open(os.path.join(stack.dir, "pg", "data", "postmaster.pid")).readline().strip() == pg_pid
    assert stack.lighttpd_pid() == web_pid, "lighttpd was restarted without a reason"
    assert psql("SELECT 1").returncode == 0 and redis_ping() == "PONG" and get("/")[0] == 200


@test
def an_old_state_folder_gets_a_password_on_start():
    """A folder from before Redis had users (its Redis running without
    one, ROOST_REDIS_URL without credentials): `start` rewrites
    redis.conf, restarts Redis (keeping its data) and the workers, and
    from then on Redis refuses clients without a password."""
    stack.redis_stop()
    conf = os.path.join(stack.dir, "redis", "redis.conf")
    with open(conf) as f:
        old = "".join(line for line in f if not line.startswith("user "))
    with open(conf, "w") as f:
        f.write(old)
    for name in ("roost", "admin"):
        os.unlink(os.path.join(stack.dir, "redis", f"{name}.password"))
    subprocess.run(["redis-server", conf], check=True, capture_output=True, timeout=10)
    wait_until(lambda: redis_as(None, "PING")[0] == "PONG", timeout=10)
    assert redis_as(None, "SET", "roost:{roost}:kept", "from before")[0] == "OK"
    env_file = os.path.join(stack.dir, "env")
    with open(env_file) as f:
        text = f.read()
    with open(env_file, "w") as f:
        f.write(re.sub(r"(?m)^ROOST_REDIS_URL=.*$",
                       f"ROOST_REDIS_URL='unix://{stack.redis_socket}'", text))
    stack.start()
    assert redis_as(None, "PING")[0].startswith("NOAUTH")
    pw = roost_password()
    assert redis_as("roost", "GET", "roost:{roost}:kept", password=pw)[0] == "from before"
    redis_as("roost", "DEL", "roost:{roost}:kept", password=pw)
    assert health_redis() in (None, "ok"), "the workers kept the old ROOST_REDIS_URL"


@test
def workers_are_running():
    if not os.access(os.path.join(BUILD_DIR, "roost.fcgi"), os.X_OK):
        raise Skip(f"{BUILD_DIR}/roost.fcgi is not built")
    pids = stack.fcgi_pids()
    assert len(pids) == WORKERS, pids


@test
def stop_leaves_nothing_running():
    pids = stack.fcgi_pids()
    web_pid = stack.lighttpd_pid()
    rc = subprocess.run([STACK_SCRIPT, "stop", stack.dir], capture_output=True, timeout=120)
    assert rc.returncode == 0, rc.stderr
    assert stack.status() == {"postgres": False, "redis": False, "lighttpd": False}
    assert not port_open()
    assert not os.path.exists(stack.redis_socket)
    assert not os.path.exists(os.path.join(stack.dir, "pg", "run", ".s.PGSQL.5432"))
    assert stack.lighttpd_pid() is None and web_pid is not None
    assert stack.fcgi_pids() == [], "workers survived the stop"
    for pid in pids:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        assert state == "Z", f"worker {pid} still alive"
    # stopping again is fine
    rc = subprocess.run([STACK_SCRIPT, "stop", stack.dir], capture_output=True, timeout=120)
    assert rc.returncode == 0, rc.stderr


if __name__ == "__main__":
    run_tests(stack)
