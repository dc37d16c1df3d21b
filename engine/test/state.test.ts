// StateOperations against real sandboxes: timelines (order, inherited marks across a branch),
// rollback in place (files, a running counter, past the first checkpoint, after an engine
// restart), restart fromLatestCheckpoint, the engine-native clone (shared image files that outlive
// either side), and other keys refused on every new route.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { purge, sh, startEngine, type TestEngine } from './harness.js';

describe('state: checkpoints, timeline, rollback, clone', () => {
  let t: TestEngine;
  let stateDir: string;
  let root: string;

  const exec = async (id: string, command: string) => {
    const r = await t.api('POST', `/v1/instances/${id}/exec`, sh(command));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { exitCode: number; stdout: string };
  };
  const start = async (snapshotId = root) => {
    const r = await t.api('POST', '/v1/instances', { snapshotId });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  };
  const checkpoint = async (id: string, name?: string) => {
    const r = await t.api('POST', `/v1/instances/${id}/snapshot`, name ? { name } : {});
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  };
  const timeline = async (id: string) => {
    const r = await t.api('GET', `/v1/instances/${id}/timeline`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { head: string | null; data: { snapshotId: string; name: string | null; inherited: boolean; instanceId: string | null }[] };
  };
  const rollback = (id: string, steps?: number) => t.api('POST', `/v1/instances/${id}/rollback`, steps === undefined ? {} : { steps });

  before(async () => {
    stateDir = mkdtempSync('/tmp/faas-test-state-');
    t = await startEngine({ stateDir, env: { FAAS_WARM_POOL: '1' } });
    const s = await t.api('POST', '/v1/snapshots', {});
    assert.equal(s.status, 201, JSON.stringify(s.body));
    root = s.body.id;
  });
  after(async () => {
    await t?.close();
    purge(stateDir);
  });

  it('lists an instance\'s checkpoints oldest first, inherited ones marked, across a branch', async () => {
    const a = await start();
    const a1 = await checkpoint(a, 'tl-a1');
    const a2 = await checkpoint(a);
    const br = await t.api('POST', `/v1/instances/${a}/branch`, { count: 1 });
    assert.equal(br.status, 201, JSON.stringify(br.body));
    const point = br.body.snapshot.id as string;
    const child = br.body.instances[0].id as string;
    const a3 = await checkpoint(a);
    const c1 = await checkpoint(child, 'tl-c1');

    const ta = await timeline(a);
    assert.deepEqual(ta.data.map((e) => [e.snapshotId, e.inherited]), [[root, true], [a1, false], [a2, false], [point, false], [a3, false]]);
    assert.equal(ta.head, a3);
    assert.equal(ta.data[1].name, 'tl-a1');
    const tc = await timeline(child);
    // The child inherits its parent's history up to the branch point, not what the parent did after.
    assert.deepEqual(tc.data.map((e) => [e.snapshotId, e.inherited]), [[root, true], [a1, true], [a2, true], [point, true], [c1, false]]);
    assert.equal(tc.data[3].instanceId, a);
    // A deleted checkpoint drops out of every timeline; the chain around it holds.
    assert.equal((await t.api('DELETE', `/v1/snapshots/${a2}`)).status, 204);
    assert.deepEqual((await timeline(child)).data.map((e) => e.snapshotId), [root, a1, point, c1]);
    for (const id of [a, child]) await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('rolls files and a running counter back in place; the counter keeps counting', async () => {
    const id = await start();
    await exec(id, 'echo v1 > /root/f');
    // A counter whose value lives in the process's memory, written out every 0.1 s.
    const p = await t.api('POST', `/v1/instances/${id}/processes`, { command: 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done' });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    const count = async () => Number((await exec(id, 'cat /tmp/count')).stdout);
    const until = async (ok: (n: number) => boolean) => {
      for (let i = 0; i < 600; i++) {
        const n = await count();
        if (ok(n)) return n;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the counter did not get there');
    };
    await until((n) => n >= 3);
    const ck = await checkpoint(id, 'counter-ck');
    const atCheckpoint = await count(); // at least the value the checkpoint holds
    const later = await until((n) => n >= atCheckpoint + 100);
    await exec(id, 'echo v2 > /root/f; echo new > /root/g');

    const before = (await t.api('GET', `/v1/instances/${id}`)).body;
    const r = await rollback(id);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.id, id);
    assert.equal(r.body.state, 'ready');
    assert.deepEqual(r.body.metadata, before.metadata);
    assert.equal(r.body.snapshotId, before.snapshotId, 'snapshotId stays the one it was started from');
    assert.equal((await exec(id, 'cat /root/f')).stdout, 'v1\n');
    assert.equal((await exec(id, 'test -e /root/g; echo $?')).stdout, '1\n');
    const back = await count();
    assert.ok(back < later, `the counter went back (${back} < ${later})`);
    await until((n) => n > back); // still running, counting on from the checkpoint's value
    assert.equal((await timeline(id)).head, ck);
    await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('counts steps back from the head and refuses to go past the first checkpoint (409 no_checkpoint)', async () => {
    const id = await start();
    await exec(id, 'echo one > /root/n');
    const c1 = await checkpoint(id);
    await exec(id, 'echo two > /root/n');
    const c2 = await checkpoint(id);
    await exec(id, 'echo three > /root/n');
    assert.deepEqual((await timeline(id)).data.map((e) => e.snapshotId), [root, c1, c2]);

    const past = await rollback(id, 4);
    assert.equal(past.status, 409);
    assert.equal(past.body.error.code, 'no_checkpoint');
    assert.equal(past.body.error.details.available, 3);
    assert.equal((await exec(id, 'cat /root/n')).stdout, 'three\n', 'a refused rollback changes nothing');

    // steps=2: HEAD~1. The checkpoint after the target leaves the timeline (reset --hard).
    assert.equal((await rollback(id, 2)).status, 200);
    assert.equal((await exec(id, 'cat /root/n')).stdout, 'one\n');
    assert.deepEqual((await timeline(id)).data.map((e) => e.snapshotId), [root, c1]);
    // A checkpoint now follows c1; c2 is still a snapshot of its own.
    const c3 = await checkpoint(id);
    assert.deepEqual((await timeline(id)).data.map((e) => e.snapshotId), [root, c1, c3]);
    assert.equal((await t.api('GET', `/v1/snapshots/${c2}`)).status, 200);
    // All the way back to the snapshot it was started from, then no further.
    assert.equal((await rollback(id, 3)).status, 200);
    assert.equal((await exec(id, 'test -e /root/n; echo $?')).stdout, '1\n');
    assert.equal((await rollback(id, 2)).body.error.code, 'no_checkpoint');
    await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('restarts from the latest checkpoint on request, and from the instance\'s snapshot by default', async () => {
    const id = await start();
    const none = await t.api('POST', `/v1/instances/${id}/restart`, { fromLatestCheckpoint: true });
    assert.equal(none.status, 409);
    assert.equal(none.body.error.code, 'no_checkpoint');
    await exec(id, 'echo kept > /root/r');
    const ck = await checkpoint(id);
    await exec(id, 'echo lost > /root/r');
    await t.api('POST', `/v1/instances/${id}/stop`);
    const r = await t.api('POST', `/v1/instances/${id}/restart`, { fromLatestCheckpoint: true });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await exec(id, 'cat /root/r')).stdout, 'kept\n');
    // A plain restart goes back to the snapshot it was started from; its timeline ends there.
    assert.equal((await t.api('POST', `/v1/instances/${id}/restart`)).status, 200);
    assert.equal((await exec(id, 'test -e /root/r; echo $?')).stdout, '1\n');
    assert.deepEqual((await timeline(id)).data.map((e) => e.snapshotId), [root]);
    assert.equal((await t.api('GET', `/v1/snapshots/${ck}`)).status, 200, 'the checkpoint stays');
    await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('rolls a branch child back into its parent\'s earlier checkpoint, and restarts from it', async () => {
    const a = await start();
    await exec(a, 'echo early > /root/p');
    const a1 = await checkpoint(a);
    await exec(a, 'echo at-branch > /root/p');
    const br = (await t.api('POST', `/v1/instances/${a}/branch`, { count: 1 })).body;
    const child = br.instances[0].id as string;
    assert.equal((await exec(child, 'cat /root/p')).stdout, 'at-branch\n');
    // [root, a1, branch point]: two steps back is the parent's a1, inherited.
    const r = await rollback(child, 2);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.id, child);
    assert.equal((await exec(child, 'cat /root/p')).stdout, 'early\n');
    assert.deepEqual((await timeline(child)).data.map((e) => [e.snapshotId, e.inherited]), [[root, true], [a1, true]]);
    assert.equal((await exec(a, 'cat /root/p')).stdout, 'at-branch\n', 'the parent is untouched');
    await exec(child, 'echo changed > /root/p');
    const again = await t.api('POST', `/v1/instances/${child}/restart`, { fromLatestCheckpoint: true });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal((await exec(child, 'cat /root/p')).stdout, 'early\n');
    for (const id of [child, a]) await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('clones a snapshot without a restore: shared files that outlive either side', async () => {
    const id = await start();
    await exec(id, 'echo cloned > /root/c');
    const src = await checkpoint(id);
    await t.api('DELETE', `/v1/instances/${id}`);
    const cl = await t.api('POST', `/v1/snapshots/${src}/clone`, { name: 'the-clone', metadata: { k: 'v' } });
    assert.equal(cl.status, 201, JSON.stringify(cl.body));
    const clone = cl.body;
    const orig = (await t.api('GET', `/v1/snapshots/${src}`)).body;
    assert.notEqual(clone.id, src);
    assert.equal(clone.name, 'the-clone');
    assert.deepEqual(clone.metadata, { k: 'v' });
    assert.equal(clone.parentId, orig.parentId);
    assert.equal(clone.instanceId, orig.instanceId);
    assert.equal(clone.size, orig.size);
    const dir = (s: string) => join(stateDir, 'snapshots', s);
    const files = readdirSync(dir(src)).sort();
    assert.deepEqual(readdirSync(dir(clone.id)).sort(), files);
    for (const f of files) assert.equal(statSync(join(dir(clone.id), f)).ino, statSync(join(dir(src), f)).ino, `${f} is shared, not copied`);
    assert.equal((await t.api('POST', `/v1/snapshots/${src}/clone`, { name: 'the-clone' })).body.error.code, 'conflict');

    // The clone after the original is gone (and its checksum is the original's).
    const other = (await t.api('POST', `/v1/snapshots/${clone.id}/clone`, {})).body.id as string;
    assert.equal((await t.api('DELETE', `/v1/snapshots/${src}`)).status, 204);
    const fromClone = await start(clone.id);
    assert.equal((await exec(fromClone, 'cat /root/c')).stdout, 'cloned\n');
    await t.api('DELETE', `/v1/instances/${fromClone}`);
    await t.engine.services.snapshots.sealPending();
    const sealed = [(await t.api('GET', `/v1/snapshots/${clone.id}`)).body.checksum, (await t.api('GET', `/v1/snapshots/${other}`)).body.checksum];
    assert.match(sealed[0], /^sha256:/);
    assert.equal(sealed[0], sealed[1]);
    // The other way round: the first clone deleted, the second still restores.
    assert.equal((await t.api('DELETE', `/v1/snapshots/${clone.id}`)).status, 204);
    const fromOther = await start(other);
    assert.equal((await exec(fromOther, 'cat /root/c')).stdout, 'cloned\n');
    await t.api('DELETE', `/v1/instances/${fromOther}`);
    await t.api('DELETE', `/v1/snapshots/${other}`);
  });

  it('rolls back after an engine restart', async () => {
    const id = await start();
    await exec(id, 'echo before > /root/e');
    const ck = await checkpoint(id, 'survives-restart');
    await exec(id, 'echo after > /root/e');
    const tag = t.config.netTag;
    await t.engine.shutdown(); // the sandbox keeps running
    t = await startEngine({ stateDir, env: { FAAS_NET_TAG: tag, FAAS_WARM_POOL: '1' } });
    const tl = await timeline(id);
    assert.deepEqual(tl.data.map((e) => e.snapshotId), [root, ck]);
    const r = await rollback(id);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await exec(id, 'cat /root/e')).stdout, 'before\n');
    await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('re-keys the agent on rollback: the key the instance held before is refused', async () => {
    const id = await start();
    await checkpoint(id);
    const db = new Database(join(stateDir, 'faas.db'), { readonly: true });
    const keyOf = () => (db.prepare('SELECT agent_key FROM instances WHERE id = ?').get(id) as { agent_key: string }).agent_key;
    try {
      const before = keyOf();
      const r = await rollback(id);
      assert.equal(r.status, 200);
      const after = keyOf();
      assert.notEqual(after, before);
      // The restored image's agent held the key of the checkpoint (= `before`); it was replaced.
      assert.equal(await agentHealth(r.body.network.ip, before), 401);
      assert.equal(await agentHealth(r.body.network.ip, after), 200);
    } finally {
      db.close();
    }
    await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('keeps a clone\'s shared image files out of reach of other host users', async () => {
    const id = await start();
    const src = await checkpoint(id);
    await t.api('DELETE', `/v1/instances/${id}`);
    const clone = (await t.api('POST', `/v1/snapshots/${src}/clone`, {})).body.id as string;
    const file = join(stateDir, 'snapshots', clone, 'checkpoint.img');
    assert.equal(statSync(join(stateDir, 'snapshots', clone)).mode & 0o077, 0, 'the clone directory is private');
    const asNobody = spawnSync('runuser', ['-u', 'nobody', '--', 'cat', file], { encoding: 'utf8' });
    assert.notEqual(asNobody.status, 0);
    assert.match(asNobody.stderr, /Permission denied/);
    for (const s of [clone, src]) await t.api('DELETE', `/v1/snapshots/${s}`);
  });

  it('leaves another key\'s checkpoint out of a timeline and out of rollback\'s steps', async () => {
    const tenant = (await t.api('POST', '/v1/keys', { name: 'state-tenant' })).body.secret as string;
    const as = { headers: { authorization: `Bearer ${tenant}` } };
    const own = (await t.api('POST', '/v1/snapshots', {}, as)).body.id as string;
    const id = (await t.api('POST', '/v1/instances', { snapshotId: own }, as)).body.id as string;
    await t.api('POST', `/v1/instances/${id}/exec`, sh('echo mine > /root/t'), as);
    const mine = (await t.api('POST', `/v1/instances/${id}/snapshot`, {}, as)).body.id as string;
    // An admin checkpoints the tenant's instance: that snapshot is the admin's.
    const admins = await checkpoint(id);
    assert.deepEqual((await timeline(id)).data.map((e) => e.snapshotId), [own, mine, admins]);
    const theirs = await t.api('GET', `/v1/instances/${id}/timeline`, undefined, as);
    assert.deepEqual(theirs.body.data.map((e: { snapshotId: string }) => e.snapshotId), [own, mine]);
    assert.equal(theirs.body.head, mine);
    assert.equal((await t.api('POST', `/v1/instances/${id}/rollback`, { steps: 3 }, as)).body.error.code, 'no_checkpoint');
    assert.equal((await t.api('POST', `/v1/instances/${id}/rollback`, { steps: 1 }, as)).status, 200);
    assert.equal((await t.api('POST', `/v1/instances/${id}/exec`, sh('cat /root/t'), as)).body.stdout, 'mine\n');
    await t.api('DELETE', `/v1/instances/${id}`, undefined, as);
  });

  it('finishes a rollback the engine was killed in the middle of from the rollback\'s target', async () => {
    const id = await start();
    await exec(id, 'echo target > /root/k');
    const ck = await checkpoint(id);
    await exec(id, 'echo later > /root/k');
    // The state a kill leaves between the rollback's takeDown and its restore: the sandbox gone,
    // the record `pending` with the target recorded as its head.
    const tag = t.config.netTag;
    await t.engine.shutdown();
    spawnSync(t.config.runsc, [`--root=${join(stateDir, 'runsc')}`, 'delete', '--force', id]);
    const db = new Database(join(stateDir, 'faas.db'));
    db.prepare("UPDATE instances SET state = 'pending', head_id = ? WHERE id = ?").run(ck, id);
    db.close();
    t = await startEngine({ stateDir, env: { FAAS_NET_TAG: tag, FAAS_WARM_POOL: '1' } });
    assert.equal((await t.api('GET', `/v1/instances/${id}/wait?state=ready&timeout=60000`)).status, 200);
    assert.equal((await exec(id, 'cat /root/k')).stdout, 'target\n', 'restored from the target, not from the snapshot it was started from');
    assert.equal((await timeline(id)).head, ck);
    await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('answers another key like a missing id on every new route, and anonymous callers 401', async () => {
    const id = await start();
    const ck = await checkpoint(id);
    const snapshotCount = async () => (await t.api('GET', '/v1/snapshots?limit=200')).body.data.length as number;
    const count = await snapshotCount();
    const other = (await t.api('POST', '/v1/keys', { name: 'state-other' })).body.secret as string;
    const as = (key: string | null) => ({ headers: key === null ? { authorization: '' } : { authorization: `Bearer ${key}` } });
    const routes: [string, string, string, unknown][] = [
      ['GET', `/v1/instances/${id}/timeline`, 'instance_not_found', undefined],
      ['POST', `/v1/instances/${id}/rollback`, 'instance_not_found', {}],
      ['POST', `/v1/instances/${id}/restart`, 'instance_not_found', { fromLatestCheckpoint: true }],
      ['POST', `/v1/snapshots/${ck}/clone`, 'snapshot_not_found', {}],
    ];
    for (const [m, p, code, body] of routes) {
      const r = await t.api(m, p, body, as(other));
      assert.equal(r.status, 404, `${m} ${p}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code);
      assert.equal((await t.api(m, p, body, as(null))).status, 401, `${m} ${p} anonymous`);
    }
    // Nothing happened: still one checkpoint, no clone.
    assert.deepEqual((await timeline(id)).data.map((e) => e.snapshotId), [root, ck]);
    assert.equal(await snapshotCount(), count);
    await t.api('DELETE', `/v1/instances/${id}`);
  });
});

/** GET /v1/health on an instance's agent from the host (as root, as the engine talks to it). */
function agentHealth(ip: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: ip, port: 7070, path: '/v1/health', agent: false, headers: { authorization: `Bearer ${key}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}
