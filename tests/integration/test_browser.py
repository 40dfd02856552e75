#!/usr/bin/python3
"""The web client (web/) in a real browser.

Starts Stack(relay=True) (lighttpd serves web/ and the API, roost-relay the
event stream), makes two users and their rooms through the API, then runs
`node tests/browser/run.mjs <base-url> <config.json>`: Debian's chromium
driven by playwright-core, two browser contexts signed in as Ana and Ben.
Each scenario of run.mjs is one TAP test here. The runner asks this file to
kill and restart the relay, restart Redis (the client goes on, no resync)
and empty it (a resync), mid-session (@@cmd lines, answered on its stdin); the offline scenario is checked against the API afterwards
(exactly one stored message with its text).
The admin (api.make_admin, its email and password passed to the runner)
creates a user in the admin pages and DMs them (issue #7); checked in the API
(the user exists, their own password in force, one stored copy of each message).

Fails loudly, never skips, when node, chromium or tests/browser/node_modules
are missing (node_modules is installed with `npm ci` when absent). Bounded:
everything ends within DEADLINE_S seconds of the start.
Screenshots go to tests/browser/artifacts/ (phone.png, desktop.png, ...).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from harness import REPO, Stack, run_tests, test
import api

T0 = time.monotonic()
DEADLINE_S = 110
BROWSER_DIR = os.path.join(REPO, "tests", "browser")
RUNNER = os.path.join(BROWSER_DIR, "run.mjs")
ARTIFACTS = os.path.join(BROWSER_DIR, "artifacts")
CHROMIUM = os.environ.get("ROOST_CHROMIUM", "/usr/bin/chromium")
SCENARIOS = [
    "first_screen_budget",
    "sign_in_and_room_list",
    "live_messages",
    "typing_and_presence",
    "reactions_live",
    "edit_and_delete_live",
    "failed_send_offers_retry",
    "offline_message_sent_once",
    "relay_restart_mid_session",
    "redis_restart_goes_on",
    "redis_flush_resyncs",
    "xss_stays_text",
    "history_scrolls_back_keeping_position",
    "keyboard_only",
    "screenshots_phone_and_desktop",
    "admin_creates_user_then_dm_live",
    "session_ended_elsewhere_signs_the_tab_out",
]


def remaining():
    return DEADLINE_S - (time.monotonic() - T0)


def preflight():
    """node, chromium and playwright-core must be there: no silent skip."""
    node = shutil.which("node")
    if not node:
        raise RuntimeError("node is not installed: run scripts/install-deps --test (Debian packages nodejs npm)")
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/install-deps --test (Debian package chromium)")
    if not os.path.isfile(os.path.join(BROWSER_DIR, "node_modules", "playwright-core", "package.json")):
        npm = shutil.which("npm")
        if not npm:
            raise RuntimeError("tests/browser/node_modules is missing and npm is not installed: run scripts/install-deps --test")
        sys.stdout.write("# tests/browser/node_modules is missing: npm ci --prefix tests/browser\n")
        sys.stdout.flush()
        p = subprocess.run([npm, "ci", "--prefix", BROWSER_DIR, "--no-audit", "--no-fund"],
                           capture_output=True, text=True, timeout=90)
        if p.returncode != 0:
            raise RuntimeError(f"npm ci --prefix tests/browser failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return node


try:
    NODE = preflight()
except (RuntimeError, OSError, subprocess.SubprocessError) as _e:
    # TAP: the whole file failed, loudly (never a skip)
    _lines = str(_e).splitlines() or [type(_e).__name__]
    sys.stdout.write(f"Bail out! browser tests cannot run: {_lines[0]}\n")
    for _line in _lines[1:]:
        sys.stdout.write(f"# {_line}\n")
    sys.exit(1)
stack = Stack(relay=True)

# ------------------------------------------------------------------ data
admin_email, admin_password = api.make_admin(stack)
admin = api.login(stack, admin_email, admin_password, device="mobile")
api.relax_limits(stack, admin["token"])
api.set_settings(stack, admin["token"], messages_per_10s=1000)
ana, ana_email, ana_pw = api.create_user(stack, admin["token"], name="Ana")
ben, ben_email, ben_pw = api.create_user(stack, admin["token"], name="Ben")
# API sessions on the "mobile" class, so the browsers' desktop sign-ins
# do not displace them
ana_tok = api.login(stack, ana_email, ana_pw, device="mobile")["token"]
ben_tok = api.login(stack, ben_email, ben_pw, device="mobile")["token"]

team = api.create_room(stack, ana_tok, name="Team")
api.join_room(stack, ben_tok, team["id"])
SEED = "Welcome to the team room"
api.send(stack, ana_tok, team["id"], SEED)
xss = api.create_room(stack, ana_tok, name="<img src=x onerror=alert(9)>")
api.join_room(stack, ben_tok, xss["id"])
history = api.create_room(stack, ana_tok, name="History")
api.join_room(stack, ben_tok, history["id"])
HISTORY_COUNT = 130
api.bulk_send(stack, [ana_tok, ben_tok], history["id"], HISTORY_COUNT, text="history {i}")


# ------------------------------------------------------------------ the runner
class Runner:
    """node run.mjs, its @@result lines, and the @@cmd it asks of us."""

    def __init__(self):
        only = [a for a in sys.argv[1:] if a in SCENARIOS]
        cfg = {
            "chromium": CHROMIUM,
            "artifacts": ARTIFACTS,
            "scenarios": only,
            "users": {
                "ana": {"id": ana["id"], "email": ana_email, "password": ana_pw, "name": "Ana"},
                "ben": {"id": ben["id"], "email": ben_email, "password": ben_pw, "name": "Ben"},
                "admin": {"id": admin["user"]["id"], "email": admin_email, "password": admin_password, "name": "Admin"},
            },
            "rooms": {
                "team": {"id": team["id"], "name": team["name"], "seed": SEED},
                "xss": {"id": xss["id"], "name": xss["name"]},
                "history": {"id": history["id"], "name": history["name"], "count": HISTORY_COUNT},
            },
        }
        self.cfg_path = os.path.join(stack.dir, "browser-config.json")
        with open(self.cfg_path, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        self.results = {}
        self.lines = []
        self.stderr = []
        self.done = threading.Event()
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [NODE, RUNNER, stack.url("/"), self.cfg_path], cwd=BROWSER_DIR,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("@@result "):
                doc = json.loads(line[9:])
                with self.cond:
                    self.results[doc["name"]] = doc
                    self.cond.notify_all()
            elif line.startswith("@@cmd "):
                self._command(json.loads(line[6:]))
            else:
                self.lines.append(line)
        self.proc.wait()
        with self.cond:
            self.done.set()
            self.cond.notify_all()

    def _command(self, doc):
        answer = {"id": doc["id"], "ok": True}
        try:
            if doc["cmd"] == "relay_kill":
                answer["result"] = stack.relay_kill(signal.SIGKILL)
            elif doc["cmd"] == "relay_start":
                stack.relay_start()
            elif doc["cmd"] == "redis_restart":
                stack.redis_stop()
                stack.redis_start()
            elif doc["cmd"] == "redis_flush":
                stack.redis_cli("FLUSHALL")
            else:
                raise ValueError(f"unknown command {doc['cmd']!r}")
        except Exception as e:  # reported to the runner, which fails the scenario
            answer = {"id": doc["id"], "ok": False, "error": f"{type(e).__name__}: {e}"}
        self.lines.append(f"# stack: {doc['cmd']} -> {'ok' if answer['ok'] else answer['error']}")
        try:
            self.proc.stdin.write(json.dumps(answer) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass

    def result(self, name):
        with self.cond:
            while name not in self.results and not self.done.is_set():
                left = remaining()
                if left <= 0:
                    break
                self.cond.wait(timeout=min(left, 1.0))
            res = self.results.get(name)
        if res is None:
            if not self.done.is_set():
                self.kill()
                raise AssertionError(f"{name}: no result within the {DEADLINE_S}s budget; browser runner killed\n"
                                     + self.output())
            raise AssertionError(f"{name}: the browser runner ended (exit {self.proc.returncode}) without this result\n"
                                 + self.output())
        if not res["ok"]:
            raise AssertionError(f"{name} failed in the browser ({res.get('ms')} ms):\n{res.get('error')}\n"
                                 f"(screenshots: tests/browser/artifacts/failed-{name}-*.png)\n" + self.output())
        return res

    def output(self):
        text = "\n".join(self.lines[-40:])
        if self.stderr:
            text += "\n--- runner stderr:\n" + "\n".join(self.stderr[-40:])
        return text

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(timeout=10)


_runner = []


def runner():
    if not _runner:
        _runner.append(Runner())
    return _runner[0]


def scenario(name, check=None):
    def fn():
        res = runner().result(name)
        if res.get("ms") is not None:
            sys.stdout.write(f"# {name}: {res['ms']} ms in the browser\n")
        if res.get("data"):
            sys.stdout.write(f"# {name}: {json.dumps(res['data'])}\n")
        if check:
            check(res.get("data") or {})
    fn.__name__ = name
    return test(fn)


def offline_check(data):
    """The message typed offline is stored exactly once (client_msg_id)."""
    text = data["text"]
    doc = api.messages(stack, ben_tok, team["id"], limit=100)
    same = [m for m in doc["messages"] if m["content"] == text]
    assert len(same) == 1, f"{len(same)} stored messages have the text {text!r}"


def admin_dm_check(data):
    """Issue #7: the user the admin made in the UI exists (member, own
    password in force), and the DM holds exactly one stored copy of each
    message."""
    users = api.get(stack, "/users" + api.qs(q=data["email"]), token=admin["token"])[2]["users"]
    made = [u for u in users if u.get("email") == data["email"]]
    assert len(made) == 1 and made[0]["name"] == data["name"] and made[0]["role"] == "member", made
    assert not made[0].get("must_change_password"), made[0]
    doc = api.messages(stack, admin["token"], data["room_id"], limit=100)
    for text in data["texts"]:
        same = [m for m in doc["messages"] if m["content"] == text]
        assert len(same) == 1, f"{len(same)} stored messages have the text {text!r}"


CHECKS = {"offline_message_sent_once": offline_check, "admin_creates_user_then_dm_live": admin_dm_check}
for _name in SCENARIOS:
    scenario(_name, CHECKS.get(_name))


@test
def browser_runner_exits_cleanly():
    r = runner()
    deadline = max(1.0, remaining())
    r.done.wait(timeout=deadline)
    if not r.done.is_set():
        r.kill()
        raise AssertionError(f"the browser runner did not end within the budget\n{r.output()}")
    fatal = [line for line in r.lines if line.startswith("@@fatal")]
    assert not fatal, "\n".join(fatal) + "\n" + r.output()
    assert r.proc.returncode == 0, f"runner exit {r.proc.returncode}\n{r.output()}"
    sys.stdout.write(f"# whole file: {time.monotonic() - T0:.1f}s\n")


if __name__ == "__main__":
    try:
        run_tests(stack)
    finally:
        for r in _runner:
            r.kill()
