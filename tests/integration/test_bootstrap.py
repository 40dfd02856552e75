#!/usr/bin/python3
"""Integration: a worker's first start on an empty schema, and password
hashes upgraded at login.

- ROOST_MIGRATE_ON_START=1 migrates the tenant schema when a worker starts;
  ROOST_ADMIN_EMAIL + ROOST_ADMIN_PASSWORD create the first admin, once.
- A password hash made with weaker argon2id parameters (written here with
  libsodium through ctypes, not by Roost) still verifies, and the login
  replaces it with one using today's parameters."""
import ctypes
import ctypes.util
import json
import os
import subprocess
import time

from harness import Stack, run_tests, test

stack = Stack(workers=1)
BUILD = os.environ.get("ROOST_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
FCGI = os.path.join(BUILD, "roost.fcgi")
CTL = os.path.join(BUILD, "roostctl")


def fcgi_call(sock, env, method, uri, body=None):
    e = dict(env)
    e.update({"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "REQUEST_URI": uri,
              "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1"})
    if body is not None:
        e["CONTENT_TYPE"] = "application/json"
        e["CONTENT_LENGTH"] = str(len(body))
    p = subprocess.run(["cgi-fcgi", "-bind", "-connect", sock], env=e, input=body or b"",
                       capture_output=True, timeout=30)
    head, _, payload = p.stdout.partition(b"\r\n\r\n")
    status = int(head.split(b"\r\n")[0].split()[1])
    return status, json.loads(payload) if payload else None


def start_worker(env, name):
    sock = os.path.join(stack.dir, "run", name + ".sock")
    proc = subprocess.Popen([FCGI, "-s", sock], env=env, stderr=subprocess.PIPE)
    for _ in range(100):
        if os.path.exists(sock):
            return proc, sock
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(proc.stderr.read())


@test
def first_start_migrates_and_creates_the_admin():
    env = stack.env()
    env.update({"ROOST_SCHEMA": "tenant_fresh", "ROOST_MIGRATE_ON_START": "1",
                "ROOST_ADMIN_EMAIL": "First@Example.com", "ROOST_ADMIN_PASSWORD": "first admin password"})
    proc, sock = start_worker(env, "fresh")
    try:
        # The socket exists before the worker has initialised; a request
        # waits in the backlog until it is ready, migrations done.
        status, _ = fcgi_call(sock, env, "GET", "/api/v1/health")
        assert status == 200, status
        total = len([f for f in os.listdir(env["ROOST_SQL_DIR"]) if f.endswith(".sql")])
        assert stack.psql("SELECT count(*) FROM tenant_fresh.schema_migrations") == str(total)
        assert stack.psql("SELECT email || ' ' || role FROM tenant_fresh.users") == "first@example.com admin"
        status, doc = fcgi_call(sock, env, "POST", "/api/v1/auth/login",
                                json.dumps({"email": "first@example.com",
                                            "password": "first admin password"}).encode())
        assert status == 200 and doc["user"]["role"] == "admin", (status, doc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # a second start with other variables creates no second admin
    env["ROOST_ADMIN_EMAIL"] = "second@example.com"
    proc, sock = start_worker(env, "fresh2")
    try:
        fcgi_call(sock, env, "GET", "/api/v1/health")
        assert stack.psql("SELECT count(*) FROM tenant_fresh.users") == "1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@test
def worker_refuses_to_start_without_a_strong_secret():
    for secret in [None, "", "too short for HMAC"]:
        env = stack.env()
        env.pop("ROOST_JWT_SECRET", None)
        if secret is not None:
            env["ROOST_JWT_SECRET"] = secret
        p = subprocess.run([FCGI, "-s", os.path.join(stack.dir, "run", "nosecret.sock")], env=env,
                           capture_output=True, timeout=10)
        assert p.returncode == 78 and b"ROOST_JWT_SECRET" in p.stderr, (secret, p.returncode, p.stderr)


def weak_hash(password):
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    assert lib.sodium_init() >= 0
    out = ctypes.create_string_buffer(128)
    pw = password.encode()
    # crypto_pwhash_str_alg(out, pw, len, opslimit=1, memlimit=8 MiB, ARGON2ID13=2)
    lib.crypto_pwhash_str_alg.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong,
                                          ctypes.c_ulonglong, ctypes.c_size_t, ctypes.c_int]
    assert lib.crypto_pwhash_str_alg(out, pw, len(pw), 1, 8 * 1024 * 1024, 2) == 0
    return out.value.decode()


@test
def old_hashes_are_upgraded_at_login():
    env = stack.env()
    env["ROOST_ADMIN_PASSWORD"] = "upgrade me password"
    subprocess.run([CTL, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([CTL, "create-admin", "old@example.com"], env=env, check=True, capture_output=True)
    old = weak_hash("upgrade me password")
    assert old.startswith("$argon2id$v=19$m=8192,t=1,p=1$"), old
    stack.psql(f"UPDATE roost.users SET password_hash = '{old}' WHERE email = 'old@example.com'")
    import urllib.request
    req = urllib.request.Request(stack.url("/api/v1/auth/login"), method="POST",
                                 data=json.dumps({"email": "old@example.com",
                                                  "password": "upgrade me password"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    new = stack.psql("SELECT password_hash FROM roost.users WHERE email = 'old@example.com'")
    assert new.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and new != old, new


if __name__ == "__main__":
    run_tests(stack)
