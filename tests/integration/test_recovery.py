#!/usr/bin/python3
"""Integration: workers survive PostgreSQL and Redis restarts.

Stopping either makes health answer 503 naming it within one request;
starting it again makes the same worker processes answer 200 from the very
next request on, with no restart of the workers. Two workers, so one of
them meets the restart with a connection that died while it was idle."""
import json
import time
import urllib.error
import urllib.request

import api
from harness import Stack, run_tests, test

stack = Stack(workers=2)


def health():
    try:
        with urllib.request.urlopen(stack.url("/api/v1/health"), timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_healthy(seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        status, doc = health()
        if status == 200:
            return doc
        time.sleep(0.2)
    raise AssertionError(f"not healthy after {seconds}s: {doc}")


@test
def healthy_at_start():
    status, doc = health()
    assert status == 200 and doc["db"] == "ok" and doc["redis"] == "ok", doc


@test
def postgres_restart():
    pids = stack.fcgi_pids()
    assert len(pids) == 2, pids
    stack.pg_stop()
    try:
        status, doc = health()
        assert status == 503, (status, doc)
        assert doc["db"] == "down" and doc["redis"] == "ok", doc
        assert doc["error"]["code"] == "SERVICE_UNAVAILABLE", doc
        status, doc = health()
        assert status == 503 and doc["db"] == "down", "still down while stopped"
    finally:
        stack.pg_start()
    for _ in range(10):
        status, doc = health()
        assert status == 200 and doc["db"] == "ok", ("every request after the restart", status, doc)
    assert stack.fcgi_pids() == pids, "a worker was restarted"


@test
def redis_restart():
    pids = stack.fcgi_pids()
    stack.redis_stop()
    try:
        status, doc = health()
        assert status == 503, (status, doc)
        assert doc["redis"] == "down" and doc["db"] == "ok", doc
    finally:
        stack.redis_start()
    for _ in range(10):
        status, doc = health()
        assert status == 200 and doc["redis"] == "ok", ("every request after the restart", status, doc)
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
        status, doc = health()
        assert status == 503 and doc["db"] == "down" and doc["redis"] == "down", doc
    finally:
        stack.pg_start()
        stack.redis_start()
    wait_healthy()


if __name__ == "__main__":
    run_tests(stack)
