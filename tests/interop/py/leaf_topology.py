"""Leaf-node topologies for the Python half (the counterpart of lib/topology.mjs).

The hub of the edge topology is always the reference nats-server (INTEROP_REF_BIN, default
/usr/sbin/nats-server); the edges are the server under test (INTEROP_SERVER_BIN). In the "server
under test as hub" topology the roles swap. Configs come from scenarios/leaf_*.conf. A server under
test that refuses the ``leafnodes`` block or an option of it at start-up raises LeafRefused (the
cases skip with its refusal); any other start-up failure is an error. Every wait is bounded.
INTEROP_LEAF_EDGE_B=tcp joins edge B over TCP instead of wss (for trying an edge that cannot
dial WebSocket remotes yet; never in CI).
"""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import KIND, PID_DIR, RUN_DIR, SCENARIOS, SERVER_BIN, free_port

REF_BIN = os.environ.get("INTEROP_REF_BIN", "/usr/sbin/nats-server")
# natsws does not serve the leafnodes block, or the part of it a scenario uses, yet.
LEAF_REFUSAL = re.compile(r'^.*"leafnodes(?:\.[^"]*)?" is not supported by natsws.*$', re.M)
PORT_KEYS = ("PORT", "WS", "HTTP", "LEAF")


class LeafRefused(Exception):
    """The server under test does not serve leafnodes (its own refusal is the message)."""


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Node:
    """One server of a topology: ``bin -c scenarios/<scenario>.conf`` as ``role``."""

    _serial = 0

    def __init__(self, bin, role, scenario, **vars):
        self.bin, self.role, self.scenario = bin, role, scenario
        self.kind = "nats-server" if bin == REF_BIN else KIND
        template = (SCENARIOS / f"{scenario}.conf").read_text()
        Node._serial += 1
        self.dir = RUN_DIR / f"py-{scenario}-{role}-{os.getpid()}-{Node._serial}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / f"{scenario}.conf"
        self.log_path = self.dir / "server.log"
        self.proc = None
        # Ports are free a moment before the server binds them; retry with new ones if one was taken.
        for attempt in range(3):
            self.ports = {}
            for k in PORT_KEYS:
                if "{{%s}}" % k in template:
                    p = free_port()
                    while p in self.ports.values():
                        p = free_port()
                    self.ports[k] = p
            values = {**self.ports, "DIR": str(self.dir), "NAME": role, **vars}

            def fill(m):
                if m.group(1) not in values:
                    raise KeyError(f"scenario {scenario}: no value for {m.group(0)}")
                return str(values[m.group(1)])

            self.conf.write_text(re.sub(r"\{\{([A-Z_0-9]+)\}\}", fill, template))
            try:
                self._launch()
                return
            except RuntimeError:
                if attempt == 2 or "in use" not in self._this_start():
                    raise

    def _this_start(self):
        return self.log()[self._log_from :]

    def _launch(self):
        self._log_from = len(self.log())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.bin, "-c", str(self.conf)], stdout=log, stderr=log)
        if PID_DIR:
            Path(PID_DIR, str(self.proc.pid)).touch()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            if all(_listening(p) for p in self.ports.values()):
                return
            time.sleep(0.05)
        self.stop()
        text = self._this_start()
        refusal = LEAF_REFUSAL.search(text)
        if self.bin != REF_BIN and refusal:
            raise LeafRefused(
                f"{self.kind} as {self.role} refuses (part of) the leafnodes block at start-up: {refusal.group(0).strip()}"
            )
        raise RuntimeError(
            f"{self.kind} as {self.role} did not start with scenario {self.scenario} "
            f"(exit {self.proc.returncode}); log:\n{text[-2000:]}"
        )

    def url(self, kind):
        return f"ws://127.0.0.1:{self.ports['WS']}" if kind == "ws" else f"nats://127.0.0.1:{self.ports['PORT']}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def leafz(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['HTTP']}/leafz", timeout=3) as r:
            return json.load(r)

    def wait_leafs(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.leafz()
                if len(last.get("leafs") or []) >= n:
                    return last
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        raise AssertionError(
            f"{self.role} ({self.kind}) has not {n} leaf connection(s) after {timeout} s: /leafz={str(last)[:500]}; "
            f"log:\n{self.log()[-1500:]}"
        )

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(3)


class Topology:
    """Servers started together and stopped together."""

    def __init__(self):
        self.nodes = []

    def add(self, *args, **kw):
        node = Node(*args, **kw)
        self.nodes.append(node)
        return node

    def stop(self):
        for n in self.nodes:
            n.stop()


def edge_topology(certs):
    """Reference hub; edge A (server under test) over TCP, edge B over wss to the hub's ws port."""
    t = Topology()
    try:
        t.hub = t.add(REF_BIN, "hub", "leaf_hub", CERT=certs["cert"], KEY=certs["key"])
        t.a = t.add(SERVER_BIN, "edge-a", "leaf_edge_tcp", HUB_LEAF=t.hub.ports["LEAF"])
        if os.environ.get("INTEROP_LEAF_EDGE_B") == "tcp":
            t.b = t.add(SERVER_BIN, "edge-b", "leaf_edge_tcp", HUB_LEAF=t.hub.ports["LEAF"])
        else:
            t.b = t.add(SERVER_BIN, "edge-b", "leaf_edge_wss", HUB_WS=t.hub.ports["WS"], CA=certs["ca"])
        t.hub.wait_leafs(2)
    except BaseException:
        t.stop()
        raise
    return t


def hub_topology():
    """The server under test as hub; a reference leaf over ws to its WebSocket port."""
    t = Topology()
    try:
        t.hub = t.add(SERVER_BIN, "hub", "leaf_as_hub")
        t.leaf = t.add(REF_BIN, "leaf-ws", "leaf_edge_ws", HUB_WS=t.hub.ports["WS"])
        t.leaf.wait_leafs(1)
    except BaseException:
        t.stop()
        raise
    return t
