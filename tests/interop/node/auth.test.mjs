// Authentication for WebSocket clients next to TCP clients: the websocket block's own user/password
// and token (which override the global ones for ws), allowed_connection_types, and no_auth_user.
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { closeAll, tcpClient, wsClient } from "../lib/clients.mjs";
import { dec, enc, listen, orError, rawWs, sleep, startServer, within } from "../lib/harness.mjs";

const T = { timeout: 20000 };

const rejectsAuth = (p) =>
  assert.rejects(p, (e) => {
    assert.equal(e.code, "AUTHORIZATION_VIOLATION", `error: ${e.code} ${e.message}`);
    return true;
  });

async function accepted(p, conns) {
  const nc = await p;
  conns.push(nc);
  await nc.flush();
  return nc;
}

/** Raw ws CONNECT with `connect` fields; returns the NATS text and close frames seen. */
async function rawConnect(server, connect) {
  const raw = await rawWs(server.ws);
  try {
    await raw.waitFor(() => raw.stream.includes("INFO "), "INFO");
    const info = JSON.parse(raw.stream.slice(5, raw.stream.indexOf("\r\n")));
    raw.send(`CONNECT ${JSON.stringify({ verbose: false, protocol: 1, ...connect })}\r\nPING\r\n`);
    await raw.waitFor(() => /PONG|-ERR/.test(raw.stream), "PONG or -ERR");
    if (raw.stream.includes("-ERR")) await raw.waitClosed();
    return { info, stream: raw.stream, close: raw.frames.find((f) => f.opcode === 8) };
  } finally {
    raw.close();
  }
}

describe("websocket user/password override (scenario auth_userpass)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("auth_userpass"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("ws client with the websocket user connects; INFO says auth_required", T, async () => {
    const nc = await accepted(wsClient(server, { user: "wsuser", pass: "wspass" }), conns);
    assert.equal(nc.info.auth_required, true);
  });

  it("ws client with the global (TCP) user is rejected", T, async () => {
    await rejectsAuth(wsClient(server, { user: "tcpuser", pass: "tcppass" }));
  });

  it("ws client with a wrong password or no credentials is rejected", T, async () => {
    await rejectsAuth(wsClient(server, { user: "wsuser", pass: "nope" }));
    await rejectsAuth(wsClient(server));
  });

  it("tcp client uses the global user; the websocket user is refused on TCP", T, async () => {
    await accepted(tcpClient(server, { user: "tcpuser", pass: "tcppass" }), conns);
    await rejectsAuth(tcpClient(server, { user: "wsuser", pass: "wspass" }));
  });

  it("raw ws: a bad password gets -ERR 'Authorization Violation' then close 1008 'Authentication Failure'", T, async () => {
    const r = await rawConnect(server, { user: "wsuser", pass: "bad" });
    assert.equal(r.info.auth_required, true);
    assert.match(r.stream, /-ERR 'Authorization Violation'\r\n/);
    assert.ok(r.close, "close frame");
    assert.equal(r.close.payload.readUInt16BE(0), 1008);
    assert.equal(r.close.payload.subarray(2).toString(), "Authentication Failure");
  });

  it("raw ws: no CONNECT within the websocket authorization timeout (1 s) gets -ERR 'Authentication Timeout' and close 1008", T, async () => {
    const raw = await rawWs(server.ws);
    try {
      const started = Date.now();
      await raw.waitClosed(5000);
      const elapsed = Date.now() - started;
      assert.match(raw.stream, /-ERR 'Authentication Timeout'\r\n/);
      const close = raw.frames.find((f) => f.opcode === 8);
      assert.ok(close, "close frame");
      assert.equal(close.payload.readUInt16BE(0), 1008);
      assert.equal(close.payload.subarray(2).toString(), "Authentication Timeout");
      assert.ok(elapsed >= 700 && elapsed < 3000, `closed after ${elapsed} ms`);
    } finally {
      raw.close();
    }
  });

  it("messages flow between an authenticated ws client and an authenticated tcp client", T, async () => {
    const w = await accepted(wsClient(server, { user: "wsuser", pass: "wspass" }), conns);
    const t = await accepted(tcpClient(server, { user: "tcpuser", pass: "tcppass" }), conns);
    const l = listen(t, "auth.flow");
    await t.flush();
    w.publish("auth.flow", enc.encode("authenticated"));
    await w.flush();
    assert.equal(dec.decode((await l.count(1))[0].data), "authenticated");
  });
});

describe("websocket token override (scenario auth_token)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("auth_token"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("ws client with the websocket token connects", T, async () => {
    const nc = await accepted(wsClient(server, { token: "ws-s3cret" }), conns);
    assert.equal(nc.info.auth_required, true);
  });

  it("ws client with the global token, a wrong token or none is rejected", T, async () => {
    await rejectsAuth(wsClient(server, { token: "tcp-s3cret" }));
    await rejectsAuth(wsClient(server, { token: "wrong" }));
    await rejectsAuth(wsClient(server));
  });

  it("tcp client uses the global token; the websocket token is refused on TCP", T, async () => {
    await accepted(tcpClient(server, { token: "tcp-s3cret" }), conns);
    await rejectsAuth(tcpClient(server, { token: "ws-s3cret" }));
  });
});

describe("allowed_connection_types (scenario auth_conn_types)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("auth_conn_types"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("a WEBSOCKET-only user connects over ws and is refused over tcp", T, async () => {
    await accepted(wsClient(server, { user: "wsonly", pass: "pw" }), conns);
    await rejectsAuth(tcpClient(server, { user: "wsonly", pass: "pw" }));
  });

  it("a STANDARD-only user connects over tcp and is refused over ws", T, async () => {
    await accepted(tcpClient(server, { user: "tcponly", pass: "pw" }), conns);
    await rejectsAuth(wsClient(server, { user: "tcponly", pass: "pw" }));
  });

  it("a user without a list connects over both", T, async () => {
    await accepted(wsClient(server, { user: "both", pass: "pw" }), conns);
    await accepted(tcpClient(server, { user: "both", pass: "pw" }), conns);
  });
});

describe("websocket no_auth_user (scenario no_auth_user)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("no_auth_user"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("a ws client without credentials connects as the no_auth_user and can use its subjects", T, async () => {
    const admin = await accepted(tcpClient(server, { user: "admin", pass: "adminpw" }), conns);
    const l = listen(admin, "guest.hello");
    await admin.flush();
    const guest = await accepted(wsClient(server), conns);
    guest.publish("guest.hello", enc.encode("hi"));
    await guest.flush();
    assert.equal(dec.decode((await l.count(1))[0].data), "hi");
  });

  it("the anonymous ws client has the no_auth_user's permissions", T, async () => {
    const admin = await accepted(tcpClient(server, { user: "admin", pass: "adminpw" }), conns);
    const adminSees = listen(admin, "admin.secret");
    await admin.flush();
    const guest = await accepted(wsClient(server), conns);
    const denied = listen(guest, "admin.secret");
    guest.publish("admin.secret", enc.encode("should be dropped"));
    await guest.flush();
    await sleep(200);
    assert.ok(denied.error, "subscription to a forbidden subject reports an error");
    assert.match(String(denied.error.message), /Permissions Violation for Subscription to "admin.secret"/);
    await adminSees.quiet(0, 200);
    // A permissions violation is reported, not fatal: the connection keeps working.
    assert.equal(guest.isClosed(), false);
    const ok = listen(admin, "guest.after");
    await admin.flush();
    guest.publish("guest.after", enc.encode("still connected"));
    await guest.flush();
    assert.equal(dec.decode((await ok.count(1))[0].data), "still connected");
  });

  it("raw ws: a forbidden PUB gets -ERR 'Permissions Violation for Publish to \"admin.secret\"' and the connection stays", T, async () => {
    const raw = await rawWs(server.ws);
    try {
      await raw.waitFor(() => raw.stream.includes("\r\n"), "INFO");
      raw.send('CONNECT {"verbose":false,"protocol":1}\r\nPUB admin.secret 1\r\nx\r\nPING\r\n');
      await raw.waitFor(() => raw.stream.includes("PONG"), "PONG after the violation");
      assert.match(raw.stream, /-ERR 'Permissions Violation for Publish to "admin.secret"'\r\n/);
      raw.send("PING\r\n");
      await raw.waitFor(() => raw.stream.split("PONG").length === 3, "second PONG");
      assert.equal(raw.closed, false);
    } finally {
      raw.close();
    }
  });

  it("explicit credentials win over no_auth_user on ws", T, async () => {
    const admin = await accepted(wsClient(server, { user: "admin", pass: "adminpw" }), conns);
    const l = listen(admin, "admin.secret");
    await admin.flush();
    admin.publish("admin.secret", enc.encode("ok"));
    await admin.flush();
    assert.equal(dec.decode((await l.count(1))[0].data), "ok");
  });

  it("a tcp client without credentials is rejected (no_auth_user is for ws only)", T, async () => {
    await rejectsAuth(tcpClient(server));
  });
});

describe("users reloaded with SIGHUP (scenario auth_conn_types)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("auth_conn_types"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("a user added by reload can connect over ws; a removed user's ws connection is closed and refused", { timeout: 20000 }, async () => {
    const removed = await accepted(wsClient(server, { user: "both", pass: "pw" }), conns);
    const removedRaw = await rawWs(server.ws);
    await removedRaw.waitFor(() => removedRaw.stream.includes("\r\n"), "INFO");
    removedRaw.send('CONNECT {"verbose":false,"protocol":1,"user":"both","pass":"pw"}\r\nPING\r\n');
    await removedRaw.waitFor(() => removedRaw.stream.includes("PONG"), "PONG");
    const kept = await accepted(wsClient(server, { user: "wsonly", pass: "pw" }), conns);
    await rejectsAuth(wsClient(server, { user: "late", pass: "pw" }));
    const conf = fs.readFileSync(server.confPath, "utf8");
    const changed = conf.replace("{ user: both,    password: pw }", "{ user: late,    password: pw }");
    assert.notEqual(changed, conf, "scenario has the user to replace");
    fs.writeFileSync(server.confPath, changed);
    server.child.kill("SIGHUP");
    await within(10000, removed.closed(), "removed user's nats.ws connection closes");
    await removedRaw.waitClosed(5000);
    assert.ok(removedRaw.frames.some((f) => f.opcode === 8), "a close frame before EOF (nats-server: 1000 'Client Closed')");
    let late = null;
    const deadline = Date.now() + 5000;
    while (!late && Date.now() < deadline) {
      late = await wsClient(server, { user: "late", pass: "pw" }).catch(() => null);
      if (!late) await sleep(100);
    }
    assert.ok(late, "the new user connects after the reload");
    conns.push(late);
    await rejectsAuth(wsClient(server, { user: "both", pass: "pw" }));
    await kept.flush();
    assert.equal(kept.isClosed(), false, "an unchanged user keeps its connection");
  });
});

describe("permissions reloaded with SIGHUP (scenario no_auth_user)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("no_auth_user"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("a connected anonymous ws client gets the no_auth_user's new permissions after a reload", { timeout: 20000 }, async () => {
    const admin = await accepted(tcpClient(server, { user: "admin", pass: "adminpw" }), conns);
    const seen = listen(admin, "guest.>");
    await admin.flush();
    const raw = await rawWs(server.ws);
    try {
      await raw.waitFor(() => raw.stream.includes("\r\n"), "INFO");
      raw.send('CONNECT {"verbose":false,"protocol":1}\r\nPUB guest.before 1\r\nx\r\nPING\r\n');
      await raw.waitFor(() => raw.stream.includes("PONG"), "PONG");
      assert.equal((await seen.count(1))[0].subject, "guest.before");
      const conf = fs.readFileSync(server.confPath, "utf8");
      const changed = conf.replace('publish: ["guest.>", "_INBOX.>"]', 'publish: ["guest.only.>"]');
      assert.notEqual(changed, conf);
      fs.writeFileSync(server.confPath, changed);
      server.child.kill("SIGHUP");
      const deadline = Date.now() + 5000;
      let n = 0;
      while (!raw.stream.includes("Permissions Violation") && Date.now() < deadline) {
        raw.send(`PUB guest.after ${String(n).length}\r\n${n}\r\nPING\r\n`);
        n++;
        await sleep(100);
      }
      assert.match(raw.stream, /-ERR 'Permissions Violation for Publish to "guest.after"'\r\n/);
      raw.send("PUB guest.only.ok 2\r\nok\r\nPING\r\n");
      const okMsg = await within(5000, (async () => {
        for (;;) {
          const m = seen.msgs.find((x) => x.subject === "guest.only.ok");
          if (m) return m;
          await sleep(20);
        }
      })(), "guest.only.ok delivered");
      assert.equal(dec.decode(okMsg.data), "ok");
      assert.equal(raw.closed, false);
    } finally {
      raw.close();
    }
  });
});
