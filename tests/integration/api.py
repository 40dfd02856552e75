#!/usr/bin/python3
"""HTTP client helpers for Roost's integration tests (stdlib only).

    from harness import Stack
    import api

    stack = Stack(workers=2)
    email, password = api.make_admin(stack)          # roostctl migrate + create-admin
    admin = api.login(stack, email, password)         # the login answer (dict)
    status, headers, body = api.request(stack, "GET", "/me", token=admin["token"])

request(stack, method, path, json=None, token=None, cookies=None, headers=None,
        raw_body=None, content_type="application/json", timeout=15)
    -> (status, headers, parsed JSON or None)
    `path` is under /api/v1 unless it starts with /api/. `json` is encoded
    with json.dumps (None: no body); `raw_body` (bytes or str) is sent
    exactly as given. `content_type=None`
    sends no Content-Type header. `token` adds `Authorization: Bearer
    <token>`. `cookies` is a dict sent as one Cookie header. `headers` is a
    http.client.HTTPMessage: case-insensitive `headers["X-RateLimit-Limit"]`,
    `headers.get_all("Set-Cookie")`. The body is parsed as JSON when it is
    JSON; otherwise the third value is None and `last_raw_body()` has the
    bytes.

Browser(stack)
    A cookie jar: .request(...) sends and stores cookies like a browser on
    plain http (Max-Age=0 / past Expires delete). .cookies is the jar.

parse_set_cookie(value) -> (name, value, {attribute-lower: value or True})
set_cookies(headers) -> {name: (value, attrs)}

err(body) -> the error object's code (asserts the error body's shape).
expect_error(resp, status, code, field=...) asserts the status (or one of a
    tuple of statuses), the error body and (when given) the field.

path_table() -> docs/api.md's table of what each shipped web server
    configuration answers to refused paths; check_path_answers(port,
    column, prefix) sends each path raw and asserts that column's answer.
"""
import email.utils
import http.client
import itertools
import json as _json
import os
import re
import subprocess
import time

from harness import BUILD_DIR, REPO, raw_request

API_PREFIX = "/api/v1"
ROOSTCTL = os.path.join(BUILD_DIR, "roostctl")
_last_raw = [b""]
_counter = itertools.count(1)


def unique(prefix="u"):
    """A short string unique within this test process."""
    return f"{prefix}{os.getpid() % 10000}x{next(_counter)}"


def _full_path(path):
    if path.startswith("/api/"):
        return path
    if not path.startswith("/"):
        path = "/" + path
    return API_PREFIX + path


def last_raw_body():
    """The raw bytes of the last response body read by request()."""
    return _last_raw[0]


def request(stack, method, path, json=None, token=None, cookies=None, headers=None,
            raw_body=None, content_type="application/json", timeout=15):
    """One HTTP request on a fresh connection: (status, headers, json|None)."""
    hdrs = {"Connection": "close", "User-Agent": "roost-tests/1"}
    body = None
    if raw_body is not None:
        body = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
    elif json is not None:
        body = _json.dumps(json).encode("utf-8")
    if body is not None and content_type is not None:
        hdrs["Content-Type"] = content_type
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    if cookies:
        hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if headers:
        for k, v in headers.items():
            # a header given as None is removed (e.g. no User-Agent)
            for existing in list(hdrs):
                if existing.lower() == k.lower():
                    del hdrs[existing]
            if v is not None:
                hdrs[k] = v
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=timeout)
    try:
        # skip_accept_encoding: keep the request minimal; Host is added.
        conn.putrequest(method, _full_path(path), skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        elif method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", "0")
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        status, rh = resp.status, resp.msg
    finally:
        conn.close()
    _last_raw[0] = data
    parsed = None
    if data:
        try:
            parsed = _json.loads(data)
        except ValueError:
            parsed = None
    return status, rh, parsed


def get(stack, path, token=None, **kw):
    return request(stack, "GET", path, token=token, **kw)


def post(stack, path, json=None, token=None, **kw):
    return request(stack, "POST", path, json=json, token=token, **kw)


def patch(stack, path, json=None, token=None, **kw):
    return request(stack, "PATCH", path, json=json, token=token, **kw)


def delete(stack, path, token=None, **kw):
    return request(stack, "DELETE", path, token=token, **kw)


# ---------------------------------------------------------------- errors

def err(body):
    """The error code of an error body, after checking its shape."""
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"not an error body: {body!r} (raw {last_raw_body()[:200]!r})"
    e = body["error"]
    assert isinstance(e.get("code"), str) and e["code"].isupper(), e
    assert isinstance(e.get("message"), str) and e["message"], e
    return e["code"]


_ANY = object()


def expect_error(resp, status, code=None, field=_ANY, what=""):
    """Assert resp (status, headers, body) is the given error."""
    st, _, body = resp
    if isinstance(status, (tuple, list, set)):  # any of several statuses
        assert st in status, f"{what}: expected one of {status} {code or ''}, got {st} {body!r}"
    else:
        assert st == status, f"{what}: expected {status} {code or ''}, got {st} {body!r}"
    c = err(body)
    if code is not None:
        if isinstance(code, (tuple, list, set)):
            assert c in code, f"{what}: expected code in {code}, got {c} {body!r}"
        else:
            assert c == code, f"{what}: expected code {code}, got {c} {body!r}"
    if field is not _ANY:
        got = body["error"].get("field")
        assert got == field, f"{what}: expected field {field!r}, got {got!r} in {body!r}"
    return body["error"]


# ---------------------------------------------------------------- cookies

def parse_set_cookie(value):
    """'a=b; Path=/; HttpOnly' -> ('a', 'b', {'path': '/', 'httponly': True})."""
    parts = [p.strip() for p in value.split(";")]
    name, _, val = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), val.strip(), attrs


def set_cookies(headers):
    """{name: (value, attrs)} from every Set-Cookie header of a response."""
    out = {}
    for v in headers.get_all("Set-Cookie") or []:
        name, val, attrs = parse_set_cookie(v)
        out[name] = (val, attrs)
    return out


def cookie_is_deletion(val, attrs):
    """True when a Set-Cookie tells the browser to drop the cookie."""
    ma = attrs.get("max-age")
    if ma is not None and ma is not True:
        try:
            if int(ma) <= 0:
                return True
        except ValueError:
            pass
    exp = attrs.get("expires")
    if isinstance(exp, str):
        try:
            when = email.utils.parsedate_to_datetime(exp).timestamp()
            if when < time.time():
                return True
        except (TypeError, ValueError):
            pass
    return False


class Browser:
    """A minimal cookie jar over request(): one origin, plain http."""

    def __init__(self, stack):
        self.stack = stack
        self.cookies = {}

    def request(self, method, path, **kw):
        cookies = dict(self.cookies)
        cookies.update(kw.pop("cookies", None) or {})
        st, h, body = request(self.stack, method, path, cookies=cookies or None, **kw)
        for name, (val, attrs) in set_cookies(h).items():
            if cookie_is_deletion(val, attrs) or val == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = val
        return st, h, body


# ---------------------------------------------------------------- accounts

ADMIN_PASSWORD = "admin password for tests 1"
DEFAULT_PASSWORD = "member password 123"


def ctl(stack, *args, env=None, stdin=b""):
    e = stack.env()
    e.pop("ROOST_ADMIN_PASSWORD", None)
    e.update(env or {})
    return subprocess.run([ROOSTCTL, *args], env=e, input=stdin, capture_output=True, timeout=60)


_migrated = set()


def migrate(stack):
    if stack.dir in _migrated:
        return
    p = ctl(stack, "migrate")
    assert p.returncode == 0, f"roostctl migrate failed: {p.stderr!r}"
    _migrated.add(stack.dir)


def make_admin(stack, email=None, password=ADMIN_PASSWORD, name="Admin"):
    """Migrate (once) and create an admin with roostctl: (email, password)."""
    migrate(stack)
    email = email or f"{unique('admin')}@example.com"
    p = ctl(stack, "create-admin", email, "--name", name,
            env={"ROOST_ADMIN_PASSWORD": password})
    assert p.returncode == 0, f"roostctl create-admin failed ({p.returncode}): {p.stderr!r}"
    return email, password


def login(stack, email, password, device="desktop", expect=200, headers=None):
    """POST /auth/login; asserts the status; returns the answer (dict)."""
    body = {"email": email, "password": password}
    if device is not None:
        body["device"] = device
    st, h, doc = post(stack, "/auth/login", body, headers=headers)
    assert st == expect, f"login {email} ({device}): expected {expect}, got {st} {doc!r}"
    return doc


def create_user(stack, admin_token, email=None, name=None, password=DEFAULT_PASSWORD,
                role="member", must_change_password=False):
    """POST /admin/users; returns (user dict, email, password)."""
    email = email or f"{unique('user')}@example.com"
    name = name or email.split("@")[0]
    st, _, doc = post(stack, "/admin/users",
                      {"email": email, "name": name, "password": password, "role": role,
                       "must_change_password": must_change_password}, token=admin_token)
    assert st == 201, f"POST /admin/users {email}: expected 201, got {st} {doc!r}"
    return doc, email, password


def set_settings(stack, admin_token, **values):
    st, _, doc = patch(stack, "/admin/settings", values, token=admin_token)
    assert st == 200, f"PATCH /admin/settings {values}: expected 200, got {st} {doc!r}"
    return doc


RELAXED = {"login_attempts_per_15min": 1000, "login_failures_per_ip_per_15min": 100000,
           "registrations_per_hour": 1000, "requests_per_minute": 100000}


def relax_limits(stack, admin_token):
    """Raise the rate limits so tests not about them never hit them."""
    return set_settings(stack, admin_token, **RELAXED)


def me_status(stack, token):
    """(status, error code or None) of GET /me with a bearer token."""
    st, _, body = get(stack, "/me", token=token)
    code = body["error"]["code"] if st >= 400 and isinstance(body, dict) and "error" in body else None
    return st, code


_admin_sessions = {}


def admin_session(stack):
    """(token, email, password) of an admin of stack with relaxed limits,
    made on first use and kept for the file's other tests."""
    if stack.dir not in _admin_sessions:
        email, password = make_admin(stack)
        tok = login(stack, email, password)["token"]
        relax_limits(stack, tok)
        _admin_sessions[stack.dir] = (tok, email, password)
    return _admin_sessions[stack.dir]


_sql_sessions = {}


def clear_of_window_edge(window_s, need_s=10):
    """Fixed-window limits reset at multiples of window_s (epoch seconds):
    a test that counts hits to the limit must not straddle a reset. Waits
    past the next one when it is less than need_s away."""
    left = window_s - time.time() % window_s
    if left < need_s:
        time.sleep(left + 0.5)


def sql(stack, query):
    """Run SQL in the tenant schema; stdout (unaligned, tuples only).
    Uses one long-lived psql per stack (see SqlSession)."""
    s = _sql_sessions.get(stack.dir)
    if s is None or s.p.poll() is not None:
        s = _sql_sessions[stack.dir] = SqlSession(stack)
    return s.query(query)


def psql_tables(stack):
    """Tables of the tenant schema."""
    schema = stack.env_vars.get("ROOST_SCHEMA", "roost")
    out = stack.psql(f"SELECT tablename FROM pg_tables WHERE schemaname = {q(schema)} ORDER BY 1")
    return [t for t in out.splitlines() if t]


def token_table(stack):
    """The table holding API tokens (the contract does not name it)."""
    names = [t for t in psql_tables(stack) if "token" in t]
    assert names, f"no API-token table in schema roost: {psql_tables(stack)}"
    return names[0]


def q(sql):
    """Quote a string for SQL."""
    return "'" + sql.replace("'", "''") + "'"


# ---------------------------------------------------------------- roost.cgi

ROOST_CGI = os.path.join(BUILD_DIR, "roost.cgi")


def cgi_request(stack, method, path, json=None, token=None, remote_addr="127.0.0.1",
                https=False, headers=None, raw_body=None, content_type="application/json"):
    """Run one request through roost.cgi (the same server code as the
    workers, same database and Redis) with a chosen REMOTE_ADDR and HTTPS,
    which lighttpd over plain TCP cannot vary. (status, headers, json|None)."""
    body = b""
    if raw_body is not None:
        body = raw_body.encode() if isinstance(raw_body, str) else raw_body
    elif json is not None:
        body = _json.dumps(json).encode()
    uri = _full_path(path)
    env = stack.env()
    env.update({
        "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "REQUEST_URI": uri,
        "QUERY_STRING": uri.partition("?")[2], "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote_addr, "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": "roost-tests-cgi/1", "REQUEST_SCHEME": "https" if https else "http",
        "SERVER_PORT": "443" if https else "80",
    })
    if https:
        env["HTTPS"] = "on"
    else:
        env.pop("HTTPS", None)
    if body or method in ("POST", "PUT", "PATCH"):
        env["CONTENT_LENGTH"] = str(len(body))
        if content_type:
            env["CONTENT_TYPE"] = content_type
    if token is not None:
        env["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    for k, v in (headers or {}).items():
        env["HTTP_" + k.upper().replace("-", "_")] = v
    p = subprocess.run([ROOST_CGI], env=env, input=body, capture_output=True, timeout=30)
    assert p.returncode == 0, f"roost.cgi exited {p.returncode}: {p.stderr[-500:]!r}"
    out = p.stdout
    sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
    head, _, data = out.partition(sep)
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    status = 200
    msg = http.client.HTTPMessage()
    for line in lines:
        k, _, v = line.decode("latin-1").partition(":")
        if k.lower() == "status":
            status = int(v.split()[0])
        elif k:
            msg[k.strip()] = v.strip()
    _last_raw[0] = data
    parsed = None
    if data:
        try:
            parsed = _json.loads(data)
        except ValueError:
            parsed = None
    return status, msg, parsed


class SqlSession:
    """One long-lived psql in the tenant schema, for many quick queries
    (starting psql costs ~0.15 s). .query(sql) -> stdout text (unaligned,
    tuples only); an SQL error raises AssertionError."""

    _END = "__roost_sql_end__"

    def __init__(self, stack):
        schema = stack.env_vars.get("ROOST_SCHEMA", "roost")
        self.p = subprocess.Popen(
            ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=0",
             "-d", stack.env_vars["ROOST_DATABASE_URL"]],
            env=stack.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.query(f"SET search_path TO {schema}")

    def query(self, sql):
        self.p.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + self._END + "\n")
        self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise AssertionError("psql ended: " + "".join(lines))
            if line.rstrip("\n") == self._END:
                break
            lines.append(line)
        out = "".join(lines).strip()
        if out.startswith(("ERROR:", "psql:")):
            raise AssertionError(f"SQL failed: {out}")
        return out

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()


# ---------------------------------------------------------------- rooms and messages
# Helpers for docs/rooms.md. The assert-on-status helpers return the parsed
# answer; the *_resp variants return (status, headers, body) untouched.

def qs(**params):
    """'?a=1&b=x' from the params that are not None ('' when none)."""
    from urllib.parse import urlencode
    items = [(k, v) for k, v in params.items() if v is not None]
    return ("?" + urlencode(items)) if items else ""


def member_session(stack, admin_token, name=None, display_name=None, role="member"):
    """A new user, logged in: (user dict, token). `display_name` is set with
    PATCH /me when given."""
    user, email, password = create_user(stack, admin_token, name=name, role=role)
    token = login(stack, email, password)["token"]
    if display_name is not None:
        st, _, doc = patch(stack, "/me", {"display_name": display_name}, token=token)
        assert st == 200, f"PATCH /me display_name: {st} {doc!r}"
        user = doc
    return user, token


def create_room_resp(stack, token, name=None, kind="public", **fields):
    body = {"name": name if name is not None else unique("room"), "kind": kind}
    body.update(fields)
    return post(stack, "/rooms", body, token=token)


def create_room(stack, token, name=None, kind="public", **fields):
    """POST /rooms; asserts 201; returns the room."""
    st, _, doc = create_room_resp(stack, token, name, kind, **fields)
    assert st == 201, f"POST /rooms {name!r} {kind} {fields}: expected 201, got {st} {doc!r}"
    return doc


def get_room(stack, token, room_id, expect=200):
    st, _, doc = get(stack, f"/rooms/{room_id}", token=token)
    assert st == expect, f"GET /rooms/{room_id}: expected {expect}, got {st} {doc!r}"
    return doc


def join_room(stack, token, room_id, password=None, expect=200):
    body = {} if password is None else {"password": password}
    st, _, doc = post(stack, f"/rooms/{room_id}/join", body, token=token)
    assert st == expect, f"POST /rooms/{room_id}/join: expected {expect}, got {st} {doc!r}"
    return doc


def join_by_code(stack, token, code, password=None, expect=200):
    body = {"invite_code": code}
    if password is not None:
        body["password"] = password
    st, _, doc = post(stack, "/rooms/join-by-code", body, token=token)
    assert st == expect, f"POST /rooms/join-by-code: expected {expect}, got {st} {doc!r}"
    return doc


def leave_room(stack, token, room_id, expect=204):
    st, _, doc = request(stack, "POST", f"/rooms/{room_id}/leave", token=token)
    assert st == expect, f"POST /rooms/{room_id}/leave: expected {expect}, got {st} {doc!r}"
    return doc


def add_members(stack, token, room_id, user_ids, expect=200):
    st, _, doc = post(stack, f"/rooms/{room_id}/members", {"user_ids": list(user_ids)}, token=token)
    assert st == expect, f"POST /rooms/{room_id}/members {user_ids}: expected {expect}, got {st} {doc!r}"
    return doc


def remove_member(stack, token, room_id, user_id, expect=204):
    st, _, doc = delete(stack, f"/rooms/{room_id}/members/{user_id}", token=token)
    assert st == expect, f"DELETE /rooms/{room_id}/members/{user_id}: expected {expect}, got {st} {doc!r}"
    return doc


def my_rooms(stack, token):
    """GET /rooms -> the list of rooms."""
    st, _, doc = get(stack, "/rooms", token=token)
    assert st == 200, f"GET /rooms: {st} {doc!r}"
    assert isinstance(doc.get("rooms"), list), doc
    return doc["rooms"]


def my_room(stack, token, room_id):
    """My entry for one room in GET /rooms (with counts), or None."""
    for r in my_rooms(stack, token):
        if r["id"] == room_id:
            return r
    return None


def open_dm(stack, token, user_id, expect=(200, 201)):
    st, _, doc = post(stack, "/dms", {"user_id": user_id}, token=token)
    exp = expect if isinstance(expect, tuple) else (expect,)
    assert st in exp, f"POST /dms {user_id}: expected {expect}, got {st} {doc!r}"
    return st, doc


def send_resp(stack, token, room_id, content, type="text", **fields):
    body = {"type": type, "content": content}
    body.update(fields)
    return post(stack, f"/rooms/{room_id}/messages", body, token=token)


def send(stack, token, room_id, content, type="text", expect=201, **fields):
    """POST /rooms/{id}/messages; asserts the status; returns the message."""
    st, _, doc = send_resp(stack, token, room_id, content, type, **fields)
    assert st == expect, f"send to room {room_id} {str(content)[:60]!r}: expected {expect}, got {st} {doc!r}"
    return doc


def messages_resp(stack, token, room_id, **params):
    return get(stack, f"/rooms/{room_id}/messages" + qs(**params), token=token)


def messages(stack, token, room_id, **params):
    """GET /rooms/{id}/messages; asserts 200; returns the answer dict."""
    st, _, doc = messages_resp(stack, token, room_id, **params)
    assert st == 200, f"GET /rooms/{room_id}/messages {params}: expected 200, got {st} {doc!r}"
    assert isinstance(doc.get("messages"), list) and isinstance(doc.get("has_more"), bool), doc
    return doc


def find_message(stack, token, room_id, message_id):
    """The message as GET /rooms/{id}/messages?around=ID shows it."""
    doc = messages(stack, token, room_id, around=message_id, limit=1)
    for m in doc["messages"]:
        if m["id"] == message_id:
            return m
    raise AssertionError(f"message {message_id} not in around={message_id}: {doc!r}")


def mark_read(stack, token, room_id, message_id, expect=200):
    st, _, doc = post(stack, f"/rooms/{room_id}/read", {"message_id": message_id}, token=token)
    assert st == expect, f"POST /rooms/{room_id}/read {message_id}: expected {expect}, got {st} {doc!r}"
    return doc


def text_of(content):
    """Every string inside a (system) message content, flattened."""
    out = []

    def walk(v):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(content)
    return out


def last_system_message(stack, token, room_id):
    """The newest system message of a room among its last 100 messages."""
    doc = messages(stack, token, room_id, limit=100)
    sys_msgs = [m for m in doc["messages"] if m["type"] == "system"]
    return sys_msgs[-1] if sys_msgs else None


def bulk_send(stack, tokens, room_id, n, text="message {i}", threads=4):
    """Send n text messages (formatted with i = 0..n-1) into a room through
    the API, spread over the given tokens (each token sends i where
    i % len(tokens) == its index) from a few threads. Returns the created
    messages ordered by id. The caller raises messages_per_10s first."""
    import concurrent.futures
    tokens = list(tokens)

    def one(i):
        tok = tokens[i % len(tokens)]
        for attempt in range(3):
            st, _, doc = send_resp(stack, tok, room_id, text.format(i=i),
                                   client_msg_id=f"bulk-{room_id}-{i}")
            if st in (200, 201):
                return doc
            if st >= 500 or st == 429:
                time.sleep(0.2 * (attempt + 1))
                continue
            break
        raise AssertionError(f"bulk send {i}: {st} {doc!r}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as ex:
        out = list(ex.map(one, range(n)))
    return sorted(out, key=lambda m: m["id"])


def table_counts(stack, tables=("rooms", "room_members", "messages", "message_mentions",
                                "reactions", "pins", "events")):
    """{table: row count} of the tenant schema, in one query."""
    present = set(psql_tables(stack))
    tables = [t for t in tables if t in present]
    query = "SELECT concat_ws('|', " + ", ".join(f"(SELECT count(*) FROM {t})" for t in tables) + ")"
    return dict(zip(tables, (int(x) for x in sql(stack, query).split("|"))))


# ---------------------------------------------------------------- paths

# The columns of docs/api.md's "Paths" table, by the header each has there.
PATH_COLUMNS = {"lighttpd": "lighttpd", "nginx": "nginx",
                "apache": "Apache (mod_fcgid, mod_proxy_fcgi, CGI)",
                "htaccess": "Apache `.htaccess` in a user folder"}
_PATH_CODES = {400: "BAD_REQUEST", 403: "FORBIDDEN", 404: "NOT_FOUND"}


def path_table():
    """[(path, {column key: (status, host_page)})] from the table under
    "### Paths" in docs/api.md: what each shipped configuration answers.
    host_page: the cell says "(host)" (not our error body)."""
    src = os.environ.get("ROOST_SRC_DIR") or REPO
    with open(os.path.join(src, "docs", "api.md"), encoding="utf-8") as f:
        text = f.read()
    sect = text.split("\n### Paths\n", 1)
    assert len(sect) == 2, "docs/api.md has no \"### Paths\" section"
    lines = [ln for ln in sect[1].split("\n## ", 1)[0].splitlines() if ln.startswith("|")]
    assert len(lines) > 2, "docs/api.md \"### Paths\" has no table"

    def cells(ln):
        return [c.strip() for c in ln.strip().strip("|").split("|")]
    head = cells(lines[0])
    assert head[0] == "path", head
    cols = {}
    for key, name in PATH_COLUMNS.items():
        assert name in head, f"docs/api.md's path table has no column {name!r}: {head}"
        cols[key] = head.index(name)
    rows = []
    for ln in lines[2:]:
        c = cells(ln)
        m = re.fullmatch(r"`([^`]+)`", c[0])
        assert m and len(c) == len(head), f"docs/api.md path table row: {ln!r}"
        answers = {}
        for key, i in cols.items():
            cm = re.fullmatch(r"(\d{3})( \(host\))?", c[i])
            assert cm, f"docs/api.md path table cell {c[i]!r} in {ln!r}"
            answers[key] = (int(cm.group(1)), cm.group(2) is not None)
        rows.append((m.group(1), answers))
    return rows


def check_path_answers(port, column, prefix=""):
    """Sends GET prefix+path for every row of path_table(), as raw bytes
    (a backslash stays a backslash), and asserts the column's status; a
    JSON error body with the status's code unless the cell says "(host)";
    never a file's bytes. Returns the rows checked."""
    rows = path_table()
    for path, answers in rows:
        want, host = answers[column]
        req = f"GET {prefix}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        st, hd, body = raw_request(port, req.encode("latin-1"), timeout=10)
        what = f"{column}: GET {prefix}{path}"
        assert st == want, f"{what}: docs/api.md says {want}, the server answered {st} {body[:200]!r}"
        assert b"root:" not in body, f"{what}: a file's bytes: {body[:200]!r}"
        if not host:
            try:
                code = _json.loads(body)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                raise AssertionError(f"{what}: not the JSON error body: {hd} {body[:200]!r}")
            assert code == _PATH_CODES[want], f"{what}: code {code}, expected {_PATH_CODES[want]}"
    return rows
