#!/usr/bin/python3
"""Integration: docs/examples/auth-walkthrough.sh runs clean against a
fresh stack (the issue's "done when", as a new user would run it), and
stops with a message on an unexpected answer."""
import os
import subprocess

import api
from harness import REPO, Stack, run_tests, test

stack = Stack(workers=2)
SCRIPT = os.path.join(REPO, "docs", "examples", "auth-walkthrough.sh")


def run(email, password):
    # only failed sign-ins are counted; start each run from clean counters
    # all the same
    assert stack.redis_cli("FLUSHALL") == "OK"
    env = dict(os.environ, BASE_URL=stack.url_base, ADMIN_EMAIL=email, ADMIN_PASSWORD=password,
               PYTHON="/usr/bin/python3")
    return subprocess.run(["bash", SCRIPT], env=env, capture_output=True, text=True, timeout=120)


@test
def walkthrough_runs_clean():
    email, password = api.make_admin(stack)
    p = run(email, password)
    assert p.returncode == 0, f"exit {p.returncode}\n--- stdout:\n{p.stdout}\n--- stderr:\n{p.stderr}"
    out = p.stdout
    for line in ("== 1. The admin signs in",
                 "POST /me/password -> 204",
                 "the mobile session is gone",
                 "POST /auth/logout -> 204",
                 "the desktop token is dead",
                 "a suspended member can neither use a token nor sign in",
                 'name "Deleted User", deleted=true',
                 "All steps answered as documented."):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert out.count("-> 401") == 3, out  # mobile after the change, desktop after logout, suspended token
    assert "(error SESSION" not in out and p.stderr == "", p.stderr
    # the script runs twice against the same server (unique emails each run)
    p = run(email, password)
    assert p.returncode == 0, p.stdout + p.stderr


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
