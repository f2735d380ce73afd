'use strict';
// node bench/check.js [N]: the cost of one Session.check as a Node caller sees it (koffi crossing,
// argument encoding and verdict decoding included), and of a bare koffi call for comparison.
const { Session } = require('..');
const koffi = require('koffi');

const n = Number(process.argv[2] || 200000);
const s = new Session({ budget: { max_calls_per_minute: 1000000000 } });
const objects = Array.from({ length: 1024 }, (_, i) => ({ query: 'microloop benchmark', page: i }));
const texts = objects.map((o) => JSON.stringify(o));

function time(label, fn) {
  for (let i = 0; i < Math.min(n, 20000); i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${label.padEnd(34)} ${ns.toFixed(0).padStart(6)} ns/op  (${n} calls)`);
}

time('check(tool, JSON text)', (i) => s.check('search', texts[i % 1024]));
s.reset();
time('check(tool, object)', (i) => s.check('search', objects[i % 1024]));
const lib = koffi.load(process.env.MICROLOOP_LIB || require('node:path').join(__dirname, '..', '..', '..', 'native', 'target', 'release', 'libmicroloop.so'));
const abi = lib.func('uint32_t ml_abi_version(void)');
time('koffi bare call (ml_abi_version)', () => abi());
s.close();
