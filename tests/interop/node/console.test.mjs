// natsws' web console (<monitoring port>/console) in headless Debian Chromium, driven by
// playwright-core: the page is loaded from a live natsws, its tables fill from the server, and
// its playground publishes over natsws' WebSocket port to a nats.js and a nats-py subscriber on TCP.
// nats-server has no console (it is a natsws extension), so these cases are skipped against it.
// Each case is skipped (not left out) against nats-server, so that both servers report the same
// case names. Screenshots go to tests/interop/results/console/ (or $INTEROP_SCREENSHOTS), kept by CI.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { closeAll, tcpClient, wsClient } from "../lib/clients.mjs";
import { INTEROP_DIR, KIND, dec, enc, listen, monitor, orError, startServer, within } from "../lib/harness.mjs";

const T = { timeout: 45000 };
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
const SHOTS = process.env.INTEROP_SCREENSHOTS || path.join(INTEROP_DIR, "results", "console");
const SKIP = KIND === "natsws" ? false : "nats-server has no web console (natsws extension)";
const USER = { user: "alice", pass: "secret" };

async function screenshot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(fs.statSync(file).size > 10000, `${file} is a real screenshot`);
}

/** A nats-py subscriber in its own process (the interop venv's Python): resolves once it is
 * subscribed, then `message` resolves with the first payload it received on `subject`. */
async function pySubscriber(server, subject, opts) {
  const script = `
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1], user=sys.argv[3], password=sys.argv[4], allow_reconnect=False)
    sub = await nc.subscribe(sys.argv[2])
    await nc.flush()
    print("ready", flush=True)
    msg = await sub.next_msg(timeout=20)
    print("msg " + msg.data.decode(), flush=True)
    await nc.close()
asyncio.run(main())
`;
  const py = spawn(path.join(INTEROP_DIR, ".venv", "bin", "python3"), ["-c", script, server.tcpUrl, subject, opts.user, opts.pass], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const waiters = [];
  const check = () => waiters.forEach((w) => w());
  py.stdout.on("data", (d) => { out += d; check(); });
  py.stderr.on("data", (d) => { err += d; });
  py.on("exit", check);
  const waitFor = (re, what) =>
    within(20000, new Promise((resolve, reject) => {
      const w = () => {
        const m = out.match(re);
        if (m) resolve(m[1]);
        else if (py.exitCode !== null) reject(new Error(`nats-py exited (${py.exitCode}) before ${what}: ${err}`));
      };
      waiters.push(w);
      w();
    }), `nats-py ${what}`);
  await waitFor(/^(ready)$/m, "subscribing");
  return { message: waitFor(/^msg (.*)$/m, "a message"), kill: () => py.kill() };
}

/** Waits (bounded) until `fn` evaluated in the page returns a truthy value; returns it. */
async function waitIn(page, what, fn, arg) {
  const handle = await within(15000, page.waitForFunction(fn, arg, { timeout: 15000, polling: 100 }), what);
  return handle.jsonValue();
}

describe("web console (scenario console)", () => {
  let context;
  let userDir;
  let server;
  let page;
  const pageErrors = [];
  const conns = [];

  before(async () => {
    if (SKIP) return;
    server = await orError(startServer("console"));
    userDir = fs.mkdtempSync(path.join(process.env.INTEROP_RUN_DIR || "/tmp", "chromium-console-"));
    context = await orError(
      within(
        30000,
        chromium.launchPersistentContext(userDir, {
          executablePath: CHROMIUM,
          headless: true,
          args: CHROMIUM_ARGS,
          viewport: { width: 1400, height: 1000 },
        }),
        "chromium launch",
      ),
    );
  });

  after(async () => {
    await page?.close().catch(() => {});
    await closeAll(conns);
    await within(10000, context?.close() ?? Promise.resolve(), "chromium close").catch(() => {});
    await server?.stop();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  it("loads from the monitoring port and fills the connections table with transport details", { ...T, skip: SKIP }, async () => {
    const tcp = await tcpClient(server, { ...USER, name: "tcp-subscriber" });
    conns.push(tcp);
    tcp.subscribe("demo.*");
    await tcp.flush();
    const ws = await wsClient(
      server,
      { ...USER, name: "node-ws" },
      {
        ws: {
          origin: "http://app.example",
          perMessageDeflate: true,
          headers: { "User-Agent": "interop-node-ws/1.0", "X-Forwarded-For": "198.51.100.4, 10.0.0.1" },
        },
      },
    );
    conns.push(ws);
    await ws.flush();

    page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
    });
    const res = await page.goto(`http://127.0.0.1:${server.http}/console`, { timeout: 10000 });
    assert.equal(res.status(), 200);
    assert.match(res.headers()["content-security-policy"], /script-src 'self'/);

    const rows = await waitIn(
      page,
      "two connection rows",
      () => {
        const trs = [...document.querySelectorAll("#conn-table tbody tr[data-cid]")];
        return trs.length >= 2 && trs.map((tr) => [...tr.cells].map((td) => td.textContent));
      },
    );
    const wsRow = rows.find((r) => r[7].startsWith("node-ws"));
    assert.ok(wsRow, JSON.stringify(rows));
    assert.equal(wsRow[1], "client");
    assert.equal(wsRow[2], "ws");
    assert.equal(wsRow[4], "198.51.100.4, 10.0.0.1");
    assert.equal(wsRow[5], "http://app.example");
    assert.equal(wsRow[6], "interop-node-ws/1.0");
    assert.equal(wsRow[9], "deflate");
    const tcpRow = rows.find((r) => r[7].startsWith("tcp-subscriber"));
    assert.ok(tcpRow, JSON.stringify(rows));
    assert.equal(tcpRow[2], "tcp");
    assert.equal(tcpRow[11], "1", "one subscription");

    // Traffic shows as rates and on the charts.
    const pump = setInterval(() => {
      for (let i = 0; i < 20; i++) ws.publish(`demo.${i}`, enc.encode("payload-" + i));
    }, 100);
    try {
      const rate = await waitIn(page, "a message rate", () => {
        const t = document.getElementById("ov-msg-rate").textContent;
        return /^[1-9]/.test(t) && t;
      });
      assert.match(rate, /·/);
      // Both series are plotted: pixels of the "in" and "out" colours on each chart.
      const inked = await waitIn(page, "both series on both charts", () => {
        const ink = (id, [r, g, b]) => {
          const c = document.getElementById(id);
          const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < px.length; i += 4) {
            if (Math.abs(px[i] - r) < 40 && Math.abs(px[i + 1] - g) < 40 && Math.abs(px[i + 2] - b) < 40 && px[i + 3] > 200) n++;
          }
          return n;
        };
        const counts = ["msg-chart", "byte-chart"].flatMap((id) => [ink(id, [43, 125, 233]), ink(id, [232, 119, 46])]);
        return counts.every((n) => n > 30) && counts;
      });
      assert.equal(inked.length, 4);
    } finally {
      clearInterval(pump);
    }
    // The page's nats.ws is the npm package the suite pins, unmodified, with its licence.
    const served = await within(3000, fetch(`http://127.0.0.1:${server.http}/console/vendor/nats.ws.js`), "bundle");
    assert.equal(served.headers.get("content-type"), "text/javascript; charset=utf-8");
    const pinned = fs.readFileSync(path.join(INTEROP_DIR, "node_modules", "nats.ws", "esm", "nats.js"));
    assert.ok(Buffer.from(await served.arrayBuffer()).equals(pinned), "vendored bundle = node_modules/nats.ws/esm/nats.js");
    const licence = await within(3000, fetch(`http://127.0.0.1:${server.http}/console/vendor/LICENSE-nats.ws`), "licence");
    assert.equal(await licence.text(), fs.readFileSync(path.join(INTEROP_DIR, "node_modules", "nats.ws", "LICENSE"), "utf8"));
    await screenshot(page, "console-connections");
    assert.deepEqual(pageErrors, []);
  });

  it("subscriptions browser matches subjects with /subsz?test=", { ...T, skip: SKIP }, async () => {
    await page.fill("#subs-test", "demo.x");
    await page.click("#subs-form button");
    const matched = await waitIn(page, "a matching subscription", () => {
      const t = document.getElementById("subs-count").textContent;
      const cells = [...document.querySelectorAll("#subs-table tbody td")].map((td) => td.textContent);
      return t.includes("matching demo.x") && cells.includes("demo.*") && { t, cells };
    });
    assert.match(matched.t, /\(1 matching demo\.x, of 1\)/);
    await page.fill("#subs-test", "other.x");
    await page.click("#subs-form button");
    await waitIn(page, "no match", () =>
      document.querySelector("#subs-table tbody td")?.textContent === "no subscription matches",
    );
    // An invalid publish subject shows the server's refusal.
    await page.fill("#subs-test", "bad.*");
    await page.click("#subs-form button");
    const err = await waitIn(page, "the refusal", () => {
      const e = document.getElementById("subs-error");
      return !e.hidden && e.textContent;
    });
    assert.match(err, /invalid test subject/);
    assert.deepEqual(
      pageErrors.splice(0),
      ["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"],
      "the refused /subsz request is the page's only error",
    );
    await page.fill("#subs-test", "demo.x");
    await page.click("#subs-form button");
    await screenshot(page, "console-subscriptions");
  });

  it("playground refuses without credentials, then publishes to nats.js and nats-py subscribers and receives", { ...T, skip: SKIP }, async () => {
    const before = await monitor(server, "/natsws/connz");
    await page.click("#pg-connect");
    const refusal = await waitIn(page, "the refusal", () => {
      const t = document.getElementById("pg-status").textContent;
      return t.startsWith("Refused") && t;
    });
    assert.match(refusal, /requires credentials and this page has none/);
    assert.equal((await monitor(server, "/natsws/connz")).total, before.total, "no connection was attempted");

    const tcp = await tcpClient(server, USER);
    conns.push(tcp);
    const fromConsole = listen(tcp, "play.out");
    await tcp.flush();
    // It exits by itself 20 s after subscribing if no message came.
    const py = await pySubscriber(server, "play.out", USER);
    await page.fill("#pg-user", USER.user);
    await page.fill("#pg-pass", USER.pass);
    await page.click("#pg-connect");
    await waitIn(page, "connected", () => document.getElementById("pg-status").textContent.startsWith("connected to ws://"));
    await page.fill("#pg-sub-subject", "play.in");
    await page.click("#pg-sub");
    await waitIn(page, "subscribed", () => document.getElementById("pg-log").textContent.includes("subscribed to play.in"));
    await page.fill("#pg-pub-subject", "play.out");
    await page.fill("#pg-pub-payload", "hello from the console");
    await page.click("#pg-pub");
    const [m] = await fromConsole.count(1, 10000);
    assert.equal(dec.decode(m.data), "hello from the console");
    assert.equal(await py.message, "hello from the console", "the nats-py subscriber got it too");

    // The subscription reached the server before the flush of the publish behind it.
    tcp.publish("play.in", enc.encode("hello to the console"));
    await tcp.flush();
    await waitIn(page, "the message in the log", () =>
      document.getElementById("pg-log").textContent.includes("← play.in: hello to the console"),
    );

    // The browser's own connection is in the table: Chromium's user agent, the console's
    // origin, and permessage-deflate (Chromium offers it; the scenario allows it).
    const origin = `http://127.0.0.1:${server.http}`;
    const row = await waitIn(
      page,
      "the console's own row",
      (o) => {
        const tr = [...document.querySelectorAll("#conn-table tbody tr[data-cid]")].find(
          // A refresh may list the connection before its CONNECT names the user; wait for one after.
          (r) => r.cells[5].textContent === o && r.cells[8].textContent.includes("alice"),
        );
        return tr && [...tr.cells].map((td) => td.textContent);
      },
      origin,
    );
    assert.match(row[6], /Chrome/);
    assert.equal(row[9], "deflate");
    assert.match(row[8], /alice/);
    await screenshot(page, "console-playground");
    await page.click("#pg-disconnect");
    await waitIn(page, "disconnected", () => document.getElementById("pg-status").textContent === "not connected");
    assert.deepEqual(pageErrors, []);
  });
});

describe("web console under http_base_path (scenario console_base_path)", () => {
  let context;
  let userDir;
  let server;
  const conns = [];

  before(async () => {
    if (SKIP) return;
    server = await orError(startServer("console_base_path"));
    userDir = fs.mkdtempSync(path.join(process.env.INTEROP_RUN_DIR || "/tmp", "chromium-console-"));
    context = await orError(
      within(
        30000,
        chromium.launchPersistentContext(userDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
        "chromium launch",
      ),
    );
  });

  after(async () => {
    await closeAll(conns);
    await within(10000, context?.close() ?? Promise.resolve(), "chromium close").catch(() => {});
    await server?.stop();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  it("reads every endpoint under the base path and connects the playground without credentials", { ...T, skip: SKIP }, async () => {
    const tcp = await tcpClient(server, { name: "base-path-client" });
    conns.push(tcp);
    const got = listen(tcp, "base.>");
    await tcp.flush();
    const page = await context.newPage();
    const failed = [];
    page.on("response", (r) => {
      if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
    });
    const res = await page.goto(`http://127.0.0.1:${server.http}/ops/nats/console`, { timeout: 10000 });
    assert.equal(res.status(), 200);
    await waitIn(page, "the client's row", () =>
      [...document.querySelectorAll("#conn-table tbody tr[data-cid]")].some((tr) =>
        tr.cells[7].textContent.startsWith("base-path-client"),
      ),
    );
    await waitIn(page, "the subscriptions", () => document.getElementById("subs-count").textContent === "(1)");
    await page.click("#pg-connect");
    await waitIn(page, "connected", () => document.getElementById("pg-status").textContent.startsWith("connected to ws://"));
    await page.fill("#pg-pub-subject", "base.path");
    await page.fill("#pg-pub-payload", "under /ops/nats");
    await page.click("#pg-pub");
    const [m] = await got.count(1, 10000);
    assert.equal(dec.decode(m.data), "under /ops/nats");
    assert.deepEqual(failed, [], "no request of the page failed");
    await screenshot(page, "console-base-path");
    await page.close();
  });
});
