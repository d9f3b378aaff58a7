"""Drives the ws-codec echo example with the Python `websockets` library.

Usage: py_client.py URL deflate|plain
Exits 0 after every check passed; prints what failed otherwise.
"""
import os
import random
import sys

from websockets.sync.client import connect


def main():
    url, mode = sys.argv[1], sys.argv[2]
    offer = mode == "deflate" or os.environ.get("NATSWS_OFFER_DEFLATE") == "1"
    compression = "deflate" if offer else None
    rng = random.Random(7)
    checks = 0
    with connect(url, compression=compression, max_size=None, open_timeout=10, close_timeout=10) as ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions")
        if mode == "deflate":
            assert ext and "permessage-deflate" in ext, f"extension not negotiated: {ext!r}"
        else:
            assert ext is None, f"unexpected extension {ext!r}"
        cases = [
            "hello",
            "héllo wörld ✓",
            b"\x00\x01\x02",
            b"",
            "",
            "x" * 70,
            b"PUB foo 5\r\nhello\r\n" * 1000,
            rng.randbytes(200_000),
            ("json " + '{"k":"v","n":123}' * 60_000),
            rng.randbytes(1 << 20),
        ]
        for case in cases:
            ws.send(case)
            got = ws.recv(timeout=30)
            assert type(got) is type(case), f"kind changed: sent {type(case)} got {type(got)}"
            assert got == case, f"echo mismatch for a {len(case)}-long {type(case).__name__}"
            checks += 1
        # Fragmented messages: binary and text.
        frags = [b"frag1-", b"frag2-" * 1000, b"frag3"]
        ws.send(iter(frags))
        assert ws.recv(timeout=30) == b"".join(frags)
        checks += 1
        tfrags = ["un ", "deux " * 3000, "trois ✓"]
        ws.send(iter(tfrags))
        assert ws.recv(timeout=30) == "".join(tfrags)
        checks += 1
        big = [rng.randbytes(100_000) for _ in range(5)]
        ws.send(iter(big))
        assert ws.recv(timeout=30) == b"".join(big)
        checks += 1
        # Ping: the pong must come back with the same payload.
        pong = ws.ping(b"are you there")
        assert pong.wait(10), "no pong"
        checks += 1
        ws.close(1000, "bye")
        assert ws.close_code == 1000, f"close code {ws.close_code}"
        assert ws.close_reason == "bye", f"close reason {ws.close_reason!r}"
        checks += 1
    print(f"python websockets {mode}: ok {checks} checks")


if __name__ == "__main__":
    main()
