// Files: write/read/stat/list/mkdir/rename/remove, upload and download of trees, copy between
// instances.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, symlinkSync, readlinkSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileNotFoundError, ConflictError, type Instance } from '../src/index.js';
import { InstanceTracker, testClient } from './helpers/env.js';

const client = testClient();
const tracker = new InstanceTracker(client);
let instance: Instance;
before(async () => {
  instance = await tracker.start();
});
after(() => tracker.cleanup());

test('write, read, stat, list, mkdir, rename, remove', async (t) => {
  const info = await instance.files.write('/root/dir/hello.txt', 'hello', { mode: '0600' });
  assert.equal(info.size, 5);
  assert.equal(info.mode, 0o600);
  assert.equal(await instance.files.readText('/root/dir/hello.txt'), 'hello');
  assert.deepEqual([...(await client.files.read(instance, '/root/dir/hello.txt'))], [...Buffer.from('hello')]);
  assert.equal((await instance.files.stat('/root/dir')).type, 'directory');
  await instance.files.mkdir('/root/dir/sub/deeper', { parents: true });
  await assert.rejects(instance.files.mkdir('/root/dir/sub'), ConflictError);
  const names = (await instance.files.list('/root/dir')).map((f) => f.name);
  assert.deepEqual(names, ['hello.txt', 'sub']);
  await instance.files.rename('/root/dir/hello.txt', '/root/dir/moved.txt');
  await assert.rejects(instance.files.stat('/root/dir/hello.txt'), FileNotFoundError);
  await assert.rejects(instance.files.remove('/root/dir'), ConflictError);
  await instance.files.remove('/root/dir', { recursive: true });
  await assert.rejects(instance.files.list('/root/dir'), FileNotFoundError);
});

test('upload a directory tree and download it back', async (t) => {
  const local = mkdtempSync(join(tmpdir(), 'faas-files-'));
  t.after(() => rmSync(local, { recursive: true, force: true }));
  mkdirSync(join(local, 'src/nested'), { recursive: true });
  writeFileSync(join(local, 'src/a.txt'), 'A');
  writeFileSync(join(local, 'src/nested/b.bin'), Buffer.from([0, 1, 2, 255]));
  symlinkSync('a.txt', join(local, 'src/link'));
  const uploaded = await instance.files.upload(join(local, 'src'), '/srv/app');
  assert.ok(uploaded.files >= 2);
  assert.equal((await instance.exec('cat /srv/app/a.txt; echo; readlink /srv/app/link')).stdout, 'A\na.txt\n');

  await instance.files.download('/srv/app', join(local, 'back'));
  assert.equal(readFileSync(join(local, 'back/a.txt'), 'utf8'), 'A');
  assert.deepEqual([...readFileSync(join(local, 'back/nested/b.bin'))], [0, 1, 2, 255]);
  assert.equal(readlinkSync(join(local, 'back/link')), 'a.txt');

  await client.files.download(instance, '/srv/app/a.txt', join(local, 'single.txt'));
  assert.equal(readFileSync(join(local, 'single.txt'), 'utf8'), 'A');
  await client.files.upload(instance, join(local, 'single.txt'), '/srv/one.txt');
  assert.equal(await instance.files.readText('/srv/one.txt'), 'A');
  assert.ok(!existsSync(join(local, 'back/..', '..', 'escaped')));
});

test('copy between instances', async (t) => {
  const other = await tracker.start();
  await instance.files.write('/data/x/file.txt', 'copied');
  const result = await client.files.copy(instance, other, '/data/x', { toPath: '/dest' });
  assert.ok(result.files >= 1);
  assert.equal(await other.files.readText('/dest/x/file.txt'), 'copied');
  await other.delete();
});
