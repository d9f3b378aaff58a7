"""RFC 6455 / RFC 7692 checks with the Python `websockets` library and raw sockets.

The NATS protocol is spoken by hand here, so these cases see exactly which frames the server
writes (RSV1, opcode, FIN) and what it accepts (compressed, fragmented, control frames).
"""
import asyncio
import base64
import os
import zlib

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

NEGOTIATED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":true}\r\n'


def arun(coro, timeout=30):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def deflate(data):
    """One message compressed as RFC 7692 says: raw deflate, sync flush, trailing 00 00 FF FF removed."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(payload):
    """Inflates one message with a fresh state (no context takeover)."""
    d = zlib.decompressobj(-15)
    return d.decompress(payload + b"\x00\x00\xff\xff")


def make_frame(opcode, payload, fin=True, rsv1=False, mask=True):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, (0x80 if mask else 0) | n])
    elif n < 65536:
        head = bytes([b0, (0x80 if mask else 0) | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, (0x80 if mask else 0) | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


class RawWs:
    """A hand-made WebSocket client: upgrade with chosen headers, then read/write single frames."""

    def __init__(self, reader, writer, status, headers):
        self.reader, self.writer, self.status, self.headers = reader, writer, status, headers

    @classmethod
    async def open(cls, port, extra=()):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET / HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *extra,
            "",
            "",
        ]
        writer.write("\r\n".join(lines).encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        text = head.decode("latin1").split("\r\n")
        status = int(text[0].split(" ")[1])
        headers = {}
        for line in text[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.setdefault(k.strip().lower(), v.strip())
        return cls(reader, writer, status, headers)

    async def frame(self, timeout=5):
        """Reads one frame: (fin, rsv1, opcode, payload)."""
        async def read():
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            if b1 & 0x80:
                await self.reader.readexactly(4)
            return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, await self.reader.readexactly(n)

        return await asyncio.wait_for(read(), timeout)

    async def data_until(self, needle, timeout=5):
        """Reads frames until the NATS byte stream contains `needle`; returns (stream, frames)."""
        stream, frames = b"", []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while needle not in stream:
            f = await self.frame(max(0.05, deadline - loop.time()))
            frames.append(f)
            fin, rsv1, op, payload = f
            if op in (1, 2, 0):
                stream += inflate(payload) if rsv1 else payload
        return stream, frames

    def send(self, payload, opcode=2, **kw):
        self.writer.write(make_frame(opcode, payload, **kw))

    def close(self):
        self.writer.close()


@pytest.fixture(scope="module")
def zserver(start):
    return start("compression")


@pytest.fixture(scope="module")
def plain(start):
    return start("basic")


async def nats_ws(server, **kw):
    """A `websockets` connection that has done CONNECT and got its PONG."""
    ws = await ws_connect(server.ws_url, proxy=None, open_timeout=5, ping_interval=None, max_size=None, **kw)
    info = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(info, bytes) and info.startswith(b"INFO "), info[:40]
    await ws.send(CONNECT + b"PING\r\n")
    await expect(ws, b"PONG\r\n")
    return ws


async def expect(ws, *needles, timeout=5):
    """Receives until every needle has been seen in the byte stream; returns the stream."""
    buf = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all(n in buf for n in needles):
        m = await asyncio.wait_for(ws.recv(), max(0.05, deadline - loop.time()))
        buf += m if isinstance(m, bytes) else m.encode()
    return buf


def test_websockets_negotiates_the_fixed_extension_line(zserver):
    async def go():
        ws = await nats_ws(zserver)
        try:
            assert ws.response.headers["Sec-WebSocket-Extensions"] == NEGOTIATED
            assert [type(e).__name__ for e in ws.protocol.extensions] == ["PerMessageDeflate"]
        finally:
            await ws.close()

    arun(go())


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
        "x-webkit-deflate-frame, PerMessage-Deflate",
    ],
)
def test_offers_get_the_fixed_response(zserver, offer):
    async def go():
        raw = await RawWs.open(zserver.ws, [f"Sec-WebSocket-Extensions: {offer}"])
        try:
            assert raw.status == 101
            assert raw.headers.get("sec-websocket-extensions") == NEGOTIATED
            fin, rsv1, op, payload = await raw.frame()
            assert (fin, op) == (True, 2)
            assert (inflate(payload) if rsv1 else payload).startswith(b"INFO ")
        finally:
            raw.close()

    arun(go())


def test_no_offer_means_no_compression(zserver):
    async def go():
        raw = await RawWs.open(zserver.ws)
        try:
            assert raw.status == 101
            assert "sec-websocket-extensions" not in raw.headers
            raw.send(CONNECT + b"SUB z 1\r\nPUB z 3000\r\n" + b"a" * 3000 + b"\r\nPING\r\n")
            _, frames = await raw.data_until(b"PONG")
            assert frames and not any(rsv1 for _, rsv1, _, _ in frames)
        finally:
            raw.close()

    arun(go())


def test_compression_off_ignores_the_offer(plain):
    async def go():
        raw = await RawWs.open(plain.ws, ["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
        try:
            assert raw.status == 101
            assert "sec-websocket-extensions" not in raw.headers
            fin, rsv1, op, payload = await raw.frame()
            assert not rsv1 and payload.startswith(b"INFO ")
        finally:
            raw.close()

    arun(go())


def test_server_compresses_large_flushes_and_each_inflates_alone(zserver):
    async def go():
        raw = await RawWs.open(zserver.ws, ["Sec-WebSocket-Extensions: permessage-deflate"])
        pub = await nats_ws(zserver, compression=None)
        try:
            await raw.frame()  # INFO
            raw.send(CONNECT + b"SUB big 1\r\nPING\r\n")
            await raw.data_until(b"PONG")
            body = b"compressible text " * 500
            for _ in range(3):
                await pub.send(b"PUB big %d\r\n%s\r\n" % (len(body), body))
                await pub.send(b"PING\r\n")
                await expect(pub, b"PONG")
            got = b""
            compressed = 0
            while got.count(b"MSG big 1") < 3:
                fin, rsv1, op, payload = await raw.frame()
                assert op in (0, 2), op
                if rsv1:
                    compressed += 1
                    assert fin, "a non-browser compressed message is one frame"
                    got += inflate(payload)  # a fresh inflater per message: no context takeover
                else:
                    got += payload
            assert compressed >= 1, "large flushes arrive with RSV1 set"
            assert got.count(b"MSG big 1 %d\r\n%s\r\n" % (len(body), body)) == 3
            # A tiny flush (PONG) is not compressed.
            raw.send(b"PING\r\n")
            fin, rsv1, op, payload = await raw.frame()
            assert (rsv1, op, payload) == (False, 2, b"PONG\r\n")
        finally:
            raw.close()
            await pub.close()

    arun(go())


def test_server_inflates_compressed_and_fragmented_client_messages(zserver):
    async def go():
        raw = await RawWs.open(zserver.ws, ["Sec-WebSocket-Extensions: permessage-deflate"])
        sub = await nats_ws(zserver)
        try:
            await raw.frame()
            await sub.send(b"SUB frag 1\r\nPING\r\n")
            await expect(sub, b"PONG")
            body = os.urandom(200).hex().encode() * 20
            msg = CONNECT + b"PUB frag %d\r\n%s\r\n" % (len(body), body)
            # One compressed message in one frame.
            raw.send(deflate(msg), rsv1=True)
            # One compressed message in three fragments: RSV1 on the first only.
            z = deflate(b"PUB frag 5\r\nhello\r\nPING\r\n")
            a, b = len(z) // 3, 2 * len(z) // 3
            raw.send(z[:a], rsv1=True, fin=False)
            raw.send(z[a:b], opcode=0, fin=False)
            raw.send(b"ping", opcode=9)  # a control frame between fragments
            raw.send(z[b:], opcode=0)
            stream, frames = await raw.data_until(b"PONG")
            assert any(op == 10 and p == b"ping" for _, _, op, p in frames), "PONG control frame echoes the payload"
            got = await expect(sub, b"hello\r\n")
            assert b"MSG frag 1 %d\r\n%s\r\n" % (len(body), body) in got
            assert got.endswith(b"MSG frag 1 5\r\nhello\r\n")
        finally:
            raw.close()
            await sub.close()

    arun(go())


def test_mixed_compressed_and_plain_websockets_clients(zserver):
    async def go():
        zc = await nats_ws(zserver)
        pc = await nats_ws(zserver, compression=None)
        try:
            assert zc.response.headers.get("Sec-WebSocket-Extensions") == NEGOTIATED
            assert "Sec-WebSocket-Extensions" not in pc.response.headers
            for ws in (zc, pc):
                await ws.send(b"SUB mix 1\r\nPING\r\n")
                await expect(ws, b"PONG")
            big = b"0123456789abcdef" * 4096
            await zc.send(b"PUB mix %d\r\n%s\r\nPUB mix 2\r\nhi\r\n" % (len(big), big))
            await pc.send(b"PUB mix 5\r\nplain\r\n")
            for ws in (zc, pc):
                got = await expect(ws, b"plain\r\n", b"MSG mix 1 2\r\nhi\r\n")
                assert b"MSG mix 1 %d\r\n%s\r\n" % (len(big), big) in got
                assert b"MSG mix 1 2\r\nhi\r\n" in got
        finally:
            await zc.close()
            await pc.close()

    arun(go())


def test_text_frames_and_control_frames(plain):
    async def go():
        ws = await nats_ws(plain, compression=None)
        try:
            # NATS in a text frame is accepted; the answer is binary.
            await ws.send("PING\r\n")
            m = await asyncio.wait_for(ws.recv(), 5)
            assert m == b"PONG\r\n"
            # A WebSocket ping is answered with the same payload.
            waiter = await ws.ping(b"hello")
            await asyncio.wait_for(waiter, 5)
            # A message split into fragments with a control frame in between.
            await ws.send([b"PI", b"NG\r\n"])
            assert await asyncio.wait_for(ws.recv(), 5) == b"PONG\r\n"
            # A close is echoed with the same code.
            await ws.close(4000, "bye")
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 4000
        finally:
            await ws.close()

    arun(go())


def test_close_with_a_reason_gets_the_code_back(plain):
    async def go():
        raw = await RawWs.open(plain.ws)
        try:
            await raw.frame()
            raw.send(b"\x03\xe8done", opcode=8)
            while True:
                fin, rsv1, op, payload = await raw.frame()
                if op == 8:
                    break
            assert payload[:2] == b"\x03\xe8"
            assert await asyncio.wait_for(raw.reader.read(1), 5) == b"", "TCP closed after the close frame"
        finally:
            raw.close()

    arun(go())


def test_browser_user_agent_limits_frames_to_4096(plain):
    async def go():
        raw = await RawWs.open(plain.ws, ["User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"])
        pub = await nats_ws(plain, compression=None)
        try:
            await raw.frame()
            raw.send(CONNECT + b"SUB ua 1\r\nPING\r\n")
            await raw.data_until(b"PONG")
            body = os.urandom(20000)
            await pub.send(b"PUB ua %d\r\n%s\r\n" % (len(body), body))
            stream, frames = await raw.data_until(body + b"\r\n")
            assert len(frames) >= 5
            assert all(len(p) <= 4096 for _, _, _, p in frames), [len(p) for _, _, _, p in frames]
            assert b"MSG ua 1 20000\r\n" + body + b"\r\n" in stream
        finally:
            raw.close()
            await pub.close()

    arun(go())


@pytest.mark.parametrize(
    "ua,fragmented",
    [
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36", True),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", False),
    ],
    ids=["chrome", "safari"],
)
def test_browser_compressed_frames(zserver, ua, fragmented):
    """Browser + compression: Chrome gets <=4096-byte fragments, RSV1 on the first only; Safari one frame."""
    async def go():
        raw = await RawWs.open(zserver.ws, [f"User-Agent: {ua}", "Sec-WebSocket-Extensions: permessage-deflate"])
        pub = await nats_ws(zserver, compression=None)
        try:
            assert raw.headers.get("sec-websocket-extensions") == NEGOTIATED
            await raw.frame()
            raw.send(CONNECT + b"SUB bz 1\r\nPING\r\n")
            await raw.data_until(b"PONG")
            body = os.urandom(8192)
            await pub.send(b"PUB bz %d\r\n%s\r\n" % (len(body), body))
            message, frames = b"", []
            while True:
                fin, rsv1, op, payload = await raw.frame()
                frames.append((fin, rsv1, op, len(payload)))
                message += payload
                if fin:
                    break
            assert frames[0][1], "RSV1 on the first frame"
            assert all(not f[1] for f in frames[1:]), f"RSV1 only on the first frame: {frames}"
            assert all(f[2] == 0 for f in frames[1:]), "continuation frames"
            if fragmented:
                assert len(frames) > 1 and all(f[3] <= 4096 for f in frames), frames
            else:
                assert len(frames) == 1, frames
            assert inflate(message) == b"MSG bz 1 %d\r\n%s\r\n" % (len(body), body)
        finally:
            raw.close()
            await pub.close()

    arun(go())


def test_one_megabyte_compressed_client_message(zserver):
    async def go():
        raw = await RawWs.open(zserver.ws, ["Sec-WebSocket-Extensions: permessage-deflate"])
        sub = await nats_ws(zserver)
        try:
            await raw.frame()
            await sub.send(b"SUB zmb 1\r\nPING\r\n")
            await expect(sub, b"PONG")
            body = (os.urandom(1024).hex().encode() * 512)[: 1024 * 1024]
            raw.send(deflate(CONNECT + b"PUB zmb %d\r\n%s\r\nPING\r\n" % (len(body), body)), rsv1=True)
            await raw.data_until(b"PONG", timeout=10)
            got = await expect(sub, body + b"\r\n", timeout=10)
            assert b"MSG zmb 1 %d\r\n%s\r\n" % (len(body), body) in got
        finally:
            raw.close()
            await sub.close()

    arun(go())


def test_close_with_invalid_utf8_reason_gets_1007(plain):
    async def go():
        raw = await RawWs.open(plain.ws)
        try:
            await raw.frame()
            raw.send(b"\x03\xe8\xff\xfe", opcode=8)
            while True:
                fin, rsv1, op, payload = await raw.frame()
                if op == 8:
                    break
            assert payload[:2] == (1007).to_bytes(2, "big"), payload
        finally:
            raw.close()

    arun(go())
