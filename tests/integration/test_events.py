#!/usr/bin/python3
"""Integration: the transactional outbox (docs/events.md). After each kind
of change the expected row appears in the tenant's `events` table with the
documented type, audience (room_id for a room, user_id for a user) and data
shape; failed requests write no event; and events are written in the same
transaction as their change: a burst of sends leaves exactly one
message.created per stored message, and when the event insert fails (a
test trigger makes it fail) the change itself is rolled back.

Readings of docs/events.md where it leaves room:
- `message.created` data is the message object exactly as the author's
  POST answer shows it, without the `client_msg_id` key (absent, or null:
  either way the id does not travel to the room).
- `pinned_by` in `pin.changed` is the pinner's id (or a user object with
  that id); on unpin only `pinned: false` is checked.
- `member.joined`'s `user_ids` lists exactly the users added by that one
  request; `by` is null for a self-join (also by invite code), the adder's
  id for POST /members. `member.left`'s `by` is null for a leave and the
  remover's id for a removal.
- PATCH {archived: true} writes `room.archived` (a `room.updated` may come
  along); the last member leaving writes `room.archived` too.
- `room.deleted` goes to every member the room had, one user-audience row
  each, and to nobody else.
- A no-op (joining a room I am in) is not a change and writes no event.
- Joins, leaves and removals also post a system message, so a
  `message.created` with type "system" accompanies them.
"""
import concurrent.futures
import json

import api
from api import delete, get, patch, post
from harness import Stack, run_tests, test

stack = Stack(workers=2)
PIDS = stack.fcgi_pids()
ADMIN_EMAIL, ADMIN_PASSWORD = api.make_admin(stack)
SCHEMA = stack.env_vars.get("ROOST_SCHEMA", "roost")
S = {}
ROOM_KEYS = {"id", "kind", "name", "topic", "owner_id", "managed", "max_members", "member_count",
             "has_password", "retention_hours", "archived", "is_default", "read_only", "created_at",
             "updated_at"}


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


def user(name=None):
    return api.member_session(stack, admin(), name=name)


def mark():
    """The newest event id now."""
    return int(api.sql(stack, "SELECT coalesce(max(id), 0) FROM events"))


def events_since(m, type=None):
    """Rows after mark m, in id order, as dicts."""
    where = f"id > {int(m)}" + (f" AND type = {api.q(type)}" if type else "")
    out = api.sql(stack, "SELECT coalesce(json_agg(json_build_object('id', id, 'room_id', room_id, "
                         "'user_id', user_id, 'type', type, 'data', data) ORDER BY id), '[]') "
                         f"FROM events WHERE {where}")
    return json.loads(out)


def one(m, type, room_id=None, user_id=None):
    """Exactly one event of this type since m (for this audience); returns it."""
    evs = [e for e in events_since(m, type)
           if (room_id is None or e["room_id"] == room_id) and (user_id is None or e["user_id"] == user_id)]
    assert len(evs) == 1, f"expected one {type} (room {room_id}, user {user_id}), got {evs} " \
                          f"(all since: {[e['type'] for e in events_since(m)]})"
    e = evs[0]
    if room_id is not None:
        assert e["user_id"] is None, f"a room event with a user audience too: {e}"
    if user_id is not None:
        assert e["room_id"] is None, f"a user event with a room audience too: {e}"
    return e


def without_cid(msg):
    return {k: v for k, v in msg.items() if k != "client_msg_id"}


def check_message_data(data, msg, what):
    assert data.get("client_msg_id") is None, f"{what}: client_msg_id travels to the room: {data}"
    assert without_cid(data) == without_cid(msg), f"{what}: event data != message\n {data}\n {msg}"


# ------------------------------------------------------------------ messages

@test
def message_created_updated_deleted():
    room = api.create_room(stack, user()[1])
    u, tok = user()
    api.join_room(stack, tok, room["id"])
    m0 = mark()
    msg = api.send(stack, tok, room["id"], "hello outbox", client_msg_id="outbox-1")
    e = one(m0, "message.created", room_id=room["id"])
    check_message_data(e["data"], msg, "message.created")
    assert len(events_since(m0)) == 1, f"one send, one event: {events_since(m0)}"
    # a retried send stores nothing and writes no event
    m1 = mark()
    st, _, _ = api.send_resp(stack, tok, room["id"], "hello outbox", client_msg_id="outbox-1")
    assert st == 200 and events_since(m1) == [], events_since(m1)
    m2 = mark()
    st, _, edited = patch(stack, f"/messages/{msg['id']}", {"content": "hello, edited"}, token=tok)
    assert st == 200
    e = one(m2, "message.updated", room_id=room["id"])
    assert e["data"]["id"] == msg["id"] and e["data"]["content"] == "hello, edited", e
    assert e["data"]["edited_at"] == edited["edited_at"], e
    check_message_data(e["data"], edited, "message.updated")
    m3 = mark()
    assert delete(stack, f"/messages/{msg['id']}", token=tok)[0] == 204
    e = one(m3, "message.deleted", room_id=room["id"])
    assert e["data"] == {"id": msg["id"], "room_id": room["id"]}, e


@test
def reactions_and_pins():
    _, tok = user()
    v, vt = user()
    room = api.create_room(stack, tok)
    api.join_room(stack, vt, room["id"])
    msg = api.send(stack, tok, room["id"], "react")
    m0 = mark()
    st, _, doc = api.request(stack, "PUT", f"/messages/{msg['id']}/reactions/star", token=vt)
    assert st == 200
    e = one(m0, "reaction.updated", room_id=room["id"])
    assert e["data"] == {"message_id": msg["id"], "reactions": doc["reactions"]}, e
    assert e["data"]["reactions"] == [{"emoji": "star", "count": 1, "user_ids": [v["id"]]}], e
    m1 = mark()
    st, _, doc = delete(stack, f"/messages/{msg['id']}/reactions/star", token=vt)
    e = one(m1, "reaction.updated", room_id=room["id"])
    assert e["data"] == {"message_id": msg["id"], "reactions": []}, e
    m2 = mark()
    assert api.request(stack, "PUT", f"/messages/{msg['id']}/pin", token=vt)[0] == 204
    e = one(m2, "pin.changed", room_id=room["id"])
    pb = e["data"]["pinned_by"]
    assert e["data"]["message_id"] == msg["id"] and e["data"]["pinned"] is True, e
    assert (pb.get("id") if isinstance(pb, dict) else pb) == v["id"], e
    assert set(e["data"]) == {"message_id", "pinned", "pinned_by"}, e
    m3 = mark()
    assert delete(stack, f"/messages/{msg['id']}/pin", token=tok)[0] == 204
    e = one(m3, "pin.changed", room_id=room["id"])
    assert e["data"]["message_id"] == msg["id"] and e["data"]["pinned"] is False, e


# ------------------------------------------------------------------ members

@test
def member_joined_and_left():
    owner, tok = user()
    j, jt = user(name="Joiner")
    a, _ = user()
    b, _ = user()
    room = api.create_room(stack, tok, kind="private")
    m0 = mark()
    api.join_by_code(stack, jt, room["invite_code"])
    e = one(m0, "member.joined", room_id=room["id"])
    assert e["data"] == {"room_id": room["id"], "user_ids": [j["id"]], "by": None}, e
    sys_ev = [x for x in events_since(m0, "message.created") if x["room_id"] == room["id"]]
    assert len(sys_ev) == 1 and sys_ev[0]["data"]["type"] == "system", f"the system message's event: {sys_ev}"
    m1 = mark()
    api.join_by_code(stack, jt, room["invite_code"])
    assert events_since(m1) == [], f"a no-op join wrote events: {events_since(m1)}"
    m2 = mark()
    api.add_members(stack, tok, room["id"], [a["id"], b["id"]])
    e = one(m2, "member.joined", room_id=room["id"])
    assert e["data"]["room_id"] == room["id"] and sorted(e["data"]["user_ids"]) == sorted([a["id"], b["id"]]) \
        and e["data"]["by"] == owner["id"], e
    m3 = mark()
    api.leave_room(stack, jt, room["id"])
    e = one(m3, "member.left", room_id=room["id"])
    assert e["data"] == {"room_id": room["id"], "user_ids": [j["id"]], "by": None}, e
    m4 = mark()
    api.remove_member(stack, tok, room["id"], a["id"])
    e = one(m4, "member.left", room_id=room["id"])
    assert e["data"] == {"room_id": room["id"], "user_ids": [a["id"]], "by": owner["id"]}, e


# ------------------------------------------------------------------ rooms

@test
def room_created_updated_archived_deleted():
    owner, tok = user()
    m1u, m1t = user()
    outsider, _ = user()
    m0 = mark()
    room = api.create_room(stack, tok, topic="first")
    e = one(m0, "room.created", room_id=room["id"])
    assert ROOM_KEYS <= set(e["data"]) and e["data"]["id"] == room["id"] and e["data"]["name"] == room["name"], e
    api.join_room(stack, m1t, room["id"])
    m1 = mark()
    st, _, doc = patch(stack, f"/rooms/{room['id']}", {"topic": "second"}, token=tok)
    assert st == 200
    e = one(m1, "room.updated", room_id=room["id"])
    assert e["data"]["id"] == room["id"] and e["data"]["topic"] == "second", e
    assert ROOM_KEYS <= set(e["data"]), e
    m2 = mark()
    st, _, doc = patch(stack, f"/rooms/{room['id']}", {"archived": True}, token=tok)
    assert st == 200
    e = one(m2, "room.archived", room_id=room["id"])
    assert e["data"] == {"room_id": room["id"]}, e
    m3 = mark()
    assert delete(stack, f"/rooms/{room['id']}", token=tok)[0] == 204
    evs = events_since(m3, "room.deleted")
    assert sorted(x["user_id"] for x in evs) == sorted([owner["id"], m1u["id"]]), \
        f"room.deleted goes to each former member (user audience): {evs}"
    for x in evs:
        assert x["room_id"] is None and x["data"] == {"room_id": room["id"]}, x
    # the last member leaving archives the room
    r2 = api.create_room(stack, tok)
    m4 = mark()
    api.leave_room(stack, tok, r2["id"])
    e = one(m4, "room.archived", room_id=r2["id"])
    assert e["data"] == {"room_id": r2["id"]}, e


@test
def read_updated_goes_to_the_user():
    _, tok = user()
    r, rt = user()
    room = api.create_room(stack, tok)
    api.join_room(stack, rt, room["id"])
    msgs = [api.send(stack, tok, room["id"], f"read me {i}") for i in range(3)]
    m0 = mark()
    api.mark_read(stack, rt, room["id"], msgs[1]["id"])
    e = one(m0, "read.updated", user_id=r["id"])
    assert e["data"] == {"room_id": room["id"], "last_read_message_id": msgs[1]["id"]}, e
    assert [x["type"] for x in events_since(m0)] == ["read.updated"], events_since(m0)


@test
def dm_and_visitor_messages_have_events():
    a, at = user()
    b, _ = user()
    m0 = mark()
    st, dm = api.open_dm(stack, at, b["id"])
    assert st == 201
    e = one(m0, "room.created", room_id=dm["id"])
    assert e["data"]["id"] == dm["id"] and e["data"]["kind"] == "dm", e
    room = api.create_room(stack, at)
    api.set_settings(stack, admin(), visitor_room_id=room["id"])
    try:
        stack.redis_cli("FLUSHALL")
        m1 = mark()
        st, _, doc = post(stack, "/visitor-messages", {"name": "V", "email": "v@example.org", "content": "hi"})
        assert st == 201, (st, doc)
        e = one(m1, "message.created", room_id=room["id"])
        assert e["data"]["id"] == doc["id"] and e["data"]["type"] == "visitor", e
        assert e["data"]["content"] == {"text": "hi", "name": "V", "email": "v@example.org"}, e
    finally:
        api.set_settings(stack, admin(), visitor_room_id=None)


@test
def messages_purged_by_run_jobs():
    _, tok = user()
    room = api.create_room(stack, tok, retention_hours=1)
    keep = api.create_room(stack, tok, retention_hours=1)
    old = [api.send(stack, tok, room["id"], f"old {i}") for i in range(3)]
    new = api.send(stack, tok, room["id"], "new")
    api.send(stack, tok, keep["id"], "recent")
    ids = ",".join(str(m["id"]) for m in old)
    api.sql(stack, f"UPDATE messages SET created_at = now() - interval '3 hours' WHERE id IN ({ids})")
    purged_before = int(api.sql(stack, f"SELECT count(*) FROM messages WHERE room_id = {room['id']} "
                                       "AND created_at < now() - interval '1 hour'"))
    m0 = mark()
    p = api.ctl(stack, "run-jobs")
    assert p.returncode == 0, (p.returncode, p.stderr)
    e = one(m0, "messages.purged", room_id=room["id"])
    assert e["data"] == {"room_id": room["id"], "up_to_id": old[-1]["id"], "count": purged_before}, e
    assert [x for x in events_since(m0) if x["room_id"] == keep["id"]] == [], "a room with nothing to purge"
    assert api.sql(stack, f"SELECT count(*) FROM messages WHERE id = {new['id']}") == "1"
    m1 = mark()
    assert api.ctl(stack, "run-jobs").returncode == 0
    assert events_since(m1, "messages.purged") == [], "a second run has nothing to purge"


# ------------------------------------------------------------------ failures write nothing

@test
def failed_requests_write_no_event():
    owner, tok = user()
    v, vt = user()
    _, xt = user()
    room = api.create_room(stack, tok, max_members=2)
    api.join_room(stack, vt, room["id"])
    msg = api.send(stack, tok, room["id"], "owner's")
    m0 = mark()
    for method, path, body, token, status in (
            ("POST", f"/rooms/{room['id']}/messages", {"type": "text", "content": ""}, vt, 400),
            ("POST", f"/rooms/{room['id']}/messages", {"type": "video", "content": "x"}, vt, 400),
            ("POST", f"/rooms/{room['id']}/messages", {"type": "text", "content": "x"}, xt, 403),
            ("PATCH", f"/messages/{msg['id']}", {"content": "not mine"}, vt, 403),
            ("PUT", f"/messages/{msg['id']}/reactions/rocket", None, vt, 400),
            ("POST", f"/rooms/{room['id']}/join", {}, xt, 409),
            ("PATCH", f"/rooms/{room['id']}", {"name": ""}, tok, 400),
            ("DELETE", f"/rooms/{room['id']}", None, vt, 403),
            ("POST", f"/rooms/{room['id']}/read", {"message_id": 987654321}, vt, (400, 404)),
            ("POST", "/visitor-messages", {"name": "V", "email": "v@example.org", "content": "x"}, None, 404)):
        st, _, doc = api.request(stack, method, path, json=body, token=token)
        ok = st in status if isinstance(status, tuple) else st == status
        assert ok, f"{method} {path}: expected {status}, got {st} {doc}"
        assert events_since(m0) == [], f"{method} {path} ({st}) wrote an event: {events_since(m0)}"


# ------------------------------------------------------------------ same transaction

@test
def burst_of_sends_one_event_per_message():
    people = [user() for _ in range(4)]
    room = api.create_room(stack, people[0][1], max_members=0)
    for _, t in people[1:]:
        api.join_room(stack, t, room["id"])
    api.set_settings(stack, admin(), messages_per_10s=15)
    stack.redis_cli("FLUSHALL")
    try:
        m0 = mark()

        def send(i):
            return api.send_resp(stack, people[i % 4][1], room["id"], f"burst {i}")[0]

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            statuses = list(ex.map(send, range(80)))
    finally:
        api.set_settings(stack, admin(), messages_per_10s=1000)
    assert statuses.count(201) >= 40 and set(statuses) <= {201, 429}, \
        f"80 sends by 4 users limited to 15 each: {sorted(set(statuses))} {statuses.count(201)} x 201"
    stored = api.sql(stack, f"SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM messages "
                            f"WHERE room_id = {room['id']} AND id > (SELECT coalesce(max(id), 0) FROM messages "
                            f"WHERE room_id = {room['id']} AND type = 'system')")
    stored = [int(x) for x in stored.split(",") if x]
    evs = [e for e in events_since(m0, "message.created") if e["room_id"] == room["id"]]
    assert len(stored) == statuses.count(201), f"{len(stored)} stored, {statuses.count(201)} acknowledged"
    assert sorted(e["data"]["id"] for e in evs) == stored, \
        f"one message.created per stored message: {len(evs)} events, {len(stored)} messages"


POISON_SQL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.test_poison (type text, marker text);
CREATE OR REPLACE FUNCTION {SCHEMA}.test_poison_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM {SCHEMA}.test_poison p
             WHERE p.type = NEW.type OR (p.marker IS NOT NULL AND NEW.data::text LIKE '%' || p.marker || '%'))
  THEN RAISE EXCEPTION 'test: event insert refused';
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS test_poison_trg ON {SCHEMA}.events;
CREATE TRIGGER test_poison_trg BEFORE INSERT ON {SCHEMA}.events
  FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.test_poison_fn()
"""
UNPOISON_SQL = f"""
DROP TRIGGER IF EXISTS test_poison_trg ON {SCHEMA}.events;
DROP FUNCTION IF EXISTS {SCHEMA}.test_poison_fn();
DROP TABLE IF EXISTS {SCHEMA}.test_poison
"""


@test
def a_failed_event_insert_rolls_the_change_back():
    owner, tok = user()
    v, vt = user()
    room = api.create_room(stack, tok)
    api.join_room(stack, vt, room["id"])
    msg = api.send(stack, tok, room["id"], "target")
    stack.psql(POISON_SQL)
    try:
        stack.psql(f"INSERT INTO {SCHEMA}.test_poison (marker) VALUES ('poison-pill-7731')")
        before = api.table_counts(stack)
        st, _, doc = api.send_resp(stack, vt, room["id"], "this carries poison-pill-7731")
        assert 500 <= st < 600, f"the event insert failed, so the send must fail: {st} {doc}"
        api.err(doc)
        assert api.table_counts(stack) == before, "the message was stored without its event"
        assert api.sql(stack, "SELECT count(*) FROM messages WHERE body LIKE '%poison-pill-7731%'") == "0"
        for typ, method, path, check in (
                ("reaction.updated", "PUT", f"/messages/{msg['id']}/reactions/heart",
                 f"SELECT count(*) FROM reactions WHERE message_id = {msg['id']}"),
                ("pin.changed", "PUT", f"/messages/{msg['id']}/pin",
                 f"SELECT count(*) FROM pins WHERE message_id = {msg['id']}"),
                ("message.updated", "PATCH", f"/messages/{msg['id']}",
                 f"SELECT count(*) FROM messages WHERE id = {msg['id']} AND edited_at IS NOT NULL"),
                ("message.deleted", "DELETE", f"/messages/{msg['id']}",
                 f"SELECT count(*) FROM messages WHERE id = {msg['id']} AND deleted_at IS NOT NULL"),
                ("member.left", "POST", f"/rooms/{room['id']}/leave",
                 f"SELECT count(*) - 2 FROM room_members WHERE room_id = {room['id']}"),
                ("read.updated", "POST", f"/rooms/{room['id']}/read",
                 f"SELECT count(*) FROM room_members WHERE room_id = {room['id']} AND last_read_message_id >= {msg['id']} "
                 f"AND user_id = {v['id']}")):
            stack.psql(f"DELETE FROM {SCHEMA}.test_poison; INSERT INTO {SCHEMA}.test_poison (type) VALUES "
                       f"({api.q(typ)})")
            token = tok if typ in ("message.updated", "message.deleted") else vt
            body = {"content": "edited"} if method == "PATCH" else \
                {"message_id": msg["id"]} if typ == "read.updated" else None
            before = api.table_counts(stack)
            st, _, doc = api.request(stack, method, path, json=body, token=token)
            assert 500 <= st < 600, f"{method} {path} with {typ} failing: {st} {doc}"
            assert api.sql(stack, check) == "0", f"{method} {path}: the change stayed without its {typ} event"
            assert api.table_counts(stack) == before, f"{method} {path}: rows changed"
    finally:
        stack.psql(UNPOISON_SQL)
    st, _, doc = api.send_resp(stack, vt, room["id"], "healthy again")
    assert st == 201, (st, doc)


@test
def workers_survived():
    assert stack.fcgi_pids() == PIDS, f"a worker died: {PIDS} -> {stack.fcgi_pids()}"


if __name__ == "__main__":
    run_tests(stack)
