#!/usr/bin/python3
"""Integration: messages, replies, edits, deletes, pins, mentions,
reactions, paging, unread counts, drawings, the send rate limit, search,
visitors and retention (docs/rooms.md "Messages") through real lighttpd +
roost.fcgi, PostgreSQL and Redis.

Readings of docs/rooms.md where it leaves room (also noted at each test):
- `client_msg_id` "only to its author": absent or null for everyone else.
  A retry with the same id but other content still answers 200 with the
  original (the id decides, not the body). Two identical sends racing
  give one 201 and one 200 with the same message, never a 5xx.
- Editing someone else's message is 403 FORBIDDEN, even for the room's
  owner or an admin; editing outside the window is 403 FORBIDDEN; editing a
  non-text message is 400 or 403.
- A deleted message cannot be reacted to, pinned or edited (a 4xx, nothing
  stored). A reply's preview of a deleted message says `deleted: true` and
  no longer carries its text (`excerpt` null or "").
  docs/rooms.md "Deleted messages" makes it exact: every action on one is
  404 NOT_FOUND "this message was deleted" (field id, or reply_to for a
  reply), deleting it again 204 with no event, and nothing is stored.
- GET /messages/{id} answers the object the list shows (the same dict),
  deleted ones included; outsiders get what GET /rooms/{id}/messages
  gives them: 403 NOT_MEMBER for a public room, and for a private room or
  DM the very body a message that does not exist gets.
- A send without `type` (or with `"type": null`) is a text message.
- `pinned_by` in GET /pins is the pinner: a user object with `id`, or the
  id itself.
- Paging `around=ID` in the middle of the history returns exactly limit/2
  (rounded down) messages before ID, ID and limit - limit/2 - 1 after it;
  "up to limit/2 before" caps the older side even when few newer exist.
- A query-parameter error names the parameter in `field` (as GET /users
  does).
- The send answers carry the send limit's X-RateLimit-* headers
  (X-RateLimit-Limit = messages_per_10s), also on the 429.
- POST /rooms/{id}/read with a message of another room, or none, is 400 or
  404; with an older message than the marker it answers 200 and leaves the
  marker and the counts where they were.
- Drawing points are inside the canvas when 0 <= x < width and
  0 <= y < height; the tests stay clear of x == width.
- Search `highlights` offsets and lengths count Unicode code points in
  `snippet`; a highlight covers the matched word or the matched prefix of it.
  `to` given as a date includes that whole day (tests avoid the edge).
- A `visitor_room_id` naming no room is refused by PATCH /admin/settings
  (400 VALIDATION_ERROR field visitor_room_id).
- Retention: `roostctl run-jobs` exits 0 and deletes the messages older
  than the room's retention_hours (rows gone), and no others.
"""
import concurrent.futures
import json
import re
import time

import api
from api import delete, expect_error, get, patch, post
from harness import Stack, raw_request, run_tests, test

stack = Stack(workers=2)
PIDS = stack.fcgi_pids()
ADMIN_EMAIL, ADMIN_PASSWORD = api.make_admin(stack)
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MSG_KEYS = {"id", "room_id", "type", "content", "author", "reply_to", "mentions", "reactions", "pinned",
            "edited_at", "deleted", "created_at"}
DEFAULT_REACTIONS = ["heart", "laugh", "fire", "sad", "thumbsup", "thumbsdown", "star", "question"]
S = {}


def setup():
    if S:
        return
    S["admin"] = api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
    S["admin_id"] = get(stack, "/me", token=S["admin"])[2]["id"]
    api.set_settings(stack, S["admin"], **api.RELAXED)
    api.set_settings(stack, S["admin"], messages_per_10s=1000)


def admin():
    setup()
    return S["admin"]


def user(name=None, display_name=None):
    return api.member_session(stack, admin(), name=name, display_name=display_name)


NAMES = ["Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tariq"]


def room_with(n_members=1, **fields):
    """A public room: (room, [(user, token)...]) with the owner first.
    Members get names of letters only (mentionable)."""
    people = [user(name=NAMES[i % len(NAMES)]) for i in range(n_members)]
    room = api.create_room(stack, people[0][1], max_members=0, **fields)
    for _, t in people[1:]:
        api.join_room(stack, t, room["id"])
    return room, people


def put(path, token):
    return api.request(stack, "PUT", path, token=token)


def check_message(m, what="message"):
    missing = MSG_KEYS - set(m)
    assert not missing, f"{what}: message lacks {sorted(missing)}: {m}"
    assert isinstance(m["id"], int) and isinstance(m["room_id"], int), m
    assert isinstance(m["mentions"], list) and isinstance(m["reactions"], list), m
    assert isinstance(m["pinned"], bool) and isinstance(m["deleted"], bool), m
    assert TIME_RE.match(m["created_at"]), m


def count(sql):
    return int(api.sql(stack, sql))


# ------------------------------------------------------------------ sending

@test
def send_text_message_shape():
    room, ((u, tok), (v, vt)) = room_with(2)
    st, h, m = api.send_resp(stack, tok, room["id"], "Hello, world 👋", client_msg_id="hello-1")
    assert st == 201, (st, m)
    check_message(m)
    assert m["type"] == "text" and m["content"] == "Hello, world 👋" and m["room_id"] == room["id"], m
    a = m["author"]
    assert a["id"] == u["id"] and a["name"] == u["name"], a
    assert set(a) >= {"id", "name", "display_name", "avatar_url"} and "email" not in a, a
    assert m["reply_to"] is None and m["mentions"] == [] and m["reactions"] == [], m
    assert m["pinned"] is False and m["edited_at"] is None and m["deleted"] is False, m
    assert m["client_msg_id"] == "hello-1", "the author sees the client_msg_id"
    seen = api.find_message(stack, vt, room["id"], m["id"])
    check_message(seen, "seen by another member")
    assert seen["content"] == "Hello, world 👋"
    assert seen.get("client_msg_id") is None, f"client_msg_id shown to another member: {seen}"
    mine = api.find_message(stack, tok, room["id"], m["id"])
    assert mine["client_msg_id"] == "hello-1", mine
    # text keeps newlines and tabs and is stored exactly
    m2 = api.send(stack, tok, room["id"], "line one\n\tline two  ")
    assert m2["content"] == "line one\n\tline two  ", m2
    assert api.find_message(stack, vt, room["id"], m2["id"])["content"] == "line one\n\tline two  "


@test
def client_msg_id_makes_sends_idempotent():
    room, ((u, tok), (v, vt)) = room_with(2)
    other, _ = room_with(1)
    api.join_room(stack, tok, other["id"])
    st, _, first = api.send_resp(stack, tok, room["id"], "only once", client_msg_id="retry-A_1")
    assert st == 201, (st, first)
    n = api.table_counts(stack)
    # the response was "lost": the client sends the identical request again
    st, _, again = api.send_resp(stack, tok, room["id"], "only once", client_msg_id="retry-A_1")
    assert st == 200, f"a retried send answers 200, got {st} {again}"
    assert again["id"] == first["id"] and again["created_at"] == first["created_at"], (first, again)
    st, _, again = api.send_resp(stack, tok, room["id"], "different text", client_msg_id="retry-A_1")
    assert st == 200 and again["id"] == first["id"] and again["content"] == "only once", \
        f"the original comes back: {st} {again}"
    assert api.table_counts(stack) == n, "a retried send stored something"
    assert count(f"SELECT count(*) FROM messages WHERE client_msg_id = 'retry-A_1'") == 1
    expect_error(api.send_resp(stack, tok, other["id"], "only once", client_msg_id="retry-A_1"), 409,
                 "CONFLICT", what="the same client_msg_id in another room")
    assert api.table_counts(stack) == n
    # unique per author: another user may use the same id
    st, _, theirs = api.send_resp(stack, vt, room["id"], "mine too", client_msg_id="retry-A_1")
    assert st == 201 and theirs["id"] != first["id"], (st, theirs)
    for bad in ("", "x" * 65, "has space", "é", "semi;colon", "a/b"):
        expect_error(api.send_resp(stack, tok, room["id"], "x", client_msg_id=bad), 400, "VALIDATION_ERROR",
                     field="client_msg_id", what=f"client_msg_id {bad!r}")
    st, _, m = api.send_resp(stack, tok, room["id"], "longest id", client_msg_id="A-z_0" * 12 + "abcd")
    assert st == 201, (st, m)


@test
def concurrent_duplicate_sends_store_one():
    room, ((u, tok),) = room_with(1)
    for i in range(5):
        cid = f"race-{i}"
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
            res = list(ex.map(lambda _: api.send_resp(stack, tok, room["id"], f"race {i}", client_msg_id=cid),
                              range(4)))
        statuses = sorted(r[0] for r in res)
        assert statuses == [200, 200, 200, 201], f"4 racing identical sends: {statuses} {[r[2] for r in res]}"
        assert len({r[2]["id"] for r in res}) == 1, "they all answer the same message"
        assert count(f"SELECT count(*) FROM messages WHERE client_msg_id = '{cid}'") == 1


@test
def reply_to_preview():
    room, ((u, tok), (v, vt)) = room_with(2)
    other, ((_, ot),) = room_with(1)
    long_text = "Ünïcødé 😀 " * 20  # 200 characters
    orig = api.send(stack, tok, room["id"], long_text)
    r = api.send(stack, vt, room["id"], "a reply", reply_to=orig["id"])
    p = r["reply_to"]
    assert isinstance(p, dict), r
    assert p["id"] == orig["id"] and p["author_id"] == u["id"] and p["deleted"] is False, p
    assert isinstance(p["author_name"], str) and p["author_name"], p
    assert p["excerpt"] == long_text[:100], f"excerpt: the first 100 characters: {p['excerpt']!r}"
    foreign = api.send(stack, ot, other["id"], "elsewhere")
    n = api.table_counts(stack)
    expect_error(api.send_resp(stack, vt, room["id"], "x", reply_to=foreign["id"]), 400, "VALIDATION_ERROR",
                 field="reply_to", what="reply_to in another room")
    expect_error(api.send_resp(stack, vt, room["id"], "x", reply_to=987654321), 400, "VALIDATION_ERROR",
                 field="reply_to", what="reply_to unknown")
    expect_error(api.send_resp(stack, vt, room["id"], "x", reply_to=str(orig["id"])), 400, "VALIDATION_ERROR",
                 field="reply_to", what="reply_to a string")
    assert api.table_counts(stack) == n
    # the original is deleted: the preview says so and shows no text
    st, _, _ = delete(stack, f"/messages/{orig['id']}", token=tok)
    assert st == 204
    p = api.find_message(stack, vt, room["id"], r["id"])["reply_to"]
    assert p["id"] == orig["id"] and p["deleted"] is True, p
    assert p["excerpt"] in (None, ""), f"a deleted message's text shows in a reply preview: {p}"


@test
def send_without_type_is_text():
    room, ((u, tok), (v, vt)) = room_with(2)
    for body in ({"content": "no type, like a script sends"},
                 {"type": None, "content": "type null"}):
        st, _, m = post(stack, f"/rooms/{room['id']}/messages", body, token=tok)
        assert st == 201, f"{body}: {st} {m}"
        check_message(m)
        assert m["type"] == "text" and m["content"] == body["content"], m
        assert api.find_message(stack, vt, room["id"], m["id"])["type"] == "text"
    n = api.table_counts(stack)
    # without a type the content is text's: a drawing object is refused
    drawing = {"width": 10, "height": 10,
               "operations": [{"tool": "pen", "color": "#000000", "size": 1, "points": [[1, 1]]}]}
    expect_error(post(stack, f"/rooms/{room['id']}/messages", {"content": drawing}, token=tok), 400,
                 "VALIDATION_ERROR", field="content", what="a drawing without its type")
    expect_error(post(stack, f"/rooms/{room['id']}/messages", {}, token=tok), 400, "VALIDATION_ERROR",
                 field="content", what="neither type nor content")
    assert api.table_counts(stack) == n


# ------------------------------------------------------------------ one message

def msg_url(m):
    return f"/messages/{m['id']}"


@test
def get_one_message_is_the_list_object():
    room, ((u, tok), (v, vt)) = room_with(2)
    orig = api.send(stack, vt, room["id"], f"@{u['name']} the original")
    m = api.send(stack, tok, room["id"], "a reply with **marks**", reply_to=orig["id"],
                 client_msg_id="one-get-1")
    assert put(f"/messages/{m['id']}/reactions/heart", vt)[0] == 200
    assert put(f"/messages/{m['id']}/pin", vt)[0] == 204
    for token, who in ((tok, "its author"), (vt, "another member")):
        st, h, got = get(stack, msg_url(m), token=token)
        assert st == 200, f"{who}: {st} {got}"
        assert h["content-type"].startswith("application/json"), h
        check_message(got, who)
        listed = api.find_message(stack, token, room["id"], m["id"])
        assert got == listed, f"{who}: GET /messages/{{id}} differs from the list:\n{got}\n{listed}"
    assert get(stack, msg_url(m), token=tok)[2]["client_msg_id"] == "one-get-1"
    assert get(stack, msg_url(m), token=vt)[2]["client_msg_id"] is None
    got = get(stack, msg_url(orig), token=tok)[2]
    assert got["mentions"] == [u["id"]] and got == api.find_message(stack, tok, room["id"], orig["id"]), got
    # system messages too (the join above posted one)
    sysm = api.last_system_message(stack, tok, room["id"])
    assert get(stack, msg_url(sysm), token=tok)[2] == api.find_message(stack, tok, room["id"], sysm["id"])
    # deleted: as the list shows it
    assert delete(stack, msg_url(orig), token=vt)[0] == 204
    st, _, got = get(stack, msg_url(orig), token=tok)
    assert st == 200 and got["deleted"] is True and got["content"] is None, (st, got)
    assert got == api.find_message(stack, tok, room["id"], orig["id"]), got
    assert get(stack, msg_url(m), token=tok)[2]["reply_to"]["deleted"] is True
    # HEAD, no credential, missing, and ids that are no ids
    st, _, body = api.request(stack, "HEAD", msg_url(m), token=tok)
    assert st == 200, (st, body)
    expect_error(get(stack, msg_url(m)), 401, "UNAUTHORIZED", what="no credential")
    expect_error(get(stack, "/messages/987654321", token=tok), 404, "NOT_FOUND", field="id",
                 what="no such message")
    expect_error(get(stack, "/messages/0", token=tok), 400, "VALIDATION_ERROR", field="id", what="id 0")
    expect_error(get(stack, "/messages/abc", token=tok), 404, "NOT_FOUND", what="a non-numeric id")


@test
def get_one_message_isolation():
    """Only members read a message, as only members read the room's list;
    nothing tells an outsider that a private room's or a DM's message
    exists."""
    owner, ot = user()
    member, mt = user()
    pub = api.create_room(stack, ot, kind="public")
    priv = api.create_room(stack, ot, kind="private")
    api.add_members(stack, ot, priv["id"], [member["id"]])
    api.join_room(stack, mt, pub["id"])
    _, dm = api.open_dm(stack, ot, member["id"])
    pm = api.send(stack, ot, pub["id"], "public words")
    xm = api.send(stack, ot, priv["id"], "private words")
    dmm = api.send(stack, ot, dm["id"], "direct words")
    # a member of another room (a private one of its own, and the public
    # room above): reads its own, nothing of the private room or the DM
    other, oth = user()
    elsewhere = api.create_room(stack, oth, kind="private")
    mine = api.send(stack, oth, elsewhere["id"], "my own")
    st, _, got = get(stack, msg_url(mine), token=oth)
    assert st == 200 and got["content"] == "my own", f"a member reads her own room's message: {st} {got}"
    st, _, got = get(stack, msg_url(mine), token=ot)
    assert st == 404, f"the owner of other rooms reads a stranger's private room: {st} {got}"
    api.join_room(stack, oth, pub["id"])
    st, _, got = get(stack, msg_url(pm), token=oth)
    assert st == 200 and got["content"] == "public words", f"after joining the public room: {st} {got}"
    missing = get(stack, "/messages/987654321", token=oth)
    expect_error(missing, 404, "NOT_FOUND", field="id", what="no such message")
    outsider, xt = user()
    for token, who in ((oth, "a member of other rooms"), (xt, "a member of no room but General"),
                       (admin(), "an admin outside the room")):
        for m, where in ((xm, "a private room"), (dmm, "a DM")):
            st, _, body = get(stack, msg_url(m), token=token)
            assert (st, body) == (missing[0], missing[2]), \
                f"{who}, a message of {where}: {st} {body}; a missing one: {missing[0]} {missing[2]}"
            assert "words" not in json.dumps(body)
    expect_error(get(stack, msg_url(pm), token=xt), 403, "NOT_MEMBER",
                 what="a non-member reads a public room's message (as the list answers)")
    assert api.messages_resp(stack, xt, pub["id"])[0] == 403, "the list answers the same"
    # members read all three; after leaving, the private room's is gone again
    for m in (pm, xm, dmm):
        st, _, got = get(stack, msg_url(m), token=mt)
        assert st == 200 and got["id"] == m["id"], (st, got)
    api.leave_room(stack, mt, priv["id"])
    st, _, body = get(stack, msg_url(xm), token=mt)
    assert (st, body) == (missing[0], missing[2]), f"after leaving: {st} {body}"
    # the other message routes say the same to outsiders (no "no such room")
    for method, path in (("PUT", f"{msg_url(xm)}/pin"), ("PUT", f"{msg_url(xm)}/reactions/heart"),
                         ("PATCH", msg_url(xm))):
        st, _, body = api.request(stack, method, path, json={"content": "x"} if method == "PATCH" else None,
                                  token=xt)
        assert (st, body) == (missing[0], missing[2]), f"{method} {path} by an outsider: {st} {body}"


# ------------------------------------------------------------------ edit / delete

@test
def edit_author_only_and_edit_window():
    room, ((u, tok), (v, vt)) = room_with(2)
    m = api.send(stack, vt, room["id"], "first draft")
    st, _, e = patch(stack, f"/messages/{m['id']}", {"content": "second draft"}, token=vt)
    assert st == 200, (st, e)
    check_message(e)
    assert e["id"] == m["id"] and e["content"] == "second draft" and TIME_RE.match(e["edited_at"] or ""), e
    assert api.find_message(stack, tok, room["id"], m["id"])["content"] == "second draft"
    api.join_room(stack, admin(), room["id"])  # a member, so only the author rule can refuse
    for token, who in ((tok, "the room owner"), (admin(), "an admin")):
        expect_error(patch(stack, f"/messages/{m['id']}", {"content": "hijacked"}, token=token), 403,
                     "FORBIDDEN", what=f"{who} edits someone else's message")
    assert api.find_message(stack, tok, room["id"], m["id"])["content"] == "second draft"
    for body, what in (({"content": ""}, "empty"), ({"content": "   "}, "whitespace"),
                       ({"content": "x" * 4001}, "4,001 characters"), ({"content": 5}, "a number"),
                       ({"content": "a\u0000b"}, "NUL")):
        expect_error(patch(stack, f"/messages/{m['id']}", body, token=vt), 400, "VALIDATION_ERROR",
                     field="content", what=f"edit to {what}")
    expect_error(patch(stack, f"/messages/{m['id']}", {"content": "x", "type": "text"}, token=vt), 400,
                 "VALIDATION_ERROR", what="edit with an unknown field")
    expect_error(patch(stack, "/messages/987654321", {"content": "x"}, token=vt), 404, "NOT_FOUND",
                 what="edit a missing message")
    # the window: 5 minutes, the message is 10 minutes old
    api.set_settings(stack, admin(), edit_window_minutes=5)
    try:
        api.sql(stack, f"UPDATE messages SET created_at = now() - interval '10 minutes' WHERE id = {m['id']}")
        expect_error(patch(stack, f"/messages/{m['id']}", {"content": "too late"}, token=vt), 403, "FORBIDDEN",
                     what="edit after the window")
        fresh = api.send(stack, vt, room["id"], "fresh")
        st, _, _ = patch(stack, f"/messages/{fresh['id']}", {"content": "fresh, edited"}, token=vt)
        assert st == 200, "inside the window"
        api.set_settings(stack, admin(), edit_window_minutes=0)
        st, _, e = patch(stack, f"/messages/{m['id']}", {"content": "no limit now"}, token=vt)
        assert st == 200 and e["content"] == "no limit now", "edit_window_minutes 0 is no limit"
    finally:
        api.set_settings(stack, admin(), edit_window_minutes=1440)
    # a drawing is not edited with text
    d = api.send(stack, vt, room["id"], {"width": 10, "height": 10, "operations": [
        {"tool": "pen", "color": "#000000", "size": 1, "points": [[1, 1]]}]}, type="drawing")
    st, _, doc = patch(stack, f"/messages/{d['id']}", {"content": "now text"}, token=vt)
    assert st in (400, 403), f"editing a drawing: {st} {doc}"
    api.err(doc)


@test
def delete_by_author_owner_admin():
    room, ((u, tok), (v, vt), (w, wt)) = room_with(3, name=api.unique("del"))
    mv = api.send(stack, vt, room["id"], f"@{w['name']} look", )
    assert put(f"/messages/{mv['id']}/reactions/heart", wt)[0] == 200
    assert put(f"/messages/{mv['id']}/pin", wt)[0] == 204
    expect_error(delete(stack, f"/messages/{mv['id']}", token=wt), 403, "FORBIDDEN",
                 what="another member deletes")
    st, _, _ = delete(stack, f"/messages/{mv['id']}", token=vt)
    assert st == 204, st
    g = api.find_message(stack, wt, room["id"], mv["id"])
    check_message(g, "deleted")
    assert g["deleted"] is True and g["content"] is None, g
    assert g["reactions"] == [] and g["pinned"] is False and g["mentions"] == [], g
    assert count(f"SELECT count(*) FROM messages WHERE id = {mv['id']}") == 1, "the message stays in place"
    for table in ("reactions", "pins", "message_mentions"):
        assert count(f"SELECT count(*) FROM {table} WHERE message_id = {mv['id']}") == 0, f"{table} kept"
    doc = api.messages(stack, wt, room["id"])
    assert mv["id"] in [m["id"] for m in doc["messages"]], "a deleted message stays in the history"
    st, _, doc = get(stack, f"/rooms/{room['id']}/pins", token=wt)
    assert st == 200 and doc["pins"] == [], doc
    # after deletion: no reactions, pins or edits (reading: 4xx, nothing stored)
    for method, path, body in (("PUT", f"/messages/{mv['id']}/reactions/heart", None),
                               ("PUT", f"/messages/{mv['id']}/pin", None),
                               ("PATCH", f"/messages/{mv['id']}", {"content": "revived"})):
        st, _, doc = api.request(stack, method, path, json=body, token=vt)
        assert 400 <= st < 500, f"{method} {path} on a deleted message: {st} {doc}"
    assert count(f"SELECT count(*) FROM reactions WHERE message_id = {mv['id']}") == 0
    assert count(f"SELECT count(*) FROM pins WHERE message_id = {mv['id']}") == 0
    assert api.find_message(stack, wt, room["id"], mv["id"])["content"] is None
    # the room's owner deletes a member's message; an admin (not a member) another
    mw = api.send(stack, wt, room["id"], "owner will delete this")
    assert delete(stack, f"/messages/{mw['id']}", token=tok)[0] == 204
    mw2 = api.send(stack, wt, room["id"], "admin will delete this")
    assert delete(stack, f"/messages/{mw2['id']}", token=admin())[0] == 204
    assert api.find_message(stack, vt, room["id"], mw2["id"])["deleted"] is True
    expect_error(delete(stack, "/messages/987654321", token=tok), 404, "NOT_FOUND", what="missing message")


@test
def every_action_on_a_deleted_message_is_404():
    """docs/rooms.md: edit, react, unreact, pin, unpin and reply answer
    404 NOT_FOUND "this message was deleted" (field id, or reply_to);
    deleting again is 204 with no event; nothing is stored."""
    room, ((u, tok), (v, vt)) = room_with(2)
    api.set_settings(stack, admin(), edit_window_minutes=0)
    try:
        m = api.send(stack, vt, room["id"], "soon gone")
        assert put(f"/messages/{m['id']}/reactions/heart", tok)[0] == 200
        reply = api.send(stack, tok, room["id"], "a reply, sent before", reply_to=m["id"],
                         client_msg_id="before-delete-1")
        assert delete(stack, f"/messages/{m['id']}", token=vt)[0] == 204
        n = api.table_counts(stack)
        events = count("SELECT count(*) FROM events")
        for method, path, body, token, field in (
                ("PATCH", f"/messages/{m['id']}", {"content": "revived"}, vt, "id"),
                ("PUT", f"/messages/{m['id']}/reactions/heart", None, tok, "id"),
                ("DELETE", f"/messages/{m['id']}/reactions/heart", None, tok, "id"),
                ("PUT", f"/messages/{m['id']}/pin", None, tok, "id"),
                ("DELETE", f"/messages/{m['id']}/pin", None, tok, "id"),
                ("POST", f"/rooms/{room['id']}/messages", {"type": "text", "content": "late reply",
                                                            "reply_to": m["id"]}, tok, "reply_to"),
                ("POST", f"/rooms/{room['id']}/messages", {"type": "text", "content": "late reply",
                                                            "reply_to": m["id"],
                                                            "client_msg_id": "after-delete-1"}, tok,
                 "reply_to")):
            resp = api.request(stack, method, path, json=body, token=token)
            e = expect_error(resp, 404, "NOT_FOUND", field=field, what=f"{method} {path} on a deleted message")
            assert e["message"] == "this message was deleted", f"{method} {path}: {e}"
        for token, who in ((vt, "its author"), (tok, "the room's owner"), (admin(), "an admin")):
            st, _, body = delete(stack, f"/messages/{m['id']}", token=token)
            assert st == 204, f"{who} deletes the deleted message again: {st} {body}"
        assert api.table_counts(stack) == n, "an action on a deleted message stored something"
        assert count("SELECT count(*) FROM events") == events, "an action on a deleted message made an event"
        assert count(f"SELECT count(*) FROM messages WHERE id = {m['id']} AND body IS NULL "
                     f"AND deleted_at IS NOT NULL") == 1
        # a retried send whose reply target was deleted meanwhile: the original
        st, _, again = api.send_resp(stack, tok, room["id"], "a reply, sent before", reply_to=m["id"],
                                     client_msg_id="before-delete-1")
        assert st == 200 and again["id"] == reply["id"], f"the retry of an earlier reply: {st} {again}"
        # another member still may not delete someone else's message, deleted or not
        other = api.send(stack, vt, room["id"], "not yours")
        assert delete(stack, f"/messages/{other['id']}", token=vt)[0] == 204
        _, wt = user()
        api.join_room(stack, wt, room["id"])
        expect_error(delete(stack, f"/messages/{other['id']}", token=wt), 403, "FORBIDDEN",
                     what="a member deletes someone else's deleted message")
    finally:
        api.set_settings(stack, admin(), edit_window_minutes=1440)


# ------------------------------------------------------------------ pins

@test
def pins_are_idempotent():
    room, ((u, tok), (v, vt)) = room_with(2)
    m1 = api.send(stack, tok, room["id"], "pin me")
    m2 = api.send(stack, tok, room["id"], "and me")
    for _ in range(2):
        st, _, body = put(f"/messages/{m1['id']}/pin", vt)
        assert st == 204, (st, body)
    assert put(f"/messages/{m2['id']}/pin", tok)[0] == 204
    st, _, doc = get(stack, f"/rooms/{room['id']}/pins", token=tok)
    assert st == 200, doc
    pins = {p["message"]["id"]: p for p in doc["pins"]}
    assert set(pins) == {m1["id"], m2["id"]} and len(doc["pins"]) == 2, f"pinned twice shows once: {doc}"
    pb = pins[m1["id"]]["pinned_by"]
    assert (pb.get("id") if isinstance(pb, dict) else pb) == v["id"], f"pinned_by: {pb}"
    assert TIME_RE.match(pins[m1["id"]]["pinned_at"]), pins
    assert pins[m1["id"]]["message"]["content"] == "pin me"
    assert api.find_message(stack, tok, room["id"], m1["id"])["pinned"] is True
    assert count(f"SELECT count(*) FROM pins WHERE message_id = {m1['id']}") == 1
    for _ in range(2):
        st, _, body = delete(stack, f"/messages/{m1['id']}/pin", token=tok)
        assert st == 204, (st, body)
    st, _, doc = get(stack, f"/rooms/{room['id']}/pins", token=vt)
    assert [p["message"]["id"] for p in doc["pins"]] == [m2["id"]], doc
    assert api.find_message(stack, tok, room["id"], m1["id"])["pinned"] is False
    expect_error(put("/messages/987654321/pin", tok), 404, "NOT_FOUND", what="pin a missing message")


# ------------------------------------------------------------------ mentions

@test
def mentions_resolve_members():
    ana, at = user(name="Ana", display_name="Ana Lopez")
    bo, bt = user(name="Bo")
    zed, _ = user(name="Zed")
    s, st_ = user(name="Sender")
    room = api.create_room(stack, st_, max_members=0)
    api.join_room(stack, at, room["id"])
    api.join_room(stack, bt, room["id"])
    cases = [("hi @Ana!", [ana["id"]]),
             ("@ana lopez see this", [ana["id"]]),
             ("ping @ANA LOPEZ, please", [ana["id"]]),
             ("@Anaconda is a snake", []),
             ("@Zed is not here", []),
             ("@Bob is nobody", []),
             ("@Bo and @Ana, lunch?", [ana["id"], bo["id"]]),
             ("no mention at all", [])]
    got = {}
    for text, want in cases:
        m = api.send(stack, st_, room["id"], text)
        assert sorted(m["mentions"]) == sorted(want), f"{text!r}: mentions {m['mentions']}, want {want}"
        got[text] = m
        seen = api.find_message(stack, bt, room["id"], m["id"])
        assert sorted(seen["mentions"]) == sorted(want), f"{text!r} as stored: {seen['mentions']}"
    assert count(f"SELECT count(*) FROM message_mentions WHERE user_id = {zed['id']}") == 0
    r = api.my_room(stack, at, room["id"])
    assert r["mention_count"] == 4, f"Ana is mentioned in 4 messages after her marker: {r}"
    assert api.my_room(stack, bt, room["id"])["mention_count"] == 1
    # Ana reads up to the second mention: two are left
    doc = api.mark_read(stack, at, room["id"], got["@ana lopez see this"]["id"])
    assert doc["mention_count"] == 2, doc
    assert api.my_room(stack, at, room["id"])["mention_count"] == 2
    # a deleted message's mentions are cleared: it no longer counts
    assert delete(stack, f"/messages/{got['@Bo and @Ana, lunch?']['id']}", token=st_)[0] == 204
    r = api.my_room(stack, at, room["id"])
    assert r["mention_count"] == 1, f"a deleted mention still counts: {r}"
    assert api.my_room(stack, bt, room["id"])["mention_count"] == 0


# ------------------------------------------------------------------ reactions

@test
def reactions_put_delete_and_the_set():
    room, ((u, tok), (v, vt)) = room_with(2)
    m = api.send(stack, tok, room["id"], "react to me")
    n0 = count(f"SELECT count(*) FROM reactions WHERE message_id = {m['id']}")

    def summary(doc):
        return {r["emoji"]: (r["count"], sorted(r["user_ids"])) for r in doc["reactions"]}

    for _ in range(2):
        st, _, doc = put(f"/messages/{m['id']}/reactions/heart", tok)
        assert st == 200, (st, doc)
    assert summary(doc) == {"heart": (1, [u["id"]])}, f"PUT twice counts once: {doc}"
    st, _, doc = put(f"/messages/{m['id']}/reactions/heart", vt)
    assert summary(doc) == {"heart": (2, sorted([u["id"], v["id"]]))}, doc
    st, _, doc = put(f"/messages/{m['id']}/reactions/fire", vt)
    assert summary(doc) == {"heart": (2, sorted([u["id"], v["id"]])), "fire": (1, [v["id"]])}, doc
    seen = api.find_message(stack, tok, room["id"], m["id"])
    assert summary(seen) == summary(doc), seen
    for _ in range(2):
        st, _, doc = delete(stack, f"/messages/{m['id']}/reactions/heart", token=tok)
        assert st == 200, (st, doc)
    assert summary(doc) == {"heart": (1, [v["id"]]), "fire": (1, [v["id"]])}, doc
    st, _, doc = delete(stack, f"/messages/{m['id']}/reactions/fire", token=vt)
    assert summary(doc) == {"heart": (1, [v["id"]])}, "an emoji nobody uses any more is gone"
    assert count(f"SELECT count(*) FROM reactions WHERE message_id = {m['id']}") == n0 + 1
    for bad in ("rocket", "HEART", "heart2", "%F0%9F%98%80", "x" * 40):
        expect_error(put(f"/messages/{m['id']}/reactions/{bad}", tok), 400, "VALIDATION_ERROR",
                     what=f"emoji {bad!r}")
    assert count(f"SELECT count(*) FROM reactions WHERE message_id = {m['id']}") == n0 + 1
    # the set is the tenant's setting
    st, _, s = get(stack, "/admin/settings", token=admin())
    assert s["reactions"] == DEFAULT_REACTIONS, s.get("reactions")
    api.set_settings(stack, admin(), reactions=["heart", "rocket"])
    try:
        st, _, doc = put(f"/messages/{m['id']}/reactions/rocket", tok)
        assert st == 200 and "rocket" in summary(doc), (st, doc)
        expect_error(put(f"/messages/{m['id']}/reactions/fire", tok), 400, "VALIDATION_ERROR",
                     what="an emoji removed from the set")
    finally:
        api.set_settings(stack, admin(), reactions=DEFAULT_REACTIONS)
    for bad in ([], ["Bad"], ["a-b"], ["x" * 33], ["h"] * 33, "heart"):
        expect_error(patch(stack, "/admin/settings", {"reactions": bad}, token=admin()), 400,
                     "VALIDATION_ERROR", field="reactions", what=f"reactions setting {bad!r}")


# ------------------------------------------------------------------ paging

PAGE = {}


def paging_room():
    """A room with 1,000 text messages from two users (posted through the
    API); PAGE['ids'] is every message id of the room in order."""
    if PAGE:
        return PAGE
    room, people = room_with(2)
    t0 = time.monotonic()
    api.bulk_send(stack, [t for _, t in people], room["id"], 1000, text="page message {i}")
    PAGE["took"] = time.monotonic() - t0
    ids = [int(x) for x in api.sql(stack, f"SELECT id FROM messages WHERE room_id = {room['id']} "
                                          "ORDER BY id").split()]
    assert len(ids) >= 1000, len(ids)
    PAGE.update(room=room, token=people[1][1], ids=ids)
    return PAGE


def ids_of(doc):
    return [m["id"] for m in doc["messages"]]


@test
def paging_newest_and_before():
    p = paging_room()
    rid, tok, ids = p["room"]["id"], p["token"], p["ids"]
    doc = api.messages(stack, tok, rid)
    assert ids_of(doc) == ids[-50:] and doc["has_more"] is True, "default: the newest 50, oldest first"
    doc = api.messages(stack, tok, rid, limit=100)
    assert ids_of(doc) == ids[-100:] and doc["has_more"] is True
    # walk back with before= through the whole history, 100 at a time
    seen, cursor, flags = [], None, []
    while True:
        doc = api.messages(stack, tok, rid, limit=100, before=cursor) if cursor else doc
        seen = ids_of(doc) + seen
        flags.append(doc["has_more"])
        if not doc["has_more"]:
            break
        cursor = doc["messages"][0]["id"]
        assert len(flags) < 50
    assert seen == ids, "paging back gives every message exactly once, in order"
    pages = -(-len(ids) // 100)
    assert flags == [True] * (pages - 1) + [False], f"has_more per page: {flags}"
    # exact at the old end
    doc = api.messages(stack, tok, rid, before=ids[100], limit=100)
    assert ids_of(doc) == ids[:100] and doc["has_more"] is False, "exactly 100 older: has_more false"
    doc = api.messages(stack, tok, rid, before=ids[101], limit=100)
    assert ids_of(doc) == ids[1:101] and doc["has_more"] is True
    doc = api.messages(stack, tok, rid, before=ids[1], limit=10)
    assert ids_of(doc) == ids[:1] and doc["has_more"] is False
    doc = api.messages(stack, tok, rid, before=ids[0])
    assert ids_of(doc) == [] and doc["has_more"] is False
    doc = api.messages(stack, tok, rid, before=ids[500], limit=7)
    assert ids_of(doc) == ids[493:500] and doc["has_more"] is True, "in the middle"
    for m in doc["messages"]:
        check_message(m)


@test
def paging_after():
    p = paging_room()
    rid, tok, ids = p["room"]["id"], p["token"], p["ids"]
    doc = api.messages(stack, tok, rid, after=ids[-1])
    assert ids_of(doc) == [] and doc["has_more"] is False
    doc = api.messages(stack, tok, rid, after=ids[-101], limit=100)
    assert ids_of(doc) == ids[-100:] and doc["has_more"] is False, "exactly 100 newer: has_more false"
    doc = api.messages(stack, tok, rid, after=ids[-102], limit=100)
    assert ids_of(doc) == ids[-101:-1] and doc["has_more"] is True
    doc = api.messages(stack, tok, rid, after=ids[300], limit=5)
    assert ids_of(doc) == ids[301:306] and doc["has_more"] is True
    # walk forward from the start
    seen, cursor = [ids[0]], ids[0]
    while True:
        doc = api.messages(stack, tok, rid, after=cursor, limit=100)
        seen += ids_of(doc)
        if not doc["has_more"]:
            break
        cursor = doc["messages"][-1]["id"]
    assert seen == ids, "paging forward gives every message once, in order"


@test
def paging_around():
    p = paging_room()
    rid, tok, ids = p["room"]["id"], p["token"], p["ids"]
    doc = api.messages(stack, tok, rid, around=ids[500], limit=10)
    assert ids_of(doc) == ids[495:505], f"5 before, the message, 4 after: {ids_of(doc)} vs {ids[495:505]}"
    assert doc["has_more"] is True and doc["has_more_after"] is True, doc.keys()
    doc = api.messages(stack, tok, rid, around=ids[500], limit=11)
    assert ids_of(doc) == ids[495:506]
    # exact at the old end: 5 before exist / 6 before exist
    doc = api.messages(stack, tok, rid, around=ids[5], limit=10)
    assert ids_of(doc)[:6] == ids[:6] and doc["has_more"] is False, "exactly limit/2 older: has_more false"
    doc = api.messages(stack, tok, rid, around=ids[6], limit=10)
    assert ids_of(doc)[:6] == ids[1:7] and doc["has_more"] is True
    doc = api.messages(stack, tok, rid, around=ids[2], limit=10)
    got = ids_of(doc)
    assert got[:3] == ids[:3] and doc["has_more"] is False and doc["has_more_after"] is True, got
    assert got == ids[:len(got)] and len(got) in (7, 10), f"contiguous from the start: {got}"
    # exact at the new end: 4 after exist / 5 after exist
    doc = api.messages(stack, tok, rid, around=ids[-5], limit=10)
    assert ids_of(doc) == ids[-10:] and doc["has_more_after"] is False and doc["has_more"] is True
    doc = api.messages(stack, tok, rid, around=ids[-6], limit=10)
    assert ids_of(doc) == ids[-11:-1] and doc["has_more_after"] is True
    doc = api.messages(stack, tok, rid, around=ids[-1], limit=10)
    assert ids_of(doc) == ids[-6:] and doc["has_more_after"] is False and doc["has_more"] is True, \
        f"up to limit/2 before the newest: {ids_of(doc)}"


@test
def paging_bad_parameters():
    p = paging_room()
    rid, tok, ids = p["room"]["id"], p["token"], p["ids"]
    other, ((_, ot),) = room_with(1)
    om = api.send(stack, ot, other["id"], "elsewhere")
    for lim in ("0", "101", "-1", "abc", "1.5", "1e2"):
        st, _, doc = get(stack, f"/rooms/{rid}/messages?limit={lim}", token=tok)
        expect_error((st, None, doc), 400, "VALIDATION_ERROR", field="limit", what=f"limit={lim!r}")
    for q in (f"before={ids[5]}&after={ids[1]}", f"before={ids[5]}&around={ids[3]}",
              f"after={ids[5]}&around={ids[3]}", f"before={ids[5]}&after={ids[1]}&around={ids[2]}"):
        st, _, doc = get(stack, f"/rooms/{rid}/messages?{q}", token=tok)
        expect_error((st, None, doc), 400, what=f"two cursors {q}")
    for cur in ("before", "after", "around"):
        expect_error(api.messages_resp(stack, tok, rid, **{cur: om["id"]}), 404, "NOT_FOUND",
                     what=f"{cur}= a message of another room")
        expect_error(api.messages_resp(stack, tok, rid, **{cur: 987654321}), 404, "NOT_FOUND",
                     what=f"{cur}= no such message")
        for bad in ("-1", "abc", str(2 ** 53), "99999999999999999999"):
            st, _, doc = get(stack, f"/rooms/{rid}/messages?{cur}={bad}", token=tok)
            expect_error((st, None, doc), 400, "VALIDATION_ERROR", field=cur, what=f"{cur}={bad}")
        st, _, doc = get(stack, f"/rooms/{rid}/messages?{cur}=0", token=tok)
        expect_error((st, None, doc), (400, 404), what=f"{cur}=0")
    doc = api.messages(stack, tok, rid, limit=1)
    assert ids_of(doc) == ids[-1:] and doc["has_more"] is True
    doc = api.messages(stack, tok, rid, limit=100, before=ids[-1])
    assert len(doc["messages"]) == 100


# ------------------------------------------------------------------ unread counts

@test
def unread_counts_fall_as_the_marker_moves():
    room, ((a, at), (b, bt)) = room_with(2)
    rid = room["id"]
    r = api.my_room(stack, bt, rid)
    for k in ("unread_count", "mention_count", "last_read_message_id", "last_message"):
        assert k in r, f"GET /rooms lacks {k}: {r}"
    assert r["unread_count"] == 0, f"nothing unread yet (system messages do not count): {r}"
    ms = [api.send(stack, at, rid, f"unread {i}") for i in range(5)]
    assert api.my_room(stack, bt, rid)["unread_count"] == 5
    assert api.my_room(stack, at, rid)["unread_count"] == 0, "my own messages are never unread"
    mine = api.send(stack, bt, rid, "my own")
    assert api.my_room(stack, bt, rid)["unread_count"] == 5, "my own message does not count"
    assert delete(stack, f"/messages/{ms[4]['id']}", token=at)[0] == 204
    assert api.my_room(stack, bt, rid)["unread_count"] == 4, "a deleted message does not count"
    _, ct = user()
    api.join_room(stack, ct, rid)  # posts a system message
    assert api.my_room(stack, bt, rid)["unread_count"] == 4, "a system message does not count"
    doc = api.mark_read(stack, bt, rid, ms[1]["id"])
    assert doc == {"last_read_message_id": ms[1]["id"], "unread_count": 2, "mention_count": 0}, doc
    r = api.my_room(stack, bt, rid)
    assert r["unread_count"] == 2 and r["last_read_message_id"] == ms[1]["id"], r
    # never backwards
    doc = api.mark_read(stack, bt, rid, ms[0]["id"])
    assert doc["last_read_message_id"] == ms[1]["id"] and doc["unread_count"] == 2, \
        f"the marker moved back: {doc}"
    assert api.my_room(stack, bt, rid)["last_read_message_id"] == ms[1]["id"]
    doc = api.mark_read(stack, bt, rid, mine["id"])
    assert doc["unread_count"] == 0 and doc["last_read_message_id"] == mine["id"], doc
    n = api.send(stack, at, rid, f"@{b['name']} one more")
    r = api.my_room(stack, bt, rid)
    assert r["unread_count"] == 1 and r["mention_count"] == 1, r
    doc = api.mark_read(stack, bt, rid, n["id"])
    assert doc["unread_count"] == 0 and doc["mention_count"] == 0
    other, ((_, ot),) = room_with(1)
    om = api.send(stack, ot, other["id"], "x")
    for mid in (om["id"], 987654321):
        st, _, d = post(stack, f"/rooms/{rid}/read", {"message_id": mid}, token=bt)
        assert st in (400, 404), f"read marker to message {mid} not in the room: {st} {d}"
        api.err(d)
    for bad in (-1, 0, "5", None, 2 ** 53, 1.5):
        expect_error(post(stack, f"/rooms/{rid}/read", {"message_id": bad}, token=bt), 400,
                     "VALIDATION_ERROR", field="message_id", what=f"message_id {bad!r}")
    assert api.my_room(stack, bt, rid)["last_read_message_id"] == n["id"]


@test
def rooms_list_order_counts_and_last_message():
    _, tok = user()
    _, other = user()
    rooms = [api.create_room(stack, tok, max_members=0) for _ in range(3)]
    for r in rooms:
        api.join_room(stack, other, r["id"])
    last = {}
    for r in (rooms[1], rooms[2], rooms[0]):
        last[r["id"]] = api.send(stack, other, r["id"], f"latest in {r['name']}")
    lst = api.my_rooms(stack, tok)
    order = [x["id"] for x in lst if x["id"] in last]
    assert order == [rooms[0]["id"], rooms[2]["id"], rooms[1]["id"]], f"most recent activity first: {order}"
    for x in lst:
        if x["id"] in last:
            lm = x["last_message"]
            assert lm is not None and lm["id"] == last[x["id"]]["id"], f"last_message: {x}"
            assert lm["content"] == last[x["id"]]["content"]
            assert x["unread_count"] == 1 and x["mention_count"] == 0, x
            for k in ("unread_count", "mention_count", "last_read_message_id"):
                assert isinstance(x[k], int), x
    api.send(stack, other, rooms[1]["id"], "now room 1 is the newest")
    order = [x["id"] for x in api.my_rooms(stack, tok) if x["id"] in last]
    assert order[0] == rooms[1]["id"], order
    assert api.my_room(stack, tok, rooms[1]["id"])["unread_count"] == 2


# ------------------------------------------------------------------ drawings and images

def drawing(ops=None, width=100, height=80):
    return {"width": width, "height": height,
            "operations": ops if ops is not None else
            [{"tool": "pen", "color": "#1a2b3c", "size": 3, "points": [[0, 0], [10, 20], [99, 79]]},
             {"tool": "eraser", "color": "#ffffff", "size": 100, "points": [[50, 40]]}]}


def op(**kw):
    o = {"tool": "pen", "color": "#000000", "size": 1, "points": [[1, 1]]}
    o.update(kw)
    return o


@test
def drawing_validation():
    room, ((u, tok),) = room_with(1)
    rid = room["id"]
    good = drawing()
    m = api.send(stack, tok, rid, good, type="drawing")
    assert m["type"] == "drawing" and m["content"] == good, m
    assert api.find_message(stack, tok, rid, m["id"])["content"] == good
    api.send(stack, tok, rid, drawing([op(points=[[0, 0]] * 1000)] * 20), type="drawing")  # 20,000 points
    api.send(stack, tok, rid, drawing([op()] * 2000, width=4096, height=4096), type="drawing")
    before = api.table_counts(stack)
    bad = [
        ("2,001 operations", drawing([op()] * 2001)),
        ("no operations", drawing([])),
        ("20,001 points", drawing([op(points=[[0, 0]] * 1000)] * 20 + [op()])),
        ("1,001 points in one", drawing([op(points=[[0, 0]] * 1001)])),
        ("no points", drawing([op(points=[])])),
        ("x outside", drawing([op(points=[[150, 1]])])),
        ("y outside", drawing([op(points=[[1, 81]])])),
        ("negative x", drawing([op(points=[[-1, 1]])])),
        ("fractional", drawing([op(points=[[1.5, 1]])])),
        ("three coordinates", drawing([op(points=[[1, 1, 1]])])),
        ("string coordinate", drawing([op(points=[["1", 1]])])),
        ("color name", drawing([op(color="red")])),
        ("short color", drawing([op(color="#fff")])),
        ("bad hex", drawing([op(color="#GGGGGG")])),
        ("color without #", drawing([op(color="000000")])),
        ("size 0", drawing([op(size=0)])),
        ("size 101", drawing([op(size=101)])),
        ("unknown tool", drawing([op(tool="brush")])),
        ("unknown op field", drawing([op(opacity=1)])),
        ("width 0", drawing(width=0)),
        ("width 4097", drawing(width=4097)),
        ("no height", {"width": 10, "operations": [op()]}),
        ("unknown field", dict(drawing(), layer=1)),
        ("text content", "a drawing as text"),
        ("array content", [op()]),
    ]
    for what, content in bad:
        st, _, doc = api.send_resp(stack, tok, rid, content, type="drawing")
        e = expect_error((st, None, doc), 400, "VALIDATION_ERROR", what=f"drawing: {what}")
        assert (e.get("field") or "").startswith("content"), f"drawing {what}: field {e.get('field')!r}"
    assert api.table_counts(stack) == before, "a refused drawing stored something"


@test
def drawing_with_a_million_operations():
    room, ((u, tok),) = room_with(1)
    before = api.table_counts(stack)
    one = b'{"tool":"pen","color":"#000000","size":1,"points":[[1,1]]}'
    body = (b'{"type":"drawing","content":{"width":10,"height":10,"operations":['
            + b",".join([one] * 1000000) + b"]}}")
    head = (f"POST /api/v1/rooms/{room['id']}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {tok}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    st, h, data = raw_request(stack.port, head + body, timeout=60)
    assert st in (400, 413), f"a {len(body) // 1000000} MB drawing: {st} {data[:200]!r}"
    err = json.loads(data)["error"]
    assert err["code"] in ("PAYLOAD_TOO_LARGE", "VALIDATION_ERROR"), err
    assert api.table_counts(stack) == before
    assert stack.fcgi_pids() == PIDS, "a worker died"


@test
def image_needs_an_upload():
    room, ((u, tok),) = room_with(1)
    before = api.table_counts(stack)
    for content in ({"upload_id": 1}, {"upload_id": 987654321, "alt": "a cat"}):
        e = expect_error(api.send_resp(stack, tok, room["id"], content, type="image"), 400, "VALIDATION_ERROR",
                         what=f"image {content}")
        assert e.get("field") in ("upload_id", "content.upload_id"), f"field should name upload_id: {e}"
    assert api.table_counts(stack) == before


# ------------------------------------------------------------------ rate limit

def rl(h, what):
    for k in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        values = h.get_all(k) or []
        assert len(values) == 1, f"{what}: exactly one {k} header, got {values}"
        assert values[0].strip().isdigit(), f"{what}: {k} = {values[0]!r}"
    return int(h["X-RateLimit-Limit"]), int(h["X-RateLimit-Remaining"]), int(h["X-RateLimit-Reset"])


@test
def send_rate_limit():
    room, ((u, tok),) = room_with(1)
    api.set_settings(stack, admin(), messages_per_10s=10)
    try:
        for attempt in range(3):
            stack.redis_cli("FLUSHALL")
            _, t = user()
            api.join_room(stack, t, room["id"])
            st, h, m = api.send_resp(stack, t, room["id"], "rate 0")
            assert st == 201, (st, m)
            limit, remaining, reset = rl(h, "first send")
            if reset - time.time() >= 3:
                break
            time.sleep(max(0.0, reset - time.time()) + 0.3)  # start in a fresh window
        assert limit == 10 and remaining == 9, f"X-RateLimit-Limit/Remaining after one send: {limit} {remaining}"
        for i in range(1, 10):
            st, h, m = api.send_resp(stack, t, room["id"], f"rate {i}")
            assert st == 201, f"send {i + 1} of 10: {st} {m}"
            assert rl(h, f"send {i + 1}")[1] == 9 - i
        n = api.table_counts(stack)
        st, h, doc = api.send_resp(stack, t, room["id"], "one too many")
        expect_error((st, h, doc), 429, "RATE_LIMITED", what="the 11th send in 10 s")
        limit, remaining, reset = rl(h, "429")
        assert limit == 10 and remaining == 0, (limit, remaining)
        ra = h.get("Retry-After") or ""
        assert ra.isdigit() and 0 <= int(ra) <= 10, f"Retry-After {ra!r}"
        assert api.table_counts(stack) == n, "a refused send stored something"
        # another user is not limited by this one
        st, _, _ = api.send_resp(stack, tok, room["id"], "someone else")
        assert st == 201, st
    finally:
        api.set_settings(stack, admin(), messages_per_10s=1000)


# ------------------------------------------------------------------ search

SEARCH = {}


def search_setup():
    if SEARCH:
        return SEARCH
    s, stok = user()
    t, ttok = user()
    r1 = api.create_room(stack, stok, max_members=0)
    r2 = api.create_room(stack, stok, kind="private")
    api.join_room(stack, ttok, r1["id"])
    m = {
        "climb": api.send(stack, ttok, r1["id"], "Climbing the mountain today"),
        "mount": api.send(stack, stok, r1["id"], "mount everest base"),
        "phrase": api.send(stack, ttok, r1["id"], "the quick brown fox jumps"),
        "swapped": api.send(stack, ttok, r1["id"], "brown and quick fox"),
        "gone": api.send(stack, ttok, r1["id"], "zebracorn alpha mountain"),
        "lake": api.send(stack, stok, r2["id"], "mountain lake"),
        "uni": api.send(stack, stok, r2["id"], "Ça été très ÉTÉ 😀 près du Mountaintop, vraiment"),
    }
    assert delete(stack, f"/messages/{m['gone']['id']}", token=ttok)[0] == 204
    # rooms s is not in: t's private room, a public room s never joined
    r3 = api.create_room(stack, ttok, kind="private")
    r4 = api.create_room(stack, ttok, kind="public")
    api.send(stack, ttok, r3["id"], "mountain secret")
    api.send(stack, ttok, r4["id"], "mountain public")
    # one old message for the date filters
    api.sql(stack, f"UPDATE messages SET created_at = '2020-03-15 12:00:00+00' WHERE id = {m['climb']['id']}")
    SEARCH.update(token=stok, r1=r1, r2=r2, m=m)
    return SEARCH


def search(token, expect=200, **params):
    st, _, doc = get(stack, "/search" + api.qs(**params), token=token)
    assert st == expect, f"search {params}: expected {expect}, got {st} {doc}"
    return doc


def found(token, **params):
    doc = search(token, **params)
    assert isinstance(doc.get("results"), list), doc
    return {r["message"]["id"] for r in doc["results"]}


@test
def search_prefix_quoted_and_phrase():
    s = search_setup()
    tok, m = s["token"], s["m"]

    def ids(*names):
        return {m[n]["id"] for n in names}

    assert found(tok, q="mount") == ids("climb", "mount", "lake", "uni"), \
        "unquoted words match as prefixes (mount -> mountain, Mountaintop)"
    assert found(tok, q="MOUNT") == ids("climb", "mount", "lake", "uni"), "any case"
    assert found(tok, q='"mount"') == ids("mount"), "a quoted word matches whole words only"
    assert found(tok, q='"quick brown"') == ids("phrase"), "a quoted phrase matches in that order"
    assert found(tok, q='"brown quick"') == set(), "not in the other order, not with a word between"
    assert found(tok, q="quick brown") == ids("phrase", "swapped"), "unquoted: all words, any order"
    assert found(tok, q="brown qui") == ids("phrase", "swapped")
    assert found(tok, q="mount lake") == ids("lake"), "all terms must match"
    assert found(tok, q="zebracorn") == set(), "a deleted message never appears"
    assert found(tok, q="secret") == set() and found(tok, q="public") == set(), "only my rooms"
    doc = search(tok, q="mount")
    for r in doc["results"]:
        assert isinstance(r["rank"], (int, float)), r
        check_message(r["message"])
    ranks = [r["rank"] for r in doc["results"]]
    assert ranks == sorted(ranks, reverse=True), f"results are ranked, best (highest rank) first: {ranks}"


@test
def search_room_filter_and_dates():
    s = search_setup()
    tok, m = s["token"], s["m"]
    assert found(tok, q="mount", room_id=s["r2"]["id"]) == {m["lake"]["id"], m["uni"]["id"]}
    assert found(tok, q="mount", room_id=s["r1"]["id"]) == {m["climb"]["id"], m["mount"]["id"]}
    assert found(tok, q="mount", to="2020-06-01") == {m["climb"]["id"]}, "to: a date"
    assert found(tok, q="mount", **{"from": "2021-01-01"}) == {m["mount"]["id"], m["lake"]["id"], m["uni"]["id"]}
    assert found(tok, q="mount", **{"from": "2020-03-15T11:00:00Z", "to": "2020-03-15T13:00:00Z"}) == \
        {m["climb"]["id"]}, "from/to: RFC 3339 times"
    assert found(tok, q="mount", **{"from": "2020-03-15T12:00:01Z", "to": "2020-03-16T00:00:00Z"}) == set()
    for bad in ({"from": "yesterday"}, {"to": "2020-13-01"}, {"from": "2020-02-30"}, {"to": "15/03/2020"}):
        st, _, doc = get(stack, "/search" + api.qs(q="mount", **bad), token=tok)
        expect_error((st, None, doc), 400, "VALIDATION_ERROR", field=list(bad)[0], what=f"search {bad}")
    outsider_room = api.create_room(stack, user()[1], kind="public")
    st, _, doc = get(stack, f"/search?q=mount&room_id={outsider_room['id']}", token=tok)
    assert st in (403, 404), f"room_id of a room I am not in: {st} {doc}"


@test
def search_snippet_and_highlights():
    s = search_setup()
    tok, m = s["token"], s["m"]
    for q, want in (("mountain", "mountain"), ("mounta", "mounta"), ('"everest"', "everest"),
                    ("quick brown", None)):
        doc = search(tok, q=q)
        assert doc["results"], f"no results for {q!r}"
        for r in doc["results"]:
            snip, hl = r["snippet"], r["highlights"]
            assert isinstance(snip, str) and snip and "<" not in snip, f"plain-text snippet: {snip!r}"
            assert isinstance(hl, list) and hl, f"{q!r}: no highlights in {r}"
            for pair in hl:
                assert isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, int) for x in pair), pair
                off, ln = pair
                assert 0 <= off and ln > 0 and off + ln <= len(snip), f"{pair} outside {snip!r}"
                word = snip[off:off + ln].lower()
                if want:
                    assert word.startswith(want.lower()) and word.isalpha(), \
                        f"{q!r}: highlight {pair} marks {snip[off:off + ln]!r} in {snip!r}"
                else:
                    assert word.startswith(("quick", "brown")), f"highlight marks {word!r} in {snip!r}"
    # character offsets after multibyte and astral characters
    doc = search(tok, q="mountaintop")
    [r] = doc["results"]
    assert r["message"]["id"] == m["uni"]["id"]
    off, ln = r["highlights"][0]
    assert r["snippet"][off:off + ln].lower().startswith("mountaintop"), \
        f"offsets count characters: {r['highlights']} in {r['snippet']!r}"


@test
def search_bad_parameters():
    s = search_setup()
    tok = s["token"]
    for params, field in (({"q": ""}, "q"), ({}, "q"), ({"q": "x" * 201}, "q"),
                          ({"q": "mount", "limit": "0"}, "limit"), ({"q": "mount", "limit": "51"}, "limit"),
                          ({"q": "mount", "limit": "-1"}, "limit"), ({"q": "mount", "limit": "abc"}, "limit"),
                          ({"q": "mount", "room_id": "-1"}, "room_id"), ({"q": "mount", "room_id": "abc"}, "room_id")):
        st, _, doc = get(stack, "/search" + api.qs(**params), token=tok)
        expect_error((st, None, doc), 400, "VALIDATION_ERROR", field=field, what=f"search {params}")
    assert len(search(tok, q="mount", limit=1)["results"]) == 1
    assert len(search(tok, q="mount", limit=50)["results"]) == 4
    assert len(search(tok, q="x" * 200)["results"]) == 0
    expect_error(get(stack, "/search?q=mount"), 401, "UNAUTHORIZED", what="search without a credential")


# ------------------------------------------------------------------ visitors

VISITOR = {}


def visitor(body, **kw):
    return post(stack, "/visitor-messages", body, **kw)


def vbody(**kw):
    b = {"name": "Vera Visitor", "email": "vera@example.org", "content": "Hello from outside"}
    b.update(kw)
    return b


@test
def visitors_404_until_a_room_is_set():
    setup()
    st, _, s = get(stack, "/admin/settings", token=admin())
    assert s.get("visitor_room_id", "absent") is None, f"visitor_room_id defaults to null: {s}"
    before = api.table_counts(stack)
    expect_error(visitor(vbody()), 404, "NOT_FOUND", what="visitor message with no visitor room")
    assert api.table_counts(stack) == before
    expect_error(patch(stack, "/admin/settings", {"visitor_room_id": 987654321}, token=admin()), 400,
                 "VALIDATION_ERROR", field="visitor_room_id", what="a visitor room that does not exist")


@test
def visitors_post_into_the_room():
    room, ((u, tok), (v, vt)) = room_with(2)
    api.set_settings(stack, admin(), visitor_room_id=room["id"])
    VISITOR["room"] = room
    stack.redis_cli("FLUSHALL")
    st, _, doc = visitor(vbody(content="Do you ship to Lisbon?"))
    assert st == 201 and isinstance(doc.get("id"), int) and set(doc) == {"id"}, (st, doc)
    m = api.find_message(stack, vt, room["id"], doc["id"])
    assert m["type"] == "visitor" and m["author"] is None, m
    # a visitor message is unread for the members (not mine, not system, not deleted)
    assert api.my_room(stack, vt, room["id"])["unread_count"] >= 1
    assert m["content"] == {"text": "Do you ship to Lisbon?", "name": "Vera Visitor",
                            "email": "vera@example.org"}, m["content"]
    assert api.my_room(stack, vt, room["id"])["last_message"]["id"] == doc["id"]


@test
def visitors_bad_input():
    if not VISITOR:
        visitors_post_into_the_room()
    before = api.table_counts(stack)
    bad = [(vbody(content=""), "content"), (vbody(content="   "), "content"),
           (vbody(content="x" * 4001), "content"), (vbody(content="a\u0000b"), "content"),
           (vbody(content="a\u0007b"), "content"), (vbody(content=5), "content"),
           (vbody(name=""), "name"), (vbody(name=None), "name"), (vbody(email="not an email"), "email"),
           (vbody(email=""), "email"), (vbody(extra=1), "extra"),
           ({"name": "V", "email": "v@example.org"}, "content"),
           ({"email": "v@example.org", "content": "hi"}, "name")]
    for body, field in bad:
        stack.redis_cli("FLUSHALL")
        expect_error(visitor(body), 400, "VALIDATION_ERROR", field=field, what=f"visitor {body}")
    stack.redis_cli("FLUSHALL")
    st, _, doc = visitor(None, raw_body=b'{"name": "V", "email": "v@example.org", "content": "\xff"}')
    expect_error((st, None, doc), 400, "BAD_REQUEST", what="invalid UTF-8")
    assert api.table_counts(stack) == before, "a refused visitor message stored something"


@test
def visitors_rate_limit_per_ip():
    if not VISITOR:
        visitors_post_into_the_room()
    api.clear_of_window_edge(3600)
    stack.redis_cli("FLUSHALL")
    n = api.table_counts(stack)["messages"]
    for i in range(5):
        st, h, doc = visitor(vbody(content=f"visit {i}"))
        assert st == 201, f"visitor message {i + 1} of 5: {st} {doc}"
    st, h, doc = visitor(vbody(content="one too many"))
    expect_error((st, h, doc), 429, "RATE_LIMITED", what="the 6th visitor message in an hour")
    assert (h.get("Retry-After") or "").isdigit(), h.get("Retry-After")
    limit, remaining, _ = rl(h, "visitor 429")
    assert (limit, remaining) == (5, 0), (limit, remaining)
    assert api.table_counts(stack)["messages"] == n + 5
    api.set_settings(stack, admin(), visitor_messages_per_hour=1000)
    st, _, doc = visitor(vbody(content="after raising the limit"))
    assert st == 201, (st, doc)
    api.set_settings(stack, admin(), visitor_messages_per_hour=5)


@test
def visitors_fail_closed_without_redis():
    if not VISITOR:
        visitors_post_into_the_room()
    n = api.table_counts(stack)["messages"]
    stack.redis_stop()
    try:
        st, h, doc = visitor(vbody(content="while redis is down"))
        expect_error((st, h, doc), 503, "SERVICE_UNAVAILABLE", what="visitor message without Redis")
    finally:
        stack.redis_start()
    assert api.table_counts(stack)["messages"] == n
    time.sleep(0.2)
    api.set_settings(stack, admin(), visitor_room_id=None)
    expect_error(visitor(vbody()), 404, "NOT_FOUND", what="visitor room unset again")


# ------------------------------------------------------------------ retention

@test
def retention_purges_old_messages():
    room, ((u, tok),) = room_with(1, retention_hours=1)
    keep_room, ((_, kt),) = room_with(1)
    old = api.send(stack, tok, room["id"], "old news")
    new = api.send(stack, tok, room["id"], "fresh news")
    ancient = api.send(stack, kt, keep_room["id"], "kept forever")
    api.sql(stack, f"UPDATE messages SET created_at = now() - interval '2 hours' WHERE id = {old['id']}")
    api.sql(stack, f"UPDATE messages SET created_at = now() - interval '10 years' WHERE id = {ancient['id']}")
    p = api.ctl(stack, "run-jobs")
    assert p.returncode == 0, f"roostctl run-jobs: exit {p.returncode} {p.stderr!r}"
    assert count(f"SELECT count(*) FROM messages WHERE id = {old['id']}") == 0, "older than retention: purged"
    assert count(f"SELECT count(*) FROM messages WHERE id = {new['id']}") == 1
    assert count(f"SELECT count(*) FROM messages WHERE id = {ancient['id']}") == 1, "no retention: kept"
    ids = [x["id"] for x in api.messages(stack, tok, room["id"])["messages"]]
    assert old["id"] not in ids and new["id"] in ids


@test
def members_read_the_public_settings():
    """GET /settings: what a member's client needs (the reaction set, the
    limits), and nothing of the admin-only settings."""
    _, tok = user()
    st, _, doc = get(stack, "/settings", token=tok)
    assert st == 200, (st, doc)
    assert set(doc) == {"app_name", "reactions", "message_max_chars", "edit_window_minutes",
                        "password_min_length"}, doc
    assert doc["reactions"] == DEFAULT_REACTIONS, doc
    api.set_settings(stack, admin(), reactions=["heart", "star"])
    try:
        st, _, doc = get(stack, "/settings", token=tok)
        assert st == 200 and doc["reactions"] == ["heart", "star"], doc
    finally:
        api.set_settings(stack, admin(), reactions=DEFAULT_REACTIONS)
    st, _, doc = get(stack, "/settings")
    assert st == 401, (st, doc)


@test
def workers_survived():
    assert stack.fcgi_pids() == PIDS, f"a worker died: {PIDS} -> {stack.fcgi_pids()}"


if __name__ == "__main__":
    run_tests(stack)
