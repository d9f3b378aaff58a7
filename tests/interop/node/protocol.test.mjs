// NATS protocol details over a raw WebSocket that clients depend on: the INFO a ws client gets,
// limits (max_control_line, max_connections), the NATS-level keep-alive, and Nats-No-Masking.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { closeAll, tcpClient, wsClient } from "../lib/clients.mjs";
import { frame, listen, orError, rawWs, sleep, startServer } from "../lib/harness.mjs";

const T = { timeout: 20000 };
const CONNECT = 'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n';

function infoOf(raw) {
  const s = raw.stream;
  assert.ok(s.startsWith("INFO "), `stream starts with INFO: ${JSON.stringify(s.slice(0, 80))}`);
  const line = s.slice(0, s.indexOf("\r\n"));
  assert.ok(line.endsWith(" "), "INFO line ends with a space before CRLF");
  return JSON.parse(line.slice(5));
}

describe("protocol over ws (scenario basic)", () => {
  let server;
  before(async () => {
    server = await orError(startServer("basic"));
  });
  after(async () => {
    await server?.stop();
  });

  it("INFO for a ws client carries the fields clients read, and no ws_connect_urls", T, async () => {
    const raw = await rawWs(server.ws);
    try {
      await raw.waitFor(() => raw.stream.includes("\r\n"), "INFO line");
      const info = infoOf(raw);
      for (const k of ["server_id", "server_name", "version", "proto", "host", "port", "headers", "max_payload", "client_id", "client_ip"]) {
        assert.ok(k in info, `INFO has ${k}: ${JSON.stringify(info)}`);
      }
      assert.equal(info.proto, 1);
      assert.equal(info.headers, true);
      assert.equal(info.max_payload, 1048576);
      assert.equal(info.client_ip, "127.0.0.1");
      assert.equal(typeof info.client_id, "number");
      for (const k of ["ws_connect_urls", "auth_required", "tls_required", "connect_urls", "nonce"]) {
        assert.ok(!(k in info), `INFO has no ${k}: ${JSON.stringify(info)}`);
      }
    } finally {
      raw.close();
    }
  });

  it("client ids differ between connections", T, async () => {
    const a = await rawWs(server.ws);
    const b = await rawWs(server.ws);
    try {
      await a.waitFor(() => a.stream.includes("\r\n"), "INFO a");
      await b.waitFor(() => b.stream.includes("\r\n"), "INFO b");
      assert.notEqual(infoOf(a).client_id, infoOf(b).client_id);
    } finally {
      a.close();
      b.close();
    }
  });

  it("a control line over max_control_line (4096) gets -ERR 'Maximum Control Line Exceeded' and close 1008", T, async () => {
    const raw = await rawWs(server.ws);
    try {
      await raw.waitFor(() => raw.stream.includes("\r\n"), "INFO");
      raw.send(CONNECT + `SUB ${"a".repeat(5000)} 1\r\n`);
      await raw.waitClosed(5000);
      assert.match(raw.stream, /-ERR 'Maximum Control Line Exceeded'\r\n/i);
      const close = raw.frames.find((f) => f.opcode === 8);
      assert.ok(close, "close frame");
      assert.equal(close.payload.readUInt16BE(0), 1008);
      assert.equal(close.payload.subarray(2).toString(), "Maximum Control Line Exceeded");
    } finally {
      raw.close();
    }
  });

  it("Nats-No-Masking: true is echoed and unmasked client frames are then accepted", T, async () => {
    const raw = await rawWs(server.ws, { extra: ["Nats-No-Masking: true"] });
    try {
      assert.equal(raw.http.status, 101);
      assert.equal(raw.http.headers["nats-no-masking"], "true");
      await raw.waitFor(() => raw.stream.includes("\r\n"), "INFO");
      raw.socket.write(frame(2, CONNECT + "PING\r\n", { mask: false }));
      await raw.waitFor(() => raw.stream.includes("PONG\r\n"), "PONG");
    } finally {
      raw.close();
    }
  });

  it("Nats-No-Masking with another value is not agreed", T, async () => {
    const raw = await rawWs(server.ws, { extra: ["Nats-No-Masking: TRUE"] });
    try {
      assert.equal(raw.http.status, 101);
      assert.equal(raw.http.headers["nats-no-masking"], undefined);
      await raw.waitFor(() => raw.stream.includes("\r\n"), "INFO");
      raw.send(CONNECT + "PING\r\n");
      await raw.waitFor(() => raw.stream.includes("PONG\r\n"), "PONG");
    } finally {
      raw.close();
    }
  });

  it("verbose and pedantic over ws: +OK after each operation, invalid subjects get -ERR and the connection stays", T, async () => {
    const raw = await rawWs(server.ws);
    try {
      await raw.waitFor(() => raw.stream.includes("\r\n"), "INFO");
      const mark = raw.stream.indexOf("\r\n") + 2;
      raw.send('CONNECT {"verbose":true,"pedantic":true,"protocol":1}\r\nSUB a.b 1\r\nPUB a.b 2\r\nhi\r\n' +
        "PUB a.* 2\r\nhi\r\nSUB a..b 2\r\nUNSUB 99\r\nPING\r\n");
      await raw.waitFor(() => raw.stream.includes("PONG\r\n"), "PONG");
      assert.equal(
        raw.stream.slice(mark),
        "+OK\r\n+OK\r\n+OK\r\nMSG a.b 1 2\r\nhi\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\n" +
          "-ERR 'Invalid Subject'\r\n+OK\r\nPONG\r\n",
      );
      assert.equal(raw.closed, false);
    } finally {
      raw.close();
    }
  });

  it("HPUB from a raw ws client reaches a TCP subscriber as HMSG with the same header block", T, async () => {
    const t = await tcpClient(server);
    const l = listen(t, "raw.hdr");
    await t.flush();
    const raw = await rawWs(server.ws);
    try {
      await raw.waitFor(() => raw.stream.includes("\r\n"), "INFO");
      const hdr = "NATS/1.0\r\nX-A: 1\r\nX-B: two\r\n\r\n";
      const body = "payload";
      raw.send(CONNECT.replace('"protocol":1', '"protocol":1,"headers":true') +
        `HPUB raw.hdr ${hdr.length} ${hdr.length + body.length}\r\n${hdr}${body}\r\nPING\r\n`);
      await raw.waitFor(() => raw.stream.includes("PONG"), "PONG");
      const [m] = await l.count(1);
      assert.equal(m.headers.get("X-A"), "1");
      assert.equal(m.headers.get("X-B"), "two");
      assert.equal(new TextDecoder().decode(m.data), body);
    } finally {
      raw.close();
      await closeAll([t]);
    }
  });
});

describe("keep-alive (scenario ping: ping_interval 1s, ping_max 1)", () => {
  let server;
  before(async () => {
    server = await orError(startServer("ping"));
  });
  after(async () => {
    await server?.stop();
  });

  it("the server PINGs a ws client in a binary frame and drops it as stale when it never answers", T, async () => {
    const raw = await rawWs(server.ws);
    try {
      await raw.waitFor(() => raw.stream.includes("\r\n"), "INFO");
      raw.send(CONNECT);
      await raw.waitFor(() => raw.stream.includes("PING\r\n"), "server PING", 5000);
      const ping = raw.frames.find((f) => f.payload.toString().includes("PING\r\n"));
      assert.equal(ping.opcode, 2, "PING travels in a binary frame");
      await raw.waitClosed(8000);
      assert.match(raw.stream, /-ERR 'Stale Connection'\r\n/);
      assert.ok(raw.frames.some((f) => f.opcode === 8), "a close frame before EOF");
    } finally {
      raw.close();
    }
  });

  it("nats.ws answers the server's PINGs and stays connected past several intervals", T, async () => {
    const nc = await wsClient(server);
    try {
      await sleep(3500);
      await nc.flush();
      assert.equal(nc.isClosed(), false);
    } finally {
      await closeAll([nc]);
    }
  });
});

describe("max_connections (scenario max_conn: 2)", () => {
  let server;
  before(async () => {
    server = await orError(startServer("max_conn"));
  });
  after(async () => {
    await server?.stop();
  });

  it("the third client (ws) gets INFO, -ERR 'maximum connections exceeded' and close 1008", T, async () => {
    const a = await tcpClient(server);
    const b = await wsClient(server);
    try {
      const raw = await rawWs(server.ws);
      try {
        await raw.waitClosed(5000);
        assert.match(raw.stream, /^INFO /);
        assert.match(raw.stream, /-ERR 'maximum connections exceeded'\r\n/);
        const close = raw.frames.find((f) => f.opcode === 8);
        assert.ok(close, "close frame");
        assert.equal(close.payload.readUInt16BE(0), 1008);
        assert.equal(close.payload.subarray(2).toString(), "Maximum Connections Exceeded");
      } finally {
        raw.close();
      }
      await assert.rejects(wsClient(server));
      await a.flush();
      await b.flush();
    } finally {
      await closeAll([a, b]);
    }
  });
});
