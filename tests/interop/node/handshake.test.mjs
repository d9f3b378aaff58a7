// The HTTP upgrade seen from raw sockets: the 101 response, every rejection's status and body,
// header variants that real clients send, keep-alive after a rejection, handshake_timeout, and
// the Origin checks (same_origin, allowed_origins) as sent by non-browser clients.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { after, before, describe, it } from "node:test";
import { closeAll, wsClient } from "../lib/clients.mjs";
import { freePort, parseFrames, parseHttp, rawExchange, startServer, upgradeRequest, orError } from "../lib/harness.mjs";

const T = { timeout: 20000 };
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/** True once `buf` holds one whole HTTP response (head + Content-Length body, or a 101 head). */
function responseDone(buf) {
  const r = parseHttp(buf);
  if (!r.complete) return false;
  if (r.status === 101) return true;
  const len = Number(r.headers["content-length"] ?? NaN);
  return Number.isFinite(len) ? r.body.length >= len : false;
}

async function exchange(port, request, ms = 3000) {
  const r = await rawExchange(port, request, { ms, until: responseDone });
  return { ...parseHttp(r.data), raw: r.data, why: r.why };
}

function assertRejected(res, status, body) {
  assert.equal(res.status, status, `status line: ${JSON.stringify(res.statusLine)} (raw ${JSON.stringify(res.raw.toString("latin1").slice(0, 200))})`);
  assert.equal(res.body.toString("latin1"), body, "response body");
}

describe("handshake (scenario basic)", () => {
  let server;
  before(async () => {
    server = await orError(startServer("basic"));
  });
  after(async () => {
    await server?.stop();
  });

  it("101 response: status line, Upgrade, Connection, Sec-WebSocket-Accept; INFO in the first binary frame", T, async () => {
    const req = upgradeRequest(server.ws, { extra: ["Sec-WebSocket-Protocol: nats", "User-Agent: interop"] });
    const r = await rawExchange(server.ws, req, {
      until: (b) => {
        const i = b.indexOf("\r\n\r\n");
        return i >= 0 && parseFrames(b.subarray(i + 4)).frames.length > 0;
      },
    });
    const res = parseHttp(r.data);
    assert.equal(res.statusLine, "HTTP/1.1 101 Switching Protocols");
    assert.equal(res.headers["upgrade"]?.toLowerCase(), "websocket");
    assert.equal(res.headers["connection"]?.toLowerCase(), "upgrade");
    assert.equal(res.headers["sec-websocket-accept"], ACCEPT);
    assert.equal(res.headers["sec-websocket-extensions"], undefined, "no compression without the option");
    assert.deepEqual(
      res.headerList.map(([k]) => k.toLowerCase()),
      ["upgrade", "connection", "sec-websocket-accept"],
      "exactly these headers (no Date, Server, or echoed Sec-WebSocket-Protocol)",
    );
    const { frames } = parseFrames(res.body);
    assert.ok(frames.length >= 1, "a frame follows the 101");
    assert.equal(frames[0].opcode, 2, "binary frame");
    assert.equal(frames[0].fin, true);
    assert.equal(frames[0].masked, false, "server frames are not masked");
    assert.match(frames[0].payload.toString(), /^INFO \{.*\} \r\n$/);
  });

  it("Sec-WebSocket-Accept is computed over any key text", T, async () => {
    const key = crypto.randomBytes(16).toString("base64");
    const want = crypto.createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    const req = upgradeRequest(server.ws, { omit: ["Sec-WebSocket-Key"], extra: [`Sec-WebSocket-Key: ${key}`] });
    const res = await exchange(server.ws, req);
    assert.equal(res.status, 101);
    assert.equal(res.headers["sec-websocket-accept"], want);
  });

  const accepted = [
    ["Upgrade: WebSocket (mixed case)", { omit: ["Upgrade"], extra: ["Upgrade: WebSocket"] }],
    ["Connection: keep-alive, Upgrade (Firefox)", { omit: ["Connection"], extra: ["Connection: keep-alive, Upgrade"] }],
    ["Sec-WebSocket-Version: 8, 13", { omit: ["Sec-WebSocket-Version"], extra: ["Sec-WebSocket-Version: 8, 13"] }],
    ["lower-case header names", { omit: ["Upgrade", "Connection"], extra: ["upgrade: websocket", "connection: upgrade"] }],
    ["a path and query", { path: "/some/path?x=1" }],
    ["HTTP/1.0 with Host", { version: "HTTP/1.0" }],
  ];
  for (const [what, opts] of accepted) {
    it(`upgrade accepted with ${what}`, T, async () => {
      const res = await exchange(server.ws, upgradeRequest(server.ws, opts));
      assert.equal(res.status, 101, JSON.stringify(res.statusLine));
      assert.equal(res.headers["sec-websocket-accept"], ACCEPT);
    });
  }

  const rejected = [
    ["POST", { method: "POST" }, 405, "Method Not Allowed\n"],
    ["lower-case method get", { method: "get" }, 405, "Method Not Allowed\n"],
    ["no Upgrade header", { omit: ["Upgrade"] }, 400, "Bad Request\n"],
    ["Upgrade: h2c", { omit: ["Upgrade"], extra: ["Upgrade: h2c"] }, 400, "Bad Request\n"],
    ["no Connection header", { omit: ["Connection"] }, 400, "Bad Request\n"],
    ["Connection: keep-alive only", { omit: ["Connection"], extra: ["Connection: keep-alive"] }, 400, "Bad Request\n"],
    ["no Sec-WebSocket-Key", { omit: ["Sec-WebSocket-Key"] }, 400, "Bad Request\n"],
    ["empty Sec-WebSocket-Key", { omit: ["Sec-WebSocket-Key"], extra: ["Sec-WebSocket-Key:"] }, 400, "Bad Request\n"],
    ["no Sec-WebSocket-Version", { omit: ["Sec-WebSocket-Version"] }, 400, "Bad Request\n"],
    ["Sec-WebSocket-Version: 12", { omit: ["Sec-WebSocket-Version"], extra: ["Sec-WebSocket-Version: 12"] }, 400, "Bad Request\n"],
    ["HTTP/1.0 without Host", { version: "HTTP/1.0", omit: ["Host"] }, 400, "Bad Request\n"],
  ];
  for (const [what, opts, status, body] of rejected) {
    it(`rejected: ${what} -> ${status}`, T, async () => {
      const res = await exchange(server.ws, upgradeRequest(server.ws, opts));
      assertRejected(res, status, body);
      assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
      assert.equal(res.headers["sec-websocket-version"], "13");
      assert.equal(res.headers["x-content-type-options"], "nosniff");
      assert.equal(Number(res.headers["content-length"]), body.length);
    });
  }

  it("rejected: HTTP/1.1 without Host -> 400 (missing required Host header)", T, async () => {
    const r = await rawExchange(server.ws, upgradeRequest(server.ws, { omit: ["Host"] }));
    const res = parseHttp(r.data);
    assert.equal(res.status, 400, JSON.stringify(res.statusLine));
    assert.equal(res.body.toString(), "400 Bad Request: missing required Host header");
    assert.equal(r.why, "eof", "connection closed after the response");
  });

  it("rejected: HTTP/2.0 request line -> 505", T, async () => {
    const r = await rawExchange(server.ws, upgradeRequest(server.ws, { version: "HTTP/2.0" }));
    const res = parseHttp(r.data);
    assert.equal(res.status, 505, JSON.stringify(res.statusLine));
    assert.equal(r.why, "eof");
  });

  it("rejected: garbage request line -> 400 and close", T, async () => {
    const r = await rawExchange(server.ws, "\x16\x03\x01 hello there\r\n\r\n");
    const res = parseHttp(r.data);
    assert.equal(res.status, 400, JSON.stringify(res.statusLine));
    assert.equal(r.why, "eof");
  });

  it("HTTP/1.1 keep-alive: a corrected upgrade on the same connection after a 400 gets 101", T, async () => {
    const bad = upgradeRequest(server.ws, { omit: ["Connection"] });
    const good = upgradeRequest(server.ws);
    const r = await rawExchange(server.ws, bad + good, {
      until: (b) => b.includes("101 Switching Protocols"),
    });
    const text = r.data.toString("latin1");
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(text, /\r\n\r\nBad Request\nHTTP\/1\.1 101 Switching Protocols\r\n/);
  });
});

describe("handshake_timeout (scenario handshake_timeout, 1s)", () => {
  let server;
  before(async () => {
    server = await orError(startServer("handshake_timeout"));
  });
  after(async () => {
    await server?.stop();
  });

  it("an idle connection is closed after about 1 s without a response", T, async () => {
    const r = await rawExchange(server.ws, "", { ms: 6000 });
    assert.notEqual(r.why, "timeout", "server closed the connection");
    assert.equal(r.data.length, 0, `no bytes: ${JSON.stringify(r.data.toString("latin1"))}`);
    assert.ok(r.elapsed >= 800 && r.elapsed < 3500, `closed after ${r.elapsed} ms`);
  });

  it("a partial request is closed after about 1 s without a response", T, async () => {
    const r = await rawExchange(server.ws, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", { ms: 6000 });
    assert.notEqual(r.why, "timeout", "server closed the connection");
    assert.equal(r.data.length, 0);
    assert.ok(r.elapsed >= 800 && r.elapsed < 3500, `closed after ${r.elapsed} ms`);
  });

  it("an upgraded client outlives the handshake timeout", T, async () => {
    const nc = await wsClient(server);
    try {
      await new Promise((r) => setTimeout(r, 1600));
      await nc.flush();
      assert.equal(nc.isClosed(), false);
    } finally {
      await closeAll([nc]);
    }
  });
});

describe("origin checks without a browser", () => {
  describe("same_origin: true", () => {
    let server;
    before(async () => {
      server = await orError(startServer("same_origin"));
    });
    after(async () => {
      await server?.stop();
    });

    it("Origin equal to the listener's host:port is accepted (nats.ws)", T, async () => {
      const nc = await wsClient(server, {}, { ws: { origin: `http://127.0.0.1:${server.ws}` } });
      await nc.flush();
      await closeAll([nc]);
    });

    it("no Origin header is accepted", T, async () => {
      const res = await exchange(server.ws, upgradeRequest(server.ws));
      assert.equal(res.status, 101);
    });

    for (const [what, origin] of [
      ["another port", async (s) => `http://127.0.0.1:${await freePort()}`],
      ["another host", async (s) => `http://localhost:${s.ws}`],
      ["Origin: null", async () => "null"],
    ]) {
      it(`${what} is rejected with 403`, T, async () => {
        const o = await origin(server);
        const res = await exchange(server.ws, upgradeRequest(server.ws, { extra: [`Origin: ${o}`] }));
        assertRejected(res, 403, "Forbidden\n");
      });
    }

    it("nats.ws with a foreign Origin fails to connect", T, async () => {
      await assert.rejects(wsClient(server, {}, { ws: { origin: "http://evil.example:80" } }));
    });
  });

  describe("allowed_origins", () => {
    let server;
    let allowed;
    before(async () => {
      allowed = `http://127.0.0.1:${await freePort()}`;
      server = await orError(startServer("allowed_origins", { ALLOWED: allowed }));
    });
    after(async () => {
      await server?.stop();
    });

    for (const [what, o] of [
      ["the listed origin", () => allowed],
      ["the listed origin with a path", () => `${allowed}/app/index.html`],
      ["https://example.com", () => "https://example.com"],
      ["https://example.com:443 (default port)", () => "https://example.com:443"],
    ]) {
      it(`accepted: ${what}`, T, async () => {
        const res = await exchange(server.ws, upgradeRequest(server.ws, { extra: [`Origin: ${o()}`] }));
        assert.equal(res.status, 101, JSON.stringify(res.statusLine));
      });
    }

    it("accepted: no Origin header", T, async () => {
      const res = await exchange(server.ws, upgradeRequest(server.ws));
      assert.equal(res.status, 101);
    });

    for (const [what, o] of [
      ["a scheme not listed (http://example.com)", () => "http://example.com"],
      ["a port not listed", () => `http://127.0.0.1:1`],
      ["a host not listed", () => "http://other.example"],
      ["Origin: null", () => "null"],
    ]) {
      it(`rejected with 403: ${what}`, T, async () => {
        const res = await exchange(server.ws, upgradeRequest(server.ws, { extra: [`Origin: ${o()}`] }));
        assertRejected(res, 403, "Forbidden\n");
      });
    }

    it("nats.ws connects with the listed origin and publishes", T, async () => {
      const nc = await wsClient(server, {}, { ws: { origin: allowed } });
      await nc.flush();
      await closeAll([nc]);
    });
  });
});

