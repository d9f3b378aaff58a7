// Core messaging through nats.ws (WebSocket, Node + `ws`) and nats.js (TCP) on one server:
// connect, pub/sub in every direction, request/reply, queue groups, wildcards, headers, 1 MB
// payloads, 100k messages in order, unsubscribe, auto-unsubscribe, drain and no_echo.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { after, before, describe, it } from "node:test";
import { closeAll, transports, wsClient, tcpClient } from "../lib/clients.mjs";
import { dec, enc, listen, rawWs, sleep, startServer, within, orError } from "../lib/harness.mjs";

const T = { timeout: 30000 };
const pairs = [
  ["ws", "ws"],
  ["ws", "tcp"],
  ["tcp", "ws"],
];

describe("messaging (scenario basic)", () => {
  let server;
  const conns = [];
  const open = async (kind, opts) => {
    const nc = await transports[kind].connect(server, opts);
    conns.push(nc);
    return nc;
  };

  before(async () => {
    server = await orError(startServer("basic"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("connect over ws: INFO advertises headers, proto 1 and max_payload 1048576", T, async () => {
    const nc = await open("ws");
    assert.equal(nc.info.max_payload, 1048576);
    assert.equal(nc.info.headers, true);
    assert.equal(nc.info.proto, 1);
    assert.ok(nc.info.server_id, "server_id present");
    assert.equal(nc.info.client_ip, "127.0.0.1");
    await within(3000, nc.flush(), "flush (PING/PONG)");
    assert.equal(nc.isClosed(), false);
  });

  it("connect over tcp", T, async () => {
    const nc = await open("tcp");
    assert.equal(nc.info.max_payload, 1048576);
    await within(3000, nc.flush(), "flush");
  });

  for (const [p, s] of pairs) {
    it(`pub/sub ${p} -> ${s}`, T, async () => {
      const pub = await open(p);
      const sub = await open(s);
      const subject = `ps.${p}.${s}`;
      const subn = listen(sub, subject);
      await sub.flush();
      for (let i = 0; i < 10; i++) pub.publish(subject, enc.encode(`hello ${i}`));
      await pub.flush();
      const got = await subn.count(10);
      assert.deepEqual(
        got.map((m) => [m.subject, dec.decode(m.data)]),
        [...Array(10).keys()].map((i) => [subject, `hello ${i}`]),
      );
      await subn.quiet(10, 200);
    });
  }

  for (const [req, rep] of pairs) {
    it(`request/reply: ${req} requester, ${rep} responder`, T, async () => {
      const a = await open(req);
      const b = await open(rep);
      const subject = `rr.${req}.${rep}`;
      const responder = b.subscribe(subject);
      (async () => {
        for await (const m of responder) m.respond(enc.encode(`re:${dec.decode(m.data)}`));
      })();
      await b.flush();
      for (let i = 0; i < 5; i++) {
        const r = await a.request(subject, enc.encode(`q${i}`), { timeout: 3000 });
        assert.equal(dec.decode(r.data), `re:q${i}`);
      }
      responder.unsubscribe();
    });
  }

  it("1000 concurrent requests from ws to a tcp responder all get their own reply", T, async () => {
    const a = await open("ws");
    const b = await open("tcp");
    const svc = b.subscribe("rr.many", { callback: (_, m) => m.respond(m.data) });
    await b.flush();
    const replies = await Promise.all(
      [...Array(1000).keys()].map((i) => a.request("rr.many", enc.encode(String(i)), { timeout: 10000 })),
    );
    assert.deepEqual(replies.map((r) => Number(dec.decode(r.data))), [...Array(1000).keys()]);
    svc.unsubscribe();
  });

  it("request with no responders over ws gets the 503 no-responders status", T, async () => {
    const a = await open("ws");
    await assert.rejects(a.request("nobody.home", enc.encode("x"), { timeout: 3000 }), (e) => {
      assert.equal(e.code, "503");
      return true;
    });
  });

  it("queue group spanning ws and tcp members delivers each message exactly once", T, async () => {
    const members = [await open("ws"), await open("ws"), await open("tcp"), await open("tcp")];
    const pub = await open("ws");
    const seen = new Map();
    const per = members.map(() => 0);
    const subs = members.map((nc, idx) =>
      nc.subscribe("q.work", {
        queue: "workers",
        callback: (err, m) => {
          if (err) return;
          const k = dec.decode(m.data);
          seen.set(k, (seen.get(k) || 0) + 1);
          per[idx]++;
        },
      }),
    );
    await Promise.all(members.map((nc) => nc.flush()));
    const N = 400;
    for (let i = 0; i < N; i++) pub.publish("q.work", enc.encode(String(i)));
    await pub.flush();
    const deadline = Date.now() + 10000;
    while (seen.size < N && Date.now() < deadline) await sleep(20);
    await sleep(200);
    assert.equal(seen.size, N, "every message delivered");
    assert.ok([...seen.values()].every((c) => c === 1), "no message delivered twice");
    assert.ok(per.every((c) => c > 0), `every member got some: ${per}`);
    subs.forEach((s) => s.unsubscribe());
  });

  it("wildcards * and > on a ws subscriber, tcp publisher", T, async () => {
    const sub = await open("ws");
    const pub = await open("tcp");
    const star = listen(sub, "wc.*");
    const gt = listen(sub, "wc.>");
    const mid = listen(sub, "wc.*.c");
    await sub.flush();
    for (const s of ["wc.a", "wc.a.b", "wc.a.c", "wc.b.b.c", "wcx.a", "wc"]) pub.publish(s, enc.encode(s));
    await pub.flush();
    assert.deepEqual((await star.count(1)).map((m) => m.subject), ["wc.a"]);
    assert.deepEqual((await gt.count(4)).map((m) => m.subject), ["wc.a", "wc.a.b", "wc.a.c", "wc.b.b.c"]);
    assert.deepEqual((await mid.count(1)).map((m) => m.subject), ["wc.a.c"]);
    await star.quiet(1, 200);
    await gt.quiet(4, 0);
    await mid.quiet(1, 0);
  });

  for (const [p, s] of pairs) {
    it(`headers ${p} -> ${s}`, T, async () => {
      const pub = await open(p);
      const sub = await open(s);
      const subn = listen(sub, "hdr.x");
      await sub.flush();
      const h = transports[p].lib.headers();
      h.append("X-Single", "one");
      h.append("X-Multi", "a");
      h.append("X-Multi", "b");
      pub.publish("hdr.x", enc.encode("body"), { headers: h });
      pub.publish("hdr.x", new Uint8Array(0), { headers: h });
      await pub.flush();
      const [m1, m2] = await subn.count(2);
      for (const m of [m1, m2]) {
        assert.ok(m.headers, "headers present");
        assert.equal(m.headers.get("X-Single"), "one");
        assert.deepEqual(m.headers.values("X-Multi"), ["a", "b"]);
      }
      assert.equal(dec.decode(m1.data), "body");
      assert.equal(m2.data.length, 0);
    });
  }

  for (const [p, s] of pairs) {
    it(`1 MB payload (exactly max_payload) ${p} -> ${s}`, T, async () => {
      const pub = await open(p);
      const sub = await open(s);
      const subn = listen(sub, "big");
      await sub.flush();
      const data = crypto.randomBytes(1024 * 1024);
      pub.publish("big", data);
      await pub.flush();
      const [m] = await subn.count(1, 15000);
      assert.equal(m.data.length, data.length);
      assert.ok(Buffer.from(m.data).equals(data), "payload intact");
      subn.sub.unsubscribe();
    });
  }

  it("max_payload: nats.ws refuses a 1 MB + 1 payload using the server's INFO", T, async () => {
    const nc = await open("ws");
    assert.throws(() => nc.publish("big", new Uint8Array(1024 * 1024 + 1)), (e) => e.code === "MAX_PAYLOAD_EXCEEDED");
  });

  it("max_payload: the server rejects PUB of 1 MB + 1 over ws with -ERR 'Maximum Payload Violation'", T, async () => {
    const raw = await rawWs(server.ws);
    try {
      assert.equal(raw.http.status, 101);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.send('CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nPUB big 1048577\r\n');
      await raw.waitFor(() => raw.stream.includes("-ERR"), "-ERR");
      assert.match(raw.stream, /-ERR 'Maximum Payload Violation'\r\n/);
      await raw.waitClosed();
      const close = raw.frames.find((f) => f.opcode === 8);
      assert.ok(close, "a close frame follows the -ERR");
      assert.equal(close.payload.readUInt16BE(0), 1009, "close status for max payload");
      assert.equal(close.payload.subarray(2).toString(), "Maximum Message Payload Exceeded");
    } finally {
      raw.close();
    }
  });

  for (const [p, s] of pairs) {
    it(`100k small messages ${p} -> ${s} arrive in order with no loss`, { timeout: 60000 }, async () => {
      const pub = await open(p);
      const sub = await open(s);
      const N = 100000;
      let next = 0;
      let bad = null;
      const done = new Promise((resolve) => {
        sub.subscribe("flood", {
          callback: (err, m) => {
            if (err) {
              bad = String(err);
              resolve();
              return;
            }
            const v = Number(dec.decode(m.data));
            if (v !== next && bad === null) bad = `expected ${next}, got ${v}`;
            next++;
            if (next === N) resolve();
          },
        });
      });
      await sub.flush();
      for (let i = 0; i < N; i++) {
        pub.publish("flood", enc.encode(String(i)));
        if (i % 5000 === 4999) await pub.flush();
      }
      await pub.flush();
      await within(45000, done, `100k messages (got ${next})`).catch((e) => {
        throw new Error(`${e.message}; got ${next}`);
      });
      assert.equal(bad, null);
      assert.equal(next, N);
    });
  }

  for (const kind of ["ws", "tcp"]) {
    it(`unsubscribe stops delivery (${kind} subscriber)`, T, async () => {
      const sub = await open(kind);
      const pub = await open(kind === "ws" ? "tcp" : "ws");
      const l = listen(sub, "unsub.x");
      const s = l.sub;
      await sub.flush();
      pub.publish("unsub.x", enc.encode("1"));
      await pub.flush();
      await l.count(1);
      s.unsubscribe();
      await sub.flush();
      // A second subscription on the same connection proves the server dropped only the first.
      const l2 = listen(sub, "unsub.x");
      await sub.flush();
      pub.publish("unsub.x", enc.encode("2"));
      await pub.flush();
      const [m] = await l2.count(1);
      assert.equal(dec.decode(m.data), "2");
      await l.quiet(1, 100);
      assert.equal(s.isClosed(), true);
    });

    it(`auto-unsubscribe after 5 messages (${kind} subscriber)`, T, async () => {
      const sub = await open(kind);
      const pub = await open(kind === "ws" ? "tcp" : "ws");
      const s = sub.subscribe("auto.x", { max: 5 });
      const s2 = sub.subscribe("auto.y");
      s2.unsubscribe(3);
      await sub.flush();
      for (let i = 0; i < 10; i++) {
        pub.publish("auto.x", enc.encode(String(i)));
        pub.publish("auto.y", enc.encode(String(i)));
      }
      await pub.flush();
      const got = [];
      await within(5000, (async () => {
        for await (const m of s) got.push(dec.decode(m.data));
      })(), "auto-unsubscribed iterator ends");
      assert.deepEqual(got, ["0", "1", "2", "3", "4"]);
      const got2 = [];
      await within(5000, (async () => {
        for await (const m of s2) got2.push(dec.decode(m.data));
      })(), "UNSUB 3 iterator ends");
      assert.deepEqual(got2, ["0", "1", "2"]);
      // The server must not send more: a fresh flush round trip and a new sub still work.
      await sub.flush();
      const probe = listen(sub, "auto.x");
      await sub.flush();
      pub.publish("auto.x", enc.encode("after"));
      await pub.flush();
      assert.equal(dec.decode((await probe.count(1))[0].data), "after");
    });
  }

  it("subscription drain delivers what was published before it (ws)", T, async () => {
    const sub = await open("ws");
    const pub = await open("tcp");
    const s = sub.subscribe("drain.x");
    await sub.flush();
    for (let i = 0; i < 50; i++) pub.publish("drain.x", enc.encode(String(i)));
    await pub.flush();
    await sleep(100);
    const got = [];
    const reader = (async () => {
      for await (const m of s) got.push(Number(dec.decode(m.data)));
    })();
    await within(5000, s.drain(), "sub.drain()");
    await within(5000, reader, "iterator ends after drain");
    assert.deepEqual(got, [...Array(50).keys()]);
  });

  for (const kind of ["ws", "tcp"]) {
    it(`connection drain (${kind}) flushes and closes cleanly`, T, async () => {
      const nc = await transports[kind].connect(server);
      const pub = await open(kind === "ws" ? "tcp" : "ws");
      const s = nc.subscribe("drainc.x");
      let count = 0;
      (async () => {
        for await (const _ of s) count++;
      })();
      await nc.flush();
      for (let i = 0; i < 20; i++) pub.publish("drainc.x", enc.encode("m"));
      await pub.flush();
      await sleep(100);
      await within(5000, nc.drain(), "nc.drain()");
      const err = await within(5000, nc.closed(), "closed()");
      assert.equal(err, undefined, `closed without error: ${err}`);
      assert.equal(count, 20);
    });
  }

  for (const kind of ["ws", "tcp"]) {
    it(`no_echo (${kind}): own messages are not delivered back, others still get them`, T, async () => {
      const quiet = await open(kind, { noEcho: true });
      const other = await open("ws");
      const own = listen(quiet, "echo.x");
      const theirs = listen(other, "echo.x");
      await quiet.flush();
      await other.flush();
      for (let i = 0; i < 5; i++) quiet.publish("echo.x", enc.encode(String(i)));
      await quiet.flush();
      assert.equal((await theirs.count(5)).length, 5);
      await own.quiet(0, 300);
      other.publish("echo.x", enc.encode("from-other"));
      await other.flush();
      const [m] = await own.count(1);
      assert.equal(dec.decode(m.data), "from-other");
    });
  }
});

describe("small max_payload (scenario small_payload)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("small_payload"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("both transports report max_payload 4096 in INFO", T, async () => {
    const w = await wsClient(server);
    const t = await tcpClient(server);
    conns.push(w, t);
    assert.equal(w.info.max_payload, 4096);
    assert.equal(t.info.max_payload, 4096);
  });

  it("4096 bytes pass ws -> tcp; 4097 bytes over ws are rejected by the server", T, async () => {
    const t = await tcpClient(server);
    conns.push(t);
    const s = listen(t, "limit");
    await t.flush();
    const raw = await rawWs(server.ws);
    try {
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      const ok = "x".repeat(4096);
      raw.send(`CONNECT {"verbose":false,"protocol":1}\r\nPUB limit 4096\r\n${ok}\r\nPING\r\n`);
      await raw.waitFor(() => raw.stream.includes("PONG"), "PONG");
      const [m] = await s.count(1);
      assert.equal(m.data.length, 4096);
      raw.send("PUB limit 4097\r\n");
      await raw.waitFor(() => raw.stream.includes("-ERR"), "-ERR");
      assert.match(raw.stream, /-ERR 'Maximum Payload Violation'\r\n/);
      await raw.waitClosed();
    } finally {
      raw.close();
    }
    await s.quiet(1, 200);
  });
});

describe("messaging with permessage-deflate on both ends (scenario compression)", () => {
  let server;
  const conns = [];
  const deflateWs = async () => {
    const sockets = [];
    const nc = await wsClient(server, {}, { ws: { perMessageDeflate: true }, sink: sockets });
    conns.push(nc);
    assert.match(sockets[0].extensions, /permessage-deflate/, "compression negotiated");
    return nc;
  };
  before(async () => {
    server = await orError(startServer("compression"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("1 MB payloads compressed ws -> compressed ws and -> tcp", T, async () => {
    const pub = await deflateWs();
    const sub = await deflateWs();
    const tcp = await tcpClient(server);
    conns.push(tcp);
    const a = listen(sub, "zbig");
    const b = listen(tcp, "zbig");
    await sub.flush();
    await tcp.flush();
    const data = Buffer.alloc(1024 * 1024);
    crypto.randomBytes(512 * 1024).copy(data);
    data.fill("z", 512 * 1024);
    pub.publish("zbig", data);
    await pub.flush();
    for (const l of [a, b]) {
      const [m] = await l.count(1, 15000);
      assert.ok(Buffer.from(m.data).equals(data), "payload intact");
    }
  });

  it("100k small messages compressed ws -> compressed ws arrive in order with no loss", { timeout: 60000 }, async () => {
    const pub = await deflateWs();
    const sub = await deflateWs();
    const N = 100000;
    let next = 0;
    let bad = null;
    const done = new Promise((resolve) => {
      sub.subscribe("zflood", {
        callback: (err, m) => {
          if (err) {
            bad = String(err);
            resolve();
            return;
          }
          const v = Number(dec.decode(m.data));
          if (v !== next && bad === null) bad = `expected ${next}, got ${v}`;
          next++;
          if (next === N) resolve();
        },
      });
    });
    await sub.flush();
    for (let i = 0; i < N; i++) {
      pub.publish("zflood", enc.encode(String(i)));
      if (i % 5000 === 4999) await pub.flush();
    }
    await pub.flush();
    await within(45000, done, "100k compressed messages").catch((e) => {
      throw new Error(`${e.message}; got ${next}`);
    });
    assert.equal(bad, null);
  });
});

describe("framing under back-pressure (scenario compression)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("compression"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  /** Deterministic content for message `seq`, so the receiver can check every byte. */
  const body = (seq) => {
    const size = (seq * 7919) % 20000;
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = (seq * 31 + i * (seq % 7 === 0 ? 1 : 13)) & 0xff;
    if (seq % 3 === 0) b.fill(97, 0, size >> 1); // some compressible, some not
    return b;
  };

  const variants = [
    ["compressed", { perMessageDeflate: true }],
    ["compressed, browser User-Agent (4096-byte frames)", { perMessageDeflate: true, headers: { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0" } }],
    ["uncompressed, browser User-Agent", { perMessageDeflate: false, headers: { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0" } }],
  ];
  for (const [what, wsOpts] of variants) {
    it(`1500 messages of 0-20000 bytes to a ws reader that keeps stalling (${what}) arrive intact and in order`, { timeout: 60000 }, async () => {
      const sockets = [];
      const sub = await wsClient(server, {}, { ws: wsOpts, sink: sockets });
      const pub = await tcpClient(server);
      conns.push(sub, pub);
      const N = 1500;
      let next = 0;
      let bad = null;
      const done = new Promise((resolve) => {
        sub.subscribe("bp", {
          callback: (err, m) => {
            if (err) {
              bad = String(err);
              resolve();
              return;
            }
            if (bad === null && !Buffer.from(m.data).equals(body(next))) bad = `message ${next} differs (${m.data.length} bytes)`;
            next++;
            if (next === N || bad) resolve();
          },
        });
      });
      await sub.flush();
      const raw = sockets[0]._socket;
      let stalls = 0;
      const staller = setInterval(() => {
        raw.pause();
        stalls++;
        setTimeout(() => raw.resume(), 60);
      }, 150);
      try {
        for (let i = 0; i < N; i++) {
          pub.publish("bp", body(i));
          if (i % 100 === 99) await pub.flush();
        }
        await pub.flush();
        await within(50000, done, "all messages").catch((e) => {
          throw new Error(`${e.message}; got ${next}`);
        });
      } finally {
        clearInterval(staller);
        raw.resume();
      }
      assert.equal(bad, null);
      assert.equal(next, N);
      assert.ok(stalls > 0);
    });
  }
});
