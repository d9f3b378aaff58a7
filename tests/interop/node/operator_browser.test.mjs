// Operator mode in headless Debian Chromium: nats.ws with jwtAuthenticator in the page, and the
// browser login by `jwt_cookie` — a tiny HTTP server on the page's host sets an HttpOnly cookie
// holding a bearer user JWT (cookies are per host, not per port, so the WebSocket upgrade to the
// server's port carries it) and the page connects with no credentials at all. The keys and JWTs
// are made at test time; natsws and nats-server read the same scenario.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { closeAll, natsTcp, tcpClient } from "../lib/clients.mjs";
import { INTEROP_DIR, listen, orError, startServer, within } from "../lib/harness.mjs";

const T = { timeout: 30000 };
const NATS_WS_BUNDLE = path.join(INTEROP_DIR, "node_modules", "nats.ws", "esm", "nats.js");
const CHROMIUM = process.env.INTEROP_CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"];
const { nkeys } = natsTcp;
const enc = new TextEncoder();
const dec = new TextDecoder();
const now = () => Math.floor(Date.now() / 1000);
const b64url = (bytes) => Buffer.from(bytes).toString("base64url");

function jwt(signer, sub, kind, nats = {}) {
  const header = b64url(enc.encode(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })));
  const claims = { jti: `${kind}-${sub}`, iat: now() - 5, iss: signer.getPublicKey(), name: kind, sub, nats: { type: kind, version: 2, ...nats } };
  const body = b64url(enc.encode(JSON.stringify(claims)));
  return `${header}.${body}.${b64url(signer.sign(enc.encode(`${header}.${body}`)))}`;
}

const unlimited = { subs: -1, data: -1, payload: -1 };

describe("operator mode in the browser (scenario operator)", () => {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const userJwt = (user, nats = {}) => jwt(account, user.getPublicKey(), "user", { ...unlimited, ...nats });
  let server;
  let site;
  let context;
  let userDir;
  const conns = [];

  before(async () => {
    server = await orError(
      startServer("operator", {
        OPERATOR: jwt(operator, operator.getPublicKey(), "operator"),
        ACCOUNT: account.getPublicKey(),
        ACCOUNT_JWT: jwt(operator, account.getPublicKey(), "account", {
          limits: { ...unlimited, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 },
        }),
      }),
    );
    const pageUser = nkeys.createUser();
    const bearer = userJwt(pageUser, { bearer_token: true });
    const srv = http.createServer((req, res) => {
      if (req.url === "/nats.js") {
        res.writeHead(200, { "content-type": "text/javascript" });
        fs.createReadStream(NATS_WS_BUNDLE).pipe(res);
      } else if (req.url === "/login") {
        // What an app's login endpoint does after checking the user.
        res.writeHead(200, {
          "content-type": "text/html",
          "set-cookie": `natsjwt=${bearer}; HttpOnly; SameSite=Lax; Path=/`,
        });
        res.end("<!doctype html><title>logged in</title>");
      } else {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<!doctype html><title>operator</title>");
      }
    });
    await new Promise((r) => srv.listen(0, "127.0.0.1", r));
    site = { origin: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) };
    userDir = fs.mkdtempSync(path.join(process.env.INTEROP_RUN_DIR || "/tmp", "chromium-operator-"));
    context = await orError(
      within(30000, chromium.launchPersistentContext(userDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }), "chromium launch"),
    );
  });

  after(async () => {
    await closeAll(conns);
    await within(10000, context?.close() ?? Promise.resolve(), "chromium close").catch(() => {});
    await site?.close();
    await server?.stop();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  /** Connects nats.ws in a page at `pagePath`, publishes `subject`, reports the outcome. */
  async function pageConnect(pagePath, subject, creds) {
    const page = await context.newPage();
    try {
      await page.goto(`${site.origin}${pagePath}`, { timeout: 10000 });
      return await within(
        20000,
        page.evaluate(
          async ([url, subj, c]) => {
            const mod = await import("/nats.js");
            const opts = { servers: url, reconnect: false, timeout: 5000 };
            if (c) opts.authenticator = mod.jwtAuthenticator(c.jwt, new TextEncoder().encode(c.seed));
            try {
              const nc = await mod.connect(opts);
              nc.publish(subj, new TextEncoder().encode("from the page"));
              await nc.flush();
              await nc.close();
              return { ok: true };
            } catch (e) {
              return { ok: false, code: e.code, message: String(e.message) };
            }
          },
          [server.wsUrl, subject, creds],
        ),
        "page.evaluate",
      );
    } finally {
      await page.close();
    }
  }

  async function watcher() {
    const w = nkeys.createUser();
    const nc = await tcpClient(server, { authenticator: natsTcp.jwtAuthenticator(userJwt(w), w.getSeed()) });
    conns.push(nc);
    return nc;
  }

  it("a page with jwtAuthenticator connects and publishes", T, async () => {
    const nc = await watcher();
    const l = listen(nc, "page.jwt");
    await nc.flush();
    const u = nkeys.createUser();
    const r = await pageConnect("/", "page.jwt", { jwt: userJwt(u), seed: dec.decode(u.getSeed()) });
    assert.deepEqual(r, { ok: true });
    await l.count(1);
  });

  it("before the login cookie the page is refused; after it, it connects with no credentials", T, async () => {
    const before = await pageConnect("/", "page.cookie");
    assert.equal(before.ok, false);
    assert.equal(before.code, "AUTHORIZATION_VIOLATION", before.message);
    const nc = await watcher();
    const l = listen(nc, "page.cookie");
    await nc.flush();
    const after = await pageConnect("/login", "page.cookie");
    assert.deepEqual(after, { ok: true });
    await l.count(1);
    assert.equal(dec.decode(l.msgs[0].data), "from the page");
  });
});
