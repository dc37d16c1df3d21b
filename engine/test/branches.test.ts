// Branches as a resource (services/branches.ts): records, unique names, checkout that starts then
// reuses, commit (and any checkpoint of the checked-out instance) moving the head, a checkout after
// the instance stopped coming back at the new head with its files and a running process' memory,
// named live branches, deletes with children, snapshots a branch points at, other keys, and an
// engine restart. Real engine, real sandboxes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { START_COUNTER } from './counter-server.js';
import { purge, startEngine, type TestEngine } from './harness.js';


describe('branches', () => {
  let t: TestEngine;
  let snap: string;
  const exec = async (id: string, command: string) => {
    const r = await t.api('POST', `/v1/instances/${id}/exec`, { command });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { exitCode: number; stdout: string };
  };
  const bump = async (id: string) => Number((await exec(id, 'curl -s http://127.0.0.1:9000/')).stdout);
  const branch = async (name: string, snapshotId = snap, metadata?: Record<string, string>) => {
    const r = await t.api('POST', '/v1/branches', { snapshotId, name, ...(metadata ? { metadata } : {}) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };

  before(async () => {
    t = await startEngine({ stateDir: mkdtempSync('/tmp/faas-test-branch-') });
    snap = (await t.api('POST', '/v1/snapshots', { memory: 256 })).body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('creates, gets, lists (filters, pages) and deletes branch records; names are unique per key', async () => {
    const main = await branch('main', snap, { team: 'infra' });
    assert.match(main.id, /^br_[a-z0-9]+$/);
    assert.deepEqual(
      { name: main.name, parentId: main.parentId, divergencePoint: main.divergencePoint, head: main.head, instanceId: main.instanceId, metadata: main.metadata },
      { name: 'main', parentId: null, divergencePoint: snap, head: snap, instanceId: null, metadata: { team: 'infra' } },
    );
    // A branch made at a snapshot that is another branch's head is that branch's child.
    const feature = await branch('feature');
    assert.equal(feature.parentId, main.id);
    assert.deepEqual((await t.api('GET', `/v1/branches/${feature.id}`)).body, feature);

    const taken = await t.api('POST', '/v1/branches', { snapshotId: snap, name: 'main' });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error.code, 'branch_name_taken');
    assert.deepEqual(taken.body.error.details, { name: 'main' });

    const kids = await t.api('GET', `/v1/branches?parentId=${main.id}`);
    assert.deepEqual(kids.body.data.map((b: any) => b.id), [feature.id]);
    assert.deepEqual((await t.api('GET', '/v1/branches?name=main')).body.data.map((b: any) => b.id), [main.id]);
    assert.deepEqual((await t.api('GET', '/v1/branches?metadata[team]=infra')).body.data.map((b: any) => b.id), [main.id]);
    const p1 = await t.api('GET', '/v1/branches?limit=1');
    assert.equal(p1.body.data.length, 1);
    const p2 = await t.api('GET', `/v1/branches?limit=1&cursor=${encodeURIComponent(p1.body.nextCursor)}`);
    assert.notEqual(p2.body.data[0].id, p1.body.data[0].id, 'the second page goes on after the first');

    const missing = await t.api('GET', '/v1/branches/br_doesnotexist');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'branch_not_found');
    const noSnap = await t.api('POST', '/v1/branches', { snapshotId: 'snap_doesnotexist', name: 'x' });
    assert.equal(noSnap.body.error.code, 'snapshot_not_found');

    const unnamed = await t.api('POST', '/v1/branches', { snapshotId: snap });
    assert.equal(unnamed.body.name, unnamed.body.id, 'an unnamed branch is named by its id');
    await t.api('DELETE', `/v1/branches/${unnamed.body.id}`);

    assert.equal((await t.api('DELETE', `/v1/branches/${feature.id}`)).status, 204);
    assert.equal((await t.api('DELETE', `/v1/branches/${main.id}`)).status, 204);
    assert.equal((await t.api('GET', `/v1/branches/${main.id}`)).status, 404);
    // The name is free again, and the snapshot was never touched.
    await t.api('DELETE', `/v1/branches/${(await branch('main')).id}`);
    assert.equal((await t.api('GET', `/v1/snapshots/${snap}`)).status, 200);
  });

  it('checkout starts an instance at the head, then reuses it; commit and snapshots of it move the head; after a stop the next checkout is at the new head with files and memory', async () => {
    const b = await branch('work');
    const first = await t.api('POST', `/v1/branches/${b.id}/checkout`);
    assert.equal(first.status, 201);
    assert.equal(first.body.state, 'ready');
    assert.equal(first.body.snapshotId, snap);
    const inst = first.body.id;
    const again = await t.api('POST', `/v1/branches/${b.id}/checkout`);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, inst, 'the live instance is reused');
    assert.equal((await t.api('GET', `/v1/branches/${b.id}`)).body.instanceId, inst);

    await exec(inst, START_COUNTER);
    assert.equal(await bump(inst), 2);
    await exec(inst, 'echo committed > /root/file');
    const commit = await t.api('POST', `/v1/branches/${b.id}/commit`, { message: 'counter at 2' });
    assert.equal(commit.status, 201);
    assert.equal(commit.body.instanceId, inst);
    assert.equal(commit.body.metadata.message, 'counter at 2');
    let got = (await t.api('GET', `/v1/branches/${b.id}`)).body;
    assert.equal(got.head, commit.body.id, 'commit moved the head');
    assert.equal(got.divergencePoint, snap, 'the divergence point stays');

    // A plain snapshot of the checked-out instance (StateOperations.checkpoint) moves it too.
    assert.equal(await bump(inst), 3);
    await exec(inst, 'echo later > /root/file');
    const cp = await t.api('POST', `/v1/instances/${inst}/snapshot`, {});
    got = (await t.api('GET', `/v1/branches/${b.id}`)).body;
    assert.equal(got.head, cp.body.id);
    // Work after the last checkpoint is not on the branch.
    assert.equal(await bump(inst), 4);
    await exec(inst, 'echo uncommitted > /root/file');

    assert.equal((await t.api('POST', `/v1/instances/${inst}/stop`)).status, 200);
    assert.equal((await t.api('GET', `/v1/branches/${b.id}`)).body.instanceId, null, 'a stopped instance is not checked out');
    const notOut = await t.api('POST', `/v1/branches/${b.id}/commit`, {});
    assert.equal(notOut.status, 409);
    assert.equal(notOut.body.error.code, 'branch_not_checked_out');

    const back = await t.api('POST', `/v1/branches/${b.id}/checkout`);
    assert.equal(back.status, 201);
    assert.notEqual(back.body.id, inst);
    assert.equal(back.body.snapshotId, cp.body.id, 'restored from the head');
    assert.equal((await exec(back.body.id, 'cat /root/file')).stdout, 'later\n', 'files at the head');
    assert.equal(await bump(back.body.id), 4, 'the process kept counting from the head (3), in memory');
    await t.api('DELETE', `/v1/instances/${back.body.id}`);
    assert.equal((await t.api('GET', `/v1/branches/${b.id}`)).body.instanceId, null, 'a deleted instance is not checked out');
    // The branch points at its head: deleting that snapshot is a conflict while the branch exists.
    const refused = await t.api('DELETE', `/v1/snapshots/${cp.body.id}`);
    assert.equal(refused.status, 409);
    assert.deepEqual(refused.body.error.details.branches, [b.id]);
    // Forced, the head falls back to the newest checkpoint the branch still has.
    assert.equal((await t.api('DELETE', `/v1/snapshots/${cp.body.id}?force=true`)).status, 204);
    assert.equal((await t.api('GET', `/v1/branches/${b.id}`)).body.head, commit.body.id);
    await t.api('DELETE', `/v1/branches/${b.id}`);
    assert.equal((await t.api('GET', `/v1/snapshots/${commit.body.id}`)).status, 200, 'deleting a branch keeps its snapshots');
  });

  it('instances.branch with names makes one Branch record per child; taken names refuse before anything starts; deletes with children are 409 unless forced', async () => {
    const root = await branch('root');
    const parentInst = (await t.api('POST', `/v1/branches/${root.id}/checkout`)).body.id;
    const before = (await t.api('GET', '/v1/instances?state=ready')).body.data.length;

    const taken = await t.api('POST', `/v1/instances/${parentInst}/branch`, { count: 2, names: ['try-a', 'root'] });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error.code, 'branch_name_taken');
    const wrongCount = await t.api('POST', `/v1/instances/${parentInst}/branch`, { count: 2, names: ['only-one'] });
    assert.equal(wrongCount.status, 400);
    assert.equal((await t.api('GET', '/v1/instances?state=ready')).body.data.length, before, 'nothing was started');

    const res = await t.api('POST', `/v1/instances/${parentInst}/branch`, { count: 2, names: ['try-a', 'try-b'] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const { snapshot, instances, branches } = res.body;
    assert.equal(branches.length, 2);
    for (const [i, br] of branches.entries()) {
      assert.deepEqual(
        { name: br.name, parentId: br.parentId, divergencePoint: br.divergencePoint, head: br.head, instanceId: br.instanceId },
        { name: ['try-a', 'try-b'][i], parentId: root.id, divergencePoint: snapshot.id, head: snapshot.id, instanceId: instances[i].id },
      );
    }
    assert.equal((await t.api('GET', `/v1/branches/${root.id}`)).body.head, snapshot.id, "the branch point is the parent's head too");
    const checkout = await t.api('POST', `/v1/branches/${branches[0].id}/checkout`);
    assert.equal(checkout.status, 200);
    assert.equal(checkout.body.id, instances[0].id, 'the child is the branch\'s checked-out instance');
    // Without names, no records (as before).
    const plain = await t.api('POST', `/v1/instances/${parentInst}/branch`, { count: 1 });
    assert.equal(plain.body.branches, undefined);
    await t.api('DELETE', `/v1/instances/${plain.body.instances[0].id}`);

    const refused = await t.api('DELETE', `/v1/branches/${root.id}`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'branch_has_children');
    assert.deepEqual([...refused.body.error.details.children].sort(), branches.map((b: any) => b.id).sort());
    assert.equal((await t.api('DELETE', `/v1/branches/${root.id}?force=true`)).status, 204);
    for (const br of branches) assert.equal((await t.api('GET', `/v1/branches/${br.id}`)).body.parentId, null, 're-parented to the deleted branch\'s parent');
    assert.equal((await t.api('GET', `/v1/instances/${parentInst}`)).body.state, 'ready', 'deleting a branch leaves its instance running');
    for (const id of [parentInst, ...instances.map((i: any) => i.id)]) await t.api('DELETE', `/v1/instances/${id}`);
    for (const br of branches) await t.api('DELETE', `/v1/branches/${br.id}`);
  });

  it('an expired snapshot that is a branch head is kept until the branch is deleted', async () => {
    const inst = (await t.api('POST', '/v1/instances', { snapshotId: snap })).body.id;
    const expiring = (await t.api('POST', `/v1/instances/${inst}/snapshot`, { ttl: 1 })).body;
    const b = await branch('holds-expiring', expiring.id);
    await new Promise((r) => setTimeout(r, 1800));
    assert.equal((await t.api('GET', `/v1/snapshots/${expiring.id}`)).status, 200, 'kept while a branch points at it');
    await t.api('DELETE', `/v1/branches/${b.id}`);
    let status = 200;
    for (let i = 0; i < 50 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await t.api('GET', `/v1/snapshots/${expiring.id}`)).status;
    }
    assert.equal(status, 404, 'deleted once the branch is gone');
    await t.api('DELETE', `/v1/instances/${inst}`);
  });

  it('another API key cannot see or use a branch; anonymous callers and the host user nobody get 401', async () => {
    const other = (await t.api('POST', '/v1/keys', { name: 'other' })).body;
    const as = { headers: { authorization: `Bearer ${other.secret}` } };
    const mine = await branch('private');
    const fake = 'br_zzzzzzzzzzzzzzzz';
    for (const [m, suffix] of [['GET', ''], ['DELETE', ''], ['POST', '/checkout'], ['POST', '/commit']] as const) {
      const got = await t.api(m, `/v1/branches/${mine.id}${suffix}`, m === 'POST' && suffix === '/commit' ? {} : undefined, as);
      const missing = await t.api(m, `/v1/branches/${fake}${suffix}`, m === 'POST' && suffix === '/commit' ? {} : undefined, as);
      assert.equal(got.status, 404, `${m} ${suffix}`);
      assert.equal(got.body.error.code, 'branch_not_found');
      assert.equal(got.body.error.message.replace(mine.id, 'ID'), missing.body.error.message.replace(fake, 'ID'));
    }
    assert.deepEqual((await t.api('GET', '/v1/branches', undefined, as)).body.data, [], "the other key's list is empty");
    // Its own branch with the same name is fine (names are per key); not on a snapshot it cannot see.
    const onMySnap = await t.api('POST', '/v1/branches', { snapshotId: snap, name: 'private' }, as);
    assert.equal(onMySnap.body.error.code, 'snapshot_not_found');
    const ownSnap = (await t.api('POST', '/v1/snapshots', { memory: 256 }, as)).body.id;
    const own = await t.api('POST', '/v1/branches', { snapshotId: ownSnap, name: 'private' }, as);
    assert.equal(own.status, 201);
    assert.equal(own.body.parentId, null);
    assert.equal((await t.api('GET', `/v1/branches/${mine.id}`)).body.name, 'private', 'untouched');

    // Two checkouts at once start one instance; an admin's checkout of the other key's branch
    // starts it for that key; an admin's snapshot of that instance does not move the key's head.
    const [c1, c2] = await Promise.all([
      t.api('POST', `/v1/branches/${own.body.id}/checkout`),
      t.api('POST', `/v1/branches/${own.body.id}/checkout`),
    ]);
    assert.deepEqual([c1.status, c2.status].sort(), [200, 201]);
    assert.equal(c1.body.id, c2.body.id, 'one instance for concurrent checkouts');
    assert.equal((await t.api('GET', `/v1/instances/${c1.body.id}`, undefined, as)).status, 200, "the instance is the branch owner's");
    const adminSnap = await t.api('POST', `/v1/instances/${c1.body.id}/snapshot`, {});
    assert.equal(adminSnap.status, 201);
    assert.equal((await t.api('GET', `/v1/branches/${own.body.id}`, undefined, as)).body.head, ownSnap, "another key's snapshot does not move the head");
    const byOwner = await t.api('POST', `/v1/instances/${c1.body.id}/snapshot`, {}, as);
    assert.equal((await t.api('GET', `/v1/branches/${own.body.id}`, undefined, as)).body.head, byOwner.body.id, "the owner's snapshot does");
    await t.api('DELETE', `/v1/instances/${c1.body.id}`);

    const anon = await fetch(`${t.url}/v1/branches/${mine.id}`);
    assert.equal(anon.status, 401);
    const port = new URL(t.url).port;
    // Not execFileSync: the engine answering curl runs in this process's event loop.
    const asNobody = await promisify(execFile)('runuser', ['-u', 'nobody', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/v1/branches`]);
    assert.equal(asNobody.stdout, '401');
    await t.api('DELETE', `/v1/branches/${own.body.id}`, undefined, as);
    await t.api('DELETE', `/v1/branches/${mine.id}`);
  });
});

describe('branches across an engine restart', () => {
  it('keeps branch records and the checked-out instance, which checkout then reuses', async () => {
    const stateDir = mkdtempSync('/tmp/faas-test-branch-');
    let t: TestEngine | undefined = await startEngine({ stateDir });
    try {
      const snap = (await t.api('POST', '/v1/snapshots', { memory: 256 })).body.id;
      const b = (await t.api('POST', '/v1/branches', { snapshotId: snap, name: 'survivor' })).body;
      const inst = (await t.api('POST', `/v1/branches/${b.id}/checkout`)).body.id;
      await t.api('POST', `/v1/instances/${inst}/exec`, { command: 'echo kept > /root/f' });
      const commit = (await t.api('POST', `/v1/branches/${b.id}/commit`, { message: 'before restart' })).body;
      const netTag = t.config.netTag;
      await t.engine.shutdown(); // instances keep running; the engine is gone
      t = await startEngine({ stateDir, env: { FAAS_NET_TAG: netTag } });
      const got = (await t.api('GET', `/v1/branches/${b.id}`)).body;
      assert.deepEqual({ name: got.name, head: got.head, instanceId: got.instanceId }, { name: 'survivor', head: commit.id, instanceId: inst });
      const again = await t.api('POST', `/v1/branches/${b.id}/checkout`);
      assert.equal(again.status, 200);
      assert.equal(again.body.id, inst, 'the adopted instance is still the checked-out one');
      const read = await t.api('POST', `/v1/instances/${inst}/exec`, { command: 'cat /root/f' });
      assert.equal(read.body.stdout, 'kept\n');
      const taken = await t.api('POST', '/v1/branches', { snapshotId: snap, name: 'survivor' });
      assert.equal(taken.body.error.code, 'branch_name_taken', 'names stay unique after the restart');
    } finally {
      await t?.close();
      purge(stateDir);
    }
  });
});
