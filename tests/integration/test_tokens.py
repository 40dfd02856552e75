#!/usr/bin/python3
"""Integration: hostile credentials (docs/auth.md "Session tokens (JWT)").

Tokens are minted here, with PyJWT (Debian's python3-jwt) or by hand, never
with the code under test. First a forged-but-correct token (the claims of a
real login, signed with ROOST_JWT_SECRET) must be ACCEPTED, so that every
refusal below is about the one thing each case changes. Every hostile
credential must get 401 with {"error": {"code": "UNAUTHORIZED", ...}}, the
real session must survive the barrage, and no worker may die.

Readings of the contract:
- "exp more than the longest session lifetime in the future is refused":
  the longest lifetime a tenant can set is 8760 h, so only tokens beyond
  that are required to be refused here (a token within the current
  setting's lifetime but beyond it is not tested).
- Clock skew 60 s applies both ways: exp 30 s in the past, nbf and iat 30 s
  in the future are accepted; 120 s / 300 s are refused.
- The scheme name is case-insensitive (RFC 7235): "bearer" and "BEARER"
  work.
- `alg` must be exactly "HS256": "hs256" is another algorithm name and is
  refused like "none".
- `sub` is a decimal user id: "7abc", "" and 7 (a number) are refused.
- A 10 KB token does not fit lighttpd's 8 KiB header field limit: lighttpd
  answers 431 HEADERS_TOO_LARGE itself (docs/api.md); that is accepted for
  that one case, and an 8,000-byte token must get Roost's 401.
"""
import base64
import hashlib
import hmac
import json
import time

import jwt  # python3-jwt (PyJWT 2.6)

import api
from api import get, post
from harness import Stack, run_tests, test

stack = Stack(workers=2)
PIDS = stack.fcgi_pids()
SECRET = stack.env_vars["ROOST_JWT_SECRET"].encode()
ADMIN_EMAIL, ADMIN_PASSWORD = api.make_admin(stack)
ST = {}  # shared state: admin token, the victim's real session, claims


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def enc(obj):
    """JSON text for a header or payload (a str is used as is)."""
    return obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))


def mint(payload, header=None, key=SECRET, digest=hashlib.sha256, sig=None):
    """A JWT by hand: HMAC over b64(header).b64(payload) unless sig is given."""
    header = {"alg": "HS256", "typ": "JWT"} if header is None else header
    signing = f"{b64(enc(header))}.{b64(enc(payload))}"
    if sig is None:
        sig = b64(hmac.new(key, signing.encode(), digest).digest())
    return f"{signing}.{sig}"


def claims(**changes):
    """The real session's claims with fresh times, then `changes` applied
    (a value of DROP removes the claim)."""
    now = int(time.time())
    c = dict(ST["claims"])
    c["iat"] = now
    c["exp"] = now + 3600
    for k, v in changes.items():
        if v is DROP:
            c.pop(k, None)
        else:
            c[k] = v
    return c


DROP = object()


def status_of(auth_value=None, cookie=None):
    headers = {}
    if auth_value is not None:
        headers["Authorization"] = auth_value
    cookies = {"roost_session": cookie} if cookie is not None else None
    st, _, body = api.request(stack, "GET", "/me", headers=headers, cookies=cookies)
    code = body["error"]["code"] if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    return st, code, body


def refused_all(cases, scheme="Bearer "):
    """Each (name, token) must get 401 UNAUTHORIZED; list every one that does not."""
    bad = []
    for name, tok in cases:
        st, code, body = status_of(scheme + tok if scheme is not None else tok)
        if (st, code) != (401, "UNAUTHORIZED"):
            bad.append(f"{name}: got {st} {code} {json.dumps(body)[:160]}")
        elif not body["error"].get("message"):
            bad.append(f"{name}: error body without a message")
    assert not bad, "hostile tokens not refused with 401 UNAUTHORIZED:\n" + "\n".join(bad)
    victim_alive()


def accepted(tok, what, scheme="Bearer "):
    st, code, body = status_of(scheme + tok)
    assert st == 200, f"{what} must be accepted: got {st} {code} {body}"
    assert body["id"] == ST["user"]["id"], f"{what}: authenticated as {body['id']}"


def victim_alive():
    st, code, _ = status_of("Bearer " + ST["token"])
    assert st == 200, f"the real session died during the attacks: {st} {code}"


def fresh_user():
    """A new member logged in on desktop: (user, email, password, login answer)."""
    user, email, password = api.create_user(stack, ST["admin"])
    return user, email, password, api.login(stack, email, password)


# ------------------------------------------------------------------ baseline

@test
def forged_valid_token_is_accepted():
    ST["admin"] = api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
    api.relax_limits(stack, ST["admin"])
    user, email, password, doc = fresh_user()
    ST.update(user=user, email=email, password=password, token=doc["token"], sid=doc["session_id"])
    hdr = jwt.get_unverified_header(doc["token"])
    assert hdr == {"alg": "HS256", "typ": "JWT"}, hdr
    c = jwt.decode(doc["token"], options={"verify_signature": False})
    assert c["iss"] == "roost" and (c["aud"] == "roost" or "roost" in c["aud"]), c
    assert c["sub"] == str(user["id"]) and c["sid"] == doc["session_id"], c
    for k, t in (("iss", str), ("sub", str), ("tid", str), ("sid", int), ("iat", int), ("exp", int)):
        assert type(c[k]) is t, f"claim {k} is {type(c[k]).__name__}, the contract says {t.__name__}"
    ST["claims"] = {k: c[k] for k in ("iss", "aud", "sub", "tid", "sid", "iat", "exp")}
    # the real token, PyJWT's copy, and a hand-made copy all work
    accepted(doc["token"], "the real token")
    accepted(jwt.encode(claims(), SECRET, algorithm="HS256"), "a PyJWT token with the real claims")
    accepted(mint(claims()), "a hand-made token with the real claims")
    accepted(mint(claims(aud=["other", "roost"])), "aud as an array containing roost")
    accepted(mint(claims(nbf=int(time.time()) - 10)), "with a past nbf")
    now = int(time.time())
    accepted(mint(claims(iat=now - 3600, exp=now - 30)), "exp 30 s ago (within the 60 s skew)")
    accepted(mint(claims(nbf=now + 30)), "nbf in 30 s (within the skew)")
    accepted(mint(claims(iat=now + 30)), "iat in 30 s (within the skew)")
    accepted(doc["token"], "lowercase scheme", scheme="bearer ")
    accepted(doc["token"], "uppercase scheme", scheme="BEARER ")


# ------------------------------------------------------------------ signature and algorithm

@test
def signature_and_algorithm_attacks():
    good = mint(claims())
    h, p, s = good.split(".")
    admin_sub = str(jwt.decode(ST["admin"], options={"verify_signature": False})["sub"])
    flipped = b64(enc(claims(sub=admin_sub)))
    other_key = b"a completely different key of 32+ bytes!!"
    cases = [
        ("payload flipped to the admin's sub, old signature", f"{h}.{flipped}.{s}"),
        ("wrong secret", mint(claims(), key=other_key)),
        ("secret with one byte changed", mint(claims(), key=SECRET[:-1] + bytes([SECRET[-1] ^ 1]))),
        ("empty key", mint(claims(), key=b"")),
        ("PyJWT HS256 with another key", jwt.encode(claims(), other_key, algorithm="HS256")),
        ("alg none, no signature", mint(claims(), {"alg": "none", "typ": "JWT"}, sig="")),
        ("alg None, no signature", mint(claims(), {"alg": "None", "typ": "JWT"}, sig="")),
        ("alg NONE, no signature", mint(claims(), {"alg": "NONE", "typ": "JWT"}, sig="")),
        ("alg nOnE, no signature", mint(claims(), {"alg": "nOnE", "typ": "JWT"}, sig="")),
        ("alg none with an HS256 signature", mint(claims(), {"alg": "none", "typ": "JWT"})),
        ("alg none, two segments", mint(claims(), {"alg": "none"}, sig="").rstrip(".")),
        ("HS512 with the right secret (PyJWT)", jwt.encode(claims(), SECRET, algorithm="HS512")),
        ("HS384 with the right secret (PyJWT)", jwt.encode(claims(), SECRET, algorithm="HS384")),
        ("HS512 by hand", mint(claims(), {"alg": "HS512", "typ": "JWT"}, digest=hashlib.sha512)),
        ("RS256 header, HMAC-SHA256 signature", mint(claims(), {"alg": "RS256", "typ": "JWT"})),
        ("ES256 header, HMAC-SHA256 signature", mint(claims(), {"alg": "ES256", "typ": "JWT"})),
        ("PS256 header, HMAC-SHA256 signature", mint(claims(), {"alg": "PS256", "typ": "JWT"})),
        ("alg hs256 (lowercase)", mint(claims(), {"alg": "hs256", "typ": "JWT"})),
        ("alg 'HS256 ' (space)", mint(claims(), {"alg": "HS256 ", "typ": "JWT"})),
        ("alg missing", mint(claims(), {"typ": "JWT"})),
        ("alg null", mint(claims(), {"alg": None, "typ": "JWT"})),
        ("alg as an array", mint(claims(), {"alg": ["HS256"], "typ": "JWT"})),
        ("header is an array", mint(claims(), '["HS256"]')),
        ("header is not JSON", mint(claims(), "{alg: HS256}")),
        ("payload is not JSON", mint("{sub: 1}")),
        ("payload is null", mint("null")),
        ("payload is an array", mint("[1,2]")),
        ("signature removed", f"{h}.{p}."),
        ("signature truncated", f"{h}.{p}.{s[:-4]}"),
        ("signature with one char changed", f"{h}.{p}.{s[:-2]}{'A' if s[-2] != 'A' else 'B'}{s[-1]}"),
        ("signature from another token", f"{h}.{p}.{ST['token'].split('.')[2]}"),
        ("signature in standard base64 (+/=)", f"{h}.{p}.{base64.b64encode(hmac.new(SECRET, f'{h}.{p}'.encode(), hashlib.sha256).digest()).decode()}"),
        ("four segments", f"{good}.{s}"),
        ("trailing garbage", good + "garbage"),
        ("padded header", f"{h}==.{p}.{s}"),
    ]
    refused_all(cases)
    # the same hostile tokens in the session cookie
    bad = []
    for name, tok in cases[:12]:
        st, code, _ = status_of(cookie=tok)
        if (st, code) != (401, "UNAUTHORIZED"):
            bad.append(f"cookie {name}: {st} {code}")
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------ claims

@test
def claim_validation():
    now = int(time.time())
    lifetime_max = 8760 * 3600
    cases = [
        ("expired 120 s ago", mint(claims(exp=now - 120))),
        ("expired an hour ago", mint(claims(iat=now - 7200, exp=now - 3600))),
        ("expired (PyJWT)", jwt.encode(claims(exp=now - 300), SECRET, algorithm="HS256")),
        ("nbf in 5 minutes", mint(claims(nbf=now + 300))),
        ("iat in 5 minutes", mint(claims(iat=now + 300))),
        ("iat after exp", mint(claims(iat=now + 7200, exp=now + 3600))),
        ("exp beyond the longest lifetime", mint(claims(exp=now + lifetime_max + 2 * 86400))),
        ("exp in ten years", mint(claims(exp=now + 10 * 365 * 86400))),
        ("exp 2^63-1", mint(claims(exp=2 ** 63 - 1))),
        ("exp 2^64", mint(claims(exp=2 ** 64))),
        ("exp negative", mint(claims(exp=-1))),
        ("exp 0", mint(claims(exp=0))),
        ("wrong aud", mint(claims(aud="other"))),
        ("aud ROOST", mint(claims(aud="ROOST"))),
        ("aud array without roost", mint(claims(aud=["other", "x"]))),
        ("aud empty array", mint(claims(aud=[]))),
        ("aud array of arrays", mint(claims(aud=[["roost"]]))),
        ("aud as a number", mint(claims(aud=1))),
        ("aud null", mint(claims(aud=None))),
        ("wrong iss", mint(claims(iss="evil"))),
        ("iss ROOST", mint(claims(iss="ROOST"))),
        ("iss as an array", mint(claims(iss=["roost"]))),
        ("tid of another tenant", mint(claims(tid="other_tenant"))),
        ("tid empty", mint(claims(tid=""))),
        ("tid as a number", mint(claims(tid=1))),
        ("sub as an integer", mint(claims(sub=int(ST["claims"]["sub"])))),
        ("sub '7abc'-style", mint(claims(sub=ST["claims"]["sub"] + "abc"))),
        ("sub with a leading space", mint(claims(sub=" " + ST["claims"]["sub"]))),
        ("sub empty", mint(claims(sub=""))),
        ("sub 0", mint(claims(sub="0"))),
        ("sub negative", mint(claims(sub="-" + ST["claims"]["sub"]))),
        ("sub 2^64 + own id", mint(claims(sub=str(2 ** 64 + int(ST["claims"]["sub"]))))),
        ("sid as a string", mint(claims(sid=str(ST["sid"])))),
        ("sid as a float", mint(claims(sid=float(ST["sid"])))),
        ("sid 2^64 + own sid", mint(claims(sid=2 ** 64 + ST["sid"]))),
        ("sid 0", mint(claims(sid=0))),
        ("sid negative", mint(claims(sid=-ST["sid"]))),
        ("sid of no session", mint(claims(sid=999999999))),
        ("sid null", mint(claims(sid=None))),
        ("exp as a string", mint(claims(exp=str(now + 3600)))),
        ("exp as a float", mint(claims(exp=float(now + 3600)))),
        ("exp with an exponent", mint(enc(claims(exp=0)).replace('"exp":0', '"exp":%de0' % (now + 3600)))),
        ("exp as a bool", mint(claims(exp=True))),
        ("iat as a bool", mint(claims(iat=True))),
        ("iat as a string", mint(claims(iat=str(now)))),
        ("iat as a float", mint(claims(iat=now + 0.5))),
        ("nbf as a string", mint(claims(nbf=str(now - 10)))),
        ("nbf as a float", mint(claims(nbf=now - 10.5))),
    ]
    for k in ("iss", "aud", "sub", "tid", "sid", "iat", "exp"):
        cases.append((f"missing {k}", mint(claims(**{k: DROP}))))
    cases.append(("no claims at all", mint({})))
    expo = dict(cases)["exp with an exponent"].split(".")[1]
    assert b'"exp":%de0' % (now + 3600) in base64.urlsafe_b64decode(expo + "=" * (-len(expo) % 4))
    refused_all(cases)


# ------------------------------------------------------------------ session state

@test
def session_state_is_checked():
    # a logged-out session
    u, e, p, doc = fresh_user()
    m = api.login(stack, e, p, device="mobile")
    c = {"iss": "roost", "aud": "roost", "sub": str(u["id"]), "tid": ST["claims"]["tid"],
         "sid": m["session_id"]}

    def tok(**kw):
        now = int(time.time())
        d = dict(c, iat=now, exp=now + 3600)
        d.update(kw)
        return mint(d)

    assert status_of("Bearer " + tok())[0] == 200, "forged token for the live mobile session"
    assert post(stack, "/auth/logout", token=m["token"])[0] == 204
    cases = [("sid of a logged-out session", tok())]
    # another user's session under my sub, and mine under theirs
    cases.append(("my sub with another user's sid", mint(claims(sid=doc["session_id"]))))
    cases.append(("another user's sub with my sid", tok(sid=ST["sid"])))
    refused_all(cases)
    assert status_of("Bearer " + doc["token"])[0] == 200, "the other user's own token still works"

    # a suspended user (through the API)
    u2, e2, p2, d2 = fresh_user()
    c2 = dict(ST["claims"], sub=str(u2["id"]), sid=d2["session_id"])
    assert api.patch(stack, f"/admin/users/{u2['id']}", {"suspended": True}, token=ST["admin"])[0] == 200
    refused_all([("suspended user", mint(dict(c2, iat=int(time.time()), exp=int(time.time()) + 3600)))])

    # a deleted user (through the API)
    u3, e3, p3, d3 = fresh_user()
    c3 = dict(ST["claims"], sub=str(u3["id"]), sid=d3["session_id"])
    assert api.delete(stack, f"/admin/users/{u3['id']}", token=ST["admin"])[0] == 204
    refused_all([("deleted user", mint(dict(c3, iat=int(time.time()), exp=int(time.time()) + 3600)))])


@test
def session_state_is_read_from_the_database():
    # The flags alone must refuse a session, even when its row is not
    # revoked: set them behind the server's back, drop the cache (the
    # contract lets it live 30 s), and the next request must see them.
    u, e, p, doc = fresh_user()
    t = doc["token"]
    uid, sid = u["id"], doc["session_id"]
    assert status_of("Bearer " + t)[0] == 200

    def flip(sql):
        api.sql(stack, sql)
        assert stack.redis_cli("FLUSHALL") == "OK"

    flip(f"UPDATE users SET suspended = true WHERE id = {uid}")
    refused_all([("suspended in the database", t)])
    flip(f"UPDATE users SET suspended = false WHERE id = {uid}")
    assert status_of("Bearer " + t)[0] == 200, "unsuspended in the database: the session is live again"
    flip(f"UPDATE users SET deleted_at = now() WHERE id = {uid}")
    refused_all([("deleted in the database", t)])
    flip(f"UPDATE users SET deleted_at = NULL WHERE id = {uid}")
    assert status_of("Bearer " + t)[0] == 200
    flip(f"UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE id = {sid}")
    refused_all([("session expired in the database (token exp still ahead)", t)])
    flip(f"UPDATE sessions SET expires_at = now() + interval '1 hour', revoked_at = now() WHERE id = {sid}")
    refused_all([("session revoked in the database", t)])


# ------------------------------------------------------------------ garbage

@test
def garbage_credentials():
    real = ST["token"]
    cases = [
        ("empty token", ""),
        ("a.b", "a.b"),
        ("a.b.c", "a.b.c"),
        ("a.b.c.d", "a.b.c.d"),
        ("..", ".."),
        ("8,000 bytes of A", "A" * 8000),
        ("three segments of A", "A" * 100 + "." + "A" * 100 + "." + "A" * 43),
        ("non-base64url characters", "!!!.@@@.###"),
        ("spaces inside", real.replace(".", " . ", 1)),
        ("real token with a suffix", real + "x"),
        ("real token twice", real + " " + real),
        ("API-token shape, unknown", "roost_" + "A" * 43),
        ("API-token shape, short", "roost_abc"),
        ("API-token shape, long", "roost_" + "A" * 100),
        ("roost_ alone", "roost_"),
    ]
    refused_all(cases)
    # a real API token, altered
    st, _, t = post(stack, "/me/tokens", {"name": "probe"}, token=real)
    assert st == 201, (st, t)
    at = t["token"]
    flip = at[:-1] + ("A" if at[-1] != "A" else "B")
    refused_all([("API token, last char changed", flip), ("API token + x", at + "x"),
                 ("API token without roost_", at[len("roost_"):]), ("API token uppercased", at.upper())])
    assert status_of("Bearer " + at)[0] == 200, "the real API token works"
    # other schemes and malformed Authorization headers
    refused_all([("Basic with a valid token", "Basic " + real),
                 ("Basic with user:token", "Basic " + base64.b64encode(f"x:{real}".encode()).decode()),
                 ("Token scheme", "Token " + real),
                 ("no scheme", real),
                 ("Bearer alone", "Bearer"),
                 ("Bearer and a space", "Bearer "),
                 ("Bearer, comma", "Bearer, " + real),
                 ("Bearerx", "Bearerx " + real),
                 ("API token under Basic", "Basic " + at)], scheme=None)
    # 10 KB does not fit lighttpd's 8 KiB field limit: its own 431, or Roost's 401
    st, code, body = status_of("Bearer " + "A" * 10240)
    assert (st, code) in ((401, "UNAUTHORIZED"), (431, "HEADERS_TOO_LARGE")), (st, code, body)
    # garbage cookies
    bad = []
    for v in ("", "x", "a.b.c", "roost_" + "A" * 43, real + "x"):
        st, code, _ = status_of(cookie=v)
        if (st, code) != (401, "UNAUTHORIZED"):
            bad.append(f"cookie {v[:20]!r}: {st} {code}")
    assert not bad, "\n".join(bad)
    victim_alive()


@test
def workers_survived():
    assert stack.fcgi_pids() == PIDS, f"a worker died or was replaced: {PIDS} -> {stack.fcgi_pids()}"
    victim_alive()


if __name__ == "__main__":
    run_tests(stack)
