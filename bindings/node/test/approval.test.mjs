// The shared approval vectors (tests/vectors/approval/approval.json: tokens issued by the Rust core)
// checked with jose and canonicalize, and every refusal of approval.mjs's verify.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT, exportJWK, calculateJwkThumbprint, jwtVerify, createLocalJWKSet } from 'jose';
import canonicalize from 'canonicalize';
import { verify, canonicalArgs, argsSha256, jwkFromVerifier, MemorySeen, ApprovalError, TOKEN_TYPE } from '../approval.mjs';

const V = JSON.parse(readFileSync(new URL('../../../tests/vectors/approval/approval.json', import.meta.url), 'utf8'));
const raw = (c) => (c.args_text !== undefined ? c.args_text : Buffer.from(c.args_hex, 'hex'));

async function reason(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ApprovalError, `not an ApprovalError: ${e}`);
    return e.reason;
  }
  return 'accepted';
}

test('the vectors are there', () => {
  assert.ok(V.cases.length >= 8 && V.unrepresentable.length >= 5);
});

for (const c of V.cases) {
  test(`vector ${c.name}: the token verifies and the hash is the same`, async () => {
    // canonicalize on JSON.parse, by itself, gives the core's canonical form.
    assert.equal(canonicalize(JSON.parse(c.args_text)), c.canonical);
    assert.equal(canonicalArgs(c.args_text), c.canonical);
    assert.equal(argsSha256(c.args_text), c.args_sha256);
    assert.equal(argsSha256(Buffer.from(c.args_text)), c.args_sha256);
    // jose alone, with the JWK Set.
    const { payload, protectedHeader } = await jwtVerify(c.token, createLocalJWKSet(V.jwks), {
      algorithms: ['EdDSA'], audience: V.audience, issuer: V.issuer, typ: TOKEN_TYPE,
    });
    assert.equal(protectedHeader.kid, V.kid);
    assert.equal(payload.args_sha256, c.args_sha256);
    assert.equal(payload.tool, c.tool);
    for (const keys of [V.jwks, V.verifier, [V.jwks.keys[0]]]) {
      const claims = await verify(c.token, c.tool, c.args_text, { keys, audience: V.audience, seen: new MemorySeen() });
      assert.equal(claims.call_id, c.call_id);
      assert.equal(claims.action, c.action);
      assert.equal(claims.audit_seq ?? null, c.audit_seq);
    }
  });
}

for (const c of V.unrepresentable) {
  test(`vector ${c.name}: refused`, async () => {
    assert.throws(() => canonicalArgs(raw(c)), (e) => e instanceof ApprovalError && e.reason === 'unrepresentable');
    const t = V.cases[0];
    assert.equal(await reason(verify(t.token, t.tool, raw(c), { keys: V.jwks, audience: V.audience, seen: null })), 'unrepresentable');
  });
}

test("the verifier string's kid is the RFC 7638 thumbprint", async () => {
  const jwk = await jwkFromVerifier(V.verifier);
  assert.deepEqual(jwk, V.jwks.keys[0]);
  assert.equal(await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }), V.kid);
});

test('what was not approved is refused', async () => {
  const c = V.cases[1];
  const opts = { keys: V.jwks, audience: V.audience, seen: null };
  assert.equal(await reason(verify(c.token, 'delete', c.args_text, opts)), 'tool');
  assert.equal(await reason(verify(c.token, c.tool, c.args_text.replace('1', '3'), opts)), 'arguments');
  assert.equal(await reason(verify(c.token, c.tool, { b: [1, 2], a: { z: null, y: false } }, opts)), 'arguments');
  assert.equal(await reason(verify(c.token, c.tool, { b: [1, 2], a: { z: null, y: true } }, opts)), 'accepted');
  assert.equal(await reason(verify(c.token, c.tool, '{"a": 1, "a": 1}', opts)), 'unrepresentable');
  assert.equal(await reason(verify(c.token, c.tool, c.args_text, { ...opts, audience: 'other' })), 'audience');
  assert.equal(await reason(verify(c.token, c.tool, c.args_text, { ...opts, issuer: 'someone' })), 'issuer');
  const after = new Date((V.exp + 60) * 1000);
  assert.equal(await reason(verify(c.token, c.tool, c.args_text, { ...opts, currentDate: after })), 'expired');
  assert.equal(await reason(verify(c.token, c.tool, c.args_text, { ...opts, currentDate: after, leeway: 120 })), 'accepted');
  const { publicKey } = generateKeyPairSync('ed25519');
  const other = await exportJWK(publicKey);
  other.kid = await calculateJwkThumbprint(other);
  assert.equal(await reason(verify(c.token, c.tool, c.args_text, { ...opts, keys: { keys: [other] } })), 'unknown_key');
  assert.equal(await reason(verify(c.token, c.tool, c.args_text, { ...opts, keys: { keys: [{ ...other, kid: V.kid }] } })), 'signature');
  const seen = new MemorySeen();
  assert.equal(await reason(verify(c.token, c.tool, c.args_text, { ...opts, seen })), 'accepted');
  assert.equal(await reason(verify(c.token, c.tool, c.args_text, { ...opts, seen })), 'replayed');
  assert.equal(await reason(verify('a.b', c.tool, c.args_text, opts)), 'malformed');
});

test('a plain JWT is not an approval', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = await exportJWK(publicKey);
  jwk.kid = 'k';
  const now = Math.floor(Date.now() / 1000);
  const claims = { jti: 'j', sid: 's', call_id: 1, tool: 't', args_sha256: argsSha256({}) };
  const sign = (typ) => new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: 'k', ...(typ && { typ }) })
    .setIssuer('microloop').setAudience('a').setIssuedAt(now).setExpirationTime(now + 60).sign(privateKey);
  assert.equal(await reason(verify(await sign(undefined), 't', {}, { keys: { keys: [jwk] }, audience: 'a', seen: null })), 'type');
  assert.equal(await reason(verify(await sign(TOKEN_TYPE), 't', {}, { keys: { keys: [jwk] }, audience: 'a', seen: null })), 'accepted');
});

test('a session under [approval]: the core signs calls that run, jose accepts them', async () => {
  const { createRequire } = await import('node:module');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { Session } = createRequire(import.meta.url)('../index.js');
  const dir = mkdtempSync(join(tmpdir(), 'ml-approval-'));
  writeFileSync(join(dir, 'approval.key'), `${V.signer_key}\n`, { mode: 0o600 });
  const policy = JSON.stringify({ loops: { max_identical: 2 }, approval: { key_file: join(dir, 'approval.key'), audience: 'tools.node' } });
  const s = new Session(policy);
  try {
    const seen = new MemorySeen();
    let blocked = false;
    for (let i = 0; i < 6 && !blocked; i++) {
      const v = s.check('search', { q: 'café', n: 1.0 });
      if (!v.mayRun) {
        assert.equal(v.approval, null);
        blocked = true;
        break;
      }
      const claims = await verify(v.approval, 'search', '{"n": 1, "q": "caf\\u00e9"}', { keys: V.jwks, audience: 'tools.node', seen });
      assert.equal(claims.call_id, v.callId);
      s.record(v.callId, 'same');
    }
    assert.ok(blocked);
    const v = s.check('lookup', '{"id": 9007199254740993}');
    assert.ok(v.mayRun && v.approval === null && /RFC 8785/.test(v.approvalError));
  } finally {
    s.close();
  }
});
