// mqtt.js's browser build (served from node_modules, no CDN) in headless Debian Chromium
// (playwright-core), over the websocket port at /mqtt from a page of another origin, against
// nats-server (with the JetStream it needs for MQTT) and natsws: pub/sub, MQTT -> NATS with a
// nats.ws subscriber and NATS -> MQTT, a QoS 1 delivery sent again after the page dropped
// without PUBACK, a retained message for a late subscriber, a will when the page goes away,
// and a clean=false session resumed.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import mqtt from "mqtt";
import { chromium } from "playwright-core";
import { closeAll, wsClient } from "../lib/clients.mjs";
import { INTEROP_DIR, KIND, dec, enc, freePort, listen, orError, sleep, startServer, within } from "../lib/harness.mjs";

const T = { timeout: 30000 };
const MQTT_BUNDLE = path.join(INTEROP_DIR, "node_modules", "mqtt", "dist", "mqtt.esm.js");
const CHROMIUM = process.env.INTEROP_CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** An HTTP server on a free port serving an empty page and mqtt.js's browser bundle. */
async function pageServer() {
  const srv = http.createServer((req, res) => {
    if (req.url === "/mqtt.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      fs.createReadStream(MQTT_BUNDLE).pipe(res);
    } else if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>mqtt interop</title>");
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { origin: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) };
}

/** Connects an mqtt.js client inside `page`; resolves with the CONNACK's session-present flag. */
function pageConnect(page, url, clientId, opts = {}) {
  return within(
    15000,
    page.evaluate(
      async ([url, clientId, opts]) => {
        const mqtt = (await import("/mqtt.js")).default;
        const c = mqtt.connect(url, { protocolVersion: 4, clientId, clean: true, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
        if (opts.noAck) c.handleMessage = () => {};
        c.msgs = [];
        c.on("message", (topic, payload, p) => c.msgs.push({ topic, payload: new TextDecoder().decode(payload), qos: p.qos, dup: p.dup, retain: p.retain }));
        const ack = await new Promise((resolve, reject) => {
          c.once("connect", resolve);
          c.once("error", (e) => reject(String(e)));
        });
        window.clients = window.clients || {};
        window.clients[clientId] = c;
        return ack.sessionPresent;
      },
      [url, clientId, opts],
    ),
    `browser mqtt.js connect ${clientId}`,
  );
}

/** Runs `op` ("subscribe" or "publish") on a page client. */
function pageOp(page, clientId, op, ...args) {
  return within(
    10000,
    page.evaluate(
      async ([id, op, args]) => {
        const c = window.clients[id];
        const r = op === "subscribe" ? await c.subscribeAsync(args[0], { qos: args[1] }) : await c.publishAsync(...args);
        return JSON.parse(JSON.stringify(r ?? null));
      },
      [clientId, op, args],
    ),
    `browser ${op}`,
  );
}

/** The next message a page client received (waits up to 8 s inside the page). */
function pageNext(page, clientId) {
  return within(
    10000,
    page.evaluate(async (id) => {
      const c = window.clients[id];
      const end = Date.now() + 8000;
      while (!c.msgs.length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return c.msgs.shift() ?? null;
    }, clientId),
    "browser message",
  );
}

/** A Node mqtt.js client with a bounded `next()`. */
async function nodeClient(server, clientId, opts = {}) {
  const c = mqtt.connect(`ws://127.0.0.1:${server.ws}/mqtt`, { protocolVersion: 4, clientId, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  const msgs = [];
  c.on("message", (topic, payload) => msgs.push({ topic, payload: payload.toString() }));
  await within(8000, new Promise((r, j) => (c.once("connect", r), c.once("error", j))), `connect ${clientId}`);
  c.next = async () => {
    const end = Date.now() + 8000;
    while (!msgs.length && Date.now() < end) await sleep(20);
    return msgs.shift() ?? null;
  };
  return c;
}

describe("mqtt.js in Chromium over ws /mqtt (scenario mqtt_js)", () => {
  let server;
  let site;
  let context;
  let userDir;
  let url;
  const nodes = [];
  const conns = [];
  const newPage = async () => {
    const page = await context.newPage();
    await page.goto(`${site.origin}/`, { timeout: 10000 });
    return page;
  };
  const node = async (id, opts) => {
    const c = await nodeClient(server, id, opts);
    nodes.push(c);
    return c;
  };

  before(async () => {
    let jetstream = "";
    if (KIND === "nats-server") {
      const store = fs.mkdtempSync(path.join(process.env.INTEROP_RUN_DIR || os.tmpdir(), "js-"));
      jetstream = `jetstream { store_dir: "${store}" }`;
    }
    server = await orError(startServer("mqtt_js", { MQTT: await freePort(), JETSTREAM: jetstream }));
    url = `ws://127.0.0.1:${server.ws}/mqtt`;
    site = await pageServer();
    userDir = fs.mkdtempSync(path.join(process.env.INTEROP_RUN_DIR || os.tmpdir(), "chromium-mqtt-"));
    context = await orError(
      within(30000, chromium.launchPersistentContext(userDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }), "chromium launch"),
    );
  });
  after(async () => {
    await Promise.all(nodes.map((c) => within(3000, c.endAsync(), "end").catch(() => {})));
    await closeAll(conns);
    await within(10000, context?.close() ?? Promise.resolve(), "chromium close").catch(() => {});
    await site?.close();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
    await server?.stop();
  });

  it("publish and subscribe inside the page at QoS 0 and 1", T, async () => {
    const page = await newPage();
    await pageConnect(page, url, "br-sub");
    await pageConnect(page, url, "br-pub");
    const granted = await pageOp(page, "br-sub", "subscribe", "b/+", 1);
    assert.equal(granted[0].qos, 1);
    await pageOp(page, "br-pub", "publish", "b/zero", "zero");
    await pageOp(page, "br-pub", "publish", "b/one", "one", { qos: 1 });
    const a = await pageNext(page, "br-sub");
    const b = await pageNext(page, "br-sub");
    assert.deepEqual([a.topic, a.payload, a.qos], ["b/zero", "zero", 0]);
    assert.deepEqual([b.topic, b.payload, b.qos], ["b/one", "one", 1]);
    await page.close();
  });

  it("page MQTT -> nats.ws subscriber, and NATS -> page MQTT", T, async () => {
    const nc = await wsClient(server);
    conns.push(nc);
    const got = listen(nc, "brbridge.>");
    await nc.flush();
    const page = await newPage();
    await pageConnect(page, url, "br-bridge");
    await pageOp(page, "br-bridge", "publish", "brbridge/up", "from the page", { qos: 1 });
    const [msg] = await got.count(1);
    assert.deepEqual([msg.subject, dec.decode(msg.data)], ["brbridge.up", "from the page"]);
    await pageOp(page, "br-bridge", "subscribe", "brnats/+", 0);
    nc.publish("brnats.down", enc.encode("to the page"));
    await nc.flush();
    const m = await pageNext(page, "br-bridge");
    assert.deepEqual([m.topic, m.payload], ["brnats/down", "to the page"]);
    await page.close();
  });

  it("a QoS 1 delivery the page never acknowledged is sent again with DUP", T, async () => {
    let page = await newPage();
    await pageConnect(page, url, "br-noack", { clean: false, noAck: true });
    await pageOp(page, "br-noack", "subscribe", "brnoack/t", 1);
    const p = await node("br-noack-pub");
    await within(8000, p.publishAsync("brnoack/t", "again", { qos: 1 }), "publish");
    assert.equal((await pageNext(page, "br-noack")).payload, "again");
    await page.close();
    await sleep(300);
    page = await newPage();
    assert.equal(await pageConnect(page, url, "br-noack", { clean: false }), true);
    const m = await pageNext(page, "br-noack");
    assert.deepEqual([m.payload, m.dup], ["again", true]);
    await page.close();
    const clean = await node("br-noack", { clean: true });
    await within(3000, clean.endAsync(), "end");
  });

  it("a retained message reaches a late subscriber in the page", T, async () => {
    const p = await node("br-ret-pub");
    await within(8000, p.publishAsync("brret/a", "kept", { qos: 1, retain: true }), "publish");
    const page = await newPage();
    await pageConnect(page, url, "br-ret-late");
    await pageOp(page, "br-ret-late", "subscribe", "brret/+", 0);
    const m = await pageNext(page, "br-ret-late");
    assert.deepEqual([m.topic, m.payload, m.retain], ["brret/a", "kept", true]);
    await page.close();
  });

  it("the will of a page that goes away is published", T, async () => {
    const w = await node("br-will-sub");
    await within(8000, w.subscribeAsync("brwill/t", { qos: 0 }), "subscribe");
    const page = await newPage();
    await pageConnect(page, url, "br-dying", { will: { topic: "brwill/t", payload: "page gone", qos: 0, retain: false } });
    await page.close();
    const m = await w.next();
    assert.deepEqual([m?.topic, m?.payload], ["brwill/t", "page gone"]);
  });

  it("a clean=false session is resumed by a new page", T, async () => {
    let page = await newPage();
    assert.equal(await pageConnect(page, url, "br-durable", { clean: false }), false);
    await pageOp(page, "br-durable", "subscribe", "brdur/+", 1);
    await page.evaluate(() => window.clients["br-durable"].endAsync());
    await page.close();
    page = await newPage();
    assert.equal(await pageConnect(page, url, "br-durable", { clean: false }), true);
    const p = await node("br-dur-pub");
    await within(8000, p.publishAsync("brdur/x", "still subscribed", { qos: 1 }), "publish");
    const m = await pageNext(page, "br-durable");
    assert.deepEqual([m.topic, m.payload], ["brdur/x", "still subscribed"]);
    await page.evaluate(() => window.clients["br-durable"].endAsync());
    await page.close();
    const clean = await node("br-durable", { clean: true });
    await within(3000, clean.endAsync(), "end");
  });
});
