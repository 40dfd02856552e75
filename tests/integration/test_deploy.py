#!/usr/bin/python3
"""Integration: deploying Roost (docs/deploy.md).

- roost.fcgi under systemd socket activation: the listening socket as fd 3
  with LISTEN_PID/LISTEN_FDS, spoken to with a small FastCGI client; a
  LISTEN_PID naming another process is ignored.
- `make install DESTDIR=... prefix=/usr sysconfdir=/etc`: the tree, the
  rendered samples and units (no @tokens@ left), man pages that groff
  renders without a warning, roost.conf kept when edited (on reinstall and
  uninstall), every config key documented, and the systemd units passing
  `systemd-analyze verify` (installed without DESTDIR, so their paths are
  real).
- roostctl check's relay and stream checks: ok through the stack's
  lighttpd (which streams), FAIL naming the fix behind a buffering nginx
  or lighttpd, ok again behind nginx with proxy_buffering off, 401 advice
  when the Authorization header is dropped.
"""
import os
import re
import secrets
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import time

import api
from harness import (BUILD_DIR, REPO, Skip, Stack, free_port, run_tests, start_listening, test,
                     wait_until)

stack = Stack(workers=2, relay=True)
FCGI = os.path.join(BUILD_DIR, "roost.fcgi")
CTL = os.path.join(BUILD_DIR, "roostctl")
TOKEN = re.compile(r"@[A-Za-z_]+@")
SAMPLES = ("apache-fcgid.conf", "apache-fcgid-norelay.conf", "apache-proxy-fcgi.conf",
           "apache-cgi.conf", "htaccess-cgi", "lighttpd.conf", "nginx.conf")
UNITS = ("roost-fcgi.socket", "roost-fcgi@.service", "roost-relay.service",
         "roost-jobs.service", "roost-jobs.timer")
MANS = ("man1/roostctl.1", "man8/roost-relay.8", "man8/roost.fcgi.8")


# ------------------------------------------------------------ FastCGI client

FCGI_BEGIN, FCGI_END, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR = 1, 3, 4, 5, 6, 7


def _record(rtype, content, rid=1):
    return struct.pack("!BBHHBx", 1, rtype, rid, len(content), 0) + content


def _pair(name, value):
    out = b""
    for n in (len(name), len(value)):
        out += bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)
    return out + name + value


def fcgi_get(path_or_sock, uri, timeout=10):
    """One FastCGI GET (responder role) on a unix socket: (status, headers,
    body). Raises socket.timeout when nobody answers in time."""
    if isinstance(path_or_sock, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path_or_sock)
    else:
        s = path_or_sock
    params = {"REQUEST_METHOD": "GET", "REQUEST_URI": uri, "SCRIPT_NAME": "",
              "PATH_INFO": uri.split("?")[0], "QUERY_STRING": uri.partition("?")[2],
              "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
              "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
              "HTTP_HOST": "localhost", "CONTENT_LENGTH": "0"}
    enc = b"".join(_pair(k.encode(), v.encode()) for k, v in params.items())
    with s:
        s.sendall(_record(FCGI_BEGIN, struct.pack("!HB5x", 1, 0)) + _record(FCGI_PARAMS, enc) +
                  _record(FCGI_PARAMS, b"") + _record(FCGI_STDIN, b""))
        buf, out = b"", b""
        while True:
            while len(buf) < 8 or len(buf) < 8 + struct.unpack("!H", buf[4:6])[0] + buf[6]:
                chunk = s.recv(65536)
                if not chunk:
                    raise AssertionError(f"FastCGI connection closed early; got {out[:200]!r}")
                buf += chunk
            _, rtype, _, clen, plen = struct.unpack("!BBHHB", buf[:7])
            content, buf = buf[8:8 + clen], buf[8 + clen + plen:]
            if rtype == FCGI_STDOUT:
                out += content
            elif rtype == FCGI_END:
                break
    head, _, body = out.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, body


def listening_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    return s


def fcgi_env():
    e = stack.env()
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        e.pop(k, None)
    return e


def start_activated(fd3, listen_pid, stdin=subprocess.DEVNULL, log=None):
    """roost.fcgi with fd3 as its fd 3 and LISTEN_FDS=1; listen_pid is a
    shell word: "$$" (the process itself, as `exec` keeps the pid) or
    another number."""
    n = fd3.fileno()
    move = "" if n == 3 else f"exec 3<&{n} {n}<&-; "
    script = f'{move}LISTEN_PID={listen_pid} LISTEN_FDS=1 exec "$0"'
    # bash: dash takes single-digit descriptors only
    return subprocess.Popen(["/bin/bash", "-c", script, FCGI], env=fcgi_env(), stdin=stdin,
                            stdout=subprocess.DEVNULL, stderr=log or subprocess.PIPE,
                            pass_fds=(n,), start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@test
def fcgi_serves_the_socket_systemd_passes():
    d = tempfile.mkdtemp(dir=stack.dir)
    path = os.path.join(d, "act.sock")
    with listening_unix(path) as ls, open(os.path.join(d, "fcgi.log"), "wb") as log:
        proc = start_activated(ls, "$$", log=log)
    try:
        st, hdrs, body = wait_until(lambda: fcgi_get(path, "/api/v1/health"), timeout=15,
                                    what="an answer over the activated socket")
        assert st == 200, (st, body)
        assert hdrs.get("content-type", "").startswith("application/json"), hdrs
        assert b'"status":"ok"' in body.replace(b" ", b""), body
        # the same process serves one request after another
        assert fcgi_get(path, "/api/v1/health")[0] == 200
        assert proc.poll() is None
    finally:
        stop(proc)
    assert proc.returncode == 0, proc.returncode


@test
def fcgi_ignores_listen_fds_meant_for_another_process():
    d = tempfile.mkdtemp(dir=stack.dir)
    path3 = os.path.join(d, "fd3.sock")
    path0 = os.path.join(d, "fd0.sock")
    # fd 0 not a socket: the variables are ignored, so nothing to serve
    with listening_unix(os.path.join(d, "alone.sock")) as s3:
        proc = start_activated(s3, "1")
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 64, (proc.returncode, err)
    assert b"fd 0 is not a FastCGI socket" in err, err
    # fd 0 a listening socket: served, and fd 3 left alone
    with listening_unix(path3) as s3, listening_unix(path0) as s0, \
            open(os.path.join(d, "fcgi.log"), "wb") as log:
        proc = start_activated(s3, str(os.getpid()), stdin=s0, log=log)
        try:
            st, _, body = wait_until(lambda: fcgi_get(path0, "/api/v1/health"), timeout=15,
                                     what="an answer on fd 0")
            assert st == 200, (st, body)
            try:
                fcgi_get(path3, "/api/v1/health", timeout=1.5)
            except (socket.timeout, TimeoutError):
                pass
            else:
                raise AssertionError("roost.fcgi served fd 3 with LISTEN_PID of another process")
        finally:
            stop(proc)


@test
def fcgi_and_relay_log_to_a_file_of_their_own_with_l():
    """-L: spawn-fcgi sends the workers' stderr to /dev/null, so a config
    error was only "child exited with: 78". With -L the lines go to a file
    made 0640, appended to by every process; a file that cannot be opened
    is exit status 73 with the reason on stderr."""
    d = tempfile.mkdtemp(dir=stack.dir)
    os.chmod(d, 0o755)
    log = os.path.join(d, "roost-fcgi.log")
    sock = os.path.join(d, "l.sock")
    old = os.umask(0o022)
    try:
        proc = subprocess.Popen([FCGI, "-s", sock, "-L", log], env=fcgi_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
    finally:
        os.umask(old)
    try:
        wait_until(lambda: os.path.exists(sock) or proc.poll() is not None, timeout=15,
                   what="roost.fcgi -L listening")
        st, _, _ = wait_until(lambda: fcgi_get(sock, "/api/v1/health"), timeout=15,
                              what="roost.fcgi -L answering")
        assert st == 200
    finally:
        stop(proc)
    assert proc.stderr.read() == b"", "stderr stays empty: the lines went to the file"
    mode = stat.S_IMODE(os.stat(log).st_mode)
    assert mode == 0o640, oct(mode)
    with open(log) as f:
        text = f.read()
    assert re.search(r"roost\.fcgi\[\d+\] info ready", text), text
    # a broken config: the reason is in the file, not lost
    e = fcgi_env()
    e["ROOST_JWT_SECRET"] = "short"
    p = subprocess.run([FCGI, "-s", sock, "-L", log], env=e, capture_output=True, timeout=30)
    assert p.returncode == 78, p
    with open(log) as f:
        tail = f.read()[len(text):]
    assert "cannot start" in tail and "ROOST_JWT_SECRET" in tail, tail
    # appended, not replaced; a mode set by the admin is kept
    os.chmod(log, 0o600)
    p = subprocess.run([FCGI, "-s", sock, "-L", log], env=e, capture_output=True, timeout=30)
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    with open(log) as f:
        assert f.read().startswith(text)
    # the relay takes -L too
    rlog = os.path.join(d, "relay.log")
    p = subprocess.run([os.path.join(BUILD_DIR, "roost-relay"), "-L", rlog, "-l", "127.0.0.1:1"],
                       env=e, capture_output=True, timeout=30)
    assert p.returncode == 78 and p.stderr == b"", p
    assert stat.S_IMODE(os.stat(rlog).st_mode) == 0o640
    with open(rlog) as f:
        assert "roost-relay" in f.read()
    # a log that cannot be opened
    for prog in (FCGI, os.path.join(BUILD_DIR, "roost-relay")):
        p = subprocess.run([prog, "-L", os.path.join(d, "no", "such", "dir.log")], env=fcgi_env(),
                           capture_output=True, timeout=30)
        assert p.returncode == 73, (prog, p)
        assert b"cannot open the log" in p.stderr and b"No such file" in p.stderr, p.stderr


# ------------------------------------------------------------ without systemd

DEPLOY_MD = os.path.join(REPO, "docs", "deploy.md")


def without_systemd_row(unit):
    """The backticked commands of the "Without systemd" table's row for unit."""
    with open(DEPLOY_MD, encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Without systemd\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        if line.startswith(f"| `{unit}`"):
            return re.findall(r"`([^`]+)`", line.split("|")[2])
    raise AssertionError(f"deploy.md, Without systemd: no row for {unit}")


@test
def spawn_fcgi_as_deploy_md_says_starts_and_stops_every_worker():
    """The workers without systemd, as the table in deploy.md's "Without
    systemd" gives them: spawn-fcgi with a pid file naming every worker,
    and a stop command that ends them all (an upgrade, a change to
    roost.conf). The row's own words are run, with only the paths moved
    into a temp folder and the user (roost) replaced by nobody."""
    cmds = without_systemd_row("roost-fcgi.socket")
    spawn = next((c for c in cmds if c.startswith("spawn-fcgi ")), None)
    assert spawn, cmds
    m = re.search(r" -P (\S+)", spawn)
    assert m, f"no pid file (-P) in the documented spawn-fcgi command: {spawn}"
    pidfile = m.group(1)
    stop_cmd = next((c for c in cmds if pidfile in c and "kill" in c), None)
    assert stop_cmd, f"no stop command that reads {pidfile}: {cmds}"
    workers = int(re.search(r" -F (\d+)", spawn).group(1))

    d = tempfile.mkdtemp(prefix="roost-spawn-", dir="/tmp")
    os.chmod(d, 0o755)
    try:
        logdir = os.path.join(d, "log")
        os.mkdir(logdir)
        shutil.chown(logdir, "nobody", "nogroup")
        conf = os.path.join(d, "roost.conf")
        with open(conf, "w") as f:
            known = set(config_keys())
            for k, v in fcgi_env().items():
                if k in known:
                    f.write(f"{k} = {v}\n")
        os.chmod(conf, 0o644)
        moved = {"/run/roost": d, "/var/log/roost": logdir, "/etc/roost/roost.conf": conf,
                 "/usr/local/bin/roost.fcgi": FCGI, "-u roost -g roost": "-u nobody -g nogroup"}
        for a, b in moved.items():
            spawn, stop_cmd = spawn.replace(a, b), stop_cmd.replace(a, b)
        pidfile = pidfile.replace("/run/roost", d)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
        p = subprocess.run(["/bin/sh", "-c", spawn], env=env, capture_output=True, timeout=30)
        if p.returncode != 0 and os.path.exists(os.path.join(logdir, "fcgi.log")):
            with open(os.path.join(logdir, "fcgi.log")) as f:
                raise AssertionError(f"{p}\n{f.read()[-2000:]}")
        assert p.returncode == 0, p
        with open(pidfile) as f:
            pids = [int(x) for x in f.read().split()]
        try:
            assert len(pids) == workers, (pids, workers)
            def argv0(pid):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    return f.read().split(b"\0")[0]
            # spawn-fcgi writes each pid between fork and exec
            wait_until(lambda: all(argv0(pid) == FCGI.encode() for pid in pids), timeout=15,
                       what="every pid in the file a roost.fcgi worker")
            sock = re.search(r" -s (\S+)", spawn).group(1)
            st, _, body = wait_until(lambda: fcgi_get(sock, "/api/v1/health"), timeout=15,
                                     what="a worker answering on the socket")
            assert st in (200, 503), (st, body)
            p = subprocess.run(["/bin/sh", "-c", stop_cmd], env=env, capture_output=True,
                               timeout=30)
            assert p.returncode == 0, p
            wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids),
                       timeout=15, what="every worker gone after the documented stop")
        finally:
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def lighttpd_socket_folder_has_a_way_without_systemd():
    """lighttpd's step 2 makes /run/roost with systemd-tmpfiles, which a
    host without systemd (a container, a chroot) lacks, as it lacks
    /etc/tmpfiles.d. The step must give a command that needs neither, and
    that command must make the folder www-data's, mode 0750."""
    with open(DEPLOY_MD, encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## lighttpd\n", 1)[1].split("\n## ", 1)[0]
    step2 = section.split("\n2. ", 1)[1].split("\n3. ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", step2, re.S)
    plain = [b for b in blocks if "systemd" not in b and "tmpfiles" not in b]
    assert plain, "lighttpd step 2 gives only systemd-tmpfiles"
    d = tempfile.mkdtemp(prefix="roost-run-", dir="/tmp")
    try:
        cmd = plain[0].strip().replace("/run/roost", os.path.join(d, "roost"))
        p = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, timeout=30)
        assert p.returncode == 0, p
        st = os.stat(os.path.join(d, "roost"))
        import pwd
        assert pwd.getpwuid(st.st_uid).pw_name == "www-data", st
        assert stat.S_IMODE(st.st_mode) == 0o750, oct(st.st_mode)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------ make install

def make(*args, timeout=600):
    env = dict(os.environ)
    # not the jobserver or variables of a `make check` we may run under
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR"):
        env.pop(k, None)
    p = subprocess.run(["make", "-s", "-C", BUILD_DIR, *args], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, f"make {' '.join(args)}: exit {p.returncode}\n" \
        f"{p.stdout.decode(errors='replace')[-3000:]}{p.stderr.decode(errors='replace')[-3000:]}"
    return p


DEST = tempfile.mkdtemp(prefix="roost-dest-", dir="/tmp")
# (the unit folder too: configure may have been given an absolute one)
PATHS = ("prefix=/usr", "sysconfdir=/etc", "localstatedir=/var", "runstatedir=/run",
         "systemdsystemunitdir=/usr/lib/systemd/system")


def dest(*parts):
    return os.path.join(DEST, *parts)


def templates(folder):
    return sorted(f[:-3] for f in os.listdir(os.path.join(REPO, folder))
                  if f.endswith(".in") and not f.endswith("-dev.conf.in"))


RENDERED = {"@bindir@": "/usr/bin", "@pkgdatadir@": "/usr/share/roost", "@sysconfdir@": "/etc",
            "@runstatedir@": "/run", "@localstatedir@": "/var", "@PORT@": "80",
            "@SERVER_NAME@": "chat.example.org", "@RELAY@": "127.0.0.1:8090",
            "@TLS_PORT@": "443", "@TLS_CERT_DIR@": "/etc/letsencrypt/live/chat.example.org",
            "@SUEXEC_DIR@": "/var/www/roost-fcgid"}


def rendered_as_expected(template, installed):
    """installed is template with exactly the tokens of RENDERED replaced."""
    with open(template, encoding="utf-8") as f:
        want = f.read()
    for k, v in RENDERED.items():
        want = want.replace(k, v)
    with open(installed, encoding="utf-8") as f:
        got = f.read()
    assert got == want, f"{installed} is not {template} rendered"


def no_tokens(path):
    with open(path, encoding="utf-8") as f:
        left = TOKEN.findall(f.read())
    assert not left, f"{path}: unrendered {sorted(set(left))}"


@test
def make_install_lays_out_the_tree():
    make("install", f"DESTDIR={DEST}", *PATHS)
    for b in ("roost.fcgi", "roost.cgi", "roostctl", "roost-relay"):
        assert os.access(dest("usr/bin", b), os.X_OK), b
    sql = sorted(f for f in os.listdir(os.path.join(REPO, "sql")) if f.endswith(".sql"))
    assert sorted(os.listdir(dest("usr/share/roost/sql"))) == sql
    web = os.path.join(REPO, "web")
    for root, _, files in os.walk(web):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), web)
            assert os.path.isfile(dest("usr/share/roost/web", rel)), rel
    assert os.path.isfile(dest("usr/share/roost/web/index.html"))
    # httpd-conf: every template rendered, nothing left to fill in
    hc = dest("usr/share/roost/httpd-conf")
    want = templates("httpd-conf")
    got = sorted(f for f in os.listdir(hc) if os.path.isfile(os.path.join(hc, f)))
    assert got == want, (got, want)
    # the samples docs/deploy.md walks through
    deploy = open(os.path.join(REPO, "docs", "deploy.md")).read()
    for name in SAMPLES:
        assert name in got, f"httpd-conf/{name}.in is missing"
        assert f"`{name}`" in deploy, f"docs/deploy.md does not mention {name}"
    for f in got:
        no_tokens(os.path.join(hc, f))
        rendered_as_expected(os.path.join(REPO, "httpd-conf", f + ".in"), os.path.join(hc, f))
    assert sorted(os.listdir(os.path.join(hc, "errors"))) == \
        sorted(os.listdir(os.path.join(REPO, "httpd-conf", "errors")))
    # units
    ud = dest("usr/lib/systemd/system")
    assert sorted(os.listdir(ud)) == sorted(UNITS) == templates("systemd"), os.listdir(ud)
    for u in UNITS:
        no_tokens(os.path.join(ud, u))
        rendered_as_expected(os.path.join(REPO, "systemd", u + ".in"), os.path.join(ud, u))
    sock = open(os.path.join(ud, "roost-fcgi.socket")).read()
    assert "ListenStream=/run/roost/roost.fcgi.sock" in sock and "SocketMode=0660" in sock, sock
    svc = open(os.path.join(ud, "roost-fcgi@.service")).read()
    assert "ExecStart=/usr/bin/roost.fcgi -c %d/roost.conf" in svc, svc
    assert "LoadCredential=roost.conf:/etc/roost/roost.conf" in svc
    relay = open(os.path.join(ud, "roost-relay.service")).read()
    for line in ("DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
                 "MemoryDenyWriteExecute=yes", "LockPersonality=yes",
                 "ExecStart=/usr/bin/roost-relay -c %d/roost.conf -l 127.0.0.1:8090"):
        assert line in relay, line
    # the configuration: not world-readable, rendered
    conf = dest("etc/roost/roost.conf")
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o640, oct(os.stat(conf).st_mode)
    no_tokens(conf)
    rendered_as_expected(os.path.join(REPO, "etc", "roost.conf.in"), conf)
    text = open(conf).read()
    assert "#ROOST_SQL_DIR = /usr/share/roost/sql" in text
    assert "#ROOST_RELAY_URL = http://127.0.0.1:8090" in text


@test
def man_pages_render_without_warnings():
    if not os.path.isfile(dest("usr/bin/roostctl")):
        make("install", f"DESTDIR={DEST}", *PATHS)
    if shutil.which("groff") is None:
        raise Skip("groff is not installed")
    for m in MANS:
        path = dest("usr/share/man", m)
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path], capture_output=True)
        assert p.returncode == 0 and not p.stderr, (m, p.stderr)
        if shutil.which("man"):
            p = subprocess.run(["man", "--warnings", "-l", path], capture_output=True,
                               env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
            assert p.returncode == 0 and not p.stderr, (m, p.stderr)
            assert b"EXIT STATUS" in p.stdout and b"78" in p.stdout, m
    page = subprocess.run(["groff", "-man", "-Tutf8", dest("usr/share/man/man1/roostctl.1")],
                          capture_output=True).stdout.decode("utf-8", "replace")
    page = re.sub(".\b", "", page)
    for cmd in ("migrate", "create-admin", "check", "run-jobs", "routes"):
        assert cmd in page, cmd
    for opt, page_name in (("-s", "man8/roost.fcgi.8"), ("-w", "man8/roost-relay.8")):
        assert f"\\{opt}" in open(dest("usr/share/man", page_name)).read(), (opt, page_name)


def config_keys():
    src = open(os.path.join(REPO, "lib", "config.c")).read()
    keys = re.findall(r'(?:STR|NUM)\("(ROOST_[A-Z0-9_]+)"', src)
    assert len(keys) >= 18, keys
    return keys


@test
def roost_conf_documents_every_key_and_parses_uncommented():
    conf = dest("etc/roost/roost.conf")
    if not os.path.isfile(conf):
        make("install", f"DESTDIR={DEST}", *PATHS)
    text = open(conf).read()
    doc = open(os.path.join(REPO, "docs", "configuration.md")).read()
    for k in config_keys():
        assert re.search(rf"^#{k} =", text, re.M), f"roost.conf lacks {k}"
        assert f"`{k}`" in doc, f"docs/configuration.md lacks {k}"
    # every documented line, uncommented, is a valid setting
    lines = []
    for line in text.splitlines():
        m = re.match(r"^#(ROOST_[A-Z0-9_]+ = .*)$", line)
        if m:
            lines.append(m.group(1))
    lines.append(f"ROOST_JWT_SECRET = {secrets.token_hex(32)}")
    path = os.path.join(stack.dir, "uncommented.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env.update({"ROOST_DATABASE_URL": "host=/nonexistent dbname=x connect_timeout=1",
                "ROOST_REDIS_URL": "unix:///nonexistent/redis.sock",
                "ROOST_PUBLIC_URL": "", "ROOST_RELAY_URL": "none"})
    p = subprocess.run([CTL, "-c", path, "check"], env=env, capture_output=True, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert f"ok   config: {path}".encode() in p.stdout, p.stdout
    # as shipped (all commented out) the file names what is missing
    p = subprocess.run([CTL, "-c", conf, "check"], env={k: v for k, v in env.items()
                                                     if k != "ROOST_DATABASE_URL"},
                       capture_output=True, timeout=60)
    assert p.returncode == 78 and b"ROOST_DATABASE_URL" in p.stderr, (p.returncode, p.stderr)


@test
def reinstall_keeps_an_edited_roost_conf_and_uninstall_too():
    conf = dest("etc/roost/roost.conf")
    if not os.path.isfile(conf):
        make("install", f"DESTDIR={DEST}", *PATHS)
    shipped = open(conf).read()
    with open(conf, "a") as f:
        f.write("ROOST_SCHEMA = edited_by_admin\n")
    make("install", f"DESTDIR={DEST}", *PATHS)
    assert open(conf).read() == shipped + "ROOST_SCHEMA = edited_by_admin\n"
    assert open(conf + ".dist").read() == shipped
    make("uninstall", f"DESTDIR={DEST}", *PATHS)
    left = sorted(os.path.relpath(os.path.join(r, f), DEST)
                  for r, _, fs in os.walk(DEST) for f in fs)
    assert left == ["etc/roost/roost.conf"], left
    # unchanged, it goes with the rest
    os.unlink(conf)
    make("install", f"DESTDIR={DEST}", *PATHS)
    make("uninstall", f"DESTDIR={DEST}", *PATHS)
    left = [f for r, _, fs in os.walk(DEST) for f in fs]
    assert left == [], left


def systemd_verify(prefix, units):
    """systemd-analyze verify of installed units: no warning at all (the
    man pages of Documentation= found below prefix)."""
    p = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, timeout=120,
                       env=dict(os.environ, MANPATH=os.path.join(prefix, "share", "man") + ":",
                                SYSTEMD_LOG_LEVEL="notice"))
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0 and not out.strip(), out


@test
def systemd_units_verify():
    if shutil.which("systemd-analyze") is None:
        raise Skip("systemd-analyze is not installed")
    # Installed for real below a temporary prefix: ExecStart= must name an
    # executable, and Documentation= man pages must be found.
    prefix = tempfile.mkdtemp(prefix="roost-prefix-", dir="/tmp")
    try:
        make("install", f"prefix={prefix}", f"runstatedir={prefix}/run",
             f"systemdsystemunitdir={prefix}/lib/systemd/system")
        ud = os.path.join(prefix, "lib", "systemd", "system")
        units = [os.path.join(ud, u.replace("@.", "@1.")) for u in UNITS]
        systemd_verify(prefix, units)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@test
def second_relay_unit_as_deploy_md_makes_it_verifies():
    """deploy.md, "Failing over between relays": the second relay's unit is
    the installed one copied by the page's sed command. Run as written
    (paths moved below a temporary prefix), it must give a unit that
    systemd-analyze accepts and whose relay listens on the other port."""
    if shutil.which("systemd-analyze") is None:
        raise Skip("systemd-analyze is not installed")
    with open(DEPLOY_MD, encoding="utf-8") as f:
        section = f.read().split("\n### Failing over between relays\n", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```sh\n(sed [^\n]*\\\n[^\n]*roost-relay-2\.service)\n", section)
    assert m, "deploy.md no longer makes the second relay's unit with sed"
    prefix = tempfile.mkdtemp(prefix="roost-prefix-", dir="/tmp")
    try:
        make("install", f"prefix={prefix}", f"runstatedir={prefix}/run",
             f"systemdsystemunitdir={prefix}/lib/systemd/system")
        etc = os.path.join(prefix, "etc", "systemd", "system")
        os.makedirs(etc)
        cmd = m.group(1).replace("/usr/local/lib/systemd/system", f"{prefix}/lib/systemd/system") \
            .replace("/etc/systemd/system", etc)
        p = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, timeout=30)
        assert p.returncode == 0, p
        unit = os.path.join(etc, "roost-relay-2.service")
        with open(unit) as f:
            text = f.read()
        execs = [x for x in text.splitlines() if x.startswith("ExecStart=")]
        assert execs == [f"ExecStart={prefix}/bin/roost-relay -c %d/roost.conf -l 127.0.0.1:8091"], execs
        systemd_verify(prefix, [unit])
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


# ------------------------------------------------------------ roostctl check

def check(env=None, args=()):
    e = stack.env()
    for k in ("ROOST_RELAY_URL", "ROOST_PUBLIC_URL", "ROOST_ADMIN_PASSWORD"):
        e.pop(k, None)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run([CTL, *args, "check"], env=e, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"), \
        time.monotonic() - t0


def good_env(public=None):
    return {"ROOST_RELAY_URL": f"http://127.0.0.1:{stack.relay_port}",
            "ROOST_PUBLIC_URL": public or stack.url_base}


def check_tokens_left():
    return stack.psql("SELECT count(*) FROM roost.api_tokens WHERE name = 'roostctl check'")


class Proxy:
    """A buffering (or not) reverse proxy in front of the stack's lighttpd:
    nginx with the given location lines, or lighttpd with the given
    stream-response-body.

    nginx speaks HTTP/1.0 to its upstream by default (proxy_http_version),
    so the answer is not chunked and ends at close: with proxy_buffering on
    nginx then passes it on only when a buffer fills, which is the stock
    misconfiguration this is about. (A chunked upstream would slip through:
    nginx hands on each complete chunk.)"""

    def __init__(self, kind, lines):
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-", dir=stack.dir)
        self.port = free_port()
        self.log = os.path.join(self.dir, "error.log")
        conf = os.path.join(self.dir, f"{kind}.conf")
        if kind == "nginx":
            if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
                raise Skip("nginx is not installed")
            d = self.dir
            text = f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://127.0.0.1:{stack.port};
            proxy_read_timeout 120s;
            {lines}
        }}
    }}
}}
"""
            argv = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", d, "-e", self.log, "-c", conf]
        else:
            route = "" if "fastcgi.server" in lines else \
                f'proxy.server = ("" => (("host" => "127.0.0.1", "port" => {stack.port})))'
            text = f"""server.modules = ("mod_proxy", "mod_fastcgi")
server.bind = "127.0.0.1"
server.port = {self.port}
server.document-root = "{self.dir}"
server.errorlog = "{self.log}"
{lines}
{route}
"""
            argv = [shutil.which("lighttpd") or "/usr/sbin/lighttpd", "-D", "-f", conf]
        with open(conf, "w") as f:
            f.write(text)
        self.proc = start_listening(argv, self.port, os.path.join(self.dir, "stderr"),
                                    f"{kind} on {self.port}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stop(self.proc)
        return False


@test
def check_passes_through_a_streaming_lighttpd():
    api.make_admin(stack)
    rc, out, err, took = check(good_env())
    assert rc == 0, out + err
    assert f"ok   relay: http://127.0.0.1:{stack.relay_port} answers" in out, out
    assert re.search(r"ok   stream: http://127\.0\.0\.1:\d+/api/v1/events sent its first "
                     r"event-stream bytes after \d+ ms \(unbuffered\), served by roost-relay\n",
                     out), out
    assert re.search(r"ok   api: http://127\.0\.0\.1:\d+/api/v1/me answered 200 to an API token",
                     out), out
    assert took < 10, took
    assert check_tokens_left() == "0", "the temporary API token is gone"
    # a trailing slash and a config file work the same
    path = os.path.join(stack.dir, "check.conf")
    with open(path, "w") as f:
        f.write(f"ROOST_RELAY_URL = http://127.0.0.1:{stack.relay_port}/\n"
                f"ROOST_PUBLIC_URL = \"{stack.url_base}/\"\n")
    rc, out, err, _ = check(args=("-c", path))
    assert rc == 0 and "ok   stream" in out, out + err


@test
def check_fails_when_the_stream_reaches_the_workers_not_the_relay():
    """A web server that hands /api/v1/events to roost.fcgi while a relay
    runs: every stream then holds a worker. The SSE head names who served
    it, and the check compares."""
    d = tempfile.mkdtemp(dir=stack.dir)
    e = fcgi_env()
    # a worker holding the check's stream sees the client gone at its
    # next heartbeat: soon, so that the second check finds one free
    e["ROOST_SSE_HEARTBEAT_S"] = "1"
    socks = [os.path.join(d, f"w{i}.sock") for i in range(2)]
    procs = [subprocess.Popen([FCGI, "-s", p], env=e, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for p in socks]
    hosts = ", ".join(f'("socket" => "{p}", "check-local" => "disable")' for p in socks)
    lines = ('server.stream-response-body = 2\n'
             f'fastcgi.server = ("/api/" => ({hosts}))')
    try:
        for p in socks:
            wait_until(lambda: os.path.exists(p), timeout=15, what=f"roost.fcgi on {p}")
        _check_served_by_workers(lines)
    finally:
        for p in procs:
            stop(p)
    assert check_tokens_left() == "0"


def _check_served_by_workers(lines):
    with Proxy("lighttpd", lines) as px:
        rc, out, err, _ = check(good_env(px.url))
        assert rc == 1, out + err
        assert f"FAIL stream: {px.url}/api/v1/events was served by roost.fcgi, not by " \
               "roost-relay" in out, out
        assert "ok   api:" in out, out
        # without a relay that is the deployment
        time.sleep(1.5)
        rc, out, err, _ = check({"ROOST_RELAY_URL": "none", "ROOST_PUBLIC_URL": px.url})
        assert rc == 0, out + err
        assert "(unbuffered), served by roost.fcgi" in out, out


@test
def check_fails_when_authorization_does_not_reach_the_workers():
    """Apache without CGIPassAuth: mod_fcgid never sees Authorization, but
    the stream goes to the relay through mod_proxy, which passes it, so a
    stream check alone said ok. Here nginx drops the header for all but
    /api/v1/events, as such an Apache does."""
    lines = f"""proxy_set_header Authorization "";
            location /api/v1/events {{
                proxy_pass http://127.0.0.1:{stack.port};
                proxy_set_header Authorization $http_authorization;
                proxy_buffering off;
                proxy_read_timeout 120s;
            }}"""
    with Proxy("nginx", lines) as px:
        rc, out, err, _ = check(good_env(px.url))
    assert rc == 1, out + err
    assert f"FAIL api: {px.url}/api/v1/me answered 401 to a valid API token" in out, out
    assert "CGIPassAuth On" in out, out
    assert "ok   stream:" in out and "served by roost-relay" in out, out
    assert check_tokens_left() == "0"


@test
def check_notes_what_it_skips():
    rc, out, err, _ = check({"ROOST_RELAY_URL": "none"})
    assert rc == 0, out + err
    assert "skip relay: ROOST_RELAY_URL=none" in out, out
    # without a relay the CGI shapes serve the events with roost.cgi: the
    # line must not send their admin looking for roost.fcgi
    assert "roost.fcgi or roost.cgi" in out, out
    assert "skip stream: ROOST_PUBLIC_URL is not set" in out, out
    rc, out, err, _ = check({"ROOST_RELAY_URL": "", "ROOST_PUBLIC_URL": ""})
    assert "skip stream" in out, out


@test
def check_fails_when_the_relay_is_not_there():
    dead = free_port()
    rc, out, err, _ = check({"ROOST_RELAY_URL": f"http://127.0.0.1:{dead}"})
    assert rc == 1, out + err
    assert f"FAIL relay: http://127.0.0.1:{dead}/relay/health" in out, out
    rc, out, err, _ = check({"ROOST_RELAY_URL": os.path.join("unix:" + stack.dir, "no.sock")})
    assert rc == 1 and "FAIL relay: unix:" in out, out
    # unset: the default address is tried; the stack's relay is alive in
    # Redis but elsewhere, which the check says
    try:
        socket.create_connection(("127.0.0.1", 8090), timeout=0.5).close()
        raise Skip("something listens on 127.0.0.1:8090 on this host")
    except OSError:
        pass
    rc, out, err, _ = check()
    assert rc == 1, out + err
    assert "FAIL relay: a roost-relay serves this tenant, but not at http://127.0.0.1:8090" in out, out


@test
def check_rejects_malformed_urls():
    for k, v in (("ROOST_PUBLIC_URL", "chat.example.org"), ("ROOST_PUBLIC_URL", "https://a b"),
                 ("ROOST_RELAY_URL", "https://127.0.0.1:8090"), ("ROOST_RELAY_URL", "unix:")):
        rc, out, err, _ = check({k: v})
        assert rc == 78 and k in err, (k, v, rc, err)


@test
def check_fails_behind_a_buffering_nginx_and_names_the_fix():
    with Proxy("nginx", "proxy_buffering on;\n            "
                        "proxy_ignore_headers X-Accel-Buffering;") as px:
        rc, out, err, took = check(good_env(px.url))
    assert rc == 1, out + err
    assert f"FAIL stream: {px.url}/api/v1/events" in out, out
    assert "no event-stream bytes within 3000 ms" in out or "nothing arrived within 3000 ms" in out, out
    for fix in ("proxy_buffering off", "fastcgi_buffering off", "server.stream-response-body = 2",
                "flushpackets=on", "FcgidOutputBufferSize 0"):
        assert fix in out, (fix, out)
    assert "ok   relay" in out, out
    assert took < 15, took
    assert check_tokens_left() == "0"


@test
def check_passes_behind_nginx_with_buffering_off():
    with Proxy("nginx", "proxy_buffering off;") as px:
        rc, out, err, _ = check(good_env(px.url))
    assert rc == 0, out + err
    assert "ok   stream" in out, out


@test
def check_fails_behind_a_buffering_lighttpd():
    with Proxy("lighttpd", "server.stream-response-body = 0") as px:
        rc, out, err, _ = check(good_env(px.url))
    assert rc == 1, out + err
    assert f"FAIL stream: {px.url}/api/v1/events" in out, out
    assert "server.stream-response-body = 2" in out, out


@test
def check_explains_a_dropped_authorization_header():
    with Proxy("nginx", "proxy_buffering off;\n            "
                        "proxy_set_header Authorization \"\";") as px:
        rc, out, err, _ = check(good_env(px.url))
    assert rc == 1, out + err
    assert "answered 401" in out and "CGIPassAuth On" in out, out


@test
def check_names_a_redirect():
    with Proxy("nginx", "return 301 https://chat.example.org$request_uri;") as px:
        rc, out, err, _ = check(good_env(px.url))
    assert rc == 1, out + err
    assert "answered 301, to https://chat.example.org/api/v1/events" in out, out
    assert check_tokens_left() == "0"


@test
def check_without_an_admin_says_so():
    schema = "deploy_noadmin"
    e = {"ROOST_SCHEMA": schema, "ROOST_RELAY_URL": "none", "ROOST_PUBLIC_URL": stack.url_base}
    p = subprocess.run([CTL, "migrate"], env=dict(stack.env(), **e), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rc, out, err, _ = check(e)
    assert rc == 1 and "roostctl create-admin" in out, out + err


if __name__ == "__main__":
    try:
        run_tests(stack)
    finally:
        shutil.rmtree(DEST, ignore_errors=True)
