// Every bad input gets the one envelope with a stable code and the right status, and nothing
// already stored is lost or changed by a failed request.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEngine, type TestEngine } from './harness.js';

describe('bad input', () => {
  let t: TestEngine;
  let snapId: string;
  let instId: string;

  const expectError = (res: { status: number; body: any; headers: Headers }, status: number, code: string) => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.error.code, code);
    assert.equal(typeof res.body.error.message, 'string');
    assert.ok(res.body.error.message.length > 0);
    assert.ok('details' in res.body.error);
    assert.match(res.body.error.requestId, /^req_/);
    assert.equal(res.headers.get('x-request-id'), res.body.error.requestId);
  };

  before(async () => {
    t = await startEngine({ env: { FAAS_MAX_INSTANCES: '2' } });
    snapId = (await t.api('POST', '/v1/snapshots', { metadata: { keep: 'me' } })).body.id;
    instId = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('401 unauthorized without a key or with a wrong one; health needs none', async () => {
    const variants: Record<string, string>[] = [{}, { authorization: 'Bearer nope' }, { authorization: 'Basic eDp5' }];
    for (const headers of variants) {
      const res = await fetch(`${t.url}/v1/snapshots`, { headers });
      const body = await res.json();
      assert.equal(res.status, 401);
      assert.equal(body.error.code, 'unauthorized');
    }
    assert.equal((await fetch(`${t.url}/v1/health`)).status, 200);
    assert.equal((await fetch(`${t.url}/v1/openapi.json`)).status, 401);
  });

  it('404 with the resource-specific code for unknown ids', async () => {
    expectError(await t.api('GET', '/v1/snapshots/snap_doesnotexist'), 404, 'snapshot_not_found');
    expectError(await t.api('GET', '/v1/instances/inst_doesnotexist'), 404, 'instance_not_found');
    expectError(await t.api('GET', '/v1/images/img_doesnotexist'), 404, 'image_not_found');
    expectError(await t.api('POST', '/v1/instances', { snapshotId: 'snap_doesnotexist' }), 404, 'snapshot_not_found');
    expectError(await t.api('POST', '/v1/snapshots', { imageId: 'img_doesnotexist' }), 404, 'image_not_found');
    expectError(await t.api('POST', '/v1/instances/inst_doesnotexist/exec', { command: 'true' }), 404, 'instance_not_found');
    expectError(await t.api('POST', '/v1/instances/inst_doesnotexist/branch', { count: 2 }), 404, 'instance_not_found');
    expectError(await t.api('GET', '/v1/nothing-here'), 404, 'not_found');
  });

  it('400 invalid_request for malformed bodies, schema violations and bad parameters', async () => {
    expectError(await t.api('POST', '/v1/snapshots', '{"vcpus": '), 400, 'invalid_request');
    expectError(await t.api('POST', '/v1/snapshots', { vcpus: 'two' }), 400, 'invalid_request');
    expectError(await t.api('POST', '/v1/snapshots', { unknownField: 1 }), 400, 'invalid_request');
    expectError(await t.api('POST', '/v1/instances', {}), 400, 'invalid_request');
    expectError(await t.api('POST', `/v1/instances/${instId}/exec`, {}), 400, 'invalid_request');
    expectError(await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'true', argv: ['true'] }), 400, 'invalid_request');
    expectError(await t.api('POST', `/v1/instances/${instId}/branch`, { count: 0 }), 400, 'invalid_request');
    expectError(await t.api('POST', `/v1/instances/${instId}/branch`, { count: 1000 }), 400, 'invalid_request');
    expectError(await t.api('GET', '/v1/snapshots?limit=0'), 400, 'invalid_request');
    expectError(await t.api('GET', '/v1/snapshots?cursor=garbage'), 400, 'invalid_request');
    expectError(await t.api('GET', '/v1/instances?state=flying'), 400, 'invalid_request');
    expectError(await t.api('GET', '/v1/instances/not-an-id'), 400, 'invalid_request');
    expectError(await t.api('PUT', `/v1/snapshots/${snapId}/metadata`, { nested: { no: 1 } }), 400, 'invalid_request');
  });

  it('409 instance_not_ready for the wrong state, conflict for dependents', async () => {
    await t.api('POST', `/v1/instances/${instId}/pause`);
    expectError(await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'true' }), 409, 'instance_not_ready');
    expectError(await t.api('POST', `/v1/instances/${instId}/pause`), 409, 'instance_not_ready');
    await t.api('POST', `/v1/instances/${instId}/resume`);
    expectError(await t.api('POST', `/v1/instances/${instId}/resume`), 409, 'instance_not_ready');

    const del = await t.api('DELETE', `/v1/snapshots/${snapId}`);
    expectError(del, 409, 'conflict');
    assert.deepEqual(del.body.error.details.instances, [instId]);
    assert.equal((await t.api('GET', `/v1/snapshots/${snapId}`)).status, 200, 'the snapshot is still there');
  });

  it('422 resource_limit when asking for more than the machine has; 429 when too many run', async () => {
    expectError(await t.api('POST', '/v1/snapshots', { vcpus: 64 }), 422, 'resource_limit');
    expectError(await t.api('POST', '/v1/snapshots', { memory: 262144 }), 422, 'resource_limit');
    const second = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    assert.equal(second.status, 201);
    const third = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    expectError(third, 429, 'resource_limit');
    assert.ok(Number(third.headers.get('retry-after')) >= 1);
    expectError(await t.api('POST', `/v1/instances/${instId}/branch`, { count: 4 }), 429, 'resource_limit');
    await t.api('POST', `/v1/instances/${second.body.id}/stop`);
  });

  it('replays an Idempotency-Key instead of repeating the work, and refuses it for another body', async () => {
    const key = { 'idempotency-key': 'test-key-1' };
    const first = await t.api('POST', `/v1/instances/${instId}/snapshot`, { name: 'once' }, { headers: key });
    assert.equal(first.status, 201);
    const again = await t.api('POST', `/v1/instances/${instId}/snapshot`, { name: 'once' }, { headers: key });
    assert.equal(again.status, 201);
    assert.equal(again.body.id, first.body.id, 'the same snapshot, not a second one');
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const other = await t.api('POST', `/v1/instances/${instId}/snapshot`, { name: 'different' }, { headers: key });
    expectError(other, 409, 'conflict');
    const all = await t.api('GET', `/v1/snapshots?parentId=${snapId}`);
    assert.equal(all.body.data.filter((s: any) => s.name === 'once').length, 1);
  });

  it('snapshot names are unique; idempotency conflicts say why', async () => {
    const named = await t.api('POST', `/v1/instances/${instId}/snapshot`, { name: 'unique-name' });
    assert.equal(named.status, 201);
    expectError(await t.api('POST', `/v1/instances/${instId}/snapshot`, { name: 'unique-name' }), 409, 'conflict');
    expectError(await t.api('POST', '/v1/snapshots', { name: 'unique-name' }), 409, 'conflict');

    const key = { 'idempotency-key': 'stream-key' };
    const first = await fetch(`${t.url}/v1/instances/${instId}/exec/stream`, {
      method: 'POST', headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json', ...key }, body: JSON.stringify({ command: 'echo once' }),
    });
    assert.match(await first.text(), /once/);
    const again = await t.api('POST', `/v1/instances/${instId}/exec/stream`, { command: 'echo once' }, { headers: key });
    expectError(again, 409, 'conflict');
    assert.equal(again.body.error.details.reason, 'stream_not_replayable');

    const slowKey = { 'idempotency-key': 'slow-key' };
    const slow = t.api('POST', `/v1/instances/${instId}/exec`, { command: 'sleep 1' }, { headers: slowKey });
    await new Promise((r) => setTimeout(r, 200));
    const busy = await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'sleep 1' }, { headers: slowKey });
    expectError(busy, 409, 'conflict');
    assert.equal(busy.body.error.details.reason, 'in_progress');
    assert.equal(busy.headers.get('retry-after'), '1');
    assert.equal((await slow).status, 200);
    const replay = await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'sleep 1' }, { headers: slowKey });
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  });

  it('lost nothing: the records from before are intact after all the failures', async () => {
    const snap = await t.api('GET', `/v1/snapshots/${snapId}`);
    assert.deepEqual(snap.body.metadata, { keep: 'me' });
    const inst = await t.api('GET', `/v1/instances/${instId}`);
    assert.equal(inst.body.state, 'ready');
    const r = await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'echo alive' });
    assert.equal(r.body.stdout, 'alive\n');
    const fresh = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    assert.equal(fresh.status, 201, 'the snapshot still restores (checksum verified)');
    await t.api('POST', `/v1/instances/${fresh.body.id}/stop`);
  });
});
