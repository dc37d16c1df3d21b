// Images imported from a root-filesystem tar boot snapshots like the default image does.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { startEngine, type TestEngine } from './harness.js';

/** A minimal rootfs: dash and the two libraries it needs, copied from the default image. */
function minimalRootfsTar(gzip: boolean): Buffer {
  const src = join(realpathSync(loadConfig().defaultImageDir), 'rootfs');
  const dir = mkdtempSync('/tmp/faas-minroot-');
  try {
    for (const d of ['bin', 'lib/x86_64-linux-gnu', 'lib64', 'etc', 'tmp', 'root']) execFileSync('mkdir', ['-p', join(dir, d)]);
    execFileSync('cp', ['-L', join(src, 'bin/dash'), join(dir, 'bin/sh')]);
    execFileSync('cp', ['-L', join(src, 'lib/x86_64-linux-gnu/libc.so.6'), join(dir, 'lib/x86_64-linux-gnu/')]);
    execFileSync('cp', ['-L', join(src, 'lib64/ld-linux-x86-64.so.2'), join(dir, 'lib64/')]);
    return execFileSync('tar', [gzip ? '-cz' : '-c', '-C', dir, '.'], { maxBuffer: 64 << 20 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('images', () => {
  let t: TestEngine;
  before(async () => {
    t = await startEngine();
  });
  after(async () => {
    await t?.close();
  });

  it('imports a rootfs tar (plain and gzip), snapshots it and runs commands in it', async () => {
    for (const gzip of [false, true]) {
      const tar = minimalRootfsTar(gzip);
      const res = await t.api('POST', `/v1/images/import?name=mini-${gzip ? 'gz' : 'plain'}&metadata[kind]=test`, undefined, {
        headers: { 'content-type': 'application/x-tar' },
        raw: tar,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.source, 'tar');
      assert.match(res.body.digest, /^sha256:/);
      assert.deepEqual(res.body.metadata, { kind: 'test' });
      const snap = await t.api('POST', '/v1/snapshots', { imageId: res.body.id });
      assert.equal(snap.status, 201, JSON.stringify(snap.body));
      assert.equal(snap.body.imageId, res.body.id);
      const inst = await t.api('POST', '/v1/instances', { snapshotId: snap.body.id });
      const r = await t.api('POST', `/v1/instances/${inst.body.id}/exec`, { command: 'echo "minimal $((6*7))"' });
      assert.equal(r.body.stdout, 'minimal 42\n');
      await t.api('POST', `/v1/instances/${inst.body.id}/stop`);
    }
    const listed = await t.api('GET', '/v1/images?metadata[kind]=test');
    assert.equal(listed.body.data.length, 2);
    const dup = await t.api('POST', '/v1/images/import?name=mini-plain', undefined, { headers: { 'content-type': 'application/x-tar' }, raw: minimalRootfsTar(false) });
    assert.equal(dup.status, 409, 'image names are unique');
    assert.equal(dup.body.error.code, 'conflict');
  });

  it('refuses an empty body, a body that is not a tar, and a missing name, storing nothing', async () => {
    const before = (await t.api('GET', '/v1/images?limit=200')).body.data.length;
    const hdr = { 'content-type': 'application/x-tar' };
    const empty = await t.api('POST', '/v1/images/import?name=empty', undefined, { headers: hdr, raw: Buffer.alloc(0) });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.code, 'invalid_request');
    const junk = await t.api('POST', '/v1/images/import?name=junk', undefined, { headers: hdr, raw: readFileSync('/etc/os-release') });
    assert.equal(junk.status, 400);
    assert.equal(junk.body.error.code, 'invalid_request');
    const noName = await t.api('POST', '/v1/images/import', undefined, { headers: hdr, raw: minimalRootfsTar(false) });
    assert.equal(noName.status, 400);
    assert.equal((await t.api('GET', '/v1/images?limit=200')).body.data.length, before);
  });
});
