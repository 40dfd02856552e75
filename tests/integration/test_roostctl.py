#!/usr/bin/python3
"""Integration: roostctl migrate, create-admin and check, with their exit
codes, against a real PostgreSQL and Redis; migrations under concurrency
and a changed migration file."""
import os
import shutil
import subprocess
import tempfile

from harness import Stack, run_tests, test

stack = Stack(workers=1)
BUILD = os.environ.get("ROOST_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
CTL = os.path.join(BUILD, "roostctl")


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


if __name__ == "__main__":
    run_tests(stack)
