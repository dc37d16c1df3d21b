// Branching a parent that holds a lot of written memory (issue 15). Restores load pages lazily
// (runsc restore --background): a child runs before its memory is all loaded, so these tests check
// that what each child reads is, byte for byte, what its parent held — the hash is computed over
// the whole region inside each child, touching every page while the background load still runs —
// and that a child's writes stay its own.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RunscRuntime } from '../src/runtime/runsc/runsc.js';
import { Spawner } from '../src/runtime/spawner.js';
import { loadConfig } from '../src/config.js';
import { startEngine, type TestEngine } from './harness.js';

/**
 * A Python process holding `mb` MiB of non-zero memory (a random 1 MiB block repeated, then every
 * MiB stamped with its index, so no two MiB are alike). SIGUSR1: write the sha256 of the whole
 * region to /tmp/sum. SIGUSR2: overwrite the first 8 MiB with fresh random bytes first.
 */
const HOLDER = (mb: number) => `cat > /tmp/holder.py <<'EOF'
import os, signal, time, hashlib
b = bytearray(os.urandom(1 << 20)) * ${mb}
for i in range(${mb}):
    b[i << 20:(i << 20) + 8] = i.to_bytes(8, 'little')
def report(*_):
    open('/tmp/sum.tmp', 'w').write(hashlib.sha256(b).hexdigest())
    os.rename('/tmp/sum.tmp', '/tmp/sum')
def scribble(*_):
    b[0:8 << 20] = os.urandom(8 << 20)
    report()
signal.signal(signal.SIGUSR1, report)
signal.signal(signal.SIGUSR2, scribble)
open('/tmp/holder.pid', 'w').write(str(os.getpid()))
report()
while True:
    time.sleep(3600)
EOF
nohup python3 /tmp/holder.py >/dev/null 2>&1 &
while [ ! -s /tmp/sum ]; do sleep 0.05; done; cat /tmp/sum`;

/** Asks the holder for the hash of its memory now (SIGUSR1 or, with scribble, SIGUSR2). */
const ASK = (sig: 'USR1' | 'USR2') => `rm -f /tmp/sum; kill -${sig} $(cat /tmp/holder.pid); while [ ! -s /tmp/sum ]; do sleep 0.05; done; cat /tmp/sum`;

describe('branching a parent that holds 256 MiB of written memory', () => {
  let t: TestEngine;
  const exec = async (id: string, command: string) => {
    const r = await t.api('POST', `/v1/instances/${id}/exec`, { command, timeout: 300_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.exitCode, 0, r.body.stderr);
    return (r.body.stdout as string).trim();
  };

  before(async () => {
    t = await startEngine();
  });
  after(async () => {
    await t?.close();
  });

  it('gives every child exactly the parent memory, and keeps each child’s writes its own', async () => {
    assert.equal(t.config.lazyRestore, true, 'lazy page loading is the default');
    const snap = (await t.api('POST', '/v1/snapshots', { memory: 1024 })).body;
    const parent = (await t.api('POST', '/v1/instances', { snapshotId: snap.id })).body.id;
    const sum = await exec(parent, HOLDER(256));
    assert.match(sum, /^[0-9a-f]{64}$/);

    const res = await t.api('POST', `/v1/instances/${parent}/branch`, { count: 3 });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const kids: string[] = res.body.instances.map((i: any) => i.id);
    // All three hash their whole region at once, right after the branch answered.
    const sums = await Promise.all(kids.map((k) => exec(k, ASK('USR1'))));
    assert.deepEqual(sums, [sum, sum, sum], 'every child reads the parent memory, byte for byte');

    // One child overwrites part of its memory: only it sees the change.
    const changed = await exec(kids[0], ASK('USR2'));
    assert.notEqual(changed, sum);
    assert.equal(await exec(kids[1], ASK('USR1')), sum, 'a sibling keeps the parent memory');
    assert.equal(await exec(kids[2], ASK('USR1')), sum);
    assert.equal(await exec(parent, ASK('USR1')), sum, 'the parent keeps its memory');
    assert.equal(await exec(kids[0], ASK('USR1')), changed, 'the writer keeps its write');

    // A child of a child (restored from an image taken of a lazily restored sandbox) carries the
    // change: the checkpoint waits for the pages still loading, so none is missing from the image.
    const grand = await t.api('POST', `/v1/instances/${kids[0]}/branch`, { count: 1 });
    assert.equal(grand.status, 201, JSON.stringify(grand.body));
    assert.equal(await exec(grand.body.instances[0].id, ASK('USR1')), changed);

    // A plain start of the branch point (not a branch) restores the same memory.
    const fresh = (await t.api('POST', '/v1/instances', { snapshotId: res.body.snapshot.id })).body.id;
    assert.equal(await exec(fresh, ASK('USR1')), sum);
  });

  it('branches from a lazily restored child before its pages are loaded', async () => {
    // The child is branched at once: its own background load is still running when the checkpoint
    // starts, and the checkpoint must wait for it rather than save holes.
    const snap = (await t.api('POST', '/v1/snapshots', { memory: 1024 })).body;
    const parent = (await t.api('POST', '/v1/instances', { snapshotId: snap.id })).body.id;
    const sum = await exec(parent, HOLDER(256));
    const child = (await t.api('POST', `/v1/instances/${parent}/branch`, { count: 1 })).body.instances[0].id;
    const grand = await t.api('POST', `/v1/instances/${child}/branch`, { count: 2 });
    assert.equal(grand.status, 201, JSON.stringify(grand.body));
    for (const g of grand.body.instances) assert.equal(await exec(g.id, ASK('USR1')), sum);
    assert.equal(await exec(child, ASK('USR1')), sum);
  });
});

describe('FAAS_LAZY_RESTORE', () => {
  it('is on by default and refuses anything but 0 or 1', () => {
    assert.equal(loadConfig({}).lazyRestore, true);
    assert.equal(loadConfig({ FAAS_LAZY_RESTORE: '0' }).lazyRestore, false);
    assert.throws(() => loadConfig({ FAAS_LAZY_RESTORE: 'yes' }), /FAAS_LAZY_RESTORE=yes: expected an integer from 0 to 1/);
  });

  it('puts --background on the restore command line unless turned off', async () => {
    // The argv the driver hands runsc, seen by a stand-in binary that records it (the real restore
    // is what the tests above run).
    const dir = mkdtempSync('/tmp/faas-test-memfork-argv-');
    const spawner = new Spawner();
    try {
      const bin = join(dir, 'runsc');
      writeFileSync(bin, `#!/bin/sh\necho "$@" >> ${dir}/argv\n`);
      chmodSync(bin, 0o755);
      const opts = { binary: bin, root: join(dir, 'root'), filestoreDir: join(dir, 'fs'), logDir: join(dir, 'logs'), spawner };
      await new RunscRuntime(opts).restore('lazy', '/b', '/img');
      await new RunscRuntime({ ...opts, lazyRestore: false }).restore('eager', '/b', '/img');
      const [lazy, eager] = readFileSync(join(dir, 'argv'), 'utf8').trim().split('\n');
      assert.match(lazy, / restore --detach --background --image-path=\/img --bundle=\/b lazy$/);
      assert.match(eager, / restore --detach --image-path=\/img --bundle=\/b eager$/);
    } finally {
      spawner.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
