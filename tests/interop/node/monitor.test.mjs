// The monitoring endpoints as seen for WebSocket clients: the fields of /varz and /connz that a
// dashboard reads, checked after real traffic from nats.ws and nats.js clients.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { closeAll, tcpClient, wsClient } from "../lib/clients.mjs";
import { enc, listen, monitor, sleep, startServer, orError } from "../lib/harness.mjs";

const T = { timeout: 20000 };

describe("monitoring (scenario compression)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("compression"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("/varz describes the websocket listener and the limits", T, async () => {
    const v = await monitor(server, "/varz");
    assert.equal(typeof v.server_id, "string");
    assert.ok(v.server_id.length > 0);
    assert.equal(v.host, "127.0.0.1");
    assert.equal(v.port, server.port);
    assert.equal(v.http_port, server.http);
    assert.equal(v.max_payload, 1048576);
    assert.equal(typeof v.version, "string");
    assert.equal(typeof v.now, "string");
    assert.ok(v.websocket, "websocket section");
    assert.equal(v.websocket.host, "127.0.0.1");
    assert.equal(v.websocket.port, server.ws);
    assert.equal(v.websocket.no_tls, true);
    assert.equal(v.websocket.compression, true);
    assert.equal(v.websocket.same_origin, undefined, "false options are omitted");
  });

  it("/varz counts ws connections and messages", T, async () => {
    const before = await monitor(server, "/varz");
    const w = await wsClient(server);
    const t = await tcpClient(server);
    conns.push(w, t);
    const l = listen(t, "varz.count");
    await t.flush();
    for (let i = 0; i < 10; i++) w.publish("varz.count", enc.encode("0123456789"));
    await w.flush();
    await l.count(10);
    const v = await monitor(server, "/varz");
    assert.ok(v.connections >= before.connections + 2, `connections ${before.connections} -> ${v.connections}`);
    assert.ok(v.total_connections >= before.total_connections + 2);
    assert.ok(v.in_msgs >= before.in_msgs + 10, `in_msgs ${before.in_msgs} -> ${v.in_msgs}`);
    assert.ok(v.out_msgs >= before.out_msgs + 10, `out_msgs ${before.out_msgs} -> ${v.out_msgs}`);
    assert.ok(v.in_bytes >= before.in_bytes + 100);
    assert.ok(v.out_bytes >= before.out_bytes + 100);
  });

  it("/connz lists ws clients as type websocket with their peer address, name and subscriptions", T, async () => {
    const sockets = [];
    const w = await wsClient(server, { name: "connz-ws" }, { sink: sockets });
    const t = await tcpClient(server, { name: "connz-tcp" });
    conns.push(w, t);
    w.subscribe("connz.one");
    w.subscribe("connz.two");
    await w.flush();
    t.publish("connz.one", enc.encode("x"));
    await t.flush();
    await sleep(100);
    const c = await monitor(server, "/connz?subs=1");
    assert.ok(c.num_connections >= 2);
    assert.equal(c.num_connections, c.connections.length);
    const ws = c.connections.find((x) => x.name === "connz-ws");
    const tcp = c.connections.find((x) => x.name === "connz-tcp");
    assert.ok(ws, `ws client listed: ${JSON.stringify(c.connections.map((x) => x.name))}`);
    assert.ok(tcp, "tcp client listed");
    assert.equal(ws.type, "websocket");
    assert.equal(ws.kind, "Client");
    assert.equal(tcp.type, "nats");
    assert.equal(ws.ip, "127.0.0.1");
    assert.equal(ws.port, sockets[0]._socket.localPort, "port is the client's TCP port");
    assert.equal(ws.lang, "nats.ws");
    assert.equal(typeof ws.cid, "number");
    assert.equal(ws.subscriptions, 2);
    assert.deepEqual([...ws.subscriptions_list].sort(), ["connz.one", "connz.two"]);
    assert.ok(ws.out_msgs >= 1);
    assert.ok(ws.out_bytes >= 1);
    assert.equal(typeof ws.version, "string");
    for (const k of ["start", "last_activity", "rtt", "uptime", "idle"]) {
      assert.equal(typeof ws[k], "string", `connz field ${k}: ${JSON.stringify(ws)}`);
    }
    assert.ok(!Number.isNaN(Date.parse(ws.start)), `start is a timestamp: ${ws.start}`);
    for (const k of ["pending_bytes", "in_msgs", "in_bytes"]) {
      assert.equal(typeof ws[k], "number", `connz field ${k}`);
    }
    assert.equal(typeof c.server_id, "string");
    assert.equal(typeof c.now, "string");
    assert.equal(c.offset, 0);
    assert.equal(c.limit, 1024);
    assert.equal(c.total, c.num_connections);
  });

  it("/connz paging (limit, offset) and cid filter", T, async () => {
    const a = await wsClient(server, { name: "page-a" });
    const b = await wsClient(server, { name: "page-b" });
    conns.push(a, b);
    await a.flush();
    await b.flush();
    const all = await monitor(server, "/connz");
    assert.ok(all.num_connections >= 2);
    const first = await monitor(server, "/connz?limit=1&offset=0");
    assert.equal(first.limit, 1);
    assert.equal(first.connections.length, 1);
    assert.equal(first.total, all.total);
    const second = await monitor(server, "/connz?limit=1&offset=1");
    assert.equal(second.offset, 1);
    assert.equal(second.connections.length, 1);
    assert.notEqual(second.connections[0].cid, first.connections[0].cid);
    const target = all.connections.find((x) => x.name === "page-b");
    const one = await monitor(server, `/connz?cid=${target.cid}`);
    assert.equal(one.connections.length, 1);
    assert.equal(one.connections[0].name, "page-b");
    assert.equal(one.connections[0].type, "websocket");
  });

  it("/healthz answers ok and /subsz counts ws subscriptions", T, async () => {
    const res = await fetch(`http://127.0.0.1:${server.http}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok" });
    const before = await monitor(server, "/subsz");
    const w = await wsClient(server);
    conns.push(w);
    w.subscribe("subsz.one");
    w.subscribe("subsz.two");
    await w.flush();
    const after = await monitor(server, "/subsz");
    assert.equal(after.num_subscriptions, before.num_subscriptions + 2);
  });

  it("/connz drops a ws client after it disconnects", T, async () => {
    const w = await wsClient(server, { name: "connz-gone" });
    await w.flush();
    let c = await monitor(server, "/connz");
    assert.ok(c.connections.some((x) => x.name === "connz-gone"));
    await w.close();
    const deadline = Date.now() + 5000;
    do {
      await sleep(50);
      c = await monitor(server, "/connz");
    } while (c.connections.some((x) => x.name === "connz-gone") && Date.now() < deadline);
    assert.ok(!c.connections.some((x) => x.name === "connz-gone"), "closed client no longer listed");
  });
});
