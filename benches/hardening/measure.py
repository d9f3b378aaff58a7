#!/usr/bin/env python3
"""Memory and stall figures of a NATS server under hostile or unlucky clients.

Runs nine scenarios against each server given (natsws and/or nats-server, ideally release
builds) and prints a markdown table:

1. ping flood: a WebSocket connection sends masked empty PINGs and never reads, once before
   CONNECT and once after; RSS growth of the server and the slowest PING/PONG round trip
   another client saw meanwhile;
2. pipelined monitoring requests: one socket sends 4 MiB of `GET /varz` and never reads;
3. bcrypt queue: 100 wrong-password CONNECTs arrive at once; how long a returning user, and
   a user from another address (127.0.0.2), then wait to be let in;
4. closing connections: how long a connection closed with output it cannot send keeps its
   descriptor on an otherwise idle server;
5. subscription spike: RSS per subscription for 100,000 subscriptions, and RSS still held
   once they are gone;
6. big monitoring render: 10,000 connections with 10 subscriptions each, `/connz?subs=detail`
   for all of them asked three times; how long a reply takes, and the slowest PING/PONG round
   trip of another client meanwhile;
7. large compressed batch: a WebSocket client sends one compressed message that inflates to
   over 30 MiB of PUBs (300,000); how long until a subscriber has them all, and the slowest
   round trip of another client meanwhile;
8. big subscription list: 100,000 subscriptions over 10 connections, `/subsz?subs=1` for all
   of them asked three times; how long a reply takes, and the slowest round trip of another
   client meanwhile;
9. waiting /connz pages: 500 closed connections that held 100 subscriptions each, and 20
   monitoring connections asking at once for `/connz?state=closed&subs=1` of all of them;
   the server's RSS growth.

`--only NAME[,NAME]` runs some of them (names: ping, varz, bcrypt, linger, subs, connz,
inflate, subsz, waiting).

Loopback only, Linux only (/proc). Python standard library only.

    python3 benches/hardening/measure.py --natsws target/release/natsws \\
        --nats-server /usr/sbin/nats-server
"""

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import zlib

MIB = 1024 * 1024

# bcrypt (cost 10) of "alicepw" and "bobpw"; the passwords are only used by this script.
ALICE_HASH = "$2b$10$abcdefghijklmnopqrstuuezCGi9Dx3nxctfg6X8kmagvOOxPAAKu"
BOB_HASH = "$2b$10$zyxwvutsrqponmlkjihgfeiUgR6xEQ9NnQX0KtuHQM7ALwOY6n7UG"

BASE_CONF = 'listen: "127.0.0.1:-1"\nhttp: "127.0.0.1:-1"\n'
WS_CONF = BASE_CONF + 'websocket { listen: "127.0.0.1:-1", no_tls: true }\nwrite_deadline: "2s"\n'
BCRYPT_CONF = BASE_CONF + (
    "authorization {\n  timeout: 30\n  users: [\n"
    f'    {{user: alice, password: "{ALICE_HASH}"}}\n'
    f'    {{user: bob, password: "{BOB_HASH}"}}\n'
    "  ]\n}\n"
)
LINGER_CONF = BASE_CONF + 'write_deadline: "2s"\n'
DEFLATE_CONF = BASE_CONF + 'websocket { listen: "127.0.0.1:-1", no_tls: true, compression: true }\n'


class Server:
    """A server started from a config file on random loopback ports; stopped by stop()."""

    def __init__(self, program, conf):
        self.dir = tempfile.mkdtemp(prefix="hardening-")
        path = os.path.join(self.dir, "server.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(
            [program, "-c", path, "--ports_file_dir", self.dir, "-l",
             os.path.join(self.dir, "server.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            found = glob.glob(os.path.join(self.dir, f"*_{self.proc.pid}.ports"))
            if found:
                try:
                    with open(found[0]) as f:
                        self.ports = json.load(f)
                    break
                except ValueError:
                    pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{program} did not start")
            time.sleep(0.02)

    def port(self, key):
        return int(self.ports[key][0].rsplit(":", 1)[1])

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def varz(self):
        s = socket.create_connection(("127.0.0.1", self.port("monitoring")), timeout=10)
        s.sendall(b"GET /varz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
        s.close()
        return json.loads(raw.split(b"\r\n\r\n", 1)[1])

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Client:
    """A raw NATS client that has read INFO."""

    def __init__(self, port, source="127.0.0.1", rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((source, 0))
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        assert self.line().startswith(b"INFO ")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def reply(self):
        """The first line other than the server's own keep-alive PING."""
        while (line := self.line()) == b"PING\r\n":
            self.sock.sendall(b"PONG\r\n")
        return line

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


class Sampler(threading.Thread):
    """Calls `sample` every `period` seconds until stopped; keeps the largest value."""

    def __init__(self, sample, period):
        super().__init__(daemon=True)
        self.sample, self.period = sample, period
        self.stopped = threading.Event()
        self.peak = 0.0

    def run(self):
        while not self.stopped.is_set():
            self.peak = max(self.peak, self.sample())
            time.sleep(self.period)

    def stop(self):
        self.stopped.set()
        self.join()
        return self.peak


def stall_probe(port):
    """A sampler of another client's PING/PONG round trip, in seconds."""
    client = Client(port)
    client.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    assert client.reply() == b"PONG\r\n"

    def round_trip():
        start = time.monotonic()
        try:
            client.send(b"PING\r\n")
            ok = client.reply() == b"PONG\r\n"
        except OSError:
            ok = False
        return time.monotonic() - start if ok else 30.0

    return Sampler(round_trip, 0.02)


def settle(sampler, quiet=2.0, cap=20.0):
    """Waits until `sampler`'s peak has not grown for `quiet` seconds (at most `cap`): the
    server may still be working through what the kernel buffered for it."""
    start = last_change = time.monotonic()
    peak = sampler.peak
    while time.monotonic() - last_change < quiet and time.monotonic() - start < cap:
        time.sleep(0.1)
        if sampler.peak > peak:
            peak, last_change = sampler.peak, time.monotonic()


def flood(sock, chunk, total, seconds):
    """Writes `chunk` repeatedly without blocking until `total` bytes, a write error or
    `seconds`; returns the bytes written."""
    sock.setblocking(False)
    written, offset = 0, 0
    deadline = time.monotonic() + seconds
    while written < total and time.monotonic() < deadline:
        try:
            n = sock.send(chunk[offset:])
            written += n
            offset = (offset + n) % len(chunk)
        except BlockingIOError:
            time.sleep(0.002)
        except OSError:
            break
    return written


def ws_connect(port, extra=b""):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        + extra + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def masked_frame(opcode, data, rsv1=False):
    key = b"\x12\x34\x56\x78"
    first = 0x80 | opcode | (0x40 if rsv1 else 0)
    if len(data) < 126:
        head = bytes([first, 0x80 | len(data)])
    elif len(data) < 65536:
        head = bytes([first, 0x80 | 126]) + len(data).to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + len(data).to_bytes(8, "big")
    # XOR as one big integer: fast enough for megabytes in pure Python.
    pad = (key * (len(data) // 4 + 1))[:len(data)]
    masked = (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(len(data), "big")
    return head + key + masked


def ping_flood(program, connect_first, megabytes):
    srv = Server(program, WS_CONF)
    try:
        ws = ws_connect(srv.port("websocket"))
        if connect_first:
            ws.sendall(masked_frame(0x2, b'CONNECT {"verbose":false}\r\n'))
        probe = stall_probe(srv.port("nats"))
        time.sleep(0.1)
        base = srv.rss()
        peak = Sampler(srv.rss, 0.01)
        probe.start()
        peak.start()
        pings = masked_frame(0x9, b"") * (16 * 1024)
        sent = flood(ws, pings, megabytes * MIB, 20)
        settle(peak)
        return {"growth": (peak.stop() - base) / MIB, "stall": probe.stop(), "sent": sent / MIB}
    finally:
        srv.stop()


def pipelined_varz(program):
    srv = Server(program, WS_CONF)
    try:
        probe = stall_probe(srv.port("nats"))
        http = socket.create_connection(("127.0.0.1", srv.port("monitoring")))
        time.sleep(0.1)
        base = srv.rss()
        peak = Sampler(srv.rss, 0.01)
        probe.start()
        peak.start()
        requests = b"GET /varz HTTP/1.1\r\nHost: x\r\n\r\n" * 1024
        sent = flood(http, requests, 4 * MIB, 20)
        settle(peak)
        return {"growth": (peak.stop() - base) / MIB, "stall": probe.stop(), "sent": sent / MIB}
    finally:
        srv.stop()


def login(port, user, password, source="127.0.0.1"):
    """Seconds until `user` is let in, or None if not within the client's 30 s timeout."""
    start = time.monotonic()
    client = Client(port, source)
    client.send(b'CONNECT {"verbose":false,"user":"%s","pass":"%s"}\r\nPING\r\n'
                % (user.encode(), password.encode()))
    try:
        reply = client.reply()
    except TimeoutError:
        return None
    finally:
        client.close()
    assert reply == b"PONG\r\n", reply
    return time.monotonic() - start


def wrong_logins(port, n):
    clients = [Client(port) for _ in range(n)]
    for c in clients:
        c.send(b'CONNECT {"verbose":false,"user":"alice","pass":"wrong"}\r\nPING\r\n')
    return clients


def bcrypt_queue(program):
    srv = Server(program, BCRYPT_CONF)
    try:
        port = srv.port("nats")
        login(port, "alice", "alicepw")
        queued = wrong_logins(port, 100)
        returning = login(port, "alice", "alicepw")
        for c in queued:
            c.close()
    finally:
        srv.stop()
    srv = Server(program, BCRYPT_CONF)
    try:
        port = srv.port("nats")
        queued = wrong_logins(port, 100)
        other_source = login(port, "bob", "bobpw", source="127.0.0.2")
        for c in queued:
            c.close()
    finally:
        srv.stop()
    return {"returning": returning, "other_source": other_source}


def closing_linger(program, cap=10.0):
    """Seconds until a connection closed with unsendable output gives back its descriptor."""
    srv = Server(program, LINGER_CONF)
    try:
        time.sleep(0.2)
        base = srv.fds()
        slow = Client(srv.port("nats"), rcvbuf=4096)
        slow.send(b'CONNECT {"verbose":false}\r\nSUB flood 1\r\nPING\r\n')
        assert slow.reply() == b"PONG\r\n"
        publ = Client(srv.port("nats"))
        payload = b"z" * 65536
        publ.send(b'CONNECT {"verbose":false}\r\n')
        # 3.5 MiB: more than the sockets hold, less than a slow consumer.
        for _ in range(56):
            publ.send(b"PUB flood 65536\r\n" + payload + b"\r\n")
        publ.send(b"PING\r\n")
        assert publ.reply() == b"PONG\r\n"
        publ.close()
        time.sleep(0.1)
        slow.send(b"BOGUS\r\n")
        start = time.monotonic()
        while srv.fds() > base and time.monotonic() - start < cap:
            time.sleep(0.05)
        waited = time.monotonic() - start
        slow.close()
        return waited if waited < cap else None
    finally:
        srv.stop()


def subscription_spike(program, n_subs=100_000):
    srv = Server(program, BASE_CONF)
    try:
        time.sleep(0.2)
        base = srv.rss()
        client = Client(srv.port("nats"))
        client.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
        assert client.reply() == b"PONG\r\n"
        before = srv.rss()
        client.send(b"".join(b"SUB s.%d %d\r\n" % (i, i) for i in range(n_subs)) + b"PING\r\n")
        assert client.reply() == b"PONG\r\n"
        per_sub = (srv.rss() - before) / n_subs
        client.close()
        deadline = time.monotonic() + 10
        while srv.varz()["connections"] != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        return {"per_sub": per_sub, "held": (srv.rss() - base) / MIB}
    finally:
        srv.stop()


def connz_render(program, n_conns=10_000, n_subs=10, n_requests=3):
    """Seconds per /connz?subs=detail reply over all connections, and the slowest round trip
    of another client meanwhile."""
    srv = Server(program, BASE_CONF)
    clients = []
    try:
        port = srv.port("nats")
        for i in range(n_conns):
            c = socket.create_connection(("127.0.0.1", port), timeout=30)
            subs = b"".join(b"SUB conn.%d.sub.%d %d\r\n" % (i, j, j) for j in range(n_subs))
            c.sendall(b'CONNECT {"verbose":false}\r\n' + subs + b"PING\r\n")
            clients.append(c)
        for c in clients:
            buf = b""
            while b"PONG\r\n" not in buf:
                buf += c.recv(65536)
        probe = stall_probe(port)
        probe.start()
        slowest, size = 0.0, 0
        for _ in range(n_requests):
            start = time.monotonic()
            http = socket.create_connection(("127.0.0.1", srv.port("monitoring")), timeout=60)
            http.sendall(b"GET /connz?subs=detail&limit=%d HTTP/1.1\r\nHost: x\r\n"
                         b"Connection: close\r\n\r\n" % (n_conns + 1))
            size = 0
            while chunk := http.recv(1 << 20):
                size += len(chunk)
            http.close()
            slowest = max(slowest, time.monotonic() - start)
        return {"reply": slowest, "stall": probe.stop(), "mib": size / MIB}
    finally:
        for c in clients:
            c.close()
        srv.stop()


def http_get(port, path, timeout=60):
    """One GET with Connection: close; the reply's size in bytes."""
    http = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    http.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
    size = 0
    while chunk := http.recv(1 << 20):
        size += len(chunk)
    http.close()
    return size


def subsz_render(program, n_conns=10, n_subs=10_000, n_requests=3):
    """Seconds per /subsz?subs=1 reply listing every subscription, and the slowest round trip
    of another client meanwhile."""
    srv = Server(program, BASE_CONF)
    clients = []
    try:
        port = srv.port("nats")
        for i in range(n_conns):
            c = Client(port)
            subs = b"".join(b"SUB conn.%d.sub.%d %d\r\n" % (i, j, j) for j in range(n_subs))
            c.send(b'CONNECT {"verbose":false}\r\n' + subs + b"PING\r\n")
            assert c.reply() == b"PONG\r\n"
            clients.append(c)
        probe = stall_probe(port)
        probe.start()
        slowest, size = 0.0, 0
        for _ in range(n_requests):
            start = time.monotonic()
            size = http_get(srv.port("monitoring"),
                            b"/subsz?subs=1&limit=%d" % (n_conns * n_subs + 1))
            slowest = max(slowest, time.monotonic() - start)
        return {"reply": slowest, "stall": probe.stop(), "mib": size / MIB}
    finally:
        for c in clients:
            c.close()
        srv.stop()


def waiting_connz(program, n_conns=500, n_subs=100, n_requests=20):
    """RSS growth, in MiB, while `n_requests` monitoring connections ask at once for a
    `/connz` page of `n_conns` closed connections with their subscriptions."""
    srv = Server(program, BASE_CONF)
    try:
        port = srv.port("nats")
        for i in range(n_conns):
            c = Client(port)
            subs = b"".join(b"SUB closed.conn.%d.with.a.longer.subject.%d %d\r\n" % (i, j, j)
                            for j in range(n_subs))
            c.send(b'CONNECT {"verbose":false}\r\n' + subs + b"PING\r\n")
            assert c.reply() == b"PONG\r\n"
            c.close()
        deadline = time.monotonic() + 10
        while srv.varz()["connections"] != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        base = srv.rss()
        peak = Sampler(srv.rss, 0.01)
        peak.start()
        path = b"/connz?state=closed&subs=1&limit=%d" % n_conns
        askers = [threading.Thread(target=http_get, args=(srv.port("monitoring"), path))
                  for _ in range(n_requests)]
        for a in askers:
            a.start()
        for a in askers:
            a.join()
        settle(peak, quiet=1.0)
        return {"growth": (peak.stop() - base) / MIB}
    finally:
        srv.stop()


def large_inflation(program, n_pubs=300_000):
    """Seconds until a subscriber has every message of one compressed batch, and the slowest
    round trip of another client meanwhile."""
    srv = Server(program, DEFLATE_CONF)
    try:
        sub = Client(srv.port("nats"))
        sub.send(b'CONNECT {"verbose":false}\r\nSUB batch 1\r\nPING\r\n')
        assert sub.reply() == b"PONG\r\n"
        head = b"MSG batch 1 100\r\n"
        got = {"n": 0}

        def receive():
            tail = sub.buf
            while got["n"] < n_pubs:
                chunk = sub.sock.recv(1 << 20)
                if not chunk:
                    return
                data = tail + chunk
                got["n"] += data.count(head)
                tail = data[-(len(head) - 1):]

        receiver = threading.Thread(target=receive, daemon=True)
        receiver.start()
        ws = ws_connect(srv.port("websocket"),
                        b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
        ws.sendall(masked_frame(0x2, b'CONNECT {"verbose":false}\r\n'))
        batch = b"".join(b"PUB batch 100\r\n%010d%s\r\n" % (i, b"x" * 90)
                         for i in range(n_pubs))
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        compressed = z.compress(batch) + z.flush(zlib.Z_SYNC_FLUSH)
        frame = masked_frame(0x2, compressed[:-4], rsv1=True)
        probe = stall_probe(srv.port("nats"))
        probe.start()
        time.sleep(0.2)
        start = time.monotonic()
        ws.sendall(frame)
        receiver.join(60)
        took = time.monotonic() - start
        return {"delivered": got["n"] == n_pubs, "took": took, "stall": probe.stop(),
                "inflated": len(batch) / MIB}
    finally:
        srv.stop()


SCENARIOS = ["ping", "varz", "bcrypt", "linger", "subs", "connz", "inflate", "subsz",
             "waiting"]


def measure(program, ping_mb, only):
    res = {}
    if "ping" in only:
        res["ping_no_connect"] = ping_flood(program, False, ping_mb)
        res["ping_connect"] = ping_flood(program, True, ping_mb)
    if "varz" in only:
        res["varz"] = pipelined_varz(program)
    if "bcrypt" in only:
        res["bcrypt"] = bcrypt_queue(program)
    if "linger" in only:
        res["linger"] = closing_linger(program)
    if "subs" in only:
        res["subs"] = subscription_spike(program)
    if "connz" in only:
        res["connz"] = connz_render(program)
    if "inflate" in only:
        res["inflate"] = large_inflation(program)
    if "subsz" in only:
        res["subsz"] = subsz_render(program)
    if "waiting" in only:
        res["waiting"] = waiting_connz(program)
    return res


def rows(ping_mb):
    def flood_rows(key, what):
        return [
            (f"{what}: RSS growth", lambda r: f"{r[key]['growth']:.0f} MiB "
             f"({r[key]['sent']:.1f} MiB sent)"),
            (f"{what}: other client's slowest round trip", lambda r: ms(r[key]["stall"])),
        ]
    return (
        flood_rows("ping_no_connect", f"ping flood ({ping_mb} MiB), no CONNECT")
        + flood_rows("ping_connect", f"ping flood ({ping_mb} MiB), after CONNECT")
        + flood_rows("varz", "pipelined GET /varz (4 MiB)")
        + [
            ("bcrypt: returning user's login behind 100 wrong CONNECTs",
             lambda r: secs(r["bcrypt"]["returning"])),
            ("bcrypt: other address's login behind 100 wrong CONNECTs",
             lambda r: secs(r["bcrypt"]["other_source"])),
            ("closing connection with unsendable output: fd released after",
             lambda r: "not within 10 s" if r["linger"] is None else secs(r["linger"])),
            ("100,000 subscriptions: RSS per subscription",
             lambda r: f"{r['subs']['per_sub']:.0f} B"),
            ("100,000 subscriptions: RSS held after they are gone",
             lambda r: f"{r['subs']['held']:.0f} MiB"),
            ("/connz?subs=detail, 10,000 connections x 10 subscriptions: slowest reply",
             lambda r: f"{ms(r['connz']['reply'])} ({r['connz']['mib']:.1f} MiB)"),
            ("/connz?subs=detail, 10,000 connections x 10 subscriptions: other client's "
             "slowest round trip", lambda r: ms(r["connz"]["stall"])),
            ("compressed batch of 300,000 PUBs: all delivered after",
             lambda r: secs(r["inflate"]["took"]) + ("" if r["inflate"]["delivered"]
                                                     else " (not all delivered)")),
            ("compressed batch of 300,000 PUBs: other client's slowest round trip",
             lambda r: ms(r["inflate"]["stall"])),
            ("/subsz?subs=1, 100,000 subscriptions: slowest reply",
             lambda r: f"{ms(r['subsz']['reply'])} ({r['subsz']['mib']:.1f} MiB)"),
            ("/subsz?subs=1, 100,000 subscriptions: other client's slowest round trip",
             lambda r: ms(r["subsz"]["stall"])),
            ("20 waiting /connz pages of 500 closed connections x 100 subscriptions: RSS growth",
             lambda r: f"{r['waiting']['growth']:.0f} MiB"),
        ])


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


def secs(seconds):
    return "more than 30 s" if seconds is None else f"{seconds:.2f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--natsws", help="path of the natsws binary (a release build)")
    parser.add_argument("--nats-server", help="path of the nats-server binary")
    parser.add_argument("--ping-mb", type=int, default=20,
                        help="MiB of pings per ping flood (default 20)")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help="comma-separated scenarios to run (default: all): "
                        + ", ".join(SCENARIOS))
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(only - set(SCENARIOS)))}")
    servers = [(name, path) for name, path in
               (("natsws", args.natsws), ("nats-server", args.nats_server)) if path]
    if not servers:
        parser.error("give --natsws and/or --nats-server")
    results = [measure(path, args.ping_mb, only) for _, path in servers]
    print("| scenario | " + " | ".join(name for name, _ in servers) + " |")
    print("|---|" + "---:|" * len(servers))
    for label, cell in rows(args.ping_mb):
        try:
            cells = [cell(r) for r in results]
        except KeyError:
            continue
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
