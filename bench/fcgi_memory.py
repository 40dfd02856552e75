#!/usr/bin/python3
"""Benchmark: one roost.fcgi worker over 10,000 sequential requests.

Starts a private stack (PostgreSQL, Redis, lighttpd) with ONE FastCGI
worker, warms it up, reads the worker's RSS, sends 10,000 sequential
requests over a keep-alive connection, reads the RSS again, and prints
both with the growth (target: under 1 MiB). Then measures requests per
second through lighttpd with wrk (concurrency 8, 10 s), if wrk is
installed (apt-get install wrk), else with the sequential figure only.

The request mix touches every layer a real request does: health (a
PostgreSQL round-trip and a Redis PING), a 404, a 405, a 400, and signed-in
requests: the room list, sending a message (with its outbox event), and a
page of messages.

Usage: bench/fcgi_memory.py [--requests N]"""
import argparse
import http.client
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tests/integration"))
from harness import Stack  # noqa: E402

import json  # noqa: E402

PATHS = [("GET", "/api/v1/health"), ("GET", "/api/v1/nope"),
         ("DELETE", "/api/v1/health"), ("GET", "/api/v1/%2e%2e/x"),
         ("GET", "/api/v1/rooms"), ("POST", "/api/v1/rooms/{room}/messages"),
         ("GET", "/api/v1/rooms/{room}/messages?limit=20")]
TOKEN = ""
ROOM = 0
SENT = [0]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def call(conn, method, path, body=None, token=""):
    headers = {"Authorization": "Bearer " + token} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


def setup(stack, conn):
    global TOKEN, ROOM
    env = stack.env()
    env["ROOST_ADMIN_PASSWORD"] = "bench admin password"
    build = os.environ.get("ROOST_BUILD_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../build"))
    subprocess.run([os.path.join(build, "roostctl"), "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([os.path.join(build, "roostctl"), "create-admin", "bench@example.com"], env=env,
                   check=True, capture_output=True)
    st, body = call(conn, "POST", "/api/v1/auth/login",
                    {"email": "bench@example.com", "password": "bench admin password"})
    assert st == 200, body
    TOKEN = json.loads(body)["token"]
    st, body = call(conn, "PATCH", "/api/v1/admin/settings",
                    {"messages_per_10s": 1000, "requests_per_minute": 100000}, TOKEN)
    assert st == 200, body
    st, body = call(conn, "POST", "/api/v1/rooms", {"name": "bench", "kind": "public"}, TOKEN)
    assert st == 201, body
    ROOM = json.loads(body)["id"]


def run(conn, n):
    for i in range(n):
        method, path = PATHS[i % len(PATHS)]
        path = path.replace("{room}", str(ROOM))
        body = None
        if method == "POST":
            SENT[0] += 1
            body = {"type": "text", "content": f"bench message {SENT[0]}", "client_msg_id": f"b{SENT[0]}"}
        st, resp = call(conn, method, path, body, TOKEN if "rooms" in path else "")
        if st >= 500 or st == 429:
            raise RuntimeError(f"{method} {path} -> {st} {resp[:200]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10000)
    args = ap.parse_args()
    stack = Stack(workers=1, env={"ROOST_LOG_LEVEL": "warn"})
    try:
        port = int(stack.env_vars["ROOST_PORT"])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        setup(stack, conn)
        run(conn, 500)  # warm-up: connections, caches, arena blocks
        pids = stack.fcgi_pids()
        assert len(pids) == 1, pids
        pid = pids[0]
        before = rss_kib(pid)
        t0 = time.perf_counter()
        run(conn, args.requests)
        elapsed = time.perf_counter() - t0
        after = rss_kib(pid)
        assert stack.fcgi_pids() == [pid], "the worker was replaced during the run"
        growth = after - before
        print(f"requests: {args.requests} sequential, one worker (pid {pid})")
        print(f"rss before: {before} KiB")
        print(f"rss after:  {after} KiB")
        print(f"rss growth: {growth} KiB ({'OK' if growth < 1024 else 'OVER'} target < 1024 KiB)")
        print(f"sequential: {args.requests / elapsed:.0f} req/s (one client, keep-alive, Python)")
        wrk = shutil.which("wrk")
        if wrk:
            out = subprocess.run([wrk, "-t2", "-c8", "-d10s", f"http://127.0.0.1:{port}/api/v1/health"],
                                 capture_output=True, text=True, timeout=60).stdout
            rps = [l for l in out.splitlines() if l.startswith("Requests/sec")]
            print(f"wrk health, 8 connections, 1 worker: {rps[0].split()[-1] if rps else '?'} req/s")
            after_wrk = rss_kib(pid)
            print(f"rss after wrk: {after_wrk} KiB")
        else:
            print("wrk not installed: apt-get install wrk for the concurrent figure")
        return 0 if growth < 1024 else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
