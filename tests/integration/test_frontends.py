#!/usr/bin/python3
"""Integration: roost.fcgi and roost.cgi are the same server.

For the same request both front ends give the same status, headers (bar
Date and the request id, which is pinned here anyway) and body. roost.fcgi
runs three ways: listening itself (-s), on a socket handed over on fd 0
(spawn-fcgi, as mod_fcgid and lighttpd do), and refusing to run without
one."""
import os
import signal
import socket
import subprocess
import time

from harness import Stack, run_tests, test

stack = Stack(workers=1)
BUILD = os.environ.get("ROOST_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
FCGI = os.path.join(BUILD, "roost.fcgi")
CGI = os.path.join(BUILD, "roost.cgi")
SOCK = os.path.join(stack.dir, "run", "test-fcgi.sock")

REQUESTS = [
    ("GET", "/api/v1/health", None, None),
    ("HEAD", "/api/v1/health", None, None),
    ("GET", "/api/v1/nope", None, None),
    ("DELETE", "/api/v1/health", None, None),
    ("GET", "/api/v1/%2e%2e/etc/passwd", None, None),
    ("GET", "/api/v1/health?x=%zz", None, None),
    ("POST", "/api/v1/health", "application/json", b'{"a": 1}'),
    ("POST", "/api/v1/health", "application/json", b"x" * (2 * 1024 * 1024)),
]


def cgi_env(method, uri, ctype, body):
    env = dict(stack.env())
    env.update({
        "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "REQUEST_URI": uri,
        "QUERY_STRING": uri.partition("?")[2], "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "HTTP_X_REQUEST_ID": "frontend-identity-1",
    })
    if ctype:
        env["CONTENT_TYPE"] = ctype
    if body is not None:
        env["CONTENT_LENGTH"] = str(len(body))
    return env


def parse_cgi(out):
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"Status: "), out[:200]
    status = int(lines[0].split()[1])
    headers = sorted(tuple(l.split(b": ", 1)) for l in lines[1:]
                     if not l.lower().startswith(b"date:"))
    return status, headers, body


def run_cgi(req):
    method, uri, ctype, body = req
    p = subprocess.run([CGI], env=cgi_env(*req), input=body or b"", capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return parse_cgi(p.stdout)


def run_fcgi(req, sock=SOCK):
    method, uri, ctype, body = req
    p = subprocess.run(["cgi-fcgi", "-bind", "-connect", sock], env=cgi_env(*req),
                       input=body or b"", capture_output=True, timeout=30)
    return parse_cgi(p.stdout)


def wait_socket(path, proc, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                s.close()
                return
            except OSError:
                pass
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("socket never appeared")


fcgi_proc = None


@test
def fcgi_listens_itself_on_a_unix_socket():
    global fcgi_proc
    fcgi_proc = subprocess.Popen([FCGI, "-s", SOCK], env=stack.env(), stderr=subprocess.PIPE)
    wait_socket(SOCK, fcgi_proc)
    mode = os.stat(SOCK).st_mode & 0o777
    assert mode == 0o660, oct(mode)
    status, _, body = run_fcgi(REQUESTS[0])
    assert status == 200 and b'"db":"ok"' in body, (status, body)


@test
def cgi_and_fcgi_answer_identically():
    for req in REQUESTS:
        c = run_cgi(req)
        f = run_fcgi(req)
        assert c == f, (req[:2], c, f)
    statuses = [run_cgi(r)[0] for r in REQUESTS]
    assert statuses == [200, 200, 404, 405, 400, 400, 405, 413], statuses


@test
def fcgi_stops_cleanly_on_sigterm():
    fcgi_proc.send_signal(signal.SIGTERM)
    # libfcgi only notices between requests; one more request wakes accept.
    try:
        run_fcgi(REQUESTS[0])
    except Exception:
        pass
    assert fcgi_proc.wait(timeout=10) == 0


@test
def fcgi_on_fd0_via_spawn_fcgi():
    sock = os.path.join(stack.dir, "run", "spawned.sock")
    env = stack.env()
    p = subprocess.run(["spawn-fcgi", "-s", sock, "-M", "0660", "-P",
                        os.path.join(stack.dir, "run", "spawned.pid"), "--", FCGI],
                       env=env, capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    pid = int(open(os.path.join(stack.dir, "run", "spawned.pid")).read())
    try:
        status, _, body = run_fcgi(REQUESTS[0], sock)
        assert status == 200, (status, body)
        status, _, _ = run_fcgi(REQUESTS[2], sock)
        assert status == 404
    finally:
        os.kill(pid, signal.SIGTERM)


@test
def fcgi_refuses_to_run_without_a_socket():
    p = subprocess.run([FCGI], env=stack.env(), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=10)
    assert p.returncode == 64, (p.returncode, p.stderr)
    assert b"not a FastCGI socket" in p.stderr


@test
def fcgi_refuses_a_public_address():
    p = subprocess.run([FCGI, "-s", "0.0.0.0:9999"], env=stack.env(),
                       capture_output=True, timeout=10)
    assert p.returncode == 64 and b"loopback" in p.stderr, p.stderr


@test
def broken_config_fails_loudly():
    env = stack.env()
    env["ROOST_SCHEMA"] = "bad schema"
    p = subprocess.run([CGI], env=dict(env, REQUEST_METHOD="GET", REQUEST_URI="/api/v1/health"),
                       input=b"", capture_output=True, timeout=10)
    status, _, body = parse_cgi(p.stdout)
    assert status == 500 and b'"INTERNAL"' in body and b"ROOST_SCHEMA" in p.stderr
    sock = os.path.join(stack.dir, "run", "broken.sock")
    p = subprocess.run([FCGI, "-s", sock], env=env, capture_output=True, timeout=10)
    assert p.returncode == 78 and b"ROOST_SCHEMA" in p.stderr, (p.returncode, p.stderr)


@test
def cgi_refuses_to_run_outside_a_web_server():
    env = {k: v for k, v in stack.env().items() if k not in ("REQUEST_METHOD", "GATEWAY_INTERFACE")}
    p = subprocess.run([CGI], env=env, capture_output=True, timeout=10)
    assert p.returncode == 64 and b"CGI" in p.stderr


if __name__ == "__main__":
    try:
        run_tests(stack)
    finally:
        if fcgi_proc and fcgi_proc.poll() is None:
            fcgi_proc.kill()
