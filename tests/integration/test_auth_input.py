#!/usr/bin/python3
"""Integration: bad input to every route of docs/auth.md that takes a body.

For each route: missing and mistyped fields, unknown fields (including
privilege fields such as `role` on register), malformed values at and past
every documented limit, duplicate keys, invalid JSON, deep nesting, invalid
UTF-8, wrong Content-Type and empty bodies. Each must answer a 4xx with the
error body (and `field` when one field is at fault) and store NOTHING: the
database fingerprint (row counts, live sessions and tokens, every user's
stored fields, the settings) is compared after every single request.
Finally the documented limits themselves are accepted (254-byte email,
64-character names in multibyte text, 1,024-byte password, ...), and no
worker died.

Readings of the contract:
- Status and code: malformed JSON (syntax, depth, bad UTF-8, lone
  surrogate escapes, duplicate keys) is 400 BAD_REQUEST; a well-formed body
  that is not an object or has a missing / mistyped / out-of-range /
  unknown field is 400 VALIDATION_ERROR naming the field (docs/api.md); a
  missing or non-JSON Content-Type is 415 UNSUPPORTED_MEDIA_TYPE, and
  `application/json; charset=utf-8` is JSON.
- A number written with a fraction or exponent (12.0, 1e3) is not an
  integer setting, even when its value would be in range.
- "No control characters" means Unicode Cc: C0 (including \\n, \\t, NUL),
  DEL and C1 (U+0080-U+009F); `about` allows newlines (\\n) only.
- Lengths: names in characters (code points), the password and email in
  bytes, as docs/auth.md says.
- A field that is optional but not nullable (PATCH /me `name`,
  PATCH /admin/users `role`/`suspended`, POST /admin/users `role`,
  `must_change_password`, login/register `device`) refuses null.
- Login is not tested for malformed-but-well-typed emails and passwords
  (401 or 400 are both defensible there); only for types and shape.
"""
import json

import api
from api import expect_error
from harness import Stack, run_tests, test

stack = Stack(workers=2)
PIDS = stack.fcgi_pids()
ADMIN_EMAIL, ADMIN_PASSWORD = api.make_admin(stack)
S = {}
DB = None  # one psql session, opened after the migration


def db():
    global DB
    if DB is None:
        DB = api.SqlSession(stack)
    return DB


FINGERPRINT = """
SELECT concat_ws('|',
  (SELECT count(*) FROM users),
  (SELECT count(*) FROM sessions),
  (SELECT count(*) FROM sessions WHERE revoked_at IS NULL),
  (SELECT count(*) FROM api_tokens),
  (SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL),
  (SELECT md5(string_agg((id, email, name, display_name, about, avatar_url, password_hash, role,
                          suspended, must_change_password, deleted_at)::text, ';' ORDER BY id))
     FROM users),
  (SELECT md5(coalesce(string_agg(key || '=' || value::text, ';' ORDER BY key), '')) FROM settings))
"""


def fingerprint():
    return db().query(FINGERPRINT)


def setup():
    if S:
        return
    S["admin"] = api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
    api.set_settings(stack, S["admin"], open_registration=True, **api.RELAXED)
    user, email, password = api.create_user(stack, S["admin"], name="Member")
    S.update(member_id=user["id"], member_email=email, member_password=password,
             member=api.login(stack, email, password)["token"])
    target, *_ = api.create_user(stack, S["admin"], name="Target")
    S["target"] = target["id"]


# ------------------------------------------------------------------ the routes

class F:
    """A body field: JSON kind ('str', 'bool', 'int'), required, nullable,
    and extra bad values [(value, why)] that must be 400 VALIDATION_ERROR
    naming it."""

    def __init__(self, name, kind, required=False, nullable=False, bad=()):
        self.name, self.kind, self.required, self.nullable, self.bad = name, kind, required, nullable, bad


LONG = "x" * 65
C0_C1 = [("\u0001", "U+0001"), ("\u007f", "DEL"), ("a\nb", "newline"), ("a\tb", "tab"),
         ("\u0000", "NUL"), ("a\u0085b", "C1 NEL"), ("\u009f", "C1 U+009F"), ("a\rb", "CR")]
BAD_EMAILS = [("", "empty"), ("plain", "no @"), ("a@", "no domain"), ("@example.com", "no local part"),
              ("a@b", "domain without a dot"), ("a b@example.com", "space"), ("a@@example.com", "two @"),
              ("a@example.com\u0000", "NUL"), ("a\n@example.com", "newline"),
              ("a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com", "255 bytes"),
              ("é" * 100 + "@" + "b" * 63 + "." + "c" * 50 + ".com", "219 characters, 319 bytes")]
SHORT_PW = "elevenchars"  # 11 < 12
BAD_PASSWORDS = [(SHORT_PW, "11 characters"), ("", "empty"), ("x" * 1025, "1025 bytes"),
                 ("é" * 513, "1026 bytes in 513 characters"),
                 ("long enough\u0000password", "NUL inside")]
BAD_NAMES = [("", "empty"), (LONG, "65 characters"), ("é" * 65, "65 multibyte characters")] + \
    [(f"Na{c}me", f"control {why}") for c, why in C0_C1]
BAD_OPT_TEXT64 = [(LONG, "65 characters")] + [(f"Na{c}me", f"control {why}") for c, why in C0_C1]
BAD_ABOUT = [("x" * 501, "501 characters")] + \
    [(f"ab{c}out", f"control {why}") for c, why in C0_C1 if why not in ("newline", "tab")]
BAD_URLS = [("javascript:alert(1)", "javascript:"), ("ftp://x.example/a.png", "ftp"),
            ("//x.example/a.png", "scheme-relative"), ("x.example/a.png", "no scheme"),
            ("data:image/png;base64,AAAA", "data:"), ("https://x.example/" + "a" * 2031, "2049 bytes"),
            ("https://x.example/a\u0000b", "NUL"), ("https://x.example/a\nb", "newline")]
BAD_DEVICES = [("tablet", "unknown class"), ("", "empty"), ("desktop ", "trailing space")]
BAD_ROLES = [("owner", "unknown role"), ("", "empty"), ("admin ", "trailing space")]


def r_register():
    return {"email": f"{api.unique('reg')}@example.com", "password": "a valid password",
            "name": "Valid Name"}


def r_admin_user():
    return {"email": f"{api.unique('adm')}@example.com", "password": "a valid password",
            "name": "Valid Name"}


ROUTES = {
    "register": dict(method="POST", path=lambda: "/auth/register", token=lambda: None, body=r_register,
                     fields=[F("email", "str", True, bad=BAD_EMAILS), F("password", "str", True, bad=BAD_PASSWORDS),
                             F("name", "str", True, bad=BAD_NAMES), F("device", "str", bad=BAD_DEVICES)],
                     privileged=["role", "must_change_password", "suspended", "id", "deleted"]),
    "login": dict(method="POST", path=lambda: "/auth/login", token=lambda: None,
                  body=lambda: {"email": S["member_email"], "password": S["member_password"]},
                  fields=[F("email", "str", True), F("password", "str", True), F("device", "str", bad=BAD_DEVICES)],
                  privileged=["role"]),
    "patch_me": dict(method="PATCH", path=lambda: "/me", token=lambda: S["member"],
                     body=lambda: {"name": "Changed Name"},
                     fields=[F("name", "str", bad=BAD_NAMES),
                             F("display_name", "str", nullable=True, bad=BAD_OPT_TEXT64),
                             F("about", "str", nullable=True, bad=BAD_ABOUT),
                             F("avatar_url", "str", nullable=True, bad=BAD_URLS)],
                     privileged=["role", "suspended", "email", "password", "must_change_password", "id",
                                 "deleted", "created_at"]),
    "password": dict(method="POST", path=lambda: "/me/password", token=lambda: S["member"],
                     body=lambda: {"current_password": S["member_password"], "new_password": "the new password"},
                     fields=[F("current_password", "str", True),
                             F("new_password", "str", True, bad=[(v, w) for v, w in BAD_PASSWORDS])],
                     privileged=["user_id"]),
    "tokens": dict(method="POST", path=lambda: "/me/tokens", token=lambda: S["member"],
                   body=lambda: {"name": "a token"},
                   fields=[F("name", "str", True, bad=[("", "empty"), (LONG, "65 characters")])],
                   privileged=["user_id", "token", "prefix"]),
    "admin_create": dict(method="POST", path=lambda: "/admin/users", token=lambda: S["admin"], body=r_admin_user,
                         fields=[F("email", "str", True, bad=BAD_EMAILS), F("name", "str", True, bad=BAD_NAMES),
                                 F("password", "str", True, bad=BAD_PASSWORDS),
                                 F("role", "str", bad=BAD_ROLES), F("must_change_password", "bool")],
                         privileged=["suspended", "id", "deleted", "display_name"]),
    "admin_patch": dict(method="PATCH", path=lambda: f"/admin/users/{S['target']}", token=lambda: S["admin"],
                        body=lambda: {"role": "admin", "suspended": True},
                        fields=[F("role", "str", bad=BAD_ROLES), F("suspended", "bool")],
                        privileged=["email", "name", "password", "must_change_password", "deleted"]),
    "settings": dict(method="PATCH", path=lambda: "/admin/settings", token=lambda: S["admin"],
                     body=lambda: {"app_name": "Changed", "open_registration": False},
                     fields=[F("open_registration", "bool"),
                             F("password_min_length", "int", bad=[(7, "7"), (1025, "1025"), (0, "0"), (-1, "-1"),
                                                                  (2 ** 64, "2^64"), (2 ** 63, "2^63")]),
                             F("session_lifetime_hours", "int", bad=[(0, "0"), (8761, "8761")]),
                             F("app_name", "str", bad=[("", "empty"), ("x" * 51, "51 characters"),
                                                       ("é" * 51, "51 multibyte characters"),
                                                       ("Ro\u0001ost", "control"), ("Ro\nost", "newline")]),
                             F("login_attempts_per_15min", "int", bad=[(0, "0"), (1001, "1001")]),
                             F("login_failures_per_ip_per_15min", "int", bad=[(0, "0"), (100001, "100001")]),
                             F("single_session_per_device", "bool"),
                             F("registrations_per_hour", "int", bad=[(0, "0"), (1001, "1001")]),
                             F("requests_per_minute", "int", bad=[(9, "9"), (100001, "100001")])],
                     privileged=["max_users", "jwt_secret", "tenant"]),
}

WRONG_TYPES = {"str": [(42, "number"), (True, "bool"), ([], "array"), ({}, "object"), (1.5, "float"),
                       (["x"], "array of string")],
               "bool": [("true", "string"), (1, "number"), (0, "zero"), ([], "array"), ({}, "object")],
               "int": [("12", "string"), (12.5, "fraction"), (True, "bool"), ([], "array"), ({}, "object")]}

# Raw JSON number texts that are not integers (the value may be in range).
RAW_INT_TEXTS = [("1e3", "exponent"), ("12.0", "fraction .0"), ("1.2e1", "fraction with exponent"),
                 ("1E3", "capital exponent")]


def field_cases(route):
    """(description, json body, field) of well-formed JSON with one bad field."""
    r = ROUTES[route]
    out = []
    for f in r["fields"]:
        if f.required:
            b = r["body"]()
            b.pop(f.name, None)
            out.append((f"missing {f.name}", b, f.name))
        if not f.nullable:
            out.append((f"{f.name} null", dict(r["body"](), **{f.name: None}), f.name))
        for v, why in WRONG_TYPES[f.kind]:
            out.append((f"{f.name} as {why}", dict(r["body"](), **{f.name: v}), f.name))
        for v, why in f.bad:
            out.append((f"{f.name} {why}", dict(r["body"](), **{f.name: v}), f.name))
    out.append(("unknown field", dict(r["body"](), nickname="x"), "nickname"))
    for p in r["privileged"]:
        val = "admin" if p == "role" else (False if p in ("must_change_password", "suspended", "deleted") else "x")
        out.append((f"unknown field {p}", dict(r["body"](), **{p: val}), p))
    return out


def raw_cases(route):
    """(description, bytes, content type, status, code) of malformed requests."""
    r = ROUTES[route]
    text_field = next(f.name for f in r["fields"] if f.kind == "str")
    base = r["body"]()
    base[text_field] = "@@X@@"
    good = json.dumps(base).encode()

    def with_value(raw):
        return good.replace(b'"@@X@@"', raw)

    first_key = next(iter(r["body"]()))
    dup = json.dumps(r["body"]())[:-1].encode() + b', "' + first_key.encode() + b'": ' + \
        json.dumps(r["body"]()[first_key]).encode() + b"}"
    esc_key = "".join(f"\\u{ord(c):04x}" if i == 0 else c for i, c in enumerate(first_key))
    dup_escaped = json.dumps(r["body"]())[:-1].encode() + b', "' + esc_key.encode() + b'": ' + \
        json.dumps(r["body"]()[first_key]).encode() + b"}"
    BR, VE = "BAD_REQUEST", "VALIDATION_ERROR"
    J = "application/json"
    out = [
        ("duplicate key", dup, J, 400, BR),
        ("duplicate key, escaped", dup_escaped, J, 400, BR),
        ("invalid JSON (cut)", good[:-3], J, 400, BR),
        ("trailing comma", good[:-1] + b",}", J, 400, BR),
        ("single quotes", good.replace(b'"', b"'"), J, 400, BR),
        ("comment", b"/* hi */" + good, J, 400, BR),
        ("trailing bytes", good + b" x", J, 400, BR),
        ("two values", good + good, J, 400, BR),
        ("NaN value", with_value(b"NaN"), J, 400, BR),
        ("leading zero", with_value(b"012"), J, 400, BR),
        ("10,000-deep nesting", b"[" * 10000 + b"]" * 10000, J, 400, BR),
        ("10,000-deep nesting in a field", with_value(b"[" * 10000 + b"]" * 10000), J, 400, BR),
        ("40-deep objects", with_value(b'{"a":' * 40 + b"1" + b"}" * 40), J, 400, BR),
        ("invalid UTF-8 \\xff\\xfe", with_value(b'"\xff\xfe"'), J, 400, BR),
        ("overlong UTF-8 /", with_value(b'"\xc0\xaf"'), J, 400, BR),
        ("UTF-8 surrogate bytes", with_value(b'"\xed\xa0\x80"'), J, 400, BR),
        ("lone surrogate escape", with_value(b'"\\ud800"'), J, 400, BR),
        ("truncated UTF-8", with_value(b'"ab\xc3"'), J, 400, BR),
        ("invalid UTF-8 in a key", good[:-1] + b', "\xff": 1}', J, 400, BR),
        ("empty body", b"", J, 400, BR),
        ("whitespace body", b"  \n", J, 400, BR),
        ("array body", b"[]", J, 400, VE),
        ("null body", b"null", J, 400, VE),
        ("string body", b'"x"', J, 400, VE),
        ("number body", b"42", J, 400, VE),
        ("text/plain", good, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("no Content-Type", good, None, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("multipart", b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
         "multipart/form-data; boundary=x", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("form-urlencoded", b"email=a%40b.com&password=x", "application/x-www-form-urlencoded", 415,
         "UNSUPPORTED_MEDIA_TYPE"),
        ("JSON under text/plain", good, "text/plain;charset=utf-8", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/jsonx", good, "application/jsonx", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ]
    for f in r["fields"]:
        if f.kind == "int":
            for text, why in RAW_INT_TEXTS:
                raw = json.dumps(dict(r["body"](), **{f.name: 0})).replace(f'"{f.name}": 0', f'"{f.name}": {text}')
                out.append((f"{f.name} {text} ({why})", raw.encode(), J, 400, VE))
            raw = json.dumps(dict(r["body"](), **{f.name: 0})).replace(f'"{f.name}": 0', f'"{f.name}": 1e400')
            out.append((f"{f.name} 1e400", raw.encode(), J, 400, (BR, VE)))
    return out


def run_route(route):
    setup()
    r = ROUTES[route]
    problems = []
    fp = fingerprint()
    pids = stack.fcgi_pids()

    def check(desc, resp, status, code, field=api._ANY):
        nonlocal fp
        try:
            expect_error(resp, status, code, field=field, what=f"{route}: {desc}")
        except AssertionError as e:
            problems.append(str(e)[:300])
        now = fingerprint()
        if now != fp:
            problems.append(f"{route}: {desc}: the database changed ({resp[0]})")
            fp = now

    for desc, body, field in field_cases(route):
        resp = api.request(stack, r["method"], r["path"](), json=body, token=r["token"]())
        check(desc, resp, 400, "VALIDATION_ERROR", field)
    for desc, raw, ctype, status, code in raw_cases(route):
        resp = api.request(stack, r["method"], r["path"](), raw_body=raw, content_type=ctype,
                           token=r["token"]())
        check(desc, resp, status, code)
    assert stack.fcgi_pids() == pids, f"{route}: a worker died: {pids} -> {stack.fcgi_pids()}"
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)
    # the member's session survived everything
    assert api.me_status(stack, S["member"])[0] == 200, "the member's session died"


@test
def register_bad_input():
    run_route("register")


@test
def login_bad_input():
    run_route("login")


@test
def patch_me_bad_input():
    run_route("patch_me")


@test
def change_password_bad_input():
    run_route("password")
    # the wrong current password is 403 naming the field, and changes nothing
    fp = fingerprint()
    expect_error(api.post(stack, "/me/password", {"current_password": "wrong password!!",
                                                  "new_password": "the new password"}, token=S["member"]),
                 403, "FORBIDDEN", field="current_password")
    assert fingerprint() == fp


@test
def create_token_bad_input():
    run_route("tokens")


@test
def admin_create_user_bad_input():
    run_route("admin_create")
    # the classic: a duplicate "role" must not sneak "admin" past a check
    fp = fingerprint()
    raw = ('{"email": "%s@example.com", "name": "Sneaky", "password": "a valid password", '
           '"role": "member", "role": "admin"}' % api.unique("dup"))
    expect_error(api.request(stack, "POST", "/admin/users", raw_body=raw, token=S["admin"]), 400, "BAD_REQUEST")
    assert fingerprint() == fp, "a body with a duplicate key stored a user"


@test
def admin_patch_user_bad_input():
    run_route("admin_patch")
    fp = fingerprint()
    expect_error(api.request(stack, "PATCH", f"/admin/users/{S['target']}",
                             raw_body='{"suspended": false, "suspended": true}', token=S["admin"]),
                 400, "BAD_REQUEST")
    for bad in ("0", "-1", "007", "99999999999999999999"):
        expect_error(api.patch(stack, f"/admin/users/{bad}", {"role": "admin"}, token=S["admin"]),
                     400, "VALIDATION_ERROR", what=f"id {bad}")
    assert fingerprint() == fp


@test
def settings_bad_input():
    run_route("settings")


@test
def documented_limits_are_accepted():
    setup()
    local = "a" * 64
    email254 = local + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(email254.encode()) == 254
    name64 = "é" * 63 + "😀"
    pw1024 = "é" * 512
    assert len(pw1024.encode()) == 1024 and len(name64) == 64
    st, _, u = api.post(stack, "/admin/users", {"email": email254.upper(), "name": name64, "password": pw1024,
                                                "must_change_password": False}, token=S["admin"])
    assert st == 201, f"254-byte email, 64-character name, 1024-byte password: {st} {u}"
    assert u["email"] == email254 and u["name"] == name64, u
    tok = api.login(stack, email254, pw1024)["token"]
    st, _, doc = api.patch(stack, "/me", {"display_name": "😀" * 64, "about": ("line\n" * 100)[:500],
                                          "avatar_url": "https://x.example/" + "a" * (2048 - 18)}, token=tok)
    assert st == 200, f"64-character display name, 500-character about, 2048-byte URL: {st} {doc}"
    assert doc["about"].count("\n") == 100 and len(doc["avatar_url"]) == 2048, doc
    st, _, doc = api.patch(stack, "/me", {"avatar_url": "http://x.example/a.png"}, token=tok,
                           content_type="application/json; charset=utf-8")
    assert st == 200, f"application/json with a charset: {st} {doc}"
    st, _, t = api.post(stack, "/me/tokens", {"name": "t" * 64}, token=tok)
    assert st == 201, f"64-character token name: {st} {t}"
    st, _, _ = api.post(stack, "/me/password", {"current_password": pw1024, "new_password": "twelve chars"},
                        token=tok)
    assert st == 204, f"a 12-character password (the minimum): {st}"
    st, _, doc = api.post(stack, "/auth/register", {"email": f"{api.unique('ok')}@example.com",
                                                    "password": "a valid password", "name": "Ok",
                                                    "device": "mobile"})
    assert st == 201, (st, doc)


@test
def workers_are_still_the_same():
    assert stack.fcgi_pids() == PIDS, f"a worker died or was replaced: {PIDS} -> {stack.fcgi_pids()}"
    st, _, doc = api.get(stack, "/health")
    assert st == 200, (st, doc)


if __name__ == "__main__":
    run_tests(stack)
