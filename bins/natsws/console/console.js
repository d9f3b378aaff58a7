// The natsws web console: polls the monitoring endpoints of the server that served it
// (/varz, /natsws/connz, /subsz) and draws them; the playground connects to the server's
// WebSocket port with the vendored nats.ws bundle. Everything coming from the server is
// written with textContent: user agents, origins and subjects are whatever peers sent.

const BASE = document.querySelector('meta[name="natsws-base"]')?.content ?? "";
const POLL_MS = 1000;
const HISTORY = 120;
// Connections listed at most (the count shows how many there are in all).
const MAX_ROWS = 500;

const $ = (id) => document.getElementById(id);

async function api(path) {
  const res = await fetch(`${BASE}${path}`, { cache: "no-store" });
  const text = await res.text();
  if (!res.ok) throw new Error(text.trim() || `${res.status}`);
  return JSON.parse(text);
}

function fmtCount(n) {
  if (!Number.isFinite(n)) return "–";
  const abs = Math.abs(n);
  if (abs >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (abs >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (abs >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return abs >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1);
}

function fmtBytes(n) {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + " " + units[i];
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

/** Replaces a tbody's rows; `row(tr, item)` fills each one. */
function fillTable(tbody, items, row, empty) {
  const rows = items.map((item) => {
    const tr = document.createElement("tr");
    row(tr, item);
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(tr, empty, "muted");
    td.colSpan = tbody.parentElement.querySelectorAll("th").length;
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

// ---- rates and charts -------------------------------------------------------------------

const samples = []; // { t, inMsgs, outMsgs, inBytes, outBytes }
const rates = []; // { msgIn, msgOut, byteIn, byteOut }

function addSample(v) {
  const s = { t: performance.now(), inMsgs: v.in_msgs, outMsgs: v.out_msgs, inBytes: v.in_bytes, outBytes: v.out_bytes };
  const prev = samples[samples.length - 1];
  samples.push(s);
  if (samples.length > 2) samples.shift();
  if (!prev) return null;
  const dt = (s.t - prev.t) / 1000;
  if (dt <= 0) return null;
  const r = {
    msgIn: Math.max(0, (s.inMsgs - prev.inMsgs) / dt),
    msgOut: Math.max(0, (s.outMsgs - prev.outMsgs) / dt),
    byteIn: Math.max(0, (s.inBytes - prev.inBytes) / dt),
    byteOut: Math.max(0, (s.outBytes - prev.outBytes) / dt),
  };
  rates.push(r);
  if (rates.length > HISTORY) rates.shift();
  return r;
}

/** Draws two series (in, out) as lines over the last HISTORY samples, with a max label. */
function drawChart(canvas, inKey, outKey, fmt) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const pad = { l: 56, r: 8, t: 8, b: 18 };
  const max = Math.max(1, ...rates.map((r) => Math.max(r[inKey], r[outKey])));
  const x = (i) => pad.l + ((w - pad.l - pad.r) * i) / (HISTORY - 1);
  const y = (v) => h - pad.b - ((h - pad.t - pad.b) * v) / max;
  g.strokeStyle = css.getPropertyValue("--line") || "#ddd";
  g.lineWidth = 1;
  g.fillStyle = css.getPropertyValue("--muted") || "#666";
  g.font = "11px system-ui, sans-serif";
  for (const frac of [0, 0.5, 1]) {
    const yy = y(max * frac);
    g.beginPath();
    g.moveTo(pad.l, yy);
    g.lineTo(w - pad.r, yy);
    g.stroke();
    g.fillText(fmt(max * frac), 4, yy + 4);
  }
  g.fillText(`last ${HISTORY} s`, pad.l, h - 4);
  const offset = HISTORY - rates.length;
  for (const [key, color] of [
    [inKey, css.getPropertyValue("--in") || "#2b7de9"],
    [outKey, css.getPropertyValue("--out") || "#e8772e"],
  ]) {
    g.strokeStyle = color.trim();
    g.lineWidth = 2;
    // "out" dashed, so that equal rates (one subscriber per message) still show both.
    g.setLineDash(key === outKey ? [6, 6] : []);
    g.beginPath();
    rates.forEach((r, i) => {
      const px = x(offset + i);
      const py = y(r[key]);
      if (i === 0) g.moveTo(px, py);
      else g.lineTo(px, py);
    });
    g.stroke();
    if (rates.length === 1) {
      // One rate so far: a dot, until there is a line to draw.
      g.fillStyle = color.trim();
      g.beginPath();
      g.arc(x(offset), y(rates[0][key]), 3, 0, 2 * Math.PI);
      g.fill();
    }
  }
  g.setLineDash([]);
}

// ---- polling --------------------------------------------------------------------------

let wsInfo = null;

function showOverview(v, r) {
  $("server-name").textContent = `${v.server_name} · ${v.version}`;
  $("ov-connections").textContent = fmtCount(v.connections);
  $("ov-subscriptions").textContent = fmtCount(v.subscriptions);
  $("ov-slow").textContent = fmtCount(v.slow_consumers);
  $("ov-mem").textContent = `${fmtBytes(v.mem)} · ${v.cpu}%`;
  $("ov-uptime").textContent = v.uptime;
  if (r) {
    $("ov-msg-rate").textContent = `${fmtCount(r.msgIn)} · ${fmtCount(r.msgOut)}`;
    $("ov-byte-rate").textContent = `${fmtBytes(r.byteIn)} · ${fmtBytes(r.byteOut)}`;
  }
}

function showConnections(c) {
  const shown = c.connections.length;
  $("conn-count").textContent = shown < c.total ? `(${shown} of ${c.total})` : `(${c.total})`;
  fillTable(
    $("conn-table").tBodies[0],
    c.connections,
    (tr, x) => {
      tr.dataset.cid = String(x.cid);
      cell(tr, String(x.cid));
      cell(tr, x.kind);
      cell(tr, x.transport + (x.tls_version ? ` (TLS ${x.tls_version})` : ""));
      cell(tr, x.ip.includes(":") ? `[${x.ip}]:${x.port}` : `${x.ip}:${x.port}`);
      cell(tr, x.forwarded_for ?? "", "wrap");
      cell(tr, x.origin ?? "", "wrap");
      cell(tr, x.user_agent ?? "", "wrap");
      cell(tr, [x.name, x.lang && `${x.lang} ${x.version ?? ""}`.trim()].filter(Boolean).join(" · "));
      cell(tr, x.user ? `${x.account} (${x.user})` : x.account);
      cell(tr, x.compression ? "deflate" : "none");
      cell(tr, fmtBytes(x.pending_bytes));
      cell(tr, String(x.subscriptions));
      cell(tr, `${fmtCount(x.in_msgs)} / ${fmtCount(x.out_msgs)}`);
      cell(tr, x.uptime);
    },
    "no connections",
  );
}

async function poll() {
  try {
    const [v, c] = await Promise.all([api("/varz"), api(`/natsws/connz?limit=${MAX_ROWS}`)]);
    wsInfo = c.websocket;
    const r = addSample(v);
    showOverview(v, r);
    showConnections(c);
    drawChart($("msg-chart"), "msgIn", "msgOut", fmtCount);
    drawChart($("byte-chart"), "byteIn", "byteOut", fmtBytes);
    $("live").textContent = "live";
    $("live").className = "badge ok";
    showTarget();
  } catch (e) {
    $("live").textContent = `unreachable: ${e.message}`;
    $("live").className = "badge bad";
  }
}

// ---- subscriptions browser ------------------------------------------------------------

async function loadSubs() {
  const test = $("subs-test").value.trim();
  const q = new URLSearchParams({ subs: "1", limit: "1000" });
  if (test) q.set("test", test);
  const err = $("subs-error");
  try {
    const s = await api(`/subsz?${q}`);
    err.hidden = true;
    const list = s.subscriptions_list ?? [];
    $("subs-count").textContent = test
      ? `(${s.total} matching ${test}, of ${s.num_subscriptions})`
      : `(${s.num_subscriptions})`;
    fillTable(
      $("subs-table").tBodies[0],
      list,
      (tr, x) => {
        cell(tr, x.subject, "wrap");
        cell(tr, x.qgroup ?? "");
        cell(tr, x.sid);
        cell(tr, String(x.cid));
        cell(tr, x.account ?? "");
        cell(tr, String(x.msgs));
      },
      test ? "no subscription matches" : "no subscriptions",
    );
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
  }
}

// ---- playground -----------------------------------------------------------------------

let nc = null;
let natsModule = null;

function log(text, isError) {
  const li = document.createElement("li");
  li.textContent = text;
  if (isError) li.className = "error";
  const ol = $("pg-log");
  ol.appendChild(li);
  while (ol.children.length > 200) ol.firstElementChild.remove();
  ol.scrollTop = ol.scrollHeight;
}

function status(text, isError) {
  $("pg-status").textContent = text;
  $("pg-status").className = isError ? "error" : "muted";
}

function wsUrl() {
  const host = location.hostname.includes(":") && !location.hostname.startsWith("[")
    ? `[${location.hostname}]`
    : location.hostname;
  return `${wsInfo.tls ? "wss" : "ws"}://${host}:${wsInfo.port}`;
}

function showTarget() {
  if (!wsInfo || nc) return;
  $("pg-target").textContent = wsInfo.port
    ? `Connects to ${wsUrl()} with nats.ws` + (wsInfo.credentials_required ? " (credentials required)." : ".")
    : "This server has no WebSocket listener.";
}

function setConnected(on) {
  $("pg-connect").disabled = on;
  $("pg-disconnect").disabled = !on;
  $("pg-sub").disabled = !on;
  $("pg-pub").disabled = !on;
}

async function connectPlayground() {
  if (!wsInfo) {
    status("The server's WebSocket settings are not known yet.", true);
    return;
  }
  if (!wsInfo.port) {
    status("Refused: this server has no WebSocket listener.", true);
    return;
  }
  if (location.protocol === "https:" && !wsInfo.tls) {
    status("Refused: this page came over HTTPS and the WebSocket port is plain ws://, which browsers block.", true);
    return;
  }
  const user = $("pg-user").value;
  const pass = $("pg-pass").value;
  const token = $("pg-token").value;
  if (wsInfo.credentials_required && !user && !token) {
    status(
      "Refused: the WebSocket port requires credentials and this page has none. Enter a user and password or a token.",
      true,
    );
    return;
  }
  if (wsInfo.same_origin) {
    status("Note: the WebSocket port accepts only upgrades from its own origin, which this page is not.", true);
  }
  try {
    natsModule ??= await import("./vendor/nats.ws.js");
    const opts = { servers: wsUrl(), name: "natsws console", reconnect: false, timeout: 5000 };
    if (user) Object.assign(opts, { user, pass });
    if (token) opts.token = token;
    status(`connecting to ${opts.servers}…`);
    nc = await natsModule.connect(opts);
    setConnected(true);
    status(`connected to ${opts.servers} (${nc.info?.server_name ?? ""})`);
    nc.closed().then((err) => {
      nc = null;
      setConnected(false);
      if (err) status(`connection closed: ${err.message}`, true);
      else status("not connected");
    });
  } catch (e) {
    nc = null;
    setConnected(false);
    const hint = e.code === "AUTHORIZATION_VIOLATION" ? " (credentials refused)" : "";
    status(`Refused: ${e.message}${hint}`, true);
  }
}

function subscribePlayground(subject) {
  const sc = natsModule.StringCodec();
  const sub = nc.subscribe(subject, {
    callback: (err, m) => {
      if (err) log(`subscription ${subject}: ${err.message}`, true);
      else log(`← ${m.subject}: ${sc.decode(m.data)}`);
    },
  });
  log(`subscribed to ${subject}`);
  return sub;
}

async function publishPlayground(subject, payload) {
  const sc = natsModule.StringCodec();
  nc.publish(subject, sc.encode(payload));
  await nc.flush();
  log(`→ ${subject}: ${payload}`);
}

function wirePlayground() {
  $("pg-connect-form").addEventListener("submit", (e) => {
    e.preventDefault();
    connectPlayground();
  });
  $("pg-disconnect").addEventListener("click", () => nc?.close());
  $("pg-sub-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const subject = $("pg-sub-subject").value.trim();
    if (!nc || !subject) return;
    try {
      subscribePlayground(subject);
    } catch (err) {
      log(`subscribe ${subject}: ${err.message}`, true);
    }
  });
  $("pg-pub-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const subject = $("pg-pub-subject").value.trim();
    if (!nc || !subject) return;
    publishPlayground(subject, $("pg-pub-payload").value).catch((err) => log(`publish ${subject}: ${err.message}`, true));
  });
}

$("subs-form").addEventListener("submit", (e) => {
  e.preventDefault();
  loadSubs();
});
wirePlayground();
poll();
loadSubs();
setInterval(poll, POLL_MS);
setInterval(loadSubs, 5 * POLL_MS);
