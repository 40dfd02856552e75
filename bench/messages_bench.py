#!/usr/bin/python3
"""Benchmark: sending messages through lighttpd + roost.fcgi, against raw
PostgreSQL inserts, and GET /rooms for a user in 200 rooms.

Starts a private stack (PostgreSQL, Redis, lighttpd) with two FastCGI
workers (the machine has two cores; PostgreSQL runs with fsync off, as in
every test stack) and an admin made with roostctl, then:

1. send path: N concurrent clients (--clients, default 8) post text
   messages into one room for --seconds (default 10) with wrk: one wrk
   thread and one kept-alive connection per client, every request with a
   unique client_msg_id. Each connection cycles through its own few users
   (--users-per-client, default 8) so the per-user send limit
   (messages_per_10s, raised to its maximum of 1,000) is not what is
   measured; requests_per_minute is raised to 100,000. Prints messages per
   second (201 answers only) and p50/p99 latency, and checks that the room
   holds exactly as many messages as were acknowledged.
2. raw insert: pgbench at the same concurrency inserts single rows into a
   scratch table shaped like `messages` (no indexes but the primary key)
   over the stack's unix socket, for the same time; prints inserts per
   second and the ratio send path / raw insert (target: >= 0.5).
3. room list: a user in 200 rooms that all have unread messages (made
   through the API) calls GET /api/v1/rooms ~200 times over one kept-alive
   connection; prints p50/p99 latency.

Loopback only; bounded in time (about a minute in all).

Against a running stack instead (./roost up, with or without --pgbouncer):
--url http://127.0.0.1:8080 --admin-env var/admin.env signs in as that
admin. It raises the tenant's limits (messages_per_10s 1000,
requests_per_minute 100000, ...) and leaves them so, and adds its users,
rooms and messages to that database. The var/env beside admin.env (or
--stack-env) gives the database for the checks and pgbench; without it
those are skipped. The counts read the tenant's tables by schema-qualified
name, so they work through PgBouncer in transaction mode too.

--pgbouncer starts its own stack with pgbouncer between PostgreSQL and the
workers and relay (scripts/stack's ROOST_STACK_PGBOUNCER=1, as ./roost up
--pgbouncer); pgbench then goes through it too, as the workers do.

Usage: bench/messages_bench.py [--clients N] [--seconds S] [--users-per-client K]
                               [--rooms R] [--skip-room-list] [--prepared]
                               [--pgbouncer] [--url URL --admin-env FILE [--stack-env FILE]]"""
import argparse
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tests/integration"))
import api  # noqa: E402
from harness import Stack, parse_env_file  # noqa: E402

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"

WRK_LUA = r"""
-- one wrk thread = one connection = one client; each cycles through its users
local all_tokens = {TOKENS}
local per = {PER}
local room = {ROOM}
local run = "{RUN}"
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  non201 = 0
  limited = 0
  path = "/api/v1/rooms/" .. room .. "/messages"
  mine = {}
  for i = 1, per do
    mine[i] = all_tokens[(tid - 1) * per + i]
  end
end

function request()
  counter = counter + 1
  local tok = mine[(counter % per) + 1]
  local body = string.format(
    '{"type":"text","content":"bench message %d from client %d","client_msg_id":"b%s-%d-%d"}',
    counter, tid, run, tid, counter)
  return wrk.format("POST", path,
    {["Authorization"] = "Bearer " .. tok, ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 201 then
    non201 = non201 + 1
    if status == 429 then limited = limited + 1 end
  end
end

function done(summary, latency, requests)
  local bad, lim = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non201") or 0)
    lim = lim + (t:get("limited") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d non201=%d limited=%d " ..
    "sock_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, bad, lim,
    e.connect + e.read + e.write + e.timeout))
end
"""

WRK_GET_LUA = r"""
local token = "{TOKEN}"
function request()
  return wrk.format("GET", "{PATH}", {["Authorization"] = "Bearer " .. token})
end
function done(summary, latency, requests)
  io.write(string.format("WRKRESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status))
end
"""

SCRATCH_SQL = """
DROP TABLE IF EXISTS bench_scratch;
CREATE TABLE bench_scratch (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id    bigint NOT NULL,
    author_id  bigint,
    type       text NOT NULL,
    body       text,
    created_at timestamptz NOT NULL DEFAULT now()
)"""
PGBENCH_SCRIPT = ("\\set author random(1, 64)\n"
                  "INSERT INTO bench_scratch (room_id, author_id, type, body) "
                  "VALUES (1, :author, 'text', 'bench message from pgbench');\n")


class RunningStack(Stack):
    """A stack someone else started (./roost up): its URL, and its env file
    (DIR/env) when given. Never started or stopped here."""

    def __init__(self, url, env_path):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost") or u.path not in ("", "/"):
            raise SystemExit(f"--url must be http://127.0.0.1:PORT (this machine, no path), not {url!r}")
        self.env_vars = parse_env_file(env_path) if env_path else {}
        self.env_vars["ROOST_URL"] = f"http://127.0.0.1:{u.port or 80}"
        self.port = u.port or 80
        self.dir = self.env_vars.get("ROOST_STATE_DIR", "")
        self.workers = int(self.env_vars.get("ROOST_WORKERS") or 0)
        self.relay = bool(self.env_vars.get("ROOST_RELAY_PORT"))
        self.extra_env = {}
        self._stopped = True
        self._extra_relays = []

    def start(self):
        raise AssertionError("a running stack is not started here")

    def stop(self):
        pass


def read_admin_env(path):
    """(email, password) from ./roost up's var/admin.env."""
    e = parse_env_file(path)
    try:
        return e["ROOST_ADMIN_EMAIL"], e["ROOST_ADMIN_PASSWORD"]
    except KeyError as k:
        raise SystemExit(f"{path} has no {k.args[0]}")


def schema(stack):
    s = stack.env_vars.get("ROOST_SCHEMA", "roost")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", s):
        raise SystemExit(f"unexpected ROOST_SCHEMA {s!r}")
    return s


def sql(stack, query):
    """One query, tables qualified with {S}: no session state, so it works
    through PgBouncer in transaction mode (api.sql sets search_path for its
    session, which a transaction pooler does not keep)."""
    return stack.psql(query.replace("{S}", schema(stack)))


def db_mode(stack):
    return stack.env_vars.get("ROOST_STACK_DB", "private")


def ms(us):
    return f"{us / 1000:7.2f} ms"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values))) - 1))]


def ensure_wrk():
    if shutil.which("wrk"):
        return shutil.which("wrk")
    print("wrk is missing: installing the Debian package (apt-get install wrk)", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk")


def make_users(stack, admin, n, prefix):
    """n members, signed in (argon2id per login: a few at a time)."""
    def one(i):
        user, email, password = api.create_user(stack, admin, name=f"{prefix}{i}")
        return user, api.login(stack, email, password)["token"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        return list(ex.map(one, range(n)))


def parallel(fn, items, workers=8):
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items))


def bench_send(stack, admin, args, wrk):
    n_users = args.clients * args.users_per_client
    t0 = time.monotonic()
    people = make_users(stack, admin, n_users, "Sender")
    room = api.create_room(stack, people[0][1], name="Bench room", max_members=0)
    parallel(lambda p: api.join_room(stack, p[1], room["id"]), people[1:])
    print(f"  setup: {n_users} users signed in and joined one room in {time.monotonic() - t0:.1f} s", flush=True)
    checks = bool(stack.env_vars.get("ROOST_DATABASE_URL"))
    if checks:
        before = int(sql(stack, f"SELECT count(*) FROM {{S}}.messages WHERE room_id = {room['id']}"))
        ev_mark = int(sql(stack, "SELECT coalesce(max(id), 0) FROM {S}.events"))
    if args.pg_stats:
        stack.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()",
                   user_db=superuser_url(stack))
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "send.lua")
        lua = (WRK_LUA.replace("{TOKENS}", "{" + ",".join(json.dumps(t) for _, t in people) + "}")
               .replace("{PER}", str(args.users_per_client)).replace("{ROOM}", str(room["id"]))
               .replace("{RUN}", str(os.getpid())))
        with open(script, "w") as f:
            f.write(lua)
        p = subprocess.run([wrk, "-t", str(args.clients), "-c", str(args.clients), "-d", f"{args.seconds}s",
                            "--timeout", "10s", "-s", script, stack.url("/")],
                           capture_output=True, text=True, timeout=args.seconds + 60)
    line = [x for x in p.stdout.splitlines() if x.startswith("WRKRESULT")]
    if p.returncode != 0 or not line:
        raise SystemExit(f"wrk failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in line[0].split()[1:])}
    created = r["requests"] - r["non201"]
    if args.pg_stats:  # before the checks below add statements of their own
        print_pg_stats(stack, created)
    time.sleep(1.0)  # requests still in a worker when wrk stopped finish and commit
    stored = events = None
    if checks:
        stored, events = (int(x) for x in sql(
            stack, f"SELECT (SELECT count(*) FROM {{S}}.messages WHERE room_id = {room['id']}) - {before}, "
                   "(SELECT count(*) FROM {S}.events WHERE type = 'message.created' "
                   f"AND room_id = {room['id']} AND id > {ev_mark})").split("|"))
    secs = r["duration_us"] / 1e6
    return {"rate": created / secs, "secs": secs, "created": created, "stored": stored, "events": events, **r}


def superuser_url(stack):
    """The stack's private PostgreSQL as its superuser (initdb made "postgres", trust auth on
    the socket), directly: not through pgbouncer, which knows only the roost user."""
    if db_mode(stack) == "external" or not stack.dir:
        raise SystemExit("--pg-stats needs the stack's private PostgreSQL (not an existing database)")
    return f"host={stack.dir}/pg/run port=5432 dbname=roost user=postgres"


def print_pg_stats(stack, sends):
    """Where PostgreSQL's time went during the send phase, per send."""
    rows = stack.psql(
        "SELECT calls, round(total_exec_time::numeric, 1), round(total_plan_time::numeric, 1), "
        "regexp_replace(left(query, 90), '\\s+', ' ', 'g') FROM pg_stat_statements "
        "ORDER BY total_exec_time + total_plan_time DESC LIMIT 25", user_db=superuser_url(stack))
    total = stack.psql("SELECT round(sum(total_exec_time + total_plan_time)::numeric, 1), sum(calls) "
                       "FROM pg_stat_statements", user_db=superuser_url(stack))
    t_ms, calls = total.split("|")
    print(f"  PostgreSQL during the send phase: {float(t_ms):.0f} ms in statements, {int(calls)} calls: "
          f"{float(t_ms) / max(sends, 1) * 1000:.0f} us and {int(calls) / max(sends, 1):.1f} statements per send")
    print("      calls    exec ms    plan ms  query")
    for line in rows.splitlines():
        c, e, pl, q = line.split("|", 3)
        print(f"  {int(c):9d} {float(e):10.1f} {float(pl):10.1f}  {q}")


def bench_get_me(stack, admin, args, wrk, path="/api/v1/me"):
    """Baselines on the same connections: GET /me (auth and one row), GET /health (no auth, a
    SELECT 1 and a Redis PING: the floor of any request that reaches both backends)."""
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "me.lua")
        with open(script, "w") as f:
            f.write(WRK_GET_LUA.replace("{TOKEN}", admin).replace("{PATH}", path))
        secs = max(3, args.seconds // 2)
        p = subprocess.run([wrk, "-t", str(args.clients), "-c", str(args.clients), "-d", f"{secs}s",
                            "-s", script, stack.url("/")], capture_output=True, text=True, timeout=secs + 60)
    line = [x for x in p.stdout.splitlines() if x.startswith("WRKRESULT")]
    if p.returncode != 0 or not line:
        raise SystemExit(f"wrk failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in line[0].split()[1:])}
    r["rate"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def bench_pgbench(stack, args, clients=None):
    stack.psql(SCRATCH_SQL)
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        script = os.path.join(d, "insert.sql")
        with open(script, "w") as f:
            f.write(PGBENCH_SCRIPT)
        os.chmod(script, 0o644)
        clients = clients or args.clients
        p = subprocess.run([PGBENCH, "-n", "-c", str(clients), "-j", str(min(2, clients)), "-T",
                            str(args.seconds if clients == args.clients else max(3, args.seconds // 2)),
                            "-f", script, stack.env_vars["ROOST_DATABASE_URL"]],
                           env=stack.env(), capture_output=True, text=True, timeout=args.seconds + 60)
    if p.returncode != 0:
        raise SystemExit(f"pgbench failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    tps = lat = None
    for line in p.stdout.splitlines():
        if line.startswith("tps =") and tps is None:
            tps = float(line.split("=")[1].split()[0])
        if line.startswith("latency average"):
            lat = float(line.split("=")[1].split()[0])
    rows = int(stack.psql("SELECT count(*) FROM bench_scratch"))
    stack.psql("DROP TABLE bench_scratch")
    return {"tps": tps, "latency_ms": lat, "rows": rows}


def bench_room_list(stack, admin, args):
    (reader, rt), (writer, wt) = make_users(stack, admin, 2, "Lister")
    t0 = time.monotonic()
    rooms = parallel(lambda i: api.create_room(stack, wt, name=f"List room {i}", max_members=0),
                     range(args.rooms))
    parallel(lambda r: api.join_room(stack, rt, r["id"]), rooms)
    parallel(lambda r: api.send(stack, wt, r["id"], f"unread in {r['name']}"), rooms)
    print(f"  setup: {args.rooms} rooms with an unread message each in {time.monotonic() - t0:.1f} s",
          flush=True)
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    hdrs = {"Authorization": f"Bearer {rt}"}

    def get_rooms():
        t = time.perf_counter()
        conn.request("GET", "/api/v1/rooms", headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        dt = time.perf_counter() - t
        if resp.status != 200:
            raise SystemExit(f"GET /rooms answered {resp.status}: {data[:300]!r}")
        return dt, data

    for _ in range(10):
        _, data = get_rooms()
    doc = json.loads(data)
    mine = [r for r in doc["rooms"] if r["name"].startswith("List room")]
    assert len(mine) == args.rooms, f"the reader is in {len(mine)} of {args.rooms} rooms"
    assert all(r["unread_count"] == 1 and r["last_message"] is not None for r in mine), \
        "every room shows one unread message and its last message"
    times = [get_rooms()[0] * 1e6 for _ in range(args.list_requests)]
    conn.close()
    return {"rooms": len(doc["rooms"]), "bytes": len(data), "p50": pct(times, 50), "p99": pct(times, 99),
            "mean": statistics.mean(times), "n": len(times)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users-per-client", type=int, default=8)
    ap.add_argument("--rooms", type=int, default=200)
    ap.add_argument("--list-requests", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2,
                    help="roost.fcgi workers (more than cores helps when commits wait on disk)")
    ap.add_argument("--prepared", action="store_true",
                    help="ROOST_PG_PREPARED=1: statements prepared once per connection")
    ap.add_argument("--durable", action="store_true",
                    help="PostgreSQL with fsync and synchronous_commit on, as in production "
                         "(the default runs with them off, like the tests)")
    ap.add_argument("--no-relay", action="store_true",
                    help="no roost-relay: each worker drains the outbox after its writes (the "
                         "fallback for hosts without a daemon); by default the relay runs, as "
                         "with ./roost up, and workers only wake it")
    ap.add_argument("--pg-stats", action="store_true",
                    help="load pg_stat_statements and print where PostgreSQL's time goes per send")
    ap.add_argument("--pgbouncer", action="store_true",
                    help="start the stack with pgbouncer (transaction pooling) between PostgreSQL and the "
                         "workers and relay (scripts/stack ROOST_STACK_PGBOUNCER=1, as ./roost up --pgbouncer)")
    ap.add_argument("--skip-room-list", action="store_true", help="leave out part 3 (the room list)")
    ap.add_argument("--url", help="benchmark a running stack at this URL (http://127.0.0.1:PORT) "
                                  "instead of starting one; needs --admin-env")
    ap.add_argument("--admin-env", help="with --url: the admin's credentials (./roost up's var/admin.env)")
    ap.add_argument("--stack-env", help="with --url: the stack's settings (default: env beside --admin-env)")
    args = ap.parse_args()
    if bool(args.url) != bool(args.admin_env):
        ap.error("--url and --admin-env go together")
    if args.url and (args.pgbouncer or args.durable or args.prepared or args.no_relay or args.pg_stats):
        ap.error("--pgbouncer, --durable, --prepared, --no-relay and --pg-stats start a stack: not with --url")
    if not os.path.exists(PGBENCH):
        raise SystemExit(f"{PGBENCH} is missing (Debian package postgresql-15)")
    wrk = ensure_wrk()
    if args.url:
        stack_env = args.stack_env or os.path.join(os.path.dirname(os.path.abspath(args.admin_env)), "env")
        if not os.path.exists(stack_env):
            print(f"no {stack_env}: the database checks and pgbench are skipped")
            stack_env = None
        stack = RunningStack(args.url, stack_env)
        print(f"a running stack at {stack.url_base}: workers {stack.workers or '?'}, prepared statements "
              f"{'on' if stack.env_vars.get('ROOST_PG_PREPARED') == '1' else 'off (or unknown)'}, "
              f"relay {'yes' if stack.relay else 'no'}, database: {db_mode(stack) if stack_env else '?'}")
    else:
        env = {"ROOST_LOG_LEVEL": "warn"}
        if args.durable:
            env["ROOST_PG_FAST"] = "0"
        if args.prepared:
            env["ROOST_PG_PREPARED"] = "1"
        if args.pgbouncer:
            env["ROOST_STACK_PGBOUNCER"] = "1"
        if args.pg_stats:
            env["ROOST_PG_CONF_EXTRA"] = ("shared_preload_libraries = 'pg_stat_statements'\n"
                                          "pg_stat_statements.track = all\npg_stat_statements.track_planning = on")
        stack = Stack(workers=args.workers, env=env, relay=not args.no_relay)
        print(f"workers: {args.workers}, prepared statements: {'on' if args.prepared else 'off'}, "
              f"relay: {'no (workers drain the outbox)' if args.no_relay else 'yes (it drains the outbox)'}")
        print(f"postgresql: {'durable (fsync, synchronous_commit on)' if args.durable else 'fsync off (test settings)'}"
              f", {'through pgbouncer (transaction pooling, unix socket)' if args.pgbouncer else 'direct (unix socket)'}")
    have_db = bool(stack.env_vars.get("ROOST_DATABASE_URL"))
    try:
        if args.url:
            email, password = read_admin_env(args.admin_env)
        else:
            email, password = api.make_admin(stack)
        admin = api.login(stack, email, password)["token"]
        api.set_settings(stack, admin, messages_per_10s=1000, requests_per_minute=100000,
                         login_attempts_per_15min=1000, rooms_per_user=10000)
        print(f"Roost messages benchmark: {stack.workers or '?'} roost.fcgi workers behind lighttpd, "
              f"{os.cpu_count()} CPU cores, "
              f"{'a running stack' if args.url else 'PostgreSQL with fsync ' + ('on' if args.durable else 'off')}")
        print()
        print(f"1. Send path: {args.clients} clients x {args.seconds} s, POST /api/v1/rooms/ID/messages (wrk)")
        s = bench_send(stack, admin, args, wrk)
        print()
        pg = pg_w = None
        if have_db:
            print(f"2. Raw insert: pgbench, {args.clients} clients x {args.seconds} s, one-row INSERT into a "
                  f"scratch table (the workers' ROOST_DATABASE_URL: {db_mode(stack)})")
            pg = bench_pgbench(stack, args)
            pg_w = bench_pgbench(stack, args, clients=stack.workers or args.clients)
        else:
            print("2. Raw insert: skipped (no stack env)")
        print()
        print(f"   (baseline: GET /api/v1/me with wrk, {args.clients} clients)")
        me = bench_get_me(stack, admin, args, wrk)
        floor = bench_get_me(stack, admin, args, wrk, "/api/v1/health")
        print()
        rl = None
        if not args.skip_room_list:
            print(f"3. Room list: GET /api/v1/rooms for a user in {args.rooms} rooms, all with unread messages")
            rl = bench_room_list(stack, admin, args)
        pids = stack.fcgi_pids() if stack.dir else []

        ratio = s["rate"] / pg["tps"] if pg and pg["tps"] else float("nan")
        print()
        print("=" * 72)
        print("RESULTS")
        print("=" * 72)
        print(f"send path (lighttpd + roost.fcgi + PostgreSQL + Redis), {args.clients} connections:")
        print(f"  {s['rate']:9.1f} messages/s   ({s['created']} sent in {s['secs']:.1f} s)")
        print(f"  latency  p50 {ms(s['p50_us'])}   p90 {ms(s['p90_us'])}   p99 {ms(s['p99_us'])}   "
              f"max {ms(s['max_us'])}")
        print(f"  non-201 answers: {s['non201']} (429: {s['limited']}), socket errors: {s['sock_errors']}")
        consistent = True
        if s["stored"] is not None:
            consistent = s["stored"] == s["events"] and 0 <= s["stored"] - s["created"] <= args.clients
            print(f"  stored {s['stored']} messages, {s['events']} message.created events "
                  f"({'consistent' if consistent else 'MISMATCH!'}; wrk does not count the <= {args.clients} "
                  "requests in flight at the end)")
        if pg:
            print(f"raw PostgreSQL single-row INSERT (pgbench, {db_mode(stack)}), {args.clients} clients:")
            print(f"  {pg['tps']:9.1f} inserts/s    (average latency {pg['latency_ms']:.2f} ms, {pg['rows']} rows)")
            print(f"  {pg_w['tps']:9.1f} inserts/s    with {stack.workers or args.clients} clients "
                  "(one per roost.fcgi worker)")
            verdict = "meets" if ratio >= 0.5 else "MISSES"
            print(f"ratio send path / raw insert: {ratio:.2f}x   (target >= 0.5x: {verdict} the target)")
        print(f"baseline GET /api/v1/me (auth + one row), {args.clients} connections: {me['rate']:.1f} requests/s, "
              f"p50 {ms(me['p50_us']).strip()}, p99 {ms(me['p99_us']).strip()}")
        print(f"  send path / GET /me: {s['rate'] / me['rate']:.2f}x")
        print(f"floor GET /api/v1/health (no auth; SELECT 1 + Redis PING), {args.clients} connections: "
              f"{floor['rate']:.1f} requests/s, p50 {ms(floor['p50_us']).strip()}"
              + (f": {floor['rate'] / pg['tps']:.2f}x of a raw insert" if pg else ""))
        if rl:
            print(f"GET /api/v1/rooms, {rl['rooms']} rooms in the answer ({rl['bytes'] // 1024} KiB), "
                  f"{rl['n']} requests on one connection:")
            print(f"  latency  p50 {ms(rl['p50'])}   p99 {ms(rl['p99'])}   mean {ms(rl['mean'])}")
        if stack.dir:
            print(f"workers alive: {len(pids)} of {stack.workers}")
        # One line for scripts that compare runs.
        print(f"SUMMARY sends_per_s={s['rate']:.1f} send_p50_ms={s['p50_us'] / 1000:.2f} "
              f"send_p99_ms={s['p99_us'] / 1000:.2f} me_per_s={me['rate']:.1f} health_per_s={floor['rate']:.1f} "
              f"pgbench_per_s={pg['tps'] if pg else 0:.1f} database={db_mode(stack) if have_db else '?'}")
        if s["non201"]:
            print(f"WARNING: {s['non201']} sends were not 201; only 201s count in the rate", file=sys.stderr)
        if not consistent:
            print("WARNING: acknowledged, stored and event counts differ", file=sys.stderr)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
