#!/usr/bin/python3
"""Integration: every shipped web server configuration (httpd-conf/),
end to end, with one scenario.

Each deployment shape renders its SHIPPED template with this run's values
(matrix_servers.py: temp folders, a free loopback port, bindir = the
build, pkgdatadir = the source tree) and starts the real server, Debian's
binaries and modules, in this order:

  apache-fcgid               Apache + mod_fcgid, roost.fcgi as the user
                             roost through suexec; events -> roost-relay
  apache-proxy-fcgi          Apache + mod_proxy_fcgi -> spawn-fcgi socket;
                             events -> roost-relay
  lighttpd                   lighttpd, mod_fastcgi bin-path; events ->
                             roost-relay (mod_proxy)
  nginx                      nginx, fastcgi_pass -> spawn-fcgi socket;
                             events -> roost-relay (proxy_pass)
  then with the relay stopped (the workers serve the events and drain
  the outbox themselves, as where no relay runs):
  apache-fcgid-norelay       Apache + mod_fcgid, its own file (suexec too)
  apache-proxy-fcgi-norelay  the proxy-fcgi file with -D ROOST_NO_RELAY:
                             events through mod_proxy_fcgi (flushpackets)
  nginx-norelay              the nginx file with its relay location
                             deleted, as it says: events through
                             fastcgi_pass, streamed thanks to Roost's
                             X-Accel-Buffering: no
  apache-cgi                 Apache + mod_cgid running roost.cgi
  htaccess-cgi               a user's folder (/~roost/chat/, Debian's
                             userdir settings + ExecCGI): .htaccess +
                             mod_rewrite + roost.cgi, ROOST_BASE_PATH

The scenario, over HTTP against each: the web client's index page;
health; Roost's own 404 passes through untouched; paths with dot
segments, backslashes and encoded slashes get exactly what docs/api.md's
path table says for that server (and /api/v1/x/../events what its text
says); login; create a room;
post and page the history; POST /api/v1/events/ticket reaches roost.fcgi
(never the relay); the posted message's event arrives over SSE (cookie,
as EventSource sends it) AND over a waiting long-poll (Bearer) within 1 s
of the post: nothing buffers; an SSE heartbeat comment arrives too
(ROOST_SSE_HEARTBEAT_S=2 here); a reaction (PUT
/api/v1/messages/{id}/reactions/heart) and its event; a body just under
1 MiB reaches Roost whole (Roost's own validation error, not the
server's); a 2 MiB body gets 413; a 20 KiB Cookie gets a 4xx promptly and
the server still answers; logout, after which the token is refused.
Every shape does every step: plain CGI holds SSE streams open fine (one
roost.cgi process per stream), so no shape needs a fallback. Where the
events go is checked with the relay's own connection count. What each
server answered (who refused the 2 MiB body, the code for the oversize
header, delivery times) is printed as "# shape: ..." lines.

The mod_fcgid shapes are set up as their files' heads say (the user
roost, roost.conf 640 root:roost, roost.fcgi-wrapper in a folder of its
own below /var/www, mod_suexec loaded; Debian's apache2-suexec-pristine)
and, after the scenario, every roost.fcgi process of the shape must run
as roost (uid and gid, real to filesystem, from /proc), www-data must be
unable to read the configuration file those processes were given, and
their own log lines must reach Apache's main error log.

The shapes with the relay also hold CAPACITY_STREAMS event streams at once
(more than any of the servers' defaults allowed: lighttpd 1,365 connections;
mpm_event 400 threads as compiled, 150 in Debian's mpm_event.conf; nginx
768 connections per worker in Debian's nginx.conf, two per stream) while
health answers, and drop a request head sent one byte every 3 s within
SLOW_HEAD_S (issue 12; docs/deploy.md, "Capacity"). nginx runs with the
main and events {} settings its file's head tells to put in nginx.conf.

The stack (PostgreSQL, Redis, roost-relay) comes from harness.Stack; its
own lighttpd is not used. Each shape also checks that the stack's Redis,
its socket open to every user here, answers another account (nobody)
without a password with NOAUTH, for PING and for the event stream. Loopback only; everything started is stopped
(the last test checks that no process of a shape is left).
"""
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from urllib.parse import quote

import api
import matrix_servers as ms
from harness import SSEClient, Stack, longpoll, raw_request, run_tests, test
from matrix_scenario import Target, scenario
from streams import Streams, trickle

ms.become_subreaper()
stack = Stack(workers=1, relay=True, env={"ROOST_SSE_HEARTBEAT_S": "2"})
ms.open_backends_to(stack)
ADMIN_EMAIL, ADMIN_PASSWORD = api.make_admin(stack)
_admin = api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)
api.relax_limits(stack, _admin["token"])
api.set_settings(stack, _admin["token"], messages_per_10s=1000)
BASE = tempfile.mkdtemp(prefix="roost-mx-", dir="/tmp")
os.chmod(BASE, 0o755)

BODY_LIMIT = int(stack.env_vars.get("ROOST_BODY_LIMIT", "1048576"))
LEFT_RUNNING = []         # (shape, pid, comm) found after a shape stopped
CAPACITY_STREAMS = 1500   # event streams a relay shape holds at once
SLOW_HEAD_S = 12.0        # a head sent one byte every 3 s is dropped by then


def relay_connections():
    with urllib.request.urlopen(stack.relay_url("/relay/health"), timeout=5) as r:
        return json.load(r)["connections"]


def served_by_relay(request_id, timeout=3):
    """Whether the relay's log names the request (it logs each one it
    serves, as it answers)."""
    deadline = time.monotonic() + timeout
    while True:
        with open(stack.log_path("relay"), errors="replace") as f:
            if f"req={request_id} " in f.read():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


RELAY_ALIVE_KEY = "roost:{roost}:relay:alive"
_relay_warm = []


def warm_relay(timeout=15):
    """Wait until the relay publishes promptly. It started before the
    schema existed and waits for the migrations (it looks for the outbox
    tables on its drain timer), so the very first events may come a
    moment late, whatever the web server: the shapes' timings start after
    that."""
    tok = _admin["token"]
    room = api.create_room(stack, tok)
    deadline = time.monotonic() + timeout
    with SSEClient(stack.relay_port, token=tok) as sse:
        while True:
            m = api.send(stack, tok, room["id"], "warm-up")
            t = time.monotonic()
            try:
                ev = sse.wait_for(lambda e: e.event == "message.created" and
                                  (e.json or {}).get("data", {}).get("id") == m["id"], timeout=1)
                if ev.t - t < 0.5:
                    return
            except AssertionError:
                pass
            assert time.monotonic() < deadline, "the relay does not publish events promptly"


def use_relay(on):
    """Relay shapes need the stack's roost-relay; worker shapes need it
    gone: while it keeps its alive key fresh, workers leave the outbox to
    it (outbox_kick), which is not the no-relay deployment."""
    running = stack.relay_pid() is not None
    if on:
        if not running:
            stack.relay_start(wait_proxy=False)
            _relay_warm.clear()
        if not _relay_warm:
            warm_relay()
            _relay_warm.append(True)
    elif running:
        stack.relay_stop()
        assert stack.redis_cli("EXISTS", RELAY_ALIVE_KEY) == "0", \
            "the stopped relay left its alive key"


def capacity(port):
    """CAPACITY_STREAMS event streams through the shape, health answering
    while they are open, and a request head sent one byte every 3 s
    dropped within SLOW_HEAD_S (both at once). Returns findings."""
    f = {}
    slow = {}
    head = (f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"User-Agent: {'x' * 100}\r\n\r\n").encode()
    th = threading.Thread(target=lambda: slow.update(r=trickle(port, head, 3.0, SLOW_HEAD_S + 8)),
                          daemon=True)
    th.start()
    base = relay_connections()
    # a session of its own: the scenario's login displaced the admin's
    # earlier desktop session, and its logout ended its own
    token = api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
    streams = Streams(port, token, CAPACITY_STREAMS)
    try:
        assert not streams.failed, \
            f"{len(streams.ok)} of {CAPACITY_STREAMS} event streams opened; {streams.failed} failed, " \
            f"the first: {streams.why}"
        f["streams"] = f"{CAPACITY_STREAMS} open in {streams.took:.1f}s"
        t0 = time.monotonic()
        st, _, body = raw_request(port, b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                        b"Connection: close\r\n\r\n", timeout=10)
        assert st == 200, f"health with {CAPACITY_STREAMS} streams open: {st} {body[:200]!r}"
        f["health with the streams"] = f"200 in {(time.monotonic() - t0) * 1000:.0f} ms"
    finally:
        streams.close()
    th.join(SLOW_HEAD_S + 15)
    took, sent, got = slow.get("r", (None, 0, b""))
    assert took is not None and took <= SLOW_HEAD_S, \
        f"a head sent one byte every 3 s: " \
        f"{'still open' if took is None else f'dropped after {took:.1f}s'} ({sent} bytes sent)"
    answer = got.split(b"\r\n", 1)[0].decode("latin-1") or "no answer"
    f["slow head"] = f"closed after {took:.1f}s ({answer})"
    # let the closed streams go before the next shape counts connections
    deadline = time.monotonic() + 30
    while relay_connections() > base + 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert relay_connections() <= base + 5, \
        f"the relay still holds {relay_connections()} connections (before: {base})"
    return f


SECRETS = []              # ticket and cursor values every shape put in URLs
# What the harness itself captures (a server's stdout, spawn-fcgi's
# messages): not logs the shape writes.
HARNESS_CAPTURES = (".stdout", "spawn-fcgi.log")


def opens_as_nobody(path):
    """Whether user nobody (group nogroup, no other groups) can open path
    for reading: a forked child drops to it and tries."""
    pw = pwd.getpwnam("nobody")
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            try:
                open(path, "rb").close()
                os._exit(0)
            except PermissionError:
                os._exit(1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), f"the check as nobody failed for {path} ({code})"
    return code == 0


def private_log(path):
    """A log is 0640 or stricter and user nobody cannot open it."""
    mode = os.stat(path).st_mode & 0o7777
    assert mode & ~0o640 == 0, f"{path}: mode {mode:04o}, want 0640 or stricter"
    assert not opens_as_nobody(path), f"{path}: user nobody can read it"


def holds_no_secret(path, secrets):
    """No ticket or cursor value (as sent, or percent-encoded) and no
    "ticket=" in the file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    assert "ticket=" not in text, f"{path} logs a ticket parameter"
    for s in secrets:
        for form in {s, quote(s, safe=""), quote(s)}:
            assert form not in text, f"{path} logs the ticket or cursor {s!r}"
    return text


def check_logs(site, secrets, events_path, access_log=True):
    """Every log the shape wrote under its @localstatedir@/log is private
    and holds no ticket or cursor; its access log (access_log: the sample
    names one) lists the event-stream requests, without their query."""
    files = []
    for root, _, names in os.walk(site.path("var", "log")):
        files += [os.path.join(root, n) for n in names if not n.endswith(HARNESS_CAPTURES)]
    assert files, "the shape wrote no log"
    access = []
    for p in sorted(files):
        private_log(p)
        text = holds_no_secret(p, secrets)
        if "access" in os.path.basename(p):
            access.append((p, text))
    if access_log:
        assert len(access) == 1, f"access logs: {[p for p, _ in access]}"
        p, text = access[0]
        assert f"GET {events_path} " in text, \
            f"{p} does not list the event-stream requests ({events_path}):\n{text[-1500:]}"
    return f"{len(files)} files, 0640 or stricter, unreadable by nobody, no ticket or cursor"


def start_site(name, setup):
    """A Site with its server(s) started; a port taken meanwhile by
    someone else (free_port is a guess) gets a new port and a retry."""
    for attempt in range(3):
        site = ms.Site(BASE, name if attempt == 0 else f"{name}-{attempt}", stack)
        try:
            setup(site)
            return site
        except Exception as e:  # reported (with the logs) by run_shape
            if "Address already in use" not in str(e) or attempt == 2:
                site.failed_start = e
                return site
            site.stop()


def column_of(name):
    """The shape's column in docs/api.md's path table."""
    for key in ("htaccess", "lighttpd", "nginx", "apache"):
        if key in name:
            return key
    raise AssertionError(f"no path-table column for {name}")


def redis_refuses_outsiders():
    """Issue 13: the stack's Redis, whose socket the shapes open to every
    user (ms.open_backends_to), answers a client without a password
    (another local account: nobody) with NOAUTH, the event stream
    included."""
    got = []
    for args in (["PING"], ["XRANGE", "roost:{roost}:events", "-", "+"]):
        p = subprocess.run(["runuser", "-u", "nobody", "--", "redis-cli", "-s", stack.redis_socket,
                            *args], env={"PATH": os.environ["PATH"]}, capture_output=True, timeout=10)
        out = p.stdout.decode(errors="replace").strip()
        assert out.startswith("NOAUTH"), f"redis-cli {args[0]} as nobody, no password: {out!r}"
        got.append(f"{args[0]} {out.split()[0]}")
    return ", ".join(got)


def run_shape(name, setup, events, prefix="", after=None):
    use_relay(events == "relay")
    t0 = time.monotonic()
    site = start_site(name, setup)
    failed = False
    left = []
    try:
        if site.failed_start is not None:
            raise site.failed_start
        t1 = time.monotonic()
        target = Target(site.port, ADMIN_EMAIL, ADMIN_PASSWORD,
                        served_by_relay if events == "relay" else None,
                        prefix, BODY_LIMIT, column_of(name))
        findings = scenario(target, events)
        SECRETS.extend(target.secrets)
        if events == "relay":
            findings.update(capacity(site.port))
        findings["redis as nobody, no password"] = redis_refuses_outsiders()
        if after is not None:
            findings.update(after(site))
        findings["timing"] = f"start {t1 - t0:.1f}s, scenario {time.monotonic() - t1:.1f}s"
        for k, v in findings.items():
            sys.stdout.write(f"# {name}: {k}: {v}\n")
        # The logs are complete once the server has stopped (lighttpd
        # buffers its access log).
        t2 = time.monotonic()
        left = site.stop()
        sys.stdout.write(f"# {name}: stopped in {time.monotonic() - t2:.1f}s\n")
        # A user's folder (htaccess-cgi) has no say in the host's access log.
        logs = check_logs(site, target.secrets, prefix + "/api/v1/events",
                          access_log=not name.startswith("htaccess"))
        sys.stdout.write(f"# {name}: logs: {logs}\n")
    except BaseException:
        failed = True
        sys.stdout.write(f"# {name}: logs of the shape (last lines):\n")
        for line in site.log_tails().splitlines():
            sys.stdout.write(f"#   {line}\n")
        raise
    finally:
        if site.procs or site.worker_pids:
            t2 = time.monotonic()
            left = site.stop()
            sys.stdout.write(f"# {name}: stopped in {time.monotonic() - t2:.1f}s\n")
        LEFT_RUNNING.extend((name, pid, comm) for pid, comm in left)
        if not os.environ.get("ROOST_KEEP_TMP"):
            shutil.rmtree(site.dir, ignore_errors=True)
    if left and not failed:
        raise AssertionError(f"{name}: still running after the server stopped: {left}")


# ----------------------------------------------------------------- shapes

def apache_site(site, template, defines=(), modules=()):
    conf = site.apache_wrapper(site.render(template), modules=modules)
    site.start_apache(conf, defines)


def fcgid_site(site, template):
    """A mod_fcgid file as its head says to install it: the wrapper and
    roost.conf for suexec, and `a2enmod suexec`."""
    site.install_fcgid_wrapper()
    apache_site(site, template, modules=("suexec",))


def workers_run_as_roost(site):
    """Every roost.fcgi process of the shape runs as roost:roost, www-data
    cannot read the configuration they were given, and what they log
    reaches Apache's main error log (mod_fcgid hands them its stderr)."""
    pw = pwd.getpwnam(ms.SUEXEC_USER)
    workers = ms.roost_fcgi_workers(site.dir)
    assert workers, "no roost.fcgi process runs under the shape"
    for w in workers:
        assert w.uids == (pw.pw_uid,) * 4 and w.gids == (pw.pw_gid,) * 4, \
            f"roost.fcgi pid {w.pid} runs as uid {w.uids}, gid {w.gids} (real, effective, " \
            f"saved, fs), not as {ms.SUEXEC_USER} ({pw.pw_uid}:{pw.pw_gid})"
    configs = sorted({w.config or "none" for w in workers})
    assert configs == [site.config], f"the workers' configuration: {configs}, not {site.config}"
    assert not ms.readable_by(ms.WEB_USER, site.config), \
        f"{ms.WEB_USER} can read the workers' {site.config}"
    st = os.stat(site.config)
    main_log = site.path("var", "log", "apache2", "error.log")
    with open(main_log, encoding="utf-8", errors="replace") as f:
        log = f.read()
    for w in workers:
        assert f"roost.fcgi[{w.pid}]" in log, f"nothing of roost.fcgi pid {w.pid} in {main_log}"
    return {"workers": f"{len(workers)} roost.fcgi as {ms.SUEXEC_USER} "
                       f"({pw.pw_uid}:{pw.pw_gid}); roost.conf {oct(st.st_mode & 0o777)} "
                       f"{st.st_uid}:{st.st_gid}, {ms.WEB_USER} cannot read it; "
                       f"their log in Apache's main error log"}


@test
def templates_use_only_the_install_tokens():
    names = ["apache-fcgid.conf.in", "apache-fcgid-norelay.conf.in", "apache-proxy-fcgi.conf.in",
             "apache-cgi.conf.in", "htaccess-cgi.in", "lighttpd.conf.in", "nginx.conf.in",
             "roost.fcgi-wrapper.in"]
    present = sorted(n for n in os.listdir(ms.CONF_DIR) if n.endswith(".in")
                     and not n.endswith("-dev.conf.in"))
    assert present == sorted(names), f"httpd-conf templates: {present}"
    for n in names:
        extra = ms.template_tokens(n) - set(ms.TOKENS)
        assert not extra, f"{n}: tokens outside the install set: {extra}"
    assert os.path.isfile(os.path.join(ms.CONF_DIR, "README.md"))


@test
def apache_fcgid():
    run_shape("apache-fcgid", lambda s: fcgid_site(s, "apache-fcgid.conf.in"), "relay",
              after=workers_run_as_roost)


@test
def apache_proxy_fcgi():
    def setup(s):
        s.spawn_fcgi(workers=2)
        apache_site(s, "apache-proxy-fcgi.conf.in")
    run_shape("apache-proxy-fcgi", setup, "relay")


@test
def lighttpd():
    def setup(s):
        conf = s.lighttpd_wrapper(s.render("lighttpd.conf.in"))
        s.start_lighttpd(conf)
    run_shape("lighttpd", setup, "relay")


@test
def nginx():
    def setup(s):
        s.spawn_fcgi(workers=2)
        # nginx's listen takes address:port: loopback only in this test.
        conf = s.nginx_wrapper(s.render("nginx.conf.in", {"PORT": f"127.0.0.1:{s.port}"}))
        s.start_nginx(conf)
    run_shape("nginx", setup, "relay")


@test
def apache_fcgid_norelay():
    run_shape("apache-fcgid-norelay", lambda s: fcgid_site(s, "apache-fcgid-norelay.conf.in"),
              "worker", after=workers_run_as_roost)


@test
def apache_proxy_fcgi_norelay():
    def setup(s):
        # SSE + long-poll hold two workers; the REST calls need more.
        s.spawn_fcgi(workers=4)
        apache_site(s, "apache-proxy-fcgi.conf.in", defines=["ROOST_NO_RELAY"])
    run_shape("apache-proxy-fcgi-norelay", setup, "worker")


@test
def nginx_norelay():
    """The shipped server block with its relay location deleted, as its
    comment tells: roost.fcgi serves the events through fastcgi_pass,
    buffered by default, and they stream only because nginx honours
    Roost's "X-Accel-Buffering: no"."""
    def setup(s):
        s.spawn_fcgi(workers=4)
        conf = s.render("nginx.conf.in", {"PORT": f"127.0.0.1:{s.port}"})
        with open(conf, encoding="utf-8") as f:
            text = f.read()
        cut = re.sub(r"\n\tlocation = /api/v1/events \{.*?\n\t\}\n", "\n", text, flags=re.S)
        assert cut != text and "proxy_pass" not in cut, "the relay location was not found"
        with open(conf, "w", encoding="utf-8") as f:
            f.write(cut)
        s.start_nginx(s.nginx_wrapper(conf))
    run_shape("nginx-norelay", setup, "worker")


@test
def apache_cgi():
    run_shape("apache-cgi", lambda s: apache_site(s, "apache-cgi.conf.in"), "worker")


@test
def htaccess_cgi():
    """A user's folder as the .htaccess file describes it: the web client
    and roost.cgi copied in, the rendered .htaccess; the host's config is
    Debian's userdir.conf for that folder, plus ExecCGI."""
    def setup(s):
        folder = s.path("public_html", "chat")
        shutil.copytree(os.path.join(ms.SRC_DIR, "web"), folder)
        shutil.copy2(os.path.join(ms.BUILD_DIR, "roost.cgi"), os.path.join(folder, "roost.cgi"))
        shutil.copy2(s.render("htaccess-cgi.in"), os.path.join(folder, ".htaccess"))
        for root, dirs, files in os.walk(s.path("public_html")):
            os.chmod(root, 0o755)
            for fn in files:
                os.chmod(os.path.join(root, fn), 0o755 if fn.endswith(".cgi") else 0o644)
        docroot = s.path("htdocs")
        os.makedirs(docroot, exist_ok=True)
        host = f"""# The host's side (what a shared host's admin has): Debian's
# userdir.conf settings for the folder, with CGI allowed, and the banners
# off as the .htaccess file's head asks of the host.
ServerTokens Prod
ServerSignature Off
DocumentRoot "{docroot}"
<Directory "{docroot}">
	Require all granted
</Directory>
ErrorLog "{s.path('var', 'log', 'apache2', 'host-error.log')}"
Alias "/~roost" "{s.path('public_html')}"
<Directory "{s.path('public_html')}">
	AllowOverride FileInfo AuthConfig Limit Indexes
	Options MultiViews Indexes SymLinksIfOwnerMatch IncludesNoExec ExecCGI
	Require method GET POST OPTIONS
</Directory>
"""
        conf = s.apache_wrapper(extra=host)
        s.start_apache(conf)
    run_shape("htaccess-cgi", setup, "worker", prefix="/~roost/chat")


@test
def stack_logs_are_private():
    """scripts/stack's logs (./roost up's var/log): the relay's, which
    served every relay shape's event requests, and lighttpd-dev's, with a
    ticket and a cursor sent through it now: 0640 or stricter, unreadable
    by nobody, no ticket or cursor, the event request in the access log.
    Neither the relay nor lighttpd-dev names a version in Server."""
    use_relay(True)
    tok = api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
    _, _, rooms = api.get(stack, "/rooms", token=tok)
    cursor = rooms["event_cursor"]
    s, _, tk = api.post(stack, "/events/ticket", token=tok)
    assert s == 201, (s, tk)
    secrets = SECRETS + [tk["ticket"], cursor]
    r = longpoll(stack.port, last_event_id=cursor, timeout=0, params={"ticket": tk["ticket"]})
    assert r.status == 200, (r.status, r.raw[:300])
    assert not re.search(r"\d", r.headers.get("server", "")), f"lighttpd-dev: {r.headers}"
    with urllib.request.urlopen(stack.relay_url("/relay/health"), timeout=5) as resp:
        server = resp.headers.get("Server", "")
    assert not re.search(r"\d", server), f"the relay's Server: {server!r}"
    logdir = os.path.join(stack.dir, "log")
    access = os.path.join(logdir, "access.log")
    deadline = time.monotonic() + 10   # lighttpd writes its access log within a few seconds
    while True:
        with open(access, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if "GET /api/v1/events" in text:
            break
        assert time.monotonic() < deadline, f"{access} does not list the event request"
        time.sleep(0.5)
    holds_no_secret(access, secrets)
    assert "GET /api/v1/events " in text, f"{access}: {text[-1000:]}"
    names = sorted(os.listdir(logdir))
    for n in ("relay.log", "access.log", "error.log", "worker.log"):
        assert n in names, f"{logdir}: {names}"
    for n in names:
        private_log(os.path.join(logdir, n))
        holds_no_secret(os.path.join(logdir, n), secrets)
    mode = os.stat(logdir).st_mode & 0o777
    assert mode & ~0o750 == 0, f"{logdir}: mode {mode:04o}"


@test
def nothing_left_running():
    ms.assert_nothing_left(BASE, LEFT_RUNNING)


if __name__ == "__main__":
    import atexit
    atexit.register(ms.cleanup, BASE)
    run_tests(stack)
