#!/usr/bin/python3
"""Many event streams, and slow clients, for the capacity tests (stdlib only).

    s = Streams(port, token, 2000)    # 2,000 SSE streams, opened 200 at a time
    assert not s.failed, s.why        # .ok: the open sockets
    s.close()

    took, sent, got = trickle(port, head, gap=3.0, limit=15)

Streams(port, token, n, path="/api/v1/events", window=200, deadline=45,
        stall=10)
    Opens n Server-Sent Events streams (GET path, Accept:
    text/event-stream, Authorization: Bearer token) to 127.0.0.1:port from
    this process with non-blocking sockets and one selector, at most
    `window` requests outstanding. A stream counts as open when its
    response head says 200 and text/event-stream; nothing after the head
    is read (the kernel keeps the heartbeats). Gives up on the ones still
    waiting after `deadline` s, or once none has answered for `stall` s.
    .ok (open sockets), .failed (count), .why (the first failure),
    .took (seconds). Mind this process's open-file limit (n + a few).

trickle(port, data, gap, limit, first=b"") -> (seconds until the server
    closed, or None if it had not after `limit` s; bytes of data sent;
    bytes received)
    Sends data one byte every `gap` s on a new connection; with `first`,
    sends that whole and reads its answer's head before (a first request
    on a kept-alive connection).

slow_pieces(port, pieces, gap, timeout=20) -> the response head
    Sends each piece `gap` s after the one before and reads the answer's
    head (e.g. a request head, then its body in two pieces)."""
import errno
import os
import selectors
import socket
import time


class Streams:
    def __init__(self, port, token, n, path="/api/v1/events", window=200, deadline=45.0,
                 stall=10.0):
        self.ok, self.failed, self.why = [], 0, None
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
        sel = selectors.DefaultSelector()
        pending = {}   # socket -> [bytes still to send, bytes read]
        started = 0
        t0 = time.monotonic()
        end = t0 + deadline
        last_done, stall_at = 0, t0 + stall
        late = f"no response head within {deadline:.0f} s"
        try:
            while len(self.ok) + self.failed < n:
                done = len(self.ok) + self.failed
                if done != last_done:
                    last_done, stall_at = done, time.monotonic() + stall
                elif time.monotonic() > stall_at:
                    late = f"no response head, and none came for {stall:.0f} s"
                    break
                while started < n and len(pending) < window:
                    started += 1
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    rc = s.connect_ex(("127.0.0.1", port))
                    if rc not in (0, errno.EINPROGRESS):
                        s.close()
                        self._fail(f"connect: {os.strerror(rc)}")
                        continue
                    pending[s] = [req, b""]
                    sel.register(s, selectors.EVENT_WRITE)
                left = end - time.monotonic()
                if left <= 0:
                    break
                for key, ev in sel.select(timeout=min(1.0, left)):
                    self._step(sel, pending, key.fileobj, ev)
        finally:
            for s in list(pending):
                self._drop(sel, pending, s, late)
            self.failed += n - started
            sel.close()
            self.took = time.monotonic() - t0

    def _step(self, sel, pending, s, ev):
        st = pending[s]
        try:
            if ev & selectors.EVENT_WRITE and st[0]:
                st[0] = st[0][s.send(st[0]):]
                if not st[0]:
                    sel.modify(s, selectors.EVENT_READ)
                return
            data = s.recv(65536)
        except OSError as e:
            data, why = None, f"socket: {e}"
        else:
            why = "closed before the response head"
        if not data:
            self._drop(sel, pending, s, why)
            return
        st[1] += data
        if b"\r\n\r\n" not in st[1]:
            return
        head = st[1].split(b"\r\n\r\n", 1)[0].decode("latin-1")
        if head.startswith("HTTP/1.1 200") and "text/event-stream" in head.lower():
            sel.unregister(s)
            del pending[s]
            self.ok.append(s)
        else:
            self._drop(sel, pending, s, head.split("\r\n", 1)[0])

    def _fail(self, why):
        self.failed += 1
        if self.why is None:
            self.why = why

    def _drop(self, sel, pending, s, why):
        sel.unregister(s)
        del pending[s]
        s.close()
        self._fail(why)

    def close(self):
        for s in self.ok:
            s.close()
        self.ok = []


def trickle(port, data, gap, limit, first=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    got = b""
    sent = 0
    try:
        if first:
            s.sendall(first)
            while b"\r\n\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    return 0.0, 0, got
                got += chunk
        t0 = time.monotonic()
        s.settimeout(0.05)
        next_at = t0
        while time.monotonic() - t0 < limit:
            now = time.monotonic()
            if sent < len(data) and now >= next_at:
                try:
                    s.sendall(data[sent:sent + 1])
                except OSError:
                    return now - t0, sent, got
                sent += 1
                next_at += gap
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return time.monotonic() - t0, sent, got
            if not chunk:
                return time.monotonic() - t0, sent, got
            got += chunk
        return None, sent, got
    finally:
        s.close()


def slow_pieces(port, pieces, gap, timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        for i, p in enumerate(pieces):
            if i:
                time.sleep(gap)
            s.sendall(p)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        s.close()
