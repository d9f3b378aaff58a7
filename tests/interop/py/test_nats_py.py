"""nats-py over WebSocket (aiohttp) and TCP against the server under test."""
import asyncio
import os
import ssl

import nats
import pytest
from nats.errors import NoRespondersError

PAIRS = [("ws", "ws"), ("ws", "tcp"), ("tcp", "ws")]


async def synced(nc):
    """Round trips until earlier commands have surely reached the server.

    nats-py's WebSocket transport (2.16.0) can send a flush's PING ahead of a SUB queued just
    before it, so one flush does not prove the SUB arrived; the second PING is written after the
    first PONG came back, when the SUB has long been sent.
    """
    await nc.flush(timeout=3)
    await nc.flush(timeout=3)


def arun(coro, timeout=30):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def connect(server, kind, **kw):
    url = server.ws_url if kind == "ws" else server.tcp_url
    if kind == "wss":
        url = f"wss://127.0.0.1:{server.ws}"
    return await nats.connect(
        servers=[kw.pop("url", url)],
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.1,
        connect_timeout=5,
        **kw,
    )


@pytest.fixture(scope="module")
def basic(start):
    return start("basic")


def test_connect_ws(basic):
    async def go():
        nc = await connect(basic, "ws")
        try:
            assert nc.is_connected
            assert nc.connected_url.scheme == "ws"
            assert nc.max_payload == 1048576
            assert nc._server_info.get("headers") is True
            await synced(nc)
        finally:
            await nc.close()

    arun(go())


@pytest.mark.parametrize("pub,sub", PAIRS, ids=[f"{p}->{s}" for p, s in PAIRS])
def test_pubsub(basic, pub, sub):
    async def go():
        a = await connect(basic, pub)
        b = await connect(basic, sub)
        try:
            s = await b.subscribe(f"py.{pub}.{sub}")
            await synced(b)
            for i in range(20):
                await a.publish(f"py.{pub}.{sub}", f"m{i}".encode())
            await a.flush(timeout=3)
            got = [(await s.next_msg(timeout=3)).data.decode() for _ in range(20)]
            assert got == [f"m{i}" for i in range(20)]
            with pytest.raises(nats.errors.TimeoutError):
                await s.next_msg(timeout=0.2)
        finally:
            await a.close()
            await b.close()

    arun(go())


@pytest.mark.parametrize("req,rep", PAIRS, ids=[f"{p}->{s}" for p, s in PAIRS])
def test_request_reply(basic, req, rep):
    async def go():
        a = await connect(basic, req)
        b = await connect(basic, rep)
        try:
            async def handler(msg):
                await msg.respond(b"re:" + msg.data)

            await b.subscribe(f"pyrr.{req}.{rep}", cb=handler)
            await synced(b)
            for i in range(5):
                r = await a.request(f"pyrr.{req}.{rep}", f"q{i}".encode(), timeout=3)
                assert r.data == f"re:q{i}".encode()
            with pytest.raises(NoRespondersError):
                await a.request("py.nobody", b"x", timeout=3)
        finally:
            await a.close()
            await b.close()

    arun(go())


def test_queue_group_ws_and_tcp(basic):
    async def go():
        members = [await connect(basic, k) for k in ("ws", "ws", "tcp", "tcp")]
        pub = await connect(basic, "tcp")
        counts = [0] * len(members)
        seen = {}
        try:
            for idx, nc in enumerate(members):
                async def cb(msg, idx=idx):
                    counts[idx] += 1
                    seen[msg.data] = seen.get(msg.data, 0) + 1

                await nc.subscribe("pyq", queue="workers", cb=cb)
                await synced(nc)
            for i in range(400):
                await pub.publish("pyq", str(i).encode())
            await pub.flush(timeout=3)
            for _ in range(200):
                if len(seen) >= 400:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            assert len(seen) == 400
            assert set(seen.values()) == {1}
            assert all(c > 0 for c in counts), counts
        finally:
            for nc in members + [pub]:
                await nc.close()

    arun(go())


@pytest.mark.parametrize("pub,sub", PAIRS, ids=[f"{p}->{s}" for p, s in PAIRS])
def test_headers(basic, pub, sub):
    async def go():
        a = await connect(basic, pub)
        b = await connect(basic, sub)
        try:
            s = await b.subscribe("pyhdr")
            await synced(b)
            await a.publish("pyhdr", b"body", headers={"X-One": "1", "X-Two": "two words"})
            await a.flush(timeout=3)
            m = await s.next_msg(timeout=3)
            assert m.data == b"body"
            assert m.headers == {"X-One": "1", "X-Two": "two words"}
        finally:
            await a.close()
            await b.close()

    arun(go())


@pytest.mark.parametrize("pub,sub", PAIRS, ids=[f"{p}->{s}" for p, s in PAIRS])
def test_one_megabyte(basic, pub, sub):
    async def go():
        a = await connect(basic, pub)
        b = await connect(basic, sub)
        try:
            data = os.urandom(1024 * 1024)
            s = await b.subscribe("pybig")
            await synced(b)
            await a.publish("pybig", data)
            await a.flush(timeout=10)
            m = await s.next_msg(timeout=10)
            assert m.data == data
        finally:
            await a.close()
            await b.close()

    arun(go())


def test_many_messages_ws_in_order(basic):
    async def go():
        a = await connect(basic, "tcp")
        b = await connect(basic, "ws")
        n = 20000
        got = []
        done = asyncio.get_running_loop().create_future()
        try:
            async def cb(msg):
                got.append(int(msg.data))
                if len(got) == n and not done.done():
                    done.set_result(True)

            await b.subscribe("pyflood", cb=cb, pending_msgs_limit=n * 2)
            await synced(b)
            for i in range(n):
                await a.publish("pyflood", str(i).encode())
            await a.flush(timeout=10)
            await asyncio.wait_for(done, 20)
            assert got == list(range(n))
        finally:
            await a.close()
            await b.close()

    arun(go())


def test_drain_ws(basic):
    async def go():
        a = await connect(basic, "tcp")
        b = await connect(basic, "ws")
        got = []
        try:
            async def cb(msg):
                got.append(msg.data)

            await b.subscribe("pydrain", cb=cb)
            await synced(b)
            for i in range(50):
                await a.publish("pydrain", str(i).encode())
            await a.flush(timeout=3)
            await asyncio.sleep(0.1)
            await b.drain()
            assert b.is_closed
            assert got == [str(i).encode() for i in range(50)]
        finally:
            await a.close()

    arun(go())


def test_wss_with_test_ca(start, certs):
    server = start("tls", CERT=certs["cert"], KEY=certs["key"])

    async def go():
        ctx = ssl.create_default_context(cafile=certs["ca"])
        nc = await connect(server, "wss", tls=ctx)
        tcp = await connect(server, "tcp")
        try:
            assert nc.connected_url.scheme == "wss"
            s = await nc.subscribe("pytls")
            await synced(nc)
            await tcp.publish("pytls", b"over tls")
            await tcp.flush(timeout=3)
            assert (await s.next_msg(timeout=3)).data == b"over tls"
        finally:
            await nc.close()
            await tcp.close()

    arun(go())


def test_wss_untrusted_ca_fails(start, certs):
    server = start("tls", CERT=certs["cert"], KEY=certs["key"])

    async def go():
        with pytest.raises(Exception):
            nc = await connect(server, "wss", tls=ssl.create_default_context())
            await nc.close()

    arun(go())


def test_ws_user_password(start):
    server = start("auth_userpass")

    async def go():
        nc = await connect(server, "ws", user="wsuser", password="wspass")
        await synced(nc)
        await nc.close()
        tcp = await connect(server, "tcp", user="tcpuser", password="tcppass")
        await tcp.flush(timeout=3)
        await tcp.close()
        for kind, user, pw in (("ws", "tcpuser", "tcppass"), ("ws", "wsuser", "wrong"), ("tcp", "wsuser", "wspass")):
            with pytest.raises(Exception) as e:
                nc = await connect(server, kind, user=user, password=pw)
                await nc.close()
            assert "authorization" in str(e.value).lower(), f"{kind} {user}: {e.value!r}"

    arun(go())


def test_ws_token(start):
    server = start("auth_token")

    async def go():
        nc = await connect(server, "ws", token="ws-s3cret")
        await synced(nc)
        await nc.close()
        with pytest.raises(Exception) as e:
            nc = await connect(server, "ws", token="tcp-s3cret")
            await nc.close()
        assert "authorization" in str(e.value).lower(), repr(e.value)

    arun(go())
