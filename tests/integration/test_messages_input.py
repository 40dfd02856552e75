#!/usr/bin/python3
"""Integration: bad input to the rooms and messages routes (docs/rooms.md,
docs/api.md). Every bad request must answer a clear 4xx with the error
body (and `field` when one input is at fault) and store NOTHING: a
fingerprint of the database (row counts of rooms, room_members, messages,
message_mentions, reactions, pins and events, plus a digest of every
message's and room's stored fields) is compared before and after each one.
SQL metacharacters go everywhere and must be stored and echoed literally
where they are valid, and never break anything (the tables still exist at
the end). Finally no worker died.

Readings of the contract:
- A path id that looks numeric but is out of range (-1, 0, 007, 2^53,
  20 digits) is 400 VALIDATION_ERROR; a non-numeric one matches no route:
  404 (docs/api.md).
- Malformed JSON (syntax, invalid UTF-8, lone surrogate escapes, duplicate
  keys, nesting over 32) is 400 BAD_REQUEST; a well-formed body with a
  wrong field is 400 VALIDATION_ERROR naming the field; drawing errors
  name a field starting with "content".
- "Not only whitespace": Unicode white space (NBSP, em space) counts as
  white space. "No control characters but newline and tab" covers C0 (but
  \\n and \\t), DEL and C1 (U+0080-U+009F), as for account text fields;
  CR is left untested (a pasted CRLF is arguable).
- `type` may be left out (or null): a text message (docs/rooms.md); any
  other value but text, drawing and image is 400 field type, so users
  cannot post `system` or `visitor` messages.
- Lengths count characters (code points): 4,000 astral emoji are
  accepted, 4,001 "é" are not.
- `%` and `_` in discovery's and search's `q` are literal characters, not
  wildcards.
"""
import json
import urllib.parse

import api
from api import expect_error, get, patch, post
from harness import Stack, raw_request, run_tests, test

stack = Stack(workers=2)
PIDS = stack.fcgi_pids()
ADMIN_EMAIL, ADMIN_PASSWORD = api.make_admin(stack)
S = {}
TABLES = ("rooms", "room_members", "messages", "message_mentions", "reactions", "pins", "events")
FINGERPRINT = """
SELECT concat_ws('|',
  (SELECT count(*) FROM rooms), (SELECT count(*) FROM room_members), (SELECT count(*) FROM messages),
  (SELECT count(*) FROM message_mentions), (SELECT count(*) FROM reactions), (SELECT count(*) FROM pins),
  (SELECT count(*) FROM events),
  (SELECT md5(coalesce(string_agg((id, room_id, author_id, type, body, data, reply_to, client_msg_id,
                                   edited_at, deleted_at)::text, ';' ORDER BY id), '')) FROM messages),
  (SELECT md5(coalesce(string_agg((id, kind, name, topic, owner_id, managed, max_members, password_hash,
                                   invite_code, retention_hours, archived, member_count)::text, ';'
                                  ORDER BY id), '')) FROM rooms),
  (SELECT md5(coalesce(string_agg((room_id, user_id, last_read_message_id)::text, ';'
                                  ORDER BY room_id, user_id), '')) FROM room_members))
"""
ANY = api._ANY


def fingerprint():
    return api.sql(stack, FINGERPRINT)


def setup():
    if S:
        return S
    S["admin"] = api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
    api.set_settings(stack, S["admin"], **api.RELAXED)
    api.set_settings(stack, S["admin"], messages_per_10s=1000)
    owner, ot = api.member_session(stack, S["admin"], name="Owner")
    mem, mt = api.member_session(stack, S["admin"], name="Member")
    out, xt = api.member_session(stack, S["admin"], name="Outsider")
    pub = api.create_room(stack, ot, name="Input public", max_members=0)
    priv = api.create_room(stack, ot, name="Input private", kind="private", password="room password")
    full = api.create_room(stack, ot, name="Input full", max_members=2)
    other = api.create_room(stack, xt, name="Outsider's room")
    api.join_room(stack, mt, pub["id"])
    api.join_by_code(stack, mt, priv["invite_code"], password="room password")
    api.join_room(stack, mt, full["id"])
    pm = api.send(stack, ot, pub["id"], "owner's public message")
    qm = api.send(stack, ot, priv["id"], "owner's private message")
    om = api.send(stack, xt, other["id"], "outsider's message")
    S.update(owner=owner, ot=ot, mem=mem, mt=mt, out=out, xt=xt, pub=pub, priv=priv, full=full,
             other=other, pm=pm, qm=qm, om=om)
    return S


def bad(method, path, status, code=None, field=ANY, json_body=None, raw=None, token=None,
        content_type="application/json", what=None):
    """Send one bad request; assert the error and that nothing changed."""
    before = fingerprint()
    resp = api.request(stack, method, path, json=json_body, raw_body=raw, token=token,
                       content_type=content_type)
    err = expect_error(resp, status, code, field=field, what=what or f"{method} {path} {json_body or raw!r}"[:200])
    after = fingerprint()
    assert after == before, f"{what or path}: the database changed\n before {before}\n after  {after}"
    return err


def send_bad(body, status=400, code="VALIDATION_ERROR", field=ANY, room=None, token=None, what=None):
    s = setup()
    rid = (room or s["pub"])["id"]
    return bad("POST", f"/rooms/{rid}/messages", status, code, field, json_body=body, token=token or s["mt"],
               what=what or f"send {json.dumps(body, ensure_ascii=True)[:120]}")


# ------------------------------------------------------------------ membership

@test
def non_member_reads_and_writes():
    s = setup()
    for room, msg, status, code in ((s["pub"], s["pm"], 403, "NOT_MEMBER"), (s["priv"], s["qm"], 404, "NOT_FOUND")):
        rid, mid = room["id"], msg["id"]
        for method, path, body in (("GET", f"/rooms/{rid}/messages", None),
                                   ("GET", f"/rooms/{rid}/messages?around={mid}", None),
                                   ("POST", f"/rooms/{rid}/messages", {"type": "text", "content": "sneaky"}),
                                   ("GET", f"/rooms/{rid}/members", None),
                                   ("GET", f"/rooms/{rid}/pins", None),
                                   ("POST", f"/rooms/{rid}/read", {"message_id": mid}),
                                   ("GET", f"/messages/{mid}", None),
                                   ("PUT", f"/messages/{mid}/pin", None),
                                   ("PUT", f"/messages/{mid}/reactions/heart", None)):
            bad(method, path, status, code, json_body=body, token=s["xt"], what=f"outsider {method} {path}")
    bad("GET", f"/rooms/{s['pub']['id']}/messages", 401, "UNAUTHORIZED", what="no credential")
    bad("POST", f"/rooms/{s['pub']['id']}/messages", 401, "UNAUTHORIZED",
        json_body={"type": "text", "content": "anonymous"}, what="send without a credential")


# ------------------------------------------------------------------ ids

PATH_TEMPLATES = [("GET", "/rooms/{x}"), ("PATCH", "/rooms/{x}"), ("DELETE", "/rooms/{x}"),
                  ("GET", "/rooms/{x}/messages"), ("POST", "/rooms/{x}/messages"),
                  ("POST", "/rooms/{x}/join"), ("POST", "/rooms/{x}/leave"),
                  ("GET", "/rooms/{x}/members"), ("POST", "/rooms/{x}/members"),
                  ("DELETE", "/rooms/{x}/members/{x}"), ("POST", "/rooms/{x}/invite-code"),
                  ("GET", "/rooms/{x}/pins"), ("POST", "/rooms/{x}/read"),
                  ("GET", "/messages/{x}"), ("PATCH", "/messages/{x}"), ("DELETE", "/messages/{x}"),
                  ("PUT", "/messages/{x}/pin"), ("DELETE", "/messages/{x}/pin"),
                  ("PUT", "/messages/{x}/reactions/heart"), ("DELETE", "/messages/{x}/reactions/heart")]
BODIES = {"POST /rooms/{x}/messages": {"type": "text", "content": "x"},
          "POST /rooms/{x}/members": {"user_ids": [1]}, "POST /rooms/{x}/read": {"message_id": 1},
          "PATCH /rooms/{x}": {"name": "x"}, "PATCH /messages/{x}": {"content": "x"},
          "POST /rooms/{x}/join": {}}


@test
def path_ids_out_of_range_or_not_numbers():
    s = setup()
    for method, tpl in PATH_TEMPLATES:
        body = BODIES.get(f"{method} {tpl}")
        for x in ("-1", "0", "007", str(2 ** 53), "99999999999999999999", "18446744073709551617"):
            bad(method, tpl.replace("{x}", x), 400, "VALIDATION_ERROR", json_body=body, token=s["mt"],
                what=f"{method} {tpl} with {x}")
        for x in ("abc", "1x", "0x10", "1e3"):
            bad(method, tpl.replace("{x}", x), 404, "NOT_FOUND", json_body=body, token=s["mt"],
                what=f"{method} {tpl} with {x}")
        x = str(2 ** 53 - 1)  # valid, but no such room or message
        bad(method, tpl.replace("{x}", x), 404, "NOT_FOUND", json_body=body, token=s["mt"],
            what=f"{method} {tpl} with 2^53-1")


@test
def body_ids_out_of_range_or_mistyped():
    s = setup()
    rid = s["pub"]["id"]
    for v in (-1, 0, 2 ** 53, 99999999999999999999, "12", 1.5, True, [1], {"id": 1}):
        send_bad({"type": "text", "content": "x", "reply_to": v}, field="reply_to", what=f"reply_to {v!r}")
        bad("POST", f"/rooms/{rid}/read", 400, "VALIDATION_ERROR", "message_id", json_body={"message_id": v},
            token=s["mt"], what=f"read message_id {v!r}")
        bad("POST", "/dms", 400, "VALIDATION_ERROR", "user_id", json_body={"user_id": v}, token=s["mt"],
            what=f"dms user_id {v!r}")
        bad("POST", f"/rooms/{rid}/members", 400, "VALIDATION_ERROR", "user_ids", json_body={"user_ids": [v]},
            token=s["mt"], what=f"user_ids [{v!r}]")
    for raw in (b'{"type":"text","content":"x","reply_to":1e3}', b'{"type":"text","content":"x","reply_to":12.0}'):
        bad("POST", f"/rooms/{rid}/messages", 400, "VALIDATION_ERROR", "reply_to", raw=raw, token=s["mt"])
    bad("POST", f"/rooms/{rid}/messages", 400, "BAD_REQUEST", raw=b'{"type":"text","content":"x","reply_to":012}',
        token=s["mt"], what="leading zero")


@test
def cursors_and_limits():
    s = setup()
    rid = s["pub"]["id"]
    for cur in ("before", "after", "around"):
        bad("GET", f"/rooms/{rid}/messages?{cur}=987654321", 404, "NOT_FOUND", token=s["mt"])
        bad("GET", f"/rooms/{rid}/messages?{cur}={s['om']['id']}", 404, "NOT_FOUND", token=s["mt"],
            what=f"{cur} = a message of another room")
        bad("GET", f"/rooms/{rid}/messages?{cur}={s['qm']['id']}", 404, "NOT_FOUND", token=s["mt"],
            what=f"{cur} = a message of my other room")
    for lim in ("0", "101", "-1", "abc", "99999999999999999999"):
        bad("GET", f"/rooms/{rid}/messages?limit={lim}", 400, "VALIDATION_ERROR", "limit", token=s["mt"])
        bad("GET", f"/rooms/discover?limit={lim}", 400, "VALIDATION_ERROR", "limit", token=s["mt"])
        if lim != "101":  # the members list's range is not in the contract; these are outside any
            bad("GET", f"/rooms/{rid}/members?limit={lim}", 400, "VALIDATION_ERROR", "limit", token=s["mt"])
    bad("GET", f"/rooms/{rid}/messages?before={s['pm']['id']}&after={s['pm']['id']}", 400, token=s["mt"],
        what="two cursors")


# ------------------------------------------------------------------ content

@test
def text_content_rules():
    s = setup()
    for content, what in (("", "empty"), ("   ", "spaces"), (" \n\t \n", "whitespace and newlines"),
                          ("\u00a0\u2003", "Unicode white space"), ("x" * 4001, "4,001 characters"),
                          ("é" * 4001, "4,001 two-byte characters"), ("😀" * 4001, "4,001 emoji"),
                          ("a\u0000b", "NUL"), ("\u0000", "only NUL"), ("a\u0001b", "U+0001"),
                          ("a\u001bb", "ESC"), ("a\u007fb", "DEL"), ("a\u0085b", "C1 NEL"),
                          ("a\u009bb", "C1 CSI"), ("a\u000bb", "vertical tab"), ("a\u000cb", "form feed")):
        send_bad({"type": "text", "content": content}, field="content", what=f"content {what}")
    for content in (5, None, True, ["x"], {"text": "x"}):
        send_bad({"type": "text", "content": content}, field="content", what=f"content {content!r}")
    send_bad({"type": "text"}, field="content", what="no content")
    # the limits themselves pass, counted in characters
    for content in ("x" * 4000, "é" * 4000, "😀" * 4000, "a\n\tb", "  padded  "):
        m = api.send(stack, s["mt"], s["pub"]["id"], content)
        assert m["content"] == content, "stored exactly"
        stored = api.sql(stack, f"SELECT length(body) FROM messages WHERE id = {m['id']}")
        assert stored == str(len(content)), f"stored {stored} characters of {len(content)}"


@test
def message_length_follows_the_setting():
    s = setup()
    api.set_settings(stack, s["admin"], message_max_chars=10)
    try:
        send_bad({"type": "text", "content": "x" * 11}, field="content", what="11 > message_max_chars 10")
        assert api.send(stack, s["mt"], s["pub"]["id"], "é" * 10)["content"] == "é" * 10
    finally:
        api.set_settings(stack, s["admin"], message_max_chars=4000)
    for v in (0, 40001, "10", None):
        bad("PATCH", "/admin/settings", 400, "VALIDATION_ERROR", "message_max_chars",
            json_body={"message_max_chars": v}, token=s["admin"])


@test
def raw_body_errors():
    s = setup()
    path = f"/rooms/{s['pub']['id']}/messages"
    for raw, what in ((b'{"type":"text","content":"\xff\xfe"}', "invalid UTF-8"),
                      (b'{"type":"text","content":"\xc0\xaf"}', "overlong UTF-8"),
                      (b'{"type":"text","content":"\xed\xa0\x80"}', "encoded surrogate"),
                      (b'{"type":"text","content":"\\ud800"}', "lone surrogate escape"),
                      (b'{"type":"text","content":"a","content":"b"}', "duplicate key"),
                      (b'{"type":"text","type":"system","content":"b"}', "duplicate type"),
                      (b'{"type":"text","content":"a",}', "trailing comma"),
                      (b"{'type':'text','content':'a'}", "single quotes"),
                      (b'{"type":"text","content":"a"} x', "trailing bytes"),
                      (b'{"type":"drawing","content":' + b"[" * 40 + b"]" * 40 + b"}", "nesting 41 deep"),
                      (b"", "empty body")):
        bad("POST", path, 400, "BAD_REQUEST" if raw else ("BAD_REQUEST", "VALIDATION_ERROR"), raw=raw,
            token=s["mt"], what=what)
    bad("POST", path, 400, "VALIDATION_ERROR", raw=b'["text","a"]', token=s["mt"], what="an array body")
    bad("POST", path, 415, "UNSUPPORTED_MEDIA_TYPE", raw=b'{"type":"text","content":"a"}', token=s["mt"],
        content_type="text/plain", what="text/plain")


@test
def message_types():
    s = setup()
    for t in ("video", "", "TEXT", "system", "visitor", 1, True, ["text"], {"t": "text"}):
        send_bad({"type": t, "content": "hello"}, field="type", what=f"type {t!r}")
    send_bad({"content": {"width": 1}}, field="content", what="no type: text content")
    send_bad({"type": "text", "content": "hi", "author_id": 1}, field="author_id", what="unknown field")
    send_bad({"type": "text", "content": "hi", "room_id": s["other"]["id"]}, field="room_id",
             what="room_id in the body")
    send_bad({"type": "image", "content": {"upload_id": 1}}, what="image before uploads exist")
    send_bad({"type": "text", "content": "hi", "client_msg_id": "a b"}, field="client_msg_id")


@test
def drawing_with_a_million_operations():
    s = setup()
    before = fingerprint()
    one = b'{"tool":"pen","color":"#000000","size":1,"points":[[1,1]]}'
    body = (b'{"type":"drawing","content":{"width":10,"height":10,"operations":['
            + b",".join([one] * 1000000) + b"]}}")
    head = (f"POST /api/v1/rooms/{s['pub']['id']}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {s['mt']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    st, _, data = raw_request(stack.port, head + body, timeout=60)
    assert st in (400, 413), f"a million operations: {st} {data[:200]!r}"
    assert json.loads(data)["error"]["code"] in ("PAYLOAD_TOO_LARGE", "VALIDATION_ERROR")
    assert fingerprint() == before
    # under the body limit but over 2,000 operations
    ops = [{"tool": "pen", "color": "#000000", "size": 1, "points": [[1, 1]]}] * 2001
    e = send_bad({"type": "drawing", "content": {"width": 10, "height": 10, "operations": ops}},
                 what="2,001 operations")
    assert (e.get("field") or "").startswith("content"), e


# ------------------------------------------------------------------ actions

@test
def reactions_outside_the_set():
    s = setup()
    mid = s["pm"]["id"]
    for emoji in ("rocket", "Heart", "heart%20", "%F0%9F%94%A5", "x" * 33, "heart%27",
                  "%27%3B%20DROP%20TABLE%20reactions%3B%20--", "%25_", "%241", "%E2%80%9Cheart%E2%80%9D"):
        for method in ("PUT", "DELETE"):
            bad(method, f"/messages/{mid}/reactions/{emoji}", 400, "VALIDATION_ERROR", token=s["mt"],
                what=f"{method} emoji {urllib.parse.unquote(emoji)!r}")
    for emoji in ("..", "%2E%2E", "heart%2Fx", "heart%00", "heart%0A", "%FF", "%25_%5C"):
        bad("PUT", f"/messages/{mid}/reactions/{emoji}", 400, "BAD_REQUEST", token=s["mt"],
            what=f"path segment {emoji}")


@test
def actions_refused():
    s = setup()
    mine = api.send(stack, s["ot"], s["pub"]["id"], "the owner wrote this")
    bad("PATCH", f"/messages/{mine['id']}", 403, "FORBIDDEN", json_body={"content": "rewritten"},
        token=s["mt"], what="editing someone else's message")
    send_bad({"type": "text", "content": "reply", "reply_to": s["qm"]["id"]}, field="reply_to",
             what="reply_to in another of my rooms")
    send_bad({"type": "text", "content": "reply", "reply_to": s["om"]["id"]}, field="reply_to",
             what="reply_to in a room I am not in")
    bad("POST", f"/rooms/{s['full']['id']}/join", 409, "ROOM_FULL", json_body={}, token=s["xt"],
        what="joining a full room")
    bad("POST", "/rooms/join-by-code", 403, "FORBIDDEN", "password",
        json_body={"invite_code": s["priv"]["invite_code"], "password": "wrong"}, token=s["xt"],
        what="wrong room password")
    bad("POST", "/rooms/join-by-code", 403, "FORBIDDEN", "password",
        json_body={"invite_code": s["priv"]["invite_code"]}, token=s["xt"], what="missing room password")
    for body in ({"invite_code": ""}, {"invite_code": "x" * 5000}):
        st, _, doc = post(stack, "/rooms/join-by-code", body, token=s["xt"])
        assert st in (400, 404), f"join-by-code {body}: {st} {doc}"
        api.err(doc)
    bad("POST", "/dms", 400, json_body={"user_id": s["mem"]["id"]}, token=s["mt"], what="DM with myself")
    bad("PATCH", f"/rooms/{s['pub']['id']}", 403, "FORBIDDEN", json_body={"name": "taken over"}, token=s["mt"],
        what="a member renames the room")


@test
def join_fields_of_the_wrong_type():
    # a field of the wrong JSON type, or unknown, is 400 VALIDATION_ERROR naming it (docs/api.md)
    s = setup()
    code = s["priv"]["invite_code"]
    for body, field in (({"invite_code": 5}, "invite_code"), ({"invite_code": None}, "invite_code"),
                        ({"invite_code": code, "password": 5}, "password"),
                        ({"invite_code": code, "password": ["room password"]}, "password"),
                        ({"invite_code": code, "admin": True}, "admin")):
        bad("POST", "/rooms/join-by-code", 400, "VALIDATION_ERROR", field, json_body=body, token=s["xt"],
            what=f"join-by-code {body}")
    bad("POST", f"/rooms/{s['pub']['id']}/join", 400, "VALIDATION_ERROR", "password",
        json_body={"password": 5}, token=s["xt"], what="join with a numeric password")


@test
def wrong_methods_are_405():
    s = setup()
    rid, mid = s["pub"]["id"], s["pm"]["id"]
    for method, path, allowed in (("PUT", f"/rooms/{rid}", {"GET", "PATCH", "DELETE"}),
                                  ("GET", f"/rooms/{rid}/join", {"POST"}),
                                  ("DELETE", f"/rooms/{rid}/messages", {"GET", "POST"}),
                                  ("POST", f"/messages/{mid}", {"GET", "HEAD", "PATCH", "DELETE"}),
                                  ("POST", f"/messages/{mid}/pin", {"PUT", "DELETE"}),
                                  ("GET", f"/messages/{mid}/reactions/heart", {"PUT", "DELETE"}),
                                  ("PATCH", "/search?q=x", {"GET"}),
                                  ("GET", "/visitor-messages", {"POST"}),
                                  ("DELETE", "/dms", {"POST"})):
        before = fingerprint()
        st, h, doc = api.request(stack, method, path, token=s["mt"])
        expect_error((st, h, doc), 405, "METHOD_NOT_ALLOWED", what=f"{method} {path}")
        got = {x.strip() for x in (h.get("Allow") or "").split(",") if x.strip()}
        assert allowed <= got, f"{method} {path}: Allow {h.get('Allow')!r} lacks {allowed - got}"
        assert fingerprint() == before


# ------------------------------------------------------------------ SQL metacharacters

NASTY = ["'; DROP TABLE messages; --", "%_\\", "$1", "“smart” ‘quotes’", "Robert'); DROP TABLE rooms;--",
         "\\x27 \\' \\\\", "a' OR '1'='1", "${jndi:ldap://x}", "<script>alert(1)</script>", "100% _sure_",
         ":* & | ! <-> (x)", "E'\\n'"]


@test
def sql_metacharacters_stored_literally():
    s = setup()
    for text in NASTY:
        room = api.create_room(stack, s["ot"], name=text[:50], topic=text)
        assert room["name"] == text[:50] and room["topic"] == text, room
        got = api.get_room(stack, s["ot"], room["id"])
        assert got["name"] == text[:50] and got["topic"] == text, got
        stored = api.sql(stack, f"SELECT name FROM rooms WHERE id = {room['id']}")
        assert stored == text[:50], f"stored {stored!r}"
        m = api.send(stack, s["mt"], s["pub"]["id"], f"{text} metaword")
        assert m["content"] == f"{text} metaword"
        assert api.find_message(stack, s["ot"], s["pub"]["id"], m["id"])["content"] == f"{text} metaword"
        e = api.send(stack, s["mt"], s["pub"]["id"], "to be edited")
        st, _, e = patch(stack, f"/messages/{e['id']}", {"content": text}, token=s["mt"])
        assert st == 200 and e["content"] == text, (st, e)
        assert api.find_message(stack, s["ot"], s["pub"]["id"], e["id"])["content"] == text
        for q in (text, f"{text} metaword"):
            st, _, doc = get(stack, "/search" + api.qs(q=q), token=s["mt"])
            assert st in (200, 400), f"search {q!r}: {st} {doc}"
            if st == 400:
                assert api.err(doc) == "VALIDATION_ERROR", doc
            st, _, doc = get(stack, "/rooms/discover" + api.qs(q=q), token=s["mt"])
            assert st == 200, f"discover {q!r}: {st} {doc}"
        st, _, doc = post(stack, "/rooms/join-by-code", {"invite_code": text}, token=s["xt"])
        assert st in (400, 404), f"invite code {text!r}: {st} {doc}"
        st, _, doc = get(stack, "/users" + api.qs(q=text), token=s["mt"])
        assert st == 200, (st, doc)
    st, _, doc = get(stack, "/search?q=metaword&limit=50", token=s["mt"])
    assert st == 200 and len(doc["results"]) == len(NASTY), \
        f"each literal message is found by its plain word: {len(doc['results'])} of {len(NASTY)}"
    # % and _ are not wildcards in discovery
    for wild in ("%", "_", "\\"):
        st, _, doc = get(stack, "/rooms/discover" + api.qs(q=wild, limit=100), token=s["mt"])
        assert st == 200, doc
        for r in doc["rooms"]:
            assert wild in r["name"], f"discover q={wild!r} matched {r['name']!r}: a wildcard"
    tables = api.sql(stack, "SELECT " + ", ".join(f"to_regclass('{t}') IS NOT NULL" for t in TABLES))
    assert tables == "|".join(["t"] * len(TABLES)), f"tables missing: {tables}"


@test
def search_query_syntax_is_not_sql_or_tsquery():
    s = setup()
    api.send(stack, s["mt"], s["pub"]["id"], "alpha beta gamma")
    for q in ("alpha & !beta", "alpha | zzz", "!alpha", "alpha:*", "<->", "'", "\"", "\"\"", "\"unclosed",
              "alpha)(", "\\", "%", "_", "*", "&&&", "a" * 200):
        st, _, doc = get(stack, "/search" + api.qs(q=q), token=s["mt"])
        assert st in (200, 400), f"search {q!r}: {st} {doc}"
        if st == 200:
            for r in doc["results"]:
                assert r["message"]["deleted"] is False
        else:
            assert api.err(doc) == "VALIDATION_ERROR", doc
    # operators are not operators: "alpha | zzz" needs both words
    st, _, doc = get(stack, "/search" + api.qs(q="alpha | zzz"), token=s["mt"])
    assert st == 400 or doc["results"] == [], f"'|' acted as OR: {doc}"
    st, _, doc = get(stack, "/search" + api.qs(q="%"), token=s["mt"])
    assert st == 400 or all("%" in (r["message"]["content"] or "") for r in doc["results"]), \
        f"'%' matched everything: {doc}"


@test
def workers_survived():
    assert stack.fcgi_pids() == PIDS, f"a worker died: {PIDS} -> {stack.fcgi_pids()}"


if __name__ == "__main__":
    run_tests(stack)
