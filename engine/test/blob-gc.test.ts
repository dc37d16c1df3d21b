// Garbage collection of kept blobs (services/blob-gc.ts) in a real engine with real sandboxes: a
// deleted snapshot's blobs go, a blob two snapshots (or a clone) name stays until both are gone, a
// blob a live instance's agent already sent stays for its next checkpoint, diffs and merges of the
// remaining snapshots stay byte-exact, and a restart sweeps orphans older than the grace period
// while keeping every referenced blob. A blob that is not what its name says is never served.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { checkedCalls, startEngine, type TestEngine } from './harness.js';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const tag = randomBytes(6).toString('hex');
// Contents unique to this run, so no other snapshot of the test names their blobs.
const ONLY_A = `only in A ${tag}\n`;
const SHARED = `shared by A and B ${tag}\nsecond line\n`;
const ONLY_B = `only in B ${tag}\n`;
const CACHED = `sent once by the agent of C ${tag}\n`;
const ROLLED = `back by a rollback ${tag}\n`;

describe('blob garbage collection', () => {
  let t: TestEngine;
  let stateDir: string;
  let root: string;
  const blob = (h: string) => join(stateDir, 'blobs', h);
  const calls = checkedCalls(() => t);
  const { snapshot, start } = calls;
  const exec = async (id: string, command: string) => (await calls.exec(id, command)).stdout;
  const del = async (path: string) => {
    const r = await t.api('DELETE', path);
    assert.ok(r.status === 204 || r.status === 200, JSON.stringify(r.body));
  };
  // A literal newline inside single quotes is kept by the shell.
  const write = (path: string, text: string) => `printf '%s' '${text}' > ${path}`;
  const fileDiff = async (base: string, target: string, path: string) => {
    const r = await t.api('GET', `/v1/snapshots/${base}/diff/${target}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const f = r.body.files.find((x: { path: string }) => x.path === path);
    assert.ok(f, `${path} in the diff of ${base} and ${target}`);
    return f as { diff: string | null; diffOmitted: string | null; sha256After: string };
  };
  const added = (path: string, text: string) => {
    const lines = text.split('\n').slice(0, -1);
    return `--- /dev/null\n+++ b${path}\n@@ -0,0 +${lines.length === 1 ? '1' : `1,${lines.length}`} @@\n${lines.map((l) => `+${l}\n`).join('')}`;
  };

  let sa: string; // A's snapshot: ONLY_A, SHARED
  let sb: string; // B's snapshot: SHARED, ONLY_B
  let clone: string; // a clone of A's snapshot
  let sc2: string; // C's second checkpoint: CACHED, not sent again by C's agent

  before(async () => {
    // Grace 0: every unreferenced blob may go at once (the restart below uses a real grace period).
    t = await startEngine({ env: { FAAS_BLOB_GC_GRACE_SECONDS: '0' } });
    stateDir = t.config.stateDir;
    root = (await t.api('POST', '/v1/snapshots', {})).body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('keeps a blob while any snapshot names it, and removes a deleted snapshot\'s own blobs', async () => {
    const a = await start(root);
    const b = await start(root);
    await exec(a, `mkdir -p /work && ${write('/work/a.txt', ONLY_A)} && ${write('/work/shared.txt', SHARED)}`);
    await exec(b, `mkdir -p /work && ${write('/work/shared.txt', SHARED)} && ${write('/work/b.txt', ONLY_B)}`);
    sa = await snapshot(a);
    sb = await snapshot(b);
    clone = (await t.api('POST', `/v1/snapshots/${sa}/clone`, {})).body.id;
    for (const text of [ONLY_A, SHARED, ONLY_B]) assert.ok(existsSync(blob(sha(text))), `blob of ${JSON.stringify(text)} kept`);
    // The instances go: what their agents sent is now needed only by the snapshots.
    await del(`/v1/instances/${a}`);
    await del(`/v1/instances/${b}`);
    await t.engine.blobGc.run();
    for (const text of [ONLY_A, SHARED, ONLY_B]) assert.ok(existsSync(blob(sha(text))), 'every blob is still named');

    await del(`/v1/snapshots/${sa}`);
    await t.engine.blobGc.run();
    assert.ok(existsSync(blob(sha(ONLY_A))), 'the clone of A still names A\'s blob');
    await del(`/v1/snapshots/${clone}`);
    await t.engine.blobGc.run();
    assert.ok(!existsSync(blob(sha(ONLY_A))), 'A\'s own blob went with the last snapshot naming it');
    assert.ok(existsSync(blob(sha(SHARED))), 'B still names the shared blob');
    assert.equal(readFileSync(blob(sha(ONLY_B)), 'utf8'), ONLY_B);

    // B's diff is whole and byte-exact after the collection.
    assert.equal((await fileDiff(root, sb, '/work/shared.txt')).diff, added('/work/shared.txt', SHARED));
    assert.equal((await fileDiff(root, sb, '/work/b.txt')).diff, added('/work/b.txt', ONLY_B));
  });

  it('keeps a blob a live instance\'s agent sent, though the snapshot it came with is deleted', async () => {
    const c = await start(root);
    await exec(c, `mkdir -p /work && ${write('/work/c.txt', CACHED)}`);
    const sc1 = await snapshot(c); // the agent hashes c.txt and sends its bytes now, and only now
    await del(`/v1/snapshots/${sc1}`);
    await t.engine.blobGc.run();
    assert.ok(existsSync(blob(sha(CACHED))), 'the live agent will not send it again');
    await exec(c, 'echo later > /tmp/x');
    sc2 = await snapshot(c);
    assert.equal((await fileDiff(root, sc2, '/work/c.txt')).diff, added('/work/c.txt', CACHED), 'the next checkpoint can still be diffed');
    await del(`/v1/instances/${c}`);
    await t.engine.blobGc.run();
    assert.ok(existsSync(blob(sha(CACHED))), 'the second checkpoint names it');
  });

  it('keeps the blobs of a checkpoint an instance rolled back to, though that checkpoint is deleted', async () => {
    const p = await start(root);
    await exec(p, `mkdir -p /work && ${write('/work/r.txt', ROLLED)}`);
    const p1 = await snapshot(p); // ROLLED sent here
    await exec(p, `${write('/work/r.txt', 'later\n')}`);
    const kids = await t.api('POST', `/v1/instances/${p}/branch`, { count: 1 });
    assert.equal(kids.status, 201, JSON.stringify(kids.body));
    const q = kids.body.instances[0].id as string;
    // q goes back to p1 (an inherited entry of its timeline): its agent's memory is p1's, which
    // hashed r.txt and sent it then.
    const rb = await t.api('POST', `/v1/instances/${q}/rollback`, { steps: 2 });
    assert.equal(rb.status, 200, JSON.stringify(rb.body));
    assert.equal(await exec(q, 'cat /work/r.txt'), ROLLED);
    await del(`/v1/instances/${p}`);
    await del(`/v1/snapshots/${p1}`);
    await t.engine.blobGc.run();
    assert.ok(existsSync(blob(sha(ROLLED))), 'q\'s agent will not send it again');
    const q1 = await snapshot(q);
    assert.equal((await fileDiff(root, q1, '/work/r.txt')).diff, added('/work/r.txt', ROLLED));
    await del(`/v1/instances/${q}`);
  });

  it('merges the remaining snapshots after a collection, byte-exact', async () => {
    const r = await t.api('POST', '/v1/snapshots/merge', { snapshotIds: [sb, sc2] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const m = await start(r.body.id);
    assert.equal(await exec(m, 'cat /work/c.txt'), CACHED);
    assert.equal(await exec(m, 'cat /work/shared.txt'), SHARED);
    await del(`/v1/instances/${m}`);
    await del(`/v1/snapshots/${r.body.id}`);
  });

  it('sweeps orphans older than the grace period at start-up and keeps referenced and young blobs', async () => {
    await t.engine.shutdown({ stopInstances: true, clean: true });
    const old = new Date(Date.now() - 2 * 3600_000);
    // What an engine killed mid-checkpoint leaves: a blob whose snapshot never became ready (its
    // row rolled back), and a temp file of a write cut short.
    const orphan = `orphan ${tag}\n`;
    writeFileSync(blob(sha(orphan)), orphan, { mode: 0o600 });
    utimesSync(blob(sha(orphan)), old, old);
    const temp = blob(`${sha('partial')}.tmp-4242`);
    writeFileSync(temp, 'part', { mode: 0o600 });
    utimesSync(temp, old, old);
    // Written a moment ago (a checkpoint in flight when the engine died): inside the grace period.
    const young = `young ${tag}\n`;
    writeFileSync(blob(sha(young)), young, { mode: 0o600 });
    // Referenced blobs are kept however old.
    utimesSync(blob(sha(SHARED)), old, old);
    utimesSync(blob(sha(CACHED)), old, old);
    // B as a snapshot made before references were recorded (migration 19): its manifest is read
    // at start-up before anything is collected.
    utimesSync(blob(sha(ONLY_B)), old, old);
    const db = new Database(join(stateDir, 'faas.db'));
    db.prepare('DELETE FROM snapshot_blobs WHERE snapshot_id = ?').run(sb);
    db.prepare('UPDATE snapshots SET blobs_indexed = 0 WHERE id = ?').run(sb);
    db.close();
    // Not a blob name: never touched.
    writeFileSync(blob('README'), 'x');
    utimesSync(blob('README'), old, old);

    const t2 = await startEngine({ stateDir, env: { FAAS_BLOB_GC_GRACE_SECONDS: '600' } });
    t = t2;
    await t.engine.blobGc.run();
    assert.ok(!existsSync(blob(sha(orphan))), 'an old orphan is swept');
    assert.ok(!existsSync(temp), 'an old temp file is swept');
    assert.ok(existsSync(blob(sha(young))), 'a blob inside the grace period stays');
    assert.ok(existsSync(blob('README')));
    for (const text of [SHARED, ONLY_B, CACHED]) assert.equal(readFileSync(blob(sha(text)), 'utf8'), text, 'referenced blobs kept');
    assert.equal((await fileDiff(root, sb, '/work/shared.txt')).diff, added('/work/shared.txt', SHARED));
    assert.equal(statSync(join(stateDir, 'blobs')).mode & 0o777, 0o700, 'host users still cannot list or read blobs');
  });

  it('never serves a blob whose bytes are not what its name says', async () => {
    const path = blob(sha(ONLY_B));
    writeFileSync(path, 'tampered\n');
    try {
      const f = await fileDiff(root, sb, '/work/b.txt');
      assert.equal(f.diff, null);
      assert.equal(f.diffOmitted, 'content_unavailable');
    } finally {
      writeFileSync(path, ONLY_B);
    }
    assert.equal((await fileDiff(root, sb, '/work/b.txt')).diff, added('/work/b.txt', ONLY_B));
  });
});
