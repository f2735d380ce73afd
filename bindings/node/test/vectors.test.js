'use strict';
// Runs every shared test vector (tests/vectors/*.json, read at run time) through the Node API,
// as native/ffi/tests/vectors.rs does through the C ABI: same steps, same expectations, same
// invariants (an erroring step or a blocked call leaves the history unchanged; a non-allow
// verdict has a message; a blocked call has id 0). Format: tests/vectors/README.md.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
// MICROLOOP_NODE_PACKAGE and MICROLOOP_VECTORS: the same test against an installed package
// (`make test-node-pack`: the npm pack installed into an empty project).
const { Session, Engine, MicroLoopError } = require(process.env.MICROLOOP_NODE_PACKAGE || '..');

const dir = process.env.MICROLOOP_VECTORS || path.join(__dirname, '..', '..', '..', 'tests', 'vectors');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

const history = (s) => {
  const st = s.stats();
  return [st.historyLen, st.historyHash];
};

// The argument bytes a call step describes (the first key present wins).
function argsOf(step) {
  if (typeof step.args_text === 'string') return Buffer.from(step.args_text, 'utf8');
  if (typeof step.args_hex === 'string') return Buffer.from(step.args_hex, 'hex');
  if (Number.isInteger(step.args_nested)) return Buffer.from('['.repeat(step.args_nested) + ']'.repeat(step.args_nested));
  if (Number.isInteger(step.args_big)) {
    const b = Buffer.alloc(step.args_big, 'x');
    b.write('{"data":"', 0);
    b.write('"}', step.args_big - 2);
    return b;
  }
  return Buffer.from(JSON.stringify('args' in step ? step.args : {}), 'utf8');
}

// A step's result: a string as its UTF-8 bytes, anything else as JSON.
function resultOf(step) {
  if (!('result' in step)) return undefined;
  return typeof step.result === 'string' ? step.result : JSON.stringify(step.result);
}

function expectStatus(fn, want, what) {
  let error;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof MicroLoopError, `${what}: no MicroLoopError (got ${error}), expected ${want}`);
  assert.equal(error.statusName, want, `${what}: ${error.message}`);
  assert.ok(error.message.length > 0, `${what}: an error without a message`);
}

function runVector(doc) {
  const policy = typeof doc.policy === 'string' ? doc.policy : JSON.stringify(doc.policy);
  if (doc.policy_error) {
    let error;
    try {
      new Session(policy).close();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof MicroLoopError && error.statusName === 'invalid_policy', `policy gave ${error}`);
    assert.deepEqual({ path: error.path, message: error.message }, { path: doc.policy_error.path, message: doc.policy_error.message });
    return;
  }
  let s = new Session(policy);
  try {
    let lastCallId = 0;
    doc.steps.forEach((step, i) => {
      const where = `step ${i} ${JSON.stringify(step).slice(0, 200)}`;
      if ('save_and_load' in step) {
        // Saved, then loaded under an engine of the same policy: the counters come through.
        const before = s.stats();
        const engine = new Engine(policy);
        const loaded = engine.loadSession(s.save());
        engine.close();
        s.close();
        s = loaded;
        assert.deepEqual(s.stats(), before, `${where}: the loaded session's counters differ`);
        return;
      }
      const before = history(s);
      if ('tools' in step) return s.setTools(JSON.stringify(step.tools));
      if ('reset' in step) return s.reset();
      if ('expect_stats' in step) {
        const st = s.stats();
        const named = {
          calls: st.calls, blocked: st.blocked, errors: st.errors,
          history_len: st.historyLen, results: st.results, late: st.late,
        };
        for (const [name, want] of Object.entries(step.expect_stats)) {
          assert.ok(name in named, `${where}: no counter named ${name}`);
          assert.equal(named[name], want, `${where}: stats.${name}`);
        }
        return;
      }
      if ('record_id' in step || 'record_last' in step) {
        const id = 'record_id' in step ? step.record_id : lastCallId;
        const record = () => s.record(id, resultOf(step) ?? '', Boolean(step.error));
        if (!('expect_error' in step)) return record();
        expectStatus(record, step.expect_error, where);
        assert.deepEqual(history(s), before, `${where}: a failed record changed the history`);
        return;
      }
      const tool = typeof step.tool_hex === 'string' ? Buffer.from(step.tool_hex, 'hex') : step.call;
      if ('expect_error' in step) {
        expectStatus(() => s.check(tool, argsOf(step)), step.expect_error, where);
        assert.deepEqual(history(s), before, `${where}: an erroring call changed the history`);
        return;
      }
      const v = s.check(tool, argsOf(step));
      const got = `${v.action} ${v.rule} count=${v.count}: ${v.message}`;
      assert.equal(v.action, step.expect, `${where}: got ${got}`);
      if (typeof step.rule === 'string') assert.equal(v.rule, step.rule, `${where}: got ${got}`);
      else if (v.action === 'allow') assert.equal(v.rule, '', `${where}: got ${got}`);
      if (Number.isInteger(step.count)) assert.equal(v.count, step.count, `${where}: got ${got}`);
      for (const needle of step.message_contains || []) assert.ok(v.message.includes(needle), `${where}: message lacks ${needle}: ${got}`);
      if (v.action !== 'allow') assert.ok(v.message.length > 0, `${where}: a non-allow verdict without a message`);
      if (!v.mayRun) {
        assert.equal(v.callId, 0, `${where}: a blocked call has an id`);
        assert.deepEqual(history(s), before, `${where}: a blocked call entered the history`);
        return;
      }
      lastCallId = v.callId;
      const out = resultOf(step);
      if (out !== undefined) s.record(v.callId, out, step.error === true);
    });
  } finally {
    s.close();
  }
}

test('the shared vectors are all there', () => {
  assert.ok(files.length >= 40, `only ${files.length} vectors in ${dir}`);
});

for (const file of files) {
  test(`vector ${file.replace(/\.json$/, '')}`, () => {
    runVector(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')));
  });
}
