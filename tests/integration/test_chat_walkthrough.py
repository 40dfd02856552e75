#!/usr/bin/python3
"""Integration: docs/examples/chat-walkthrough.sh (the issue's "done when":
rooms of each kind, invites, join by code with a password, the member cap,
messages, replies, edits, deletes, reactions, pins, mentions, paging back
through 1,000 messages with exact has_more, unread counts falling, search
with prefixes and quoted words, a visitor) runs clean against a fresh
stack, twice, puts the settings it raised back, and stops with a message
on an unexpected answer."""
import os
import subprocess

import api
from harness import REPO, Stack, run_tests, test

stack = Stack(workers=2)
SCRIPT = os.path.join(REPO, "docs", "examples", "chat-walkthrough.sh")


def run(email, password, **env):
    assert stack.redis_cli("FLUSHALL") == "OK"  # login counters: each run signs in 4 times
    e = dict(os.environ, BASE_URL=stack.url_base, ADMIN_EMAIL=email, ADMIN_PASSWORD=password,
             PYTHON="/usr/bin/python3")
    e.update(env)
    return subprocess.run(["bash", SCRIPT], env=e, capture_output=True, text=True, timeout=180)


def settings(token):
    st, _, s = api.get(stack, "/admin/settings", token=token)
    assert st == 200, (st, s)
    return s


@test
def walkthrough_runs_clean():
    email, password = api.make_admin(stack)
    token = api.login(stack, email, password, device="mobile")["token"]  # the script signs in on desktop
    before = settings(token)
    p = run(email, password)
    assert p.returncode == 0, f"exit {p.returncode}\n--- stdout:\n{p.stdout}\n--- stderr:\n{p.stderr}"
    out = p.stdout
    for line in ("== 1. The admin signs in",
                 "(error NOT_FOUND, as expected)",
                 "(error ROOM_FULL, as expected)",
                 "Ben is in; the room is now full (max_members=2)",
                 "PUT /messages/",
                 "Ben: 4 unread in the lobby, 1 mention(s)",
                 "read up to the greeting: unread 3, mentions 0",
                 "Ana and Ben sent 1000 messages",
                 "pages back to the start",
                 "(1000 text, the rest system), has_more=false on the last page",
                 "q=\"mount\": only the whole word",
                 "owner_id=",
                 "All steps answered as documented."):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert p.stderr == "", p.stderr
    after = settings(token)
    assert after == before, f"the script did not put the settings back:\n {before}\n {after}"
    # it runs again against the same server (unique names each run)
    p = run(email, password)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr


@test
def walkthrough_stops_on_an_unexpected_answer():
    email, _ = api.make_admin(stack)
    p = run(email, "not the password at all")
    assert p.returncode == 1, p.returncode
    assert "FAILED: expected HTTP 200, got 401" in p.stderr, p.stderr
    assert "UNAUTHORIZED" in p.stderr, "the body is shown"
    p = subprocess.run(["bash", SCRIPT], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert p.returncode != 0 and "BASE_URL" in p.stderr, p.stderr


if __name__ == "__main__":
    run_tests(stack)
