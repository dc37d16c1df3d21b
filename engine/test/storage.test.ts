// Deduplicated snapshot storage with real sandboxes (docs/storage.md): checkpoints of one instance
// share their unchanged pages, an evicted image is assembled again for a restore, deleting
// snapshots frees exactly what no other image names, a corrupt chunk is refused at restore, an
// engine restarted on a store a crash left untidy keeps every referenced chunk, and a full disk
// answers 507 storage_full with nothing stored.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { purge, sh, startEngine, type TestEngine } from './harness.js';

const MB = 1024 * 1024;

function chunkFiles(stateDir: string): string[] {
  const root = join(stateDir, 'store', 'chunks');
  return readdirSync(root).flatMap((hh) => readdirSync(join(root, hh)).map((f) => join(root, hh, f)));
}

/** Starts a process in the instance that holds `mb` MB of written memory until killed. */
async function holdMemory(e: TestEngine, inst: string, name: string, mb: number): Promise<void> {
  const r = await e.api('POST', `/v1/instances/${inst}/processes`, {
    command: `python3 -c "import os,time; b=bytearray(os.urandom(${mb}<<20)); open('/tmp/${name}','w').write('held'); time.sleep(100000)"`,
  });
  assert.equal(r.status, 201);
  for (let i = 0; i < 300; i++) {
    const x = await e.api('POST', `/v1/instances/${inst}/exec`, sh(`cat /tmp/${name} 2>/dev/null || true`));
    if (x.body.stdout === 'held') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.fail(`the process holding ${mb} MB never started`);
}

async function storedSnapshot(e: TestEngine, id: string, want: (s: any) => boolean = (s) => s.deduplicated): Promise<any> {
  for (let i = 0; i < 600; i++) {
    const r = await e.api('GET', `/v1/snapshots/${id}`);
    assert.equal(r.status, 200);
    if (want(r.body.storage)) return r.body;
    e.engine.services.snapshots.whenQuiet();
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.fail(`snapshot ${id} never reached the expected storage state`);
}

describe('deduplicated snapshot storage (real sandboxes)', () => {
  let e: TestEngine;
  let root: string;
  before(async () => {
    // cacheSize 0: every image's materialized copy is evicted once it is stored, so restores below
    // go through the store.
    e = await startEngine({ env: { FAAS_CACHE_SIZE: '0', FAAS_WARM_POOL: '0' } });
    root = (await e.api('POST', '/v1/snapshots', { memory: 1024 })).body.id;
  });
  after(async () => {
    await e?.close();
  });

  it('checkpoints of one instance share their unchanged pages, and each restores from the store with its data', async () => {
    const inst = (await e.api('POST', '/v1/instances', { snapshotId: root })).body.id;
    await holdMemory(e, inst, 'big', 64);
    const first = (await e.api('POST', `/v1/instances/${inst}/snapshot`, {})).body;
    await holdMemory(e, inst, 'small', 4);
    await e.api('POST', `/v1/instances/${inst}/exec`, sh('echo second > /root/marker'));
    const second = (await e.api('POST', `/v1/instances/${inst}/snapshot`, {})).body;
    const a = await storedSnapshot(e, first.id, (s) => s.deduplicated && !s.materialized);
    const b = await storedSnapshot(e, second.id, (s) => s.deduplicated && !s.materialized);
    assert.equal(a.storage.materializedBytes, 0);
    assert.equal(b.storage.logicalBytes, second.size);
    // The second image shares the first's 64 MB; what it has alone is about the 4 MB it added.
    assert.ok(b.storage.sharedBytes > 48 * MB, `shared ${b.storage.sharedBytes}`);
    assert.ok(b.storage.exclusiveBytes < 24 * MB, `exclusive ${b.storage.exclusiveBytes}`);
    // The store is root's alone: 0700 directories, 0600 chunks, unreadable to the host user nobody.
    const [chunk] = chunkFiles(e.config.stateDir);
    assert.equal(statSync(join(e.config.stateDir, 'store')).mode & 0o777, 0o700);
    assert.equal(statSync(chunk).mode & 0o777, 0o600);
    assert.throws(() => execFileSync('runuser', ['-u', 'nobody', '--', 'cat', chunk], { stdio: 'ignore' }));
    // Another API key sees neither the snapshot nor its storage figures.
    const other = (await e.api('POST', '/v1/keys', { name: 'storage-other' })).body.secret;
    const res = await fetch(`${e.url}/v1/snapshots/${second.id}`, { headers: { authorization: `Bearer ${other}` } });
    assert.equal(res.status, 404);
    await e.api('POST', `/v1/instances/${inst}/stop`);

    // A restore assembles the evicted image first; the instance has the second checkpoint's state.
    const r = await e.api('POST', '/v1/instances', { snapshotId: second.id });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const x = await e.api('POST', `/v1/instances/${r.body.id}/exec`, sh('cat /root/marker /tmp/big /tmp/small'));
    assert.equal(x.body.stdout, 'second\nheldheld');
    await e.api('POST', `/v1/instances/${r.body.id}/stop`);

    // Deleting the second frees its exclusive chunks only: the first still restores.
    const chunksBefore = chunkFiles(e.config.stateDir).length;
    assert.equal((await e.api('DELETE', `/v1/snapshots/${second.id}`)).status, 204);
    assert.ok(chunkFiles(e.config.stateDir).length < chunksBefore);
    const again = await storedSnapshot(e, first.id);
    assert.equal(again.storage.sharedBytes < b.storage.sharedBytes, true);
    const r2 = await e.api('POST', '/v1/instances', { snapshotId: first.id });
    assert.equal(r2.status, 201, JSON.stringify(r2.body));
    assert.equal((await e.api('POST', `/v1/instances/${r2.body.id}/exec`, sh('cat /tmp/big; test -e /tmp/small || echo no-small'))).body.stdout, 'heldno-small\n');
    await e.api('POST', `/v1/instances/${r2.body.id}/stop`);
    assert.equal((await e.api('DELETE', `/v1/snapshots/${first.id}`)).status, 204);
  });

  it('diffs and merges snapshots whose images were evicted, reading only their change records from the store', async () => {
    const inst = (await e.api('POST', '/v1/instances', { snapshotId: root })).body.id;
    await e.api('POST', `/v1/instances/${inst}/exec`, sh('mkdir -p /work && printf "one\\ntwo\\n" > /work/a.txt'));
    const base = (await e.api('POST', `/v1/instances/${inst}/snapshot`, {})).body;
    await e.api('POST', `/v1/instances/${inst}/exec`, sh('printf "one\\nTWO\\n" > /work/a.txt'));
    const ours = (await e.api('POST', `/v1/instances/${inst}/snapshot`, {})).body;
    await e.api('POST', `/v1/instances/${inst}/stop`);
    const other = (await e.api('POST', '/v1/instances', { snapshotId: base.id })).body.id;
    await e.api('POST', `/v1/instances/${other}/exec`, sh('echo theirs > /work/b.txt'));
    const theirs = (await e.api('POST', `/v1/instances/${other}/snapshot`, {})).body;
    await e.api('POST', `/v1/instances/${other}/stop`);
    for (const s of [base, ours, theirs]) await storedSnapshot(e, s.id, (x) => x.deduplicated && !x.materialized);
    // Nothing has read their change records yet, so none is in the engine's memory either.

    const d = await e.api('GET', `/v1/snapshots/${base.id}/diff/${ours.id}`);
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.deepEqual(d.body.files.map((f: any) => [f.path, f.change]), [['/work/a.txt', 'modified']]);
    assert.match(d.body.files[0].diff, /^-two\n\+TWO$/m);
    // Answered without assembling any of the three images.
    for (const s of [base, ours, theirs]) assert.equal((await e.api('GET', `/v1/snapshots/${s.id}`)).body.storage.materialized, false);

    const m = await e.api('POST', '/v1/snapshots/merge', { snapshotIds: [ours.id, theirs.id] });
    assert.equal(m.status, 201, JSON.stringify(m.body));
    const r = await e.api('POST', '/v1/instances', { snapshotId: m.body.id });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal((await e.api('POST', `/v1/instances/${r.body.id}/exec`, sh('cat /work/a.txt /work/b.txt'))).body.stdout, 'one\nTWO\ntheirs\n');
    await e.api('POST', `/v1/instances/${r.body.id}/stop`);
  });

  it('refuses to restore an image whose stored chunk was changed on disk (500 image_corrupt), and starts nothing', async () => {
    const inst = (await e.api('POST', '/v1/instances', { snapshotId: root })).body.id;
    await holdMemory(e, inst, 'c', 8);
    const snap = (await e.api('POST', `/v1/instances/${inst}/snapshot`, {})).body;
    await e.api('POST', `/v1/instances/${inst}/stop`);
    await storedSnapshot(e, snap.id, (s) => s.deduplicated && !s.materialized);
    // Flip one byte in every chunk only this image names (the root's chunks stay intact).
    const manifest = JSON.parse(readFileSync(join(e.config.stateDir, 'store', 'manifests', `${snap.id}.json`), 'utf8'));
    const rootManifest = readFileSync(join(e.config.stateDir, 'store', 'manifests', `${root}.json`), 'utf8');
    let flipped = 0;
    for (const f of manifest.files) {
      for (const [hash] of f.chunks) {
        if (rootManifest.includes(hash)) continue;
        const path = join(e.config.stateDir, 'store', 'chunks', hash.slice(0, 2), hash);
        const bytes = readFileSync(path);
        bytes[bytes.length >> 1] ^= 0x01;
        writeFileSync(path, bytes);
        flipped++;
      }
    }
    assert.ok(flipped > 0);
    const before = (await e.api('GET', '/v1/instances?limit=200')).body.data.filter((i: any) => i.state === 'ready').length;
    const r = await e.api('POST', '/v1/instances', { snapshotId: snap.id });
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, 'image_corrupt');
    assert.match(r.body.error.message, /checksum mismatch/);
    assert.equal((await e.api('GET', '/v1/instances?limit=200')).body.data.filter((i: any) => i.state === 'ready').length, before);
    assert.equal(readdirSync(join(e.config.stateDir, 'snapshots')).some((n) => n.startsWith(snap.id)), false);
    await e.api('DELETE', `/v1/snapshots/${snap.id}?force=true`);
  });

  it('an engine restarted on a store a crash left untidy removes unreferenced chunks and keeps every referenced one', async () => {
    const inst = (await e.api('POST', '/v1/instances', { snapshotId: root })).body.id;
    await holdMemory(e, inst, 'k', 8);
    const snap = (await e.api('POST', `/v1/instances/${inst}/snapshot`, {})).body;
    await e.api('POST', `/v1/instances/${inst}/stop`);
    await storedSnapshot(e, snap.id, (s) => s.deduplicated && !s.materialized);
    const stateDir = e.config.stateDir;
    const referenced = chunkFiles(stateDir).sort();
    // Stop without cleaning the state dir, plant what a kill mid-store / mid-delete / mid-assembly
    // leaves, start again on it.
    await e.engine.shutdown({ stopInstances: true, clean: true });
    mkdirSync(join(stateDir, 'store', 'chunks', 'ee'), { recursive: true });
    writeFileSync(join(stateDir, 'store', 'chunks', 'ee', 'ee' + '0'.repeat(62)), 'orphan');
    writeFileSync(join(stateDir, 'store', 'chunks', 'ee', '.tmp-ee' + '1'.repeat(62)), 'partial');
    writeFileSync(join(stateDir, 'store', 'manifests', 'snap_gone.json'), JSON.stringify({ version: 1, files: [{ name: 'pages.img', size: 6, chunks: [['ee' + '0'.repeat(62), 6]] }] }));
    mkdirSync(join(stateDir, 'snapshots', `${snap.id}.mat`));
    writeFileSync(join(stateDir, 'snapshots', `${snap.id}.mat`, 'pages.img'), 'half');
    e = await startEngine({ stateDir, env: { FAAS_CACHE_SIZE: '0', FAAS_WARM_POOL: '0' } });
    assert.deepEqual(chunkFiles(stateDir).sort(), referenced);
    assert.equal(readdirSync(join(stateDir, 'store', 'manifests')).includes('snap_gone.json'), false);
    assert.equal(readdirSync(join(stateDir, 'snapshots')).some((n) => n.endsWith('.mat')), false);
    const r = await e.api('POST', '/v1/instances', { snapshotId: snap.id });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal((await e.api('POST', `/v1/instances/${r.body.id}/exec`, sh('cat /tmp/k'))).body.stdout, 'held');
    await e.api('POST', `/v1/instances/${r.body.id}/stop`);
  });
});

describe('a full disk (state dir on a small tmpfs)', () => {
  const mnt = mkdtempSync('/tmp/faas-test-storage-full-');
  let e: TestEngine | undefined;
  before(() => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160m,mode=0700', 'tmpfs', mnt]);
  });
  after(async () => {
    await e?.engine.shutdown({ stopInstances: true, clean: true }).catch(() => undefined);
    try {
      execFileSync('umount', ['-l', join(mnt, 'runsc', 'null-netns')], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
    execFileSync('umount', ['-l', mnt]);
    purge(mnt);
  });

  it('a checkpoint that does not fit answers 507 storage_full, stores nothing, and the instance and older snapshots keep working', async () => {
    e = await startEngine({ stateDir: mnt, env: { FAAS_WARM_POOL: '0', FAAS_CACHE_DEDUPLICATION: 'false' } });
    const root = await e.api('POST', '/v1/snapshots', { memory: 1024, diskSize: 64 });
    assert.equal(root.status, 201, JSON.stringify(root.body));
    const inst = (await e.api('POST', '/v1/instances', { snapshotId: root.body.id })).body.id;
    await holdMemory(e, inst, 'big', 256);
    const before = (await e.api('GET', '/v1/snapshots?limit=200')).body.data.length;
    const r = await e.api('POST', `/v1/instances/${inst}/snapshot`, {});
    assert.equal(r.status, 507, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'storage_full');
    assert.match(r.body.error.message, /delete snapshots or free disk space/);
    assert.equal((await e.api('GET', '/v1/snapshots?limit=200')).body.data.length, before);
    assert.deepEqual(readdirSync(join(mnt, 'snapshots')).filter((n) => n.startsWith('.tmp-')), []);
    // The instance still runs, and the root still restores.
    assert.equal((await e.api('POST', `/v1/instances/${inst}/exec`, sh('cat /tmp/big'))).body.stdout, 'held');
    await e.api('POST', `/v1/instances/${inst}/stop`);
    const again = await e.api('POST', '/v1/instances', { snapshotId: root.body.id });
    assert.equal(again.status, 201, JSON.stringify(again.body));
    await e.api('POST', `/v1/instances/${again.body.id}/stop`);
  });
});



