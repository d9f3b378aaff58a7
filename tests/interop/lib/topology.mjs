// Leaf-node topologies for the interop suite: a hub and edges started from scenarios/leaf_*.conf,
// each with the binary its role asks for. The hub of the edge topologies is always the reference
// nats-server (INTEROP_REF_BIN, default /usr/sbin/nats-server); the edges are the server under test
// (INTEROP_SERVER_BIN: nats-server in a `--kind nats-server` run, so the cases are proven against
// the reference, natsws in a `--kind natsws` run). In the "server under test as hub" topology the
// roles swap: the hub is the server under test and the leafs are the reference.
//
// A server under test that refuses the `leafnodes` block, or an option of it, at start-up
// ("\"leafnodes\" is not supported by natsws", "\"leafnodes.port\" is not supported by natsws")
// raises LeafRefused, which the cases turn into a skip naming that line; every other start-up
// failure is a failure. Every wait is bounded.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { chromium } from "playwright-core";
import { INTEROP_DIR, KIND, SCENARIOS, freePort, makeCerts, rawExchange, sleep, within } from "./harness.mjs";

export const REF_BIN = process.env.INTEROP_REF_BIN || "/usr/sbin/nats-server";
export const SUT_BIN = process.env.INTEROP_SERVER_BIN;
const RUN_DIR = process.env.INTEROP_RUN_DIR || path.join(INTEROP_DIR, "results");

/**
 * The one start-up refusal that turns the cases into skips: natsws does not serve the leafnodes
 * block, or the part of it a scenario uses (`"leafnodes.port" is not supported by natsws`), yet.
 */
export const LEAF_REFUSAL = /^.*"leafnodes(?:\.[^"]*)?" is not supported by natsws.*$/m;

/** The server under test refused the `leafnodes` block; `message` is its own log line. */
export class LeafRefused extends Error {}

const PORT_KEYS = ["PORT", "WS", "HTTP", "LEAF"];
const live = new Set();
process.on("exit", () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});

function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect({ host: "127.0.0.1", port });
    const done = (ok) => {
      c.destroy();
      resolve(ok);
    };
    c.once("connect", () => done(true));
    c.once("error", () => done(false));
    c.setTimeout(500, () => done(false));
  });
}

let serial = 0;

/**
 * Starts `bin -c scenarios/<scenario>.conf` as `role` (a label for messages). `{{PORT}}`, `{{WS}}`,
 * `{{HTTP}}`, `{{LEAF}}` become fresh free ports; `{{DIR}}` the server's private directory; any
 * other `{{KEY}}` comes from `vars`. Resolves once every port accepts TCP and the client port sent
 * INFO. The returned server can be stopped and restarted on the same ports and config.
 */
export async function startNode(bin, role, scenario, vars = {}) {
  const template = fs.readFileSync(path.join(SCENARIOS, `${scenario}.conf`), "utf8");
  const kind = bin === REF_BIN ? "nats-server" : KIND;
  const dir = path.join(RUN_DIR, `${scenario}-${role}-${process.pid}-${serial++}`);
  fs.mkdirSync(dir, { recursive: true });
  const confPath = path.join(dir, `${scenario}.conf`);
  let ports = {};
  /** Fresh distinct free ports and the config written with them. */
  const configure = async () => {
    ports = {};
    for (const key of PORT_KEYS) {
      if (!template.includes(`{{${key}}}`)) continue;
      let p;
      do p = await freePort();
      while (Object.values(ports).includes(p));
      ports[key] = p;
    }
    const all = { ...ports, DIR: dir, NAME: role, ...vars };
    const conf = template.replace(/\{\{([A-Z_0-9]+)\}\}/g, (m, k) => {
      if (!(k in all)) throw new Error(`scenario ${scenario}: no value for ${m}`);
      return String(all[k]);
    });
    fs.writeFileSync(confPath, conf);
  };
  const logPath = path.join(dir, "server.log");
  const logText = () => {
    try {
      return fs.readFileSync(logPath, "utf8");
    } catch {
      return "";
    }
  };

  let child = null;
  let exited = null;
  let starts = 0;
  let logFrom = 0;
  const thisStart = () => logText().slice(logFrom);
  const launch = async () => {
    logFrom = logText().length;
    const log = fs.openSync(logPath, "a");
    fs.writeSync(log, `--- start ${++starts} of ${role} (${kind})\n`);
    const c = spawn(bin, ["-c", confPath], { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    child = c;
    exited = null;
    live.add(c);
    if (process.env.INTEROP_PID_DIR) fs.writeFileSync(path.join(process.env.INTEROP_PID_DIR, `${c.pid}`), "");
    c.once("exit", (code, sig) => {
      if (child === c) exited = { code, sig };
      live.delete(c);
    });
    c.once("error", (e) => {
      if (child === c) exited = { code: null, sig: String(e) };
    });
    const deadline = Date.now() + 10000;
    let ready = false;
    while (Date.now() < deadline && !exited) {
      let ok = true;
      for (const p of Object.values(ports)) {
        if (!(await canConnect(p))) {
          ok = false;
          break;
        }
      }
      if (ok) {
        ready = true;
        break;
      }
      await sleep(50);
    }
    if (ready && !exited) {
      const r = await rawExchange(ports.PORT, "", { ms: 5000, until: (b) => b.includes("\r\n") });
      if (r.data.toString("latin1").startsWith("INFO ")) return;
      c.kill("SIGKILL");
      throw new Error(`${kind} as ${role} (scenario ${scenario}) listens but sent no INFO; log:\n${logText().slice(-2000)}`);
    }
    c.kill("SIGKILL");
    const text = thisStart();
    const why = exited ? `exited code=${exited.code} signal=${exited.sig}` : "ports not listening after 10 s";
    if (bin !== REF_BIN && LEAF_REFUSAL.test(text)) {
      throw new LeafRefused(`${kind} as ${role} refuses (part of) the leafnodes block at start-up: ${text.match(LEAF_REFUSAL)[0].trim()}`);
    }
    throw new Error(`${kind} as ${role} did not start with scenario ${scenario} (${why}); log:\n${text.slice(-2000)}`);
  };
  // Ports are free a moment before the server binds them; retry with new ones when one was taken.
  for (let attempt = 0; ; attempt++) {
    await configure();
    try {
      await launch();
      break;
    } catch (e) {
      if (attempt >= 2 || e instanceof LeafRefused || !/in use/i.test(thisStart())) throw e;
    }
  }

  const server = {
    role,
    kind,
    scenario,
    dir,
    confPath,
    ports,
    port: ports.PORT,
    ws: ports.WS,
    http: ports.HTTP,
    leaf: ports.LEAF,
    wsUrl: `ws://127.0.0.1:${ports.WS}`,
    tcpUrl: `nats://127.0.0.1:${ports.PORT}`,
    log: logText,
    get running() {
      return child !== null && !exited;
    },
    async stop() {
      const c = child;
      if (!c || exited) return;
      const gone = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      try {
        await within(3000, gone, `${role} exit after SIGTERM`);
      } catch {
        c.kill("SIGKILL");
        await within(3000, gone, `${role} exit after SIGKILL`).catch(() => {});
      }
    },
    /** Stops the server and starts it again on the same ports with the same config. */
    async restart() {
      await server.stop();
      let last;
      for (let i = 0; i < 3; i++) {
        try {
          await launch();
          return;
        } catch (e) {
          last = e;
          if (!/in use/i.test(thisStart())) break;
          await sleep(300);
        }
      }
      throw last;
    },
  };
  return server;
}

/** GET http://127.0.0.1:<server.http><endpoint> as JSON. */
export async function monitorJson(server, endpoint) {
  const res = await within(3000, fetch(`http://127.0.0.1:${server.http}${endpoint}`), `GET ${endpoint} on ${server.role}`);
  if (res.status !== 200) throw new Error(`GET ${endpoint} on ${server.role}: status ${res.status}`);
  return res.json();
}

/** Waits (bounded) until `server`'s /leafz lists at least `n` leaf connections; returns /leafz. */
export async function waitLeafs(server, n, ms = 10000) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    try {
      last = await monitorJson(server, "/leafz");
      if ((last.leafs || []).length >= n) return last;
    } catch (e) {
      last = String(e);
    }
    await sleep(100);
  }
  throw new Error(
    `${server.role} (${server.kind}) has not ${n} leaf connection(s) after ${ms} ms: /leafz=${JSON.stringify(last)?.slice(0, 500)}; ` +
      `its log:\n${server.log().slice(-1500)}`,
  );
}

/** Repeats `attempt()` (which throws until things work) every `every` ms, for at most `ms`. */
export async function eventually(what, attempt, { ms = 10000, every = 100 } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      return await attempt();
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) break;
    await sleep(every);
  }
  throw new Error(`${what}: still failing after ${ms} ms: ${last?.message ?? last}`);
}

let certs = null;
/** One throw-away CA and a 127.0.0.1 certificate per test process (made with openssl). */
export function topologyCerts() {
  if (!certs) certs = makeCerts(path.join(RUN_DIR, `leaf-certs-${process.pid}`));
  return certs;
}

/**
 * The edge topology: the reference hub (`leaf_hub` or `leaf_hub_js`), edge A of the server under
 * test joining it over TCP (nats://) and edge B joining over wss to the hub's WebSocket port. Both
 * edges have WebSocket ports for browsers. Resolves when the hub lists both leafs.
 * INTEROP_LEAF_EDGE_B=tcp joins edge B over TCP instead (for trying an edge that cannot dial
 * WebSocket remotes yet; never in CI).
 */
export async function edgeTopology({ hubScenario = "leaf_hub" } = {}) {
  const c = topologyCerts();
  const started = [];
  try {
    const hub = await startNode(REF_BIN, "hub", hubScenario, { CERT: c.cert, KEY: c.key });
    started.push(hub);
    const a = await startNode(SUT_BIN, "edge-a", "leaf_edge_tcp", { HUB_LEAF: hub.leaf });
    started.push(a);
    const bOverTcp = process.env.INTEROP_LEAF_EDGE_B === "tcp";
    const b = bOverTcp
      ? await startNode(SUT_BIN, "edge-b", "leaf_edge_tcp", { HUB_LEAF: hub.leaf })
      : await startNode(SUT_BIN, "edge-b", "leaf_edge_wss", { HUB_WS: hub.ws, CA: c.ca });
    started.push(b);
    await waitLeafs(hub, 2);
    // The hub port each edge's leaf connection goes to.
    const hubPortOf = { [a.role]: hub.leaf, [b.role]: bOverTcp ? hub.leaf : hub.ws };
    return { hub, a, b, hubPortOf, stop: () => stopAll(started) };
  } catch (e) {
    await stopAll(started);
    throw e;
  }
}

/**
 * The reference hub (`leaf_hub`) and one edge of the server under test whose leaf binds the
 * account that imports a service (`leaf_edge_import`). Resolves when the hub lists the leaf.
 */
export async function importTopology() {
  const c = topologyCerts();
  const started = [];
  try {
    const hub = await startNode(REF_BIN, "hub", "leaf_hub", { CERT: c.cert, KEY: c.key });
    started.push(hub);
    const edge = await startNode(SUT_BIN, "edge", "leaf_edge_import", { HUB_LEAF: hub.leaf });
    started.push(edge);
    await waitLeafs(hub, 1);
    return { hub, edge, stop: () => stopAll(started) };
  } catch (e) {
    await stopAll(started);
    throw e;
  }
}

/**
 * The server under test as the hub (`leaf_as_hub`), with three reference leafs: over TCP to the
 * leafnode port, over ws to the hub's WebSocket port, and over ws with compression and unmasked
 * frames (`leaf_edge_ws_nomask`). Resolves when each leaf lists its hub.
 */
export async function hubTopology() {
  const started = [];
  try {
    const hub = await startNode(SUT_BIN, "hub", "leaf_as_hub");
    started.push(hub);
    const tcp = await startNode(REF_BIN, "leaf-tcp", "leaf_edge_tcp", { HUB_LEAF: hub.leaf });
    started.push(tcp);
    const ws = await startNode(REF_BIN, "leaf-ws", "leaf_edge_ws", { HUB_WS: hub.ws });
    started.push(ws);
    const wsx = await startNode(REF_BIN, "leaf-wsx", "leaf_edge_ws_nomask", { HUB_WS: hub.ws });
    started.push(wsx);
    await waitLeafs(tcp, 1);
    await waitLeafs(ws, 1);
    await waitLeafs(wsx, 1);
    return { hub, tcp, ws, wsx, stop: () => stopAll(started) };
  } catch (e) {
    await stopAll(started);
    throw e;
  }
}

async function stopAll(servers) {
  await Promise.all(servers.map((s) => s.stop().catch(() => {})));
}

// ---- the browser -----------------------------------------------------------------------------

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

/**
 * Headless Chromium with one page served from its own origin (an HTTP server on another port
 * serving an empty page and the nats.ws ESM bundle). `run(fn, arg)` evaluates `fn(natsModule, arg)`
 * in the page, bounded.
 */
export async function openBrowser() {
  const srv = http.createServer((req, res) => {
    if (req.url === "/nats.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      fs.createReadStream(NATS_WS_BUNDLE).pipe(res);
    } else if (req.url === "/" || req.url === "/index.html") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>interop leaf</title><p>interop leaf</p>");
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${srv.address().port}`;
  const userDir = fs.mkdtempSync(path.join(RUN_DIR, "chromium-leaf-"));
  let context = null;
  const close = async () => {
    await within(10000, context?.close() ?? Promise.resolve(), "chromium close").catch(() => {});
    await new Promise((r) => srv.close(r));
    fs.rmSync(userDir, { recursive: true, force: true });
  };
  try {
    context = await within(
      30000,
      chromium.launchPersistentContext(userDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
      "chromium launch",
    );
    const page = await context.newPage();
    await page.goto(`${origin}/`, { timeout: 10000 });
    return {
      page,
      close,
      run: (fn, arg, ms = 20000) =>
        within(
          ms,
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
        ),
    };
  } catch (e) {
    await close();
    throw e;
  }
}
