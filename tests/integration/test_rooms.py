#!/usr/bin/python3
"""Integration: rooms of every kind (docs/rooms.md "Rooms") through real
lighttpd + roost.fcgi, PostgreSQL and Redis: create, discover, read, join
(by id, by invite code, with a password), member caps, the rooms_per_user
limit, managed rooms, leaving (ownership passing on, archiving), archived
rooms, PATCH/DELETE permissions, member lists, adding and removing members,
system messages, direct messages and NOT_MEMBER.

Readings of docs/rooms.md where it leaves room (also noted at each test):
- `invite_code` "only to members": for an outsider it is absent or null.
  `dm_user` "only for DMs": absent or null for other rooms.
- Creating a room makes me a member, so it counts against `rooms_per_user`
  like joining does (409 CONFLICT when I am in that many rooms already).
  The default room counts as one of my rooms.
- Joining a room that needs a password through POST /rooms/{id}/join
  without the password is 403 FORBIDDEN field `password`, like join-by-code.
- An unknown invite code is 404 NOT_FOUND.
- A managed room refuses every self-service change of membership by a
  non-admin: POST /join and join-by-code are 403, leave is 403, and a
  non-admin member adding others is 403. A non-admin owner cannot turn a
  room into a managed one with PATCH (403): `managed` "needs the admin
  role", and a managed room is one its members cannot leave.
- Members list: `role` is "owner" for the owner and "member" for the
  others; `next_after` is the cursor to pass as `after` for the next page.
  `has_more` is exact (false on a last page that happens to be full).
- POST /members `added` lists only the users actually added (members
  already in the room are skipped, not an error); an unknown or deleted user
  id makes the whole request fail (404 or 400) and adds nobody.
- System messages have `content` as an object (the contract: "a string for
  text, an object otherwise"); the human sentence is one of its strings
  ("Ana joined", "3 people joined"; a leave names the person and says
  "left", a removal names the person).
- Discovery's `q` is a name filter; the tests use unique name prefixes so
  both a prefix and a substring match give the same result.
- The DM's read-only state and archived rooms refuse posting with
  403 FORBIDDEN.
- Other tenants cannot be tested here: the test stack is single-tenant
  (ROOST_TENANT_MODE=single); see other_tenants_not_testable.
"""
import re

import api
from api import delete, expect_error, get, patch, post
from harness import Skip, Stack, run_tests, test

stack = Stack(workers=2)
PIDS = stack.fcgi_pids()
ADMIN_EMAIL, ADMIN_PASSWORD = api.make_admin(stack)
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ROOM_KEYS = {"id", "kind", "name", "topic", "owner_id", "managed", "max_members", "member_count",
             "has_password", "retention_hours", "archived", "is_default", "read_only",
             "created_at", "updated_at"}
S = {}


def setup():
    """Admin signed in, limits raised (once)."""
    if S:
        return
    S["admin"] = api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
    st, _, me = get(stack, "/me", token=S["admin"])
    S["admin_id"] = me["id"]
    api.set_settings(stack, S["admin"], **api.RELAXED)
    api.set_settings(stack, S["admin"], messages_per_10s=1000)


def admin():
    setup()
    return S["admin"]


def user(name=None, display_name=None):
    """A new member, signed in: (user, token)."""
    return api.member_session(stack, admin(), name=name, display_name=display_name)


def check_room_shape(room, what="room"):
    missing = ROOM_KEYS - set(room)
    assert not missing, f"{what}: room lacks {sorted(missing)}: {room}"
    assert isinstance(room["id"], int) and room["id"] > 0, room
    assert room["kind"] in ("public", "private", "dm"), room
    for k in ("managed", "has_password", "archived", "is_default", "read_only"):
        assert isinstance(room[k], bool), f"{what}: {k} is not a boolean: {room}"
    for k in ("max_members", "member_count"):
        assert isinstance(room[k], int), f"{what}: {k} is not an integer: {room}"
    assert TIME_RE.match(room["created_at"]) and TIME_RE.match(room["updated_at"]), room
    assert "password" not in room and "password_hash" not in room, f"{what}: password leaks: {room}"


def member_ids(token, room_id):
    """All member ids through the members list (follows next_after)."""
    ids, after = [], None
    for _ in range(100):
        st, _, doc = get(stack, f"/rooms/{room_id}/members" + api.qs(after=after, limit=100), token=token)
        assert st == 200, (st, doc)
        ids += [m["user"]["id"] for m in doc["members"]]
        if not doc["has_more"]:
            return ids
        after = doc["next_after"]
    raise AssertionError("members list never ends")


def db_members(room_id):
    out = api.sql(stack, f"SELECT user_id FROM room_members WHERE room_id = {int(room_id)} ORDER BY 1")
    return [int(x) for x in out.split()] if out else []


def system_strings(token, room_id):
    m = api.last_system_message(stack, token, room_id)
    assert m is not None, f"room {room_id} has no system message"
    assert m["author"] is None, f"system message with an author: {m}"
    assert isinstance(m["content"], dict), f"system content is not an object: {m}"
    return m["id"], api.text_of(m["content"])


# ------------------------------------------------------------------ create

@test
def create_public_room():
    u, tok = user()
    room = api.create_room(stack, tok, name="Public Square", kind="public", topic="all\nwelcome\there")
    check_room_shape(room)
    assert room["kind"] == "public" and room["name"] == "Public Square", room
    assert room["topic"] == "all\nwelcome\there", "topic keeps newlines and tabs"
    assert room["owner_id"] == u["id"], room
    assert room["member_count"] == 1, room
    assert room["max_members"] == 16, "default_max_members is 16"
    assert room["managed"] is False and room["archived"] is False and room["is_default"] is False
    assert room["read_only"] is False and room["has_password"] is False
    assert room["retention_hours"] is None, room
    assert isinstance(room["invite_code"], str) and room["invite_code"], "the creator sees the code"
    assert room.get("dm_user") is None, room
    assert db_members(room["id"]) == [u["id"]], "the creator is the first member"
    listed = api.my_room(stack, tok, room["id"])
    assert listed is not None, "the new room is in GET /rooms"
    st, _, doc = get(stack, f"/rooms/{room['id']}/members", token=tok)
    assert st == 200 and [m["user"]["id"] for m in doc["members"]] == [u["id"]], doc
    assert doc["members"][0]["role"] == "owner", doc
    assert TIME_RE.match(doc["members"][0]["joined_at"]), doc


@test
def create_private_room_with_password():
    u, tok = user()
    _, other = user()
    room = api.create_room(stack, tok, kind="private", password="room secret", max_members=5,
                           retention_hours=24)
    check_room_shape(room)
    assert room["kind"] == "private" and room["has_password"] is True, room
    assert room["max_members"] == 5 and room["retention_hours"] == 24, room
    assert b"room secret" not in api.last_raw_body(), "the password is never returned"
    h = api.sql(stack, f"SELECT password_hash FROM rooms WHERE id = {room['id']}")
    assert h.startswith("$argon2id$"), f"room password stored as argon2id, got {h[:20]!r}"
    expect_error(get(stack, f"/rooms/{room['id']}", token=other), 404, "NOT_FOUND",
                 what="outsider GET private room")
    got = api.get_room(stack, tok, room["id"])
    assert got["has_password"] is True and "room secret" not in str(got)


@test
def create_room_validation():
    _, tok = user()
    before = api.table_counts(stack)
    bad = [({"name": ""}, "name"), ({"name": "x" * 51}, "name"), ({"name": "é" * 51}, "name"),
           ({"name": "a\u0001b"}, "name"), ({"name": "a\nb"}, "name"), ({"name": "a\u0085b"}, "name"),
           ({"kind": "dm"}, "kind"), ({"kind": "secret"}, "kind"), ({"kind": None}, "kind"),
           ({"topic": "t" * 251}, "topic"), ({"topic": "a\u0000b"}, "topic"),
           ({"max_members": -1}, "max_members"), ({"max_members": 100001}, "max_members"),
           ({"max_members": "5"}, "max_members"), ({"max_members": 2.5}, "max_members"),
           ({"retention_hours": 0}, "retention_hours"), ({"retention_hours": 87601}, "retention_hours"),
           ({"password": ""}, "password"), ({"password": "x" * 1025}, "password"),
           ({"owner_id": 1}, "owner_id"), ({"archived": True}, "archived")]
    for fields, field in bad:
        body = {"name": api.unique("v"), "kind": "public"}
        body.update(fields)
        expect_error(post(stack, "/rooms", body, token=tok), 400, "VALIDATION_ERROR", field=field,
                     what=f"POST /rooms {fields}")
    expect_error(post(stack, "/rooms", {"kind": "public"}, token=tok), 400, "VALIDATION_ERROR",
                 field="name", what="no name")
    expect_error(post(stack, "/rooms", {"name": api.unique("m"), "kind": "public", "managed": True},
                      token=tok), 403, "FORBIDDEN", what="a member creating a managed room")
    assert api.table_counts(stack) == before, "a refused create stored something"
    # the limits themselves are accepted: 50 characters of multibyte text, 250-character topic
    room = api.create_room(stack, tok, name="é" * 49 + "😀", topic="t" * 250, max_members=0,
                           retention_hours=87600, password="p")
    assert room["name"] == "é" * 49 + "😀" and room["max_members"] == 0, room
    room = api.create_room(stack, tok, max_members=100000)
    assert room["max_members"] == 100000


# ------------------------------------------------------------------ default room

@test
def default_room_joined_by_every_new_user():
    u1, t1 = user()
    general = [r for r in api.my_rooms(stack, t1) if r["is_default"]]
    assert len(general) == 1, f"a new user is in exactly one default room: {api.my_rooms(stack, t1)}"
    g = general[0]
    assert g["name"] == "General" and g["kind"] == "public" and g["max_members"] == 0, g
    u2, t2 = user()
    g2 = [r for r in api.my_rooms(stack, t2) if r["is_default"]]
    assert [r["id"] for r in g2] == [g["id"]], "the same default room for everyone"
    # a user who registers joins it too
    api.set_settings(stack, admin(), open_registration=True)
    try:
        email = api.unique("reg") + "@example.com"
        st, _, doc = post(stack, "/auth/register", {"email": email, "password": "registered password 1",
                                                    "name": "Registered"})
        assert st == 201, (st, doc)
        ids = [r["id"] for r in api.my_rooms(stack, doc["token"]) if r["is_default"]]
        assert ids == [g["id"]], f"registered user's default rooms: {ids}"
    finally:
        api.set_settings(stack, admin(), open_registration=False)
    assert api.sql(stack, "SELECT count(*) FROM rooms WHERE is_default") == "1"
    for uid in (u1["id"], u2["id"], doc["user"]["id"]):
        assert uid in db_members(g["id"]), f"user {uid} not in the default room"


# ------------------------------------------------------------------ discover

@test
def discover_public_rooms_paging_exact():
    _, tok = user()
    _, other = user()
    prefix = api.unique("disc")
    public = [api.create_room(stack, tok, name=f"{prefix} pub {i}")["id"] for i in range(4)]
    api.create_room(stack, tok, name=f"{prefix} priv", kind="private")
    archived = api.create_room(stack, tok, name=f"{prefix} old")
    st, _, doc = patch(stack, f"/rooms/{archived['id']}", {"archived": True}, token=tok)
    assert st == 200 and doc["archived"] is True, (st, doc)

    def page(after=None, limit=None):
        st, _, doc = get(stack, "/rooms/discover" + api.qs(q=prefix, after=after, limit=limit), token=other)
        assert st == 200, (st, doc)
        assert isinstance(doc["rooms"], list) and isinstance(doc["has_more"], bool), doc
        return doc

    doc = page()
    assert [r["id"] for r in doc["rooms"]] == public, f"only public unarchived rooms, by id: {doc}"
    assert doc["has_more"] is False
    for r in doc["rooms"]:
        assert r["kind"] == "public" and not r["archived"]
        assert r.get("invite_code") is None, f"invite code shown to a non-member in discovery: {r}"
    # limit 2: two full pages, the second is the last (exact has_more)
    p1 = page(limit=2)
    assert [r["id"] for r in p1["rooms"]] == public[:2] and p1["has_more"] is True, p1
    assert p1["next_after"] == public[1], p1
    p2 = page(after=p1["next_after"], limit=2)
    assert [r["id"] for r in p2["rooms"]] == public[2:] and p2["has_more"] is False, \
        f"the last page is full but has_more must be false: {p2}"
    p = page(limit=3)
    assert [r["id"] for r in p["rooms"]] == public[:3] and p["has_more"] is True
    p = page(after=p["next_after"], limit=3)
    assert [r["id"] for r in p["rooms"]] == public[3:] and p["has_more"] is False
    p = page(after=public[-1])
    assert p["rooms"] == [] and p["has_more"] is False
    p = page(limit=4)
    assert len(p["rooms"]) == 4 and p["has_more"] is False
    for lim in ("0", "101", "-1", "abc"):
        st, _, doc = get(stack, f"/rooms/discover?q={prefix}&limit={lim}", token=other)
        expect_error((st, None, doc), 400, what=f"discover limit={lim}")
    # no DMs in discovery
    _, t3 = user()
    st, d = api.open_dm(stack, t3, S["admin_id"])
    all_ids, after = [], None
    for _ in range(200):
        st, _, doc = get(stack, "/rooms/discover" + api.qs(after=after, limit=100), token=t3)
        assert st == 200
        all_ids += [r["id"] for r in doc["rooms"]]
        if not doc["has_more"]:
            break
        after = doc["next_after"]
    assert d["id"] not in all_ids, "a DM is listed in discovery"
    assert all_ids == sorted(all_ids) and len(all_ids) == len(set(all_ids)), "by id, no repeats"


# ------------------------------------------------------------------ reading a room

@test
def get_room_as_member_and_outsider():
    owner, tok = user()
    _, out = user()
    pub = api.create_room(stack, tok, kind="public")
    priv = api.create_room(stack, tok, kind="private")
    got = api.get_room(stack, tok, pub["id"])
    check_room_shape(got)
    assert got["invite_code"] == pub["invite_code"], "a member sees the invite code"
    seen = api.get_room(stack, out, pub["id"])
    check_room_shape(seen, "public room seen by an outsider")
    assert seen.get("invite_code") is None, f"invite_code shown to an outsider: {seen}"
    assert pub["invite_code"] not in api.last_raw_body().decode(), "the code leaks somewhere in the body"
    expect_error(get(stack, f"/rooms/{priv['id']}", token=out), 404, "NOT_FOUND", what="private to outsider")
    st, dm = api.open_dm(stack, tok, S["admin_id"])
    expect_error(get(stack, f"/rooms/{dm['id']}", token=out), 404, "NOT_FOUND", what="DM to outsider")
    expect_error(get(stack, "/rooms/987654321", token=out), 404, "NOT_FOUND", what="no such room")
    expect_error(get(stack, f"/rooms/{pub['id']}"), 401, "UNAUTHORIZED", what="no credential")


# ------------------------------------------------------------------ joining

@test
def join_public_room_is_idempotent():
    owner, tok = user()
    joiner, jt = user(name="Joiner")
    room = api.create_room(stack, tok)
    r = api.join_room(stack, jt, room["id"])
    check_room_shape(r)
    assert r["member_count"] == 2 and r["invite_code"] == room["invite_code"], r
    sys_id, strings = system_strings(jt, room["id"])
    events = api.sql(stack, f"SELECT count(*) FROM events WHERE room_id = {room['id']}")
    r = api.join_room(stack, jt, room["id"])
    assert r["member_count"] == 2, f"joining twice changed member_count: {r}"
    assert db_members(room["id"]) == sorted([owner["id"], joiner["id"]])
    again, _ = system_strings(jt, room["id"])
    assert again == sys_id, "a no-op join posted another system message"
    assert api.sql(stack, f"SELECT count(*) FROM events WHERE room_id = {room['id']}") == events, \
        "a no-op join wrote an event"
    assert api.my_room(stack, jt, room["id"]) is not None, "the joined room is in my GET /rooms"


@test
def join_private_room_by_id_is_404():
    _, tok = user()
    _, jt = user()
    room = api.create_room(stack, tok, kind="private")
    expect_error(post(stack, f"/rooms/{room['id']}/join", {}, token=jt), 404, "NOT_FOUND",
                 what="join private by id")
    assert len(db_members(room["id"])) == 1
    expect_error(post(stack, "/rooms/987654321/join", {}, token=jt), 404, "NOT_FOUND", what="no such room")


@test
def join_by_code_with_and_without_password():
    _, tok = user()
    _, a = user()
    _, b = user()
    _, c = user()
    # private room without a password: the code is enough
    r1 = api.create_room(stack, tok, kind="private")
    got = api.join_by_code(stack, a, r1["invite_code"])
    assert got["id"] == r1["id"] and got["member_count"] == 2, got
    # with a password
    r2 = api.create_room(stack, tok, kind="private", password="open sesame")
    code = r2["invite_code"]
    for pw, what in ((None, "missing"), ("Open sesame", "wrong case"), ("open sesame ", "trailing space"),
                     ("x", "wrong")):
        body = {"invite_code": code}
        if pw is not None:
            body["password"] = pw
        expect_error(post(stack, "/rooms/join-by-code", body, token=b), 403, "FORBIDDEN", field="password",
                     what=f"join-by-code, password {what}")
    assert len(db_members(r2["id"])) == 1, "a refused join added a member"
    got = api.join_by_code(stack, b, code, password="open sesame")
    assert got["id"] == r2["id"] and got["member_count"] == 2
    # public room with a password: join by id needs it too (reading: 403 field password)
    r3 = api.create_room(stack, tok, kind="public", password="pub pass")
    expect_error(post(stack, f"/rooms/{r3['id']}/join", {}, token=c), 403, "FORBIDDEN", field="password",
                 what="public room join without its password")
    expect_error(post(stack, f"/rooms/{r3['id']}/join", {"password": "nope"}, token=c), 403, "FORBIDDEN",
                 field="password", what="public room join with a wrong password")
    api.join_room(stack, c, r3["id"], password="pub pass")
    # a public room by code
    r4 = api.create_room(stack, tok, kind="public")
    assert api.join_by_code(stack, c, r4["invite_code"])["id"] == r4["id"]
    # unknown codes
    for bad in ("nosuchcode", "' OR '1'='1", r1["invite_code"] + "x"):
        expect_error(post(stack, "/rooms/join-by-code", {"invite_code": bad}, token=c), 404, "NOT_FOUND",
                     what=f"unknown code {bad!r}")
    expect_error(post(stack, "/rooms/join-by-code", {}, token=c), 400, "VALIDATION_ERROR",
                 field="invite_code", what="no code")
    # removing the password (PATCH null) lets the code alone in
    st, _, doc = patch(stack, f"/rooms/{r2['id']}", {"password": None}, token=tok)
    assert st == 200 and doc["has_password"] is False, (st, doc)
    assert api.join_by_code(stack, c, code)["id"] == r2["id"]


@test
def rotate_invite_code():
    _, tok = user()
    _, mem = user()
    _, a = user()
    _, b = user()
    room = api.create_room(stack, tok, kind="private")
    api.join_by_code(stack, mem, room["invite_code"])
    old = room["invite_code"]
    expect_error(post(stack, f"/rooms/{room['id']}/invite-code", None, token=mem), 403, "FORBIDDEN",
                 what="a plain member rotates the code")
    st, _, doc = post(stack, f"/rooms/{room['id']}/invite-code", None, token=tok)
    assert st == 200 and isinstance(doc.get("invite_code"), str) and doc["invite_code"], (st, doc)
    new = doc["invite_code"]
    assert new != old
    assert api.get_room(stack, tok, room["id"])["invite_code"] == new
    expect_error(post(stack, "/rooms/join-by-code", {"invite_code": old}, token=a), 404, "NOT_FOUND",
                 what="the old code after rotation")
    assert api.join_by_code(stack, a, new)["id"] == room["id"]
    # an admin who is not a member may rotate too
    st, _, doc = post(stack, f"/rooms/{room['id']}/invite-code", None, token=admin())
    assert st == 200 and doc["invite_code"] not in (old, new), (st, doc)
    expect_error(post(stack, "/rooms/join-by-code", {"invite_code": new}, token=b), 404, "NOT_FOUND",
                 what="the second code after the admin rotated it")


# ------------------------------------------------------------------ limits

@test
def member_cap_room_full():
    _, tok = user()
    _, a = user()
    b_user, b = user()
    room = api.create_room(stack, tok, max_members=2)
    api.join_room(stack, a, room["id"])
    expect_error(post(stack, f"/rooms/{room['id']}/join", {}, token=b), 409, "ROOM_FULL", what="third join")
    expect_error(post(stack, "/rooms/join-by-code", {"invite_code": room["invite_code"]}, token=b), 409,
                 "ROOM_FULL", what="third join by code")
    assert len(db_members(room["id"])) == 2
    assert api.get_room(stack, tok, room["id"])["member_count"] == 2
    expect_error(post(stack, f"/rooms/{room['id']}/members", {"user_ids": [b_user["id"]]}, token=tok), 409,
                 "ROOM_FULL", what="adding a third member")
    # raising the cap lets them in; 0 is unlimited
    st, _, doc = patch(stack, f"/rooms/{room['id']}", {"max_members": 0}, token=tok)
    assert st == 200 and doc["max_members"] == 0
    api.join_room(stack, b, room["id"])
    assert len(db_members(room["id"])) == 3


@test
def add_members_over_the_cap_adds_nobody():
    owner, tok = user()
    others = [user()[0] for _ in range(3)]
    room = api.create_room(stack, tok, max_members=3)
    before = db_members(room["id"])
    expect_error(post(stack, f"/rooms/{room['id']}/members", {"user_ids": [u["id"] for u in others]},
                      token=tok), 409, "ROOM_FULL", what="adding 3 to a room with room for 2")
    assert db_members(room["id"]) == before, "all or nothing: someone was added"
    assert api.get_room(stack, tok, room["id"])["member_count"] == 1
    doc = api.add_members(stack, tok, room["id"], [u["id"] for u in others[:2]])
    assert sorted(doc["added"]) == sorted(u["id"] for u in others[:2]) and doc["member_count"] == 3, doc


@test
def rooms_per_user_limit():
    u, tok = user()
    _, owner = user()
    v, _ = user()
    pub = api.create_room(stack, owner)
    priv = api.create_room(stack, owner, kind="private")
    n = len(api.my_rooms(stack, tok))  # the default room
    api.set_settings(stack, admin(), rooms_per_user=n + 1)
    try:
        api.create_room(stack, tok)  # now in n + 1 rooms
        expect_error(api.create_room_resp(stack, tok), 409, "CONFLICT", what="creating one room too many")
        expect_error(post(stack, f"/rooms/{pub['id']}/join", {}, token=tok), 409, "CONFLICT",
                     what="joining one room too many")
        expect_error(post(stack, "/rooms/join-by-code", {"invite_code": priv["invite_code"]}, token=tok), 409,
                     "CONFLICT", what="join-by-code one room too many")
        before = db_members(pub["id"])
        expect_error(post(stack, f"/rooms/{pub['id']}/members", {"user_ids": [v["id"], u["id"]]},
                          token=owner), 409, "CONFLICT", what="adding a user who is at the limit")
        assert db_members(pub["id"]) == before, "all or nothing: the other user was added"
        assert len(api.my_rooms(stack, tok)) == n + 1
    finally:
        api.set_settings(stack, admin(), rooms_per_user=200)
    api.join_room(stack, tok, pub["id"])


# ------------------------------------------------------------------ managed rooms

@test
def managed_rooms():
    m, mt = user()
    m2, mt2 = user()
    room = api.create_room(stack, admin(), managed=True, kind="public")
    assert room["managed"] is True and room["owner_id"] == S["admin_id"], room
    expect_error(post(stack, f"/rooms/{room['id']}/join", {}, token=mt), 403, "FORBIDDEN",
                 what="a member joins a managed room")
    expect_error(post(stack, "/rooms/join-by-code", {"invite_code": room["invite_code"]}, token=mt), 403,
                 "FORBIDDEN", what="a member joins a managed room by code")
    assert db_members(room["id"]) == [S["admin_id"]]
    doc = api.add_members(stack, admin(), room["id"], [m["id"]])
    assert doc["added"] == [m["id"]] and doc["member_count"] == 2, doc
    expect_error(post(stack, f"/rooms/{room['id']}/leave", None, token=mt), 403, "FORBIDDEN",
                 what="a member leaves a managed room")
    expect_error(post(stack, f"/rooms/{room['id']}/members", {"user_ids": [m2["id"]]}, token=mt), 403,
                 "FORBIDDEN", what="a non-admin member adds someone to a managed room")
    expect_error(delete(stack, f"/rooms/{room['id']}/members/{S['admin_id']}", token=mt), 403, "FORBIDDEN",
                 what="a non-admin removes from a managed room")
    assert sorted(db_members(room["id"])) == sorted([S["admin_id"], m["id"]])
    api.remove_member(stack, admin(), room["id"], m["id"])
    assert db_members(room["id"]) == [S["admin_id"]]
    # a non-admin owner cannot make a room managed (reading: admins only)
    own = api.create_room(stack, mt2)
    expect_error(patch(stack, f"/rooms/{own['id']}", {"managed": True}, token=mt2), 403, "FORBIDDEN",
                 what="a member owner sets managed")
    assert api.get_room(stack, mt2, own["id"])["managed"] is False
    st, _, doc = patch(stack, f"/rooms/{own['id']}", {"managed": True}, token=admin())
    assert st == 200 and doc["managed"] is True, (st, doc)
    expect_error(post(stack, f"/rooms/{own['id']}/leave", None, token=mt2), 403, "FORBIDDEN",
                 what="leaving a room an admin made managed")


# ------------------------------------------------------------------ leaving

@test
def leave_passes_ownership_then_last_leave_archives():
    a, at = user()
    b, bt = user()
    c, ct = user()
    _, outsider = user()
    room = api.create_room(stack, at)
    api.join_room(stack, bt, room["id"])
    api.join_room(stack, ct, room["id"])
    api.leave_room(stack, at, room["id"])
    r = api.get_room(stack, bt, room["id"])
    assert r["owner_id"] == b["id"], f"ownership passes to the longest-standing member (B): {r}"
    assert r["member_count"] == 2 and a["id"] not in db_members(room["id"])
    expect_error(get(stack, f"/rooms/{room['id']}/messages", token=at), 403, "NOT_MEMBER",
                 what="reading after leaving")
    assert api.my_room(stack, at, room["id"]) is None, "a left room is still in GET /rooms"
    api.leave_room(stack, bt, room["id"])
    r = api.get_room(stack, ct, room["id"])
    assert r["owner_id"] == c["id"] and r["archived"] is False, r
    api.leave_room(stack, ct, room["id"])
    assert db_members(room["id"]) == []
    assert api.sql(stack, f"SELECT archived FROM rooms WHERE id = {room['id']}") == "t", \
        "the last leave archives the room"
    r = api.get_room(stack, outsider, room["id"])
    assert r["archived"] is True and r["read_only"] is True, r
    # leaving a room I am not in
    st, _, doc = post(stack, f"/rooms/{room['id']}/leave", None, token=outsider)
    assert st in (403, 404) and api.err(doc) in ("NOT_MEMBER", "NOT_FOUND"), (st, doc)


@test
def removing_the_owner_passes_ownership():
    a, at = user()
    b, bt = user()
    c, ct = user()
    room = api.create_room(stack, at, kind="private")
    api.join_by_code(stack, bt, room["invite_code"])
    api.join_by_code(stack, ct, room["invite_code"])
    api.remove_member(stack, admin(), room["id"], a["id"])
    r = api.get_room(stack, ct, room["id"])
    assert r["owner_id"] == b["id"], f"removing the owner passes ownership to B: {r}"


@test
def archived_rooms_are_read_only():
    owner, tok = user()
    m, mt = user()
    room = api.create_room(stack, tok)
    api.join_room(stack, mt, room["id"])
    msg = api.send(stack, mt, room["id"], "before the archive")
    st, _, doc = patch(stack, f"/rooms/{room['id']}", {"archived": True}, token=tok)
    assert st == 200 and doc["archived"] is True and doc["read_only"] is True, (st, doc)
    n = api.table_counts(stack)["messages"]
    room_msgs = api.sql(stack, f"SELECT count(*) FROM messages WHERE room_id = {room['id']}")
    expect_error(api.send_resp(stack, mt, room["id"], "after"), 403, "FORBIDDEN", what="posting when archived")
    expect_error(api.send_resp(stack, tok, room["id"], "owner after"), 403, "FORBIDDEN",
                 what="owner posting when archived")
    assert api.table_counts(stack)["messages"] == n
    doc = api.messages(stack, mt, room["id"])
    assert msg["id"] in [x["id"] for x in doc["messages"]], "history stays readable"
    st, _, _ = request_put(f"/messages/{msg['id']}/reactions/heart", mt)
    assert st == 403, f"reacting in an archived room: {st}"
    st, _, _ = request_put(f"/messages/{msg['id']}/pin", mt)
    assert st == 403, f"pinning in an archived room: {st}"
    # joining is a write too (it posts a system message): refused, the room stays archived
    o, ot = user()
    expect_error(post(stack, f"/rooms/{room['id']}/join", {}, token=ot), 403, "FORBIDDEN",
                 what="joining an archived room")
    expect_error(post(stack, f"/rooms/{room['id']}/members", {"user_ids": [o["id"]]}, token=tok), 403,
                 "FORBIDDEN", what="adding a member to an archived room")
    assert o["id"] not in db_members(room["id"]) and api.get_room(stack, tok, room["id"])["archived"] is True
    assert api.sql(stack, f"SELECT count(*) FROM messages WHERE room_id = {room['id']}") == room_msgs, \
        "a refused join posted a system message"
    st, _, doc = patch(stack, f"/rooms/{room['id']}", {"archived": False}, token=tok)
    assert st == 200 and doc["archived"] is False and doc["read_only"] is False
    api.send(stack, mt, room["id"], "after unarchiving")


def request_put(path, token):
    return api.request(stack, "PUT", path, token=token)


# ------------------------------------------------------------------ patch / delete

@test
def patch_room_permissions_and_fields():
    owner, tok = user()
    m, mt = user()
    room = api.create_room(stack, tok, topic="old topic", password="pw", retention_hours=5)
    api.join_room(stack, mt, room["id"], password="pw")
    expect_error(patch(stack, f"/rooms/{room['id']}", {"name": "mine now"}, token=mt), 403, "FORBIDDEN",
                 what="a member renames")
    assert api.get_room(stack, tok, room["id"])["name"] == room["name"]
    st, _, doc = patch(stack, f"/rooms/{room['id']}", {"name": "Renamed", "max_members": 40}, token=tok)
    assert st == 200 and doc["name"] == "Renamed" and doc["max_members"] == 40, (st, doc)
    assert doc["topic"] == "old topic", "fields not given are kept"
    st, _, doc = patch(stack, f"/rooms/{room['id']}", {"topic": None, "password": None,
                                                       "retention_hours": None}, token=tok)
    assert st == 200 and doc["topic"] is None and doc["has_password"] is False \
        and doc["retention_hours"] is None, doc
    st, _, doc = patch(stack, f"/rooms/{room['id']}", {"topic": "by the admin"}, token=admin())
    assert st == 200 and doc["topic"] == "by the admin", "an admin (not a member) may PATCH"
    for body, field in (({"name": ""}, "name"), ({"name": None}, "name"), ({"max_members": -1}, "max_members"),
                        ({"kind": "private"}, "kind"), ({"owner_id": m["id"]}, "owner_id"),
                        ({"retention_hours": 0}, "retention_hours"), ({"archived": "yes"}, "archived")):
        expect_error(patch(stack, f"/rooms/{room['id']}", body, token=tok), 400, "VALIDATION_ERROR",
                     field=field, what=f"PATCH {body}")
    priv = api.create_room(stack, tok, kind="private")
    expect_error(patch(stack, f"/rooms/{priv['id']}", {"name": "x"}, token=mt), 404, "NOT_FOUND",
                 what="outsider PATCH private")
    assert api.get_room(stack, tok, room["id"])["name"] == "Renamed"


@test
def delete_room_permissions_and_messages_gone():
    owner, tok = user()
    m, mt = user()
    room = api.create_room(stack, tok)
    api.join_room(stack, mt, room["id"])
    msgs = [api.send(stack, mt, room["id"], f"doomed {i}") for i in range(3)]
    api.request(stack, "PUT", f"/messages/{msgs[0]['id']}/pin", token=mt)
    api.request(stack, "PUT", f"/messages/{msgs[0]['id']}/reactions/heart", token=mt)
    expect_error(delete(stack, f"/rooms/{room['id']}", token=mt), 403, "FORBIDDEN", what="a member deletes")
    assert api.sql(stack, f"SELECT count(*) FROM messages WHERE room_id = {room['id']}") != "0"
    st, _, _ = delete(stack, f"/rooms/{room['id']}", token=tok)
    assert st == 204, st
    for table in ("messages", "room_members", "pins"):
        assert api.sql(stack, f"SELECT count(*) FROM {table} WHERE room_id = {room['id']}") == "0", \
            f"{table} rows left after DELETE /rooms"
    ids = ",".join(str(x["id"]) for x in msgs)
    assert api.sql(stack, f"SELECT count(*) FROM reactions WHERE message_id IN ({ids})") == "0"
    assert api.sql(stack, f"SELECT count(*) FROM rooms WHERE id = {room['id']}") == "0"
    expect_error(get(stack, f"/rooms/{room['id']}", token=tok), 404, "NOT_FOUND", what="deleted room")
    assert api.my_room(stack, mt, room["id"]) is None
    # an admin who is not a member deletes another
    r2 = api.create_room(stack, tok, kind="private")
    st, _, _ = delete(stack, f"/rooms/{r2['id']}", token=admin())
    assert st == 204
    expect_error(delete(stack, f"/rooms/{r2['id']}", token=admin()), 404, "NOT_FOUND", what="delete twice")


# ------------------------------------------------------------------ members

@test
def members_list_paging():
    owner, tok = user()
    people = [user() for _ in range(6)]
    room = api.create_room(stack, tok, max_members=0)
    for _, t in people:
        api.join_room(stack, t, room["id"])
    everyone = sorted([owner["id"]] + [u["id"] for u, _ in people])

    def page(after=None, limit=None, token=tok):
        st, _, doc = get(stack, f"/rooms/{room['id']}/members" + api.qs(after=after, limit=limit), token=token)
        assert st == 200, (st, doc)
        for m in doc["members"]:
            assert isinstance(m["user"], dict) and isinstance(m["user"]["id"], int), m
            assert m["role"] in ("owner", "member"), m
            assert TIME_RE.match(m["joined_at"]), m
            assert "email" not in m["user"] or m["user"]["id"] == owner["id"], f"email leaks: {m}"
        return doc

    doc = page()
    assert sorted(m["user"]["id"] for m in doc["members"]) == everyone and doc["has_more"] is False
    roles = {m["user"]["id"]: m["role"] for m in doc["members"]}
    assert roles[owner["id"]] == "owner" and all(roles[u["id"]] == "member" for u, _ in people), roles
    seen, after, pages = [], None, []
    while True:
        d = page(after=after, limit=2)
        pages.append(d["has_more"])
        seen += [m["user"]["id"] for m in d["members"]]
        assert len(d["members"]) <= 2
        if not d["has_more"]:
            break
        assert len(d["members"]) == 2
        after = d["next_after"]
    assert sorted(seen) == everyone and len(seen) == len(set(seen)), seen
    assert pages == [True, True, True, False], f"7 members in pages of 2: has_more {pages}"
    d = page(limit=7)
    assert len(d["members"]) == 7 and d["has_more"] is False, "a full last page has has_more false"
    d = page(limit=6)
    assert len(d["members"]) == 6 and d["has_more"] is True
    _, out = user()
    expect_error(get(stack, f"/rooms/{room['id']}/members", token=out), 403, "NOT_MEMBER",
                 what="members of a public room I am not in")


@test
def add_members_all_or_nothing():
    owner, tok = user()
    m, mt = user()
    a, _ = user()
    b, _ = user()
    gone, _ = user()
    st, _, _ = delete(stack, f"/admin/users/{gone['id']}", token=admin())
    assert st == 204
    room = api.create_room(stack, tok, kind="private")
    api.join_by_code(stack, mt, room["invite_code"])
    before = db_members(room["id"])
    st, _, doc = post(stack, f"/rooms/{room['id']}/members", {"user_ids": [a["id"], 987654321]}, token=mt)
    assert st in (400, 404), f"an unknown user in the list: {st} {doc}"
    api.err(doc)
    st, _, doc = post(stack, f"/rooms/{room['id']}/members", {"user_ids": [a["id"], gone["id"]]}, token=mt)
    assert st in (400, 404), f"a deleted user in the list: {st} {doc}"
    assert db_members(room["id"]) == before, "all or nothing"
    for body, what in (({"user_ids": []}, "empty"), ({"user_ids": list(range(1, 102))}, "101 ids"),
                       ({"user_ids": ["1"]}, "string id"), ({"user_ids": [-1]}, "negative"),
                       ({"user_ids": [2 ** 53]}, "2^53"), ({}, "missing"), ({"user_ids": a["id"]}, "not a list")):
        expect_error(post(stack, f"/rooms/{room['id']}/members", body, token=mt), 400, "VALIDATION_ERROR",
                     field="user_ids", what=f"user_ids {what}")
    assert db_members(room["id"]) == before
    # any member of an unmanaged room may add; members already in are skipped
    doc = api.add_members(stack, mt, room["id"], [owner["id"], a["id"], b["id"]])
    assert sorted(doc["added"]) == sorted([a["id"], b["id"]]) and doc["member_count"] == 4, doc
    assert sorted(db_members(room["id"])) == sorted([owner["id"], m["id"], a["id"], b["id"]])
    _, out = user()
    st, _, doc = post(stack, f"/rooms/{room['id']}/members", {"user_ids": [gone["id"]]}, token=out)
    expect_error((st, None, doc), 404, "NOT_FOUND", what="an outsider adds to a private room")


@test
def remove_member_permissions():
    owner, tok = user()
    a, at = user()
    b, bt = user()
    room = api.create_room(stack, tok)
    api.join_room(stack, at, room["id"])
    api.join_room(stack, bt, room["id"])
    expect_error(delete(stack, f"/rooms/{room['id']}/members/{b['id']}", token=at), 403, "FORBIDDEN",
                 what="a member removes another")
    assert b["id"] in db_members(room["id"])
    api.remove_member(stack, tok, room["id"], b["id"])
    assert b["id"] not in db_members(room["id"])
    expect_error(get(stack, f"/rooms/{room['id']}/messages", token=bt), 403, "NOT_MEMBER",
                 what="a removed member reads")
    api.remove_member(stack, admin(), room["id"], a["id"])
    assert db_members(room["id"]) == [owner["id"]]
    st, _, doc = delete(stack, f"/rooms/{room['id']}/members/{a['id']}", token=tok)
    assert st == 404 and api.err(doc) == "NOT_FOUND", f"removing a non-member: {st} {doc}"


# ------------------------------------------------------------------ system messages

@test
def system_messages_name_one_and_count_several():
    owner, tok = user(name="Owner")
    ana, at = user(name="Ana")
    bo, _ = user(name="Bo")
    three = [user()[0] for _ in range(3)]
    room = api.create_room(stack, tok, max_members=0)
    api.join_room(stack, at, room["id"])
    _, s = system_strings(tok, room["id"])
    assert "Ana joined" in s, f"one join is named: {s}"
    doc = api.add_members(stack, tok, room["id"], [u["id"] for u in three])
    assert len(doc["added"]) == 3
    _, s = system_strings(tok, room["id"])
    assert "3 people joined" in s, f"several joins are one summary: {s}"
    n_sys = sum(1 for m in api.messages(stack, tok, room["id"], limit=100)["messages"] if m["type"] == "system")
    api.add_members(stack, tok, room["id"], [bo["id"]])
    _, s = system_strings(tok, room["id"])
    assert "Bo joined" in s, f"one added member is named: {s}"
    api.leave_room(stack, at, room["id"])
    _, s = system_strings(tok, room["id"])
    assert any("Ana" in x and "left" in x for x in s), f"a leave names the person: {s}"
    api.remove_member(stack, tok, room["id"], bo["id"])
    _, s = system_strings(tok, room["id"])
    assert any("Bo" in x for x in s) and not any("Ana" in x for x in s), f"a removal names the person: {s}"
    msgs = api.messages(stack, tok, room["id"], limit=100)["messages"]
    assert sum(1 for m in msgs if m["type"] == "system") == n_sys + 3, \
        "one system message per join, leave and removal"
    for m in msgs:
        if m["type"] == "system":
            assert m["author"] is None and m["reply_to"] is None, m


# ------------------------------------------------------------------ DMs

@test
def direct_messages():
    a, at = user()
    b, bt = user()
    _, ct = user()
    st, dm = api.open_dm(stack, at, b["id"])
    assert st == 201, f"a new DM is 201, got {st}"
    check_room_shape(dm, "dm")
    assert dm["kind"] == "dm" and dm["name"] == "" and dm["member_count"] == 2, dm
    assert dm.get("invite_code") is None, "a DM has no invite code"
    du = dm["dm_user"]
    assert du["id"] == b["id"] and du["deleted"] is False, du
    assert {"id", "name", "display_name", "avatar_url", "deleted"} <= set(du), du
    st, again = api.open_dm(stack, at, b["id"])
    assert st == 200 and again["id"] == dm["id"], f"the existing DM: {st} {again}"
    st, theirs = api.open_dm(stack, bt, a["id"])
    assert st == 200 and theirs["id"] == dm["id"] and theirs["dm_user"]["id"] == a["id"], (st, theirs)
    assert api.sql(stack, f"SELECT count(*) FROM rooms WHERE kind = 'dm' AND id = {dm['id']}") == "1"
    expect_error(post(stack, "/dms", {"user_id": a["id"]}, token=at), 400, what="DM with myself")
    expect_error(post(stack, "/dms", {"user_id": 987654321}, token=at), 404, "NOT_FOUND", what="unknown user")
    expect_error(post(stack, "/dms", {"user_id": "x"}, token=at), 400, "VALIDATION_ERROR", field="user_id",
                 what="user_id a string")
    expect_error(post(stack, "/dms", {}, token=at), 400, "VALIDATION_ERROR", field="user_id", what="no user_id")
    # outsiders see nothing; the members are fixed
    for method, path, body in (("GET", f"/rooms/{dm['id']}", None),
                               ("GET", f"/rooms/{dm['id']}/messages", None),
                               ("POST", f"/rooms/{dm['id']}/messages", {"type": "text", "content": "hi"}),
                               ("POST", f"/rooms/{dm['id']}/join", {})):
        expect_error(api.request(stack, method, path, json=body, token=ct), 404, "NOT_FOUND",
                     what=f"outsider {method} {path}")
    c_id = api.sql(stack, "SELECT max(id) FROM users")
    expect_error(post(stack, f"/rooms/{dm['id']}/members", {"user_ids": [int(c_id)]}, token=at), 403,
                 what="adding a third person to a DM")
    expect_error(post(stack, f"/rooms/{dm['id']}/leave", None, token=at), 403, what="leaving a DM")
    expect_error(patch(stack, f"/rooms/{dm['id']}", {"name": "ours"}, token=at), (400, 403),
                 what="renaming a DM")
    m = api.send(stack, at, dm["id"], "hello B")
    got = api.messages(stack, bt, dm["id"])["messages"]
    assert m["id"] in [x["id"] for x in got]
    listed = api.my_room(stack, bt, dm["id"])
    assert listed is not None and listed["dm_user"]["id"] == a["id"], listed


@test
def dm_with_a_deleted_user_is_read_only():
    a, at = user()
    b, bt = user()
    st, dm = api.open_dm(stack, at, b["id"])
    api.send(stack, bt, dm["id"], "bye")
    st, _, _ = delete(stack, f"/admin/users/{b['id']}", token=admin())
    assert st == 204
    r = api.get_room(stack, at, dm["id"])
    assert r["read_only"] is True and r["dm_user"]["deleted"] is True, r
    n = api.table_counts(stack)["messages"]
    expect_error(api.send_resp(stack, at, dm["id"], "are you there?"), 403, "FORBIDDEN",
                 what="posting into a DM whose other user is deleted")
    assert api.table_counts(stack)["messages"] == n
    assert len(api.messages(stack, at, dm["id"])["messages"]) >= 1, "the history stays readable"
    expect_error(post(stack, "/dms", {"user_id": b["id"]}, token=at), 404, "NOT_FOUND",
                 what="a new DM with a deleted user")


# ------------------------------------------------------------------ NOT_MEMBER

@test
def not_member_reads_and_writes():
    owner, tok = user()
    _, out = user()
    pub = api.create_room(stack, tok)
    priv = api.create_room(stack, tok, kind="private")
    mp = api.send(stack, tok, pub["id"], "public message")
    mq = api.send(stack, tok, priv["id"], "private message")
    before = api.table_counts(stack)
    for room, msg, status, code in ((pub, mp, 403, "NOT_MEMBER"), (priv, mq, 404, "NOT_FOUND")):
        rid, mid = room["id"], msg["id"]
        for method, path, body in (
                ("GET", f"/rooms/{rid}/messages", None),
                ("POST", f"/rooms/{rid}/messages", {"type": "text", "content": "hi"}),
                ("GET", f"/rooms/{rid}/members", None),
                ("GET", f"/rooms/{rid}/pins", None),
                ("POST", f"/rooms/{rid}/read", {"message_id": mid}),
                ("PUT", f"/messages/{mid}/pin", None),
                ("DELETE", f"/messages/{mid}/pin", None),
                ("PUT", f"/messages/{mid}/reactions/heart", None),
                ("DELETE", f"/messages/{mid}/reactions/heart", None),
                ("POST", f"/rooms/{rid}/members", {"user_ids": [owner["id"]]})):
            expect_error(api.request(stack, method, path, json=body, token=out), status, code,
                         what=f"outsider {method} {path} ({room['kind']})")
        st, _, doc = get(stack, f"/search?q=message&room_id={rid}", token=out)
        assert st in (403, 404), f"search narrowed to a room I am not in: {st} {doc}"
    st, _, doc = api.request(stack, "PATCH", f"/messages/{mp['id']}", json={"content": "x"}, token=out)
    assert st in (403, 404), (st, doc)
    st, _, doc = delete(stack, f"/messages/{mp['id']}", token=out)
    assert st in (403, 404), (st, doc)
    assert api.table_counts(stack) == before, "an outsider changed something"
    assert api.find_message(stack, tok, pub["id"], mp["id"])["content"] == "public message"


@test
def other_tenants_not_testable():
    # docs/rooms.md scopes everything to "the tenant"; the test stack runs
    # ROOST_TENANT_MODE=single (host mode is a plug-in point in
    # lib/tenant.c, not implemented), so a second tenant cannot be made here.
    raise Skip("single-tenant stack: no second tenant to test isolation against")


@test
def workers_survived():
    assert stack.fcgi_pids() == PIDS, f"a worker died: {PIDS} -> {stack.fcgi_pids()}"


if __name__ == "__main__":
    run_tests(stack)
