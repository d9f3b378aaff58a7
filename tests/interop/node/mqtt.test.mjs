// mqtt.js (MQTT 3.1.1) in Node over the websocket port at /mqtt, bridged to nats.ws: pub/sub,
// MQTT -> NATS and NATS -> MQTT, a QoS 1 delivery sent again after its client dropped without
// PUBACK, a retained message for a late subscriber, a will on abrupt disconnect, and a
// clean=false session resumed. The same cases run against nats-server (with the JetStream it
// needs for MQTT) and natsws.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import mqtt from "mqtt";
import { closeAll, wsClient } from "../lib/clients.mjs";
import { KIND, dec, enc, freePort, listen, orError, sleep, startServer, within } from "../lib/harness.mjs";

const T = { timeout: 30000 };

/** A connected mqtt.js client and a queue of the messages it receives. */
async function connect(server, clientId, opts = {}) {
  const client = mqtt.connect(`ws://127.0.0.1:${server.ws}/mqtt`, {
    protocolVersion: 4,
    clientId,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
  });
  const messages = [];
  const waiters = [];
  client.on("message", (topic, payload, packet) => {
    const m = { topic, payload: payload.toString(), packet };
    const w = waiters.shift();
    if (w) w(m);
    else messages.push(m);
  });
  const connack = await within(
    8000,
    new Promise((resolve, reject) => {
      client.once("connect", resolve);
      client.once("error", reject);
    }),
    `mqtt.js connect ${clientId}`,
  );
  client.next = (what = "message") =>
    within(8000, new Promise((r) => (messages.length ? r(messages.shift()) : waiters.push(r))), what);
  client.none = async (ms = 500) => {
    await sleep(ms);
    assert.equal(messages.length, 0, `unexpected ${JSON.stringify(messages.map((m) => m.topic))}`);
  };
  client.connack = connack;
  return client;
}

const sub = (c, filter, qos = 0) => within(8000, c.subscribeAsync(filter, { qos }), `subscribe ${filter}`);
const pub = (c, topic, payload, opts = {}) => within(8000, c.publishAsync(topic, payload, opts), `publish ${topic}`);
const end = (c) => within(3000, c.endAsync(), "end").catch(() => {});

describe("mqtt.js over ws /mqtt (scenario mqtt_js)", () => {
  let server;
  const clients = [];
  const conns = [];
  const open = async (id, opts) => {
    const c = await connect(server, id, opts);
    clients.push(c);
    return c;
  };

  before(async () => {
    let jetstream = "";
    if (KIND === "nats-server") {
      const store = fs.mkdtempSync(path.join(process.env.INTEROP_RUN_DIR || os.tmpdir(), "js-"));
      jetstream = `jetstream { store_dir: "${store}" }`;
    }
    server = await orError(startServer("mqtt_js", { MQTT: await freePort(), JETSTREAM: jetstream }));
  });
  after(async () => {
    await Promise.all(clients.map(end));
    await closeAll(conns);
    await server?.stop();
  });

  it("publish and subscribe at QoS 0 and 1, wildcards", T, async () => {
    const s = await open("js-sub");
    const p = await open("js-pub");
    const granted = await sub(s, "a/+/c", 1);
    assert.equal(granted[0].qos, 1);
    await pub(p, "a/b/c", "zero");
    let m = await s.next();
    assert.deepEqual([m.topic, m.payload, m.packet.qos], ["a/b/c", "zero", 0]);
    await pub(p, "a/x/c", "one", { qos: 1 });
    m = await s.next();
    assert.deepEqual([m.topic, m.payload, m.packet.qos], ["a/x/c", "one", 1]);
    await pub(p, "a/b/d", "other");
    await s.none();
  });

  it("MQTT -> NATS (nats.ws subscriber) and NATS -> MQTT", T, async () => {
    const nc = await wsClient(server);
    conns.push(nc);
    const got = listen(nc, "bridge.>");
    await nc.flush();
    const c = await open("js-bridge");
    await pub(c, "bridge/from/mqtt", "hello nats", { qos: 1 });
    const [msg] = await got.count(1);
    assert.equal(msg.subject, "bridge.from.mqtt");
    assert.equal(dec.decode(msg.data), "hello nats");
    await sub(c, "nats/+", 0);
    nc.publish("nats.x", enc.encode("hello mqtt"));
    await nc.flush();
    const m = await c.next();
    assert.deepEqual([m.topic, m.payload], ["nats/x", "hello mqtt"]);
  });

  it("a QoS 1 delivery not acknowledged is sent again with DUP after the client drops", T, async () => {
    const s = await open("js-noack", { clean: false });
    // No PUBACK: the delivery is never handed back as handled.
    s.handleMessage = () => {};
    await sub(s, "noack/t", 1);
    const p = await open("js-noack-pub");
    await pub(p, "noack/t", "again", { qos: 1 });
    const first = await s.next();
    assert.equal(first.payload, "again");
    s.stream.destroy();
    await sleep(300);
    const back = await open("js-noack", { clean: false });
    assert.equal(back.connack.sessionPresent, true);
    const m = await back.next("redelivery");
    assert.equal(m.payload, "again");
    assert.equal(m.packet.dup, true);
    await end(back);
    await end(await open("js-noack", { clean: true }));
  });

  it("a retained message reaches a late subscriber; an empty one clears it", T, async () => {
    const p = await open("js-ret-pub");
    await pub(p, "ret/a", "kept", { qos: 1, retain: true });
    await pub(p, "ret/b", "gone", { qos: 1, retain: true });
    await pub(p, "ret/b", "", { qos: 1, retain: true });
    const late = await open("js-ret-late");
    await sub(late, "ret/+", 0);
    const m = await late.next();
    assert.deepEqual([m.topic, m.payload, m.packet.retain], ["ret/a", "kept", true]);
    await late.none();
  });

  it("the will is published when the client drops without DISCONNECT", T, async () => {
    const w = await open("js-will-sub");
    await sub(w, "will/js", 0);
    const dying = await connect(server, "js-dying", {
      will: { topic: "will/js", payload: "gone away", qos: 0, retain: false },
    });
    dying.stream.destroy();
    const m = await w.next("will");
    assert.deepEqual([m.topic, m.payload], ["will/js", "gone away"]);
    // A DISCONNECT discards the will.
    const polite = await connect(server, "js-polite", {
      will: { topic: "will/js", payload: "not sent", qos: 0, retain: false },
    });
    await end(polite);
    await w.none();
  });

  it("a clean=false session is resumed: session present, subscription kept", T, async () => {
    const s = await open("js-durable", { clean: false });
    await end(await open("js-durable", { clean: true }));
    const fresh = await open("js-durable", { clean: false });
    assert.equal(fresh.connack.sessionPresent, false);
    await sub(fresh, "durable/+", 1);
    await end(fresh);
    await end(s);
    const back = await open("js-durable", { clean: false });
    assert.equal(back.connack.sessionPresent, true);
    const p = await open("js-durable-pub");
    await pub(p, "durable/x", "still subscribed", { qos: 1 });
    const m = await back.next();
    assert.deepEqual([m.topic, m.payload], ["durable/x", "still subscribed"]);
    await end(back);
    await end(await open("js-durable", { clean: true }));
  });
});
