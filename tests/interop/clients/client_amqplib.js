// The interop scenario (see scenario.py) with amqplib, Node.js's AMQP 0-9-1 client.
// Usage: node client_amqplib.js SCENARIO HOST PORT USER PASSWORD
'use strict';
const amqp = require('amqplib');
const assert = require('node:assert/strict');

const CONTENT_TYPE = 'application/x-amqpcodec-interop';
const SIZES = [0, 10, 5000, 300000];
const IDLE_SECONDS = 7;

function body(n) {
  const b = Buffer.alloc(SIZES[n]);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + n) % 251;
  return b;
}
function headers(n) {
  return { s: 'amqpcodec', n: n, b: true, t: { k: 'v', x: 1 }, a: [1, 'two'] };
}
function properties(n) {
  return { contentType: CONTENT_TYPE, deliveryMode: 2, headers: headers(n), mandatory: true };
}
function mismatch(what) {
  const err = new Error(what);
  err.mismatch = true;
  return err;
}
function check(n, msg) {
  const p = msg.properties;
  if (!msg.content.equals(body(n))) {
    throw mismatch(`message ${n}: body of ${msg.content.length} bytes, expected ${SIZES[n]}`);
  }
  if (p.contentType !== CONTENT_TYPE) throw mismatch(`message ${n}: content_type ${p.contentType}`);
  if (p.deliveryMode !== 2) throw mismatch(`message ${n}: delivery_mode ${p.deliveryMode}`);
  try {
    assert.deepStrictEqual(p.headers, headers(n));
  } catch (e) {
    throw mismatch(`message ${n}: headers ${JSON.stringify(p.headers)}`);
  }
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function connect(host, port, user, password, heartbeat, frameMax = 131072) {
  return amqp.connect({ protocol: 'amqp', hostname: host, port: Number(port), username: user, password, heartbeat, frameMax });
}

async function basic(conn, consumeFirst) {
  const ch = await conn.createConfirmChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  const received = [];
  let done;
  const all = new Promise((resolve) => { done = resolve; });
  const consume = () => ch.consume(queue, (msg) => {
    received.push(msg);
    ch.ack(msg);
    if (received.length === SIZES.length) done();
  });
  if (consumeFirst) await consume(); // consume while waiting for the confirms
  const confirms = SIZES.map((_, n) => new Promise((resolve, reject) => {
    ch.publish('', queue, body(n), properties(n), (err) => (err ? reject(mismatch(`message ${n} nacked`)) : resolve()));
  }));
  await Promise.all(confirms);
  await ch.waitForConfirms();
  if (!consumeFirst) await consume();
  const timeout = sleep(30000).then(() => { throw mismatch(`${received.length} of ${SIZES.length} messages came back`); });
  await Promise.race([all, timeout]);
  received.forEach((msg, n) => check(n, msg));
  await ch.close();
}

// Every field type amqplib writes, with the value it reads back.
const TABLE = {
  longstr: 'text',
  bytes: Buffer.from([0, 255]),
  int8: { '!': 'int8', value: -5 },
  uint8: { '!': 'uint8', value: 250 },
  int16: { '!': 'int16', value: -300 },
  uint16: { '!': 'uint16', value: 65000 },
  int32: { '!': 'int32', value: -70000 },
  uint32: { '!': 'uint32', value: 4000000000 },
  int64: { '!': 'int64', value: 2 ** 40 },
  float: { '!': 'float', value: 1.5 },
  double: 2.5,
  decimal: { '!': 'decimal', value: { places: 2, digits: 314 } },
  timestamp: { '!': 'timestamp', value: 1704164645 },
  bool: false,
  void: null,
  table: { inner: { deep: 1 } },
  array: [1, 'two', true, null, [3]],
};
const TABLE_READ = {
  longstr: 'text', bytes: Buffer.from([0, 255]), int8: -5, uint8: 250, int16: -300, uint16: 65000,
  int32: -70000, uint32: 4000000000, int64: 2 ** 40, float: 1.5, double: 2.5,
  decimal: { '!': 'decimal', value: { places: 2, digits: 314 } },
  timestamp: { '!': 'timestamp', value: 1704164645 },
  bool: false, void: null, table: { inner: { deep: 1 } }, array: [1, 'two', true, null, [3]],
};

async function tables(conn) {
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  ch.sendToQueue(queue, Buffer.from('t'), { headers: TABLE });
  let msg = false;
  for (let i = 0; i < 100 && !msg; i++) {
    msg = await ch.get(queue, { noAck: true });
    if (!msg) await sleep(50);
  }
  if (!msg) throw mismatch('the message did not come back');
  const got = { ...msg.properties.headers, bytes: Buffer.from(msg.properties.headers.bytes) };
  try {
    assert.deepStrictEqual(got, TABLE_READ);
  } catch (e) {
    throw mismatch(`table came back as ${JSON.stringify(msg.properties.headers)}`);
  }
  await ch.close();
}

async function run(scenario, host, port, user, password) {
  if (scenario === 'auth') {
    let conn;
    try {
      conn = await connect(host, port, user, password, 0);
    } catch (e) {
      if (!/403|ACCESS.REFUSED/.test(String(e.message))) throw mismatch(`refused without 403: ${e.message}`);
      return;
    }
    await conn.close();
    throw mismatch('logged in with a wrong password');
  }
  const conn = await connect(host, port, user, password, scenario === 'heartbeat' ? 1 : 0,
    scenario === 'frame-max-4096' ? 4096 : 131072);
  if (scenario === 'frame-max-4096' && conn.connection.frameMax !== 4096) {
    throw mismatch(`frame_max ${conn.connection.frameMax} negotiated, asked for 4096`);
  }
  if (scenario === 'heartbeat') {
    await sleep(IDLE_SECONDS * 1000); // amqplib's timers send and check heartbeats
    await basic(conn, false);
  } else if (scenario === 'confirm-consume') {
    await basic(conn, true);
  } else if (scenario === 'tables') {
    await tables(conn);
  } else {
    await basic(conn, false);
  }
  await conn.close();
}

const [scenario, host, port, user, password] = process.argv.slice(2);
const SCENARIOS = ['basic', 'auth', 'heartbeat', 'confirm-consume', 'tables', 'frame-max-4096'];
if (!SCENARIOS.includes(scenario) || password === undefined) {
  console.error(`usage: client_amqplib.js {${SCENARIOS}} HOST PORT USER PASSWORD`);
  process.exit(2);
}
run(scenario, host, port, user, password).then(
  () => { console.log(`ok ${scenario}`); process.exit(0); },
  (e) => { console.error(e.mismatch ? `MISMATCH: ${e.message}` : `FAILED: ${e.stack}`); process.exit(1); },
);
