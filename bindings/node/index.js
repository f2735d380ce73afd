'use strict';
// MicroLoop for Node: checks every tool call of an AI agent before it runs. Loads the MicroLoop
// C library (libmicroloop) with koffi; every binding runs the same engine and gives the same
// verdicts. See README.md; the types are in index.d.ts.

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

const ABI_VERSION = 2;

// --- Errors: one class per ml_status, all MicroLoopError.

class MicroLoopError extends Error {
  constructor(message, status = -1, statusName = 'unknown', policyPath = '') {
    super(message);
    this.name = new.target.name;
    /** The ml_status code (include/microloop.h). */
    this.status = status;
    /** Its name as in the shared vectors: 'invalid_json', ... */
    this.statusName = statusName;
    /** For a refused policy, the bad entry ('budget.max_calls'); else ''. */
    this.path = policyPath;
  }
}
class PolicyError extends MicroLoopError {}
class NullArgumentError extends MicroLoopError {}
class InvalidUTF8Error extends MicroLoopError {}
class InvalidJSONError extends MicroLoopError {}
class UnknownCallError extends MicroLoopError {}
class AlreadyRecordedError extends MicroLoopError {}
class InvalidArgumentError extends MicroLoopError {}
class InvalidSnapshotError extends MicroLoopError {}
class SnapshotVersionError extends MicroLoopError {}
class PolicyMismatchError extends MicroLoopError {}
class InternalError extends MicroLoopError {}
class SessionClosedError extends MicroLoopError {
  constructor() {
    super('the session is closed', -1, 'closed');
  }
}

const ERRORS = {
  1: [NullArgumentError, 'null_arg'],
  2: [InvalidUTF8Error, 'invalid_utf8'],
  3: [InvalidJSONError, 'invalid_json'],
  4: [PolicyError, 'invalid_policy'],
  5: [UnknownCallError, 'unknown_call'],
  6: [AlreadyRecordedError, 'already_recorded'],
  7: [InvalidArgumentError, 'invalid_argument'],
  8: [InvalidSnapshotError, 'invalid_snapshot'],
  9: [SnapshotVersionError, 'snapshot_version'],
  10: [PolicyMismatchError, 'policy_mismatch'],
  99: [InternalError, 'panic'],
};

// --- The library.

// MICROLOOP_LIB, else the library packed into the npm package for this platform
// (prebuilds/linux-x64/libmicroloop.so, `make node-pack`), else a checkout's `make lib` build.
function libraryPath() {
  if (process.env.MICROLOOP_LIB) return process.env.MICROLOOP_LIB;
  const name = process.platform === 'win32' ? 'microloop.dll'
    : process.platform === 'darwin' ? 'libmicroloop.dylib' : 'libmicroloop.so';
  const prebuilt = path.join(__dirname, 'prebuilds', `${process.platform}-${process.arch}`, name);
  if (fs.existsSync(prebuilt)) return prebuilt;
  return path.join(__dirname, '..', '..', 'native', 'target', 'release', name);
}

const LIBRARY_PATH = libraryPath();
const lib = koffi.load(LIBRARY_PATH);
koffi.opaque('ml_session');
koffi.opaque('ml_engine');
koffi.opaque('ml_error');
const Verdict_t = koffi.struct('ml_verdict', {
  size: 'size_t', action: 'int32_t', count: 'uint32_t', call_id: 'uint64_t',
  rule: 'void *', rule_len: 'size_t', message: 'void *', message_len: 'size_t',
  approval: 'void *', approval_len: 'size_t', approval_error: 'void *', approval_error_len: 'size_t',
  observed: 'int32_t',
});
const Stats_t = koffi.struct('ml_stats', {
  size: 'size_t', calls: 'uint64_t', blocked: 'uint64_t', errors: 'uint64_t',
  history_len: 'uint64_t', history_hash: 'uint64_t', results: 'uint64_t', late: 'uint64_t',
  observed: 'uint64_t',
});

// Out-parameters are caller-owned Buffers passed as `void *` and read back by offset: cheaper
// than koffi's marshalled out-objects. JavaScript calls these synchronously, one at a time.
const ml = {
  abi_version: lib.func('uint32_t ml_abi_version(void)'),
  version_string: lib.func('const char *ml_version_string(void)'),
  session_new: lib.func('int32_t ml_session_new(const char *policy, size_t len, void *session_out, void *err_out)'),
  session_free: lib.func('void ml_session_free(ml_session *s)'),
  engine_new: lib.func('int32_t ml_engine_new(const char *policy, size_t len, void *engine_out, void *err_out)'),
  engine_free: lib.func('void ml_engine_free(ml_engine *e)'),
  session_new_from_engine: lib.func('int32_t ml_session_new_from_engine(ml_engine *e, void *session_out, void *err_out)'),
  session_save: lib.func('int32_t ml_session_save(ml_session *s, void *bytes_out, void *len_out, void *err_out)'),
  session_load: lib.func('int32_t ml_session_load(ml_engine *e, const uint8_t *bytes, size_t len, uint32_t flags, void *session_out, void *err_out)'),
  bytes_free: lib.func('void ml_bytes_free(void *bytes, size_t len)'),
  check_call: lib.func('int32_t ml_check_call(ml_session *s, const char *tool, size_t tool_len, const char *args, size_t args_len, void *verdict_out, void *err_out)'),
  verdict_clear: lib.func('void ml_verdict_clear(void *verdict)'),
  record_result: lib.func('int32_t ml_record_result(ml_session *s, uint64_t call_id, const char *output, size_t len, bool is_error, void *err_out)'),
  set_tools: lib.func('int32_t ml_session_set_tools(ml_session *s, const char *names, size_t len, void *err_out)'),
  reset: lib.func('int32_t ml_session_reset(ml_session *s, void *err_out)'),
  stats: lib.func('int32_t ml_session_stats(ml_session *s, void *stats_out, void *err_out)'),
  fingerprint: lib.func('int32_t ml_fingerprint(ml_engine *engine, const char *tool, size_t tool_len, const char *args, size_t args_len, void *fp_out, void *err_out)'),
  error_code: lib.func('int32_t ml_error_code(ml_error *err)'),
  error_message: lib.func('const char *ml_error_message(ml_error *err, void *len_out)'),
  error_path: lib.func('const char *ml_error_path(ml_error *err, void *len_out)'),
  error_free: lib.func('void ml_error_free(ml_error *err)'),
};

const loadedAbi = ml.abi_version();
if (loadedAbi !== ABI_VERSION) {
  throw new Error(`microloop: ${LIBRARY_PATH} has ABI version ${loadedAbi}, this package needs ${ABI_VERSION}`);
}

const V = {
  size: Verdict_t.size,
  action: koffi.offsetof(Verdict_t, 'action'),
  count: koffi.offsetof(Verdict_t, 'count'),
  callId: koffi.offsetof(Verdict_t, 'call_id'),
  rule: koffi.offsetof(Verdict_t, 'rule'),
  ruleLen: koffi.offsetof(Verdict_t, 'rule_len'),
  message: koffi.offsetof(Verdict_t, 'message'),
  messageLen: koffi.offsetof(Verdict_t, 'message_len'),
  approval: koffi.offsetof(Verdict_t, 'approval'),
  approvalLen: koffi.offsetof(Verdict_t, 'approval_len'),
  approvalError: koffi.offsetof(Verdict_t, 'approval_error'),
  approvalErrorLen: koffi.offsetof(Verdict_t, 'approval_error_len'),
  observed: koffi.offsetof(Verdict_t, 'observed'),
};
const errBox = Buffer.alloc(8);
const ptrBox = Buffer.alloc(8);
const verdictBuf = Buffer.alloc(V.size);
const statsBuf = Buffer.alloc(Stats_t.size);
const ACTIONS = ['allow', 'warn', 'block', 'halt'];

// Throws the error of a failed call (status rc), freeing the library's ml_error.
function raise(rc) {
  const err = errBox.readBigUInt64LE(0);
  let message = `status ${rc}`;
  let policyPath = '';
  if (err !== 0n) {
    message = ml.error_message(err, null);
    policyPath = ml.error_path(err, null);
    ml.error_free(err);
  }
  const [Cls, name] = ERRORS[rc] || [MicroLoopError, 'unknown'];
  throw new Cls(message, rc, name, policyPath);
}

// The (pointer-able value, byte length) of a text or bytes argument.
function textArg(value, what) {
  if (typeof value === 'string') return [value, Buffer.byteLength(value, 'utf8')];
  if (value instanceof Uint8Array) return [value, value.byteLength];
  throw new TypeError(`${what} must be a string or a Uint8Array`);
}

// Arguments: JSON text (string), raw bytes (Uint8Array), or any other value serialized as JSON.
function argsArg(args) {
  if (args === undefined || args === null) return ['{}', 2];
  if (typeof args === 'string' || args instanceof Uint8Array) return textArg(args, 'args');
  const text = JSON.stringify(args);
  if (text === undefined) throw new TypeError('args cannot be serialized as JSON');
  return [text, Buffer.byteLength(text, 'utf8')];
}

// A tool's output: text as its UTF-8 bytes, bytes as they are, anything else as JSON.
function outputArg(output) {
  if (output === undefined || output === null) return ['', 0];
  if (typeof output === 'string' || output instanceof Uint8Array) return textArg(output, 'output');
  const text = JSON.stringify(output);
  return [text, Buffer.byteLength(text, 'utf8')];
}

function decodeString(buf, ptrOffset, lenOffset) {
  const ptr = buf.readBigUInt64LE(ptrOffset);
  if (ptr === 0n) return '';
  const len = Number(buf.readBigUInt64LE(lenOffset));
  return len === 0 ? '' : koffi.decode(ptr, 'char', len);
}

// Marks a Session built around a handle ml_session_load returned.
const loadedSession = Symbol('loaded session');

// Frees a session or an engine nobody closed, when it is garbage-collected.
const registry = new FinalizationRegistry((handle) => ml.session_free(handle));
const engineRegistry = new FinalizationRegistry((handle) => ml.engine_free(handle));

function policyText(policy) {
  return typeof policy === 'string' ? policy : JSON.stringify(policy);
}

/**
 * A compiled policy that any number of sessions share: the policy is parsed and its schemas and
 * regexes compiled once, so `engine.newSession()` (a session per conversation or worker) costs none
 * of that. Sessions keep their own reference: closing the engine does not affect them.
 */
class Engine {
  /** @param {string|object} [policy] as for `new Session(policy)`. */
  constructor(policy = 'balanced') {
    const text = policyText(policy);
    errBox.writeBigUInt64LE(0n);
    const rc = ml.engine_new(text, Buffer.byteLength(text, 'utf8'), ptrBox, errBox);
    if (rc !== 0) raise(rc);
    this._handle = ptrBox.readBigUInt64LE(0);
    engineRegistry.register(this, this._handle, this);
  }

  _live() {
    if (this._handle === null) throw new SessionClosedError();
    return this._handle;
  }

  /** A new session under this engine's policy, with an empty history. */
  newSession() {
    return new Session(this);
  }

  /**
   * A session from `session.save()`'s bytes, under this engine's policy: it gives exactly the
   * verdicts the saved one would have given. Bytes saved under another policy throw
   * PolicyMismatchError unless `anyPolicy`; bytes that are not a snapshot, corrupt or truncated
   * InvalidSnapshotError; a snapshot from a newer MicroLoop SnapshotVersionError.
   */
  loadSession(snapshot, { anyPolicy = false } = {}) {
    const engine = this._live();
    if (!(snapshot instanceof Uint8Array)) throw new TypeError('snapshot must be a Uint8Array');
    errBox.writeBigUInt64LE(0n);
    const rc = ml.session_load(engine, snapshot, snapshot.byteLength, anyPolicy ? 1 : 0, ptrBox, errBox);
    if (rc !== 0) raise(rc);
    return new Session(loadedSession, ptrBox.readBigUInt64LE(0));
  }

  /** The fingerprint a session under this engine keeps for a call (its `ignore_fields` left out). */
  fingerprint(tool, args) {
    return fingerprintWith(this._live(), tool, args);
  }

  /** Releases the engine; its sessions keep working. Closing twice is a no-op. */
  close() {
    if (this._handle === null) return;
    engineRegistry.unregister(this);
    ml.engine_free(this._handle);
    this._handle = null;
  }

  get closed() {
    return this._handle === null;
  }
}

class Session {
  /**
   * @param {string|object} [policy] a preset name ('strict', 'balanced', 'permissive'), a policy
   *   document as JSON text, a policy object, or an Engine to share; omitted means 'balanced'.
   */
  constructor(policy = 'balanced', handle = undefined) {
    if (policy === loadedSession) {
      this._handle = handle;
      registry.register(this, this._handle, this);
      return;
    }
    errBox.writeBigUInt64LE(0n);
    let rc;
    if (policy instanceof Engine) {
      rc = ml.session_new_from_engine(policy._live(), ptrBox, errBox);
    } else {
      const text = policyText(policy);
      rc = ml.session_new(text, Buffer.byteLength(text, 'utf8'), ptrBox, errBox);
    }
    if (rc !== 0) raise(rc);
    this._handle = ptrBox.readBigUInt64LE(0);
    registry.register(this, this._handle, this);
  }

  _live() {
    if (this._handle === null) throw new SessionClosedError();
    return this._handle;
  }

  /**
   * Decides on a tool call before it runs.
   * @returns {{action: string, rule: string, message: string, callId: number, count: number, mayRun: boolean, approval: string|null, approvalError: string|null, observed: string}}
   * `observed`: under a policy with `mode = "observe"`, the action an enforcing guard would have
   * taken ('warn', 'block' or 'halt') on a call that is let run (`action` is then 'allow', with
   * the would-be rule, message and count); '' otherwise.
   */
  check(tool, args) {
    const handle = this._live();
    const [t, tlen] = textArg(tool, 'tool');
    const [a, alen] = argsArg(args);
    verdictBuf.fill(0);
    verdictBuf.writeBigUInt64LE(BigInt(V.size), 0);
    errBox.writeBigUInt64LE(0n);
    const rc = ml.check_call(handle, t, tlen, a, alen, verdictBuf, errBox);
    if (rc !== 0) raise(rc);
    const action = ACTIONS[verdictBuf.readInt32LE(V.action)];
    const rule = decodeString(verdictBuf, V.rule, V.ruleLen);
    const message = decodeString(verdictBuf, V.message, V.messageLen);
    const callId = verdictBuf.readBigUInt64LE(V.callId);
    const count = verdictBuf.readUInt32LE(V.count);
    const observed = verdictBuf.readInt32LE(V.observed);
    // Under [approval]: the token of a call that may run, or why it has none.
    const approval = decodeString(verdictBuf, V.approval, V.approvalLen) || null;
    const approvalError = decodeString(verdictBuf, V.approvalError, V.approvalErrorLen) || null;
    if (rule || message || approval || approvalError) ml.verdict_clear(verdictBuf);
    return {
      action,
      rule,
      message,
      callId: callId <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(callId) : callId,
      count,
      mayRun: action === 'allow' || action === 'warn',
      approval,
      approvalError,
      observed: observed === 0 ? '' : ACTIONS[observed],
    };
  }

  /**
   * Records what an allowed call returned (text, bytes, or a value serialized as JSON). A result
   * that comes after its call has left the history window is accepted as late (stats().late).
   */
  record(callId, output, isError = false) {
    const handle = this._live();
    const [o, olen] = outputArg(output);
    errBox.writeBigUInt64LE(0n);
    const rc = ml.record_result(handle, callId, o, olen, Boolean(isError), errBox);
    if (rc !== 0) raise(rc);
  }

  /** Registers the agent's tool names (an array, or a JSON array as text); [] forgets them. */
  setTools(names) {
    const handle = this._live();
    const text = typeof names === 'string' ? names : JSON.stringify(Array.from(names));
    errBox.writeBigUInt64LE(0n);
    const rc = ml.set_tools(handle, text, Buffer.byteLength(text, 'utf8'), errBox);
    if (rc !== 0) raise(rc);
  }

  /** Forgets the history, counters and any halt; keeps the policy and the tool names. */
  reset() {
    const handle = this._live();
    errBox.writeBigUInt64LE(0n);
    const rc = ml.reset(handle, errBox);
    if (rc !== 0) raise(rc);
  }

  /** The session's counters; historyHash is a BigInt (a 64-bit hash). */
  stats() {
    const handle = this._live();
    statsBuf.fill(0);
    statsBuf.writeBigUInt64LE(BigInt(Stats_t.size), 0);
    errBox.writeBigUInt64LE(0n);
    const rc = ml.stats(handle, statsBuf, errBox);
    if (rc !== 0) raise(rc);
    const u64 = (field) => statsBuf.readBigUInt64LE(koffi.offsetof(Stats_t, field));
    return {
      calls: Number(u64('calls')),
      blocked: Number(u64('blocked')),
      errors: Number(u64('errors')),
      historyLen: Number(u64('history_len')),
      historyHash: u64('history_hash'),
      results: Number(u64('results')),
      late: Number(u64('late')),
      observed: Number(u64('observed')),
    };
  }

  /**
   * The session as bytes (a Buffer) for `engine.loadSession`, in this process or another: its
   * history window, counters, registered tool names and any halt (not the policy: the bytes name
   * its hash). The session is unchanged.
   */
  save() {
    const handle = this._live();
    errBox.writeBigUInt64LE(0n);
    const lenBox = Buffer.alloc(8);
    const rc = ml.session_save(handle, ptrBox, lenBox, errBox);
    if (rc !== 0) raise(rc);
    const ptr = ptrBox.readBigUInt64LE(0);
    const len = Number(lenBox.readBigUInt64LE(0));
    try {
      return Buffer.from(koffi.decode(ptr, 'uint8_t', len));
    } finally {
      ml.bytes_free(ptr, len);
    }
  }

  /** Frees the session; closing twice is a no-op, other calls then throw SessionClosedError. */
  close() {
    if (this._handle === null) return;
    registry.unregister(this);
    ml.session_free(this._handle);
    this._handle = null;
  }

  get closed() {
    return this._handle === null;
  }
}

/** The canonical fingerprint of a call (a 64-bit BigInt), as every binding computes it; every
 *  field counts (`engine.fingerprint` leaves out the policy's `ignore_fields`). */
function fingerprint(tool, args) {
  return fingerprintWith(null, tool, args);
}

function fingerprintWith(engine, tool, args) {
  const [t, tlen] = textArg(tool, 'tool');
  const [a, alen] = argsArg(args);
  errBox.writeBigUInt64LE(0n);
  const rc = ml.fingerprint(engine, t, tlen, a, alen, ptrBox, errBox);
  if (rc !== 0) raise(rc);
  return ptrBox.readBigUInt64LE(0);
}

module.exports = {
  Session,
  Engine,
  fingerprint,
  version: ml.version_string(),
  libraryPath: LIBRARY_PATH,
  ABI_VERSION,
  MicroLoopError,
  PolicyError,
  NullArgumentError,
  InvalidUTF8Error,
  InvalidJSONError,
  UnknownCallError,
  AlreadyRecordedError,
  InvalidArgumentError,
  InvalidSnapshotError,
  SnapshotVersionError,
  PolicyMismatchError,
  InternalError,
  SessionClosedError,
};
