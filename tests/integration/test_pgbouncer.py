#!/usr/bin/python3
"""Integration: prepared statements behind PgBouncer in transaction mode.

Four roost.fcgi workers with ROOST_PG_PREPARED=1 talk to Debian's
PgBouncer (started here: its own ini and unix socket in the stack's
folder, pool_mode = transaction, two server connections for everyone), so
consecutive transactions of one worker run on different server
connections, each holding statements other workers prepared. Concurrent
load (GET /me, GET /rooms, sends, reading each send back) must give no
5xx, every GET /me must answer that token's own user, and every message
must read back as sent. The same load then runs on the direct connection
and the answers are compared. `roostctl check` through PgBouncer must
find the database. PgBouncer is stopped at the end, and on failure.

With statement names that were a per-connection counter (r0, r1, ...), a
name prepared by one worker meant another statement to the next worker
on the same server connection: this load gave 500s, and 404 on GET /me
with a valid token."""
import os
import shutil
import signal
import subprocess
import threading
import time

import api
from harness import Stack, free_port, run_tests, test, wait_until

WORKERS = 4
POOL = 2
THREADS = 8
ROUNDS = 15  # per thread; each round is 4 requests: 480 requests a run
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"

stack = Stack(workers=WORKERS, env={"ROOST_PG_PREPARED": "1"})
S = {}


class PgBouncer:
    """Debian's pgbouncer in front of the stack's PostgreSQL socket."""

    def __init__(self, stack):
        self.dir = os.path.join(stack.dir, "pgb")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.log = os.path.join(self.dir, "pgbouncer.log")
        pg_run = os.path.join(stack.dir, "pg", "run")
        ini = os.path.join(self.dir, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write(f"""[databases]
roost = host={pg_run} port=5432 dbname=roost user=roost

[pgbouncer]
listen_addr =
listen_port = {self.port}
unix_socket_dir = {self.dir}
auth_type = any
pool_mode = transaction
default_pool_size = {POOL}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
logfile = {self.log}
pidfile = {self.dir}/pgbouncer.pid
""")
        cmd = [PGBOUNCER, ini]
        if os.geteuid() == 0:
            # pgbouncer refuses to run as root; the stack's PostgreSQL
            # runs as postgres too.
            shutil.chown(self.dir, "postgres")
            shutil.chown(ini, "postgres")
            cmd = [PGBOUNCER, "-u", "postgres", ini]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = os.path.join(self.dir, f".s.PGSQL.{self.port}")
        wait_until(lambda: os.path.exists(sock) or self.proc.poll() is not None,
                   timeout=10, what="pgbouncer's socket")
        assert self.proc.poll() is None, f"pgbouncer exited: {self.tail()}"
        self.url = f"host={self.dir} port={self.port} dbname=roost user=roost"

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def use_database(url):
    """Restart the stack's workers on url (None: the direct socket)."""
    if url is None:
        stack.extra_env.pop("ROOST_DATABASE_URL_OVERRIDE", None)
    else:
        stack.extra_env["ROOST_DATABASE_URL_OVERRIDE"] = url
    stack.start()
    assert (stack.env_vars["ROOST_DATABASE_URL"] == url) == (url is not None), stack.env_vars


def setup():
    if S:
        return S
    email, password = api.make_admin(stack)
    admin = api.login(stack, email, password)["token"]
    api.relax_limits(stack, admin)
    api.set_settings(stack, admin, messages_per_10s=1000)
    room = api.create_room(stack, admin)
    users = []
    for i in range(THREADS):
        user, token = api.member_session(stack, admin)
        api.join_room(stack, token, room["id"])
        users.append((user, token))
    S.update(admin=admin, room=room["id"], users=users)
    return S


def load(label):
    """Concurrent load; returns (failures, {user id: GET /me body}, sent)."""
    s = setup()
    failures, me, sent = [], {}, []
    lock = threading.Lock()

    def note(what):
        with lock:
            failures.append(what)

    def worker(n):
        user, token = s["users"][n]
        for r in range(ROUNDS):
            st, _, doc = api.get(stack, "/me", token=token)
            if st != 200 or doc.get("id") != user["id"]:
                note(f"GET /me as user {user['id']}: {st} {doc!r}")
            else:
                with lock:
                    me[user["id"]] = doc
            st, _, doc = api.get(stack, "/rooms", token=token)
            if st != 200 or s["room"] not in [x["id"] for x in doc.get("rooms", [])]:
                note(f"GET /rooms as user {user['id']}: {st} {doc!r}")
            text = f"{label} {n}.{r} from {user['id']}"
            st, _, msg = api.send_resp(stack, token, s["room"], text)
            if st != 201 or msg.get("content") != text:
                note(f"send {text!r}: {st} {msg!r}")
                continue
            st, _, doc = api.messages_resp(stack, token, s["room"], around=msg["id"], limit=1)
            got = [m for m in (doc or {}).get("messages", []) if m["id"] == msg["id"]]
            if st != 200 or not got or got[0]["content"] != text or \
                    (got[0]["author"] or {}).get("id") != user["id"]:
                note(f"read back {msg['id']} ({text!r}): {st} {got or doc!r}")
            with lock:
                sent.append((msg["id"], text, user["id"]))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return failures, me, sent


@test
def prepared_statements_behind_pgbouncer_transaction_mode():
    setup()  # on the direct connection
    pgb = PgBouncer(stack)
    try:
        use_database(pgb.url)
        failures, me_pgb, sent = load("pgbouncer")
        assert not failures, f"{len(failures)} wrong answers through PgBouncer, e.g. " \
                             f"{failures[:5]}\npgbouncer log:\n{pgb.tail()}"
        assert len(sent) == THREADS * ROUNDS, len(sent)
        # The statements did run by name: the server connection psql gets
        # through PgBouncer holds the workers' r_<hash> statements.
        p = subprocess.run(["psql", "-X", "-At", "-d", pgb.url, "-c",
                            "SELECT count(*) FROM pg_prepared_statements "
                            "WHERE name ~ '^r_[0-9a-f]{32}$'"],
                           capture_output=True, timeout=30)
        assert p.returncode == 0 and int(p.stdout) >= 5, (p.stdout, p.stderr)
        # roostctl check finds the database through PgBouncer too.
        p = api.ctl(stack, "check")
        out = p.stdout.decode()
        assert "ok   database: PostgreSQL" in out, out
        assert "ok   migrations" in out, out
    finally:
        pgb.stop()
        use_database(None)
    # The same load and reads on the direct connection give the same answers.
    failures, me_direct, sent_direct = load("direct")
    assert not failures, f"direct connection: {failures[:5]}"
    assert me_direct == me_pgb, (me_direct, me_pgb)
    for mid, text, uid in sent:
        m = api.find_message(stack, S["users"][0][1], S["room"], mid)
        assert (m["content"], m["author"]["id"]) == (text, uid), (m, text, uid)


if __name__ == "__main__":
    run_tests(stack)
