#!/usr/bin/python3
"""Integration: the HTTP layer through real lighttpd + roost.fcgi.

Health, routing errors, request ids, and hostile requests: malformed
request lines and headers, oversize bodies, huge query strings, path
traversal. Each must get a 4xx (a JSON error body wherever Roost itself
answers) and the workers must still answer afterwards."""
import json
import socket

import api
from harness import Stack, raw_request, run_tests, test

stack = Stack(workers=2)
PORT = int(stack.env_vars["ROOST_PORT"])


def get(path, method="GET", headers=None, body=None):
    hdrs = {"Host": "127.0.0.1", "Connection": "close"}
    hdrs.update(headers or {})
    data = body or b""
    if body is not None:
        hdrs["Content-Length"] = str(len(data))
    req = f"{method} {path} HTTP/1.1\r\n".encode()
    for k, v in hdrs.items():
        req += f"{k}: {v}\r\n".encode()
    return raw_request(PORT, req + b"\r\n" + data)


def error_code(body):
    return json.loads(body)["error"]["code"]


def alive():
    status, _, body = get("/api/v1/health")
    assert status == 200, (status, body)
    doc = json.loads(body)
    assert doc["db"] == "ok" and doc["redis"] == "ok", doc


@test
def health_ok():
    status, headers, body = get("/api/v1/health")
    assert status == 200, status
    assert headers["content-type"].startswith("application/json")
    doc = json.loads(body)
    assert doc["status"] == "ok" and doc["db"] == "ok" and doc["redis"] == "ok", doc
    assert doc["version"] and doc["version"][0].isdigit(), doc
    assert len(headers["x-request-id"]) == 32


@test
def request_id_is_echoed_when_sane():
    _, headers, _ = get("/api/v1/health", headers={"X-Request-Id": "trace-12345678"})
    assert headers["x-request-id"] == "trace-12345678", headers
    _, headers, _ = get("/api/v1/health", headers={"X-Request-Id": "no way\tjose"})
    assert headers["x-request-id"] != "no way\tjose" and len(headers["x-request-id"]) == 32


@test
def unknown_path_is_json_404():
    status, headers, body = get("/api/v1/no-such-thing")
    assert status == 404, status
    assert error_code(body) == "NOT_FOUND"
    assert headers["content-type"].startswith("application/json")


@test
def wrong_method_is_405_with_allow():
    status, headers, body = get("/api/v1/health", method="DELETE")
    assert status == 405, status
    assert error_code(body) == "METHOD_NOT_ALLOWED"
    assert headers["allow"] == "GET, HEAD", headers


@test
def head_has_no_body():
    status, headers, body = get("/api/v1/health", method="HEAD")
    assert status == 200 and body == b"", (status, body)


@test
def path_traversal_is_refused():
    # exactly what docs/api.md's path table says lighttpd answers (the
    # development configuration is the shipped one's twin)
    api.check_path_answers(PORT, "lighttpd")
    for path in ["/api/v1/a%2f..%2fhealth", "/api/v1/a%5c..%5c..%5cetc", "/api/v1/.%2e/health",
                 "/api/v1/..\\..\\etc", "/api/v1/health/.", "/api/v1/./health"]:
        status, headers, body = get(path)
        assert status == 400 and error_code(body) == "BAD_REQUEST", (path, status, body)
        assert "x-request-id" in headers, f"{path}: not Roost's own answer: {headers}"
    # a dot-led segment under /api/ is a name, Roost's (not lighttpd's dot-file 403)
    status, headers, body = get("/api/v1/.hidden")
    assert status == 404 and error_code(body) == "NOT_FOUND" and "x-request-id" in headers, (status, body)
    # literal dots that climb out of /api/ are resolved by lighttpd first
    status, _, body = get("/api/v1/../../../../etc/passwd")
    assert status == 404 and error_code(body) == "NOT_FOUND" and b"root:" not in body, status
    alive()


@test
def encoded_nul_and_bad_escapes_are_400():
    for path in ["/api/v1/health%00", "/api/v1/he%zzalth", "/api/v1/health?x=%ff%fe",
                 "/api/v1/health?a=%"]:
        status, _, body = get(path)
        assert status == 400, (path, status, body)
        assert error_code(body) == "BAD_REQUEST", body
    alive()


@test
def huge_query_string_is_4xx():
    status, _, body = get("/api/v1/health?q=" + "a" * 10000)
    assert status in (414, 431, 400), status
    if body.startswith(b"{"):
        assert error_code(body) in ("URI_TOO_LONG", "HEADERS_TOO_LARGE", "BAD_REQUEST")
    status, _, body = get("/api/v1/health?" + "&".join(f"k{i}=v" for i in range(200)))
    assert status == 400 and error_code(body) == "BAD_REQUEST", status
    alive()


@test
def body_over_the_limit_is_413():
    big = b"x" * (1024 * 1024 + 10)
    status, _, body = get("/api/v1/health", method="POST",
                          headers={"Content-Type": "application/json"}, body=big)
    assert status == 413, status
    if body.startswith(b"{"):
        assert error_code(body) == "PAYLOAD_TOO_LARGE"
    alive()


@test
def announced_but_missing_body_does_not_hang_a_worker():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(b"POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nabc")
    s.close()
    alive()


@test
def malformed_request_lines_are_4xx():
    for raw in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET /api/v1/health HTTP/9.9\r\n\r\n",
                b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nNo-Colon-Here\r\n\r\n",
                b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nBad\x01Header: v\r\n\r\n",
                b"\x00\x01\x02\x03\r\n\r\n",
                b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n"]:
        status, _, _ = raw_request(PORT, raw)
        assert status is None or 400 <= status < 500 or status == 505, (raw[:40], status)
    alive()


@test
def many_headers_are_refused_cleanly():
    hdrs = {f"X-H{i}": "v" for i in range(150)}
    status, _, body = get("/api/v1/health", headers=hdrs)
    assert status in (400, 431), status
    if body.startswith(b"{"):
        assert error_code(body) == "HEADERS_TOO_LARGE"
    alive()


@test
def hostile_json_bodies_are_4xx_json():
    """Through lighttpd into a real JSON route (login): every malformed body
    is refused before any handler logic, with the error body."""
    j = {"Content-Type": "application/json"}
    cases = [
        (b'{"email": "a@b.co", "password": ', 400, "BAD_REQUEST", j),         # truncated
        (b"{'email': 'a@b.co'}", 400, "BAD_REQUEST", j),                       # single quotes
        (b'{"email": "a@b.co",}', 400, "BAD_REQUEST", j),                      # trailing comma
        (b'{"email": "a@b.co"} garbage', 400, "BAD_REQUEST", j),               # trailing bytes
        (b'{"n": NaN}', 400, "BAD_REQUEST", j),
        (b"[" * 10000 + b"]" * 10000, 400, "BAD_REQUEST", j),                  # 10,000 deep
        (b'{"a":' * 10000 + b"1" + b"}" * 10000, 400, "BAD_REQUEST", j),
        (b'{"email": "\xff\xfe@b.co", "password": "x"}',
         400, "BAD_REQUEST", j),                                               # invalid UTF-8
        (b'{"email": "a@b.co", "password": "x", "email": "c@d.co"}', 400, "BAD_REQUEST", j),
        (b'{"email": "a@b.co", "password": "0123456789abc"}', 415, "UNSUPPORTED_MEDIA_TYPE",
         {"Content-Type": "text/plain"}),
        (b'{"email": "a@b.co", "password": "0123456789abc"}', 415, "UNSUPPORTED_MEDIA_TYPE", {}),
        (b"", 400, "BAD_REQUEST", j),
        (b"[1, 2]", 400, "VALIDATION_ERROR", j),
        (b'"just a string"', 400, "VALIDATION_ERROR", j),
    ]
    for body, want, code, hdrs in cases:
        status, headers, resp = get("/api/v1/auth/login", method="POST", headers=hdrs, body=body)
        assert status == want, (body[:40], status, resp[:200])
        assert error_code(resp) == code, (body[:40], resp[:200])
        assert headers["content-type"].startswith("application/json")
    alive()


@test
def workers_survive_a_burst_of_garbage():
    pids_before = stack.fcgi_pids()
    for i in range(200):
        raw_request(PORT, bytes([(i * 7 + j) % 256 for j in range(64)]) + b"\r\n\r\n")
    alive()
    assert stack.fcgi_pids() == pids_before, "a worker died or was replaced"


if __name__ == "__main__":
    run_tests(stack)
