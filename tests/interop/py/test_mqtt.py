"""MQTT 3.1.1 clients (paho-mqtt) against the server, over TCP and over WebSocket at /mqtt, and
bridged to NATS (nats-py). The same cases run against nats-server 2.9.10 (with the JetStream it
needs for MQTT) and natsws (without); where the two deliberately differ the case says so."""
import asyncio
import queue
import socket
import struct
import tempfile
import time

import nats
import paho.mqtt.client as mqtt
import pytest

from conftest import KIND, RUN_DIR

pytestmark = pytest.mark.timeout(60)

WAIT = 10


def scenario(start, name):
    jetstream = ""
    if KIND == "nats-server":
        store = tempfile.mkdtemp(prefix="js-", dir=RUN_DIR)
        jetstream = 'jetstream { store_dir: "%s" }' % store
    return start(name, JETSTREAM=jetstream)


class Client:
    """A paho client whose callbacks feed queues, so every wait is bounded."""

    def __init__(self, client_id, transport="tcp", clean=True, **kw):
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            transport=transport,
            clean_session=clean,
            **kw,
        )
        self.connacks = queue.Queue()
        self.messages = queue.Queue()
        self.subacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.c.on_connect = lambda c, u, flags, rc, props: self.connacks.put(rc)
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)
        self.c.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put([int(r.value) for r in rcs])
        self.c.on_disconnect = lambda c, u, flags, rc, props: self.disconnects.put(rc)

    def connect(self, port, keepalive=30):
        self.c.connect("127.0.0.1", port, keepalive=keepalive)
        self.c.loop_start()
        return self.connacks.get(timeout=WAIT)

    def subscribe(self, *filters):
        self.c.subscribe([(f, q) for f, q in filters])
        return self.subacks.get(timeout=WAIT)

    def message(self):
        return self.messages.get(timeout=WAIT)

    def no_message(self, seconds=0.5):
        with pytest.raises(queue.Empty):
            self.messages.get(timeout=seconds)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def pubsub_round(sub, pub):
    assert sub.subscribe(("a/+/c", 0), ("x/#", 0)) == [0, 0]
    pub.c.publish("a/b/c", b"one", qos=0)
    m = sub.message()
    assert (m.topic, m.payload, m.qos) == ("a/b/c", b"one", 0)
    # `x/#` also matches its parent level `x`, as MQTT requires.
    pub.c.publish("x", b"parent", qos=0)
    pub.c.publish("x/y/z", b"deep", qos=0)
    got = sorted((sub.message().payload, sub.message().payload))
    assert got == [b"deep", b"parent"]
    pub.c.publish("a/b/d", b"other", qos=0)
    sub.no_message()


def test_mqtt_tcp_publish_subscribe(start):
    s = scenario(start, "mqtt")
    sub, pub = Client("sub-tcp"), Client("pub-tcp")
    assert sub.connect(s.mqtt) == 0
    assert pub.connect(s.mqtt) == 0
    try:
        pubsub_round(sub, pub)
    finally:
        sub.close()
        pub.close()


def test_mqtt_over_websocket_path(start):
    s = scenario(start, "mqtt")
    sub = Client("sub-ws", transport="websockets")
    sub.c.ws_set_options(path="/mqtt", headers={"Sec-WebSocket-Protocol": "mqtt"})
    pub = Client("pub-tcp2")
    assert sub.connect(s.ws) == 0
    assert pub.connect(s.mqtt) == 0
    try:
        pubsub_round(sub, pub)
    finally:
        sub.close()
        pub.close()


def test_mqtt_and_nats_both_ways(start):
    s = scenario(start, "mqtt")
    m = Client("bridge")
    assert m.connect(s.mqtt) == 0
    assert m.subscribe(("from/nats/+", 0)) == [0]

    async def run():
        nc = await nats.connect(s.tcp_url)
        got = asyncio.Queue()

        async def cb(msg):
            await got.put(msg)

        await nc.subscribe("sensors.>", cb=cb)
        await nc.flush()
        # MQTT → NATS: the subject is the mapped topic, with nats-server's Nmqtt-Pub header.
        m.c.publish("sensors/7", b"21.5", qos=0)
        msg = await asyncio.wait_for(got.get(), WAIT)
        assert msg.subject == "sensors.7"
        assert msg.data == b"21.5"
        assert msg.headers == {"Nmqtt-Pub": "0"}
        m.c.publish("sensors/8", b"q1", qos=1).wait_for_publish(WAIT)
        msg = await asyncio.wait_for(got.get(), WAIT)
        assert (msg.subject, msg.data, msg.headers) == ("sensors.8", b"q1", {"Nmqtt-Pub": "1"})
        # NATS → MQTT.
        await nc.publish("from.nats.x", b"hello")
        await nc.flush()
        await nc.close()

    asyncio.run(run())
    try:
        msg = m.message()
        assert (msg.topic, msg.payload) == ("from/nats/x", b"hello")
    finally:
        m.close()


def test_qos1_publish_is_acknowledged_and_subscription_granted(start):
    s = scenario(start, "mqtt")
    sub, pub = Client("q1-sub"), Client("q1-pub")
    assert sub.connect(s.mqtt) == 0
    assert pub.connect(s.mqtt) == 0
    try:
        # QoS 2 is granted as QoS 1 (nats-server 2.9.10 has no QoS 2).
        assert sub.subscribe(("q/1", 1), ("q/2", 2)) == [1, 1]
        info = pub.c.publish("q/1", b"acked", qos=1)
        info.wait_for_publish(WAIT)
        assert info.is_published()
        msg = sub.message()
        assert (msg.payload, msg.qos) == (b"acked", 1)
        # A QoS 0 publish reaches the QoS 1 subscription at QoS 0.
        pub.c.publish("q/1", b"zero", qos=0)
        msg = sub.message()
        assert (msg.payload, msg.qos) == (b"zero", 0)
    finally:
        sub.close()
        pub.close()


def test_unsubscribe_and_ping(start):
    s = scenario(start, "mqtt")
    c = Client("unsub")
    # A two-second keep-alive: paho pings, the server answers, the connection stays up.
    assert c.connect(s.mqtt, keepalive=2) == 0
    try:
        assert c.subscribe(("u/t", 0)) == [0]
        c.c.publish("u/t", b"1")
        assert c.message().payload == b"1"
        result, _ = c.c.unsubscribe("u/t")
        assert result == mqtt.MQTT_ERR_SUCCESS
        time.sleep(0.3)
        c.c.publish("u/t", b"2")
        c.no_message()
        time.sleep(5)
        assert c.disconnects.empty()
        assert c.c.is_connected()
    finally:
        c.close()


def raw_connect(port, client_id, keepalive=0, will=None, clean=True, session_present=False, login=None):
    """An MQTT connection on a plain socket (paho cannot drop a connection without DISCONNECT);
    `login` is (user, password)."""
    flags = 0x02 if clean else 0x00
    payload = struct.pack(">H", len(client_id)) + client_id.encode()
    if will:
        topic, message = will
        flags |= 0x04
        payload += struct.pack(">H", len(topic)) + topic.encode() + struct.pack(">H", len(message)) + message
    if login:
        flags |= 0xC0
        for field in login:
            payload += struct.pack(">H", len(field)) + field.encode()
    body = struct.pack(">H", 4) + b"MQTT" + bytes([4, flags]) + struct.pack(">H", keepalive) + payload
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(bytes([0x10, len(body)]) + body)
    assert sock.recv(4) == bytes([0x20, 0x02, int(session_present), 0x00])
    return sock


def test_will_on_abrupt_close_not_on_disconnect(start):
    s = scenario(start, "mqtt")
    watcher = Client("watcher")
    assert watcher.connect(s.mqtt) == 0
    try:
        assert watcher.subscribe(("wills/+", 0)) == [0]
        # DISCONNECT discards the will.
        polite = raw_connect(s.mqtt, "polite", will=("wills/polite", b"bye"))
        polite.sendall(b"\xe0\x00")
        polite.close()
        # A dropped connection publishes it.
        rude = raw_connect(s.mqtt, "rude", will=("wills/rude", b"gone"))
        rude.close()
        msg = watcher.message()
        assert (msg.topic, msg.payload) == ("wills/rude", b"gone")
        watcher.no_message()
    finally:
        watcher.close()


def test_keep_alive_expiry_closes(start):
    s = scenario(start, "mqtt")
    sock = raw_connect(s.mqtt, "sleepy", keepalive=1)
    # Nothing sent for 1.5 × the keep-alive: the server closes the connection. (nats-server
    # computes Duration(1 * 1.5) * time.Second, which truncates to 1 s for a keep-alive of 1.)
    sock.settimeout(5)
    started = time.monotonic()
    assert sock.recv(1) == b""
    assert 0.5 <= time.monotonic() - started < 4.5
    sock.close()


def test_same_client_id_takes_over(start):
    s = scenario(start, "mqtt")
    first = raw_connect(s.mqtt, "twin")
    second = raw_connect(s.mqtt, "twin")
    first.settimeout(5)
    assert first.recv(1) == b""
    second.sendall(b"\xc0\x00")
    assert second.recv(2) == b"\xd0\x00"
    first.close()
    second.close()


def test_second_connect_and_bad_packets_close(start):
    s = scenario(start, "mqtt")
    for junk in [
        # A second CONNECT.
        b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x00\x00\x01x",
        # A remaining length that never ends.
        b"\x30\xff\xff\xff\xff\x01",
        # QoS 2 (nats-server 2.9.10 refuses it).
        b"\x34\x06\x00\x01t\x00\x01x",
    ]:
        sock = raw_connect(s.mqtt, "bad")
        sock.sendall(junk)
        sock.settimeout(5)
        assert sock.recv(16) == b"", junk
        sock.close()
    # A PUBLISH topic that is not UTF-8: MQTT-1.5.3-1 requires closing, natsws does;
    # nats-server 2.9.10 does not check PUBLISH topics and keeps the connection.
    sock = raw_connect(s.mqtt, "bad")
    sock.sendall(b"\x30\x05\x00\x02\xc3\x28x\xc0\x00")
    sock.settimeout(5)
    assert sock.recv(16) == (b"\xd0\x00" if KIND == "nats-server" else b"")
    sock.close()
    # Other clients are unharmed.
    c = Client("fine")
    assert c.connect(s.mqtt) == 0
    c.close()


def test_unacceptable_protocol_level_gets_connack_1(start):
    s = scenario(start, "mqtt")
    body = struct.pack(">H", 4) + b"MQTT" + bytes([3, 2]) + b"\x00\x00" + struct.pack(">H", 1) + b"x"
    sock = socket.create_connection(("127.0.0.1", s.mqtt), timeout=WAIT)
    sock.sendall(bytes([0x10, len(body)]) + body)
    assert sock.recv(4) == b"\x20\x02\x00\x01"
    sock.close()


def test_mqtt_auth_with_server_users(start):
    s = scenario(start, "mqtt_auth")
    ok = Client("auth-ok")
    ok.c.username_pw_set("alice", "apass")
    assert ok.connect(s.mqtt) == 0
    ok.close()
    for user, password in [("alice", "wrong"), (None, None), ("bob", "bpass")]:
        c = Client("auth-bad")
        if user:
            c.c.username_pw_set(user, password)
        rc = c.connect(s.mqtt)
        # CONNACK 5 (bob may connect over STANDARD only); paho names the code.
        assert str(rc) == "Not authorized", (user, rc)
        c.c.loop_stop()


def test_retained_message_for_late_subscriber(start):
    s = scenario(start, "mqtt")
    pub = Client("ret-pub")
    assert pub.connect(s.mqtt) == 0
    try:
        pub.c.publish("ret/a", b"old", qos=1, retain=True).wait_for_publish(WAIT)
        pub.c.publish("ret/a", b"new", qos=1, retain=True).wait_for_publish(WAIT)
        pub.c.publish("ret/b", b"gone", qos=1, retain=True).wait_for_publish(WAIT)
        # An empty retained publish clears the topic.
        pub.c.publish("ret/b", b"", qos=1, retain=True).wait_for_publish(WAIT)
        late = Client("ret-late")
        assert late.connect(s.mqtt) == 0
        try:
            late.subscribe(("ret/+", 0))
            msg = late.message()
            assert (msg.topic, msg.payload, msg.retain) == ("ret/a", b"new", True)
            late.no_message()
        finally:
            late.close()
    finally:
        pub.close()


def test_mqtt_clients_in_connz_and_varz(start):
    import json
    import urllib.request

    s = scenario(start, "mqtt")
    c = Client("mon-1")
    assert c.connect(s.mqtt) == 0
    try:
        assert c.subscribe(("a/b", 0)) == [0]

        def get(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{s.http}{path}", timeout=WAIT) as r:
                return json.load(r)

        conns = [x for x in get("/connz?subs=1")["connections"] if x.get("type") == "mqtt"]
        assert len(conns) == 1
        x = conns[0]
        assert (x["kind"], x["mqtt_client"], x["subscriptions_list"]) == ("Client", "mon-1", ["a.b"])
        assert get("/varz")["mqtt"] == {"host": "127.0.0.1", "port": s.mqtt, "tls_timeout": 2}
    finally:
        c.close()


def read_packet(sock):
    """One whole packet from a raw socket: (first byte, body)."""
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError("connection closed")
            data += chunk
        return data

    first = exactly(1)[0]
    length, shift = 0, 0
    while True:
        b = exactly(1)[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    return first, exactly(length)


def test_qos1_redelivered_with_dup_after_ack_wait(start):
    s = scenario(start, "mqtt_ackwait")
    sub = raw_connect(s.mqtt, "no-acker")
    # SUBSCRIBE pi=1 to q/r at QoS 1.
    body = b"\x00\x01" + struct.pack(">H", 3) + b"q/r" + b"\x01"
    sub.sendall(bytes([0x82, len(body)]) + body)
    assert read_packet(sub) == (0x90, b"\x00\x01\x01")
    pub = Client("acker-pub")
    assert pub.connect(s.mqtt) == 0
    try:
        for payload in (b"m1", b"m2", b"m3"):
            pub.c.publish("q/r", payload, qos=1).wait_for_publish(WAIT)

        def publish_fields(packet):
            first, body = packet
            assert first & 0xF0 == 0x30, packet
            n = struct.unpack(">H", body[:2])[0]
            pi = struct.unpack(">H", body[2 + n:4 + n])[0]
            return (bool(first & 0x08), (first >> 1) & 3, body[2:2 + n], pi, body[4 + n:])

        sub.settimeout(5)
        # max_ack_pending 2: two deliveries, then nothing new until one is acknowledged.
        first = [publish_fields(read_packet(sub)) for _ in range(2)]
        assert [(dup, qos, topic, data) for dup, qos, topic, _, data in first] == [
            (False, 1, b"q/r", b"m1"),
            (False, 1, b"q/r", b"m2"),
        ]
        # No PUBACK: after ack_wait both come again with DUP and the same packet ids.
        again = sorted(publish_fields(read_packet(sub)) for _ in range(2))
        assert [(dup, data) for dup, _, _, _, data in again] == [(True, b"m1"), (True, b"m2")]
        assert sorted(pi for *_, pi, _ in first) == sorted(pi for *_, pi, _ in again)
    finally:
        pub.close()
        sub.close()


def test_session_resumed_and_qos1_redelivered_after_drop(start):
    s = scenario(start, "mqtt_ackwait")
    sub = raw_connect(s.mqtt, "resumer", clean=False)
    body = b"\x00\x01" + struct.pack(">H", 3) + b"s/r" + b"\x01"
    sub.sendall(bytes([0x82, len(body)]) + body)
    assert read_packet(sub) == (0x90, b"\x00\x01\x01")
    pub = Client("resume-pub")
    assert pub.connect(s.mqtt) == 0
    try:
        pub.c.publish("s/r", b"keep me", qos=1).wait_for_publish(WAIT)
        sub.settimeout(5)
        first, body = read_packet(sub)
        assert first & 0xF6 == 0x32 and body.endswith(b"keep me"), (first, body)
        # Dropped without PUBACK (and without DISCONNECT).
        sub.close()
        time.sleep(0.3)
        again = raw_connect(s.mqtt, "resumer", clean=False, session_present=True)
        again.settimeout(5)
        first, body = read_packet(again)
        assert first & 0xF0 == 0x30 and first & 0x08, "redelivered with DUP"
        assert body.endswith(b"keep me")
        # The subscription is part of the session.
        pi = body[5:7]
        again.sendall(b"\x40\x02" + pi)
        pub.c.publish("s/r", b"after", qos=0)
        first, body = read_packet(again)
        assert body.endswith(b"after")
        again.sendall(b"\xe0\x00")
        again.close()
        # A clean start discards the session.
        clean = raw_connect(s.mqtt, "resumer", clean=True)
        clean.close()
    finally:
        pub.close()


def test_mqtt_block_credentials_override(start):
    s = scenario(start, "mqtt_override")
    for user, password, expect in [
        ("mq", "mqpass", "Success"),
        ("mq", "nope", "Not authorized"),
        # The server's token is not an MQTT credential when the block has its own.
        ("any", "nats-token", "Not authorized"),
    ]:
        c = Client("override")
        c.c.username_pw_set(user, password)
        rc = c.connect(s.mqtt)
        assert str(rc) == expect, (user, rc)
        if expect == "Success":
            c.close()
        else:
            c.c.loop_stop()

    async def nats_client():
        nc = await nats.connect(s.tcp_url, token="nats-token")
        await nc.close()

    asyncio.run(nats_client())


def test_state_survives_restart_with_store_dir(start):
    """A retained message and a clean_session=false session (its subscription and a QoS 1
    delivery left unacknowledged) survive a restart with a storage directory: nats-server keeps
    them in JetStream under `jetstream { store_dir }`, natsws in `store_dir`/mqtt."""
    store = tempfile.mkdtemp(prefix="store-", dir=RUN_DIR)
    block = ('jetstream { store_dir: "%s" }' if KIND == "nats-server" else 'store_dir: "%s"') % store
    s = start("mqtt_store", STORE=block)
    sub = raw_connect(s.mqtt, "durable", clean=False)
    body = b"\x00\x01" + struct.pack(">H", 3) + b"d/x" + b"\x01"
    sub.sendall(bytes([0x82, len(body)]) + body)
    assert read_packet(sub) == (0x90, b"\x00\x01\x01")
    pub = Client("store-pub")
    assert pub.connect(s.mqtt) == 0
    pub.c.publish("keep/r", b"retained", qos=1, retain=True).wait_for_publish(WAIT)
    pub.c.publish("d/x", b"unacked", qos=1).wait_for_publish(WAIT)
    sub.settimeout(5)
    first, body = read_packet(sub)
    assert first & 0xF6 == 0x32 and body.endswith(b"unacked"), (first, body)
    pub.close()
    # Dropped without PUBACK, then the server restarts.
    sub.close()
    time.sleep(0.3)
    s.restart()

    def connect_retrying(client_id, **kw):
        # nats-server recovers its JetStream streams after it starts listening.
        deadline = time.monotonic() + WAIT
        while True:
            try:
                return raw_connect(s.mqtt, client_id, **kw)
            except (AssertionError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    again = connect_retrying("durable", clean=False, session_present=True)
    again.settimeout(5)
    first, body = read_packet(again)
    assert first & 0xF0 == 0x30 and body.endswith(b"unacked"), (first, body)
    again.sendall(b"\x40\x02" + body[5:7])
    late = Client("store-late")
    assert late.connect(s.mqtt) == 0
    try:
        late.subscribe(("keep/+", 0))
        msg = late.message()
        assert (msg.topic, msg.payload, msg.retain) == ("keep/r", b"retained", True)
        # The subscription came back with the session.
        late.c.publish("d/x", b"after restart", qos=0)
        first, body = read_packet(again)
        assert body.endswith(b"after restart"), (first, body)
    finally:
        late.close()
        again.sendall(b"\xe0\x00")
        again.close()


def raw_subscribe(sock, topic, packet_id=1):
    """SUBSCRIBE to `topic` at QoS 1 on a raw socket; checks the SUBACK grants QoS 1."""
    body = struct.pack(">H", packet_id) + struct.pack(">H", len(topic)) + topic.encode() + b"\x01"
    sock.sendall(bytes([0x82, len(body)]) + body)
    assert read_packet(sock) == (0x90, struct.pack(">H", packet_id) + b"\x01")


def publish_fields(packet):
    """(dup, qos, topic, packet id, payload) of a QoS 1 PUBLISH."""
    first, body = packet
    assert first & 0xF0 == 0x30, packet
    n = struct.unpack(">H", body[:2])[0]
    pi = struct.unpack(">H", body[2 + n:4 + n])[0]
    return (bool(first & 0x08), (first >> 1) & 3, body[2:2 + n].decode(), pi, body[4 + n:])


def receive_acking(sock, count, window):
    """Reads `count` first deliveries (DUPs of ones already seen skipped), never seeing more
    than `window` unacknowledged, and PUBACKs each after reading it; returns the payloads in
    arrival order."""
    got, seen = [], set()
    unacked = 0
    while len(got) < count:
        dup, qos, _, pi, payload = publish_fields(read_packet(sock))
        assert qos == 1
        if dup and payload in seen:
            continue
        unacked += 1
        assert unacked <= window, "more than max_ack_pending unacknowledged"
        got.append(payload)
        seen.add(payload)
        sock.sendall(b"\x40\x02" + struct.pack(">H", pi))
        unacked -= 1
    return got


def test_qos1_beyond_max_ack_pending_waits_for_pubacks(start):
    """Three times max_ack_pending QoS 1 messages to a subscriber that acknowledges slowly:
    the first four arrive, nothing more until a PUBACK, then one per PUBACK; every message
    arrives once, in order (nats-server: the subscription's JetStream consumer has
    MaxAckPending 4; natsws holds them in the session)."""
    s = scenario(start, "mqtt_held")
    sub = raw_connect(s.mqtt, "slow-acker")
    raw_subscribe(sub, "h/q")
    pub = Client("held-pub")
    assert pub.connect(s.mqtt) == 0
    sent = [b"m%02d" % i for i in range(12)]
    try:
        for payload in sent:
            pub.c.publish("h/q", payload, qos=1).wait_for_publish(WAIT)
        sub.settimeout(5)
        window = [publish_fields(read_packet(sub)) for _ in range(4)]
        assert [(dup, data) for dup, _, _, _, data in window] == [(False, m) for m in sent[:4]]
        sub.settimeout(0.7)
        with pytest.raises(socket.timeout):
            read_packet(sub)
        sub.settimeout(5)
        got = [data for *_, data in window]
        unacked = [pi for _, _, _, pi, _ in window]
        while unacked:
            sub.sendall(b"\x40\x02" + struct.pack(">H", unacked.pop(0)))
            if len(got) < len(sent):
                # Each PUBACK frees one place: exactly one new delivery follows.
                dup, _, _, pi, data = publish_fields(read_packet(sub))
                assert not dup
                got.append(data)
                unacked.append(pi)
        assert got == sent, "every message once, in order"
        sub.settimeout(0.7)
        with pytest.raises(socket.timeout):
            read_packet(sub)
    finally:
        pub.close()
        sub.close()


def test_kept_session_gets_qos1_published_while_away(start):
    """A clean_session=false subscriber disconnects; QoS 1 messages published meanwhile (more
    than max_ack_pending) are all delivered, in order, when it comes back (nats-server: its
    durable consumer kept collecting)."""
    s = scenario(start, "mqtt_held")
    sub = raw_connect(s.mqtt, "away-sub", clean=False)
    raw_subscribe(sub, "away/#")
    sub.sendall(b"\xe0\x00")
    sub.close()
    time.sleep(0.3)
    pub = Client("away-pub")
    assert pub.connect(s.mqtt) == 0
    sent = [b"a%02d" % i for i in range(10)]
    try:
        for payload in sent:
            pub.c.publish("away/x", payload, qos=1).wait_for_publish(WAIT)
        pub.c.publish("away/x", b"qos0 not kept", qos=0).wait_for_publish(WAIT)
        again = raw_connect(s.mqtt, "away-sub", clean=False, session_present=True)
        again.settimeout(5)
        assert receive_acking(again, len(sent), 4) == sent
        again.settimeout(0.7)
        with pytest.raises(socket.timeout):
            read_packet(again)
        again.sendall(b"\xe0\x00")
        again.close()
        raw_connect(s.mqtt, "away-sub", clean=True).close()
    finally:
        pub.close()


def test_kept_session_messages_survive_restart(start):
    """The same across a restart with a storage directory: QoS 1 messages published while
    the clean_session=false subscriber was away are delivered after the server restarts."""
    store = tempfile.mkdtemp(prefix="store-", dir=RUN_DIR)
    block = ('jetstream { store_dir: "%s" }' if KIND == "nats-server" else 'store_dir: "%s"') % store
    s = start("mqtt_store", STORE=block)
    sub = raw_connect(s.mqtt, "restart-sub", clean=False)
    raw_subscribe(sub, "rs/+")
    sub.sendall(b"\xe0\x00")
    sub.close()
    time.sleep(0.3)
    pub = Client("restart-pub")
    assert pub.connect(s.mqtt) == 0
    sent = [b"r%02d" % i for i in range(10)]
    for payload in sent:
        pub.c.publish("rs/x", payload, qos=1).wait_for_publish(WAIT)
    pub.close()
    s.restart()
    deadline = time.monotonic() + WAIT
    while True:
        try:
            again = raw_connect(s.mqtt, "restart-sub", clean=False, session_present=True)
            break
        except (AssertionError, OSError):
            # nats-server recovers its JetStream streams after it starts listening.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    again.settimeout(5)
    try:
        assert receive_acking(again, len(sent), 1024) == sent
    finally:
        again.sendall(b"\xe0\x00")
        again.close()


def test_resumed_session_gets_nothing_for_a_filter_its_user_may_not_subscribe(start):
    """A clean_session=false session kept by one user and resumed by another with narrower
    subscribe permissions: the QoS 1 messages collected for a filter the second user may not
    subscribe to are not delivered to it (nats-server: the filter's subscription, and so its
    consumer's delivery subscription, is refused on resume); those of a filter it may
    subscribe to are."""
    s = scenario(start, "mqtt_perms")
    wide, narrow = ("wide", "wpass"), ("narrow", "npass")
    sub = raw_connect(s.mqtt, "handed-over", clean=False, login=wide)
    raw_subscribe(sub, "k/+", 1)
    raw_subscribe(sub, "z/+", 2)
    sub.sendall(b"\xe0\x00")
    sub.close()
    time.sleep(0.3)
    pub = Client("handover-pub")
    pub.c.username_pw_set(*wide)
    assert pub.connect(s.mqtt) == 0
    try:
        for topic, payload in (("z/x", b"z1"), ("k/open", b"k1"), ("z/y", b"z2")):
            pub.c.publish(topic, payload, qos=1).wait_for_publish(WAIT)
    finally:
        pub.close()
    again = raw_connect(s.mqtt, "handed-over", clean=False, session_present=True, login=narrow)
    again.settimeout(5)
    try:
        assert receive_acking(again, 1, 1024) == [b"k1"]
        again.settimeout(0.7)
        with pytest.raises(socket.timeout):
            read_packet(again)
    finally:
        again.sendall(b"\xe0\x00")
        again.close()


def test_overlapping_qos1_filters_copy_each_and_unsubscribe_stops_its_copies(start):
    """`a/#` and `a/b` at QoS 1 on one session: a message on a/b arrives twice (one copy per
    subscription; nats-server: one consumer each). With the window full and more held,
    unsubscribing a/b leaves no second copy of anything held: what arrives afterwards arrives
    once (nats-server delivers a/#'s not yet sent, and those its consumer tried while the
    window was full come again after ack_wait)."""
    s = scenario(start, "mqtt_held")
    sub = raw_connect(s.mqtt, "overlap")
    raw_subscribe(sub, "a/#", 1)
    raw_subscribe(sub, "a/b", 2)
    pub = Client("overlap-pub")
    assert pub.connect(s.mqtt) == 0
    try:
        pub.c.publish("a/b", b"one", qos=1).wait_for_publish(WAIT)
        sub.settimeout(5)
        first = [publish_fields(read_packet(sub)) for _ in range(2)]
        assert [data for *_, data in first] == [b"one", b"one"]
        for _, _, _, pi, _ in first:
            sub.sendall(b"\x40\x02" + struct.pack(">H", pi))
        for i in range(6):
            pub.c.publish("a/b", b"h%d" % i, qos=1).wait_for_publish(WAIT)
        window = [publish_fields(read_packet(sub)) for _ in range(4)]
        assert [data for *_, data in window] == [b"h0", b"h0", b"h1", b"h1"]
        body = struct.pack(">H", 9) + struct.pack(">H", 3) + b"a/b"
        sub.sendall(bytes([0xA2, len(body)]) + body)
        assert read_packet(sub) == (0xB0, struct.pack(">H", 9))
        for _, _, _, pi, _ in window:
            sub.sendall(b"\x40\x02" + struct.pack(">H", pi))
        got = []
        sub.settimeout(1.5)
        try:
            while True:
                _, _, topic, pi, data = publish_fields(read_packet(sub))
                got.append(data)
                sub.sendall(b"\x40\x02" + struct.pack(">H", pi))
        except socket.timeout:
            pass
        assert len(got) == len(set(got)), "one copy each after the unsubscribe: %r" % got
        assert b"h4" in got and b"h5" in got, got
    finally:
        pub.close()
        sub.sendall(b"\xe0\x00")
        sub.close()
