// Operator mode (decentralized JWT auth) for browsers' library and Node: nats.ws with
// jwtAuthenticator and credsAuthenticator over ws, nats.js with creds over TCP, and the
// browser-style login where the WebSocket upgrade carries the user JWT in the `jwt_cookie`.
// The operator, account and user keys and JWTs are made here at test time with the nkeys
// that nats.js ships; both servers read the same scenario with the same JWTs.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { closeAll, natsTcp, natsWs, tcpClient, wsClient } from "../lib/clients.mjs";
import { listen, orError, startServer } from "../lib/harness.mjs";

const T = { timeout: 20000 };
const { nkeys } = natsTcp;
const enc = new TextEncoder();
const dec = new TextDecoder();
const now = () => Math.floor(Date.now() / 1000);

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");

/** A v2 NATS JWT of `kind` about `sub`, signed by `signer` (an nkeys pair). */
function jwt(signer, sub, kind, nats = {}, extra = {}) {
  const header = b64url(enc.encode(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })));
  const claims = {
    jti: `${kind}-${sub}-${Math.random()}`,
    iat: now() - 5,
    iss: signer.getPublicKey(),
    name: `${kind}-name`,
    sub,
    ...extra,
    nats: { type: kind, version: 2, ...nats },
  };
  const body = b64url(enc.encode(JSON.stringify(claims)));
  const sig = signer.sign(enc.encode(`${header}.${body}`));
  return `${header}.${body}.${b64url(sig)}`;
}

const unlimited = { subs: -1, data: -1, payload: -1 };
const accountLimits = { ...unlimited, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

function creds(userJwt, user) {
  return (
    `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n` +
    `-----BEGIN USER NKEY SEED-----\n${dec.decode(user.getSeed())}\n------END USER NKEY SEED------\n`
  );
}

const rejectsAuth = (p) =>
  assert.rejects(p, (e) => {
    assert.equal(e.code, "AUTHORIZATION_VIOLATION", `error: ${e.code} ${e.message}`);
    return true;
  });

describe("operator mode: JWT users over ws and tcp (scenario operator)", () => {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const stranger = nkeys.createAccount();
  const userJwt = (issuer, user, nats = {}, extra = {}) =>
    jwt(issuer, user.getPublicKey(), "user", { ...unlimited, ...nats }, extra);
  let server;
  const conns = [];
  before(async () => {
    server = await orError(
      startServer("operator", {
        OPERATOR: jwt(operator, operator.getPublicKey(), "operator"),
        ACCOUNT: account.getPublicKey(),
        ACCOUNT_JWT: jwt(operator, account.getPublicKey(), "account", { limits: accountLimits }),
      }),
    );
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("nats.ws jwtAuthenticator and nats.js credsAuthenticator share their account", T, async () => {
    const wsUser = nkeys.createUser();
    const tcpUser = nkeys.createUser();
    const ws = await wsClient(server, {
      authenticator: natsWs.jwtAuthenticator(userJwt(account, wsUser), wsUser.getSeed()),
    });
    conns.push(ws);
    assert.equal(ws.info.auth_required, true);
    assert.ok(ws.info.nonce, "INFO carries a nonce");
    const tcp = await tcpClient(server, {
      authenticator: natsTcp.credsAuthenticator(enc.encode(creds(userJwt(account, tcpUser), tcpUser))),
    });
    conns.push(tcp);
    const l = listen(ws, "greet.>");
    await ws.flush();
    tcp.publish("greet.ws", enc.encode("hi"));
    await tcp.flush();
    await l.count(1);
    assert.equal(dec.decode(l.msgs[0].data), "hi");
  });

  it("nats.ws credsAuthenticator over ws", T, async () => {
    const user = nkeys.createUser();
    const nc = await wsClient(server, {
      authenticator: natsWs.credsAuthenticator(enc.encode(creds(userJwt(account, user), user))),
    });
    conns.push(nc);
    await nc.flush();
  });

  it("expired, wrongly signed and unknown-account users are refused", T, async () => {
    const user = nkeys.createUser();
    const expired = userJwt(account, user, {}, { exp: now() - 10 });
    await rejectsAuth(wsClient(server, { authenticator: natsWs.jwtAuthenticator(expired, user.getSeed()) }));
    const other = nkeys.createUser();
    const good = userJwt(account, user);
    await rejectsAuth(wsClient(server, { authenticator: natsWs.jwtAuthenticator(good, other.getSeed()) }));
    const unknown = userJwt(stranger, user);
    await rejectsAuth(tcpClient(server, { authenticator: natsTcp.jwtAuthenticator(unknown, user.getSeed()) }));
    await rejectsAuth(wsClient(server));
  });

  it("user permissions from the JWT apply", T, async () => {
    const user = nkeys.createUser();
    const limited = userJwt(account, user, { pub: { allow: ["ok.>"] } });
    const nc = await wsClient(server, { authenticator: natsWs.jwtAuthenticator(limited, user.getSeed()) });
    conns.push(nc);
    const watcher = nkeys.createUser();
    const w = await tcpClient(server, {
      authenticator: natsTcp.jwtAuthenticator(userJwt(account, watcher), watcher.getSeed()),
    });
    conns.push(w);
    const l = listen(w, ">");
    await w.flush();
    nc.publish("no.x", enc.encode("denied"));
    nc.publish("ok.x", enc.encode("allowed"));
    await nc.flush().catch(() => {});
    await l.count(1);
    assert.deepEqual(l.msgs.map((m) => m.subject), ["ok.x"]);
  });

  it("jwt_cookie: the upgrade's cookie logs a credential-less nats.ws client in", T, async () => {
    const user = nkeys.createUser();
    const bearer = userJwt(account, user, { bearer_token: true });
    const nc = await wsClient(server, {}, { ws: { headers: { Cookie: `theme=dark; natsjwt=${bearer}` } } });
    conns.push(nc);
    await nc.flush();
    // Without the cookie the same client is refused.
    await rejectsAuth(wsClient(server));
  });
});
