#!/usr/bin/python3
"""Integration: roostctl migrate, create-admin and check, with their exit
codes, against a real PostgreSQL and Redis; migrations under concurrency
and a changed migration file; check against Redis servers of its own
(no password, an ACL user, requirepass, open and closed unix sockets):
a Redis that answers a client without a password fails the check."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from harness import Stack, free_port, run_tests, test, wait_until

stack = Stack(workers=1)
BUILD = os.environ.get("ROOST_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
CTL = os.path.join(BUILD, "roostctl")
SRC = os.environ.get("ROOST_SRC_DIR", os.path.join(os.path.dirname(__file__), "../.."))


def ctl(*args, env=None, stdin=b""):
    e = stack.env()
    e.pop("ROOST_ADMIN_PASSWORD", None)
    e.update(env or {})
    return subprocess.run([CTL, *args], env=e, input=stdin, capture_output=True, timeout=60)


def psql(sql, schema="roost"):
    e = stack.env()
    p = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                        f"SET search_path TO {schema}; {sql}",
                        e["ROOST_DATABASE_URL"]], env=e, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip().splitlines()[-1] if p.stdout.strip() else ""


@test
def migrate_is_idempotent():
    p = ctl("migrate")
    assert p.returncode == 0, p.stderr
    p = ctl("migrate")
    assert p.returncode == 0 and b"applied 0 migration(s)" in p.stdout, p.stdout
    total = len([f for f in os.listdir(stack.env_vars["ROOST_SQL_DIR"]) if f.endswith(".sql")])
    assert psql("SELECT count(*) FROM schema_migrations") == str(total)


@test
def concurrent_migrations_apply_each_file_once():
    procs = [subprocess.Popen([CTL, "migrate"], env=dict(stack.env(), ROOST_SCHEMA="tenant_race"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(6)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    applied = sum(int(o[0].split(b"applied ")[1].split()[0]) for o in outs)
    total = len([f for f in os.listdir(stack.env_vars["ROOST_SQL_DIR"]) if f.endswith(".sql")])
    assert applied == total, (applied, total)
    assert psql("SELECT count(*) FROM schema_migrations", "tenant_race") == str(total)


@test
def create_admin_from_env_and_stdin():
    p = ctl("create-admin", "Boss@Example.com", "--name", "Boss",
            env={"ROOST_ADMIN_PASSWORD": "correct horse battery"})
    assert p.returncode == 0, p.stderr
    assert b"created admin" in p.stdout
    row = psql("SELECT email || '|' || role || '|' || name FROM users WHERE email = 'boss@example.com'")
    assert row == "boss@example.com|admin|Boss", row
    h = psql("SELECT password_hash FROM users WHERE email = 'boss@example.com'")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), h
    p = ctl("create-admin", "second@example.com", stdin=b"another long password\n")
    assert p.returncode == 0, p.stderr


@test
def create_admin_errors_have_distinct_codes():
    p = ctl("create-admin", "boss@example.com", env={"ROOST_ADMIN_PASSWORD": "correct horse battery"})
    assert p.returncode == 73 and b"already exists" in p.stderr, (p.returncode, p.stderr)
    p = ctl("create-admin", "not-an-email", env={"ROOST_ADMIN_PASSWORD": "correct horse battery"})
    assert p.returncode == 65 and b"email" in p.stderr, (p.returncode, p.stderr)
    p = ctl("create-admin", "x@example.com", env={"ROOST_ADMIN_PASSWORD": "short"})
    assert p.returncode == 65 and b"password" in p.stderr, (p.returncode, p.stderr)
    p = ctl("create-admin", "y@example.com", stdin=b"z" * 2000 + b"\n")
    assert p.returncode == 65, (p.returncode, p.stderr)
    p = ctl("create-admin", "a@example.com", "--name", "Bad\x01Name",
            env={"ROOST_ADMIN_PASSWORD": "correct horse battery"})
    assert p.returncode == 65, (p.returncode, p.stderr)
    p = ctl("create-admin")
    assert p.returncode == 64
    assert psql("SELECT count(*) FROM users") == "2", "nothing half-written"


@test
def usage_and_config_errors():
    assert ctl().returncode == 64
    assert ctl("frobnicate").returncode == 64
    assert ctl("help").returncode == 0
    p = ctl("version")
    assert p.returncode == 0 and p.stdout.startswith(b"roostctl ")
    p = ctl("check", env={"ROOST_SCHEMA": "x; drop"})
    assert p.returncode == 78 and b"ROOST_SCHEMA" in p.stderr


@test
def check_passes_then_names_what_fails():
    p = ctl("check")
    assert p.returncode == 0, p.stdout + p.stderr
    assert b"ok   database" in p.stdout and b"ok   redis" in p.stdout and b"ok   migrations" in p.stdout
    assert b"appendonly" not in p.stdout, p.stdout
    # A Redis without its append-only file works, with a note.
    stack.redis_cli("CONFIG", "SET", "appendonly", "no")
    try:
        p = ctl("check")
        assert p.returncode == 0 and b"note: appendonly is off" in p.stdout, p.stdout
    finally:
        stack.redis_cli("CONFIG", "SET", "appendonly", "yes")
    stack.redis_stop()
    try:
        p = ctl("check")
        assert p.returncode == 1 and b"FAIL redis" in p.stdout, p.stdout
    finally:
        stack.redis_start()
    p = ctl("check", env={"ROOST_SCHEMA": "never_migrated"})
    assert p.returncode == 1 and b"pending" in p.stdout, p.stdout
    p = ctl("check", env={"ROOST_JWT_SECRET": ""})
    assert p.returncode in (1, 78), p.returncode


@test
def check_says_why_the_database_fails():
    """Not just "unreachable": libpq's reason when no connection is made,
    and the SQLSTATE and message when one is made but a statement fails
    (here a function shadowing current_setting() on the role's
    search_path stands in for any server-side refusal)."""
    url = stack.env_vars["ROOST_DATABASE_URL"]
    nowhere = os.path.join(stack.dir, "no-such-dir")
    p = ctl("check", env={"ROOST_DATABASE_URL": f"host={nowhere} port=5432 dbname=roost user=roost"})
    line = [x for x in p.stdout.decode().splitlines() if "database" in x]
    assert p.returncode == 1 and line and line[0].startswith("FAIL database: unreachable: "), p.stdout
    assert nowhere in line[0] and "No such file or directory" in line[0], line
    psql("CREATE SCHEMA IF NOT EXISTS check_shadow; "
         "CREATE OR REPLACE FUNCTION check_shadow.current_setting(text) RETURNS text "
         "LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'refused for the test' "
         "USING ERRCODE = '42501'; END$$")
    try:
        p = ctl("check", env={"ROOST_DATABASE_URL":
                              url + " options='-c search_path=check_shadow,pg_catalog'"})
        line = [x for x in p.stdout.decode().splitlines() if "database" in x]
        assert p.returncode == 1 and line == [
            "FAIL database: connected, but a statement failed: "
            "SQLSTATE 42501: ERROR:  refused for the test"], p.stdout
    finally:
        psql("DROP SCHEMA check_shadow CASCADE")


@test
def changed_migration_is_detected():
    d = tempfile.mkdtemp(dir=stack.dir)
    for f in os.listdir(stack.env_vars["ROOST_SQL_DIR"]):
        shutil.copy(os.path.join(stack.env_vars["ROOST_SQL_DIR"], f), d)
    env = {"ROOST_SQL_DIR": d, "ROOST_SCHEMA": "tenant_edit"}
    assert ctl("migrate", env=env).returncode == 0
    first = sorted(f for f in os.listdir(d) if f.endswith(".sql"))[0]
    with open(os.path.join(d, first), "a") as fh:
        fh.write("\n-- edited after the fact\n")
    p = ctl("check", env=env)
    assert p.returncode == 1 and b"changed after it was applied" in p.stdout, p.stdout
    p = ctl("migrate", env=env)
    assert p.returncode != 0 and b"changed after it was applied" in p.stderr
    # a new migration applies; a broken one rolls back completely
    with open(os.path.join(d, "900_extra.sql"), "w") as fh:
        fh.write("CREATE TABLE extra (id int);\n")
    with open(os.path.join(d, first), "w") as fh:
        fh.write(open(os.path.join(stack.env_vars["ROOST_SQL_DIR"], first)).read())
    assert ctl("migrate", env=env).returncode == 0
    with open(os.path.join(d, "901_broken.sql"), "w") as fh:
        fh.write("CREATE TABLE half (id int);\nTHIS IS NOT SQL;\n")
    p = ctl("migrate", env=env)
    assert p.returncode == 70 and b"901_broken.sql" in p.stderr, (p.returncode, p.stderr)
    assert psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'tenant_edit' AND tablename = 'half'") == "0"
    assert psql("SELECT max(version) FROM schema_migrations", "tenant_edit") == "900"


@test
def run_jobs_purges_messages_past_retention():
    assert ctl("migrate").returncode == 0
    uid = psql("INSERT INTO users (email, name) VALUES ('keeper@example.com', 'Keeper') RETURNING id")
    eph = psql("INSERT INTO rooms (kind, name, retention_hours) VALUES ('public', 'eph', 1) RETURNING id")
    keep = psql("INSERT INTO rooms (kind, name) VALUES ('public', 'keep') RETURNING id")
    for room in (eph, keep):
        psql(f"INSERT INTO messages (room_id, author_id, type, body, created_at) "
             f"SELECT {room}, {uid}, 'text', 'old ' || g, now() - interval '3 hours' "
             f"FROM generate_series(1, 5) g")
        psql(f"INSERT INTO messages (room_id, author_id, type, body) VALUES ({room}, {uid}, 'text', 'new')")
    p = ctl("run-jobs")
    assert p.returncode == 0 and b"purged 5 message(s)" in p.stdout, (p.stdout, p.stderr)
    assert psql(f"SELECT count(*) FROM messages WHERE room_id = {eph}") == "1"
    assert psql(f"SELECT count(*) FROM messages WHERE room_id = {keep}") == "6", "rooms without retention keep all"
    ev = psql(f"SELECT data->>'count' || ' ' || (data->>'room_id') FROM events WHERE type = 'messages.purged'")
    assert ev == f"5 {eph}", ev
    p = ctl("run-jobs")
    assert p.returncode == 0 and b"purged 0 message(s)" in p.stdout


class Redis:
    """A redis-server of the test's own (Debian's 7.0) in a temp folder:
    on 127.0.0.1:port, or on a unix socket (port 0) with the given mode,
    plus conf lines. Stopped by stop()."""

    def __init__(self, conf=(), unix_perm=None, folder_mode=0o700):
        self.dir = tempfile.mkdtemp(prefix="rr-", dir="/tmp")
        os.chmod(self.dir, folder_mode)
        self.sock = os.path.join(self.dir, "r.sock")
        self.port = None if unix_perm else free_port()
        lines = ["daemonize no", f"dir {self.dir}", 'save ""', "appendonly no",
                 f"logfile {self.dir}/redis.log"]
        if unix_perm:
            lines += ["port 0", f"unixsocket {self.sock}", f"unixsocketperm {unix_perm}"]
        else:
            lines += ["bind 127.0.0.1", f"port {self.port}"]
        with open(os.path.join(self.dir, "redis.conf"), "w") as f:
            f.write("\n".join(lines + list(conf)) + "\n")
        self.proc = subprocess.Popen(["redis-server", os.path.join(self.dir, "redis.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if unix_perm:
            wait_until(lambda: os.path.exists(self.sock), what="redis socket")
        else:
            def up():
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return True
                except OSError:
                    return False
            wait_until(up, what="redis port")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def check_with(url):
    """roostctl check with the stack's settings but Redis at url: (exit
    status, the lines about Redis)."""
    p = ctl("check", env={"ROOST_REDIS_URL": url})
    lines = [x for x in p.stdout.decode().splitlines() if "redis" in x or x.startswith("     ")]
    return p.returncode, "\n".join(lines)


ACL = ["user default off ~* &* +@all",
       "user roost on >p@ss:w/rd% ~roost:* &roost:* +@all -@dangerous +config|get"]


@test
def check_fails_a_redis_without_a_password():
    """Issue 13: Debian's Redis on 127.0.0.1:6379 with no password let any
    local account read the event stream and forge stream tickets."""
    r = Redis()
    try:
        rc, out = check_with(f"redis://127.0.0.1:{r.port}/0")
        assert rc == 1, out
        assert f"FAIL redis: 127.0.0.1:{r.port} answers a client without a password" in out, out
        assert "docs/deploy.md" in out and '"default" user off' in out, out
    finally:
        r.stop()


@test
def check_passes_a_redis_with_an_acl_user():
    """An ACL user (its password percent-encoded in the URL) and the
    default user off: ok, and an outsider's PING is refused. A wrong
    password and a missing one fail with Redis's own reason."""
    r = Redis(ACL)
    try:
        good = f"redis://roost:p%40ss%3Aw%2Frd%25@127.0.0.1:{r.port}/0"
        rc, out = check_with(good)
        assert rc == 0, out
        assert f"ok   redis: PING answered (127.0.0.1:{r.port}, as user roost)" in out, out
        assert "ok   redis: refuses clients without a password (NOAUTH)" in out, out
        assert "p@ss" not in out and "p%40ss" not in out, "the password was printed"
        rc, out = check_with(f"redis://roost:wrong@127.0.0.1:{r.port}/0")
        assert rc == 1 and "FAIL redis: authentication failed (WRONGPASS" in out, out
        rc, out = check_with(f"redis://127.0.0.1:{r.port}/0")
        assert rc == 1 and "FAIL redis: PING refused: NOAUTH" in out, out
        assert "ROOST_REDIS_URL" in out, out
    finally:
        r.stop()


@test
def the_hashed_password_of_deploy_md_signs_in():
    """docs/deploy.md, step 3: instead of the password, redis.conf may hold
    "#" and the SHA-256 that the page's command prints. Found on a walk of
    the page: sha256sum alone ends its line with "  -", which Redis reads
    as an ACL rule and refuses to start with."""
    with open(os.path.join(SRC, "docs", "deploy.md")) as f:
        doc = f.read()
    m = re.search(r"`(printf %s\s+PASSWORD\s+\|\s+sha256sum[^`]*)`", doc)
    assert m, "deploy.md no longer gives the command that hashes the password"
    cmd = " ".join(m.group(1).split()).replace("PASSWORD", "hashed-0123")
    digest = subprocess.run(["sh", "-c", cmd], capture_output=True, check=True).stdout.decode().strip()
    line = f"user roost on #{digest} ~roost:* &roost:* +@all -@dangerous +config|get"
    try:
        r = Redis([ACL[0], line])
    except AssertionError as e:
        raise AssertionError(f"Redis did not start with {line!r}: {e}") from None
    try:
        rc, out = check_with(f"redis://roost:hashed-0123@127.0.0.1:{r.port}/0")
        assert rc == 0 and f"ok   redis: PING answered (127.0.0.1:{r.port}, as user roost)" in out, out
    finally:
        r.stop()


@test
def check_passes_a_redis_with_requirepass():
    r = Redis(["requirepass s3cret-pass"])
    try:
        rc, out = check_with(f"redis://:s3cret-pass@127.0.0.1:{r.port}")
        assert rc == 0 and "ok   redis: refuses clients without a password (NOAUTH)" in out, out
    finally:
        r.stop()


@test
def check_looks_at_a_unix_sockets_permissions():
    """A socket no other user can open is ok even without a password (with
    a note); one that everybody can open must refuse clients without a
    password; the credentials may sit in the URL's query."""
    r = Redis(unix_perm="700", folder_mode=0o755)
    try:
        rc, out = check_with(f"unix://{r.sock}")
        assert rc == 0, out
        assert "ok   redis: unix socket srwx------ root:root, closed to other users" in out, out
        assert "note: it answers without a password" in out, out
    finally:
        r.stop()
    r = Redis(unix_perm="777", folder_mode=0o700)
    try:
        rc, out = check_with(f"unix://{r.sock}")
        assert rc == 0, out
        assert "closed to other users (its folder " in out and "is not searchable by others" in out, out
    finally:
        r.stop()
    r = Redis(unix_perm="777", folder_mode=0o755)
    try:
        rc, out = check_with(f"unix://{r.sock}")
        assert rc == 1 and f"FAIL redis: unix socket {r.sock} answers a client without a password" in out, out
    finally:
        r.stop()
    r = Redis(ACL, unix_perm="777", folder_mode=0o755)
    try:
        rc, out = check_with(f"unix://{r.sock}?user=roost&password=p%40ss%3Aw%2Frd%25")
        assert rc == 0 and "ok   redis: refuses clients without a password (NOAUTH)" in out, out
        assert "closed to other users" not in out, out
    finally:
        r.stop()


if __name__ == "__main__":
    run_tests(stack)
