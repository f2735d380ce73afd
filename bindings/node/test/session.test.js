'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const ml = require(process.env.MICROLOOP_NODE_PACKAGE || '..'); // see vectors.test.js

test('a page behind a CAPTCHA is blocked on the third visit', () => {
  const s = new ml.Session('balanced');
  const actions = [];
  for (let i = 0; i < 3; i++) {
    const v = s.check('open_page', { url: 'https://shop.example/item/42' });
    actions.push(v.action);
    if (v.mayRun) s.record(v.callId, 'Please solve the CAPTCHA to continue.');
    else assert.equal(v.rule, 'loop.no_progress');
  }
  assert.deepEqual(actions, ['allow', 'warn', 'block']);
  assert.deepEqual({ ...s.stats(), historyHash: 0 }, { calls: 2, blocked: 1, errors: 0, historyLen: 2, historyHash: 0, results: 2, late: 0, observed: 0 });
  s.reset();
  assert.equal(s.stats().historyLen, 0);
  s.close();
});

test('shadow mode lets the third visit run and says it would have been blocked', () => {
  const s = new ml.Session({ mode: 'observe' });
  const seen = [];
  for (let i = 0; i < 3; i++) {
    const v = s.check('open_page', { url: 'https://shop.example/item/42' });
    assert.equal(v.action, 'allow');
    assert.ok(v.mayRun && v.callId > 0);
    seen.push(v.observed);
    if (v.observed === 'block') assert.equal(v.rule, 'loop.no_progress');
    s.record(v.callId, 'Please solve the CAPTCHA to continue.');
  }
  assert.deepEqual(seen, ['', 'warn', 'block']);
  const st = s.stats();
  assert.equal(st.calls, 3);
  assert.equal(st.observed, 2);
  s.close();
});

test('arguments as an object, JSON text or bytes are the same call', () => {
  const s = new ml.Session();
  const a = s.check('search', { q: 'x', n: 1 });
  const b = s.check('search', '{"n": 1.0, "q": "x"}');
  const c = s.check('search', Buffer.from('{"q":"x","n":1}'));
  assert.deepEqual([a.count, b.count, c.count], [0, 1, 2]);
  assert.equal(ml.fingerprint('search', { q: 'x', n: 1 }), ml.fingerprint('search', '{"n":1.0,"q":"x"}'));
  s.close();
});

test('a refused policy is a PolicyError naming the bad entry', () => {
  assert.throws(() => new ml.Session({ loops: { max_identicl: 3 } }), (e) =>
    e instanceof ml.PolicyError && e instanceof ml.MicroLoopError && e instanceof Error &&
    e.statusName === 'invalid_policy' && e.status === 4 && e.path.startsWith('loops'));
});

test('bad inputs throw their own Error subclass', () => {
  const s = new ml.Session();
  assert.throws(() => s.check('search', '{'), ml.InvalidJSONError);
  assert.throws(() => s.check('', {}), ml.InvalidArgumentError);
  assert.throws(() => s.check(Buffer.from([0x73, 0xff]), {}), ml.InvalidUTF8Error);
  assert.throws(() => s.record(12345, 'x'), ml.UnknownCallError);
  const v = s.check('search', {});
  s.record(v.callId, { hits: [] });
  assert.throws(() => s.record(v.callId, 'again'), ml.AlreadyRecordedError);
  assert.throws(() => s.setTools('{"a": 1}'), ml.InvalidJSONError);
  assert.throws(() => s.check(42, {}), TypeError);
  s.close();
});

test('setTools blocks every other tool, [] forgets them', () => {
  const s = new ml.Session();
  s.setTools(['search', 'open_page']);
  const v = s.check('serach', { q: 'x' });
  assert.equal(v.action, 'block');
  assert.equal(v.rule, 'tool.unknown');
  assert.match(v.message, /open_page/);
  s.setTools([]);
  assert.equal(s.check('serach', { q: 'x' }).action, 'allow');
  s.close();
});

test('calls after close throw SessionClosedError; close twice is fine', () => {
  const s = new ml.Session('strict');
  s.close();
  s.close();
  assert.equal(s.closed, true);
  assert.throws(() => s.check('search', {}), ml.SessionClosedError);
  assert.throws(() => s.stats(), ml.SessionClosedError);
});

test('forgotten sessions are freed by the garbage collector', async () => {
  for (let i = 0; i < 500; i++) new ml.Session().check('search', { i });
  if (global.gc) global.gc();
  await new Promise((r) => setImmediate(r));
});

test('the library version is reported', () => {
  assert.match(ml.version, /^\d+\.\d+\.\d+$/);
  assert.equal(ml.ABI_VERSION, 2);
});

test('an engine is shared by sessions with their own histories, which outlive it', () => {
  assert.throws(() => new ml.Engine({ loops: { max_identicl: 3 } }), (e) => e instanceof ml.PolicyError);
  const engine = new ml.Engine('strict');
  const one = engine.newSession();
  const two = new ml.Session(engine);
  engine.close();
  engine.close();
  assert.throws(() => engine.newSession(), ml.SessionClosedError);
  const v = one.check('open_page', { url: 'x' });
  one.record(v.callId, 'CAPTCHA');
  assert.equal(one.check('open_page', { url: 'x' }).action, 'block'); // strict: no progress once
  assert.equal(two.check('open_page', { url: 'x' }).action, 'allow');
  one.close();
  two.close();
});

test("an engine's fingerprint leaves out the policy's ignore_fields", () => {
  const engine = new ml.Engine({ loops: { ignore_fields: ['request_id'] } });
  assert.equal(engine.fingerprint('search', { q: 'x', request_id: 1 }), engine.fingerprint('search', { q: 'x', request_id: 2 }));
  assert.notEqual(ml.fingerprint('search', { q: 'x', request_id: 1 }), ml.fingerprint('search', { q: 'x', request_id: 2 }));
  engine.close();
});

test('a saved session loads under its policy only, and goes on where it was', () => {
  const s = new ml.Session('balanced');
  const v = s.check('open_page', { url: 'x' });
  s.record(v.callId, 'CAPTCHA');
  const bytes = s.save();
  s.close();
  const strict = new ml.Engine('strict');
  assert.throws(() => strict.loadSession(bytes), ml.PolicyMismatchError);
  strict.loadSession(bytes, { anyPolicy: true }).close();
  strict.close();
  const balanced = new ml.Engine('balanced');
  const corrupt = Buffer.from(bytes);
  corrupt[corrupt.length >> 1] ^= 1;
  assert.throws(() => balanced.loadSession(corrupt), ml.InvalidSnapshotError);
  assert.throws(() => balanced.loadSession(bytes.subarray(0, bytes.length - 3)), ml.InvalidSnapshotError);
  assert.throws(() => balanced.loadSession(Buffer.from('GIF89a')), ml.InvalidSnapshotError);
  const future = Buffer.from(bytes);
  future[4] = 99;
  assert.throws(() => balanced.loadSession(future), ml.SnapshotVersionError);
  const loaded = balanced.loadSession(bytes);
  assert.equal(loaded.check('open_page', { url: 'x' }).action, 'warn');
  loaded.close();
  balanced.close();
});
