"""nats-py across leaf-node topologies (py/leaf_topology.py): the reference hub with two edges of
the server under test, and the server under test as hub of a reference leaf. In a nats-server run
every role is nats-server. A server under test that refuses the leafnodes block skips these."""
import asyncio
import time

import nats
import pytest
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from leaf_topology import LeafRefused, edge_topology, hub_topology
from test_nats_py import arun, synced


def _topology(start):
    try:
        t = start()
    except LeafRefused as e:
        pytest.skip(str(e))
    return t


@pytest.fixture(scope="module")
def edges(certs):
    t = _topology(lambda: edge_topology(certs))
    yield t
    t.stop()


@pytest.fixture(scope="module")
def leaf_hub():
    t = _topology(hub_topology)
    yield t
    t.stop()


async def connect(node, kind):
    return await nats.connect(
        servers=[node.url(kind)], allow_reconnect=False, max_reconnect_attempts=1, connect_timeout=5
    )


async def await_interest(responder, requester, subject, timeout=10):
    """Responder answers `subject`; the requester asks until it is answered (interest arrived)."""

    async def ready(m):
        await m.respond(b"ready")

    sub = await responder.subscribe(subject, cb=ready)
    await synced(responder)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                r = await requester.request(subject, b"?", timeout=0.5)
                assert r.data == b"ready"
                return
            except (NoRespondersError, NatsTimeout):
                if time.monotonic() > deadline:
                    raise AssertionError(f"interest in {subject} did not reach the other side in {timeout} s")
                await asyncio.sleep(0.05)
    finally:
        await sub.unsubscribe()


@pytest.mark.parametrize("kinds", [("ws", "ws"), ("ws", "tcp")], ids=["ws->ws", "ws->tcp"])
def test_leaf_request_reply_across_edges(edges, kinds):
    """nats-py on edge B (over the edge's WebSocket) requests; nats-py on edge A answers."""

    async def go():
        a = await connect(edges.a, kinds[1])
        b = await connect(edges.b, kinds[0])
        try:

            async def upper(m):
                await m.respond(m.data.upper())

            await a.subscribe("pyleaf.svc", cb=upper)
            await await_interest(a, b, "pyleaf.svc.ready")
            answers = await asyncio.gather(*(b.request("pyleaf.svc", f"m{i}".encode(), timeout=5) for i in range(50)))
            assert [r.data for r in answers] == [f"M{i}".encode() for i in range(50)]
            with pytest.raises(NoRespondersError):
                await b.request("pyleaf.nobody", b"?", timeout=3)
        finally:
            await a.close()
            await b.close()

    arun(go())


def test_leaf_pubsub_across_edges_ws(edges):
    """20 messages with headers from edge A's WebSocket reach a ws subscriber on edge B, in order."""

    async def go():
        a = await connect(edges.a, "ws")
        b = await connect(edges.b, "ws")
        try:
            sub = await b.subscribe("pyleaf.data")
            await await_interest(b, a, "pyleaf.data.ready")
            for i in range(20):
                await a.publish("pyleaf.data", f"d{i}".encode(), headers={"X-Edge": "a"})
            await a.flush(timeout=3)
            got = [await sub.next_msg(timeout=3) for _ in range(20)]
            assert [m.data for m in got] == [f"d{i}".encode() for i in range(20)]
            assert all(m.headers == {"X-Edge": "a"} for m in got)
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.3)
        finally:
            await a.close()
            await b.close()

    arun(go())


def test_leaf_hub_request_reply_ws(leaf_hub):
    """nats-py on the reference leaf (ws) and on the hub (ws) answer each other's requests."""

    async def go():
        h = await connect(leaf_hub.hub, "ws")
        leaf = await connect(leaf_hub.leaf, "ws")
        try:

            async def on_hub(m):
                await m.respond(b"hub:" + m.data)

            async def on_leaf(m):
                await m.respond(b"leaf:" + m.data)

            await h.subscribe("pyhub.svc.hub", cb=on_hub)
            await leaf.subscribe("pyhub.svc.leaf", cb=on_leaf)
            await await_interest(h, leaf, "pyhub.ready.hub")
            await await_interest(leaf, h, "pyhub.ready.leaf")
            assert (await leaf.request("pyhub.svc.hub", b"1", timeout=5)).data == b"hub:1"
            assert (await h.request("pyhub.svc.leaf", b"2", timeout=5)).data == b"leaf:2"
        finally:
            await h.close()
            await leaf.close()

    arun(go())
