// Many clients and misbehaving clients: 200 concurrent ws clients, abrupt disconnects and garbage
// bytes (before and after the upgrade). Each case ends by proving that well-behaved ws and tcp
// clients still exchange messages and that new clients can still connect.
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { closeAll, tcpClient, wsClient } from "../lib/clients.mjs";
import { dec, enc, frame, listen, monitor, rawExchange, rawWs, sleep, startServer, within, orError } from "../lib/harness.mjs";


describe("robustness (scenario basic)", () => {
  let server;
  let healthyWs;
  let healthyTcp;
  let probe = 0;
  before(async () => {
    server = await orError(startServer("basic"));
    healthyWs = await orError(() => wsClient(server, { name: "healthy-ws" }));
    healthyTcp = await orError(() => tcpClient(server, { name: "healthy-tcp" }));
  });
  after(async () => {
    await closeAll([healthyWs, healthyTcp]);
    await server?.stop();
  });

  /** The long-lived clients still talk both ways, and a new ws client can connect. */
  async function othersUnharmed() {
    const n = probe++;
    const a = listen(healthyTcp, `health.${n}.tcp`);
    const b = listen(healthyWs, `health.${n}.ws`);
    await healthyTcp.flush();
    await healthyWs.flush();
    healthyWs.publish(`health.${n}.tcp`, enc.encode("w->t"));
    healthyTcp.publish(`health.${n}.ws`, enc.encode("t->w"));
    await healthyWs.flush();
    await healthyTcp.flush();
    assert.equal(dec.decode((await a.count(1))[0].data), "w->t");
    assert.equal(dec.decode((await b.count(1))[0].data), "t->w");
    a.sub.unsubscribe();
    b.sub.unsubscribe();
    const fresh = await wsClient(server);
    await fresh.flush();
    await fresh.close();
    assert.equal(healthyWs.isClosed(), false);
    assert.equal(healthyTcp.isClosed(), false);
  }

  async function connectionsSettleTo(n, ms = 5000) {
    const deadline = Date.now() + ms;
    let c;
    do {
      c = await monitor(server, "/connz");
      if (c.num_connections <= n) return c.num_connections;
      await sleep(50);
    } while (Date.now() < deadline);
    throw new Error(`server still lists ${c.num_connections} connections (want ${n}): ${JSON.stringify(c.connections.map((x) => x.name || x.cid))}`);
  }

  it("200 concurrent ws clients all receive a fan-out and all publish", { timeout: 60000 }, async () => {
    const N = 200;
    const clients = [];
    try {
      const results = await Promise.allSettled(
        [...Array(N).keys()].map((i) => wsClient(server, { name: `many-${i}` })),
      );
      for (const r of results) if (r.status === "fulfilled") clients.push(r.value);
      const failed = results.filter((r) => r.status === "rejected");
      assert.equal(failed.length, 0, `connect failures: ${failed.slice(0, 3).map((r) => r.reason?.message)}`);
      const inbox = listen(healthyTcp, "many.in");
      await healthyTcp.flush();
      const ls = clients.map((nc) => listen(nc, "many.out"));
      await Promise.all(clients.map((nc) => nc.flush()));
      const c = await monitor(server, "/connz?limit=1000");
      assert.ok(c.num_connections >= N + 2, `connz num_connections ${c.num_connections}`);
      for (let i = 0; i < 5; i++) healthyTcp.publish("many.out", enc.encode(`fan ${i}`));
      await healthyTcp.flush();
      await Promise.all(ls.map((l) => l.count(5, 15000)));
      for (const l of ls) assert.deepEqual(l.msgs.map((m) => dec.decode(m.data)), [0, 1, 2, 3, 4].map((i) => `fan ${i}`));
      clients.forEach((nc, i) => nc.publish("many.in", enc.encode(String(i))));
      await Promise.all(clients.map((nc) => nc.flush()));
      const got = await inbox.count(N, 15000);
      assert.equal(new Set(got.map((m) => dec.decode(m.data))).size, N);
    } finally {
      await closeAll(clients);
    }
    await connectionsSettleTo(2);
    await othersUnharmed();
  });

  it("abrupt disconnects (TCP reset, mid-frame, mid-upgrade) leave other clients unharmed", { timeout: 20000 }, async () => {
    const sockets = [];
    const victims = [];
    for (let i = 0; i < 10; i++) {
      const nc = await wsClient(server, { name: `victim-${i}` }, { sink: sockets });
      nc.subscribe("victims");
      await nc.flush();
      victims.push(nc);
    }
    // Traffic towards the victims while they vanish.
    for (let i = 0; i < 100; i++) healthyTcp.publish("victims", enc.encode("x".repeat(1000)));
    for (const s of sockets.slice(0, 5)) s._socket.resetAndDestroy ? s._socket.resetAndDestroy() : s._socket.destroy();
    // Half a frame header, half a frame payload, then gone.
    sockets[5]._socket.write(Buffer.from([0x82]));
    sockets[6]._socket.write(frame(2, "PUB victims 100\r\n" + "y".repeat(100) + "\r\n").subarray(0, 20));
    for (const s of sockets.slice(5)) s._socket.destroy();
    // A connection that dies in the middle of the HTTP upgrade.
    const half = net.connect({ host: "127.0.0.1", port: server.ws });
    await new Promise((r) => half.once("connect", r));
    half.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n");
    await sleep(20);
    half.destroy();
    await healthyTcp.flush();
    await closeAll(victims);
    await connectionsSettleTo(2);
    await othersUnharmed();
  });

  it("connection churn: 300 ws connect/close cycles leave no connection behind", { timeout: 60000 }, async () => {
    for (let i = 0; i < 300; i += 10) {
      await Promise.all(
        [...Array(10).keys()].map(async (j) => {
          if ((i + j) % 2) {
            const nc = await wsClient(server);
            await nc.close();
          } else {
            const raw = await rawWs(server.ws);
            await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
            raw.close();
          }
        }),
      );
    }
    await connectionsSettleTo(2);
    const v = await monitor(server, "/varz");
    assert.ok(v.total_connections >= 302, `total_connections ${v.total_connections}`);
    await othersUnharmed();
  });

  const garbage = [
    ["random bytes instead of an HTTP request", async () => {
      const r = await rawExchange(server.ws, Buffer.from([...Array(300).keys()].map((i) => (i * 37 + 11) & 0xff)), { ms: 4000 });
      assert.notEqual(r.why, "timeout", "server closed the connection");
      if (r.data.length) assert.match(r.data.toString("latin1"), /^HTTP\/1\.[01] 400 /);
    }],
    ["an unmasked client frame after the upgrade", async () => {
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.socket.write(frame(2, 'CONNECT {"verbose":false}\r\nPING\r\n', { mask: false }));
      await raw.waitClosed(4000);
      assert.ok(!raw.stream.includes("PONG"), "unmasked frame not processed");
    }],
    ["random bytes after the upgrade", async () => {
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.socket.write(Buffer.from([0x8f, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]));
      await raw.waitClosed(4000);
    }],
    ["an unknown opcode", async () => {
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.socket.write(frame(3, "hello"));
      await raw.waitClosed(4000);
    }],
    ["a fragmented control frame", async () => {
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.socket.write(frame(9, "ping", { fin: false }));
      await raw.waitClosed(4000);
    }],
    ["a continuation frame with no message started", async () => {
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.socket.write(frame(0, "PING\r\n"));
      await raw.waitClosed(4000);
    }],
    ["a RSV1 (compressed) frame that is not deflate data", async () => {
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.socket.write(frame(2, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x12]), { rsv1: true }));
      await raw.waitClosed(4000);
    }],
    ["a control frame longer than 125 bytes", async () => {
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.socket.write(frame(9, "p".repeat(126)));
      await raw.waitClosed(4000);
    }],
    ["a declared 1 TiB frame (64-bit length) that never arrives does not make the server allocate it", async () => {
      const pid = server.child.pid;
      const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
      const before = rss();
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      for (const rsv1 of [false, true]) {
        const head = Buffer.alloc(14);
        head[0] = 0x02 | (rsv1 ? 0x40 : 0); // binary, not final: a message that would go on
        head[1] = 0x80 | 127;
        head.writeBigUInt64BE(1n << 40n, 2);
        head.writeUInt32BE(0x01020304, 10);
        const other = rsv1 ? await rawWs(server.ws) : raw;
        if (rsv1) await other.waitFor(() => other.stream.includes("INFO "), "INFO");
        other.socket.write(Buffer.concat([head, Buffer.alloc(65536, 7)]));
        await sleep(300);
        if (rsv1) other.close();
      }
      const after = rss();
      raw.close();
      assert.ok(after - before < 200 * 1024 * 1024, `server RSS grew by ${Math.round((after - before) / 1048576)} MiB`);
    }],
    ["garbage NATS protocol in a valid frame: -ERR 'Unknown Protocol Operation' and close 1002", async () => {
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.send("HELLO THERE\r\n");
      await raw.waitClosed(4000);
      assert.match(raw.stream, /-ERR 'Unknown Protocol Operation'\r\n/);
      const close = raw.frames.find((f) => f.opcode === 8);
      assert.ok(close, "close frame");
      assert.equal(close.payload.readUInt16BE(0), 1002);
      assert.equal(close.payload.subarray(2).toString(), "Protocol Violation");
    }],
    ["garbage on the TCP client port", async () => {
      const r = await rawExchange(server.port, "GET / HTTP/1.1\r\n\r\n", { ms: 4000 });
      assert.notEqual(r.why, "timeout", "server closed the connection");
      assert.match(r.data.toString(), /^INFO /);
      assert.match(r.data.toString(), /-ERR 'Unknown Protocol Operation'\r\n/);
    }],
  ];
  for (const [what, fn] of garbage) {
    it(`garbage: ${what}; the victim is dropped, others unharmed`, { timeout: 20000 }, async () => {
      await within(10000, fn(), what);
      await connectionsSettleTo(2);
      await othersUnharmed();
    });
  }
});

describe("server shutdown (scenario basic)", () => {
  it("SIGTERM: ws clients get close 1001 'Server Shutdown', nats.ws sees the connection close", { timeout: 20000 }, async () => {
    const server = await startServer("basic");
    try {
      const nc = await wsClient(server);
      await nc.flush();
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.send('CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n');
      await raw.waitFor(() => raw.stream.includes("PONG"), "PONG");
      const closed = nc.closed();
      await server.stop();
      await raw.waitClosed(5000);
      const close = raw.frames.find((f) => f.opcode === 8);
      assert.ok(close, "close frame before EOF");
      assert.equal(close.payload.readUInt16BE(0), 1001);
      assert.equal(close.payload.subarray(2).toString(), "Server Shutdown");
      await within(5000, closed, "nats.ws closed() after shutdown");
      assert.equal(nc.isClosed(), true);
    } finally {
      await server.stop();
    }
  });
});

describe("slow consumer (scenario slow: max_pending 256 KiB)", () => {
  let server;
  before(async () => {
    server = await orError(startServer("slow"));
  });
  after(async () => {
    await server?.stop();
  });

  it("a ws client that stops reading is dropped; the publisher and other ws clients carry on", { timeout: 30000 }, async () => {
    const pub = await tcpClient(server);
    const other = await wsClient(server);
    const stuck = await rawWs(server.ws);
    try {
      await stuck.waitFor(() => stuck.stream.includes("\r\n"), "INFO");
      stuck.send('CONNECT {"verbose":false,"protocol":1}\r\nSUB flood.slow 1\r\nPING\r\n');
      await stuck.waitFor(() => stuck.stream.includes("PONG"), "PONG");
      stuck.socket.pause();
      const otherSees = listen(other, "flood.other");
      await other.flush();
      const chunk = new Uint8Array(60000).fill(120);
      const before = await monitor(server, "/varz");
      let dropped = false;
      const deadline = Date.now() + 20000;
      while (!dropped && Date.now() < deadline) {
        for (let i = 0; i < 50; i++) pub.publish("flood.slow", chunk);
        await pub.flush();
        const v = await monitor(server, "/varz");
        dropped = v.slow_consumers > before.slow_consumers && v.connections === before.connections - 1;
      }
      assert.ok(dropped, "the stuck client was counted as a slow consumer and closed");
      pub.publish("flood.other", enc.encode("still here"));
      await pub.flush();
      assert.equal(dec.decode((await otherSees.count(1))[0].data), "still here");
      assert.equal(other.isClosed(), false);
    } finally {
      stuck.close();
      await closeAll([pub, other]);
    }
  });
});

describe("lame duck mode (scenario lame_duck)", () => {
  it("SIGUSR2: ws clients get INFO with ldm:true, then close 1001; nats.ws reports ldm; new connections are refused", { timeout: 20000 }, async () => {
    const server = await startServer("lame_duck");
    try {
      const nc = await wsClient(server);
      await nc.flush();
      const statuses = [];
      (async () => {
        for await (const s of nc.status()) statuses.push(s.type);
      })();
      const raw = await rawWs(server.ws);
      await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
      raw.send('CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n');
      await raw.waitFor(() => raw.stream.includes("PONG"), "PONG");
      const mark = raw.stream.length;
      server.child.kill("SIGUSR2");
      await raw.waitClosed(10000);
      const after = raw.stream.slice(mark);
      const info = /INFO (\{.*\}) \r\n/.exec(after);
      assert.ok(info, `an async INFO before the close: ${JSON.stringify(after.slice(0, 300))}`);
      assert.equal(JSON.parse(info[1]).ldm, true);
      const close = raw.frames.find((f) => f.opcode === 8);
      assert.ok(close, "close frame");
      assert.equal(close.payload.readUInt16BE(0), 1001);
      await within(5000, nc.closed(), "nats.ws closed");
      assert.ok(statuses.includes("ldm"), `nats.ws status events: ${statuses}`);
      const r = await rawExchange(server.ws, "", { ms: 1000 });
      assert.match(r.why, /^error:ECONNREFUSED|^eof$/, `new connection: ${r.why}`);
    } finally {
      await server.stop();
    }
  });
});
