// client.keys / client.tokens and session tokens against a real engine: a non-admin key sees
// only its own records, session tokens are minted from the key and refreshed before expiry and
// once on `401 token_expired`, and revoked keys and expired tokens raise their classes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FaaSClient, ForbiddenError, KeyRevokedError, SnapshotNotFoundError, TokenExpiredError, UnauthorizedError, type CreatedKey } from '../src/index.js';
import { requireEngine, sharedSnapshotId, testClient } from './helpers/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fetch that records the path and the bearer of every request. */
function recordingFetch(log: { path: string; bearer: string }[]): typeof fetch {
  return (input, init) => {
    const url = new URL(String(input));
    const headers = (init?.headers ?? {}) as Record<string, string>;
    log.push({ path: `${init?.method ?? 'GET'} ${url.pathname}`, bearer: String(headers.Authorization ?? '').slice(7) });
    return fetch(input, init);
  };
}

describe('keys and tokens', () => {
  const admin = testClient();
  let key: CreatedKey;

  before(async () => {
    key = await admin.keys.create({ name: 'sdk-ts-tenant' });
  });
  after(async () => {
    await admin.keys.revoke(key.id).catch(() => undefined);
  });

  it('creates and lists keys; the secret is shown once', async () => {
    assert.match(key.id, /^key_/);
    assert.match(key.secret, /^faas_/);
    assert.equal(key.admin, false);
    const listed = (await admin.keys.list()).find((k) => k.id === key.id);
    assert.ok(listed);
    assert.equal('secret' in listed, false);
  });

  it('scopes a non-admin key to its own records and refuses it key management', async () => {
    const tenant = new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: key.secret });
    await assert.rejects(tenant.snapshots.get(sharedSnapshotId()), SnapshotNotFoundError);
    assert.equal((await tenant.snapshots.list()).some((s) => s.id === sharedSnapshotId()), false);
    await assert.rejects(tenant.keys.create({ name: 'escalate', admin: true }), ForbiddenError);
    await assert.rejects(tenant.keys.list().toArray(), ForbiddenError);
  });

  it('mints session tokens from the key and refreshes them before they expire', async () => {
    const log: { path: string; bearer: string }[] = [];
    const client = new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: key.secret, useSessionTokens: true, tokenExpiresIn: 2, fetch: recordingFetch(log) });
    await client.instances.list();
    await client.instances.list();
    const mints = () => log.filter((r) => r.path === 'POST /v1/tokens');
    assert.equal(mints().length, 1);
    assert.equal(mints()[0].bearer, key.secret); // minted with the key…
    const calls = log.filter((r) => r.path === 'GET /v1/instances');
    assert.ok(calls.every((r) => r.bearer.startsWith('faastok.') && r.bearer !== key.secret)); // …which is not sent otherwise
    // Past the refresh point (80 % of the token's life) the next call mints first…
    const refreshAt = (client.http.session as unknown as { current: { refreshAt: number } }).current.refreshAt;
    await sleep(Math.max(0, refreshAt - Date.now()) + 100);
    await client.instances.list();
    assert.equal(mints().length, 2);
    const last = log.filter((r) => r.path === 'GET /v1/instances').at(-1)!;
    assert.notEqual(last.bearer, calls[0].bearer);
    // …while the old token still works: it was refreshed before it expired.
    await new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: calls[0].bearer, maxRetries: 0 }).instances.list().toArray();
  });

  it('retries once with a fresh token on 401 token_expired', async () => {
    const log: { path: string; bearer: string }[] = [];
    const client = new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: key.secret, useSessionTokens: true, fetch: recordingFetch(log) });
    // A token that has already expired but that the client believes is fresh (clock skew).
    const minted = await client.tokens.create({ expiresIn: 1 });
    const stale = minted.token;
    await sleep(Math.max(0, Date.parse(minted.expiresAt) - Date.now()) + 300);
    (client.http.session as unknown as { current: unknown }).current = { token: stale, refreshAt: Number.POSITIVE_INFINITY };
    log.length = 0;
    await client.instances.list();
    assert.deepEqual(log.map((r) => r.path), ['GET /v1/instances', 'POST /v1/tokens', 'GET /v1/instances']);
    assert.equal(log[0].bearer, stale);
    assert.equal(log[1].bearer, key.secret);
    assert.ok(log[2].bearer.startsWith('faastok.') && log[2].bearer !== stale);
  });

  it('raises TokenExpiredError for an expired token used as the key, and ForbiddenError when a token mints', async () => {
    const tenant = new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: key.secret });
    const token = await tenant.tokens.create({ expiresIn: 2 });
    assert.equal(token.keyId, key.id);
    const viaToken = new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: token.token, maxRetries: 0 });
    await viaToken.instances.list();
    await assert.rejects(viaToken.tokens.create(), ForbiddenError);
    await sleep(Math.max(0, Date.parse(token.expiresAt) - Date.now()) + 300);
    const err = await viaToken.instances.list().then(() => null, (e: unknown) => e);
    assert.ok(err instanceof TokenExpiredError && err instanceof UnauthorizedError);
    assert.equal(err.code, 'token_expired');
  });

  it('raises KeyRevokedError once the key is revoked, for the key and a session client', async () => {
    const victim = await admin.keys.create({ name: 'sdk-ts-revoked' });
    const session = new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: victim.secret, useSessionTokens: true });
    await session.instances.list();
    await admin.keys.revoke(victim.id);
    await assert.rejects(session.instances.list().toArray(), KeyRevokedError);
    await assert.rejects(new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: victim.secret }).instances.list().toArray(), KeyRevokedError);
  });
});
