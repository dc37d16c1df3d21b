// Issue 16: what a user reads when a request is wrong or a default applies — an id of the wrong
// kind or a name says which id is expected and where to list them (never a regex), a stopped
// instance shows no IP (its address is reused), and an instance started without ttl gets the
// engine's default lifetime.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEngine, type TestEngine } from './harness.js';
import { validationMessage } from '../src/http/validation-messages.js';
import { loadConfig } from '../src/config.js';

const REGEX = /\^|\[a-z0-9\]|\+\$|must match pattern/;

describe('validation messages (unit)', () => {
  const pattern = (p: string) => [{ instancePath: '/id', keyword: 'pattern', message: `must match pattern "${p}"`, params: { pattern: p } }];
  it('names the expected kind, the kind given, and where to list ids', () => {
    const m = validationMessage('params', pattern('^inst_[a-z0-9]+$'), { id: 'snap_abc' });
    assert.match(m, /^params\/id: expected an instance id \(inst_…\), got "snap_abc", which is a snapshot id/);
    assert.match(m, /faas instance list/);
    assert.doesNotMatch(m, REGEX);
  });
  it('a name is not an id', () => {
    const m = validationMessage('params', pattern('^snap_[a-z0-9]+$'), { id: 'my-base' });
    assert.match(m, /names are not ids/);
    assert.match(m, /faas snapshot list/);
    assert.doesNotMatch(m, REGEX);
  });
  it('a malformed id of the right kind, and a pattern that is not an id pattern', () => {
    assert.match(validationMessage('params', pattern('^br_[a-z0-9]+$'), { id: 'br_ABC' }), /lowercase letters and digits/);
    const other = validationMessage('body', [{ instancePath: '/cwd', keyword: 'pattern', params: { pattern: '^/' } }], { cwd: 'tmp' });
    assert.equal(other.startsWith('body/cwd '), true);
    assert.doesNotMatch(other, REGEX);
  });
  it('other keywords keep their own words', () => {
    assert.equal(validationMessage('body', [{ instancePath: '/vcpus', keyword: 'minimum', message: 'must be >= 1' }], {}), 'body/vcpus must be >= 1');
  });
});

describe('FAAS_INSTANCE_TTL', () => {
  it('defaults to 24 h; 0 turns it off; nonsense stops the engine with a message', () => {
    assert.equal(loadConfig({}).defaultInstanceTtl, 86_400);
    assert.equal(loadConfig({ FAAS_INSTANCE_TTL: '0' }).defaultInstanceTtl, null);
    assert.equal(loadConfig({ FAAS_INSTANCE_TTL: '3600' }).defaultInstanceTtl, 3600);
    assert.throws(() => loadConfig({ FAAS_INSTANCE_TTL: 'day' }), /FAAS_INSTANCE_TTL=day: expected an integer/);
  });
});

describe('friendly errors and defaults (engine)', () => {
  let t: TestEngine;
  let snapId: string;
  before(async () => {
    t = await startEngine({ env: { FAAS_INSTANCE_TTL: '7200' } });
    snapId = (await t.api('POST', '/v1/snapshots', {})).body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('an id of another kind or a name in a path: 400 that says what to use, details machine-readable', async () => {
    for (const [path, expect] of [
      ['/v1/instances/snap_abc', /expected an instance id \(inst_…\), got "snap_abc", which is a snapshot id/],
      ['/v1/instances/web-1', /names are not ids; find the id with `faas instance list`/],
      ['/v1/snapshots/inst_abc', /expected a snapshot id \(snap_…\), got "inst_abc", which is an instance id/],
      ['/v1/branches/snap_abc', /expected a branch id \(br_…\)/],
    ] as const) {
      const res = await t.api('GET', path);
      assert.equal(res.status, 400, path);
      assert.equal(res.body.error.code, 'invalid_request');
      assert.match(res.body.error.message, expect);
      assert.doesNotMatch(res.body.error.message, REGEX);
      assert.equal(res.body.error.details.in, 'params');
      assert.equal(res.body.error.details.errors[0].keyword, 'pattern');
    }
  });

  it('no ttl: the default lifetime, shown in the instance; ttl null: none', async () => {
    const dflt = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    assert.equal(dflt.status, 201, JSON.stringify(dflt.body));
    assert.equal(dflt.body.ttl, 7200);
    assert.equal(dflt.body.ttlAction, 'stop');
    const none = await t.api('POST', '/v1/instances', { snapshotId: snapId, ttl: null });
    assert.equal(none.body.ttl, null);
    const own = await t.api('POST', '/v1/instances', { snapshotId: snapId, ttl: 60 });
    assert.equal(own.body.ttl, 60);

    // A stopped instance shows no IP: the address is back in the pool and may be another's.
    assert.match(dflt.body.network.ip, /^\d+\.\d+\.\d+\.\d+$/);
    const stopped = await t.api('POST', `/v1/instances/${dflt.body.id}/stop`);
    assert.equal(stopped.body.state, 'stopped');
    assert.equal(stopped.body.network.ip, null);
    assert.equal(stopped.body.endpoints.agent, null);
    assert.equal((await t.api('GET', `/v1/instances/${dflt.body.id}`)).body.network.ip, null);
    for (const id of [dflt.body.id, none.body.id, own.body.id]) await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('instance logs: background output with start and exit lines, since/tail; owner-checked', async () => {
    const res = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const inst = res.body;
    const empty = await t.api('GET', `/v1/instances/${inst.id}/logs`);
    assert.equal(empty.status, 200, JSON.stringify(empty.body));
    const started = await t.api('POST', `/v1/instances/${inst.id}/processes`, { command: 'echo to-out; echo to-err >&2; exit 3' });
    await t.api('POST', `/v1/instances/${inst.id}/processes/${started.body.pid}/wait`);
    const logs = (await t.api('GET', `/v1/instances/${inst.id}/logs?since=${empty.body.nextSeq}`)).body;
    const mine = logs.entries.filter((e: { pid: number }) => e.pid === started.body.pid);
    assert.equal(mine[0].stream, 'agent');
    assert.match(mine[0].data, /^started: echo to-out/);
    assert.ok(mine.some((e: { stream: string; data: string }) => e.stream === 'stdout' && e.data === 'to-out\n'));
    assert.ok(mine.some((e: { stream: string; data: string }) => e.stream === 'stderr' && e.data === 'to-err\n'));
    assert.equal(mine[mine.length - 1].data, 'exited: exit code 3\n');
    assert.equal((await t.api('GET', `/v1/instances/${inst.id}/logs?tail=1`)).body.entries.length, 1);
    const after = (await t.api('GET', `/v1/instances/${inst.id}/logs?since=${logs.nextSeq}`)).body;
    assert.deepEqual(after.entries, []);
    assert.equal((await t.api('GET', `/v1/instances/${inst.id}/logs?tail=0`)).status, 400);

    // Another key, and no key: the same 404 / 401 as for any instance it does not own.
    const other = (await t.api('POST', '/v1/keys', { name: 'logs-other' })).body;
    const foreign = await fetch(`${t.url}/v1/instances/${inst.id}/logs`, { headers: { authorization: `Bearer ${other.secret}` } });
    assert.equal(foreign.status, 404);
    assert.equal((await fetch(`${t.url}/v1/instances/${inst.id}/logs`)).status, 401);

    await t.api('POST', `/v1/instances/${inst.id}/stop`);
    const stopped = await t.api('GET', `/v1/instances/${inst.id}/logs`);
    assert.deepEqual([stopped.status, stopped.body.error.code], [409, 'instance_not_ready']);
    await t.api('DELETE', `/v1/instances/${inst.id}`);
  });

  it('an instance killed for memory says so (out_of_memory), in its error and in the 409 of the call', async () => {
    const small = (await t.api('POST', '/v1/snapshots', { memory: 256 })).body;
    const inst = (await t.api('POST', '/v1/instances', { snapshotId: small.id })).body;
    assert.equal(inst.state, 'ready');
    const r = await t.api('POST', `/v1/instances/${inst.id}/exec`, { command: 'python3 -c "a = bytearray(900 * 1024 * 1024)"' });
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error.details.reason, 'out_of_memory');
    assert.match(r.body.error.message, /out of memory: the sandbox used all of its 256 MB and was killed; start it again with more memory/);
    const got = (await t.api('GET', `/v1/instances/${inst.id}`)).body;
    assert.equal(got.state, 'error');
    assert.match(got.error, /^out of memory:/);
    await t.api('DELETE', `/v1/instances/${inst.id}`);
    await t.api('DELETE', `/v1/snapshots/${small.id}?force=true`);
  });
});
