#!/usr/bin/python3
"""Integration: where the stack's database is (scripts/stack, as ./roost up
--pgbouncer and ./roost up --database-url use it).

- ROOST_STACK_PGBOUNCER=1: Debian's pgbouncer (transaction pooling, unix
  socket in DIR/pgbouncer) stands between the private PostgreSQL and the
  workers, the relay and roostctl. The proof that their connections go
  through it: pgbouncer's admin console (SHOW CLIENTS) lists a client
  connection from the pid of every worker and of the relay (pgbouncer
  reads a unix-socket peer's pid), and with pgbouncer stopped while
  PostgreSQL runs, health answers 503 until pgbouncer is back. `status`
  shows pgbouncer; `stop` stops it; a later start without the option goes
  back to the direct socket and stops pgbouncer.
- ROOST_STACK_DATABASE_URL: an existing database (here another stack's
  private PostgreSQL) is used as it is: no cluster is made or started in
  the stack's folder, the migrations are applied there, the API serves
  from it, and pg-stop and stop leave it running.

Before these options existed, scripts/stack wrote its private socket into
DIR/env at every start whatever was asked, so both tests failed."""
import os
import subprocess
import threading
import time

import api
from harness import BUILD_DIR, REPO, Stack, run_tests, test, wait_until

WORKERS = 3
SQL_FILES = len([f for f in os.listdir(os.path.join(REPO, "sql")) if f.endswith(".sql")])


def pgb_console(stack, sql):
    """Rows of an admin-console command of the stack's pgbouncer, as dicts."""
    p = subprocess.run(["psql", "-X", "-A", "-F", "\t", "-P", "footer=off", "-h",
                        os.path.join(stack.dir, "pgbouncer"), "-p", "6432", "-U", "postgres",
                        "-d", "pgbouncer", "-c", sql],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"))) for line in lines[1:]]


def status_lines(stack):
    _, out = stack._run_stack("status", stack.dir, check=False)
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def health(stack):
    st, _, doc = api.get(stack, "/health")
    return st, doc


def burst(stack, n=24):
    """n concurrent requests, so lighttpd hands some to every worker."""
    threads = [threading.Thread(target=health, args=(stack,)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)


def postgres_in(folder):
    """pids of PostgreSQL processes working in `folder` or under it (a
    cluster's postmaster and backends have its data folder as working
    directory)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cwd = os.readlink(f"/proc/{name}/cwd")
                with open(f"/proc/{name}/comm") as f:
                    if f.read().strip() != "postgres":
                        continue
            except OSError:
                continue
            if cwd == folder or cwd.startswith(folder + "/"):
                pids.append(int(name))
    return pids


@test
def pgbouncer_between_the_workers_and_postgres():
    stack = Stack(workers=WORKERS, relay=True,
                  env={"ROOST_STACK_PGBOUNCER": "1", "ROOST_PG_PREPARED": "1"})
    try:
        pgb_dir = os.path.join(stack.dir, "pgbouncer")
        url = stack.env_vars["ROOST_DATABASE_URL"]
        assert url == f"host={pgb_dir} port=6432 dbname=roost user=roost", url
        assert stack.env_vars["ROOST_STACK_DB"] == "pgbouncer", stack.env_vars
        st = status_lines(stack)
        assert st["pgbouncer"].startswith("running"), st
        assert st["postgres"].startswith("running"), st
        pools = [r for r in pgb_console(stack, "SHOW POOLS") if r["database"] == "roost"]
        assert [r["pool_mode"] for r in pools] == ["transaction"], pools

        # The API works through it, prepared statements and all.
        email, password = api.make_admin(stack)
        admin = api.login(stack, email, password)["token"]
        room = api.create_room(stack, admin)
        msg = api.send(stack, admin, room["id"], "through pgbouncer")
        assert api.find_message(stack, admin, room["id"], msg["id"])["content"] == "through pgbouncer"

        # Every worker and the relay are pgbouncer's clients.
        want = set(stack.fcgi_pids()) | {stack.relay_pid()}
        assert len(want) == WORKERS + 1 and None not in want, want

        def clients():
            burst(stack)
            got = {int(r["remote_pid"]) for r in pgb_console(stack, "SHOW CLIENTS")
                   if r["user"] == "roost" and r["database"] == "roost" and r["addr"] == "unix"}
            return want <= got and got
        wait_until(clients, timeout=20, interval=0.2,
                   what=f"pgbouncer clients from the workers and the relay {sorted(want)}")

        # Without pgbouncer (PostgreSQL still up) the workers have no database.
        stack._run_stack("pgbouncer-stop", stack.dir)
        try:
            assert status_lines(stack)["postgres"].startswith("running")
            wait_until(lambda: health(stack)[0] == 503, timeout=10, what="health 503 without pgbouncer")
            assert health(stack)[1]["db"] == "down"
        finally:
            stack._run_stack("pgbouncer-start", stack.dir)
        wait_until(lambda: health(stack)[0] == 200, timeout=10, what="health 200 with pgbouncer back")
        assert api.find_message(stack, admin, room["id"], msg["id"])["content"] == "through pgbouncer"

        # A start without the option: the direct socket, pgbouncer stopped.
        pid = int(open(os.path.join(pgb_dir, "pgbouncer.pid")).read())
        stack.extra_env.pop("ROOST_STACK_PGBOUNCER")
        stack.start()
        assert stack.env_vars["ROOST_DATABASE_URL"] == \
            f"host={stack.dir}/pg/run port=5432 dbname=roost user=roost", stack.env_vars
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10, what="pgbouncer's exit")
        assert status_lines(stack)["pgbouncer"] == "not used"
        assert api.find_message(stack, admin, room["id"], msg["id"])["content"] == "through pgbouncer"

        # And back; then stop ends it with everything else.
        stack.extra_env["ROOST_STACK_PGBOUNCER"] = "1"
        stack.start()
        pid = int(open(os.path.join(pgb_dir, "pgbouncer.pid")).read())
        assert os.path.exists(f"/proc/{pid}")
        _, out = stack._run_stack("stop", stack.dir)
        assert "pgbouncer: stopped" in out, out
        assert not os.path.exists(f"/proc/{pid}") or \
            open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z", "pgbouncer still runs after stop"
        st = status_lines(stack)
        assert st["pgbouncer"] == "stopped" and st["postgres"] == "stopped", st
    finally:
        stack.stop()


@test
def an_existing_database_is_used_and_left_alone():
    owner = Stack(workers=1)  # its PostgreSQL plays the existing database
    user = None
    try:
        url = owner.env_vars["ROOST_DATABASE_URL"]
        postmaster = postgres_in(os.path.join(owner.dir, "pg", "data"))
        assert postmaster, "the owner's PostgreSQL is not running"
        user = Stack(workers=2, env={"ROOST_STACK_DATABASE_URL": url, "ROOST_STACK_MIGRATE": "1",
                                     "ROOST_BUILD_DIR": BUILD_DIR})
        assert user.env_vars["ROOST_DATABASE_URL"] == url, user.env_vars
        assert user.env_vars["ROOST_STACK_DB"] == "external", user.env_vars
        assert not os.path.exists(os.path.join(user.dir, "pg")), os.listdir(user.dir)
        assert not postgres_in(user.dir), "a PostgreSQL runs in the stack's folder"
        st = status_lines(user)
        assert st["postgres"].startswith("an existing database"), st
        assert st["pgbouncer"] == "not used", st
        # Migrated there, at start.
        assert owner.psql("SELECT count(*) FROM roost.schema_migrations") == str(SQL_FILES)

        email, password = api.make_admin(user)
        token = api.login(user, email, password)["token"]
        st, _, me = api.get(user, "/me", token=token)
        assert st == 200 and me["email"] == email.lower(), (st, me)
        assert owner.psql(f"SELECT count(*) FROM roost.users WHERE email = '{email.lower()}'") == "1"

        # pg-stop, pg-start and stop leave it running.
        for cmd in ("pg-stop", "pg-start"):
            _, out = user._run_stack(cmd, user.dir)
            assert "not managed here" in out, out
        assert owner.psql("SELECT 1") == "1"
        _, out = user._run_stack("stop", user.dir)
        assert "postgres: an existing database, left alone" in out, out
        time.sleep(0.5)
        assert owner.psql("SELECT 1") == "1"
        assert set(postmaster) <= set(postgres_in(os.path.join(owner.dir, "pg", "data"))), \
            "the existing database's processes changed"
        assert not os.path.exists(os.path.join(user.dir, "pg"))
    finally:
        if user:
            user.stop()
        owner.stop()


if __name__ == "__main__":
    run_tests()
