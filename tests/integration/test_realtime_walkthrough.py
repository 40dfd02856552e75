#!/usr/bin/python3
"""Integration: docs/examples/realtime-walkthrough.sh (the realtime issue's
"done when" with curl: two SSE streams with `curl -N` and one long-poll,
three users chatting, every event arriving, a resumed stream replaying
exactly the gap, a removed member stopping at once, typing and presence
showing up and expiring) runs clean through lighttpd with roost-relay, and
again with the workers serving the stream themselves (no relay)."""
import os
import subprocess

import api
from harness import REPO, Stack, run_tests, test

# Three waiting clients hold three workers in the no-relay run.
stack = Stack(workers=6, relay=True, env={"ROOST_SSE_HEARTBEAT_S": "2"})
SCRIPT = os.path.join(REPO, "docs", "examples", "realtime-walkthrough.sh")


def run(email, password, on=None):
    on = on or stack
    e = dict(os.environ, BASE_URL=on.url_base, ADMIN_EMAIL=email, ADMIN_PASSWORD=password,
             PYTHON="/usr/bin/python3")
    return subprocess.run(["bash", SCRIPT], env=e, capture_output=True, text=True, timeout=120)


def check(p):
    assert p.returncode == 0, f"exit {p.returncode}\n--- stdout:\n{p.stdout}\n--- stderr:\n{p.stderr}"
    for line in ("9 of 9 messages", "cy (long-poll): 9 of 9 messages",
                 "Ben got the 5 he missed, and nothing twice", "typing shown",
                 "Cy got member.left and nothing after it",
                 "Ben is offline; Ana's stream said so",
                 "realtime walkthrough: all steps passed"):
        assert line in p.stdout, f"missing {line!r} in:\n{p.stdout}"


@test
def walkthrough_with_the_relay():
    email, password = api.make_admin(stack)
    api.relax_limits(stack, api.login(stack, email, password, device="mobile")["token"])
    check(run(email, password))


@test
def walkthrough_without_a_relay():
    # A host where no daemon may run: the workers serve the stream.
    other = Stack(workers=6, env={"ROOST_SSE_HEARTBEAT_S": "2"}, relay=False)
    try:
        email, password = api.make_admin(other)
        api.relax_limits(other, api.login(other, email, password, device="mobile")["token"])
        check(run(email, password, on=other))
    finally:
        other.stop()


@test
def walkthrough_stops_on_an_unexpected_answer():
    email, _ = api.make_admin(stack)
    p = run(email, "not the password at all")
    assert p.returncode == 1, p.returncode
    assert "FAILED: expected HTTP 200, got 401" in p.stderr, p.stderr


if __name__ == "__main__":
    run_tests(stack)
