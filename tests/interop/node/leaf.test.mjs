// Leaf-node topologies (lib/topology.mjs): the reference nats-server as hub with two edges of the
// server under test (edge A over TCP, edge B over wss to the hub's WebSocket port), the same with
// JetStream on the hub, and the server under test as hub of three reference leafs (over TCP, ws,
// and ws compressed and unmasked). In a `--kind nats-server` run every role is nats-server, which
// proves the cases. A server under test that refuses the `leafnodes` block, or the option of it a
// topology uses, at start-up skips that topology's cases with its refusal line as the reason.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { closeAll, natsTcp, tcpClient, wsClient } from "../lib/clients.mjs";
import { dec, enc, listen, sleep, within } from "../lib/harness.mjs";
import { LeafRefused, edgeTopology, eventually, hubTopology, importTopology, monitorJson, openBrowser, waitLeafs } from "../lib/topology.mjs";

const T = { timeout: 45000 };

// One Chromium for the file, launched on first use; a failed launch fails the cases that need it.
let browserP = null;
const browser = () => (browserP ??= openBrowser());
after(async () => {
  const b = await browserP?.catch(() => null);
  await b?.close();
});

/**
 * Starts a topology in a `before` hook. `use(t)` gives it to a case, throws its start-up error, or,
 * when the server under test refused the leafnodes block (LeafRefused), skips the case with that
 * refusal and returns null. Nothing else skips.
 */
function topology(start) {
  const state = { topo: null, error: null, skip: null };
  before(async () => {
    try {
      state.topo = await start();
    } catch (e) {
      if (e instanceof LeafRefused) state.skip = e.message;
      else state.error = e;
    }
  });
  after(async () => {
    await state.topo?.stop();
  });
  return {
    /** The topology for a case `t`, or null after `t.skip(reason)` when leafnodes are refused. */
    use(t) {
      if (state.skip) {
        t.skip(state.skip);
        return null;
      }
      if (state.error) throw state.error;
      return state.topo;
    },
  };
}

/**
 * Makes `responder` answer `subject` (with "ready"), then has `requester` ask until the answer
 * arrives: once it does, every subscription made on the responder's side before this call has
 * reached the requester's server (interest travels in order on each leaf connection).
 */
async function awaitInterest(responder, requester, subject, ms = 10000) {
  const sub = responder.subscribe(subject, { callback: (_, m) => m.respond(enc.encode("ready")) });
  await responder.flush();
  try {
    await eventually(
      `interest in ${subject} reaching the other side`,
      async () => {
        const r = await requester.request(subject, enc.encode("?"), { timeout: 500 });
        assert.equal(dec.decode(r.data), "ready");
      },
      { ms, every: 50 },
    );
  } finally {
    sub.unsubscribe();
  }
}

/** Expects `requester.request(subject)` to fail with no responders (503) within `ms`. */
async function awaitNoInterest(requester, subject, ms = 10000) {
  await eventually(
    `interest in ${subject} leaving the other side`,
    async () => {
      let answered = false;
      try {
        await requester.request(subject, enc.encode("?"), { timeout: 500 });
        answered = true;
      } catch (e) {
        if (e.code !== "503") throw new Error(`expected no responders, got ${e.code ?? e.message}`);
      }
      if (answered) throw new Error("still answered");
    },
    { ms, every: 50 },
  );
}

describe("leaf edges: nats-server hub, edge A over tcp, edge B over wss", () => {
  const topo = topology(() => edgeTopology());
  const conns = [];
  after(async () => {
    await closeAll(conns);
  });

  it("a nats.ws client in Chromium on edge A receives what a nats.js client on edge B publishes, and back", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const page = await browser();
    const pubB = await tcpClient(s.b);
    conns.push(pubB);
    const fromBrowser = listen(pubB, "leaf.browser.out");
    await pubB.flush();
    const inBrowser = page.run(
      async (nats, { url }) => {
        const nc = await nats.connect({ servers: url, reconnect: false });
        const te = new TextEncoder();
        const td = new TextDecoder();
        const got = [];
        const sub = nc.subscribe("leaf.browser.in", { max: 5 });
        const ready = nc.subscribe("leaf.browser.ready", { callback: (_, m) => m.respond(te.encode("ready")) });
        await nc.flush();
        for await (const m of sub) got.push([td.decode(m.data), m.headers?.get("X-Edge") ?? null]);
        ready.unsubscribe();
        for (let i = 0; i < 3; i++) nc.publish("leaf.browser.out", te.encode(`from-browser-${i}`));
        await nc.flush();
        await nc.close();
        return got;
      },
      { url: s.a.wsUrl },
      30000,
    );
    inBrowser.catch(() => {}); // awaited below; a failure before that must not go unhandled
    await eventually(
      "the browser's interest on edge A reaching edge B",
      async () => {
        const r = await pubB.request("leaf.browser.ready", enc.encode("?"), { timeout: 500 });
        assert.equal(dec.decode(r.data), "ready");
      },
      { ms: 15000, every: 50 },
    );
    for (let i = 0; i < 5; i++) {
      const h = natsTcp.headers();
      h.set("X-Edge", "b");
      pubB.publish("leaf.browser.in", enc.encode(`from-b-${i}`), { headers: h });
    }
    await pubB.flush();
    assert.deepEqual(
      await inBrowser,
      [0, 1, 2, 3, 4].map((i) => [`from-b-${i}`, "b"]),
    );
    const back = await fromBrowser.count(3, 10000);
    assert.deepEqual(back.map((m) => dec.decode(m.data)), ["from-browser-0", "from-browser-1", "from-browser-2"]);
    await fromBrowser.quiet(3);
  });

  it("request/reply across edges, both ways, 100 concurrent requests", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const onA = await wsClient(s.a);
    const onB = await tcpClient(s.b);
    conns.push(onA, onB);
    onA.subscribe("leaf.svc.a", { callback: (_, m) => m.respond(enc.encode(`a:${dec.decode(m.data)}`)) });
    onB.subscribe("leaf.svc.b", { callback: (_, m) => m.respond(enc.encode(`b:${dec.decode(m.data)}`)) });
    await awaitInterest(onA, onB, "leaf.svc.ready.a");
    await awaitInterest(onB, onA, "leaf.svc.ready.b");
    const fromB = await Promise.all(
      Array.from({ length: 100 }, (_, i) => onB.request("leaf.svc.a", enc.encode(`${i}`), { timeout: 5000 })),
    );
    assert.deepEqual(fromB.map((m) => dec.decode(m.data)), Array.from({ length: 100 }, (_, i) => `a:${i}`));
    const fromA = await Promise.all(
      Array.from({ length: 100 }, (_, i) => onA.request("leaf.svc.b", enc.encode(`${i}`), { timeout: 5000 })),
    );
    assert.deepEqual(fromA.map((m) => dec.decode(m.data)), Array.from({ length: 100 }, (_, i) => `b:${i}`));
    // A request nobody serves gets no responders through the hub, not a timeout.
    await assert.rejects(onB.request("leaf.svc.nobody", enc.encode("?"), { timeout: 3000 }), (e) => e.code === "503");
  });

  it("a queue group with members on both edges delivers each message exactly once", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const members = [await wsClient(s.a), await tcpClient(s.a), await wsClient(s.b), await tcpClient(s.b)];
    const onHub = await tcpClient(s.hub);
    conns.push(...members, onHub);
    const got = members.map((nc) => listen(nc, "leaf.work", { queue: "workers" }));
    for (const nc of members) await nc.flush();
    // A second member of each edge answers the probe, so both edges' queue interest is at the hub.
    await awaitInterest(members[1], onHub, "leaf.work.ready.a");
    await awaitInterest(members[3], onHub, "leaf.work.ready.b");
    const total = () => got.reduce((n, l) => n + l.msgs.length, 0);
    const N = 200;
    for (let i = 0; i < N; i++) onHub.publish("leaf.work", enc.encode(`h${i}`));
    await onHub.flush();
    await eventually("200 messages from the hub delivered", async () => assert.ok(total() >= N, `have ${total()}`), { ms: 10000 });
    await sleep(300);
    const seen = got.flatMap((l) => l.msgs.map((m) => dec.decode(m.data)));
    assert.equal(seen.length, N, "each message delivered once");
    assert.equal(new Set(seen).size, N, "no duplicates");
    const edgeA = got[0].msgs.length + got[1].msgs.length;
    const edgeB = got[2].msgs.length + got[3].msgs.length;
    assert.ok(edgeA > 0 && edgeB > 0, `the hub spreads the group over both edges (A ${edgeA}, B ${edgeB})`);
    // From an edge: still exactly once, and (as nats-server does) only to that edge's own members
    // while it has any: a local queue member is preferred to the hub's.
    const before = got.map((l) => l.msgs.length);
    const pubA = await tcpClient(s.a);
    conns.push(pubA);
    for (let i = 0; i < N; i++) pubA.publish("leaf.work", enc.encode(`a${i}`));
    await pubA.flush();
    await eventually("200 messages from edge A delivered", async () => assert.ok(total() >= 2 * N, `have ${total()}`), {
      ms: 10000,
    });
    await sleep(300);
    const all = got.flatMap((l) => l.msgs.map((m) => dec.decode(m.data)));
    assert.equal(all.length, 2 * N, "each message from edge A delivered once");
    assert.equal(new Set(all).size, 2 * N, "no duplicates");
    const fromA = got.map((l, i) => l.msgs.length - before[i]);
    assert.equal(fromA[0] + fromA[1], N, `edge A's members got all of edge A's messages (per member: ${fromA})`);
  });

  it("overlapping subscriptions on edge A (ws, tcp, wildcards) each get one copy of what edge B publishes", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const ws = await wsClient(s.a);
    const tcp = await tcpClient(s.a);
    const pub = await wsClient(s.b);
    conns.push(ws, tcp, pub);
    const subs = [
      listen(ws, "leafdup.x"),
      listen(ws, "leafdup.*"),
      listen(ws, "leafdup.>"),
      listen(tcp, "leafdup.x"),
      listen(tcp, "*.x"),
    ];
    await ws.flush();
    await awaitInterest(tcp, pub, "leafprobe.dup");
    for (let i = 0; i < 10; i++) pub.publish("leafdup.x", enc.encode(`${i}`));
    await pub.flush();
    const want = Array.from({ length: 10 }, (_, i) => `${i}`);
    for (const l of subs) assert.deepEqual((await l.count(10)).map((m) => dec.decode(m.data)), want);
    await Promise.all(subs.map((l) => l.quiet(10)));
    await closeAll([ws, tcp, pub]);
  });

  it("monitoring: each edge's /leafz and /varz show its one hub connection and the interest it learnt", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const onB = await tcpClient(s.b);
    const onA = await tcpClient(s.a);
    conns.push(onA, onB);
    onB.subscribe("leaf.monitor.from-b", { callback: () => {} });
    await awaitInterest(onB, onA, "leaf.monitor.ready");
    for (const edge of [s.a, s.b]) {
      const hubPort = s.hubPortOf[edge.role];
      const lz = await monitorJson(edge, "/leafz?subs=1");
      assert.equal(lz.leafnodes, 1, `${edge.role} /leafz leafnodes: ${JSON.stringify(lz).slice(0, 300)}`);
      assert.equal(lz.leafs.length, 1);
      assert.equal(lz.leafs[0].account, "$G");
      assert.equal(lz.leafs[0].ip, "127.0.0.1");
      assert.equal(lz.leafs[0].port, hubPort, `${edge.role} /leafz names the hub's port`);
      const v = await monitorJson(edge, "/varz");
      assert.equal(v.leafnodes, 1, `${edge.role} /varz leafnodes`);
    }
    const lzA = await monitorJson(s.a, "/leafz?subs=1");
    assert.ok(
      lzA.leafs[0].subscriptions_list.includes("leaf.monitor.from-b"),
      `edge A's hub connection carries edge B's interest: ${JSON.stringify(lzA.leafs[0].subscriptions_list)}`,
    );
  });

  // Last in the group: it restarts the hub.
  it("hub restart: both edges reconnect, interest is restored both ways and nothing is duplicated", { timeout: 60000 }, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const onA = await tcpClient(s.a);
    const onB = await wsClient(s.b);
    conns.push(onA, onB);
    const toA = listen(onA, "leaf.restart.a");
    const toB = listen(onB, "leaf.restart.b");
    const svc = onA.subscribe("leaf.restart.svc", { callback: (_, m) => m.respond(enc.encode("up")) });
    await awaitInterest(onA, onB, "leaf.restart.ready.a");
    await awaitInterest(onB, onA, "leaf.restart.ready.b");
    onB.publish("leaf.restart.a", enc.encode("before"));
    onA.publish("leaf.restart.b", enc.encode("before"));
    await toA.count(1);
    await toB.count(1);

    await s.hub.restart();
    await waitLeafs(s.hub, 2, 15000);
    // Subscriptions made before the restart are re-sent by the edges; clients stay connected.
    await eventually(
      "request from edge B to edge A after the hub restart",
      async () => {
        const r = await onB.request("leaf.restart.svc", enc.encode("?"), { timeout: 500 });
        assert.equal(dec.decode(r.data), "up");
      },
      { ms: 15000, every: 100 },
    );
    await awaitInterest(onB, onA, "leaf.restart.ready.b2", 15000);
    for (let i = 0; i < 20; i++) {
      onB.publish("leaf.restart.a", enc.encode(`after-${i}`));
      onA.publish("leaf.restart.b", enc.encode(`after-${i}`));
    }
    await onA.flush();
    await onB.flush();
    const a = await toA.count(21, 10000);
    const b = await toB.count(21, 10000);
    assert.deepEqual(a.slice(1).map((m) => dec.decode(m.data)), Array.from({ length: 20 }, (_, i) => `after-${i}`));
    assert.deepEqual(b.slice(1).map((m) => dec.decode(m.data)), Array.from({ length: 20 }, (_, i) => `after-${i}`));
    await toA.quiet(21);
    await toB.quiet(21);
    // Interest removed after the restart leaves the other edge too (none leaked).
    svc.unsubscribe();
    await onA.flush();
    await awaitNoInterest(onB, "leaf.restart.svc");
    assert.equal(onA.isClosed(), false);
    assert.equal(onB.isClosed(), false);
  });
});

describe("leaf hub: the server under test as hub, nats-server leafs over tcp, ws, and ws compressed and unmasked", () => {
  const topo = topology(() => hubTopology());
  const conns = [];
  after(async () => {
    await closeAll(conns);
  });

  it("pub/sub between hub clients and each leaf (tcp, ws, ws compressed and unmasked), each way, with headers", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const onHub = await wsClient(s.hub);
    const leafs = { tcp: await tcpClient(s.tcp), ws: await wsClient(s.ws), wsx: await wsClient(s.wsx) };
    conns.push(onHub, ...Object.values(leafs));
    const hubGot = listen(onHub, "hubleaf.to.hub");
    const leafGot = Object.fromEntries(Object.entries(leafs).map(([k, nc]) => [k, listen(nc, "hubleaf.to.leaf")]));
    for (const [k, nc] of Object.entries(leafs)) {
      await awaitInterest(nc, onHub, `hubleaf.ready.${k}`);
      await awaitInterest(onHub, nc, `hubleaf.ready.hub.${k}`);
    }
    // A 200 kB payload too, so the compressed leaf's frames carry real deflate data.
    const big = enc.encode("hub ".repeat(50000));
    for (let i = 0; i < 10; i++) onHub.publish("hubleaf.to.leaf", enc.encode(`h${i}`));
    onHub.publish("hubleaf.to.leaf", big);
    for (const [k, nc] of Object.entries(leafs)) {
      const h = natsTcp.headers();
      h.set("X-Leaf", k);
      nc.publish("hubleaf.to.hub", enc.encode(`from-${k}`), { headers: h });
    }
    await Promise.all([onHub, ...Object.values(leafs)].map((nc) => nc.flush()));
    const want = [...Array.from({ length: 10 }, (_, i) => `h${i}`), dec.decode(big)];
    for (const [k, l] of Object.entries(leafGot)) {
      assert.deepEqual((await l.count(11)).map((m) => dec.decode(m.data)), want, `leaf ${k}`);
    }
    const fromLeafs = (await hubGot.count(3)).map((m) => `${dec.decode(m.data)}/${m.headers?.get("X-Leaf")}`).sort();
    assert.deepEqual(fromLeafs, ["from-tcp/tcp", "from-ws/ws", "from-wsx/wsx"]);
    await Promise.all(Object.values(leafGot).map((l) => l.quiet(11)));
    await hubGot.quiet(3, 0);
  });

  it("monitoring: the hub's /leafz and /varz list its three leafs", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const lz = await monitorJson(s.hub, "/leafz");
    assert.equal(lz.leafnodes, 3, `/leafz: ${JSON.stringify(lz).slice(0, 400)}`);
    assert.equal(lz.leafs.length, 3);
    for (const l of lz.leafs) {
      assert.equal(l.account, "$G");
      assert.equal(l.ip, "127.0.0.1");
    }
    assert.equal((await monitorJson(s.hub, "/varz")).leafnodes, 3);
  });

  it("request/reply from the tcp leaf to the ws leaf through the hub", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const onTcp = await tcpClient(s.tcp);
    const onWs = await wsClient(s.ws);
    conns.push(onTcp, onWs);
    onWs.subscribe("hubleaf.svc", { callback: (_, m) => m.respond(enc.encode(`ws-leaf:${dec.decode(m.data)}`)) });
    await awaitInterest(onWs, onTcp, "hubleaf.svc.ready");
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => onTcp.request("hubleaf.svc", enc.encode(`${i}`), { timeout: 5000 })),
    );
    assert.deepEqual(answers.map((m) => dec.decode(m.data)), Array.from({ length: 50 }, (_, i) => `ws-leaf:${i}`));
  });

  it("a queue group on the hub and both leafs delivers each message once", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const members = [await wsClient(s.hub), await tcpClient(s.tcp), await wsClient(s.ws)];
    const pub = await tcpClient(s.tcp);
    conns.push(...members, pub);
    const got = members.map((nc) => listen(nc, "hubleaf.work", { queue: "workers" }));
    for (const nc of members) await nc.flush();
    await awaitInterest(members[2], pub, "hubleaf.work.ready");
    const N = 200;
    for (let i = 0; i < N; i++) pub.publish("hubleaf.work", enc.encode(`${i}`));
    await pub.flush();
    const total = () => got.reduce((n, l) => n + l.msgs.length, 0);
    await eventually("200 queue messages delivered", async () => assert.ok(total() >= N, `have ${total()}`), { ms: 10000 });
    await sleep(300);
    const seen = got.flatMap((l) => l.msgs.map((m) => dec.decode(m.data)));
    assert.equal(seen.length, N);
    assert.equal(new Set(seen).size, N);
  });
});

describe("leaf service import: the edge's leaf binds an account that imports a service", () => {
  const topo = topology(() => importTopology());
  const conns = [];
  after(async () => {
    await closeAll(conns);
  });

  it("a hub client's request to the imported subject reaches the exporter's responder on the edge", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const responder = await tcpClient(s.edge, { user: "svc", pass: "pw" });
    conns.push(responder);
    const requester = await tcpClient(s.hub);
    conns.push(requester);
    responder.subscribe("svc.echo", { callback: (_, m) => m.respond(enc.encode(`echo:${dec.decode(m.data)}`)) });
    await responder.flush();
    // The import's subject is advertised by the edge however long the responder has been there:
    // the first request may race the leaf's interest set, so ask until it answers.
    await eventually(
      "the imported service answering from the hub",
      async () => {
        const r = await requester.request("app.echo", enc.encode("hi"), { timeout: 1000 });
        assert.equal(dec.decode(r.data), "echo:hi");
      },
      { ms: 10000, every: 100 },
    );
    // The exporter's own subject is not visible from the hub (the leaf binds the importer).
    await assert.rejects(requester.request("svc.echo", enc.encode("x"), { timeout: 1000 }), (e) => e.code === "503");
  });
});

describe("leaf JetStream: nats-server hub with jetstream, KV from the edges", () => {
  const topo = topology(() => edgeTopology({ hubScenario: "leaf_hub_js" }));
  const conns = [];
  after(async () => {
    await closeAll(conns);
  });

  it("without the domain an edge client's $JS.API request gets no responders (JetStream is not extended over the leaf)", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    // nats-server without JetStream logs "JetStream Not Extended, adding deny [$JS.API.> $KV.> $OBJ.>]
    // for account "$G"" on each leaf connection and so never forwards these, though the JetStream
    // hub advertises LS+ $JS.API.> to it.
    const onA = await tcpClient(s.a);
    const onB = await wsClient(s.b);
    conns.push(onA, onB);
    await awaitInterest(onA, onB, "leaf.js.ready");
    for (const nc of [onA, onB]) {
      await assert.rejects(nc.request("$JS.API.INFO", enc.encode(""), { timeout: 3000 }), (e) => e.code === "503", "$JS.API.INFO");
      await assert.rejects(nc.request("$KV.nobucket.key", enc.encode("v"), { timeout: 3000 }), (e) => e.code === "503", "$KV.>");
    }
  });

  it("a push consumer's messages reach edge clients with the stream subject and the $JS.ACK reply", T, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    // The hub sends them over the leaf as LMSG <deliver> $JS.ACK.…@<stream subject>; the edge
    // delivers with the subject after the last "@" and the reply before it.
    const onA = await tcpClient(s.a);
    const onB = await wsClient(s.b);
    conns.push(onA, onB);
    const jsm = await eventually("JetStream through the domain from edge A", () => onA.jetstreamManager({ domain: "hub" }), {
      ms: 15000,
      every: 200,
    });
    await jsm.streams.add({ name: "LEAFPUSH", subjects: ["leafpush.>"] });
    try {
      await onA.jetstream({ domain: "hub" }).publish("leafpush.one", enc.encode("1"));
      await onA.jetstream({ domain: "hub" }).publish("leafpush.two", enc.encode("2"));
      for (const [nc, name] of [
        [onA, "a"],
        [onB, "b"],
      ]) {
        const got = listen(nc, `leafdeliver.${name}`);
        await awaitInterest(nc, onA === nc ? onB : onA, `leafdeliver.ready.${name}`);
        await jsm.consumers.add("LEAFPUSH", { durable_name: `d${name}`, deliver_subject: `leafdeliver.${name}`, ack_policy: "explicit" });
        const msgs = await got.count(2, 10000);
        const seen = msgs.map((m) => [m.subject, dec.decode(m.data)]);
        assert.deepEqual(seen, [["leafpush.one", "1"], ["leafpush.two", "2"]], `edge ${name} saw ${JSON.stringify(seen)} (reply ${msgs[0].reply})`);
        for (const m of msgs) assert.match(m.reply, /^\$JS\.ACK\.LEAFPUSH\.d[ab]\.1\.\d+\.\d+\.\d+\.\d+$/, `edge ${name} reply ${m.reply}`);
        // The acks go back through the hub: nothing is pending afterwards.
        for (const m of msgs) m.respond(enc.encode("+ACK"));
        await nc.flush();
        await eventually(`edge ${name}'s acks reaching the hub`, async () => {
          const ci = await jsm.consumers.info("LEAFPUSH", `d${name}`);
          assert.equal(ci.num_ack_pending, 0, `ack pending ${ci.num_ack_pending}`);
        }, { ms: 5000 });
        await got.quiet(2);
      }
    } finally {
      await jsm.streams.delete("LEAFPUSH").catch(() => {});
    }
  });

  it("a nats.ws client in Chromium on edge A creates a KV bucket, puts and watches keys; edge B sees them", { timeout: 60000 }, async (t) => {
    const s = topo.use(t);
    if (!s) return;
    const page = await browser();
    const onB = await tcpClient(s.b);
    conns.push(onB);
    // The hub's JetStream API interest must have reached edge B before it is used from there.
    await eventually(
      "JetStream account info from edge B",
      async () => {
        const jsm = await onB.jetstreamManager({ domain: "hub" });
        await jsm.getAccountInfo();
      },
      { ms: 15000, every: 200 },
    );
    // Edge B answers "leaf.kv.go" by reading what the browser put and writing a key of its own.
    let kvB = null;
    let bError = null;
    onB.subscribe("leaf.kv.go", {
      callback: async (_, m) => {
        try {
          kvB = kvB ?? (await onB.jetstream({ domain: "hub" }).views.kv("leafkv", { bindOnly: true }));
          const two = dec.decode((await kvB.get("k.two")).value);
          await kvB.put("k.from-b", enc.encode("b"));
          m.respond(enc.encode(two));
        } catch (e) {
          bError = e;
          m.respond(enc.encode(`error: ${e.message}`));
        }
      },
    });
    await onB.flush();
    const r = await page.run(
      async (nats, { url }) => {
        const te = new TextEncoder();
        const td = new TextDecoder();
        const nc = await nats.connect({ servers: url, reconnect: false });
        const retry = async (fn) => {
          const deadline = Date.now() + 15000;
          for (;;) {
            try {
              return await fn();
            } catch (e) {
              if (Date.now() > deadline) throw e;
              await new Promise((res) => setTimeout(res, 200));
            }
          }
        };
        const bounded = (p, what, ms = 5000) =>
          Promise.race([p, new Promise((_, j) => setTimeout(() => j(new Error(`in the page: ${what()} took over ${ms} ms`)), ms))]);
        const kv = await retry(() => nc.jetstream({ domain: "hub", timeout: 2000 }).views.kv("leafkv", { history: 5 }));
        const watched = [];
        const w = await kv.watch({ key: "k.>" });
        const done = (async () => {
          for await (const e of w) {
            watched.push(`${e.operation}:${e.key}=${td.decode(e.value)}`);
            if (e.key === "k.from-b") break;
          }
        })();
        const seq1 = await kv.put("k.one", te.encode("1"));
        const seq2 = await kv.put("k.one", te.encode("2"));
        await kv.put("k.two", te.encode("x"));
        const got = td.decode((await kv.get("k.one")).value);
        const hist = [];
        await bounded(
          (async () => {
            for await (const e of await kv.history({ key: "k.one" })) hist.push(td.decode(e.value));
          })(),
          () => `kv.history (got ${hist})`,
        );
        // Edge B reads k.two and puts k.from-b; the watcher must see that put.
        const fromB = await retry(async () => td.decode((await nc.request("leaf.kv.go", te.encode("?"), { timeout: 5000 })).data));
        await bounded(done, () => `the watcher seeing k.from-b (it saw ${watched})`);
        w.stop();
        await nc.close();
        return { seqs: [seq1, seq2], got, hist, watched, fromB };
      },
      { url: s.a.wsUrl },
      45000,
    );
    if (bError) throw bError;
    assert.equal(r.fromB, "x", "edge B reads what the browser on edge A put");
    assert.equal(r.got, "2");
    assert.deepEqual(r.hist, ["1", "2"]);
    assert.equal(r.seqs[1], r.seqs[0] + 1);
    assert.deepEqual(r.watched, ["PUT:k.one=1", "PUT:k.one=2", "PUT:k.two=x", "PUT:k.from-b=b"]);
    const status = await kvB.status();
    assert.equal(status.values, 4);
    await within(5000, kvB.destroy(), "kv destroy");
  });
});
