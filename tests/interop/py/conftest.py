"""Shared fixtures for the Python half of the interop suite.

Servers are started from the same scenarios/*.conf templates as the Node half (``{{NAME}}``
placeholders filled with free 127.0.0.1 ports), with ``<server> -c <file>``, and always killed at
the end. Everything that waits is bounded.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parent / "scenarios"
SERVER_BIN = os.environ.get("INTEROP_SERVER_BIN")
KIND = os.environ.get("INTEROP_KIND", "nats-server")
RUN_DIR = Path(os.environ.get("INTEROP_RUN_DIR") or tempfile.mkdtemp(prefix="interop-py-"))
PID_DIR = os.environ.get("INTEROP_PID_DIR")

if not SERVER_BIN:
    raise RuntimeError("INTEROP_SERVER_BIN is not set; use tests/interop/run --server-bin PATH --kind KIND")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _first_line(port):
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            deadline = time.monotonic() + 5
            while b"\r\n" not in data and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return f"<{e}>".encode()
    return data


class Server:
    """One running server process for a scenario."""

    _serial = 0

    def __init__(self, name, **vars):
        template = (SCENARIOS / f"{name}.conf").read_text()
        last = None
        for _ in range(3):
            Server._serial += 1
            self.dir = RUN_DIR / f"py-{name}-{os.getpid()}-{Server._serial}"
            self.dir.mkdir(parents=True, exist_ok=True)
            self.ports = {k: free_port() for k in ("PORT", "WS", "HTTP", "MQTT") if "{{%s}}" % k in template}
            values = {**self.ports, "DIR": str(self.dir), **vars}

            def fill(m):
                if m.group(1) not in values:
                    raise KeyError(f"scenario {name}: no value for {m.group(0)}")
                return str(values[m.group(1)])

            self.conf = self.dir / f"{name}.conf"
            self.conf.write_text(re.sub(r"\{\{([A-Z_0-9]+)\}\}", fill, template))
            self.log_path = self.dir / "server.log"
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen([SERVER_BIN, "-c", str(self.conf)], stdout=log, stderr=log)
            if PID_DIR:
                Path(PID_DIR, str(self.proc.pid)).touch()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if all(_listening(p) for p in self.ports.values()):
                    break
                time.sleep(0.05)
            if self.proc.poll() is None and all(_listening(p) for p in self.ports.values()):
                # A server that listens but does not speak NATS fails here, fast.
                first = _first_line(self.ports["PORT"])
                if first.startswith(b"INFO "):
                    return
                self.stop()
                raise RuntimeError(
                    f"{KIND} (scenario {name}) sent no INFO line on its TCP port within 5 s: {first[:200]!r}"
                )
            self.stop()
            text = self.log()
            last = RuntimeError(
                f"{KIND} did not start with scenario {name} (exit {self.proc.returncode}); log:\n{text[-2000:]}"
            )
            if "in use" not in text:
                break
        raise last

    @property
    def port(self):
        return self.ports["PORT"]

    @property
    def ws(self):
        return self.ports["WS"]

    @property
    def http(self):
        return self.ports.get("HTTP")

    @property
    def mqtt(self):
        return self.ports["MQTT"]

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.ws}"

    @property
    def tcp_url(self):
        return f"nats://127.0.0.1:{self.port}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def restart(self):
        """Stops the server (SIGTERM) and starts it again on the same config and ports."""
        self.stop()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([SERVER_BIN, "-c", str(self.conf)], stdout=log, stderr=log)
        if PID_DIR:
            Path(PID_DIR, str(self.proc.pid)).touch()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            if all(_listening(p) for p in self.ports.values()):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{KIND} did not restart; log:\n{self.log()[-2000:]}")

    def stop(self):
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(3)


@pytest.fixture(scope="module")
def start():
    """Factory: start(name, **vars) -> Server; every server is stopped when the module ends."""
    servers = []

    def _start(name, **vars):
        s = Server(name, **vars)
        servers.append(s)
        return s

    yield _start
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def certs():
    """A throw-away CA and a server certificate for 127.0.0.1, made with openssl for this run."""
    d = RUN_DIR / f"py-certs-{os.getpid()}"
    d.mkdir(parents=True, exist_ok=True)

    def o(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    o("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=interop test CA",
      "-keyout", "ca-key.pem", "-out", "ca.pem")
    o("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server-key.pem",
      "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    o("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
      "-days", "2", "-extfile", "ext.cnf", "-out", "server-cert.pem")
    yield {"ca": str(d / "ca.pem"), "cert": str(d / "server-cert.pem"), "key": str(d / "server-key.pem")}
    shutil.rmtree(d, ignore_errors=True)
