#!/usr/bin/python3
"""Integration: accounts, sessions, API tokens, roles and rate limits
(docs/auth.md) through real lighttpd + roost.fcgi, PostgreSQL and Redis.

Readings of docs/auth.md where it leaves room (each is also noted where it
is tested):
- A session ended by logout, a password change, a reset, a suspension or
  DELETE /me/sessions is 401 UNAUTHORIZED; only a same-device-class login
  gives 401 SESSION_DISPLACED.
- An API token of a suspended user is refused like a session: 401
  UNAUTHORIZED (the credential is not valid while the user is suspended);
  lifting the suspension makes it work again ("restores the account as it
  was"), while the sessions that suspension ended stay ended.
- A 51st live API token is refused with a 4xx error body (400
  VALIDATION_ERROR, 403 FORBIDDEN or 409 CONFLICT); the status is not in
  the contract, the refusal is.
- `next_after` is the id of the last user returned when `has_more` is true
  (null or that id when false). `q` is a literal prefix: `%` and `_` are
  not wildcards. A query-parameter error names the parameter in `field`.
- Deleting a user removes the rows of its sessions and API tokens ("every
  session and API token of the user is removed"): none is left, revoked or
  not (a kept row would keep the IP and user agent).
- Settings changed by PATCH /admin/settings apply to the next request on
  any worker.
- Cookies: both cookies `Path=/` and `SameSite=Lax`; `roost_session`
  HttpOnly, `roost_csrf` readable (not HttpOnly); `Secure` exactly when the
  request came over HTTPS (checked through roost.cgi with HTTPS=on, since
  the test lighttpd has no TLS). Logout answers with Set-Cookie headers that
  delete both (Max-Age=0 or an Expires in the past).
- Requests that answer 401 and 429 on login carry the X-RateLimit-* headers
  too ("Limited routes answer with ..."); X-RateLimit-Limit is the setting.
"""
import calendar
import concurrent.futures
import json
import re
import statistics
import threading
import time
import urllib.parse

import jwt  # python3-jwt (PyJWT 2.6), used only to read and check tokens

import api
from api import delete, expect_error, get, patch, post
from harness import Stack, run_tests, test, wait_until

stack = Stack(workers=2)
PIDS = stack.fcgi_pids()
ADMIN_EMAIL, ADMIN_PASSWORD = api.make_admin(stack)
SECRET = stack.env_vars["ROOST_JWT_SECRET"].encode()
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DEFAULTS = {"open_registration": False, "password_min_length": 12,
            "session_lifetime_hours": 720, "single_session_per_device": False, "app_name": "Roost",
            "login_attempts_per_15min": 10, "login_failures_per_ip_per_15min": 100,
            "registrations_per_hour": 5, "requests_per_minute": 600}
PUBLIC_FIELDS = {"id", "name", "display_name", "about", "avatar_url", "role", "suspended",
                 "deleted", "created_at"}
PRIVATE_FIELDS = {"email", "must_change_password", "last_seen_at"}

_admin = {}


def admin():
    """The admin's bearer token (logged in once, on desktop)."""
    if not _admin:
        _admin.update(api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD))
    return _admin["token"]


def admin_id():
    admin()
    return _admin["user"]["id"]


def relax():
    api.relax_limits(stack, admin())


def flush():
    """Reset every rate-limit counter (Redis holds only counters and caches)."""
    assert stack.redis_cli("FLUSHALL") == "OK"


def member(must_change_password=False, **kw):
    """A new member, logged in on desktop: (user, email, password, token)."""
    user, email, password = api.create_user(stack, admin(), must_change_password=must_change_password,
                                            **kw)
    doc = api.login(stack, email, password)
    return user, email, password, doc["token"]


def me(token):
    return api.me_status(stack, token)


def assert_dead(token, code="UNAUTHORIZED", what="token", times=4):
    """The token is refused on every worker (several requests)."""
    for _ in range(times):
        st, c = me(token)
        assert (st, c) == (401, code), f"{what}: expected 401 {code}, got {st} {c}"


def assert_alive(token, what="token", times=4):
    for _ in range(times):
        st, c = me(token)
        assert st == 200, f"{what}: expected 200, got {st} {c}"


def epoch(ts):
    assert TIME_RE.match(ts or ""), f"not an RFC 3339 UTC time with milliseconds: {ts!r}"
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000


def rl_headers(h, what):
    """(limit, remaining, reset) from the X-RateLimit-* headers."""
    for k in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert h.get(k) is not None and h[k].strip().isdigit(), f"{what}: header {k} = {h.get(k)!r}"
    return int(h["X-RateLimit-Limit"]), int(h["X-RateLimit-Remaining"]), int(h["X-RateLimit-Reset"])


# ------------------------------------------------------------------ settings

@test
def settings_defaults():
    st, _, s = get(stack, "/admin/settings", token=admin())
    assert st == 200, (st, s)
    for k, v in DEFAULTS.items():
        assert k in s, f"settings lack {k}: {s}"
        assert s[k] == v and type(s[k]) is type(v), f"default {k}: expected {v!r}, got {s[k]!r}"


@test
def register_is_closed_by_default():
    users = api.sql(stack, "SELECT count(*) FROM users")
    resp = post(stack, "/auth/register", {"email": "early@example.com", "password": "long enough pass",
                                          "name": "Early"})
    expect_error(resp, 403, "FORBIDDEN", what="register while closed")
    assert api.sql(stack, "SELECT count(*) FROM users") == users, "a closed registration stored a user"
    relax()


# ------------------------------------------------------------------ login

@test
def login_answer_token_and_cookies():
    st, h, doc = post(stack, "/auth/login", {"email": ADMIN_EMAIL.upper(), "password": ADMIN_PASSWORD,
                                             "device": "mobile"})
    assert st == 200, (st, doc)
    for k in ("token", "token_type", "expires_at", "session_id", "csrf_token", "user"):
        assert k in doc, f"login answer lacks {k}: {doc}"
    assert doc["token_type"].lower() == "bearer", doc["token_type"]
    assert isinstance(doc["session_id"], int) and doc["session_id"] > 0
    assert isinstance(doc["csrf_token"], str) and len(doc["csrf_token"]) >= 16, doc["csrf_token"]
    u = doc["user"]
    assert u["email"] == ADMIN_EMAIL.lower() and u["role"] == "admin", u
    assert PUBLIC_FIELDS | PRIVATE_FIELDS <= set(u), f"own view lacks {PUBLIC_FIELDS | PRIVATE_FIELDS - set(u)}"
    assert "password_hash" not in u and "password" not in u
    epoch(u["created_at"])
    # the JWT: HS256, the claims of the contract, signed with ROOST_JWT_SECRET
    hdr = jwt.get_unverified_header(doc["token"])
    assert hdr.get("alg") == "HS256" and hdr.get("typ") == "JWT", hdr
    claims = jwt.decode(doc["token"], SECRET, algorithms=["HS256"], audience="roost", issuer="roost",
                        leeway=60)
    assert claims["sub"] == str(u["id"]) and claims["sid"] == doc["session_id"], claims
    assert isinstance(claims["tid"], str) and claims["tid"], claims
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int), claims
    assert abs(claims["iat"] - time.time()) < 120, claims
    assert abs(claims["exp"] - claims["iat"] - 720 * 3600) <= 5, "lifetime is session_lifetime_hours"
    assert abs(epoch(doc["expires_at"]) - claims["exp"]) <= 1, (doc["expires_at"], claims["exp"])
    # cookies over plain http
    c = api.set_cookies(h)
    assert "roost_session" in c and "roost_csrf" in c, h.get_all("Set-Cookie")
    val, a = c["roost_session"]
    assert val and a.get("httponly") is True, f"roost_session must be HttpOnly: {a}"
    assert str(a.get("samesite", "")).lower() == "lax", a
    assert a.get("path") == "/", a
    assert "secure" not in a, f"no Secure over plain http: {a}"
    val, a = c["roost_csrf"]
    assert val == doc["csrf_token"], "roost_csrf cookie = csrf_token"
    assert "httponly" not in a, "roost_csrf must be readable by scripts"
    assert str(a.get("samesite", "")).lower() == "lax" and a.get("path") == "/", a
    assert "secure" not in a, a
    # the login answer itself is a secret: never cached
    assert "no-store" in (h.get("Cache-Control") or ""), h.get("Cache-Control")
    assert_alive(doc["token"], "fresh admin mobile token", times=1)


@test
def cookies_are_secure_over_https():
    # lighttpd passes HTTPS only for TLS, which the test stack does not
    # have; roost.cgi is the same server code and lets us say HTTPS=on.
    st, h, doc = api.cgi_request(stack, "POST", "/auth/login",
                                 {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "device": "mobile"},
                                 https=True)
    assert st == 200, (st, doc)
    c = api.set_cookies(h)
    assert c["roost_session"][1].get("secure") is True, c
    assert c["roost_csrf"][1].get("secure") is True, c
    assert c["roost_session"][1].get("httponly") is True, c


@test
def register_when_open():
    api.set_settings(stack, admin(), open_registration=True)
    try:
        email = f"{api.unique('Reg')}@Example.COM"
        st, h, doc = post(stack, "/auth/register", {"email": email, "password": "a fine long password",
                                                    "name": "Reggie", "device": "mobile"})
        assert st == 201, (st, doc)
        for k in ("token", "token_type", "expires_at", "session_id", "csrf_token", "user"):
            assert k in doc, f"register answer lacks {k}: {doc}"
        u = doc["user"]
        assert u["email"] == email.lower() and u["name"] == "Reggie", u
        assert u["role"] == "member" and u["must_change_password"] is False and u["suspended"] is False, u
        assert "roost_session" in api.set_cookies(h), "register sets the cookies"
        assert api.sql(stack, f"SELECT email FROM users WHERE id = {u['id']}") == email.lower()
        assert api.sql(stack, f"SELECT device FROM sessions WHERE id = {doc['session_id']}") == "mobile"
        st, _, mine = get(stack, "/me", token=doc["token"])
        assert st == 200 and mine["id"] == u["id"], (st, mine)
        # taken, in any case
        before = api.sql(stack, "SELECT count(*) FROM users")
        resp = post(stack, "/auth/register", {"email": email.lower(), "password": "another long password",
                                              "name": "Dup"})
        expect_error(resp, 409, "CONFLICT", field="email", what="register a taken email")
        assert api.sql(stack, "SELECT count(*) FROM users") == before
        # the password minimum is the tenant's
        api.set_settings(stack, admin(), password_min_length=20)
        resp = post(stack, "/auth/register", {"email": api.unique("short") + "@example.com",
                                              "password": "fifteen chars!!", "name": "Short"})
        expect_error(resp, 400, "VALIDATION_ERROR", field="password", what="password under the minimum")
        assert api.sql(stack, "SELECT count(*) FROM users") == before
    finally:
        api.set_settings(stack, admin(), open_registration=False, password_min_length=12)
    resp = post(stack, "/auth/register", {"email": api.unique("late") + "@example.com",
                                          "password": "a fine long password", "name": "Late"})
    expect_error(resp, 403, "FORBIDDEN", what="register after closing again")


@test
def logout_kills_the_token_immediately():
    _, _, _, token = member()
    assert_alive(token, "before logout")  # warms the session cache on both workers
    st, h, body = post(stack, "/auth/logout", token=token)
    assert st == 204, (st, body)
    c = api.set_cookies(h)
    for name in ("roost_session", "roost_csrf"):
        assert name in c and (api.cookie_is_deletion(*c[name]) or c[name][0] == ""), \
            f"logout must clear {name}: {h.get_all('Set-Cookie')}"
    assert_dead(token, what="token after logout")
    expect_error(post(stack, "/auth/logout", token=token), 401, "UNAUTHORIZED", what="second logout")
    expect_error(post(stack, "/auth/logout"), 401, "UNAUTHORIZED", what="logout without credentials")


# ------------------------------------------------------------------ /me

@test
def me_get_and_patch():
    user, email, _, token = member()
    st, _, doc = get(stack, "/me", token=token)
    assert st == 200 and doc["id"] == user["id"] and doc["email"] == email.lower(), (st, doc)
    assert PUBLIC_FIELDS | PRIVATE_FIELDS <= set(doc), set(doc)
    st, _, doc = patch(stack, "/me", {"name": "Renamed", "display_name": "Ren",
                                      "about": "line one\nline two", "avatar_url": "https://x.example/a.png"},
                       token=token)
    assert st == 200, (st, doc)
    assert (doc["name"], doc["display_name"], doc["about"], doc["avatar_url"]) == \
        ("Renamed", "Ren", "line one\nline two", "https://x.example/a.png"), doc
    # only what is sent changes
    st, _, doc = patch(stack, "/me", {"about": "just this"}, token=token)
    assert st == 200 and doc["display_name"] == "Ren" and doc["about"] == "just this", doc
    # null clears the optional fields
    st, _, doc = patch(stack, "/me", {"display_name": None, "about": None, "avatar_url": None}, token=token)
    assert st == 200, (st, doc)
    assert doc["display_name"] is None and doc["about"] is None and doc["avatar_url"] is None, doc
    assert doc["name"] == "Renamed"
    row = api.sql(stack, f"SELECT coalesce(display_name,'<null>') || '|' || coalesce(about,'<null>') || '|' "
                         f"|| coalesce(avatar_url,'<null>') FROM users WHERE id = {user['id']}")
    assert row == "<null>|<null>|<null>", row
    # name is required: null does not clear it
    expect_error(patch(stack, "/me", {"name": None}, token=token), 400, "VALIDATION_ERROR", field="name")
    expect_error(patch(stack, "/me", {"name": ""}, token=token), 400, "VALIDATION_ERROR", field="name")
    expect_error(patch(stack, "/me", {"avatar_url": "javascript:alert(1)"}, token=token), 400,
                 "VALIDATION_ERROR", field="avatar_url")
    expect_error(patch(stack, "/me", {"email": "new@example.com"}, token=token), 400,
                 "VALIDATION_ERROR", field="email")
    st, _, doc = get(stack, "/me", token=token)
    assert doc["name"] == "Renamed" and doc["email"] == email.lower(), doc
    # others see the public view only; admins see the private fields too
    _, _, _, other = member()
    st, _, seen = get(stack, f"/users/{user['id']}", token=other)
    assert st == 200 and seen["name"] == "Renamed", (st, seen)
    assert PUBLIC_FIELDS <= set(seen), set(seen)
    leaked = PRIVATE_FIELDS & set(seen)
    assert not leaked, f"another member sees {leaked}"
    st, _, seen = get(stack, f"/users/{user['id']}", token=admin())
    assert st == 200 and seen.get("email") == email.lower(), seen
    expect_error(get(stack, "/me"), 401, "UNAUTHORIZED", what="GET /me without credentials")


@test
def password_change_ends_the_other_sessions_only():
    user, email, password, desk = member()
    mob = api.login(stack, email, password, device="mobile")["token"]
    assert_alive(mob, "mobile before")
    # a wrong current password changes nothing
    resp = post(stack, "/me/password", {"current_password": "not the password", "new_password":
                                        "brand new password 1"}, token=desk)
    expect_error(resp, 403, "FORBIDDEN", field="current_password", what="wrong current password")
    assert_alive(mob, "mobile after a failed change")
    st, _, body = post(stack, "/me/password", {"current_password": password,
                                               "new_password": "brand new password 1"}, token=desk)
    assert st == 204, (st, body)
    assert_alive(desk, "the session that changed the password")
    assert_dead(mob, what="the other session after a password change")
    api.login(stack, email, password, expect=401)
    api.login(stack, email, "brand new password 1", device="mobile")
    h = api.sql(stack, f"SELECT password_hash FROM users WHERE id = {user['id']}")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), h


# ------------------------------------------------------------------ sessions

def session_id(token):
    return jwt.decode(token, options={"verify_signature": False})["sid"]


@test
def sessions_list_and_delete():
    user, email, password, first = member()
    d = api.login(stack, email, password, headers={"User-Agent": "desk-agent/1.0"})
    m = api.login(stack, email, password, device="mobile", headers={"User-Agent": "phone-agent/2.0"})
    assert delete(stack, f"/me/sessions/{session_id(first)}", token=d["token"])[0] == 204
    st, _, doc = get(stack, "/me/sessions", token=d["token"])
    assert st == 200, (st, doc)
    ss = doc["sessions"]
    assert sorted(s["id"] for s in ss) == sorted([d["session_id"], m["session_id"]]), \
        f"live sessions only (the first desktop one was ended): {ss}"
    by_id = {s["id"]: s for s in ss}
    for s in ss:
        for k in ("id", "device", "created_at", "last_used_at", "expires_at", "ip", "user_agent", "current"):
            assert k in s, f"session lacks {k}: {s}"
        for k in ("created_at", "last_used_at", "expires_at"):
            epoch(s[k])
        assert s["ip"] == "127.0.0.1", s
    assert by_id[d["session_id"]]["current"] is True and by_id[m["session_id"]]["current"] is False, ss
    assert by_id[d["session_id"]]["device"] == "desktop" and by_id[m["session_id"]]["device"] == "mobile"
    assert by_id[d["session_id"]]["user_agent"] == "desk-agent/1.0", by_id[d["session_id"]]
    assert by_id[m["session_id"]]["user_agent"] == "phone-agent/2.0", by_id[m["session_id"]]
    st, _, doc = get(stack, "/me/sessions", token=m["token"])
    assert {s["id"]: s["current"] for s in doc["sessions"]} == {d["session_id"]: False, m["session_id"]: True}
    # someone else's session is not mine to end
    _, oe, op, other = member()
    o = api.login(stack, oe, op)
    expect_error(delete(stack, f"/me/sessions/{o['session_id']}", token=d["token"]), 404, "NOT_FOUND")
    assert_alive(o["token"], "another user's session", times=1)
    expect_error(delete(stack, "/me/sessions/999999999", token=d["token"]), 404, "NOT_FOUND")
    assert_alive(m["token"], "mobile before delete")
    st, _, body = delete(stack, f"/me/sessions/{m['session_id']}", token=d["token"])
    assert st == 204, (st, body)
    assert_dead(m["token"], what="a deleted session")
    st, _, doc = get(stack, "/me/sessions", token=d["token"])
    assert [s["id"] for s in doc["sessions"]] == [d["session_id"]], doc
    expect_error(delete(stack, f"/me/sessions/{m['session_id']}", token=d["token"]), 404, "NOT_FOUND",
                 what="deleting an ended session")


def displaced_events(user_id):
    return int(api.sql(stack, f"SELECT count(*) FROM events WHERE user_id = {user_id} "
                              "AND type = 'session.displaced'"))


@test
def every_sign_in_is_its_own_session():
    """single_session_per_device is off by default: a script signing in
    as a person, or a second desktop browser, ends nothing."""
    user, email, password, d1 = member()
    d2 = api.login(stack, email, password, device="desktop")
    d3 = api.login(stack, email, password, device=None)  # desktop too
    m1 = api.login(stack, email, password, device="mobile")
    m2 = api.login(stack, email, password, device="mobile")
    toks = {session_id(d1): d1, d2["session_id"]: d2["token"], d3["session_id"]: d3["token"],
            m1["session_id"]: m1["token"], m2["session_id"]: m2["token"]}
    assert len(toks) == 5, toks
    for sid, tok in toks.items():
        assert_alive(tok, f"session {sid} after four more sign-ins", times=2)
    assert api.sql(stack, f"SELECT count(*) FROM sessions WHERE user_id = {user['id']} "
                          "AND revoked_at IS NULL") == "5"
    assert displaced_events(user["id"]) == 0
    st, _, doc = get(stack, "/me/sessions", token=d2["token"])
    assert st == 200, (st, doc)
    listed = {s["id"]: s for s in doc["sessions"]}
    assert set(listed) == set(toks), f"every sign-in is listed: {sorted(listed)} vs {sorted(toks)}"
    assert [sid for sid, s in listed.items() if s["current"]] == [d2["session_id"]], listed
    assert sorted(s["device"] for s in listed.values()) == ["desktop"] * 3 + ["mobile"] * 2, listed
    # each one is revocable on its own
    for sid in (session_id(d1), d3["session_id"], m1["session_id"]):
        st, _, body = delete(stack, f"/me/sessions/{sid}", token=d2["token"])
        assert st == 204, (sid, st, body)
        assert_dead(toks.pop(sid), what=f"session {sid} after DELETE /me/sessions/{sid}")
        for other, tok in toks.items():
            assert_alive(tok, f"session {other} after deleting {sid}", times=1)
    st, _, doc = get(stack, "/me/sessions", token=m2["token"])
    assert sorted(s["id"] for s in doc["sessions"]) == sorted(toks), doc
    # and the last desktop session can end itself
    assert delete(stack, f"/me/sessions/{d2['session_id']}", token=d2["token"])[0] == 204
    assert_dead(d2["token"], what="a session that deleted itself")
    assert_alive(m2["token"], "the mobile session left")


@test
def one_session_per_device_class():
    api.set_settings(stack, admin(), single_session_per_device=True)
    try:
        one_session_per_device_class_on()
    finally:
        api.set_settings(stack, admin(), single_session_per_device=False)


def one_session_per_device_class_on():
    user, email, password, d1 = member()
    m1 = api.login(stack, email, password, device="mobile")["token"]
    assert_alive(d1, "desktop 1")
    d2 = api.login(stack, email, password, device="desktop")["token"]
    assert_dead(d1, "SESSION_DISPLACED", "desktop 1 after a second desktop login")
    assert_alive(m1, "mobile survives a desktop login")
    assert_alive(d2, "desktop 2")
    m2 = api.login(stack, email, password, device="mobile")["token"]
    assert_dead(m1, "SESSION_DISPLACED", "mobile 1 after a second mobile login")
    assert_alive(d2, "desktop 2 survives a mobile login")
    # desktop is the default class
    d3 = api.login(stack, email, password, device=None)["token"]
    assert_dead(d2, "SESSION_DISPLACED", "desktop 2 after a login without device")
    assert_alive(m2, "mobile 2")
    st, _, doc = get(stack, "/me/sessions", token=d3)
    assert len(doc["sessions"]) == 2, doc
    st, _, doc = get(stack, "/me/sessions", token=m2)
    assert len(doc["sessions"]) == 2, doc
    # each displaced session's stream hears it (docs/events.md)
    assert displaced_events(user["id"]) == 3
    assert api.sql(stack, f"SELECT count(*) FROM sessions WHERE user_id = {user['id']} "
                          "AND revoked_reason = 'displaced'") == "3"
    # two sign-ins at once, one per worker: both succeed, one session is left
    for i in range(20):
        gate = threading.Barrier(2)

        def racer(_):
            gate.wait()
            return post(stack, "/auth/login", {"email": email, "password": password})

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(racer, range(2)))
        assert [a[0] for a in answers] == [200, 200], (i, [(a[0], a[2]) for a in answers])
        live = api.sql(stack, f"SELECT count(*) FROM sessions WHERE user_id = {user['id']} "
                              "AND device = 'desktop' AND revoked_at IS NULL")
        assert live == "1", f"round {i}: {live} live desktop sessions after two racing sign-ins"


# ------------------------------------------------------------------ API tokens

TOKEN_RE = re.compile(r"^roost_[A-Za-z0-9_-]{43}$")


def db_contains(text):
    """Tables and Redis keys/values holding `text` anywhere in a row."""
    hits = []
    for t in api.psql_tables(stack):
        n = api.sql(stack, f"SELECT count(*) FROM {t} r WHERE strpos(r::text, {api.q(text)}) > 0")
        if n != "0":
            hits.append(t)
    keys = stack.redis_cli("--scan").splitlines()
    hits += [f"redis key {k}" for k in keys if text in k]
    for k in keys:
        if stack.redis_cli("TYPE", k) == "string" and text in stack.redis_cli("GET", k):
            hits.append(f"redis value of {k}")
    return hits


@test
def api_token_lifecycle():
    user, _, _, token = member()
    st, _, t = post(stack, "/me/tokens", {"name": "ci bot"}, token=token)
    assert st == 201, (st, t)
    for k in ("id", "name", "prefix", "token", "created_at"):
        assert k in t, f"token answer lacks {k}: {t}"
    secret = t["token"]
    assert TOKEN_RE.match(secret), secret
    assert t["name"] == "ci bot" and secret.startswith(t["prefix"]), t
    assert len("roost_") < len(t["prefix"]) <= len("roost_") + 12, f"prefix shows too much: {t['prefix']}"
    # it works as a bearer credential, for its user
    st, _, doc = get(stack, "/me", token=secret)
    assert st == 200 and doc["id"] == user["id"], (st, doc)
    # shown once: the list has the prefix, never the token
    st, _, lst = get(stack, "/me/tokens", token=token)
    assert st == 200, (st, lst)
    mine = [x for x in lst["tokens"] if x["id"] == t["id"]]
    assert len(mine) == 1 and mine[0]["prefix"] == t["prefix"] and mine[0]["name"] == "ci bot", lst
    for k in ("id", "name", "prefix", "created_at", "last_used_at"):
        assert k in mine[0], f"listed token lacks {k}: {mine[0]}"
    assert mine[0]["last_used_at"] is not None, "the token was used: last_used_at is set"
    assert secret not in api.last_raw_body().decode(), "GET /me/tokens shows the token"
    assert secret[len(t["prefix"]):] not in api.last_raw_body().decode()
    # only its SHA-256 is stored: neither the token nor its secret part is in any table or Redis
    hits = db_contains(secret[len(t["prefix"]):])
    assert not hits, f"the API token's secret part is stored in {hits}"
    assert not db_contains(secret), "the API token is stored in clear"
    # revoke
    st, _, body = delete(stack, f"/me/tokens/{t['id']}", token=token)
    assert st == 204, (st, body)
    assert_dead(secret, what="a revoked API token")
    st, _, lst = get(stack, "/me/tokens", token=token)
    assert all(x["id"] != t["id"] for x in lst["tokens"]), lst
    expect_error(delete(stack, f"/me/tokens/{t['id']}", token=token), 404, "NOT_FOUND",
                 what="revoking twice")
    # another user's token is not mine to revoke
    _, _, _, other = member()
    st, _, ot = post(stack, "/me/tokens", {"name": "theirs"}, token=other)
    assert st == 201, (st, ot)
    expect_error(delete(stack, f"/me/tokens/{ot['id']}", token=token), 404, "NOT_FOUND")
    assert_alive(ot["token"], "another user's API token", times=1)
    # logout with an API token revokes that token
    st, _, t2 = post(stack, "/me/tokens", {"name": "short-lived"}, token=token)
    assert st == 201
    st, _, _ = post(stack, "/auth/logout", token=t2["token"])
    assert st == 204, st
    assert_dead(t2["token"], what="an API token after logout with it")
    assert_alive(token, "the session is untouched by the token's logout", times=1)


@test
def at_most_50_api_tokens():
    _, _, _, token = member()
    ids = []
    for i in range(50):
        st, _, t = post(stack, "/me/tokens", {"name": f"t{i}"}, token=token)
        assert st == 201, f"token {i + 1}: {st} {t}"
        ids.append(t["id"])
    st, _, body = post(stack, "/me/tokens", {"name": "one too many"}, token=token)
    assert st in (400, 403, 409), f"the 51st live token must be refused, got {st} {body}"
    assert api.err(body) in ("VALIDATION_ERROR", "FORBIDDEN", "CONFLICT"), body
    st, _, lst = get(stack, "/me/tokens", token=token)
    assert len(lst["tokens"]) == 50, len(lst["tokens"])
    assert delete(stack, f"/me/tokens/{ids[0]}", token=token)[0] == 204
    st, _, t = post(stack, "/me/tokens", {"name": "room again"}, token=token)
    assert st == 201, f"after a revocation there is room: {st} {t}"


# ------------------------------------------------------------------ users

@test
def users_search_and_pagination():
    tag = "zq" + str(stack.port)[-3:]
    ids = []
    a, *_ = api.create_user(stack, admin(), name=f"{tag.capitalize()} Alpha")
    b, *_ = api.create_user(stack, admin(), name=f"{tag.upper()} beta")
    c, *_ = api.create_user(stack, admin(), name="Charlie", email=f"{tag}.c@example.com")
    d, de, dp = api.create_user(stack, admin(), name="Delta")
    dt = api.login(stack, de, dp)["token"]
    assert patch(stack, "/me", {"display_name": f"{tag}Dee"}, token=dt)[0] == 200
    e, *_ = api.create_user(stack, admin(), name=f"Echo {tag}")          # not a prefix
    f, *_ = api.create_user(stack, admin(), name=f"x{tag}", email=f"x{tag}@example.com")  # not a prefix
    ids = [a["id"], b["id"], c["id"], d["id"]]
    _, _, _, tok = member()

    def page(query):
        st, _, doc = get(stack, f"/users?{query}", token=tok)
        assert st == 200, (query, st, doc)
        assert isinstance(doc["has_more"], bool), doc
        return doc

    for qv in (tag, tag.upper(), tag[:2] + tag[2:].upper()):
        doc = page(f"q={qv}")
        assert [u["id"] for u in doc["users"]] == ids, f"q={qv}: {[u['id'] for u in doc['users']]} != {ids}"
        assert doc["has_more"] is False, doc
    assert all("email" not in u for u in doc["users"]), "others' emails in search results"
    # exact has_more
    doc = page(f"q={tag}&limit=4")
    assert len(doc["users"]) == 4 and doc["has_more"] is False, "exactly limit left: has_more is false"
    doc = page(f"q={tag}&limit=3")
    assert [u["id"] for u in doc["users"]] == ids[:3] and doc["has_more"] is True, doc
    assert doc["next_after"] == ids[2], doc
    doc = page(f"q={tag}&limit=3&after={doc['next_after']}")
    assert [u["id"] for u in doc["users"]] == ids[3:] and doc["has_more"] is False, doc
    assert doc.get("next_after") in (None, ids[3]), doc
    seen, after = [], None
    while True:
        doc = page(f"q={tag}&limit=1" + (f"&after={after}" if after else ""))
        seen += [u["id"] for u in doc["users"]]
        if not doc["has_more"]:
            break
        after = doc["next_after"]
        assert len(seen) <= 4
    assert seen == ids, seen
    # a prefix, literally: no substring match, no LIKE wildcards
    got = {u["id"] for u in page(f"q={tag[1:]}")["users"]}
    assert not got & set(ids + [e["id"], f["id"]]), f"q={tag[1:]} matched inside names: {got}"
    for wild in ("%25", "_", tag[:1] + "_", tag + "%25", "%25" + tag):
        doc = page(f"q={wild}")
        assert not {u["id"] for u in doc["users"]} & set(ids + [e["id"], f["id"]]), \
            f"q={wild} is a LIKE pattern: {doc}"
    # limit outside 1..100, or not a number, is 400 naming it
    for bad in ("0", "101", "-1", "abc", "1.5", "1e2"):
        expect_error(get(stack, f"/users?q={tag}&limit={bad}", token=tok), 400,
                     ("VALIDATION_ERROR", "BAD_REQUEST"), field="limit", what=f"limit={bad}")
    for bad in ("abc", "-1", "1.5"):
        expect_error(get(stack, f"/users?after={bad}", token=tok), 400,
                     ("VALIDATION_ERROR", "BAD_REQUEST"), field="after", what=f"after={bad}")
    assert len(page("q=" + tag + "&limit=100")["users"]) == 4
    expect_error(get(stack, f"/users?q={tag}"), 401, "UNAUTHORIZED", what="GET /users unauthenticated")


@test
def users_search_is_case_insensitive_beyond_ascii():
    # "q matches a prefix ... case-insensitively": names are not all ASCII
    tag = str(stack.port)[-3:]
    u, *_ = api.create_user(stack, admin(), name=f"Ödön Émile{tag}")
    v, *_ = api.create_user(stack, admin(), name=f"élodie{tag}")
    _, _, _, tok = member()
    for qv, want in ((f"ödön émile{tag}", u), (f"ÖDÖN ÉMILE{tag}", u), (f"Ödön émile{tag}", u),
                     (f"ÉLODIE{tag}", v), (f"élodie{tag}", v)):
        st, _, doc = get(stack, "/users?q=" + urllib.parse.quote(qv), token=tok)
        assert st == 200, (qv, st, doc)
        assert [x["id"] for x in doc["users"]] == [want["id"]], f"q={qv!r}: {doc['users']}"


@test
def users_default_limit_is_50():
    tag = "bulk" + str(stack.port)[-3:]
    api.sql(stack, "INSERT INTO users (email, name) SELECT '" + tag + "' || g || '@example.com', '"
            + tag + " ' || g FROM generate_series(1, 55) g")
    want = [int(x) for x in api.sql(stack, f"SELECT id FROM users WHERE name LIKE '{tag} %' ORDER BY id")
            .split()]
    _, _, _, tok = member()
    st, _, doc = get(stack, f"/users?q={tag}", token=tok)
    assert st == 200 and len(doc["users"]) == 50 and doc["has_more"] is True, (st, len(doc["users"]))
    assert [u["id"] for u in doc["users"]] == want[:50], "ordered by id"
    st, _, doc2 = get(stack, f"/users?q={tag}&after={doc['next_after']}", token=tok)
    assert [u["id"] for u in doc2["users"]] == want[50:] and doc2["has_more"] is False, doc2


@test
def get_user_by_id():
    user, _, _, tok = member()
    st, _, doc = get(stack, f"/users/{admin_id()}", token=tok)
    assert st == 200 and doc["id"] == admin_id() and doc["role"] == "admin", (st, doc)
    expect_error(get(stack, "/users/999999999", token=tok), 404, "NOT_FOUND")
    expect_error(get(stack, "/users/0", token=tok), 400, "VALIDATION_ERROR")
    expect_error(get(stack, "/users/007", token=tok), 400, "VALIDATION_ERROR")
    expect_error(get(stack, f"/users/{user['id']}"), 401, "UNAUTHORIZED")


# ------------------------------------------------------------------ admin

@test
def admin_created_user_must_change_password():
    email = f"{api.unique('New')}@Example.com"
    st, _, u = post(stack, "/admin/users", {"email": email, "name": "Newbie", "password": "initial password 1"},
                    token=admin())
    assert st == 201, (st, u)
    assert u["must_change_password"] is True and u["role"] == "member" and u["email"] == email.lower(), u
    expect_error(post(stack, "/admin/users", {"email": email.lower(), "name": "Again",
                                              "password": "initial password 1"}, token=admin()),
                 409, "CONFLICT", field="email", what="admin creates a taken email")
    tok = api.login(stack, email, "initial password 1")["token"]
    for method, path, body in [("GET", "/users", None), ("GET", f"/users/{u['id']}", None),
                               ("PATCH", "/me", {"name": "x"}), ("GET", "/me/sessions", None),
                               ("POST", "/me/tokens", {"name": "x"}), ("GET", "/me/tokens", None)]:
        expect_error(api.request(stack, method, path, json=body, token=tok), 403,
                     "PASSWORD_CHANGE_REQUIRED", what=f"{method} {path} before the change")
    st, _, doc = get(stack, "/me", token=tok)
    assert st == 200 and doc["must_change_password"] is True, (st, doc)
    assert api.sql(stack, f"SELECT count(*) FROM api_tokens WHERE user_id = {u['id']}") == "0"
    st, _, _ = post(stack, "/me/password", {"current_password": "initial password 1",
                                            "new_password": "my own password 1"}, token=tok)
    assert st == 204, st
    st, _, doc = get(stack, "/me", token=tok)
    assert doc["must_change_password"] is False, doc
    assert get(stack, "/users", token=tok)[0] == 200
    # logout works while the change is pending
    _, e2, p2 = api.create_user(stack, admin(), must_change_password=True)
    t2 = api.login(stack, e2, p2)["token"]
    assert post(stack, "/auth/logout", token=t2)[0] == 204
    assert_dead(t2, what="logged out before changing the password")
    # role admin on creation
    au, ae, ap = api.create_user(stack, admin(), role="admin")
    assert au["role"] == "admin" and au["must_change_password"] is False, au
    assert get(stack, "/admin/settings", token=api.login(stack, ae, ap)["token"])[0] == 200


@test
def admin_creates_a_bot_without_a_forced_change():
    """must_change_password: false (bots, imports) signs in ready to work;
    the default (above) stays true."""
    email = f"{api.unique('bot')}@example.com"
    st, _, u = post(stack, "/admin/users", {"email": email, "name": "Deploy Bot", "password": "bot password 123",
                                            "must_change_password": False}, token=admin())
    assert st == 201 and u["must_change_password"] is False, (st, u)
    assert api.sql(stack, f"SELECT must_change_password FROM users WHERE id = {u['id']}") == "f"
    tok = api.login(stack, email, "bot password 123")["token"]
    st, _, doc = get(stack, "/me", token=tok)
    assert st == 200 and doc["must_change_password"] is False, (st, doc)
    st, _, made = post(stack, "/me/tokens", {"name": "ci"}, token=tok)
    assert st == 201, f"a bot made without a forced change gets an API token at once: {st} {made}"
    st, _, doc = get(stack, "/users", token=made["token"])
    assert st == 200, (st, doc)
    # true, said explicitly, is the default's behaviour
    email = f"{api.unique('imp')}@example.com"
    st, _, u = post(stack, "/admin/users", {"email": email, "name": "Imported", "password": "import password 1",
                                            "must_change_password": True}, token=admin())
    assert st == 201 and u["must_change_password"] is True, (st, u)
    tok = api.login(stack, email, "import password 1")["token"]
    expect_error(post(stack, "/me/tokens", {"name": "x"}, token=tok), 403, "PASSWORD_CHANGE_REQUIRED")


@test
def admin_changes_role():
    user, _, _, tok = member()
    expect_error(get(stack, "/admin/settings", token=tok), 403, "FORBIDDEN")
    st, _, u = patch(stack, f"/admin/users/{user['id']}", {"role": "admin"}, token=admin())
    assert st == 200 and u["role"] == "admin", (st, u)
    for _ in range(3):
        assert get(stack, "/admin/settings", token=tok)[0] == 200, "promotion applies to the live session"
    st, _, u = patch(stack, f"/admin/users/{user['id']}", {"role": "member"}, token=admin())
    assert st == 200 and u["role"] == "member", (st, u)
    for _ in range(3):
        expect_error(get(stack, "/admin/settings", token=tok), 403, "FORBIDDEN", what="after demotion")
    expect_error(patch(stack, "/admin/users/999999999", {"role": "admin"}, token=admin()), 404, "NOT_FOUND")


@test
def suspend_and_lift():
    user, email, password, sess = member(name="Susp Ended")
    assert patch(stack, "/me", {"display_name": "SE", "about": "about me"}, token=sess)[0] == 200
    st, _, t = post(stack, "/me/tokens", {"name": "bot"}, token=sess)
    assert st == 201
    before = get(stack, "/me", token=sess)[2]
    assert_alive(sess, "session before")
    assert_alive(t["token"], "API token before")
    st, _, u = patch(stack, f"/admin/users/{user['id']}", {"suspended": True}, token=admin())
    assert st == 200 and u["suspended"] is True, (st, u)
    assert_dead(sess, what="a suspended user's session")
    # docs/auth.md: "API tokens of a suspended user are refused"; read as 401.
    assert_dead(t["token"], what="a suspended user's API token")
    resp = post(stack, "/auth/login", {"email": email, "password": password})
    expect_error(resp, 403, "FORBIDDEN", what="login of a suspended user, right password")
    resp = post(stack, "/auth/login", {"email": email, "password": "wrong password here"})
    expect_error(resp, 401, "UNAUTHORIZED", what="login of a suspended user, wrong password")
    assert api.sql(stack, f"SELECT count(*) FROM sessions WHERE user_id = {user['id']} "
                          "AND revoked_at IS NULL") == "0"
    st, _, seen = get(stack, f"/users/{user['id']}", token=admin())
    assert seen["suspended"] is True
    # lifting restores the account as it was
    st, _, u = patch(stack, f"/admin/users/{user['id']}", {"suspended": False}, token=admin())
    assert st == 200 and u["suspended"] is False, (st, u)
    assert_alive(t["token"], "the API token after the suspension is lifted")
    assert_dead(sess, what="a session ended by the suspension stays ended")
    tok = api.login(stack, email, password)["token"]
    after = get(stack, "/me", token=tok)[2]
    for k in ("id", "email", "name", "display_name", "about", "avatar_url", "role", "created_at",
              "must_change_password"):
        assert after[k] == before[k], f"{k} changed over suspend/lift: {before[k]!r} -> {after[k]!r}"
    st, _, lst = get(stack, "/me/tokens", token=tok)
    assert [x["id"] for x in lst["tokens"]] == [t["id"]], lst


@test
def admin_cannot_act_on_themselves():
    me_id = admin_id()
    expect_error(patch(stack, f"/admin/users/{me_id}", {"suspended": True}, token=admin()), 403, "FORBIDDEN",
                 what="self-suspend")
    expect_error(patch(stack, f"/admin/users/{me_id}", {"role": "member"}, token=admin()), 403, "FORBIDDEN",
                 what="self-demote")
    expect_error(delete(stack, f"/admin/users/{me_id}", token=admin()), 403, "FORBIDDEN", what="self-delete")
    row = api.sql(stack, f"SELECT role || '|' || suspended || '|' || (deleted_at IS NULL) FROM users "
                         f"WHERE id = {me_id}")
    assert row == "admin|false|true", row
    assert get(stack, "/admin/settings", token=admin())[0] == 200


@test
def reset_password():
    user, email, password, sess = member()
    assert_alive(sess, "before reset")
    _, _, _, other = member()
    expect_error(post(stack, f"/admin/users/{user['id']}/reset-password", token=other), 403, "FORBIDDEN")
    assert_alive(sess, "after a refused reset", times=1)
    st, _, doc = post(stack, f"/admin/users/{user['id']}/reset-password", token=admin())
    assert st == 200, (st, doc)
    temp = doc["temporary_password"]
    assert isinstance(temp, str) and len(temp) >= 12 and temp != password, doc
    assert_dead(sess, what="a session after a reset")
    api.login(stack, email, password, expect=401)
    tok = api.login(stack, email, temp)["token"]
    expect_error(get(stack, "/users", token=tok), 403, "PASSWORD_CHANGE_REQUIRED")
    assert get(stack, "/me", token=tok)[2]["must_change_password"] is True
    assert post(stack, "/me/password", {"current_password": temp, "new_password": "after reset pw 1"},
                token=tok)[0] == 204
    assert get(stack, "/users", token=tok)[0] == 200
    api.login(stack, email, temp, expect=401)
    expect_error(post(stack, "/admin/users/999999999/reset-password", token=admin()), 404, "NOT_FOUND")


@test
def delete_scrubs_the_user():
    user, email, password, sess = member(name="Doomed")
    uid = user["id"]
    assert patch(stack, "/me", {"display_name": "DD", "about": "bio", "avatar_url": "https://a.example/x"},
                 token=sess)[0] == 200
    mob = api.login(stack, email, password, device="mobile")["token"]
    st, _, t = post(stack, "/me/tokens", {"name": "bot"}, token=sess)
    assert st == 201
    assert_alive(sess, "before delete")
    assert_alive(t["token"], "API token before delete")
    st, _, body = delete(stack, f"/admin/users/{uid}", token=admin())
    assert st == 204, (st, body)
    row = api.sql(stack, "SELECT email || '|' || name || '|' || coalesce(display_name, '<null>') || '|' || "
                         "coalesce(about, '<null>') || '|' || coalesce(avatar_url, '<null>') || '|' || "
                         "coalesce(password_hash, '<null>') || '|' || (deleted_at IS NOT NULL) "
                         f"FROM users WHERE id = {uid}")
    assert row == f"deleted_{uid}@deleted|Deleted User|<null>|<null>|<null>|<null>|true", row
    assert api.sql(stack, f"SELECT count(*) FROM sessions WHERE user_id = {uid}") == "0", "sessions left"
    assert api.sql(stack, f"SELECT count(*) FROM api_tokens WHERE user_id = {uid}") == "0", "tokens left"
    assert_dead(sess, what="session of a deleted user")
    assert_dead(mob, what="mobile session of a deleted user")
    assert_dead(t["token"], what="API token of a deleted user")
    api.login(stack, email, password, expect=401)
    for viewer in (admin(), member()[3]):
        st, _, seen = get(stack, f"/users/{uid}", token=viewer)
        assert st == 200, (st, seen)
        assert seen["name"] == "Deleted User" and seen["deleted"] is True, seen
        assert seen["display_name"] is None and seen["about"] is None and seen["avatar_url"] is None, seen
        assert email.lower() not in json.dumps(seen), "the old email is still shown"
    # the address is free again: by an admin and by registration
    nu, *_ = api.create_user(stack, admin(), email=email, name="Reborn")
    assert nu["id"] != uid
    u2, e2, p2, _ = member()
    assert delete(stack, f"/admin/users/{u2['id']}", token=admin())[0] == 204
    api.set_settings(stack, admin(), open_registration=True)
    try:
        st, _, doc = post(stack, "/auth/register", {"email": e2, "password": "a fine long password",
                                                    "name": "Again"})
        assert st == 201 and doc["user"]["id"] != u2["id"], (st, doc)
    finally:
        api.set_settings(stack, admin(), open_registration=False)
    expect_error(delete(stack, "/admin/users/999999999", token=admin()), 404, "NOT_FOUND")


@test
def non_admin_gets_403_on_admin_routes():
    user, _, _, tok = member()
    target, *_ = api.create_user(stack, admin())
    fp = api.sql(stack, "SELECT md5(string_agg(key || value::text, ',' ORDER BY key)) FROM settings")
    row = f"SELECT role || suspended || name || email || coalesce(password_hash, '') FROM users WHERE id = {target['id']}"
    before = api.sql(stack, row)
    users = api.sql(stack, "SELECT count(*) FROM users")
    calls = [("GET", "/admin/settings", None), ("PATCH", "/admin/settings", {"open_registration": True}),
             ("POST", "/admin/users", {"email": "sneaky@example.com", "name": "S", "password": "long password 12"}),
             ("PATCH", f"/admin/users/{target['id']}", {"suspended": True}),
             ("PATCH", f"/admin/users/{user['id']}", {"role": "admin"}),
             ("POST", f"/admin/users/{target['id']}/reset-password", None),
             ("DELETE", f"/admin/users/{target['id']}", None)]
    for method, path, body in calls:
        expect_error(api.request(stack, method, path, json=body, token=tok), 403, "FORBIDDEN",
                     what=f"member {method} {path}")
        expect_error(api.request(stack, method, path, json=body), 401, "UNAUTHORIZED",
                     what=f"anonymous {method} {path}")
    assert api.sql(stack, row) == before, "a refused admin call changed the user"
    assert api.sql(stack, "SELECT count(*) FROM users") == users
    assert api.sql(stack, "SELECT md5(string_agg(key || value::text, ',' ORDER BY key)) FROM settings") == fp
    assert get(stack, "/me", token=tok)[2]["role"] == "member"


@test
def settings_patch_ranges():
    st, _, base = get(stack, "/admin/settings", token=admin())
    lows = {"password_min_length": 8, "session_lifetime_hours": 1, "app_name": "R",
            "login_attempts_per_15min": 1, "login_failures_per_ip_per_15min": 1,
            "registrations_per_hour": 1, "requests_per_minute": 10, "single_session_per_device": False}
    highs = {"password_min_length": 1024, "session_lifetime_hours": 8760, "app_name": "é" * 50,
             "login_attempts_per_15min": 1000, "login_failures_per_ip_per_15min": 100000,
             "registrations_per_hour": 1000, "requests_per_minute": 100000, "single_session_per_device": True}
    flush()  # requests_per_minute 10 below: start the admin's count at 0
    try:
        for vals in (lows, highs):
            st, _, s = patch(stack, "/admin/settings", vals, token=admin())
            assert st == 200, (vals, st, s)
            for k, v in vals.items():
                assert s[k] == v, (k, s[k], v)
            assert get(stack, "/admin/settings", token=admin())[2] == s, "GET shows what PATCH stored"
        # one bad value refuses the whole PATCH
        st, _, cur = get(stack, "/admin/settings", token=admin())
        expect_error(patch(stack, "/admin/settings", {"app_name": "Changed", "password_min_length": 7},
                           token=admin()), 400, "VALIDATION_ERROR", field="password_min_length")
        assert get(stack, "/admin/settings", token=admin())[2] == cur, "a refused PATCH stored a part"
        # session_lifetime_hours applies to the next login
        api.set_settings(stack, admin(), session_lifetime_hours=2, password_min_length=12)
        _, e, p = api.create_user(stack, admin())
        doc = api.login(stack, e, p)
        claims = jwt.decode(doc["token"], options={"verify_signature": False})
        assert abs(claims["exp"] - claims["iat"] - 7200) <= 5, claims
    finally:
        flush()
        restore = {k: base[k] for k in DEFAULTS}
        restore.update(api.RELAXED)
        api.set_settings(stack, admin(), **restore)


# ------------------------------------------------------------------ CSRF

@test
def csrf_for_cookie_sessions():
    user, email, password, bearer = member()
    b = api.Browser(stack)
    st, _, doc = b.request("POST", "/auth/login", json={"email": email, "password": password,
                                                        "device": "mobile"})
    assert st == 200 and "roost_session" in b.cookies and "roost_csrf" in b.cookies, (st, b.cookies)
    csrf = doc["csrf_token"]
    assert b.cookies["roost_csrf"] == csrf
    st, _, doc = b.request("GET", "/me")
    assert st == 200 and doc["id"] == user["id"], "the cookie authenticates a GET without CSRF token"
    expect_error(b.request("PATCH", "/me", json={"name": "csrf victim"}), 403, "FORBIDDEN",
                 what="cookie PATCH without X-CSRF-Token")
    expect_error(b.request("PATCH", "/me", json={"name": "csrf victim"}, headers={"X-CSRF-Token": "x" + csrf}),
                 403, "FORBIDDEN", what="cookie PATCH with a wrong X-CSRF-Token")
    expect_error(b.request("PATCH", "/me", json={"name": "csrf victim"}, headers={"X-CSRF-Token": ""}),
                 403, "FORBIDDEN", what="cookie PATCH with an empty X-CSRF-Token")
    expect_error(b.request("POST", "/me/tokens", json={"name": "csrf"}), 403, "FORBIDDEN",
                 what="cookie POST without X-CSRF-Token")
    assert get(stack, "/me", token=bearer)[2]["name"] != "csrf victim", "a refused PATCH changed the name"
    st, _, doc = b.request("PATCH", "/me", json={"name": "Cookie Ok"}, headers={"X-CSRF-Token": csrf})
    assert st == 200 and doc["name"] == "Cookie Ok", (st, doc)
    # another session's CSRF token does not fit this session
    other = api.login(stack, email, password)  # desktop: does not displace the mobile cookie session
    expect_error(b.request("PATCH", "/me", json={"name": "x"}, headers={"X-CSRF-Token": other["csrf_token"]}),
                 403, "FORBIDDEN", what="another session's CSRF token")
    # bearer needs none
    st, _, doc = patch(stack, "/me", {"name": "Bearer Ok"}, token=other["token"])
    assert st == 200 and doc["name"] == "Bearer Ok", (st, doc)
    # logout is a POST: without the CSRF token it ends nothing
    expect_error(b.request("POST", "/auth/logout"), 403, "FORBIDDEN", what="cookie logout without CSRF")
    assert b.request("GET", "/me")[0] == 200
    old_cookie = b.cookies["roost_session"]
    st, h, _ = b.request("POST", "/auth/logout", headers={"X-CSRF-Token": csrf})
    assert st == 204, st
    assert "roost_session" not in b.cookies and "roost_csrf" not in b.cookies, \
        f"logout clears the cookies: {h.get_all('Set-Cookie')}"
    st, _, body = api.request(stack, "GET", "/me", cookies={"roost_session": old_cookie})
    expect_error((st, None, body), 401, "UNAUTHORIZED", what="the old cookie after logout")
    assert_alive(other["token"], "the desktop session survives the cookie logout", times=1)


# ------------------------------------------------------------------ rate limits

def login_limits(**values):
    """Fresh counters, the given login limits (the defaults otherwise), and
    a window with time left: fixed windows reset at multiples of 900 s."""
    flush()
    vals = {"login_attempts_per_15min": 10, "login_failures_per_ip_per_15min": 100}
    vals.update(values)
    api.set_settings(stack, admin(), **vals)
    api.clear_of_window_edge(900, need_s=30)


def restore_limits():
    flush()
    api.relax_limits(stack, admin())


def wrong_login(email, i=0):
    return post(stack, "/auth/login", {"email": email, "password": f"wrong password {i}"})


@test
def successful_sign_ins_are_not_counted():
    """An office behind one NAT address, or a CI signing in the accounts it
    made: right passwords from one IP never use up a limit."""
    users = [member() for _ in range(3)]
    login_limits()  # the defaults: 10 per account, 100 per IP
    try:
        for i in range(36):
            _, email, password, _ = users[i % 3]
            st, h, doc = post(stack, "/auth/login", {"email": email, "password": password})
            assert st == 200, f"sign-in {i + 1} from one IP with the right password: {st} {doc}"
            limit, rem, _ = rl_headers(h, f"sign-in {i + 1}")
            assert (limit, rem) == (10, 10), f"a success was counted: limit {limit}, remaining {rem}"
        # a success neither counts nor resets the account's failures
        _, email, password, _ = users[0]
        for i in range(9):
            assert wrong_login(email, i)[0] == 401
        for i in range(5):
            st, h, doc = post(stack, "/auth/login", {"email": email, "password": password})
            assert st == 200, (i, st, doc)
            assert rl_headers(h, "after 9 failures")[:2] == (10, 1), h
        assert wrong_login(email, 9)[0] == 401
        expect_error(post(stack, "/auth/login", {"email": email, "password": password}), 429,
                     "RATE_LIMITED", what="the 10th failure locks the account")
    finally:
        restore_limits()


@test
def failed_sign_ins_lock_the_account():
    _, email, password, _ = member()
    _, other_email, other_password, _ = member()
    ghost = f"{api.unique('ghost')}@example.com"
    login_limits()
    try:
        remaining = []
        for i in range(10):
            st, h, body = wrong_login(email.upper() if i % 2 else email, i)  # one account, any case
            assert st == 401, (i, st, body)
            limit, rem, reset = rl_headers(h, f"login attempt {i + 1}")
            assert limit == 10, limit
            remaining.append(rem)
            now = time.time()
            assert now - 1 <= reset <= now + 901, f"X-RateLimit-Reset {reset} is not within 15 min of {now}"
        assert remaining == list(range(9, -1, -1)), remaining
        # the 11th is refused before the password is looked at: the right one too
        st, h, body = post(stack, "/auth/login", {"email": email, "password": password})
        expect_error((st, h, body), 429, "RATE_LIMITED", what="11th login")
        ra = h.get("Retry-After")
        assert ra is not None and ra.isdigit() and 1 <= int(ra) <= 900, f"Retry-After {ra!r}"
        limit, rem, reset = rl_headers(h, "429")
        assert (limit, rem) == (10, 0), (limit, rem)
        assert abs((reset - time.time()) - int(ra)) <= 2, (reset, ra)
        locked_body = body
        # the lock is the account's, from any client IP
        st, h, doc = api.cgi_request(stack, "POST", "/auth/login", {"email": email, "password": password},
                                     remote_addr="203.0.113.9")
        assert st == 429 and h.get("Retry-After", "").isdigit(), f"another IP escaped the lock: {st} {doc}"
        # another account from the same IP still signs in
        st, h, doc = post(stack, "/auth/login", {"email": other_email, "password": other_password})
        assert st == 200, f"another account from the same IP: {st} {doc}"
        assert rl_headers(h, "another account")[:2] == (10, 10), h
        # the IP's counter holds the 10 failures only: neither the refused
        # attempts nor the success counted (and the other IP has none)
        keys = stack.redis_cli("--scan", "--pattern", "*:rl:login-fail-ip:*").split()
        assert [stack.redis_cli("GET", k) for k in keys] == ["10"], keys
        # an unknown email locks the same way, with the same answers
        for i in range(10):
            assert wrong_login(ghost, i)[0] == 401
        st, h, body = wrong_login(ghost, 10)
        expect_error((st, h, body), 429, "RATE_LIMITED", what="11th login on an unknown email")
        assert body == locked_body and rl_headers(h, "429 unknown")[:2] == (10, 0), (body, locked_body)
    finally:
        restore_limits()


@test
def failures_per_ip_over_many_accounts():
    _, email, password, _ = member()
    login_limits(login_failures_per_ip_per_15min=25)
    try:
        for i in range(24):
            st, h, body = wrong_login(f"nobody{i}.{api.unique('x')}@example.com")
            assert st == 401, (i, st, body)
            limit, rem, _ = rl_headers(h, f"failure {i + 1}")
            # the headers show the counter closer to its ceiling
            assert (limit, rem) == ((10, 9) if 25 - (i + 1) >= 9 else (25, 24 - i)), (i, limit, rem)
        # below the ceiling, a right password signs in and is not counted
        st, h, doc = post(stack, "/auth/login", {"email": email, "password": password})
        assert st == 200, (st, doc)
        assert rl_headers(h, "success at 24 failures")[:2] == (25, 1), h
        assert wrong_login("nobody.last@example.com")[0] == 401  # the 25th failure
        st, h, body = post(stack, "/auth/login", {"email": email, "password": password})
        expect_error((st, h, body), 429, "RATE_LIMITED", what="sign-in after 25 failures from one IP")
        assert h.get("Retry-After", "").isdigit(), h.get("Retry-After")
        assert rl_headers(h, "429 per IP")[:2] == (25, 0), h
        # X-Forwarded-For is not the client address
        st, _, _ = post(stack, "/auth/login", {"email": email, "password": password},
                        headers={"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.7"})
        assert st == 429, f"a forged X-Forwarded-For escaped the limit: {st}"
        st, _, doc = api.cgi_request(stack, "POST", "/auth/login", {"email": email, "password": password},
                                     remote_addr="203.0.113.10")
        assert st == 200, f"another IP is not limited: {st} {doc}"
    finally:
        restore_limits()


@test
def locked_out_sign_ins_are_refused_before_hashing():
    """A refused attempt must not cost a password hash (10-35 ms and
    20 MiB): compared with the same route's cost with and without one."""
    _, email, password, _ = member()
    login_limits(login_attempts_per_15min=3)
    try:
        for i in range(3):
            assert wrong_login(email, i)[0] == 401
        expect_error(post(stack, "/auth/login", {"email": email, "password": password}), 429, "RATE_LIMITED")

        def timed(body):
            t0 = time.monotonic()
            st, _, _ = post(stack, "/auth/login", body)
            return time.monotonic() - t0, st

        floor, hashed, locked = [], [], []
        for i in range(9):
            dt, st = timed({"email": email})  # 400: refused before any limit or hash
            assert st == 400, st
            floor.append(dt)
            dt, st = timed({"email": f"t{i}.{api.unique('x')}@example.com", "password": "wrong password"})
            assert st == 401, st
            hashed.append(dt)
            dt, st = timed({"email": email, "password": password})
            assert st == 429, st
            locked.append(dt)
        mf, mh, ml = (statistics.median(x) for x in (floor, hashed, locked))
        hash_cost = mh - mf
        assert hash_cost > 2 * mf, f"no hash measured: 401 {mh:.4f}s vs 400 {mf:.4f}s"
        assert ml - mf < hash_cost / 4, (
            f"a locked-out sign-in costs like a hash: 429 {ml:.4f}s, 401 {mh:.4f}s, 400 {mf:.4f}s")
    finally:
        restore_limits()


@test
def register_rate_limit_per_ip():
    flush()
    api.set_settings(stack, admin(), open_registration=True, registrations_per_hour=5)
    api.clear_of_window_edge(3600)
    try:
        for i in range(5):
            st, h, doc = post(stack, "/auth/register", {"email": f"{api.unique('rl')}@example.com",
                                                        "password": "a fine long password", "name": f"R{i}"})
            assert st == 201, (i, st, doc)
            limit, rem, reset = rl_headers(h, f"registration {i + 1}")
            assert limit == 5 and rem == 4 - i, (limit, rem)
            assert time.time() - 1 <= reset <= time.time() + 3601, reset
        users = api.sql(stack, "SELECT count(*) FROM users")
        st, h, body = post(stack, "/auth/register", {"email": f"{api.unique('rl')}@example.com",
                                                     "password": "a fine long password", "name": "Six"})
        expect_error((st, h, body), 429, "RATE_LIMITED", what="6th registration in an hour")
        ra = h.get("Retry-After", "")
        assert ra.isdigit() and 1 <= int(ra) <= 3600, ra
        assert api.sql(stack, "SELECT count(*) FROM users") == users, "a refused registration stored a user"
        st, _, doc = api.cgi_request(stack, "POST", "/auth/register",
                                     {"email": f"{api.unique('rl')}@example.com",
                                      "password": "a fine long password", "name": "Elsewhere"},
                                     remote_addr="203.0.113.11")
        assert st == 201, f"another IP registers: {st} {doc}"
    finally:
        flush()
        api.set_settings(stack, admin(), open_registration=False, **api.RELAXED)


@test
def requests_per_minute_per_user():
    _, _, _, tok = member()
    _, _, _, other = member()
    for attempt in range(2):
        flush()
        api.set_settings(stack, admin(), requests_per_minute=10)
        st, h, _ = get(stack, "/me", token=tok)
        assert st == 200, st
        limit, rem, reset = rl_headers(h, "GET /me")
        assert limit == 10 and rem == 9, (limit, rem)
        assert time.time() - 1 <= reset <= time.time() + 61, reset
        if reset - time.time() > 5:
            break
        time.sleep(max(0.0, reset - time.time()) + 0.2)  # too close to the window's end: use the next
    try:
        for i in range(9):
            st, h, body = get(stack, "/me/sessions", token=tok)
            assert st == 200, (i, st, body)
            assert int(h["X-RateLimit-Remaining"]) == 8 - i, h["X-RateLimit-Remaining"]
        st, h, body = get(stack, "/me", token=tok)
        expect_error((st, h, body), 429, "RATE_LIMITED", what="11th request in a minute")
        ra = h.get("Retry-After", "")
        assert ra.isdigit() and 1 <= int(ra) <= 60, ra
        # per user: someone else is not limited
        st, h, _ = get(stack, "/me", token=other)
        assert st == 200 and int(h["X-RateLimit-Limit"]) == 10, st
    finally:
        flush()
        api.relax_limits(stack, admin())


@test
def refused_sessions_do_not_use_up_the_users_requests():
    """The request limit is counted with the session check in one Redis
    round trip; a session refused there (logged out) must not use up its
    user's requests (the count is given back)."""
    _, email, password, tok = member()
    ended = api.login(stack, email, password, device="mobile")["token"]
    assert post(stack, "/auth/logout", token=ended)[0] == 204
    flush()
    api.set_settings(stack, admin(), requests_per_minute=10)
    api.clear_of_window_edge(60, need_s=8)
    try:
        for i in range(15):
            expect_error(get(stack, "/me", token=ended), 401, "UNAUTHORIZED", what=f"ended session {i}")
        st, h, _ = get(stack, "/me", token=tok)
        assert st == 200, st
        limit, rem, _ = rl_headers(h, "GET /me after 15 refused")
        assert limit == 10 and rem == 9, f"refused requests were counted: remaining {rem}"
    finally:
        flush()
        api.relax_limits(stack, admin())


@test
def redis_down_login_fails_closed_requests_fail_open():
    _, email, password, tok = member()
    _, e2, p2, ended = member()
    assert_alive(ended, "to be logged out")
    assert post(stack, "/auth/logout", token=ended)[0] == 204
    api.set_settings(stack, admin(), open_registration=True)
    stack.redis_stop()
    try:
        for _ in range(3):
            expect_error(post(stack, "/auth/login", {"email": email, "password": password}), 503,
                         "SERVICE_UNAVAILABLE", what="login with Redis down")
        expect_error(post(stack, "/auth/register", {"email": api.unique("rd") + "@example.com",
                                                    "password": "a fine long password", "name": "R"}),
                     503, "SERVICE_UNAVAILABLE", what="register with Redis down")
        for _ in range(4):
            st, _, doc = get(stack, "/me", token=tok)
            assert st == 200, f"an authenticated request must work with Redis down: {st} {doc}"
        # PostgreSQL decides: a logged-out session stays dead without the cache
        assert_dead(ended, what="a logged-out session with Redis down")
    finally:
        stack.redis_start()
    wait_until(lambda: post(stack, "/auth/login", {"email": email, "password": password})[0] == 200,
               timeout=10, what="login after Redis is back")
    api.set_settings(stack, admin(), open_registration=False)


@test
def no_account_enumeration():
    _, email, _, _ = member()
    flush()
    api.relax_limits(stack, admin())
    unknown = f"{api.unique('ghost')}@example.com"

    def attempt(addr):
        t0 = time.monotonic()
        st, _, body = post(stack, "/auth/login", {"email": addr, "password": "definitely wrong pw"})
        return time.monotonic() - t0, st, body

    attempt(unknown), attempt(email)  # warm up both paths
    times = {"unknown": [], "wrong": []}
    answers = {"unknown": set(), "wrong": set()}
    for _ in range(7):
        for kind, addr in (("unknown", unknown), ("wrong", email)):
            dt, st, body = attempt(addr)
            times[kind].append(dt)
            e = body["error"] if isinstance(body, dict) and "error" in body else {}
            answers[kind].add((st, e.get("code"), e.get("message"), e.get("field")))
    assert len(answers["unknown"]) == 1 and answers["unknown"] == answers["wrong"], answers
    st, code, _, _ = next(iter(answers["unknown"]))
    assert (st, code) == (401, "UNAUTHORIZED"), answers
    mu, mw = statistics.median(times["unknown"]), statistics.median(times["wrong"])
    # The floor: the same route refusing a body before any hash runs. An
    # argon2id hash (about 10-35 ms, by machine) dwarfs it; comparing with
    # it rather than a fixed time keeps the check true on a faster CPU.
    floor = []
    for _ in range(7):
        t0 = time.monotonic()
        st, _, _ = post(stack, "/auth/login", {"email": unknown})
        floor.append(time.monotonic() - t0)
        assert st == 400, st
    mf = statistics.median(floor)
    assert mu >= 3 * mf and mw >= 3 * mf, (
        f"an argon2id hash runs in both cases: medians {mu:.4f}s {mw:.4f}s, no hash {mf:.4f}s")
    assert 0.5 <= mu / mw <= 2.0, f"timing tells them apart: unknown {mu:.4f}s, wrong password {mw:.4f}s"


@test
def workers_are_still_the_same():
    assert stack.fcgi_pids() == PIDS, f"a worker died or was replaced: {PIDS} -> {stack.fcgi_pids()}"
    assert get(stack, "/admin/settings", token=admin())[0] == 200


if __name__ == "__main__":
    run_tests(stack)
