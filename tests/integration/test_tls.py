#!/usr/bin/python3
"""Integration: TLS (issue 13; docs/deploy.md, "TLS").

Roost's side, on test stacks (lighttpd in front, plain HTTP, as behind a
proxy that ends TLS):

- ROOST_PUBLIC_URL=https://...: the session and CSRF cookies are Secure
  although the request came over plain HTTP, and every answer carries
  Strict-Transport-Security: max-age=31536000: REST, errors, the SSE head,
  long-polls (answered at once, held and answered by a message, timed
  out), from the workers (fallback stack) and from roost-relay (relay
  stack, its own answers included).
- ROOST_PUBLIC_URL=http://...: no Secure over plain HTTP, no HSTS
  anywhere (workers and relay); a request that itself came over HTTPS
  (roost.cgi with HTTPS=on) still gets Secure cookies, and no HSTS.

The shipped TLS variants (httpd-conf/): nginx, lighttpd and Apache
(mod_fcgid, and mod_proxy_fcgi) render their SHIPPED template
(matrix_servers.Site) with a self-signed certificate made here by
`openssl req -x509` in the site's folder, the TLS variant turned on the
way the file's head tells an admin (Apache: -D ROOST_TLS; nginx and
lighttpd: the "#TLS# " prefixes deleted), events to the stack's relay.
Over https (Python's ssl, trusting that certificate only): the web
client and health answer; HSTS exactly once on a static file and on the
API; login sets Secure cookies; no version in any Server header; a
posted message's event arrives over SSE within 1 s (curl, which
negotiates HTTP/2 where the server offers it: the protocol is printed).
Over plain HTTP on the site's port: a redirect to https://SERVER_NAME
with the path and query kept, for static and API paths, except
/.well-known/acme-challenge/, which serves the file.
"""
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import api
import matrix_servers as ms
from harness import SSEClient, Stack, longpoll, raw_request, run_tests, test

HSTS = "max-age=31536000"
ENV = {"ROOST_SSE_HEARTBEAT_S": "1"}
https_relay = Stack(workers=3, relay=True,
                    env=dict(ENV, ROOST_PUBLIC_URL="https://chat.example.org"))
https_fallback = Stack(workers=4, relay=False,
                       env=dict(ENV, ROOST_PUBLIC_URL="https://chat.example.org/"))
http_relay = Stack(workers=3, relay=True,
                   env=dict(ENV, ROOST_PUBLIC_URL="http://chat.example.org"))


def admin(st):
    return api.admin_session(st)[0]


def hsts_of(headers):
    """Every Strict-Transport-Security value of an answer."""
    if hasattr(headers, "get_all"):
        return headers.get_all("Strict-Transport-Security") or []
    v = {k.lower(): v for k, v in headers.items()}.get("strict-transport-security")
    return [] if v is None else [x.strip() for x in v.split(",")]


def want_hsts(headers, on, what):
    got = hsts_of(headers)
    if on:
        assert got == [HSTS], f"{what}: Strict-Transport-Security {got}, want one {HSTS!r}"
    else:
        assert got == [], f"{what}: Strict-Transport-Security {got} with an http public URL"


def cookie_flags(headers):
    c = api.set_cookies(headers)
    assert "roost_session" in c and "roost_csrf" in c, headers.get_all("Set-Cookie")
    return c["roost_session"][1], c["roost_csrf"][1]


# ------------------------------------------------------- Roost's own side

@test
def cookies_are_secure_when_the_public_url_is_https():
    for st, secure in ((https_relay, True), (https_fallback, True), (http_relay, False)):
        admin(st)
        _, email, password = api.admin_session(st)
        s, h, doc = api.post(st, "/auth/login", {"email": email, "password": password,
                                                 "device": "mobile"})
        assert s == 200, (s, doc)
        sess, csrf = cookie_flags(h)
        what = f"{st.extra_env['ROOST_PUBLIC_URL']}: login over plain HTTP"
        assert (sess.get("secure") is True) == secure, f"{what}: roost_session {sess}"
        assert (csrf.get("secure") is True) == secure, f"{what}: roost_csrf {csrf}"
        assert sess.get("httponly") is True and str(sess.get("samesite")).lower() == "lax", sess
        want_hsts(h, secure, what)
        # logout clears them with the same flags
        s, h, _ = api.post(st, "/auth/logout", token=doc["token"])
        assert s == 204, s
        sess, _ = cookie_flags(h)
        assert (sess.get("secure") is True) == secure, f"{what}: logout's cookie {sess}"
        want_hsts(h, secure, f"{what}: logout")


@test
def a_request_over_https_keeps_secure_cookies_with_an_http_public_url():
    admin(http_relay)
    _, email, password = api.admin_session(http_relay)
    s, h, doc = api.cgi_request(http_relay, "POST", "/auth/login",
                                {"email": email, "password": password, "device": "mobile"},
                                https=True)
    assert s == 200, (s, doc)
    sess, csrf = cookie_flags(h)
    assert sess.get("secure") is True and csrf.get("secure") is True, (sess, csrf)
    want_hsts(h, False, "http public URL, request over HTTPS")


def member(st):
    _, email, password = api.create_user(st, admin(st))
    tok = api.login(st, email, password)["token"]
    room = api.create_room(st, tok, kind="private")["id"]
    return tok, room


@test
def every_answer_has_hsts_with_an_https_public_url():
    for st, on in ((https_fallback, True), (https_relay, True), (http_relay, False)):
        name = f"{'relay' if st.relay else 'fallback'} {st.extra_env['ROOST_PUBLIC_URL']}"
        tok, room = member(st)
        for method, path, token in (("GET", "/api/v1/health", None), ("GET", "/api/v1/me", tok),
                                    ("GET", "/api/v1/me", None), ("GET", "/api/v1/nope", None),
                                    ("DELETE", "/api/v1/health", None)):
            s, h, _ = api.request(st, method, path, token=token)
            assert s is not None and s < 500, (name, method, path, s)
            want_hsts(h, on, f"{name}: {method} {path} -> {s}")

        c = SSEClient(st.port, token=tok)
        try:
            assert c.status == 200 and c.is_stream, (name, c.status)
            want_hsts(c.headers, on, f"{name}: SSE head")
        finally:
            c.close()
        cur = longpoll(st.port, token=tok, timeout=0)
        want_hsts(cur.headers, on, f"{name}: long-poll timeout=0")
        box = {}
        th = threading.Thread(target=lambda: box.update(
            r=longpoll(st.port, token=tok, last_event_id=cur.cursor, timeout=20)))
        th.start()
        time.sleep(0.6)
        m = api.send(st, tok, room, "wakes the long-poll")
        th.join(15)
        r = box["r"]
        assert r.status == 200 and any(e["data"].get("id") == m["id"] for e in r.events), (name, r)
        want_hsts(r.headers, on, f"{name}: held long-poll answered by a message")
        r = longpoll(st.port, token=tok, timeout=1)
        assert r.status == 200 and r.events == [], (name, r)
        want_hsts(r.headers, on, f"{name}: long-poll that timed out")
    # the relay's own answers
    for st, on in ((https_relay, True), (http_relay, False)):
        for req, want in ((b"GET /relay/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200),
                          (b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
                          (b"BLAH\r\n\r\n", 400)):
            s, h, _ = raw_request(st.relay_port, req)
            assert s == want, (req, s, h)
            want_hsts(h, on, f"relay {st.extra_env['ROOST_PUBLIC_URL']}: {req[:24]!r} -> {s}")


# --------------------------------------------------- the shipped samples

ms.become_subreaper()
ms.open_backends_to(https_relay)
BASE = tempfile.mkdtemp(prefix="roost-tls-", dir="/tmp")
os.chmod(BASE, 0o755)
SERVER_NAME = "roost.test"
DELIVERY_S = 1.0
LEFT_RUNNING = []


def make_cert(folder):
    """A self-signed certificate for SERVER_NAME (the CA the client
    trusts), as certbot lays it out: fullchain.pem and privkey.pem."""
    os.makedirs(folder, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={SERVER_NAME}", "-addext", f"subjectAltName=DNS:{SERVER_NAME}",
                    "-keyout", os.path.join(folder, "privkey.pem"),
                    "-out", os.path.join(folder, "fullchain.pem")],
                   check=True, capture_output=True, timeout=60)
    os.chmod(os.path.join(folder, "privkey.pem"), 0o600)
    return os.path.join(folder, "fullchain.pem")


def tls_on(path):
    """Turn the TLS variant on as the file's head says: sed 's/^#TLS# //'."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    on = re.sub(r"(?m)^#TLS# ", "", text)
    assert on != text, f"{path}: no #TLS# lines"
    with open(path, "w", encoding="utf-8") as f:
        f.write(on)
    return path


class Tls:
    """Requests over TLS to 127.0.0.1:port as SERVER_NAME, trusting only
    the test certificate."""

    def __init__(self, port, ca):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2

    def req(self, method, path, body=None, headers=None):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
        conn = http.client.HTTPSConnection(SERVER_NAME, self.port, context=self.ctx, timeout=15)
        conn.sock = self.ctx.wrap_socket(sock, server_hostname=SERVER_NAME)
        version = conn.sock.version()
        hdrs = {"Connection": "close", "Host": SERVER_NAME}
        data = None
        if body is not None:
            data = api._json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return r.status, r.headers, r.read(), version
        finally:
            conn.close()


def plain(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path, headers={"Host": SERVER_NAME, "Connection": "close"})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def no_version(headers, what):
    for v in headers.get_all("Server") or []:
        assert not re.search(r"\d", v), f"{what}: Server header names a version: {v!r}"


def sse_over_curl(port, ca, token, room, findings):
    """An SSE stream through curl (HTTP/2 where offered); a message posted
    once it is open must arrive within DELIVERY_S."""
    url = f"https://{SERVER_NAME}:{port}/api/v1/events"
    p = subprocess.Popen(["curl", "-sS", "-N", "-i", "--cacert", ca,
                          "--resolve", f"{SERVER_NAME}:{port}:127.0.0.1",
                          "-H", "Accept: text/event-stream", "-H", f"Authorization: Bearer {token}",
                          "--max-time", "30", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []

    def reader():
        for raw in p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append((time.monotonic(), line))
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 10
        while not any(l.startswith(": stream open") for _, l in lines):
            assert time.monotonic() < deadline and p.poll() is None, \
                f"no SSE stream over TLS: {lines[:20]} {p.stderr.read() if p.poll() is not None else ''}"
            time.sleep(0.02)
        status = lines[0][1]
        findings["sse protocol"] = status.split()[0]
        head = [l for _, l in lines[1:] if ":" in l and not l.startswith(":")]
        hs = [l.split(":", 1)[1].strip() for l in head if l.lower().startswith("strict-transport-security:")]
        assert hs == [HSTS], f"SSE head over TLS: HSTS {hs}: {head}"
        t0 = time.monotonic()
        m = api.send(https_relay, token, room, "over TLS")
        want = f'"id":{m["id"]}'
        while True:
            hit = [t for t, l in lines if l.startswith("data:") and want in l.replace(" ", "")]
            if hit:
                took = hit[0] - t0
                break
            assert time.monotonic() - t0 < 5, f"the event did not arrive over TLS SSE: {lines[-10:]}"
            time.sleep(0.01)
        assert took <= DELIVERY_S, f"the event took {took:.2f}s over TLS SSE"
        findings["sse delivery"] = f"{took * 1000:.0f} ms"
    finally:
        p.kill()
        p.wait(5)


def check_site(site, ca):
    tls_port = int(site.values["TLS_PORT"].rsplit(":", 1)[-1])
    t = Tls(tls_port, ca)
    f = {}
    _, email, password = api.admin_session(https_relay)
    # the web client and health, over TLS 1.2+
    s, h, body, version = t.req("GET", "/")
    assert s == 200 and b"<html" in body.lower(), (s, body[:200])
    f["tls"] = version
    assert hsts_of(h) == [HSTS], f"static file over TLS: HSTS {hsts_of(h)}"
    no_version(h, "static file")
    # the web client's own headers stay with HSTS over TLS (a block that
    # sets a header list of its own must repeat them)
    for name in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy",
                 "X-Content-Type-Options"):
        got = h.get_all(name) or []
        assert len(got) == 1, f"static file over TLS: {name} {got}"
    assert "frame-ancestors 'none'" in h.get("Content-Security-Policy"), h
    s, h, body, _ = t.req("GET", "/api/v1/health")
    assert s == 200, (s, body[:200])
    assert hsts_of(h) == [HSTS], f"API over TLS: HSTS {hsts_of(h)} (Roost's, once)"
    no_version(h, "API")
    s, h, _, _ = t.req("GET", "/no-such-file.html")
    no_version(h, f"the server's own {s}")
    # login: Secure cookies
    s, h, body, _ = t.req("POST", "/api/v1/auth/login",
                          {"email": email, "password": password, "device": "desktop"})
    assert s == 200, (s, body[:300])
    sess, csrf = cookie_flags(h)
    assert sess.get("secure") is True and csrf.get("secure") is True, (sess, csrf)
    token = api._json.loads(body)["token"]
    room = api.create_room(https_relay, token)["id"]
    sse_over_curl(tls_port, ca, token, room, f)
    # plain HTTP: redirects, except the ACME challenges
    for path in ("/", "/index.html?x=1", "/api/v1/health", "/api/v1/rooms?limit=5"):
        s, h, _ = plain(site.port, path)
        want = f"https://{SERVER_NAME}{path}"
        assert s in (301, 308) and h.get("Location") == want, \
            f"plain {path}: {s} Location {h.get('Location')!r}, want {want}"
        no_version(h, f"plain {path}")
    acme = site.path("var", "www", "letsencrypt", ".well-known", "acme-challenge", "tok-123")
    with open(acme, "w") as fh:
        fh.write("tok-123.key-authorization\n")
    os.chmod(acme, 0o644)
    s, h, body = plain(site.port, "/.well-known/acme-challenge/tok-123")
    assert s == 200 and body == b"tok-123.key-authorization\n", (s, h.get("Location"), body[:200])
    return f


def run_site(name, setup):
    site = ms.Site(BASE, name, https_relay, server_name=SERVER_NAME)
    ca = make_cert(site.values["TLS_CERT_DIR"])
    site.write_config({"ROOST_PUBLIC_URL": f"https://{SERVER_NAME}"})
    try:
        setup(site)
        findings = check_site(site, ca)
        for k, v in findings.items():
            print(f"# {name}: {k}: {v}")
    except BaseException:
        print(f"# {name}: logs of the site (last lines):")
        for line in site.log_tails().splitlines():
            print(f"#   {line}")
        raise
    finally:
        left = site.stop()
        LEFT_RUNNING.extend((name, pid, comm) for pid, comm in left)
        if not os.environ.get("ROOST_KEEP_TMP"):
            shutil.rmtree(site.dir, ignore_errors=True)


def apache_tls(site, template):
    tls_port = site.values["TLS_PORT"]
    extra = (f"LoadModule ssl_module {ms.APACHE_MODULES}/mod_ssl.so\n"
             f"LoadModule socache_shmcb_module {ms.APACHE_MODULES}/mod_socache_shmcb.so\n"
             f"Listen 127.0.0.1:{tls_port}\n")
    modules = ()
    if "fcgid" in template:
        # as the mod_fcgid files' heads say: suexec and its wrapper
        site.install_fcgid_wrapper()
        modules = ("suexec",)
    conf = site.apache_wrapper(site.render(template), extra=extra, modules=modules)
    site.start_apache(conf, defines=["ROOST_TLS"])


@test
def nginx_tls():
    def setup(s):
        s.values["TLS_PORT"] = f"127.0.0.1:{s.values['TLS_PORT']}"
        s.spawn_fcgi(workers=2)
        conf = tls_on(s.render("nginx.conf.in", {"PORT": f"127.0.0.1:{s.port}"}))
        s.start_nginx(s.nginx_wrapper(conf))
    admin(https_relay)
    run_site("nginx", setup)


@test
def lighttpd_tls():
    def setup(s):
        conf = tls_on(s.render("lighttpd.conf.in"))
        s.start_lighttpd(s.lighttpd_wrapper(conf))
    admin(https_relay)
    run_site("lighttpd", setup)


@test
def apache_fcgid_tls():
    admin(https_relay)
    run_site("apache-fcgid", lambda s: apache_tls(s, "apache-fcgid.conf.in"))


@test
def apache_proxy_fcgi_tls():
    def setup(s):
        s.spawn_fcgi(workers=2)
        apache_tls(s, "apache-proxy-fcgi.conf.in")
    admin(https_relay)
    run_site("apache-proxy-fcgi", setup)


@test
def nothing_left_running():
    ms.assert_nothing_left(BASE, LEFT_RUNNING)


if __name__ == "__main__":
    import atexit
    atexit.register(ms.cleanup, BASE)
    run_tests(https_relay, https_fallback, http_relay)
