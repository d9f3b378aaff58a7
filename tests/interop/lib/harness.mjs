// Shared helpers for the Node half of the interop suite: server start/stop from a scenario config,
// free ports, deadlines, client factories (nats.ws over the `ws` package, nats.js over TCP) and raw
// socket helpers. Every wait is bounded.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

export const INTEROP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SCENARIOS = path.join(INTEROP_DIR, "scenarios");

// nats.ws looks for a global WebSocket; in Node it is the `ws` package.
globalThis.WebSocket = WebSocket;

const SERVER_BIN = process.env.INTEROP_SERVER_BIN;
export const KIND = process.env.INTEROP_KIND || "nats-server";
const RUN_DIR = process.env.INTEROP_RUN_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "interop-"));

if (!SERVER_BIN) {
  throw new Error("INTEROP_SERVER_BIN is not set; use tests/interop/run --server-bin PATH --kind KIND");
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects with `what` if `promise` does not settle within `ms`. */
export function within(ms, promise, what = "operation") {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** A port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    s.setTimeout(500, () => done(false));
  });
}

const live = new Set();
function killAll() {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

let serial = 0;

/**
 * Starts the server under test from `scenarios/<name>.conf`. `{{NAME}}` placeholders are replaced:
 * PORT, WS, HTTP (fresh free ports), DIR (a private temp dir holding the config) and any key of
 * `vars`. Waits (bounded) until every allocated port accepts TCP connections.
 */
export async function startServer(name, vars = {}) {
  const template = fs.readFileSync(path.join(SCENARIOS, `${name}.conf`), "utf8");
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = path.join(RUN_DIR, `${name}-${process.pid}-${serial++}`);
    fs.mkdirSync(dir, { recursive: true });
    const ports = {};
    for (const key of ["PORT", "WS", "HTTP"]) {
      if (template.includes(`{{${key}}}`)) ports[key] = await freePort();
    }
    const all = { ...ports, DIR: dir, ...vars };
    const conf = template.replace(/\{\{([A-Z_0-9]+)\}\}/g, (m, k) => {
      if (!(k in all)) throw new Error(`scenario ${name}: no value for ${m}`);
      return String(all[k]);
    });
    const confPath = path.join(dir, `${name}.conf`);
    fs.writeFileSync(confPath, conf);
    const logPath = path.join(dir, "server.log");
    const log = fs.openSync(logPath, "w");
    const child = spawn(SERVER_BIN, ["-c", confPath], { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    live.add(child);
    if (process.env.INTEROP_PID_DIR) {
      fs.writeFileSync(path.join(process.env.INTEROP_PID_DIR, `${child.pid}`), "");
    }
    let exited = null;
    child.once("exit", (code, sig) => {
      exited = { code, sig };
      live.delete(child);
    });
    child.once("error", (e) => {
      exited = { code: null, sig: String(e) };
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
    const logText = () => {
      try {
        return fs.readFileSync(logPath, "utf8");
      } catch {
        return "";
      }
    };
    if (ready && !exited && ports.PORT) {
      // A server that listens but does not speak NATS fails here, fast, instead of in every case.
      const r = await rawExchange(ports.PORT, "", { ms: 5000, until: (b) => b.includes("\r\n") });
      if (!r.data.toString("latin1").startsWith("INFO ")) {
        child.kill("SIGKILL");
        throw new Error(
          `${KIND} (scenario ${name}) listens but sent no INFO line on its TCP port within 5 s ` +
            `(got ${JSON.stringify(r.data.toString("latin1").slice(0, 200))}, ${r.why}); log:\n${logText().slice(-2000)}`,
        );
      }
    }
    if (ready && !exited) {
      const server = {
        name,
        dir,
        confPath,
        ports,
        port: ports.PORT,
        ws: ports.WS,
        http: ports.HTTP,
        wsUrl: `ws://127.0.0.1:${ports.WS}`,
        tcpUrl: `nats://127.0.0.1:${ports.PORT}`,
        log: logText,
        child,
        async stop() {
          if (exited) return;
          const gone = new Promise((r) => child.once("exit", r));
          child.kill("SIGTERM");
          try {
            await within(3000, gone, "server exit after SIGTERM");
          } catch {
            child.kill("SIGKILL");
            await within(3000, gone, "server exit after SIGKILL").catch(() => {});
          }
        },
      };
      return server;
    }
    child.kill("SIGKILL");
    const text = logText();
    lastErr = new Error(
      `${KIND} did not start with scenario ${name} ` +
        `(${exited ? `exited code=${exited.code} signal=${exited.sig}` : "ports not listening after 10 s"}); log:\n${text.slice(-2000)}`,
    );
    // Retry only when a port was taken between allocation and bind.
    if (!/address already in use|in use/i.test(text)) break;
  }
  throw lastErr;
}

/** A `ws` socket factory for nats.ws that passes options (origin, ca, perMessageDeflate, headers). */
export function wsFactory(wsOpts = {}, sink) {
  return async (url) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000, ...wsOpts });
    if (sink) sink.push(socket);
    return { socket, encrypted: url.startsWith("wss://") };
  };
}

/**
 * Subscribes with a callback that buffers every message, so a test can wait for counts and check
 * for silence without fighting single-use iterators. Returns { sub, msgs, error, count, quiet }.
 */
export function listen(nc, subject, opts = {}) {
  const msgs = [];
  const waiters = new Set();
  const l = {
    msgs,
    error: null,
    sub: null,
    /** Waits (bounded) until at least `n` messages arrived; returns the first `n`. */
    async count(n, ms = 5000) {
      if (msgs.length < n) {
        await within(
          ms,
          new Promise((resolve) => {
            const check = () => {
              if (msgs.length >= n || l.error) {
                waiters.delete(check);
                resolve();
              }
            };
            waiters.add(check);
            check();
          }),
          `receiving ${n} messages on ${subject}`,
        ).catch((e) => {
          e.message += ` (got ${msgs.length})`;
          throw e;
        });
      }
      if (l.error) throw l.error;
      return msgs.slice(0, n);
    },
    /** Asserts that no message beyond the first `n` arrives during `ms`. */
    async quiet(n, ms = 300) {
      await sleep(ms);
      if (msgs.length > n) {
        throw new Error(`unexpected message on ${subject}: ${new TextDecoder().decode(msgs[n].data)} (have ${msgs.length}, expected ${n})`);
      }
    },
  };
  l.sub = nc.subscribe(subject, {
    ...opts,
    callback: (err, m) => {
      if (err) l.error = err;
      else msgs.push(m);
      for (const w of waiters) w();
    },
  });
  return l;
}

/** Raw HTTP exchange on a fresh TCP socket: writes `request`, reads until close or `ms`. */
export function rawExchange(port, request, { ms = 3000, until } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    const started = Date.now();
    const s = net.connect({ host: "127.0.0.1", port });
    let finished = false;
    const done = (why) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ data: Buffer.concat(chunks), why, elapsed: Date.now() - started });
    };
    const timer = setTimeout(() => done("timeout"), ms);
    s.on("connect", () => {
      if (request) s.write(request);
    });
    s.on("data", (d) => {
      chunks.push(d);
      if (until && until(Buffer.concat(chunks))) done("until");
    });
    s.on("end", () => done("eof"));
    s.on("error", (e) => done(`error:${e.code}`));
  });
}

/** Parses an HTTP response head; returns { statusLine, status, headers (lower-cased names), body }. */
export function parseHttp(buf) {
  const idx = buf.indexOf("\r\n\r\n");
  if (idx < 0) return { statusLine: buf.toString("latin1").split("\r\n")[0], status: 0, headers: {}, body: Buffer.alloc(0), complete: false };
  const head = buf.subarray(0, idx).toString("latin1").split("\r\n");
  const statusLine = head[0];
  const status = Number(statusLine.split(" ")[1]);
  const headers = {};
  const headerList = [];
  for (const line of head.slice(1)) {
    const c = line.indexOf(":");
    const k = line.slice(0, c).trim();
    const v = line.slice(c + 1).trim();
    headerList.push([k, v]);
    headers[k.toLowerCase()] = v;
  }
  return { statusLine, status, headers, headerList, body: buf.subarray(idx + 4), complete: true };
}

/** Builds a masked client WebSocket frame. */
export function frame(opcode, payload, { fin = true, rsv1 = false, mask = true } = {}) {
  payload = Buffer.from(payload);
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([0, len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (!mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

/** Parses unmasked server frames from `buf`; returns { frames, rest }. */
export function parseFrames(buf) {
  const frames = [];
  let off = 0;
  while (buf.length - off >= 2) {
    const b0 = buf[off];
    const b1 = buf[off + 1];
    let len = b1 & 0x7f;
    let p = off + 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked) p += 4;
    if (buf.length < p + len) break;
    frames.push({
      fin: (b0 & 0x80) !== 0,
      rsv1: (b0 & 0x40) !== 0,
      opcode: b0 & 0x0f,
      masked,
      payload: buf.subarray(p, p + len),
    });
    off = p + len;
  }
  return { frames, rest: buf.subarray(off) };
}

export const UPGRADE_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** A valid upgrade request for 127.0.0.1:`port`, with `extra` header lines and overrides. */
export function upgradeRequest(port, { method = "GET", path: p = "/", version = "HTTP/1.1", omit = [], extra = [] } = {}) {
  const base = [
    ["Host", `127.0.0.1:${port}`],
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Key", UPGRADE_KEY],
    ["Sec-WebSocket-Version", "13"],
  ].filter(([k]) => !omit.includes(k));
  const lines = [`${method} ${p} ${version}`, ...base.map(([k, v]) => `${k}: ${v}`), ...extra, "", ""];
  return lines.join("\r\n");
}

/**
 * A raw WebSocket client session: performs the upgrade, then exposes the decoded frames and a
 * buffered text view of all binary/text payloads (the NATS byte stream).
 */
export async function rawWs(port, { extra = [], ms = 3000 } = {}) {
  const s = net.connect({ host: "127.0.0.1", port });
  let buf = Buffer.alloc(0);
  let http = null;
  const frames = [];
  let stream = "";
  let closed = false;
  const waiters = new Set();
  const wake = () => {
    for (const w of waiters) w();
  };
  s.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    if (!http) {
      const i = buf.indexOf("\r\n\r\n");
      if (i < 0) return;
      http = parseHttp(buf.subarray(0, i + 4));
      buf = buf.subarray(i + 4);
    }
    const r = parseFrames(buf);
    buf = r.rest;
    for (const f of r.frames) {
      frames.push(f);
      if (f.opcode === 1 || f.opcode === 2 || f.opcode === 0) stream += f.payload.toString("latin1");
    }
    wake();
  });
  const onEnd = () => {
    closed = true;
    wake();
  };
  s.on("end", onEnd);
  s.on("close", onEnd);
  s.on("error", onEnd);
  const waitFor = (pred, what, t = ms) =>
    within(
      t,
      new Promise((resolve) => {
        const check = () => {
          if (pred()) {
            waiters.delete(check);
            resolve();
          } else if (closed) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
      }),
      what,
    ).then(() => {
      if (!pred()) throw new Error(`connection closed while waiting for ${what}; stream=${JSON.stringify(stream.slice(-300))}`);
    });
  await within(ms, new Promise((r, j) => {
    s.once("connect", r);
    s.once("error", j);
  }), "raw connect");
  s.write(upgradeRequest(port, { extra }));
  const session = {
    socket: s,
    get http() {
      return http;
    },
    frames,
    get stream() {
      return stream;
    },
    get closed() {
      return closed;
    },
    send(data, opts) {
      s.write(frame(2, data, opts));
    },
    waitFor,
    waitClosed: (t = ms) => waitFor(() => closed, "connection close", t),
    close() {
      s.destroy();
    },
  };
  await waitFor(() => http !== null, "101 response");
  return session;
}

/** The `ca.pem`, `server-cert.pem`, `server-key.pem` of a throw-away CA, made with openssl in `dir`. */
export function makeCerts(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const o = (args) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  o(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=interop test CA",
    "-keyout", "ca-key.pem", "-out", "ca.pem"]);
  o(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server-key.pem", "-out", "server.csr"]);
  fs.writeFileSync(path.join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n");
  o(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2",
    "-extfile", "ext.cnf", "-out", "server-cert.pem"]);
  o(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=interop client", "-keyout", "client-key.pem", "-out", "client.csr"]);
  fs.writeFileSync(path.join(dir, "client-ext.cnf"), "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
  o(["x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2",
    "-extfile", "client-ext.cnf", "-out", "client-cert.pem"]);
  return {
    dir,
    clientCert: path.join(dir, "client-cert.pem"),
    clientKey: path.join(dir, "client-key.pem"),
    ca: path.join(dir, "ca.pem"),
    cert: path.join(dir, "server-cert.pem"),
    key: path.join(dir, "server-key.pem"),
  };
}

/** Fetches JSON from the monitoring port. */
export async function monitor(server, endpoint) {
  const res = await within(3000, fetch(`http://127.0.0.1:${server.http}${endpoint}`), `GET ${endpoint}`);
  if (res.status !== 200) throw new Error(`GET ${endpoint}: status ${res.status}`);
  return res.json();
}

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/**
 * For `before` hooks: resolves to what `promise` resolves to, or, when it rejects, to a stand-in
 * that throws the original error as soon as a case uses it. node:test reports a failed hook only
 * as "cancelled" in JUnit; this way every case shows the real reason (e.g. the server's log).
 */
export function orError(promise) {
  const p = typeof promise === "function" ? Promise.resolve().then(promise) : promise;
  return p.catch((err) => {
    const noop = () => Promise.resolve();
    return new Proxy(
      {},
      {
        get(_, prop) {
          if (prop === "then") return undefined;
          if (prop === "stop" || prop === "close") return noop;
          if (prop === "isClosed") return () => true;
          throw err;
        },
      },
    );
  });
}
