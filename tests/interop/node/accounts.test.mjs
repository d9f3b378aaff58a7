// Accounts with nats.ws (ws) and nats.js (tcp): isolation, stream imports with a prefix and with
// `to`, service imports and their response types, public and restricted exports, no_auth_user
// inside an account, the system account, and users' permissions and connection types inside
// account blocks. Scenario `accounts`: SHOP exports, BANK and GUEST import, OTHER imports nothing,
// SYS is the system account.
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, afterEach, before, describe, it } from "node:test";
import { closeAll, natsTcp, transports } from "../lib/clients.mjs";
import { dec, enc, listen, orError, sleep, startServer, within } from "../lib/harness.mjs";

const T = { timeout: 20000 };
const KINDS = ["ws", "tcp"];
const other = (kind) => (kind === "ws" ? "tcp" : "ws");

const rejectsAuth = (p) =>
  assert.rejects(p, (e) => {
    assert.equal(e.code, "AUTHORIZATION_VIOLATION", `error: ${e.code} ${e.message}`);
    return true;
  });

const rejectsNoResponders = (p) =>
  assert.rejects(p, (e) => {
    assert.equal(e.code, "503", `error: ${e.code} ${e.message}`);
    return true;
  });

describe("accounts (scenario accounts)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("accounts"));
  });
  // Every case closes its connections, so no service or subscriber of one case answers in the next.
  afterEach(async () => {
    await closeAll(conns.splice(0));
  });
  after(async () => {
    await server?.stop();
  });

  /** A connection of `user` (password "pw"; no user: no credentials) over `kind`. */
  async function as(kind, user) {
    const creds = user ? { user, pass: "pw" } : {};
    const nc = await transports[kind].connect(server, creds);
    conns.push(nc);
    await nc.flush();
    return nc;
  }

  /** A service on `subject` answering `answers(request)` (one response per element). */
  async function serve(nc, subject, answers, seen = []) {
    nc.subscribe(subject, {
      callback: (err, m) => {
        if (err) return;
        seen.push(m);
        for (const a of answers(dec.decode(m.data))) m.respond(enc.encode(a));
      },
    });
    await nc.flush();
    return seen;
  }

  for (const kind of KINDS) {
    it(`two accounts are isolated over ${kind}: nothing crosses without an import, in either direction`, T, async () => {
      const shop = await as(kind, "shop");
      const otherA = await as(kind, "other");
      const otherB = await as(other(kind), "other");
      const shopSees = listen(shop, ">");
      const otherSees = listen(otherA, ">");
      const otherBSees = listen(otherB, "iso.>");
      await shop.flush();
      await otherA.flush();
      await otherB.flush();
      otherA.publish("iso.from.other", enc.encode("o"));
      otherA.publish("orders.from.other", enc.encode("o"));
      shop.publish("iso.from.shop", enc.encode("s"));
      await otherA.flush();
      await shop.flush();
      // Each account hears itself (also across transports), so the listeners work ...
      assert.equal((await otherBSees.count(1))[0].subject, "iso.from.other");
      assert.deepEqual(
        (await shopSees.count(1)).map((m) => m.subject),
        ["iso.from.shop"],
      );
      // ... and nothing of the other account.
      await shopSees.quiet(1);
      await otherSees.quiet(2);
      assert.deepEqual(
        otherSees.msgs.map((m) => m.subject).sort(),
        ["iso.from.other", "orders.from.other"],
      );
    });

    it(`stream import with prefix: SHOP's orders.> reaches BANK as shop.orders.> (${kind} publisher, ${other(kind)} subscriber), and only that way`, T, async () => {
      const shop = await as(kind, "shop");
      const bank = await as(other(kind), "bank");
      const guest = await as(other(kind), "guest");
      const otherAcc = await as(other(kind), "other");
      const bankPrefixed = listen(bank, "shop.orders.>");
      const bankPlain = listen(bank, "orders.>");
      const guestPlain = listen(guest, "orders.>");
      const otherSees = listen(otherAcc, ">");
      const shopSees = listen(shop, "orders.>");
      for (const nc of [bank, guest, otherAcc, shop]) await nc.flush();
      shop.publish("orders.new", enc.encode("order 1"));
      await shop.flush();
      const [m] = await bankPrefixed.count(1);
      assert.equal(m.subject, "shop.orders.new");
      assert.equal(dec.decode(m.data), "order 1");
      // GUEST imports the same public export without a prefix.
      assert.equal((await guestPlain.count(1))[0].subject, "orders.new");
      await shopSees.count(1);
      // The importer's own orders.> stays its own; the import does not flow back.
      bank.publish("orders.local", enc.encode("bank"));
      bank.publish("shop.orders.back", enc.encode("bank"));
      await bank.flush();
      assert.equal((await bankPlain.count(1))[0].subject, "orders.local");
      await bankPrefixed.quiet(2);
      await shopSees.quiet(1);
      await otherSees.quiet(0);
    });

    it(`stream import with to: SHOP's audit.log (exported to BANK only) reaches BANK as shop.audit over ${kind}`, T, async () => {
      const shop = await as(other(kind), "shop");
      const bank = await as(kind, "bank");
      const guest = await as(kind, "guest");
      const bankMapped = listen(bank, "shop.audit");
      const bankRaw = listen(bank, "audit.>");
      const guestSees = listen(guest, ">");
      for (const nc of [bank, guest]) await nc.flush();
      shop.publish("audit.log", enc.encode("entry"));
      await shop.flush();
      const [m] = await bankMapped.count(1);
      assert.equal(m.subject, "shop.audit");
      assert.equal(dec.decode(m.data), "entry");
      await bankRaw.quiet(0);
      await guestSees.quiet(0);
    });

    it(`service import request/reply over ${kind}: BANK and GUEST (to: echo) reach SHOP's svc.echo; OTHER gets no responders`, T, async () => {
      const shop = await as(other(kind), "shop");
      const seen = await serve(shop, "svc.echo", (req) => [`echo:${req}`]);
      const bank = await as(kind, "bank");
      const guest = await as(kind, "guest");
      const otherAcc = await as(kind, "other");
      const r = await bank.request("svc.echo", enc.encode("from bank"), { timeout: 5000 });
      assert.equal(dec.decode(r.data), "echo:from bank");
      // The service sees the exported subject and a reply subject rewritten by the server.
      assert.equal(seen[0].subject, "svc.echo");
      assert.match(seen[0].reply, /^_R_\./);
      const g = await guest.request("echo", enc.encode("from guest"), { timeout: 5000 });
      assert.equal(dec.decode(g.data), "echo:from guest");
      assert.equal(seen[1].subject, "svc.echo");
      // GUEST's own svc.echo and OTHER's are local subjects with nobody behind them.
      await rejectsNoResponders(guest.request("svc.echo", enc.encode("x"), { timeout: 3000 }));
      await rejectsNoResponders(otherAcc.request("svc.echo", enc.encode("x"), { timeout: 3000 }));
      assert.equal(seen.length, 2);
    });

    it(`response type Singleton over ${kind}: three responses, the requester gets the first only`, T, async () => {
      const shop = await as(other(kind), "shop");
      await serve(shop, "svc.echo", (req) => [`${req}-1`, `${req}-2`, `${req}-3`]);
      const bank = await as(kind, "bank");
      const inbox = transports[kind].lib.createInbox();
      const got = listen(bank, inbox);
      await bank.flush();
      bank.publish("svc.echo", enc.encode("s"), { reply: inbox });
      await bank.flush();
      assert.equal(dec.decode((await got.count(1))[0].data), "s-1");
      await got.quiet(1, 500);
    });

    it(`response type Stream over ${kind}: every response arrives until the 1 s threshold, nothing after it expired`, T, async () => {
      const shop = await as(other(kind), "shop");
      const requests = await serve(shop, "svc.feed", (req) => [`${req}-1`, `${req}-2`, `${req}-3`]);
      const bank = await as(kind, "bank");
      const inbox = transports[kind].lib.createInbox();
      const got = listen(bank, inbox);
      await bank.flush();
      bank.publish("feed", enc.encode("f"), { reply: inbox });
      await bank.flush();
      assert.deepEqual((await got.count(3)).map((m) => dec.decode(m.data)), ["f-1", "f-2", "f-3"]);
      // nats-server sweeps expired routes on a timer of the threshold's period: wait for two.
      await sleep(2500);
      const route = requests[0].reply;
      assert.match(route, /^_R_\./);
      shop.publish(route, enc.encode("late"));
      await shop.flush();
      await got.quiet(3, 500);
    });
    it(`response type Stream over ${kind}: the route ends when the requester's interest goes; a new subscriber of the inbox gets nothing`, T, async () => {
      const shop = await as(other(kind), "shop");
      const requests = await serve(shop, "svc.feed", () => ["first"]);
      const bank = await as(kind, "bank");
      const inbox = transports[kind].lib.createInbox();
      const before = listen(bank, inbox);
      await bank.flush();
      bank.publish("feed", enc.encode("q"), { reply: inbox });
      await bank.flush();
      assert.equal(dec.decode((await before.count(1))[0].data), "first");
      before.sub.unsubscribe();
      await bank.flush();
      const again = listen(bank, inbox);
      await bank.flush();
      shop.publish(requests[0].reply, enc.encode("after the unsubscribe"));
      await shop.flush();
      await again.quiet(0, 500);
      // Within the threshold, a route whose reply still has a subscriber keeps working.
      bank.publish("feed", enc.encode("q2"), { reply: inbox });
      await bank.flush();
      assert.equal(dec.decode((await again.count(1))[0].data), "first");
      shop.publish(requests[1].reply, enc.encode("more"));
      await shop.flush();
      assert.equal(dec.decode((await again.count(2))[1].data), "more");
    });

  }

  it("public vs restricted export: BANK reaches the restricted svc.vip, GUEST has no route to it", T, async () => {
    const shop = await as("tcp", "shop");
    await serve(shop, "svc.vip", () => ["vip"]);
    const bank = await as("ws", "bank");
    const guest = await as("ws", "guest");
    assert.equal(dec.decode((await bank.request("vip", enc.encode(""), { timeout: 5000 })).data), "vip");
    await rejectsNoResponders(guest.request("vip", enc.encode(""), { timeout: 3000 }));
    await rejectsNoResponders(guest.request("svc.vip", enc.encode(""), { timeout: 3000 }));
  });

  for (const kind of KINDS) {
    it(`no_auth_user inside an account over ${kind}: a client without credentials is anon of GUEST`, T, async () => {
      const shop = await as(other(kind), "shop");
      await serve(shop, "svc.echo", (req) => [`echo:${req}`]);
      const anon = await as(kind, null);
      const guest = await as(other(kind), "guest");
      const otherAcc = await as(other(kind), "other");
      const anonOrders = listen(anon, "orders.>");
      const guestSees = listen(guest, "lobby.>");
      const otherSees = listen(otherAcc, "lobby.>");
      await anon.flush();
      await guest.flush();
      await otherAcc.flush();
      // GUEST's imports apply to anon ...
      const r = await anon.request("echo", enc.encode("anon"), { timeout: 5000 });
      assert.equal(dec.decode(r.data), "echo:anon");
      shop.publish("orders.anon", enc.encode("o"));
      await shop.flush();
      assert.equal((await anonOrders.count(1))[0].subject, "orders.anon");
      // ... anon shares GUEST's subject space with guest, and no other account's.
      anon.publish("lobby.hello", enc.encode("hi"));
      await anon.flush();
      assert.equal(dec.decode((await guestSees.count(1))[0].data), "hi");
      await otherSees.quiet(0);
    });
  }

  it("system account isolation: OTHER sees nothing of SYS (no $SYS events, no SYS messages), SYS nothing of OTHER", T, async () => {
    const sys = await as("tcp", "sys");
    const watchWs = await as("ws", "other");
    const watchTcp = await as("tcp", "other");
    const wsSees = listen(watchWs, ">");
    const tcpSees = listen(watchTcp, "$SYS.>");
    const sysSees = listen(sys, "app.>");
    await watchWs.flush();
    await watchTcp.flush();
    await sys.flush();
    // Connections coming and going make nats-server publish $SYS.ACCOUNT.*.CONNECT/DISCONNECT
    // events in the system account.
    const churn = await as("ws", "shop");
    await churn.close();
    const churnOther = await as("tcp", "other");
    await churnOther.close();
    sys.publish("app.sys", enc.encode("s"));
    sys.publish("$SYS.custom", enc.encode("s"));
    await sys.flush();
    watchWs.publish("app.other", enc.encode("o"));
    await watchWs.flush();
    assert.equal((await sysSees.count(1))[0].subject, "app.sys");
    assert.equal((await wsSees.count(1))[0].subject, "app.other");
    await wsSees.quiet(1, 500);
    await tcpSees.quiet(0);
    await sysSees.quiet(1);
  });

  for (const kind of KINDS) {
    it(`permissions of a user inside an account over ${kind}: clerk may use orders.> only, inside SHOP`, T, async () => {
      const shop = await as(other(kind), "shop");
      const clerk = await as(kind, "clerk");
      const bank = await as(other(kind), "bank");
      const shopSees = listen(shop, ">");
      const bankSees = listen(bank, "shop.orders.>");
      await shop.flush();
      await bank.flush();
      const denied = listen(clerk, "svc.echo");
      clerk.publish("svc.secret", enc.encode("dropped"));
      clerk.publish("orders.by.clerk", enc.encode("ok"));
      await clerk.flush();
      await sleep(200);
      assert.ok(denied.error, "subscription to a forbidden subject reports an error");
      assert.match(String(denied.error.message), /Permissions Violation for Subscription to "svc.echo"/);
      // The allowed publish lands in SHOP (and so in BANK through the import); the denied one nowhere.
      assert.equal((await shopSees.count(1))[0].subject, "orders.by.clerk");
      assert.equal((await bankSees.count(1))[0].subject, "shop.orders.by.clerk");
      await shopSees.quiet(1);
      assert.equal(clerk.isClosed(), false);
      // An allowed subscription of the clerk receives SHOP's messages.
      const clerkSees = listen(clerk, "orders.>");
      await clerk.flush();
      shop.publish("orders.to.clerk", enc.encode("c"));
      await shop.flush();
      assert.equal((await clerkSees.count(1))[0].subject, "orders.to.clerk");
    });
  }

  for (const kind of KINDS) {
    it(`an account's default_permissions over ${kind}: member has them, lead its own`, T, async () => {
      const member = await as(kind, "member");
      const lead = await as(other(kind), "lead");
      const leadSees = listen(lead, ">");
      await lead.flush();
      const denied = listen(member, "x.y");
      const allowed = listen(member, "team.in");
      member.publish("x.y", enc.encode("dropped"));
      member.publish("team.out", enc.encode("ok"));
      await member.flush();
      await sleep(200);
      assert.ok(denied.error, "subscription outside team.> reports an error");
      assert.match(String(denied.error.message), /Permissions Violation for Subscription to "x.y"/);
      assert.deepEqual((await leadSees.count(1)).map((m) => m.subject), ["team.out"]);
      lead.publish("x.y", enc.encode("lead may"));
      lead.publish("team.in", enc.encode("to member"));
      await lead.flush();
      assert.equal(dec.decode((await allowed.count(1))[0].data), "to member");
      await leadSees.quiet(3);
      assert.deepEqual(leadSees.msgs.map((m) => m.subject), ["team.out", "x.y", "team.in"]);
    });
  }

  it("allowed_connection_types inside an account: shopws only over ws, shoptcp only over tcp, both in SHOP", T, async () => {
    await rejectsAuth(transports.tcp.connect(server, { user: "shopws", pass: "pw" }));
    await rejectsAuth(transports.ws.connect(server, { user: "shoptcp", pass: "pw" }));
    const w = await as("ws", "shopws");
    const t = await as("tcp", "shoptcp");
    const bank = await as("ws", "bank");
    const tSees = listen(t, "orders.>");
    const bankSees = listen(bank, "shop.orders.>");
    await t.flush();
    await bank.flush();
    w.publish("orders.ws", enc.encode("w"));
    await w.flush();
    assert.equal((await tSees.count(1))[0].subject, "orders.ws");
    assert.equal((await bankSees.count(1))[0].subject, "shop.orders.ws");
  });

  for (const kind of KINDS) {
    it(`the exporter's own wildcard subscriber over ${kind} sees the request and every response; the requester the first only`, T, async () => {
      const shop = await as(other(kind), "shop");
      await serve(shop, "svc.echo", (req) => [`${req}-1`, `${req}-2`]);
      const watcher = await as(kind, "shop");
      const inShop = listen(watcher, ">");
      await watcher.flush();
      const bank = await as(kind, "bank");
      const inBank = listen(bank, ">");
      await bank.flush();
      const inbox = transports[kind].lib.createInbox();
      const got = listen(bank, inbox);
      await bank.flush();
      bank.publish("svc.echo", enc.encode("w"), { reply: inbox });
      await bank.flush();
      assert.equal(dec.decode((await got.count(1))[0].data), "w-1");
      const seen = await inShop.count(3);
      assert.equal(seen[0].subject, "svc.echo");
      assert.match(seen[0].reply, /^_R_\./);
      assert.deepEqual(seen.slice(1).map((m) => [m.subject, dec.decode(m.data)]), [
        [seen[0].reply, "w-1"],
        [seen[0].reply, "w-2"],
      ]);
      await inShop.quiet(3);
      await got.quiet(1);
      // BANK's own > sees its request and the one response, under BANK's subjects.
      assert.deepEqual(inBank.msgs.map((m) => m.subject), ["svc.echo", inbox]);
    });

    it(`a service import with nobody serving over ${kind}: the import is an interest, so no 503, the request times out`, T, async () => {
      const bank = await as(kind, "bank");
      const timesOut = (p) =>
        assert.rejects(p, (e) => {
          assert.equal(e.code, "TIMEOUT", `error: ${e.code} ${e.message}`);
          return true;
        });
      await timesOut(bank.request("vip", enc.encode(""), { timeout: 1000 }));
      await timesOut(bank.request("svc.echo", enc.encode(""), { timeout: 1000 }));
    });

    it(`a wildcard service export (calc.*) over ${kind}: each request keeps its subject, headers cross both ways, the server adds Nats-Request-Info`, T, async () => {
      const { lib } = transports[kind];
      const shop = await as(other(kind), "shop");
      const shopLib = transports[other(kind)].lib;
      const infos = [];
      shop.subscribe("calc.*", {
        callback: (err, m) => {
          if (err) return;
          infos.push(m.headers?.get("Nats-Request-Info"));
          const h = shopLib.headers();
          h.set("Op", m.subject.split(".")[1]);
          h.set("Seen", m.headers?.get("Req") || "none");
          m.respond(enc.encode(`${m.subject}:${dec.decode(m.data)}`), { headers: h });
        },
      });
      await shop.flush();
      const bank = await as(kind, "bank");
      const h = lib.headers();
      h.set("Req", "r1");
      const add = await bank.request("calc.add", enc.encode("1+2"), { timeout: 5000, headers: h });
      assert.equal(dec.decode(add.data), "calc.add:1+2");
      assert.equal(add.headers.get("Op"), "add");
      assert.equal(add.headers.get("Seen"), "r1");
      const mul = await bank.request("calc.mul", enc.encode("2*3"), { timeout: 5000 });
      assert.equal(dec.decode(mul.data), "calc.mul:2*3");
      assert.equal(mul.headers.get("Seen"), "none");
      // Both requests reached the service with the requester's account (and its RTT, in ns).
      assert.equal(infos.length, 2);
      for (const text of infos) {
        const info = JSON.parse(text);
        assert.equal(info.acc, "BANK", text);
        assert.deepEqual(Object.keys(info).filter((k) => k !== "rtt"), ["acc"], text);
        assert.ok(info.rtt === undefined || (Number.isInteger(info.rtt) && info.rtt > 0), text);
      }
      // The responses carry only the service's headers.
      assert.equal(add.headers.get("Nats-Request-Info"), "");
      await rejectsNoResponders(bank.request("calc.add.more", enc.encode(""), { timeout: 3000 }));
    });

    it(`a wildcard stream export (wild.*.x) with prefix over ${kind}: matching subjects only, headers kept`, T, async () => {
      const shop = await as(other(kind), "shop");
      const bank = await as(kind, "bank");
      const got = listen(bank, "shop.wild.>");
      await bank.flush();
      const h = transports[other(kind)].lib.headers();
      h.set("K", "v");
      shop.publish("wild.a.x", enc.encode("1"), { headers: h });
      shop.publish("wild.a.y", enc.encode("2"));
      shop.publish("wild.a.b.x", enc.encode("3"));
      shop.publish("wild.b.x", enc.encode("4"));
      await shop.flush();
      const msgs = await got.count(2);
      assert.deepEqual(msgs.map((m) => [m.subject, dec.decode(m.data)]), [["shop.wild.a.x", "1"], ["shop.wild.b.x", "4"]]);
      assert.equal(msgs[0].headers.get("K"), "v");
      await got.quiet(2);
    });

    it(`response type Chunked over ${kind}: several responses reach the requester`, T, async () => {
      const shop = await as(other(kind), "shop");
      await serve(shop, "svc.chunks", (req) => [`${req}-1`, `${req}-2`, `${req}-3`]);
      const bank = await as(kind, "bank");
      const inbox = transports[kind].lib.createInbox();
      const got = listen(bank, inbox);
      await bank.flush();
      bank.publish("chunks", enc.encode("c"), { reply: inbox });
      await bank.flush();
      assert.deepEqual((await got.count(3)).map((m) => dec.decode(m.data)), ["c-1", "c-2", "c-3"]);
      await got.quiet(3);
    });

    it(`a queue group serving an import over ${kind}: one member answers each request`, T, async () => {
      const members = [await as(kind, "shop"), await as(other(kind), "shop"), await as(kind, "shop")];
      const seen = [];
      for (const [i, nc] of members.entries()) {
        nc.subscribe("svc.echo", {
          queue: "q",
          callback: (err, m) => {
            if (err) return;
            seen.push(i);
            m.respond(enc.encode(`m${i}`));
          },
        });
        await nc.flush();
      }
      const bank = await as(kind, "bank");
      for (let n = 0; n < 20; n++) {
        const r = await bank.request("svc.echo", enc.encode(`${n}`), { timeout: 5000 });
        assert.match(dec.decode(r.data), /^m[012]$/);
      }
      assert.equal(seen.length, 20);
    });

    it(`allow_responses inside an account over ${kind}: a worker that may publish nothing answers a request from BANK once`, T, async () => {
      const worker = await as(other(kind), "worker");
      const requests = [];
      worker.subscribe("svc.echo", {
        callback: (err, m) => {
          if (err) return;
          requests.push(m);
          m.respond(enc.encode("from worker"));
        },
      });
      await worker.flush();
      const shop = await as(kind, "shop");
      const shopSees = listen(shop, ">");
      await shop.flush();
      const bank = await as(kind, "bank");
      const r = await bank.request("svc.echo", enc.encode("q"), { timeout: 5000 });
      assert.equal(dec.decode(r.data), "from worker");
      // A second answer to the same request and a plain publish are both refused.
      requests[0].respond(enc.encode("again"));
      worker.publish("orders.by.worker", enc.encode("no"));
      await worker.flush();
      await sleep(300);
      const subjects = shopSees.msgs.map((m) => [m.subject, dec.decode(m.data)]);
      assert.deepEqual(subjects, [["svc.echo", "q"], [requests[0].reply, "from worker"]]);
      assert.equal(worker.isClosed(), false);
    });
  }

  it("a wrong password of an account user is refused over ws and tcp (no fallback to no_auth_user)", T, async () => {
    await rejectsAuth(transports.ws.connect(server, { user: "bank", pass: "nope" }));
    await rejectsAuth(transports.tcp.connect(server, { user: "bank", pass: "nope" }));
  });
});

describe("exports restricted to accounts: [...] (scenarios accounts_restricted_*)", () => {
  for (const [what, subject] of [["stream", "audit.log"], ["service", "svc.vip"]]) {
    it(`importing a ${what} exported to other accounts only is a configuration error`, T, async () => {
      await assert.rejects(within(15000, startServer(`accounts_restricted_${what}`), "server start"), (e) => {
        assert.match(e.message, new RegExp(`Error adding ${what} import "${subject.replace(".", "\\.")}": ${what} import not authorized`));
        return true;
      });
    });
  }
});

describe("websocket no_auth_user in another account than the global one (scenario accounts_ws_no_auth)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("accounts_ws_no_auth"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("an anonymous ws client is bank of BANK and reaches SHOP's service; an anonymous tcp client is anon of GUEST and does not", T, async () => {
    const shop = await transports.tcp.connect(server, { user: "shop", pass: "pw" });
    conns.push(shop);
    shop.subscribe("svc.echo", {
      callback: (_, m) => m.respond(enc.encode(JSON.parse(m.headers.get("Nats-Request-Info")).acc)),
    });
    await shop.flush();
    const ws = await transports.ws.connect(server);
    const tcp = await transports.tcp.connect(server);
    conns.push(ws, tcp);
    assert.equal(dec.decode((await ws.request("svc.echo", enc.encode(""), { timeout: 5000 })).data), "BANK");
    await rejectsNoResponders(tcp.request("svc.echo", enc.encode(""), { timeout: 3000 }));
    // The two anonymous clients are in different accounts.
    const seen = listen(tcp, "lobby");
    await tcp.flush();
    ws.publish("lobby", enc.encode("hi"));
    await ws.flush();
    await seen.quiet(0);
  });
});

describe("imports added by SIGHUP reload (scenario accounts)", () => {
  let server;
  const conns = [];
  before(async () => {
    server = await orError(startServer("accounts"));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  it("OTHER's connected ws and tcp clients reach SHOP's service and stream once the reload gives OTHER the imports", { timeout: 20000 }, async () => {
    const shop = await transports.tcp.connect(server, { user: "shop", pass: "pw" });
    conns.push(shop);
    shop.subscribe("svc.echo", { callback: (_, m) => m.respond(enc.encode("echo")) });
    await shop.flush();
    const clients = [];
    for (const kind of KINDS) {
      const nc = await transports[kind].connect(server, { user: "other", pass: "pw" });
      conns.push(nc);
      clients.push({ nc, orders: listen(nc, "o.orders.>") });
      await nc.flush();
      await rejectsNoResponders(nc.request("svc.echo", enc.encode(""), { timeout: 3000 }));
    }
    const conf = fs.readFileSync(server.confPath, "utf8");
    const changed = conf.replace(
      "users: [ { user: other, password: pw } ]",
      'users: [ { user: other, password: pw } ]\n    imports: [ { service: { account: SHOP, subject: "svc.echo" } }, { stream: { account: SHOP, subject: "orders.>" }, prefix: "o" } ]',
    );
    assert.notEqual(changed, conf, "scenario has OTHER's users line");
    fs.writeFileSync(server.confPath, changed);
    server.child.kill("SIGHUP");
    // The reload is asynchronous: poll until the import answers.
    for (const { nc } of clients) {
      let answer = null;
      const deadline = Date.now() + 5000;
      while (!answer && Date.now() < deadline) {
        answer = await nc.request("svc.echo", enc.encode(""), { timeout: 1000 }).catch(() => null);
        if (!answer) await sleep(100);
      }
      assert.ok(answer, "the service import works after the reload");
      assert.equal(dec.decode(answer.data), "echo");
      assert.equal(nc.isClosed(), false, "a client whose user is unchanged stays connected");
    }
    shop.publish("orders.reloaded", enc.encode("x"));
    await shop.flush();
    for (const { orders } of clients) {
      assert.equal((await orders.count(1))[0].subject, "o.orders.reloaded");
    }
  });
});

describe("an nkey user inside an account (scenario accounts_nkey)", () => {
  let server;
  let seed;
  const conns = [];
  before(async () => {
    const kp = natsTcp.nkeys.createUser();
    seed = kp.getSeed();
    server = await orError(startServer("accounts_nkey", { NKEY: kp.getPublicKey() }));
  });
  after(async () => {
    await closeAll(conns);
    await server?.stop();
  });

  for (const kind of KINDS) {
    it(`the nkey user over ${kind} is in BANK, with its permissions, and reaches SHOP's service`, T, async () => {
      const shop = await transports.tcp.connect(server, { user: "shop", pass: "pw" });
      conns.push(shop);
      shop.subscribe("svc.echo", {
        callback: (_, m) => m.respond(enc.encode(JSON.parse(m.headers.get("Nats-Request-Info")).acc)),
      });
      await shop.flush();
      const { connect, lib } = transports[kind];
      const nc = await connect(server, { authenticator: lib.nkeyAuthenticator(seed) });
      conns.push(nc);
      assert.equal(dec.decode((await nc.request("svc.echo", enc.encode(""), { timeout: 5000 })).data), "BANK");
      const denied = listen(nc, "other");
      await nc.flush();
      await sleep(200);
      assert.match(String(denied.error?.message), /Permissions Violation for Subscription to "other"/);
      // A wrong key is refused.
      const stranger = lib.nkeys.createUser().getSeed();
      await rejectsAuth(connect(server, { authenticator: lib.nkeyAuthenticator(stranger) }));
    });
  }
});
