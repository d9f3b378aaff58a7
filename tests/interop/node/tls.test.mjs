// wss: the WebSocket listener with a certificate from a CA generated for this run by openssl
// (kept in the run's temp dir, never in the repository).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { closeAll, tcpClient, wsClient } from "../lib/clients.mjs";
import { dec, enc, listen, makeCerts, monitor, orError, parseHttp, rawExchange, startServer, upgradeRequest, within } from "../lib/harness.mjs";

const T = { timeout: 20000 };

describe("wss (scenario tls)", () => {
  let server;
  let certs;
  let ca;
  let url;
  const conns = [];
  before(async () => {
    certs = makeCerts(path.join(process.env.INTEROP_RUN_DIR || "/tmp", `certs-node-${process.pid}`));
    ca = fs.readFileSync(certs.ca);
    server = await orError(startServer("tls", { CERT: certs.cert, KEY: certs.key }));
    url = `wss://127.0.0.1:${server.ws}`;
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
    fs.rmSync(certs.dir, { recursive: true, force: true });
  });

  it("nats.ws over wss, trusting the test CA, exchanges messages with a TCP client", T, async () => {
    const w = await wsClient(server, { name: "wss-client" }, { url, ws: { ca } });
    const t = await tcpClient(server);
    conns.push(w, t);
    const a = listen(t, "tls.up");
    const b = listen(w, "tls.down");
    await t.flush();
    await w.flush();
    w.publish("tls.up", enc.encode("up"));
    t.publish("tls.down", enc.encode("down"));
    await w.flush();
    await t.flush();
    assert.equal(dec.decode((await a.count(1))[0].data), "up");
    assert.equal(dec.decode((await b.count(1))[0].data), "down");
    const c = await monitor(server, "/connz");
    const mine = c.connections.find((x) => x.name === "wss-client");
    assert.ok(mine, "wss client in /connz");
    assert.equal(mine.type, "websocket");
  });

  it("compression is negotiated over wss too", T, async () => {
    const sockets = [];
    const w = await wsClient(server, {}, { url, ws: { ca, perMessageDeflate: true }, sink: sockets });
    conns.push(w);
    assert.match(sockets[0].extensions, /permessage-deflate/);
    const l = listen(w, "tls.z");
    await w.flush();
    const big = "compress me ".repeat(5000);
    w.publish("tls.z", enc.encode(big));
    await w.flush();
    assert.equal(dec.decode((await l.count(1))[0].data), big);
  });

  it("a client that does not trust the CA fails the TLS handshake", T, async () => {
    await assert.rejects(wsClient(server, {}, { url }));
  });

  it("the certificate served is the one signed by the test CA", T, async () => {
    const peer = await within(
      5000,
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: "127.0.0.1", port: server.ws, ca, servername: "localhost" }, () => {
          const cert = s.getPeerCertificate();
          s.destroy();
          resolve(cert);
        });
        s.on("error", reject);
      }),
      "tls connect",
    );
    assert.equal(peer.subject.CN, "127.0.0.1");
    assert.equal(peer.issuer.CN, "interop test CA");
  });

  it("a plain-HTTP upgrade on the TLS port gets 400", T, async () => {
    const r = await rawExchange(server.ws, upgradeRequest(server.ws));
    const res = parseHttp(r.data);
    assert.equal(res.status, 400, `response: ${JSON.stringify(r.data.toString("latin1").slice(0, 200))}`);
    assert.equal(r.why, "eof", "connection closed");
  });
});

describe("wss certificate rotation with SIGHUP (scenario tls)", () => {
  let server;
  let oldCerts;
  let newCerts;
  const conns = [];
  const base = path.join(process.env.INTEROP_RUN_DIR || "/tmp", `certs-rotate-${process.pid}`);
  before(async () => {
    oldCerts = makeCerts(path.join(base, "old"));
    newCerts = makeCerts(path.join(base, "new"));
    server = await orError(startServer("tls", { CERT: oldCerts.cert, KEY: oldCerts.key }));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
    fs.rmSync(base, { recursive: true, force: true });
  });

  it("after the config points at a new certificate and SIGHUP, new wss clients get it; old ones stay", { timeout: 30000 }, async () => {
    const url = `wss://127.0.0.1:${server.ws}`;
    const oldCa = fs.readFileSync(oldCerts.ca);
    const newCa = fs.readFileSync(newCerts.ca);
    const early = await wsClient(server, {}, { url, ws: { ca: oldCa } });
    conns.push(early);
    await assert.rejects(wsClient(server, {}, { url, ws: { ca: newCa } }), "new CA not trusted before the reload");
    const conf = fs.readFileSync(server.confPath, "utf8");
    fs.writeFileSync(server.confPath, conf.replaceAll(oldCerts.cert, newCerts.cert).replaceAll(oldCerts.key, newCerts.key));
    server.child.kill("SIGHUP");
    let late = null;
    const deadline = Date.now() + 10000;
    while (!late && Date.now() < deadline) {
      late = await wsClient(server, {}, { url, ws: { ca: newCa } }).catch(() => null);
      if (!late) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(late, "a client trusting only the new CA connects after the reload");
    conns.push(late);
    const l = listen(late, "rotated");
    await late.flush();
    early.publish("rotated", enc.encode("from before the reload"));
    await early.flush();
    assert.equal(dec.decode((await l.count(1))[0].data), "from before the reload");
  });
});

describe("wss with client certificates (scenario tls_verify)", () => {
  let server;
  let certs;
  const conns = [];
  before(async () => {
    certs = makeCerts(path.join(process.env.INTEROP_RUN_DIR || "/tmp", `certs-mtls-${process.pid}`));
    server = await orError(startServer("tls_verify", { CERT: certs.cert, KEY: certs.key, CA: certs.ca }));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
    fs.rmSync(certs.dir, { recursive: true, force: true });
  });

  it("a client with a certificate from the CA connects and exchanges messages", T, async () => {
    const url = `wss://127.0.0.1:${server.ws}`;
    const ws = { ca: fs.readFileSync(certs.ca), cert: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey) };
    const a = await wsClient(server, {}, { url, ws });
    const t = await tcpClient(server);
    conns.push(a, t);
    const l = listen(t, "mtls");
    await t.flush();
    a.publish("mtls", enc.encode("verified"));
    await a.flush();
    assert.equal(dec.decode((await l.count(1))[0].data), "verified");
  });

  it("a client without a certificate fails the TLS handshake", T, async () => {
    await assert.rejects(wsClient(server, {}, { url: `wss://127.0.0.1:${server.ws}`, ws: { ca: fs.readFileSync(certs.ca) } }));
  });
});
