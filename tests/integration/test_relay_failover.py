#!/usr/bin/python3
"""Integration: a web server failing over between two relays, configured
as docs/deploy.md's "Failing over between relays" says, word for word.

The nginx and lighttpd blocks are taken from that section of
docs/deploy.md (the ports 8090 and 8091 replaced by this run's two
relays); nginx's events location is the rest of the shipped sample's
(httpd-conf/nginx.conf.in), with the proxy_pass the section gives.
Everything else (/api/...) goes to the stack's own lighttpd.

For each server: a client's SSE stream through it; the relay holding the
stream is killed with SIGKILL while a poster keeps posting; the stream
ends at once; the client reconnects through the same web server with
Last-Event-ID, as EventSource does, and its first attempt is answered
200 by the other relay (the web server skips the dead one); every
message arrives exactly once and in order across the two streams. While
the relay is down, new streams (and long-polls) through the web server
all get 200. Then the dead relay is started again on its port and takes
new streams once more.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import api
from harness import (REPO, SSEClient, Stack, Skip, free_port, longpoll, run_tests, start_listening,
                     test, wait_until)

stack = Stack(workers=2, relay=True)
ADMIN_EMAIL, ADMIN_PASSWORD = api.make_admin(stack)
_admin = api.login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
api.relax_limits(stack, _admin)
api.set_settings(stack, _admin, messages_per_10s=1000)
DOC = os.path.join(REPO, "docs", "deploy.md")


def doc_blocks(lang):
    """The fenced blocks of one language in the deploy page's failover
    section."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^### Failing over between relays\n(.*?)(?=^#{2,3} |\Z)", text, re.S | re.M)
    assert m, "docs/deploy.md has no section 'Failing over between relays'"
    blocks = re.findall(r"^```" + lang + r"\n(.*?)^```", m.group(1), re.S | re.M)
    assert blocks, f"no {lang} block in the failover section"
    return blocks


def with_ports(text, a, b):
    assert "8090" in text and "8091" in text, text
    return text.replace("8090", str(a)).replace("8091", str(b))


def sample_events_location():
    """The shipped nginx sample's events location, lines inside it."""
    with open(os.path.join(REPO, "httpd-conf", "nginx.conf.in"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"\n\tlocation = /api/v1/events \{\n(.*?)\n\t\}\n", text, re.S)
    assert m, "the sample has no events location"
    return m.group(1)


class Front:
    """nginx or lighttpd in front of the two relays, on a free port."""

    def __init__(self, kind, relay_a, relay_b):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"fo-{kind}-", dir=stack.dir)
        self.port = free_port()
        self.log = os.path.join(self.dir, "error.log")
        conf = os.path.join(self.dir, f"{kind}.conf")
        d = self.dir
        if kind == "nginx":
            exe = shutil.which("nginx") or "/usr/sbin/nginx"
            if not os.path.exists(exe):
                raise Skip("nginx is not installed")
            upstream, location = doc_blocks("nginx")
            assert "upstream roost_relay" in upstream and "proxy_pass http://roost_relay;" in location
            lines = [ln for ln in sample_events_location().splitlines()
                     if not ln.strip().startswith("proxy_pass ")]
            events = "location = /api/v1/events {\n\t\tproxy_pass http://roost_relay;\n" + \
                "\n".join(lines) + "\n\t}"
            text = f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {self.log} info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{with_ports(upstream, relay_a, relay_b)}
    server {{
        listen 127.0.0.1:{self.port};
        {events}
        location / {{
            proxy_pass http://127.0.0.1:{stack.port};
            proxy_buffering off;
        }}
    }}
}}
"""
            argv = [exe, "-p", d, "-e", self.log, "-c", conf]
        else:
            exe = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
            (block,) = doc_blocks("lighttpd")
            text = f"""server.modules = ("mod_proxy")
server.bind = "127.0.0.1"
server.port = {self.port}
server.document-root = "{d}"
server.errorlog = "{self.log}"
server.stream-response-body = 2
proxy.server = ("" => (("host" => "127.0.0.1", "port" => {stack.port})))
$HTTP["url"] == "/api/v1/events" {{
{with_ports(block, relay_a, relay_b)}
}}
"""
            argv = [exe, "-D", "-f", conf]
        with open(conf, "w") as f:
            f.write(text)
        self.proc = start_listening(argv, self.port, os.path.join(d, "stderr"),
                                    f"{kind} on {self.port}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def user():
    u, email, password = api.create_user(stack, _admin)
    return u, api.login(stack, email, password)["token"]


def cursor(token):
    st, _, doc = api.get(stack, "/rooms", token=token)
    assert st == 200, (st, doc)
    return doc["event_cursor"]


def msg_ids(events, room_id):
    out = []
    for e in events:
        d = e.json or {}
        if d.get("type") == "message.created" and d.get("room_id") == room_id:
            out.append(d["data"]["id"])
    return out


def connections(port):
    """The relay's open connections; -1 when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/relay/health", timeout=5) as r:
            return json.load(r)["connections"]
    except OSError:
        return -1


class Poster(threading.Thread):
    def __init__(self, token, room_id, n, rate):
        super().__init__(daemon=True)
        self.token, self.room_id, self.n, self.rate = token, room_id, n, rate
        self.ids = []
        self.error = None

    def run(self):
        try:
            for i in range(self.n):
                st, _, doc = api.send_resp(stack, self.token, self.room_id, f"failover {i}")
                assert st == 201, (st, doc)
                self.ids.append(doc["id"])
                time.sleep(1.0 / self.rate)
        except Exception as e:  # reported by the test
            self.error = e


class Relays:
    """The stack's relay (A) and one more (B); either can be killed and
    started again on its port."""

    def __init__(self):
        self.b = stack.spawn_relay(name="b")
        self.ports = {"a": stack.relay_port, "b": self.b.port}

    def alive(self, name):
        return stack.relay_pid() is not None if name == "a" else self.b.alive()

    def kill(self, name):
        if name == "a":
            stack.relay_kill(signal.SIGKILL)
        else:
            self.b.kill(signal.SIGKILL)

    def start(self, name):
        if name == "a":
            stack.relay_start(wait_proxy=False)
        else:
            self.b = stack.spawn_relay(port=self.ports["b"], name="b2")

    def holding(self, before):
        """The relay whose connection count went up since before."""
        now = {n: connections(p) for n, p in self.ports.items()}
        up = [n for n in now if now[n] > before[n] >= 0]
        return up[0] if len(up) == 1 else None

    def counts(self):
        return {n: connections(p) for n, p in self.ports.items()}


def failover(kind):
    relays = Relays()
    front = Front(kind, relays.ports["a"], relays.ports["b"])
    findings = []
    try:
        _, pt = user()
        _, ct = user()
        room = api.create_room(stack, pt)
        api.join_room(stack, ct, room["id"])
        before = relays.counts()
        c1 = SSEClient(front.port, token=ct, last_event_id=cursor(ct))
        assert c1.status == 200 and c1.is_stream, (c1.status, c1.body[:200])
        held = wait_until(lambda: relays.holding(before), timeout=5,
                          what="one relay holding the stream")
        other = "b" if held == "a" else "a"
        poster = Poster(pt, room["id"], 60, rate=30)
        poster.start()
        wait_until(lambda: len(poster.ids) >= 15, timeout=15, what="15 messages posted")
        c1.wait_for(lambda e: (e.json or {}).get("data", {}).get("id") == poster.ids[10],
                    timeout=5, what="the first messages on the first relay")
        relays.kill(held)
        t_kill = time.monotonic()
        assert c1.wait_closed(5), f"{kind}: the stream stayed open after kill -9 of relay {held}"
        findings.append(f"stream closed at the kill ({c1.closed_at - t_kill:+.2f}s)"
                        if c1.closed_at else "stream closed")
        first = msg_ids(c1.since(0), room["id"])
        # reconnect as EventSource does: one attempt, with Last-Event-ID
        c2 = SSEClient(front.port, token=ct, last_event_id=c1.last_id)
        assert c2.status == 200 and c2.is_stream, \
            f"{kind}: the reconnect after relay {held} died got {c2.status} {c2.body[:200]!r}"
        # new clients while one relay is down: every one served
        statuses = []
        extra = []
        for _ in range(6):
            c = SSEClient(front.port, token=ct, last_event_id=cursor(ct))
            statuses.append(c.status)
            extra.append(c)
            r = longpoll(front.port, token=ct, last_event_id=cursor(ct), timeout=0)
            statuses.append(r.status)
        assert statuses == [200] * len(statuses), f"{kind}, relay {held} down: {statuses}"
        for c in extra:
            c.close()
        poster.join(30)
        assert poster.error is None, poster.error
        assert len(poster.ids) == 60
        c2.wait_for(lambda e: (e.json or {}).get("data", {}).get("id") == poster.ids[-1],
                    timeout=10, what="the last message on the other relay")
        second = msg_ids(c2.since(0), room["id"])
        got = first + second
        assert len(got) == len(set(got)), \
            f"{kind}: {len(got) - len(set(got))} messages twice across the failover"
        assert got == poster.ids, \
            f"{kind}: {len(got)} of {len(poster.ids)} messages, in order: {got == sorted(got)}"
        assert relays.counts()[other] >= 1
        findings.append(f"{len(first)} messages before, {len(second)} after, each once")
        c2.close()
        # the dead relay back on its port: it takes streams again
        relays.start(held)
        wait_until(lambda: relays.alive(held), timeout=10, what=f"relay {held} back")
        time.sleep(5.5)  # nginx's fail_timeout for the dead server
        served = set()
        clients = []
        for _ in range(8):
            before = relays.counts()
            c = SSEClient(front.port, token=ct, last_event_id=cursor(ct))
            assert c.status == 200, c.status
            clients.append(c)
            h = wait_until(lambda: relays.holding(before), timeout=5, what="a relay holding it")
            served.add(h)
        for c in clients:
            c.close()
        assert served == {"a", "b"}, f"{kind}: after the restart new streams went to {served}"
        findings.append("the restarted relay takes streams again")
    finally:
        front.stop()
        if not relays.alive("a"):
            stack.relay_start(wait_proxy=False)
        relays.b.stop()
    print(f"# {kind}: " + "; ".join(findings))


@test
def nginx_fails_over_between_two_relays():
    failover("nginx")


@test
def lighttpd_fails_over_between_two_relays():
    failover("lighttpd")


if __name__ == "__main__":
    run_tests(stack)
