// The deduplicated image store (store/images, docs/storage.md) on real files: chunks shared after
// page-granular shifts, garbage collection, what an engine killed mid-store or mid-delete leaves
// (reconcile at start-up), and a corrupt or missing chunk refused with image_corrupt.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FaasError } from '../src/core/errors.js';
import { toEvict, effective, DEFAULT_CACHE_CONFIG } from '../src/store/images/image-cache.js';
import { ImageStore } from '../src/store/images/image-store.js';

const MB = 1024 * 1024;
const root = mkdtempSync('/tmp/faas-test-storage-unit-');
after(() => rmSync(root, { recursive: true, force: true }));

function image(name: string, files: Record<string, Buffer>): string {
  const dir = join(root, name);
  mkdirSync(dir);
  for (const [f, b] of Object.entries(files)) writeFileSync(join(dir, f), b);
  return dir;
}

function chunkFiles(storeRoot: string): string[] {
  const out: string[] = [];
  for (const hh of readdirSync(join(storeRoot, 'chunks'))) for (const f of readdirSync(join(storeRoot, 'chunks', hh))) out.push(join(storeRoot, 'chunks', hh, f));
  return out;
}

describe('image store', () => {
  const base = randomBytes(48 * MB);
  // What the next checkpoint of the same instance looks like: 3 pages allocated early in the
  // memory file move everything after them by 12 KiB, and 2 MB elsewhere changed.
  const shifted = Buffer.concat([base.subarray(0, 4 * MB), randomBytes(3 * 4096), base.subarray(4 * MB)]);
  randomBytes(2 * MB).copy(shifted, 30 * MB);

  it('shares the unchanged pages of an image whose pages moved by whole pages', async () => {
    const s = new ImageStore(join(root, 'store1'));
    await s.ingest('snap_a', image('a', { 'pages.img': base, 'checkpoint.img': Buffer.from('meta-a') }));
    await s.ingest('snap_b', image('b', { 'pages.img': shifted, 'checkpoint.img': Buffer.from('meta-b') }));
    const a = s.usage('snap_a')!;
    const b = s.usage('snap_b')!;
    assert.equal(a.logicalBytes, base.length + 6);
    // Fixed-size chunks would share nothing after the shift at 4 MB; here only the chunks around
    // the two changes differ (each at most MAX_CHUNK = 4 MiB, usually ~1 MiB).
    assert.ok(b.exclusiveBytes < 14 * MB, `exclusive ${b.exclusiveBytes}`);
    assert.ok(b.sharedBytes > 34 * MB, `shared ${b.sharedBytes}`);
    assert.ok(s.totals().storedBytes < 62 * MB, `stored ${s.totals().storedBytes}`);
    // Both come back byte for byte.
    await s.materialize('snap_b', join(root, 'b-out'));
    assert.ok(readFileSync(join(root, 'b-out', 'pages.img')).equals(shifted));
    await s.materialize('snap_a', join(root, 'a-out'));
    assert.ok(readFileSync(join(root, 'a-out', 'pages.img')).equals(base));
  });

  it('removes exactly the chunks no remaining image names when one is dropped', async () => {
    const dir = join(root, 'store2');
    const s = new ImageStore(dir);
    await s.ingest('snap_a', image('c', { 'pages.img': base }));
    await s.ingest('snap_b', image('d', { 'pages.img': shifted }));
    const before = chunkFiles(dir).length;
    s.drop('snap_b');
    const usage = s.usage('snap_a')!;
    assert.equal(usage.sharedBytes, 0);
    assert.equal(usage.exclusiveBytes, base.length);
    assert.ok(chunkFiles(dir).length < before);
    // What is left assembles; every chunk left is named by snap_a (a fresh reconcile removes none).
    await s.materialize('snap_a', join(root, 'c-out'));
    assert.ok(readFileSync(join(root, 'c-out', 'pages.img')).equals(base));
    assert.equal(new ImageStore(dir).reconcile().removedChunks, 0);
    s.drop('snap_a');
    assert.deepEqual(chunkFiles(dir), []);
  });

  it('reconciles what an engine killed mid-store or mid-drop left: referenced chunks kept, the rest removed', async () => {
    const dir = join(root, 'store3');
    const s = new ImageStore(dir);
    await s.ingest('snap_a', image('e', { 'pages.img': base }));
    const kept = chunkFiles(dir).sort();
    // Killed mid-store: chunks written, no manifest yet, a temp chunk and a temp manifest.
    mkdirSync(join(dir, 'chunks', 'ff'), { recursive: true });
    writeFileSync(join(dir, 'chunks', 'ff', 'ff' + '0'.repeat(62)), randomBytes(4096));
    writeFileSync(join(dir, 'chunks', 'ff', '.tmp-ff' + '1'.repeat(62)), randomBytes(100));
    writeFileSync(join(dir, 'manifests', 'snap_x.json.tmp'), '{"version":1,"fi');
    // Killed mid-drop: the manifest of snap_y was removed, its exclusive chunk was not.
    writeFileSync(join(dir, 'chunks', 'ff', 'ff' + '2'.repeat(62)), randomBytes(4096));
    const again = new ImageStore(dir);
    const r = again.reconcile();
    assert.deepEqual(r.ids, ['snap_a']);
    assert.equal(r.removedChunks, 3);
    assert.deepEqual(chunkFiles(dir).sort(), kept);
    assert.deepEqual(readdirSync(join(dir, 'manifests')), ['snap_a.json']);
    await again.materialize('snap_a', join(root, 'e-out'));
    assert.ok(readFileSync(join(root, 'e-out', 'pages.img')).equals(base));
  });

  it('refuses to assemble an image with a corrupt or missing chunk (image_corrupt), leaving nothing behind', async () => {
    const dir = join(root, 'store4');
    const s = new ImageStore(dir);
    await s.ingest('snap_a', image('f', { 'pages.img': base }));
    const [victim, gone] = chunkFiles(dir);
    const bytes = readFileSync(victim);
    bytes[100] ^= 0xff;
    writeFileSync(victim, bytes);
    const out = join(root, 'f-out');
    await assert.rejects(s.materialize('snap_a', out), (e: FaasError) => e.code === 'image_corrupt' && /checksum mismatch/.test(e.message));
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(`${out}.mat`), false);
    bytes[100] ^= 0xff;
    writeFileSync(victim, bytes);
    rmSync(gone);
    await assert.rejects(s.materialize('snap_a', out), (e: FaasError) => e.code === 'image_corrupt' && /missing/.test(e.message));
  });

  it('compresses chunks when asked and that pays, and assembles them back', async () => {
    const dir = join(root, 'store5');
    const s = new ImageStore(dir);
    const text = Buffer.alloc(8 * MB, 'the same sentence over and over. ');
    await s.ingest('snap_z', image('g', { 'pages.img': text }), 6);
    assert.ok(s.totals().storedBytes < MB, `stored ${s.totals().storedBytes}`);
    assert.ok(chunkFiles(dir).every((f) => f.endsWith('.z')));
    await s.materialize('snap_z', join(root, 'g-out'));
    assert.ok(readFileSync(join(root, 'g-out', 'pages.img')).equals(text));
  });
});

describe('cache eviction policy', () => {
  const e = (id: string, bytes: number, lastUsed: number, p = {}) => ({ id, bytes, lastUsed, policy: effective(DEFAULT_CACHE_CONFIG, p) });
  it('evicts least recently used copies until the rest fit, never pinned ones', () => {
    const out = toEvict([e('a', 10, 1), e('b', 10, 3), e('c', 10, 2), e('p', 100, 0, { optimizationHints: { lazyLoading: false } })], 15, 10);
    assert.deepEqual(out, ['a', 'c']);
  });
  it('evicts copies of snapshots that opt out, are over their own cacheSize or past their ttl', () => {
    const out = toEvict([
      e('off', 1, 9, { cacheConfig: { enableSnapshotCache: false } }),
      e('big', 100, 9, { cacheConfig: { cacheSize: 50 } }),
      e('old', 1, 0, { cacheConfig: { ttl: 5 } }),
      e('new', 1, 9_000, { cacheConfig: { ttl: 5 } }),
    ], 1000, 10_000);
    assert.deepEqual(out, ['off', 'big', 'old']);
  });
  it('incrementalSnapshots: false means a whole image (no deduplication)', () => {
    assert.equal(effective(DEFAULT_CACHE_CONFIG, { optimizationHints: { incrementalSnapshots: false } }).deduplication, false);
  });
});
