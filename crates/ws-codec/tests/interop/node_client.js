// Drives the ws-codec echo example with Node's `ws` package.
// Usage: NATSWS_NODE_MODULES=/path/to/node_modules node node_client.js URL deflate|plain
'use strict';
const path = require('path');
const crypto = require('crypto');
const WebSocket = require(path.join(process.env.NATSWS_NODE_MODULES, 'ws'));

const [url, mode] = process.argv.slice(2);
const deflate = mode === 'deflate';
const offer = deflate || process.env.NATSWS_OFFER_DEFLATE === '1';
const ws = new WebSocket(url, { perMessageDeflate: offer ? { threshold: 0 } : false, maxPayload: 0 });
const fail = (msg) => { console.error(`node ws ${mode}: ${msg}`); process.exit(1); };
setTimeout(() => fail('timed out'), 60000).unref();

const queue = [];
let waiter = null;
ws.on('message', (data, isBinary) => {
  const item = { data: Buffer.from(data), isBinary };
  if (waiter) { const w = waiter; waiter = null; w(item); } else { queue.push(item); }
});
const next = () => new Promise((resolve) => { if (queue.length) resolve(queue.shift()); else waiter = resolve; });

async function echo(payload, binary) {
  ws.send(payload, { binary });
  const got = await next();
  if (got.isBinary !== binary) fail(`kind changed for ${payload.length} bytes`);
  if (!got.data.equals(Buffer.from(payload))) fail(`echo mismatch for ${payload.length} bytes`);
}

async function fragmented(parts, binary) {
  parts.forEach((p, i) => ws.send(p, { binary, fin: i === parts.length - 1 }));
  const got = await next();
  if (!got.data.equals(Buffer.concat(parts.map((p) => Buffer.from(p))))) fail('fragmented echo mismatch');
}

ws.on('error', (err) => fail(String(err)));
ws.on('open', async () => {
  const ext = ws.extensions || '';
  if (deflate !== ext.includes('permessage-deflate')) fail(`extension ${JSON.stringify(ext)}`);
  let checks = 0;
  const cases = [
    ['hello', false], ['héllo ✓', false], [Buffer.from([0, 1, 2]), true], [Buffer.alloc(0), true],
    ['x'.repeat(70), false], [Buffer.from('PUB foo 5\r\nhello\r\n'.repeat(1000)), true],
    [crypto.randomBytes(200000), true], ['{"k":"v","n":123}'.repeat(60000), false],
    [crypto.randomBytes(1 << 20), true],
  ];
  for (const [payload, binary] of cases) { await echo(payload, binary); checks++; }
  await fragmented([Buffer.from('frag1-'), Buffer.from('frag2-'.repeat(1000)), Buffer.from('frag3')], true); checks++;
  await fragmented([crypto.randomBytes(100000), crypto.randomBytes(100000), crypto.randomBytes(3)], true); checks++;
  await fragmented(['un ', 'deux '.repeat(3000), 'trois'], false); checks++;
  const pong = new Promise((resolve) => ws.once('pong', resolve));
  ws.ping(Buffer.from('are you there'));
  const pongData = await pong;
  if (pongData.toString() !== 'are you there') fail('pong payload'); checks++;
  ws.on('close', (code, reason) => {
    if (code !== 1000 || reason.toString() !== 'bye') fail(`close ${code} ${reason}`);
    checks++;
    console.log(`node ws ${mode}: ok ${checks} checks`);
    process.exit(0);
  });
  ws.close(1000, 'bye');
});
