#!/usr/bin/python3
"""Integration: workers survive PostgreSQL and Redis restarts.

PostgreSQL, on two stacks of three workers: one with prepared statements
(ROOST_PG_PREPARED=1, as ./roost up and CI's sanitizer pass run), one
without. Every worker first holds a live connection; then PostgreSQL
restarts (pg_ctl stop and start, and kill -9 of the postmaster followed
by the documented restart, `scripts/stack pg-start DIR`). While it is down
a request gets 503 with Retry-After; once it is back, the first request
each worker serves succeeds: a kept connection still reads as good until
its first statement returns the server's parting FATAL, and the
transaction start reconnects and retries once. Requests are sent to every
worker at once (long-polls hold a worker each) and the worker log is read
to check that each pid served one.

Redis: health says 200 "degraded" while it is down (sends still work) and
ok from the next request after it is back; 503 only without PostgreSQL."""
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request

import api
from harness import Stack, longpoll, run_tests, test, wait_until

WORKERS = 3
stack = Stack(workers=WORKERS, env={"ROOST_PG_PREPARED": "0"})
stack_prep = Stack(workers=WORKERS, env={"ROOST_PG_PREPARED": "1"})
STACKS = {"unprepared": stack, "prepared": stack_prep}
USERS = {}

LOG_LINE = re.compile(r"roost\.fcgi\[(\d+)\] \w+ req=\S+ ([A-Z]+) (\S+) (\d{3}) ")


def health(s=stack):
    try:
        with urllib.request.urlopen(s.url("/api/v1/health"), timeout=15) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def wait_healthy(s=stack, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        status, doc, _ = health(s)
        if status == 200 and doc["status"] == "ok":
            return doc
        time.sleep(0.2)
    raise AssertionError(f"not healthy after {seconds}s: {doc}")


def token(s):
    if s.dir not in USERS:
        email, password = api.make_admin(s)
        USERS[s.dir] = api.login(s, email, password)["token"]
    return USERS[s.dir]


def log_size(s):
    try:
        return os.path.getsize(s.log_path("worker"))
    except OSError:
        return 0


def served_since(s, mark):
    """[(pid, method, path, status)] of the worker log after mark."""
    with open(s.log_path("worker"), "rb") as f:
        f.seek(mark)
        text = f.read().decode("utf-8", "replace")
    return [(int(m[1]), m[2], m[3], int(m[4])) for m in LOG_LINE.finditer(text)]


def every_worker(s, what):
    """Requests until every worker of s has served one: each round, one
    long-poll per worker (held for a second, so lighttpd gives each to a
    different worker) and as many GET /me, all at once. Asserts that every
    answer is a success, and returns each worker's first logged line."""
    tok = token(s)
    pids = s.fcgi_pids()
    assert len(pids) == WORKERS, pids
    mark = log_size(s)
    answers = []

    def lp():
        r = longpoll(s.port, token=tok, timeout=1)
        answers.append(("GET /events", r.status, str(r.body)[:200]))

    def me():
        st, _, doc = api.get(s, "/me", token=tok)
        answers.append(("GET /me", st, doc))

    sent = 0
    for _ in range(5):
        sent += 2 * WORKERS
        threads = [threading.Thread(target=f) for f in [lp] * WORKERS + [me] * WORKERS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        first = {}
        for pid, method, path, status in served_since(s, mark):
            first.setdefault(pid, (method, path, status))
        if set(first) >= set(pids):
            break
    assert len(answers) == sent, f"{what}: {sent - len(answers)} requests got no answer"
    bad = [a for a in answers if a[1] != 200]
    assert not bad, f"{what}: failed answers {bad}"
    assert set(first) >= set(pids), f"{what}: workers {sorted(set(pids) - set(first))} served nothing"
    bad = {pid: line for pid, line in first.items() if line[2] >= 500}
    assert not bad, f"{what}: a worker's first request failed: {bad}"
    return first


def postmaster_pid(s):
    with open(os.path.join(s.dir, "pg", "data", "postmaster.pid")) as f:
        return int(f.readline())


def down_answers(s, what):
    """With PostgreSQL down: a request and health are 503, Retry-After."""
    st, h, doc = api.get(s, "/me", token=token(s))
    assert st == 503 and api.err(doc) == "SERVICE_UNAVAILABLE", (what, st, doc)
    assert h.get("Retry-After") == "1", (what, "Retry-After", h.get("Retry-After"))
    status, doc, h = health(s)
    assert status == 503 and doc["status"] == "unavailable", (what, status, doc)
    assert doc["db"] == "down" and doc["redis"] == "ok", doc
    assert doc["error"]["code"] == "SERVICE_UNAVAILABLE", doc
    assert h.get("Retry-After") == "1", (what, "health Retry-After", h.get("Retry-After"))


@test
def healthy_at_start():
    for s in STACKS.values():
        status, doc, _ = health(s)
        assert status == 200 and doc == {"status": "ok", "db": "ok", "redis": "ok",
                                         "version": doc["version"]}, doc


@test
def postgres_restart_first_request_on_every_worker():
    for name, s in STACKS.items():
        every_worker(s, f"{name}: before the restart")
        pids = s.fcgi_pids()
        s.pg_stop()
        try:
            down_answers(s, name)
        finally:
            s.pg_start()
        # No pause: the very next requests, on every worker.
        every_worker(s, f"{name}: right after PostgreSQL restarted")
        assert s.fcgi_pids() == pids, f"{name}: a worker was restarted"


@test
def postgres_kill_9_then_pg_start():
    """kill -9 of the postmaster, then the documented restart
    (`scripts/stack pg-start DIR`, what the harness's pg_start runs) at
    once, while the killed postmaster may still be a zombie: health is
    back within 30 s, and no worker's next request fails."""
    for name, s in STACKS.items():
        every_worker(s, f"{name}: before the kill")
        pids = s.fcgi_pids()
        # ROOST_PG_FAST turns synchronous_commit off: let the WAL writer
        # write the session above before the crash.
        time.sleep(0.5)
        pm = postmaster_pid(s)
        t0 = time.monotonic()
        os.kill(pm, signal.SIGKILL)
        s.pg_start()
        took = time.monotonic() - t0
        assert s.status()["postgres"], f"{name}: status after pg-start"
        wait_until(lambda: health(s)[0] == 200, timeout=max(1.0, 30 - took),
                   what=f"{name}: health 200 within 30 s of kill -9")
        took = time.monotonic() - t0
        assert took < 30, f"{name}: health came back after {took:.1f} s"
        assert postmaster_pid(s) != pm, f"{name}: the same postmaster?"
        every_worker(s, f"{name}: after kill -9 and pg-start")
        assert s.fcgi_pids() == pids, f"{name}: a worker was restarted"


@test
def redis_down_health_is_degraded_and_sends_work():
    tok = token(stack)
    room = api.create_room(stack, tok)
    pids = stack.fcgi_pids()
    stack.redis_stop()
    try:
        status, doc, h = health()
        assert status == 200, (status, doc)
        assert doc["status"] == "degraded" and doc["redis"] == "down" and doc["db"] == "ok", doc
        assert "error" not in doc and h.get("Retry-After") is None, (doc, h.get("Retry-After"))
        st, _, doc = api.send_resp(stack, tok, room["id"], "sent while Redis is down")
        assert st == 201, f"a send while Redis is down: {st} {doc}"
    finally:
        stack.redis_start()
    for _ in range(10):
        status, doc, _ = health()
        assert status == 200 and doc["status"] == "ok" and doc["redis"] == "ok", \
            ("every request after the restart", status, doc)
    assert stack.fcgi_pids() == pids, "a worker was restarted"


@test
def first_requests_after_a_redis_restart_succeed():
    """Workers hold their Redis connection across requests; after a restart
    that connection is dead. The next command retries once on a fresh
    connection, so no request fails for it: a login (whose rate limit
    fails closed without Redis) on every worker right after the restart."""
    email, password = api.make_admin(stack)
    n = 2 * len(stack.fcgi_pids())
    for _ in range(n):  # every worker has a live Redis connection
        api.login(stack, email, password, device="mobile")
    stack.redis_stop()
    stack.redis_start()
    for i in range(n):
        st, _, doc = api.post(stack, "/auth/login",
                              {"email": email, "password": password, "device": "mobile"})
        assert st == 200, f"login {i + 1} after the Redis restart: {st} {doc}"


@test
def both_down_then_up():
    stack.pg_stop()
    stack.redis_stop()
    try:
        status, doc, h = health()
        assert status == 503 and doc["status"] == "unavailable", doc
        assert doc["db"] == "down" and doc["redis"] == "down", doc
        assert h.get("Retry-After") == "1", h.get("Retry-After")
    finally:
        stack.pg_start()
        stack.redis_start()
    wait_healthy()


if __name__ == "__main__":
    run_tests(stack, stack_prep)
