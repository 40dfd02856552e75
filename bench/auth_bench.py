#!/usr/bin/python3
"""Benchmark: password logins through one roost.fcgi worker.

Starts a private stack (PostgreSQL, Redis, lighttpd) with ONE FastCGI
worker and an admin made with roostctl, then:

1. memory: reads the worker's VmRSS and VmHWM (peak RSS) from /proc before
   its first password hash and after one login. The worker had served only
   requests that hash nothing, so the growth of the peak is what one
   argon2id hash (t=2, m=19 MiB, p=1) costs. A worker is one thread and
   hashes one password at a time, so the most memory hashing can take on a
   server is that figure times the number of workers.
2. speed: ~100 sequential successful logins (each one verifies an argon2id
   hash, ends the previous desktop session and starts a new one), then a
   few with a wrong password, and prints logins per second and latencies.

The login limit is raised to its maximum (1,000 per 15 minutes; the
contract's range ends there) and the counters reset first, so the limiter
is not what is measured.

Usage: bench/auth_bench.py [--logins N]"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tests/integration"))
import api  # noqa: E402
from harness import Stack  # noqa: E402


def proc_status(pid):
    """{'VmRSS': KiB, 'VmHWM': KiB} of a process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1])
    return out


def mib(kib):
    return f"{kib / 1024:6.1f} MiB"


def timed_login(stack, email, password):
    t0 = time.perf_counter()
    st, _, body = api.post(stack, "/auth/login", {"email": email, "password": password})
    return time.perf_counter() - t0, st, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logins", type=int, default=100)
    args = ap.parse_args()
    stack = Stack(workers=1, env={"ROOST_LOG_LEVEL": "warn"})
    try:
        email, password = api.make_admin(stack)  # roostctl hashes, not the worker
        pids = stack.fcgi_pids()
        assert len(pids) == 1, pids
        pid = pids[0]
        # warm up the worker without hashing: database, Redis, routing, JSON
        for _ in range(200):
            api.get(stack, "/health")
            api.get(stack, "/users")          # 401: no credential, no hash
        before = proc_status(pid)

        dt, st, body = timed_login(stack, email, password)
        assert st == 200, (st, body)
        after_one = proc_status(pid)
        token = body["token"]

        # limits out of the way (the worker has hashed now; that is fine)
        stack.redis_cli("FLUSHALL")
        api.set_settings(stack, token, login_attempts_per_15min=1000, requests_per_minute=100000)
        stack.redis_cli("FLUSHALL")

        times = []
        t_all = time.perf_counter()
        for i in range(args.logins):
            dt, st, body = timed_login(stack, email, password)
            if st != 200:
                raise SystemExit(f"login {i + 1} answered {st}: {json.dumps(body)}")
            times.append(dt)
        total = time.perf_counter() - t_all
        wrong = []
        for _ in range(20):
            dt, st, _ = timed_login(stack, email, "not the password at all")
            assert st == 401, st
            wrong.append(dt)
        after_all = proc_status(pid)
        assert stack.fcgi_pids() == [pid], "the worker was replaced during the run"

        hash_kib = after_one["VmHWM"] - before["VmHWM"]
        times.sort()
        print("Roost login benchmark: one roost.fcgi worker, argon2id t=2 m=19 MiB p=1")
        print()
        print("Memory of the worker (/proc/PID/status)")
        print(f"  before any hash       VmRSS {mib(before['VmRSS'])}   VmHWM (peak) {mib(before['VmHWM'])}")
        print(f"  after the first login VmRSS {mib(after_one['VmRSS'])}   VmHWM (peak) {mib(after_one['VmHWM'])}")
        print(f"  after {args.logins + 21} logins     VmRSS {mib(after_all['VmRSS'])}   "
              f"VmHWM (peak) {mib(after_all['VmHWM'])}")
        print(f"  one hash in flight costs {mib(hash_kib).strip()} of peak memory "
              f"(the 19 MiB argon2id block, plus the first login's other allocations);")
        grown = after_all["VmHWM"] - after_one["VmHWM"]
        print(f"  the block is freed after each hash (VmRSS falls back to {mib(after_one['VmRSS']).strip()}),"
              f" and {args.logins + 20} more logins raised the peak")
        print(f"  by only {mib(grown).strip()}, "
              + ("far less than a second hash: a worker hashes one password at a time."
                 if grown < hash_kib / 2 else "AS MUCH AS ANOTHER HASH: check for concurrent hashing!"))
        print(f"  => peak memory for hashing = workers x {mib(hash_kib).strip()}"
              f" (4 workers: {mib(4 * hash_kib).strip()}, 16: {mib(16 * hash_kib).strip()}).")
        print()
        print(f"Speed ({args.logins} sequential successful logins over HTTP)")
        print(f"  {args.logins / total:6.1f} logins per second per worker")
        print(f"  latency: median {statistics.median(times) * 1000:6.1f} ms, "
              f"p95 {times[int(len(times) * 0.95) - 1] * 1000:6.1f} ms, "
              f"max {times[-1] * 1000:6.1f} ms")
        print(f"  wrong password (20 tries): median {statistics.median(wrong) * 1000:6.1f} ms "
              "(the same hash work: no shortcut for failures)")
        print(f"  => a server with W workers verifies at most about W x {args.logins / total:.0f} "
              "passwords per second; the rate limits run before any hash.")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
