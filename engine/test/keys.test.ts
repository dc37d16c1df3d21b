// API keys, ownership and tokens, tried from the attacker's side: key B holds valid credentials
// of its own and goes after key A's instances and snapshots by id, through every kind of route,
// the event stream, the terminal and the idempotency cache. Everything it must get is the answer
// for an id that does not exist. Also: non-admin keys cannot manage keys, revoked keys and expired
// or tampered tokens are refused with stable codes, and the database holds no secret.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { startEngine, type ApiResponse, type TestEngine } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('keys and ownership', () => {
  let t: TestEngine;
  let a: { id: string; secret: string };
  let b: { id: string; secret: string };
  let snapA: string;
  let instA: string;

  const as = (secret: string) => ({ headers: { authorization: `Bearer ${secret}` } });
  const A = <T = any>(m: string, p: string, body?: unknown) => t.api<T>(m, p, body, as(a.secret));
  const B = <T = any>(m: string, p: string, body?: unknown) => t.api<T>(m, p, body, as(b.secret));
  /** The answer B gets must be the answer for an id that does not exist (no existence oracle). */
  const assertLikeMissing = (got: ApiResponse, missing: ApiResponse, realId: string, fakeId: string) => {
    assert.equal(got.status, missing.status, JSON.stringify(got.body));
    assert.equal(got.body.error.code, missing.body.error.code);
    assert.equal(got.body.error.message.replace(realId, 'ID'), missing.body.error.message.replace(fakeId, 'ID'));
  };

  before(async () => {
    t = await startEngine();
    const ka = await t.api('POST', '/v1/keys', { name: 'tenant-a' });
    const kb = await t.api('POST', '/v1/keys', { name: 'tenant-b' });
    assert.equal(ka.status, 201);
    a = ka.body;
    b = kb.body;
    const snap = await A('POST', '/v1/snapshots', {});
    assert.equal(snap.status, 201);
    snapA = snap.body.id;
    const inst = await A('POST', '/v1/instances', { snapshotId: snapA });
    assert.equal(inst.status, 201);
    instA = inst.body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('gives B the not-found answer for every route on A\'s instance', async () => {
    const fake = 'inst_zzzzzzzzzzzzzzzz';
    const routes: [string, string, unknown?][] = [
      ['GET', ''],
      ['DELETE', ''],
      ['POST', '/stop'],
      ['POST', '/pause'],
      ['GET', '/wait?state=ready&timeout=1000'],
      ['GET', '/metrics'],
      ['PUT', '/metadata', { stolen: 'yes' }],
      ['POST', '/exec', { command: 'id' }],
      ['POST', '/exec/stream', { command: 'id' }],
      ['POST', '/snapshot', {}],
      ['POST', '/branch', { count: 1 }],
      ['GET', '/files/read?path=/etc/hostname'],
      ['POST', '/files/mkdir', { path: '/tmp/x' }],
      ['GET', '/processes'],
    ];
    for (const [method, suffix, body] of routes) {
      const missing = await B(method, `/v1/instances/${fake}${suffix}`, body);
      const got = await B(method, `/v1/instances/${instA}${suffix}`, body);
      assertLikeMissing(got, missing, instA, fake);
      assert.equal(got.status, 404, `${method} ${suffix}`);
    }
    // Still there and untouched for its owner.
    const mine = await A('GET', `/v1/instances/${instA}`);
    assert.equal(mine.body.state, 'ready');
    assert.deepEqual(mine.body.metadata, {});
  });

  it('gives B the not-found answer for A\'s snapshot, including as a reference in a body', async () => {
    const fake = 'snap_zzzzzzzzzzzzzzzz';
    for (const [method, suffix, body] of [['GET', ''], ['DELETE', '?force=true'], ['GET', '/pool'], ['POST', '/exec', { command: 'true' }]] as [string, string, unknown?][]) {
      assertLikeMissing(await B(method, `/v1/snapshots/${snapA}${suffix}`, body), await B(method, `/v1/snapshots/${fake}${suffix}`, body), snapA, fake);
    }
    assertLikeMissing(await B('POST', '/v1/instances', { snapshotId: snapA }), await B('POST', '/v1/instances', { snapshotId: fake }), snapA, fake);
    assert.equal((await A('GET', `/v1/snapshots/${snapA}`)).status, 200);
  });

  it('filters lists by key; admin keys see everything', async () => {
    const ids = (r: ApiResponse) => r.body.data.map((x: { id: string }) => x.id);
    assert.ok(ids(await A('GET', '/v1/instances')).includes(instA));
    assert.ok(!ids(await B('GET', '/v1/instances')).includes(instA));
    assert.ok(!ids(await B('GET', `/v1/instances?snapshotId=${snapA}`)).includes(instA));
    assert.ok(ids(await t.api('GET', '/v1/instances')).includes(instA));
    assert.ok(!ids(await B('GET', '/v1/snapshots')).includes(snapA));
    assert.ok(ids(await t.api('GET', '/v1/snapshots')).includes(snapA));
    // The default image is shared: readable, but not writable, by a non-admin key.
    const images = await B('GET', '/v1/images');
    assert.equal(images.body.data.length, 1);
    const img = images.body.data[0].id;
    assert.equal((await B('GET', `/v1/images/${img}`)).status, 200);
    const write = await B('PUT', `/v1/images/${img}/metadata`, { mine: 'now' });
    assert.equal(write.status, 403);
    assert.equal(write.body.error.code, 'forbidden');
  });

  it('makes branch children and snapshots the caller\'s own', async () => {
    const br = await A('POST', `/v1/instances/${instA}/branch`, { count: 1 });
    assert.equal(br.status, 201);
    const child = br.body.instances[0].id;
    assert.equal((await A('GET', `/v1/instances/${child}`)).status, 200);
    assert.equal((await A('GET', `/v1/snapshots/${br.body.snapshot.id}`)).status, 200);
    assert.equal((await B('GET', `/v1/instances/${child}`)).status, 404);
    assert.equal((await B('GET', `/v1/snapshots/${br.body.snapshot.id}`)).status, 404);
    assert.equal((await A('DELETE', `/v1/instances/${child}`)).status, 204);
  });

  it('does not stream A\'s events to B', async () => {
    const read = async (secret: string, query = '') => {
      const abort = new AbortController();
      const res = await fetch(`${t.url}/v1/events${query}`, { headers: { authorization: `Bearer ${secret}`, 'last-event-id': '0' }, signal: abort.signal });
      assert.equal(res.status, 200);
      let text = '';
      const dec = new TextDecoder();
      const stop = setTimeout(() => abort.abort(), 1500);
      try {
        for await (const chunk of res.body as any) text += dec.decode(chunk, { stream: true });
      } catch {
        /* aborted */
      } finally {
        clearTimeout(stop);
      }
      return text;
    };
    const own = await read(a.secret);
    assert.match(own, new RegExp(instA)); // the replay holds A's events…
    const other = await read(b.secret);
    assert.doesNotMatch(other, new RegExp(instA)); // …and B sees none of them
    assert.doesNotMatch(other, new RegExp(snapA));
    assert.doesNotMatch(own, /"owner"/);
    assert.doesNotMatch(await read(b.secret, `?resourceId=${instA}`), /event: /);
  });

  it('does not open A\'s terminal for B, with a key or a token', async () => {
    const tokenB = (await B('POST', '/v1/tokens', { expiresIn: 60 })).body.token;
    for (const protocols of [[`bearer.${b.secret}`], [`bearer.${tokenB}`]]) {
      const ws = new WebSocket(`${t.url.replace('http', 'ws')}/v1/instances/${instA}/terminal?command=id`, protocols);
      const status = await new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => undefined);
      });
      ws.terminate();
      assert.equal(status, 404);
    }
    // A's token opens it.
    const tokenA = (await A('POST', '/v1/tokens', { expiresIn: 60 })).body.token;
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/v1/instances/${instA}/terminal?command=${encodeURIComponent('exit 4')}`, ['faas-terminal', `bearer.${tokenA}`]);
    const exit = await new Promise<any>((resolve, reject) => {
      let msg: any = null;
      ws.on('message', (data, binary) => {
        if (!binary) msg = JSON.parse(data.toString());
      });
      ws.on('close', () => resolve(msg));
      ws.on('error', reject);
    });
    assert.equal(exit?.exitCode, 4);
  });

  it('scopes Idempotency-Keys per key: B never gets A\'s stored answer', async () => {
    const headers = (secret: string) => ({ headers: { authorization: `Bearer ${secret}`, 'idempotency-key': 'shared-key-1' } });
    const first = await t.api('POST', '/v1/tokens', { expiresIn: 60 }, headers(a.secret));
    const again = await t.api('POST', '/v1/tokens', { expiresIn: 60 }, headers(a.secret));
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.token, first.body.token);
    const other = await t.api('POST', '/v1/tokens', { expiresIn: 60 }, headers(b.secret));
    assert.equal(other.status, 201);
    assert.equal(other.headers.get('idempotent-replayed'), null);
    assert.equal(other.body.keyId, b.id);
  });

  it('lets only admin keys (not their tokens) manage keys and read engine metrics', async () => {
    for (const [m, p, body] of [['POST', '/v1/keys', { name: 'escalate', admin: true }], ['GET', '/v1/keys'], ['DELETE', `/v1/keys/${a.id}`], ['GET', '/v1/metrics']] as [string, string, unknown?][]) {
      const r = await B(m, p, body);
      assert.equal(r.status, 403, `${m} ${p}`);
      assert.equal(r.body.error.code, 'forbidden');
    }
    const adminToken = (await t.api('POST', '/v1/tokens', {})).body.token;
    const viaToken = await t.api('POST', '/v1/keys', { name: 'x' }, as(adminToken));
    assert.equal(viaToken.status, 403);
    assert.equal(viaToken.body.error.code, 'forbidden');
    // Nor can a token mint another token (a leaked token dies at its expiry).
    const chained = await t.api('POST', '/v1/tokens', {}, as(adminToken));
    assert.equal(chained.status, 403);
    // …but it acts as its admin key otherwise.
    assert.equal((await t.api('GET', `/v1/instances/${instA}`, undefined, as(adminToken))).status, 200);
    const list = await t.api('GET', '/v1/keys');
    const names = list.body.data.map((k: { name: string }) => k.name);
    assert.ok(names.includes('tenant-a') && names.includes('bootstrap'));
    assert.ok(list.body.data.every((k: object) => !('secret' in k)));
  });

  it('refuses expired and tampered tokens with stable codes', async () => {
    const minted = await A('POST', '/v1/tokens', { expiresIn: 2 });
    assert.ok(Date.parse(minted.body.expiresAt) - Date.now() > 1000, 'a token lives at least expiresIn seconds');
    assert.equal(minted.status, 201);
    const token: string = minted.body.token;
    assert.equal((await t.api('GET', `/v1/instances/${instA}`, undefined, as(token))).status, 200);
    // A token acts as its key: same owner.
    assert.equal((await t.api('GET', `/v1/instances/${instA}`, undefined, as((await B('POST', '/v1/tokens', {})).body.token))).status, 404);

    const parts = token.split('.');
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    const tampered = [
      [...parts.slice(0, 4), flip(parts[4])].join('.'), // signature
      [parts[0], b.id, ...parts.slice(2)].join('.'), // another key id
      [parts[0], parts[1], String(Number(parts[2]) + 3600), ...parts.slice(3)].join('.'), // later expiry
    ];
    for (const bad of tampered) {
      const r = await t.api('GET', '/v1/instances', undefined, as(bad));
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'unauthorized');
    }
    await sleep(Math.max(0, Date.parse(minted.body.expiresAt) - Date.now()) + 200);
    const expired = await t.api('GET', '/v1/instances', undefined, as(token));
    assert.equal(expired.status, 401);
    assert.equal(expired.body.error.code, 'token_expired');
    assert.equal((await A('POST', '/v1/tokens', { expiresIn: 0 })).status, 400);
    assert.equal((await A('POST', '/v1/tokens', { expiresIn: 86_401 })).status, 400);
  });

  it('revokes a key and every token minted from it; the last admin key stays', async () => {
    const c = (await t.api('POST', '/v1/keys', { name: 'short-lived' })).body;
    const token = (await t.api('POST', '/v1/tokens', {}, as(c.secret))).body.token;
    assert.equal((await t.api('GET', '/v1/instances', undefined, as(c.secret))).status, 200);
    assert.equal((await t.api('DELETE', `/v1/keys/${c.id}`)).status, 204);
    for (const cred of [c.secret, token]) {
      const r = await t.api('GET', '/v1/instances', undefined, as(cred));
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'key_revoked');
    }
    assert.equal((await t.api('DELETE', `/v1/keys/${c.id}`)).status, 404);
    const wrong = await t.api('GET', '/v1/instances', undefined, as('faas_not-a-key'));
    assert.equal(wrong.body.error.code, 'unauthorized');
    const keys = (await t.api('GET', '/v1/keys')).body.data as { id: string; name: string }[];
    const bootstrap = keys.find((k) => k.name === 'bootstrap')!;
    const last = await t.api('DELETE', `/v1/keys/${bootstrap.id}`);
    assert.equal(last.status, 409);
    assert.equal(last.body.error.code, 'conflict');
  });

  it('keeps no secret in the database, only its SHA-256; the token secret is 0600', async () => {
    const dbPath = join(t.config.stateDir, 'faas.db');
    const db = new Database(dbPath, { readonly: true });
    try {
      const rows = db.prepare('SELECT id, secret_hash FROM api_keys').all() as { id: string; secret_hash: string }[];
      const row = rows.find((r) => r.id === a.id)!;
      assert.equal(row.secret_hash, createHash('sha256').update(a.secret).digest('hex'));
      const bootstrap = createHash('sha256').update(t.key).digest('hex');
      assert.ok(rows.some((r) => r.secret_hash === bootstrap));
    } finally {
      db.close();
    }
    for (const file of ['faas.db', 'faas.db-wal']) {
      let bytes = '';
      try {
        bytes = readFileSync(join(t.config.stateDir, file), 'latin1');
      } catch {
        continue;
      }
      for (const secret of [a.secret, b.secret, t.key]) assert.ok(!bytes.includes(secret), `${file} holds a secret`);
    }
    const { statSync } = await import('node:fs');
    assert.equal(statSync(join(t.config.stateDir, 'token-secret')).mode & 0o777, 0o600);
  });
});

describe('keys on an upgraded install', () => {
  it('makes the credentials.json key the first admin key and gives it the records made before keys', async () => {
    let t = await startEngine();
    const stateDir = t.config.stateDir;
    const { purge } = await import('./harness.js');
    try {
      // clean: its namespaces and firewall chains go too (nothing here needs them across the restart).
      await t.engine.shutdown({ stopInstances: true, clean: true });
      // What an engine from before keys leaves: no key rows, records without an owner.
      const db = new Database(join(stateDir, 'faas.db'));
      db.exec("DELETE FROM api_keys; INSERT INTO events (id, type, resource_id, data, created_at) VALUES ('evt_legacy', 'instance.stopped', 'inst_legacy', '{}', '2025-01-01T00:00:00.000Z')");
      db.close();
      t = await startEngine({ stateDir });
      const keys = (await t.api('GET', '/v1/keys')).body.data;
      assert.equal(keys.length, 1);
      assert.equal(keys[0].name, 'bootstrap');
      assert.equal(keys[0].admin, true);
      const check = new Database(join(stateDir, 'faas.db'), { readonly: true });
      const owner = (check.prepare("SELECT owner FROM events WHERE id = 'evt_legacy'").get() as { owner: string }).owner;
      check.close();
      assert.equal(owner, keys[0].id);
      // A restart keeps the same key (no duplicate rows).
      await t.engine.shutdown({ stopInstances: true, clean: true });
      t = await startEngine({ stateDir });
      assert.deepEqual((await t.api('GET', '/v1/keys')).body.data.map((k: { id: string }) => k.id), [keys[0].id]);
    } finally {
      await t.engine.shutdown({ stopInstances: true, clean: true }).catch(() => undefined);
      purge(stateDir);
    }
  });
});
