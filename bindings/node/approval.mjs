// Approval tokens, checked on the tool's side: the call about to run is the one the guard approved.
//
// Under a policy with an [approval] section, every call the guard lets run carries a token: a compact
// JWS (alg EdDSA, typ "microloop-approval+jwt") over the session, the call id, the tool, the SHA-256 of
// the arguments' RFC 8785 canonical JSON, the audience and a short lifetime. A tool server checks it
// before running the call:
//
//   import { verify } from 'microloop/approval.mjs';
//   const claims = await verify(token, 'search', rawArgs, { keys: jwks, audience: 'tools.example' });
//
// verify refuses (an ApprovalError with a `reason`) a token for another tool, arguments changed since
// the check, an expired token, a token id already seen, a token signed by a key not in `keys`, and
// arguments JCS cannot represent (an integer outside ±(2^53 - 1), a duplicate key, bytes that are not
// UTF-8 JSON). Built on `jose` and `canonicalize`; it does not need the MicroLoop library.
import { createHash, timingSafeEqual } from 'node:crypto';
import { jwtVerify, createLocalJWKSet, calculateJwkThumbprint, decodeProtectedHeader, errors } from 'jose';
import canonicalize from 'canonicalize';

export const TOKEN_TYPE = 'microloop-approval+jwt';
export const META_KEY = 'dev.microloop/approval';
const MAX_EXACT = 2n ** 53n - 1n;
const REQUIRED = ['iss', 'aud', 'iat', 'exp', 'jti', 'sid', 'call_id', 'tool', 'args_sha256'];

export class ApprovalError extends Error {
  constructor(reason, message) {
    super(`${reason}: ${message}`);
    this.name = 'ApprovalError';
    /** malformed, type, unknown_key, signature, expired, not_yet_valid, audience, issuer, tool,
     * arguments, unrepresentable or replayed. */
    this.reason = reason;
  }
}

/** An in-memory seen-set: token ids kept until they expire. Any object with add(jti, exp) -> bool
 * (false when already there) will do, e.g. one backed by a shared store. */
export class MemorySeen {
  constructor() {
    this.seen = new Map();
    this.nextSweep = 0;
  }

  add(jti, exp) {
    const now = Date.now() / 1000;
    if (now >= this.nextSweep) {
      for (const [k, e] of this.seen) if (e < now - 300) this.seen.delete(k);
      this.nextSweep = now + 30;
    }
    if (this.seen.has(jti)) return false;
    this.seen.set(jti, exp);
    return true;
  }
}

const defaultSeen = new MemorySeen();

// Refuses what RFC 8785 has no single form for in valid JSON text: duplicate keys and integer
// literals outside ±(2^53 - 1) (JSON.parse would silently keep the last key, or round).
function checkIJSON(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const string = () => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const keys = new Set();
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        const k = string();
        if (keys.has(k)) throw new Error(`the key ${JSON.stringify(k)} appears twice in one object`);
        keys.add(k);
        ws();
        i++; // ':'
        value();
        ws();
        if (text[i++] === '}') return;
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i++] === ']') return;
      }
    } else if (c === '"') {
      string();
    } else if (c === 't' || c === 'f' || c === 'n') {
      while (i < text.length && /[a-z]/.test(text[i])) i++;
    } else {
      const start = i;
      while (i < text.length && /[-+.eE0-9]/.test(text[i])) i++;
      const lit = text.slice(start, i);
      if (!/[.eE]/.test(lit)) {
        const n = BigInt(lit);
        if (n > MAX_EXACT || n < -MAX_EXACT) throw new Error(`the integer ${lit} is outside I-JSON's exact range ±(2^53 - 1)`);
      }
    }
  };
  value();
}

/** The RFC 8785 canonical form of a call's arguments, as the guard hashed them. `args`: the JSON
 * text as received (a string, a Buffer or a Uint8Array), or a decoded value. Throws an ApprovalError
 * (`unrepresentable`) when JCS has no single form for them. */
export function canonicalArgs(args) {
  try {
    let value;
    if (args === undefined || args === null) {
      value = {};
    } else if (typeof args === 'string' || args instanceof Uint8Array) {
      const text = typeof args === 'string' ? args : new TextDecoder('utf-8', { fatal: true }).decode(args);
      value = JSON.parse(text);
      checkIJSON(text);
      if (value === null) value = {};
    } else {
      value = args;
      JSON.stringify(value, (_, v) => {
        if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) > Number.MAX_SAFE_INTEGER)) {
          throw new Error(`the integer ${v} is outside I-JSON's exact range ±(2^53 - 1)`);
        }
        return v;
      });
    }
    const out = canonicalize(value);
    if (typeof out !== 'string') throw new Error('not a JSON value');
    return out;
  } catch (e) {
    throw new ApprovalError('unrepresentable', `the arguments have no RFC 8785 canonical form (${e.message})`);
  }
}

/** The lower-case hex SHA-256 of canonicalArgs (the token's args_sha256 claim, and the audit log's). */
export function argsSha256(args) {
  return createHash('sha256').update(canonicalArgs(args), 'utf8').digest('hex');
}

/** A verifier key string (`microloop keys new` prints it: <name>+<key id>+<base64(0x01 || key)>) as
 * a JWK whose kid is its RFC 7638 thumbprint, as the guard's default kid is. */
export async function jwkFromVerifier(verifier) {
  const parts = verifier.trim().split('+');
  const raw = parts.length >= 3 ? Buffer.from(parts.slice(2).join('+'), 'base64') : Buffer.alloc(0);
  if (raw.length !== 33 || raw[0] !== 1) throw new TypeError('not a verifier key: expected <name>+<key id>+<base64 Ed25519 key>');
  const id = createHash('sha256').update(`${parts[0]}\n`).update(raw).digest('hex').slice(0, 8);
  if (id !== parts[1]) throw new TypeError("the verifier key's id does not match its name and key");
  const jwk = { kty: 'OKP', crv: 'Ed25519', x: raw.subarray(1).toString('base64url') };
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'EdDSA', use: 'sig' };
}

async function keySource(keys) {
  if (typeof keys === 'function') return keys; // createRemoteJWKSet / createLocalJWKSet
  const list = [];
  for (const k of Array.isArray(keys) ? keys : [keys]) {
    if (typeof k === 'string') list.push(await jwkFromVerifier(k));
    else if (k && Array.isArray(k.keys)) list.push(...k.keys);
    else if (k && k.kty) list.push(k);
    else throw new TypeError('keys: a JWK Set, a JWK, a verifier string, a list of these, or a jose key-set function');
  }
  return createLocalJWKSet({ keys: list });
}

/** Checks that `token` approves running `tool` with `args` (the JSON text as received, or the
 * decoded value); resolves to its claims, rejects with an ApprovalError.
 * Options: keys (required), audience (required), issuer ('microloop'; null: any), leeway (seconds,
 * 5), seen (a seen-set; the default is one per process; null turns the replay check off),
 * currentDate (a Date, for tests). */
export async function verify(token, tool, args, { keys, audience, issuer = 'microloop', leeway = 5, seen = defaultSeen, currentDate } = {}) {
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch (e) {
    throw new ApprovalError('malformed', `not a compact JWS (${e.message})`);
  }
  if (header.alg !== 'EdDSA' || header.typ !== TOKEN_TYPE) {
    throw new ApprovalError('type', `not an approval token (alg ${header.alg}, typ ${header.typ})`);
  }
  let payload;
  try {
    ({ payload } = await jwtVerify(token, await keySource(keys), {
      algorithms: ['EdDSA'],
      typ: TOKEN_TYPE,
      audience,
      issuer: issuer ?? undefined,
      clockTolerance: leeway,
      requiredClaims: REQUIRED,
      currentDate,
    }));
  } catch (e) {
    if (e instanceof errors.JWTExpired) throw new ApprovalError('expired', 'the token has expired');
    if (e instanceof errors.JWKSNoMatchingKey) throw new ApprovalError('unknown_key', `signed by a key not among the trusted keys (kid ${header.kid})`);
    if (e instanceof errors.JWSSignatureVerificationFailed) throw new ApprovalError('signature', 'the signature does not verify');
    if (e instanceof errors.JWTClaimValidationFailed) {
      const reason = { aud: 'audience', iss: 'issuer', iat: 'not_yet_valid', nbf: 'not_yet_valid' }[e.claim] ?? 'malformed';
      throw new ApprovalError(reason, e.message);
    }
    throw new ApprovalError('malformed', e.message);
  }
  if (payload.tool !== tool) throw new ApprovalError('tool', `the token approves ${JSON.stringify(payload.tool)}, not ${JSON.stringify(tool)}`);
  const got = Buffer.from(argsSha256(args));
  const want = Buffer.from(String(payload.args_sha256));
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new ApprovalError('arguments', 'the arguments are not the ones approved (their RFC 8785 SHA-256 differs)');
  }
  if (seen && !(await seen.add(String(payload.jti), payload.exp))) {
    throw new ApprovalError('replayed', `the token ${payload.jti} was already used`);
  }
  return payload;
}
