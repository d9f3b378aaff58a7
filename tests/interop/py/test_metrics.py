"""natsws' /metrics read by the Prometheus client library's own text parser.

Only natsws serves /metrics: nats-server leaves Prometheus to a separate exporter (it answers
the path with 404), so these cases are skipped against nats-server; what they count (messages,
refused upgrades, refused credentials) is what both servers do, and the other cases of the
suite check that against nats-server.
"""
import asyncio
import os
import socket
import urllib.error
import urllib.request

import nats
import pytest
from nats.errors import NoServersError
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.skipif(
    os.environ.get("INTEROP_KIND") != "natsws", reason="nats-server has no /metrics (natsws extension)"
)


def arun(coro, timeout=30):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@pytest.fixture(scope="module")
def server(start):
    return start("console")


def scrape(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http}/metrics", timeout=5) as res:
        assert res.status == 200
        assert res.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = res.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return families


def value(families, family, sample=None, **labels):
    """The value of the sample `sample` (default: the family's own name) with exactly `labels`."""
    f = families[family]
    name = sample or (f.name + "_total" if f.type == "counter" else f.name)
    hits = [s.value for s in f.samples if s.name == name and s.labels == labels]
    assert len(hits) == 1, (family, name, labels, f.samples)
    return hits[0]


def refused_upgrade(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request.encode())
        return s.recv(4096).decode("latin1").split("\r\n", 1)[0]


async def traffic(server):
    sub = await nats.connect(
        servers=[f"nats://127.0.0.1:{server.port}"], user="alice", password="secret",
        allow_reconnect=False, connect_timeout=5,
    )
    pub = await nats.connect(
        servers=[f"ws://127.0.0.1:{server.ws}"], user="alice", password="secret",
        allow_reconnect=False, connect_timeout=5,
    )
    got = []
    done = asyncio.Event()

    async def cb(msg):
        got.append(msg.data)
        if len(got) == 5:
            done.set()

    await sub.subscribe("metrics.*", cb=cb)
    await sub.flush()
    await sub.flush()
    for i in range(5):
        await pub.publish(f"metrics.{i}", b"x" * (i + 1))
    await pub.flush()
    await asyncio.wait_for(done.wait(), 5)
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await nats.connect(
            servers=[f"nats://127.0.0.1:{server.port}"], user="alice", password="wrong",
            allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5,
        )
    return sub, pub


def test_metrics_parse_with_the_prometheus_client_parser(server):
    before = scrape(server)
    assert before["natsws_loop_tick_seconds"].type == "histogram"

    async def go():
        sub, pub = await traffic(server)
        status = refused_upgrade(
            server.ws,
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n",
        )
        assert status.startswith("HTTP/1.1 400"), status
        families = scrape(server)
        await sub.close()
        await pub.close()
        return families

    m = arun(go())
    info = m["natsws_info"].samples[0].labels
    assert info["version"] == "2.9.10" and info["natsws_version"]
    assert value(m, "natsws_info", **info) == 1
    assert m["natsws_messages"].type == "counter"
    assert value(m, "natsws_messages", direction="in") == 5
    assert value(m, "natsws_messages", direction="out") == 5
    assert value(m, "natsws_payload_bytes", direction="in") == 15
    assert value(m, "natsws_connections", kind="client", transport="tcp", compression="none") == 1
    # nats-py's aiohttp WebSocket does not offer permessage-deflate.
    assert value(m, "natsws_connections", kind="client", transport="ws", compression="none") == 1
    assert value(m, "natsws_connections", kind="client", transport="ws", compression="deflate") == 0
    assert value(m, "natsws_auth_failures") == 1
    assert value(m, "natsws_websocket_handshake_refusals", status="400") == 1
    assert value(m, "natsws_connections_closed", reason="Authentication Failure") == 1
    assert value(m, "natsws_subscriptions") == 1
    assert value(m, "natsws_account_connections", account="$G") == 2
    assert value(m, "natsws_account_messages_received", account="$G") == 5
    assert m["process_resident_memory_bytes"].type == "gauge"
    assert value(m, "process_resident_memory_bytes") > 0
    assert value(m, "process_open_fds") > 3
    assert value(m, "process_cpu_seconds") >= 0

    hist = m["natsws_loop_tick_seconds"]
    buckets = [(s.labels["le"], s.value) for s in hist.samples if s.name.endswith("_bucket")]
    assert buckets[-1][0] == "+Inf"
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), buckets
    count = value(m, "natsws_loop_tick_seconds", "natsws_loop_tick_seconds_count")
    assert count == counts[-1] and count > value(before, "natsws_loop_tick_seconds", "natsws_loop_tick_seconds_count")


def test_metrics_is_monitoring_port_only(server):
    for port in (server.ws,):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as res:
                status = res.status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status != 200
