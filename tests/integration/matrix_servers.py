#!/usr/bin/python3
"""Web servers for test_matrix.py: render the shipped httpd-conf templates
and run Apache, nginx, lighttpd and spawn-fcgi around them.

    site = Site(base_dir, "nginx", stack)     # folders, roost.conf, a port
    site.render("nginx.conf.in")               # -> path of the rendered file
    site.spawn_fcgi(workers=2)                 # roost.fcgi on the unix socket
    site.start_nginx(rendered)                 # wrapper nginx.conf + nginx
    ...
    site.stop()                                # everything it started

Token values for a site (the same names `make install` fills in):
    @bindir@        $ROOST_BUILD_DIR (roost.fcgi, roost.cgi as built)
    @pkgdatadir@    the source tree ($ROOST_SRC_DIR): its web/ and
                    httpd-conf/errors/ are where an install puts them
    @sysconfdir@    SITE/etc     (SITE/etc/roost/roost.conf, written here)
    @runstatedir@   SITE/run     (SITE/run/roost/roost.fcgi.sock)
    @localstatedir@ SITE/var     (SITE/var/log/apache2, nginx, lighttpd)
    @PORT@          a free port (nginx: 127.0.0.1:PORT, so that it binds
                    loopback only; its `listen` takes address:port)
    @SERVER_NAME@   roost.test
    @RELAY@         127.0.0.1:<the stack's roost-relay port>
    @TLS_PORT@      another free port (the TLS variants; nginx: 127.0.0.1:PORT)
    @TLS_CERT_DIR@  SITE/tls (fullchain.pem, privkey.pem: test_tls.py makes them)
    @SUEXEC_DIR@    /var/www/<this run's folder name>-<site>: a folder
                    below suexec's docroot made by install_fcgid_wrapper
                    (suexec runs nothing outside /var/www) and removed
                    by stop()

Logs: the folders the templates name, with the owners and modes Debian's
packages give them (apache2 0750 root:adm, nginx 0755 root:adm, lighttpd
0750 www-data), and every server (and its configuration check) starts
with LOG_UMASK, the umask docs/deploy.md gives their start environment.

The servers run as root and switch to www-data (Apache, nginx, lighttpd
and what they start); spawn-fcgi runs roost.fcgi as nobody:nogroup with
the socket in group www-data, mode 0660; the mod_fcgid files run it as
the system user roost through Debian's suexec (made here when absent). Everything a site starts is
found again by its folder (in a process's command line or environment)
and stopped by pid.
"""
import ctypes
import glob
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time

from harness import BUILD_DIR, REPO, free_port

SRC_DIR = os.path.abspath(os.environ.get("ROOST_SRC_DIR") or REPO)
CONF_DIR = os.path.join(SRC_DIR, "httpd-conf")
TOKENS = ("bindir", "pkgdatadir", "sysconfdir", "runstatedir", "localstatedir",
          "PORT", "SERVER_NAME", "RELAY", "TLS_PORT", "TLS_CERT_DIR", "SUEXEC_DIR")
TOKEN_RE = re.compile(r"@([A-Za-z_]+)@")

APACHE = "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"
NGINX = "/usr/sbin/nginx"
LIGHTTPD = "/usr/sbin/lighttpd"
SPAWN_FCGI = "/usr/bin/spawn-fcgi"
WEB_USER = "www-data"
WORKER_USER, WORKER_GROUP = "nobody", "nogroup"
# The mod_fcgid files run roost.fcgi as this system user through suexec
# (apache2-suexec-pristine: docroot /var/www, uid and gid at least 100).
SUEXEC_USER = "roost"
SUEXEC_DOCROOT = "/var/www"
SUEXEC_MIN_ID = 100
# The servers get a bare environment: the workers must find their settings
# through what the shipped configuration passes (ROOST_CONFIG, -c), never
# through a ROOST_* variable inherited from this test.
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
# The servers create their logs with open(..., 0644 or 0666) minus the
# umask; docs/deploy.md has them started with this one (UMask=0027), so
# that a log is 0640 and other local users cannot read it.
LOG_UMASK = 0o027
# Log folders as Debian's apache2, nginx and lighttpd packages make them.
LOG_DIRS = {"apache2": (0o750, "root", "adm"), "nginx": (0o755, "root", "adm"),
            "lighttpd": (0o750, "www-data", "www-data")}

# roost.conf keys taken from the stack's env file (lib/config.c rejects
# unknown keys, and the env file also holds the stack's own bookkeeping).
CONFIG_KEYS = ("ROOST_DATABASE_URL", "ROOST_REDIS_URL", "ROOST_SCHEMA", "ROOST_SQL_DIR",
               "ROOST_JWT_SECRET", "ROOST_BODY_LIMIT", "ROOST_LOG_LEVEL",
               "ROOST_SSE_HEARTBEAT_S", "ROOST_SSE_MAX_S", "ROOST_EVENTS_RETAIN")

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Orphans of what we start (spawn-fcgi's workers, Apache's CGI
    processes) become our children, so that we can reap them: this box's
    PID 1 may not, and they would linger as zombies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def reap():
    """Collect every exited child (see become_subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def assert_nothing_left(base, left_running):
    """The last test of a file of shapes: no process outlived its server
    (left_running: (shape, pid, comm) found as each stopped), and none of
    base is still running (those are killed)."""
    assert not left_running, f"processes that outlived their server: {left_running}"
    left = processes_of(base)
    kill_pids([p for p, _ in left], 9)
    assert not left, f"still running: {left}"


def cleanup(base):
    """At exit: kill what runs under base, remove it (unless
    ROOST_KEEP_TMP) and the wrapper folders a failed shape left below
    suexec's docroot, and collect the children."""
    left = processes_of(base)
    kill_pids([p for p, _ in left], 9)
    if not os.environ.get("ROOST_KEEP_TMP"):
        shutil.rmtree(base, ignore_errors=True)
    for d in glob.glob(os.path.join(SUEXEC_DOCROOT, os.path.basename(base) + "-*")):
        shutil.rmtree(d, ignore_errors=True)
    reap()


def template_tokens(name):
    """The @tokens@ a shipped template uses."""
    with open(os.path.join(CONF_DIR, name), encoding="utf-8") as f:
        return set(TOKEN_RE.findall(f.read()))


def render_text(name, values):
    """The template with every token replaced; an unknown token fails."""
    with open(os.path.join(CONF_DIR, name), encoding="utf-8") as f:
        text = f.read()

    def sub(m):
        if m.group(1) not in values:
            raise AssertionError(f"{name}: token @{m.group(1)}@ is not one of {TOKENS}")
        return values[m.group(1)]
    return TOKEN_RE.sub(sub, text)


def suexec_user():
    """(uid, gid) of the system user roost, made as docs/deploy.md makes
    it when absent. The test makes it rather than scripts/install-deps
    (which installs packages only): a fresh CI machine has none, and it is
    never removed again, since another run on the same machine may be
    using it. useradd (passwd, always installed) rather than adduser."""
    try:
        pw = pwd.getpwnam(SUEXEC_USER)
    except KeyError:
        p = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                            SUEXEC_USER], capture_output=True, text=True, timeout=30)
        try:  # a run beside this one may have made it meanwhile
            pw = pwd.getpwnam(SUEXEC_USER)
        except KeyError:
            raise AssertionError(f"useradd {SUEXEC_USER}: {p.stdout}{p.stderr}") from None
    assert pw.pw_uid >= SUEXEC_MIN_ID and pw.pw_gid >= SUEXEC_MIN_ID, \
        f"suexec refuses uid/gid under {SUEXEC_MIN_ID}: {SUEXEC_USER} is {pw.pw_uid}/{pw.pw_gid}"
    assert grp.getgrgid(pw.pw_gid).gr_name == SUEXEC_USER, "roost's group is not roost"
    return pw.pw_uid, pw.pw_gid


def readable_by(user, path):
    """Whether user (with its own group and no others) can open path."""
    pw = pwd.getpwnam(user)
    p = subprocess.run(["/bin/cat", path], user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                       env=CLEAN_ENV, capture_output=True, timeout=10)
    return p.returncode == 0


class Worker:
    """A running roost.fcgi: its ids from /proc/PID/status (real,
    effective, saved, filesystem) and the configuration file it was given
    (-c, else ROOST_CONFIG in its environment)."""

    def __init__(self, pid):
        self.pid = pid
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        self.uids = tuple(int(x) for x in status["Uid"].split())
        self.gids = tuple(int(x) for x in status["Gid"].split())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode("utf-8", "replace").split("\0")
        self.config = argv[argv.index("-c") + 1] if "-c" in argv[:-1] else None
        if self.config is None:
            with open(f"/proc/{pid}/environ", "rb") as f:
                for kv in f.read().decode("utf-8", "replace").split("\0"):
                    if kv.startswith("ROOST_CONFIG="):
                        self.config = kv.split("=", 1)[1]


def roost_fcgi_workers(marker):
    """[Worker] of the live processes whose executable is this build's
    roost.fcgi and whose command line or environment mentions marker."""
    exe = os.path.realpath(os.path.join(BUILD_DIR, "roost.fcgi"))
    out = []
    for pid, _ in processes_of(marker):
        try:
            if os.readlink(f"/proc/{pid}/exe") == exe:
                out.append(Worker(pid))
        except (OSError, KeyError):
            pass  # gone meanwhile
    return out


def open_backends_to(stack):
    """Let unprivileged users (www-data, nobody) reach the stack's
    PostgreSQL and Redis sockets: scripts/stack makes them owner-only, and
    the workers here run as the web server's user, as in production.
    (Test-only: the stack's folder is private to this run.)"""
    os.chmod(stack.dir, 0o755)
    pg = os.path.join(stack.dir, "pg")
    os.chmod(pg, os.stat(pg).st_mode | 0o011)
    for sock in (os.path.join(pg, "run", ".s.PGSQL.5432"), stack.redis_socket):
        os.chmod(sock, 0o777)


def _tail(path, n=25):
    try:
        with open(path, "rb") as f:
            data = f.read()[-12000:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-n:])


def _proc_cmdline_env(pid):
    out = b""
    for name in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                out += f.read() + b"\0"
        except OSError:
            pass
    return out


def _proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None, None
    lp, rp = data.find("("), data.rfind(")")
    return data[lp + 1:rp], data[rp + 2:].split()[0]


def processes_of(marker):
    """[(pid, comm)] of live processes whose command line or environment
    mentions marker (a site's folder)."""
    m = marker.encode()
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        comm, state = _proc_state(int(name))
        if comm is None or state == "Z":
            continue
        if m in _proc_cmdline_env(int(name)):
            out.append((int(name), comm))
    return out


def kill_pids(pids, sig=signal.SIGTERM):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def port_answers(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class ServerError(AssertionError):
    pass


class Site:
    """One deployment shape's folder, values, configuration and servers."""

    def __init__(self, base, name, stack, server_name="roost.test"):
        self.name = name
        self.stack = stack
        self.dir = os.path.join(base, name)
        self.port = free_port()
        self.procs = []          # Popen objects we started (servers)
        self.worker_pids = []    # spawn-fcgi's children
        self.logs = []           # paths worth showing when something fails
        self.failed_start = None  # set by test_matrix.start_site
        d = self.dir
        self.values = {
            "bindir": BUILD_DIR,
            "pkgdatadir": SRC_DIR,
            "sysconfdir": os.path.join(d, "etc"),
            "runstatedir": os.path.join(d, "run"),
            "localstatedir": os.path.join(d, "var"),
            "PORT": str(self.port),
            "SERVER_NAME": server_name,
            "RELAY": f"127.0.0.1:{stack.relay_port}",
            "TLS_PORT": str(free_port()),
            "TLS_CERT_DIR": os.path.join(d, "tls"),
            "SUEXEC_DIR": os.path.join(SUEXEC_DOCROOT, f"{os.path.basename(base)}-{name}"),
        }
        self.suexec_dir = None   # made by install_fcgid_wrapper
        for sub in ("etc/roost", "run/roost", "var/log/apache2", "var/log/nginx",
                    "var/log/lighttpd", "var/cache/lighttpd/uploads", "var/lib/nginx", "conf",
                    "tls", "var/www/letsencrypt/.well-known/acme-challenge"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for root, dirs, _ in os.walk(d):
            for x in dirs:
                os.chmod(os.path.join(root, x), 0o755)
        os.chmod(d, 0o755)
        for sub, (mode, owner, group) in LOG_DIRS.items():
            shutil.chown(os.path.join(d, "var", "log", sub), owner, group)
            os.chmod(os.path.join(d, "var", "log", sub), mode)
        self.config = os.path.join(d, "etc", "roost", "roost.conf")
        self.write_config()

    # -- files -------------------------------------------------------------

    def write_config(self, extra=None):
        """SITE/etc/roost/roost.conf from the stack's settings. Mode 0644:
        the workers run as www-data or nobody (production: 0640 root:group)."""
        lines = ["# test_matrix: written from the stack's env file"]
        for k in CONFIG_KEYS:
            v = self.stack.env_vars.get(k)
            if v is not None:
                lines.append(f'{k} = "{v}"')
        for k, v in (extra or {}).items():
            lines.append(f'{k} = "{v}"')
        with open(self.config, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.config, 0o644)

    def render(self, template, values=None, out_name=None):
        """Render a shipped template with this site's values into SITE/conf."""
        vals = dict(self.values)
        vals.update(values or {})
        text = render_text(template, vals)
        if out_name is None:
            out_name = template[:-3] if template.endswith(".in") else template
        out = os.path.join(self.dir, "conf", out_name)
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(out, 0o644)
        return out

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def install_fcgid_wrapper(self):
        """What the mod_fcgid files' heads tell to do before enabling
        them: the user roost, roost.conf 640 root:roost, and the rendered
        roost.fcgi-wrapper in @SUEXEC_DIR@ (755, both owned by roost)."""
        uid, gid = suexec_user()
        os.chown(self.config, 0, gid)
        os.chmod(self.config, 0o640)
        d = self.values["SUEXEC_DIR"]
        os.mkdir(d, 0o755)
        self.suexec_dir = d
        os.chmod(d, 0o755)
        os.chown(d, uid, gid)
        wrapper = os.path.join(d, "roost.fcgi-wrapper")
        with open(wrapper, "w", encoding="utf-8") as f:
            f.write(render_text("roost.fcgi-wrapper.in", self.values))
        os.chown(wrapper, uid, gid)
        os.chmod(wrapper, 0o755)
        return wrapper

    # -- processes ---------------------------------------------------------

    def _popen(self, argv, log_name):
        log = self.path("var", "log", log_name)
        self.logs.append(log)
        with open(log, "ab") as logf:
            p = subprocess.Popen(argv, env=CLEAN_ENV, stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=logf, cwd=self.dir, start_new_session=True,
                                 umask=LOG_UMASK)
        self.procs.append(p)
        return p

    def _check(self, argv, what):
        p = subprocess.run(argv, env=CLEAN_ENV, capture_output=True, timeout=30, umask=LOG_UMASK)
        if p.returncode != 0:
            raise ServerError(f"{what} rejects the configuration:\n"
                              f"{(p.stdout + p.stderr).decode('utf-8', 'replace')}")

    def _wait_port(self, proc, what, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerError(f"{what} exited ({proc.returncode}) at start:\n" +
                                  self.log_tails())
            if port_answers(self.port):
                return
            time.sleep(0.05)
        raise ServerError(f"{what} does not answer on 127.0.0.1:{self.port}:\n" + self.log_tails())

    def log_tails(self):
        seen, parts = set(), []
        for root, _, files in os.walk(self.path("var", "log")):
            for fn in sorted(files):
                p = os.path.join(root, fn)
                if p not in seen:
                    seen.add(p)
        for p in sorted(seen | set(self.logs)):
            t = _tail(p)
            if t:
                parts.append(f"--- {p}:\n{t}")
        return "\n".join(parts)

    # -- spawn-fcgi --------------------------------------------------------

    def spawn_fcgi(self, workers):
        """roost.fcgi x workers on @runstatedir@/roost/roost.fcgi.sock, as
        the nginx and apache-proxy-fcgi files show it (spawn-fcgi 1.6.4
        refuses "-U root": the socket is owned by the worker user, group
        www-data, mode 0660)."""
        sock = os.path.join(self.values["runstatedir"], "roost", "roost.fcgi.sock")
        pidfile = self.path("run", "spawn-fcgi.pids")
        argv = [SPAWN_FCGI, "-s", sock, "-M", "0660", "-G", WEB_USER,
                "-u", WORKER_USER, "-g", WORKER_GROUP, "-F", str(workers), "-P", pidfile,
                "--", os.path.join(BUILD_DIR, "roost.fcgi"), "-c", self.config]
        log = self.path("var", "log", "spawn-fcgi.log")
        self.logs.append(log)
        with open(log, "ab") as logf:
            p = subprocess.run(argv, env=CLEAN_ENV, stdin=subprocess.DEVNULL, stdout=logf,
                               stderr=subprocess.STDOUT, cwd=self.dir, timeout=30)
        if p.returncode != 0:
            raise ServerError(f"spawn-fcgi failed ({p.returncode}):\n{_tail(log)}")
        with open(pidfile) as f:
            self.worker_pids = [int(x) for x in f.read().split()]
        st = os.stat(sock)
        assert oct(st.st_mode & 0o777) == "0o660", oct(st.st_mode)
        return sock

    # -- Apache ------------------------------------------------------------

    def apache_wrapper(self, include=None, extra="", modules=()):
        """A minimal, self-contained apache2.conf: Debian's modules (and
        the extra ones a shipped file's head tells to a2enmod), our own
        pid/log/runtime folders, loopback only, User www-data; it
        Includes the rendered shipped file unchanged."""
        d = self.path("apache")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        mods = ["mpm_event", "authz_core", "authz_host", "mime", "dir", "alias", "env",
                "setenvif", "rewrite", "headers", "proxy", "proxy_http",
                "proxy_fcgi", "fcgid", "cgid", "reqtimeout"] + list(modules)
        # (mod_log_config and mod_unixd are built into Debian's apache2;
        # reqtimeout is enabled by Debian's default, as here.)
        load = [f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in mods]
        text = f"""# test_matrix: wrapper around one shipped Apache file.
ServerRoot "{d}"
DefaultRuntimeDir "{d}"
PidFile "{d}/apache2.pid"
Mutex file:{d} default
ErrorLog "{self.path('var', 'log', 'apache2', 'error.log')}"
LogLevel warn
# Loopback only; the shipped <VirtualHost *:PORT> takes this address.
Listen 127.0.0.1:{self.port}
ServerName 127.0.0.1
User {WEB_USER}
Group {WEB_USER}
{chr(10).join(load)}
TypesConfig /etc/mime.types
# Server-wide parts of modules (Debian's mods-available/*.conf set these).
FcgidIPCDir "{d}/fcgid"
FcgidProcessTableFile "{d}/fcgid-shm"
ScriptSock "{d}/cgisock"
# As Debian's apache2.conf: nothing is served unless a file grants it.
<Directory />
	Options FollowSymLinks
	AllowOverride None
	Require all denied
</Directory>
AccessFileName .htaccess
<FilesMatch "^\\.ht">
	Require all denied
</FilesMatch>
LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{{Referer}}i\\" \\"%{{User-Agent}}i\\"" combined
{extra}
"""
        if include:
            text += f'Include "{include}"\n'
        conf = os.path.join(d, "apache2.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(text)
        self.logs.append(self.path("var", "log", "apache2", "error.log"))
        return conf

    def start_apache(self, conf, defines=()):
        argv = [APACHE, "-f", conf]
        for dname in defines:
            argv += ["-D", dname]
        self._check(argv + ["-t"], "apache2 -t")
        p = self._popen(argv + ["-DFOREGROUND"], "apache2.stdout")
        self._wait_port(p, "apache2")
        return p

    # -- nginx -------------------------------------------------------------

    def nginx_wrapper(self, include):
        """nginx.conf with an http {} that includes the shipped server
        block; its main and events {} settings are the ones the shipped
        file's head tells to put in /etc/nginx/nginx.conf."""
        d = self.path("nginx")
        os.makedirs(d, exist_ok=True)
        t = self.path("var", "lib", "nginx")
        with open(include, encoding="utf-8") as f:
            head = f.read()
        told = {}
        for key in ("worker_processes", "worker_rlimit_nofile", "worker_connections"):
            m = re.search(rf"^#\s+{key} (\w+);", head, re.M)
            assert m, f"{include}: its head no longer says what to set for {key}"
            told[key] = m.group(1)
        text = f"""# test_matrix: wrapper around the shipped server block.
daemon off;
master_process on;
worker_processes {told['worker_processes']};
worker_rlimit_nofile {told['worker_rlimit_nofile']};
user {WEB_USER} {WEB_USER};
pid {d}/nginx.pid;
error_log {self.path('var', 'log', 'nginx', 'error.log')} warn;
events {{
	worker_connections {told['worker_connections']};
}}
http {{
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	client_body_temp_path {t}/body;
	proxy_temp_path {t}/proxy;
	fastcgi_temp_path {t}/fastcgi;
	uwsgi_temp_path {t}/uwsgi;
	scgi_temp_path {t}/scgi;
	include {include};
}}
"""
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(text)
        return conf

    def start_nginx(self, conf):
        errlog = self.path("var", "log", "nginx", "startup.log")
        self.logs.append(errlog)
        argv = [NGINX, "-c", conf, "-e", errlog]
        self._check(argv + ["-t"], "nginx -t")
        p = self._popen(argv, "nginx.stdout")
        self._wait_port(p, "nginx")
        return p

    # -- lighttpd ----------------------------------------------------------

    def lighttpd_wrapper(self, include):
        """The shipped lighttpd.conf is complete; the wrapper only binds it
        to loopback (the shipped file listens on every address)."""
        conf = self.path("conf", "lighttpd-test.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(f'# test_matrix: loopback only, then the shipped file.\n'
                    f'server.bind = "127.0.0.1"\ninclude "{include}"\n')
        # lighttpd opens its logs after becoming www-data, its workers
        # (www-data too) create their sockets in @runstatedir@/roost, and it
        # writes request bodies to the upload folder. (Debian's package
        # makes /var/log/lighttpd and /var/cache/lighttpd www-data's.)
        for sub in (("run", "roost"), ("var", "log", "lighttpd"),
                    ("var", "cache", "lighttpd", "uploads")):
            shutil.chown(self.path(*sub), WEB_USER, WEB_USER)
        return conf

    def start_lighttpd(self, conf):
        self._check([LIGHTTPD, "-tt", "-f", conf], "lighttpd -tt")
        p = self._popen([LIGHTTPD, "-D", "-f", conf], "lighttpd.stdout")
        self._wait_port(p, "lighttpd")
        return p

    # -- stopping ----------------------------------------------------------

    def stop(self, timeout=15):
        """SIGTERM to every server (they stop their own children) and to
        spawn-fcgi's workers; then whatever still mentions this site's
        folder. Returns [(pid, comm)] of processes that had to be killed
        after their server was gone (should be empty)."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        kill_pids(self.worker_pids)
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        while time.monotonic() < deadline:
            reap()
            if not processes_of(self.dir):
                break
            time.sleep(0.1)
        left = processes_of(self.dir)
        kill_pids([pid for pid, _ in left], signal.SIGKILL)
        time.sleep(0.1)
        reap()
        self.procs = []
        self.worker_pids = []
        if self.suexec_dir:
            shutil.rmtree(self.suexec_dir, ignore_errors=True)
            self.suexec_dir = None
        return left
