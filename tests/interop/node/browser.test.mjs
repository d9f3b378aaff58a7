// nats.ws in headless Debian Chromium (driven by playwright-core; never a downloaded browser).
// Pages are served by small HTTP servers on their own ports, so the page's origin differs from the
// WebSocket listener's: that is the cross-origin situation of every real web app.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { closeAll, tcpClient, wsClient } from "../lib/clients.mjs";
import { INTEROP_DIR, dec, enc, listen, makeCerts, startServer, within, orError } from "../lib/harness.mjs";

const T = { timeout: 30000 };
const NATS_WS_BUNDLE = path.join(INTEROP_DIR, "node_modules", "nats.ws", "esm", "nats.js");
const CHROMIUM = process.env.INTEROP_CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** An HTTP server on a free 127.0.0.1 port serving an empty page and the nats.ws ESM bundle. */
async function pageServer() {
  const srv = http.createServer((req, res) => {
    if (req.url === "/nats.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      fs.createReadStream(NATS_WS_BUNDLE).pipe(res);
    } else if (req.url === "/" || req.url === "/index.html") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>interop</title><p>interop</p>");
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { origin: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) };
}

let context;
let userDir;
const pageServers = [];

async function openPage(origin) {
  const page = await context.newPage();
  await page.goto(`${origin}/`, { timeout: 10000 });
  return page;
}

/** Runs `fn(natsModule, arg)` inside the page (the bundle is imported from the page's origin). */
function inPage(page, fn, arg) {
  return within(
    20000,
    page.evaluate(
      async ([src, a]) => {
        const mod = await import("/nats.js");
        // eslint-disable-next-line no-new-func
        const f = new Function("return " + src)();
        return f(mod, a);
      },
      [fn.toString(), arg],
    ),
    "page.evaluate",
  );
}

/** Opens a bare WebSocket in the page; resolves with what the browser saw. */
function pageSocket(page, url) {
  return within(
    10000,
    page.evaluate(
      (u) =>
        new Promise((resolve) => {
          const ws = new WebSocket(u);
          ws.binaryType = "arraybuffer";
          let opened = false;
          ws.onopen = () => {
            opened = true;
          };
          ws.onmessage = (e) => {
            const text = new TextDecoder().decode(e.data);
            resolve({ opened, extensions: ws.extensions, first: text, binary: e.data instanceof ArrayBuffer });
            ws.close();
          };
          ws.onclose = (e) => resolve({ opened, closed: true, code: e.code });
        }),
      url,
    ),
    "browser WebSocket",
  );
}

before(async () => {
  userDir = fs.mkdtempSync(path.join(process.env.INTEROP_RUN_DIR || "/tmp", "chromium-profile-"));
  context = await orError(within(
    30000,
    chromium.launchPersistentContext(userDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      ignoreHTTPSErrors: true,
    }),
    "chromium launch",
  ));
});

after(async () => {
  await within(10000, context?.close() ?? Promise.resolve(), "chromium close").catch(() => {});
  await Promise.all(pageServers.map((s) => s.close()));
  fs.rmSync(userDir, { recursive: true, force: true });
});

describe("browser (scenario compression)", () => {
  let server;
  let site;
  let page;
  const conns = [];
  before(async () => {
    server = await orError(startServer("compression"));
    site = await pageServer();
    pageServers.push(site);
    page = await orError(() => openPage(site.origin));
  });
  after(async () => {
    await page?.close().catch(() => {});
    await closeAll(conns);
    await server?.stop();
  });

  it("Chromium negotiates permessage-deflate and gets INFO in a binary message", T, async () => {
    const r = await pageSocket(page, server.wsUrl);
    assert.equal(r.opened, true, `socket opened: ${JSON.stringify(r)}`);
    assert.equal(r.binary, true);
    assert.match(r.first, /^INFO \{/);
    assert.match(r.extensions, /^permessage-deflate/);
    assert.match(r.extensions, /server_no_context_takeover/);
    assert.match(r.extensions, /client_no_context_takeover/);
  });

  it("browser nats.ws connects, publishes to a TCP subscriber and receives from it", T, async () => {
    const tcp = await tcpClient(server);
    conns.push(tcp);
    const fromBrowser = listen(tcp, "browser.out");
    await tcp.flush();
    const p = inPage(
      page,
      async (nats, { url }) => {
        const nc = await nats.connect({ servers: url, reconnect: false });
        const sub = nc.subscribe("browser.in", { max: 3 });
        await nc.flush();
        for (let i = 0; i < 3; i++) nc.publish("browser.out", new TextEncoder().encode(`b${i}`));
        await nc.flush();
        const got = [];
        for await (const m of sub) got.push(new TextDecoder().decode(m.data));
        await nc.close();
        return got;
      },
      { url: server.wsUrl },
    );
    assert.deepEqual((await fromBrowser.count(3, 15000)).map((m) => dec.decode(m.data)), ["b0", "b1", "b2"]);
    for (let i = 0; i < 3; i++) tcp.publish("browser.in", enc.encode(`t${i}`));
    await tcp.flush();
    assert.deepEqual(await p, ["t0", "t1", "t2"]);
  });

  it("request/reply: browser requester, TCP responder; Node ws requester, browser responder", T, async () => {
    const tcp = await tcpClient(server);
    const nws = await wsClient(server);
    conns.push(tcp, nws);
    const svc = tcp.subscribe("svc.upper", {
      callback: (_, m) => m.respond(enc.encode(dec.decode(m.data).toUpperCase())),
    });
    await tcp.flush();
    const browserSide = inPage(
      page,
      async (nats, { url }) => {
        const nc = await nats.connect({ servers: url, reconnect: false });
        const r = await nc.request("svc.upper", new TextEncoder().encode("hello"), { timeout: 5000 });
        const answer = new TextDecoder().decode(r.data);
        const sub = nc.subscribe("svc.browser", { max: 1 });
        await nc.flush();
        nc.publish("svc.browser.ready");
        for await (const m of sub) m.respond(new TextEncoder().encode("from browser:" + new TextDecoder().decode(m.data)));
        await nc.flush();
        await nc.close();
        return answer;
      },
      { url: server.wsUrl },
    );
    const ready = listen(nws, "svc.browser.ready");
    await nws.flush();
    await ready.count(1, 15000);
    const r = await nws.request("svc.browser", enc.encode("ping"), { timeout: 5000 });
    assert.equal(dec.decode(r.data), "from browser:ping");
    assert.equal(await browserSide, "HELLO");
    svc.unsubscribe();
  });

  it("headers from the browser reach a TCP subscriber", T, async () => {
    const tcp = await tcpClient(server);
    conns.push(tcp);
    const l = listen(tcp, "browser.hdr");
    await tcp.flush();
    await inPage(
      page,
      async (nats, { url }) => {
        const nc = await nats.connect({ servers: url, reconnect: false });
        const h = nats.headers();
        h.append("X-From", "chromium");
        h.append("X-Multi", "1");
        h.append("X-Multi", "2");
        nc.publish("browser.hdr", new TextEncoder().encode("with headers"), { headers: h });
        await nc.flush();
        await nc.close();
      },
      { url: server.wsUrl },
    );
    const [m] = await l.count(1);
    assert.equal(m.headers.get("X-From"), "chromium");
    assert.deepEqual(m.headers.values("X-Multi"), ["1", "2"]);
    assert.equal(dec.decode(m.data), "with headers");
  });

  it("1 MB payloads both ways between the browser and TCP (browser framing + compression)", { timeout: 45000 }, async () => {
    const tcp = await tcpClient(server);
    conns.push(tcp);
    const echo = tcp.subscribe("big.echo", { callback: (_, m) => m.respond(m.data) });
    await tcp.flush();
    const result = await inPage(
      page,
      async (nats, { url }) => {
        const nc = await nats.connect({ servers: url, reconnect: false });
        const data = new Uint8Array(1024 * 1024);
        for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
        // Half random, half text, so compression has something to do.
        data.fill(65, 0, data.length / 2);
        const r = await nc.request("big.echo", data, { timeout: 15000 });
        let same = r.data.length === data.length;
        for (let i = 0; same && i < data.length; i++) same = r.data[i] === data[i];
        await nc.close();
        return { len: r.data.length, same };
      },
      { url: server.wsUrl },
    );
    assert.deepEqual(result, { len: 1024 * 1024, same: true });
    echo.unsubscribe();
  });

  it("mixed clients: browser (compressed), Node ws compressed and uncompressed, TCP all see the same bytes", T, async () => {
    const tcp = await tcpClient(server);
    const plain = await wsClient(server, {}, { ws: { perMessageDeflate: false } });
    const sockets = [];
    const deflate = await wsClient(server, {}, { ws: { perMessageDeflate: true }, sink: sockets });
    conns.push(tcp, plain, deflate);
    assert.match(sockets[0].extensions, /permessage-deflate/, "Node ws client negotiated compression");
    const payloads = [
      "small",
      "x".repeat(65),
      JSON.stringify({ text: "compressible ".repeat(2000) }),
      crypto.randomBytes(5000).toString("base64"),
    ];
    const ls = [tcp, plain, deflate].map((nc) => listen(nc, "mixed"));
    await Promise.all([tcp, plain, deflate].map((nc) => nc.flush()));
    await inPage(
      page,
      async (nats, { url, payloads }) => {
        const nc = await nats.connect({ servers: url, reconnect: false });
        for (const p of payloads) nc.publish("mixed", new TextEncoder().encode(p));
        await nc.flush();
        await nc.close();
      },
      { url: server.wsUrl, payloads },
    );
    plain.publish("mixed", enc.encode("from plain ws"));
    deflate.publish("mixed", enc.encode("from deflate ws ".repeat(100)));
    await plain.flush();
    await deflate.flush();
    const want = [...payloads, "from plain ws", "from deflate ws ".repeat(100)];
    for (const l of ls) {
      const got = (await l.count(want.length)).map((m) => dec.decode(m.data));
      assert.deepEqual(got.slice(0, payloads.length), payloads);
      assert.deepEqual(new Set(got), new Set(want));
    }
  });
});

describe("browser without compression (scenario basic)", () => {
  let server;
  let page;
  before(async () => {
    server = await orError(startServer("basic"));
    const site = await pageServer();
    pageServers.push(site);
    page = await orError(() => openPage(site.origin));
  });
  after(async () => {
    await page?.close().catch(() => {});
    await server?.stop();
  });

  it("no extension is negotiated when compression is off", T, async () => {
    const r = await pageSocket(page, server.wsUrl);
    assert.equal(r.opened, true);
    assert.equal(r.extensions, "");
    assert.match(r.first, /^INFO \{/);
  });
});

describe("browser over wss (scenario tls, CA made at test time)", () => {
  let server;
  let page;
  const conns = [];
  before(async () => {
    const c = makeCerts(path.join(process.env.INTEROP_RUN_DIR || "/tmp", `certs-browser-${process.pid}`));
    server = await orError(startServer("tls", { CERT: c.cert, KEY: c.key }));
    const site = await pageServer();
    pageServers.push(site);
    page = await orError(() => openPage(site.origin));
  });
  after(async () => {
    await page?.close().catch(() => {});
    await closeAll(conns);
    await server?.stop();
  });

  it("browser nats.ws connects over wss and exchanges messages with TCP", T, async () => {
    const tcp = await tcpClient(server);
    conns.push(tcp);
    const l = listen(tcp, "wss.browser");
    await tcp.flush();
    await inPage(
      page,
      async (nats, { url }) => {
        const nc = await nats.connect({ servers: url, reconnect: false });
        nc.publish("wss.browser", new TextEncoder().encode("secure hello"));
        await nc.flush();
        await nc.close();
      },
      { url: `wss://127.0.0.1:${server.ws}` },
    );
    assert.equal(dec.decode((await l.count(1))[0].data), "secure hello");
  });
});

describe("browser origin checks", () => {
  const tryConnect = (page, url) =>
    inPage(
      page,
      async (nats, { url }) => {
        try {
          const nc = await nats.connect({ servers: url, reconnect: false, timeout: 5000 });
          await nc.flush();
          await nc.close();
          return "connected";
        } catch (e) {
          return `failed: ${e.code || e.message}`;
        }
      },
      { url },
    );

  describe("allowed_origins lists the first page server only", () => {
    let server;
    let listed;
    let other;
    const pages = [];
    before(async () => {
      listed = await pageServer();
      other = await pageServer();
      pageServers.push(listed, other);
      server = await orError(startServer("allowed_origins", { ALLOWED: listed.origin }));
      pages.push(await orError(() => openPage(listed.origin)), await orError(() => openPage(other.origin)));
    });
    after(async () => {
      for (const p of pages) await p.close().catch(() => {});
      await server?.stop();
    });

    it("a page from the listed origin connects", T, async () => {
      assert.equal(await tryConnect(pages[0], server.wsUrl), "connected");
    });

    it("a page from a second origin is rejected", T, async () => {
      assert.match(await tryConnect(pages[1], server.wsUrl), /^failed/);
      const r = await pageSocket(pages[1], server.wsUrl);
      assert.equal(r.opened, false);
      assert.equal(r.code, 1006);
    });
  });

  describe("same_origin", () => {
    let server;
    let page;
    before(async () => {
      const site = await pageServer();
      pageServers.push(site);
      server = await orError(startServer("same_origin"));
      page = await orError(() => openPage(site.origin));
    });
    after(async () => {
      await page?.close().catch(() => {});
      await server?.stop();
    });

    it("a page served from another port is rejected", T, async () => {
      assert.match(await tryConnect(page, server.wsUrl), /^failed/);
    });
  });
});


describe("browser with accounts (scenario accounts)", () => {
  let server;
  let page;
  const conns = [];
  before(async () => {
    server = await orError(startServer("accounts"));
    const site = await pageServer();
    pageServers.push(site);
    page = await orError(() => openPage(site.origin));
  });
  // Each case closes its connections, so no service of one case answers in the next.
  afterEach(async () => {
    await closeAll(conns.splice(0));
  });
  after(async () => {
    await page?.close().catch(() => {});
    await server?.stop();
  });

  it("browser nats.ws as BANK requests SHOP's svc.echo through the import and gets shop.orders.> through the prefixed stream import", T, async () => {
    const shop = await tcpClient(server, { user: "shop", pass: "pw" });
    const bank = await tcpClient(server, { user: "bank", pass: "pw" });
    conns.push(shop, bank);
    shop.subscribe("svc.echo", {
      callback: (_, m) => m.respond(enc.encode(m.headers?.get("Nats-Request-Info") ?? "")),
    });
    const ready = listen(bank, "bank.ready");
    await shop.flush();
    await bank.flush();
    const browserSide = inPage(
      page,
      async (nats, { url }) => {
        const nc = await nats.connect({ servers: url, reconnect: false, user: "bank", pass: "pw" });
        const r = await nc.request("svc.echo", new TextEncoder().encode("browser"), { timeout: 5000 });
        const sub = nc.subscribe("shop.orders.>", { max: 1 });
        const unprefixed = nc.subscribe("orders.>");
        await nc.flush();
        nc.publish("bank.ready");
        let order = null;
        for await (const m of sub) order = [m.subject, new TextDecoder().decode(m.data)];
        await nc.flush();
        const stray = unprefixed.getProcessed();
        await nc.close();
        return { info: new TextDecoder().decode(r.data), order, stray };
      },
      { url: server.wsUrl },
    );
    await ready.count(1, 15000);
    shop.publish("orders.browser", enc.encode("o1"));
    await shop.flush();
    const got = await browserSide;
    assert.equal(JSON.parse(got.info).acc, "BANK", got.info);
    assert.deepEqual(got.order, ["shop.orders.browser", "o1"]);
    assert.equal(got.stray, 0);
  });

  it("a browser without credentials is anon of GUEST (no_auth_user) and is isolated from OTHER", T, async () => {
    const shop = await tcpClient(server, { user: "shop", pass: "pw" });
    const lonely = await tcpClient(server, { user: "other", pass: "pw" });
    const guest = await tcpClient(server, { user: "guest", pass: "pw" });
    conns.push(shop, lonely, guest);
    shop.subscribe("svc.echo", { callback: (_, m) => m.respond(enc.encode(`echo:${dec.decode(m.data)}`)) });
    const inOther = listen(lonely, ">");
    const inGuest = listen(guest, "lobby.>");
    for (const nc of [shop, lonely, guest]) await nc.flush();
    const answer = await inPage(
      page,
      async (nats, { url }) => {
        const nc = await nats.connect({ servers: url, reconnect: false });
        const r = await nc.request("echo", new TextEncoder().encode("anon"), { timeout: 5000 });
        nc.publish("lobby.browser", new TextEncoder().encode("hi"));
        await nc.flush();
        await nc.close();
        return new TextDecoder().decode(r.data);
      },
      { url: server.wsUrl },
    );
    assert.equal(answer, "echo:anon");
    assert.equal(dec.decode((await inGuest.count(1))[0].data), "hi");
    await inOther.quiet(0);
  });
});
