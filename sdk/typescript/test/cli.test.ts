// The `faas` CLI, run as a child process against the test engine: every group, --json output that
// parses, exit codes (0 ok, 1 engine error, 2 usage, 3 unreachable, exec = the command's code).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closedPort, sharedSnapshotId, testClient } from './helpers/env.js';
import { ConflictError, ImageNotFoundError } from '../src/index.js';

const packageDir = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const bin = join(packageDir, 'dist/cli/main.js');
const client = testClient();
const startedInstances: string[] = [];
after(async () => {
  await Promise.all(startedInstances.map((id) => client.instances.delete(id).catch(() => undefined)));
});

function faas(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function faasJson<T = any>(args: string[], expectedCode = 0, env?: NodeJS.ProcessEnv): T {
  const result = faas([...args, '--json'], env);
  assert.equal(result.code, expectedCode, `faas ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

test('help, usage errors and unknown commands', () => {
  const help = faas(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /faas instance exec/);
  assert.equal(faas(['bogus']).code, 2);
  assert.equal(faas(['instance', 'bogus']).code, 2);
  const missing = faasJson(['instance', 'get'], 2);
  assert.equal(missing.error.code, 'usage');
  assert.equal(faas(['instance', 'list', '--no-such-flag']).code, 2);
});

test('engine errors: exit 1 with the envelope, and a next step in human mode', () => {
  const error = faasJson(['instance', 'get', 'inst_doesnotexist'], 1);
  assert.equal(error.error.code, 'instance_not_found');
  assert.match(error.error.requestId, /^req_/);
  const human = faas(['snapshot', 'get', 'snap_doesnotexist']);
  assert.equal(human.code, 1);
  assert.match(human.stderr, /faas snapshot list/);
});

test('an unreachable engine exits 3 and says how to start it', async () => {
  const env = { FAAS_ENDPOINT: `http://127.0.0.1:${await closedPort()}` };
  const human = faas(['instance', 'list'], env);
  assert.equal(human.code, 3);
  assert.match(human.stderr, /faas engine start/);
  assert.equal(faasJson(['image', 'list'], 3, env).error.code, 'network_error');
});

test('engine status of the test engine', () => {
  const status = faasJson(['engine', 'status']);
  assert.equal(status.running, true);
  assert.equal(status.endpoint, process.env.FAAS_ENDPOINT);
  const started = faasJson(['engine', 'start']);
  assert.equal(started.alreadyRunning, true);
});

test('engine start, status, logs and stop on a fresh state directory', async () => {
  const port = await closedPort();
  const dir = mkdtempSync(join(tmpdir(), 'faas-cli-engine-'));
  // No warm pool: this engine only proves start/stop; it never boots a sandbox.
  const env = { FAAS_STATE_DIR: dir, FAAS_PORT: String(port), FAAS_ENDPOINT: '', FAAS_API_KEY: '', FAAS_WARM_POOL: '0', FAAS_NETNS_POOL: '0', FAAS_SUBNET: process.env.FAAS_TEST_SUBNET ?? '10.221.0.0/16' };
  try {
    const started = faasJson(['engine', 'start'], 0, env);
    assert.equal(started.running, true);
    assert.equal(started.alreadyRunning, false);
    assert.equal(started.endpoint, `http://127.0.0.1:${port}`);
    assert.equal(faasJson(['engine', 'status'], 0, env).running, true);
    const creds = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8'));
    assert.equal(creds.endpoint, `http://127.0.0.1:${port}`);
    // With nothing configured but FAAS_STATE_DIR, the client finds the credentials itself.
    assert.ok(Array.isArray(faasJson(['image', 'list'], 0, env)));
    assert.ok(faasJson(['engine', 'logs'], 0, env).lines.length > 0);
    const stopped = faasJson(['engine', 'stop'], 0, env);
    assert.equal(stopped.wasRunning, true);
    assert.equal(stopped.liveInstances, 0, 'engine stop counts the instances it leaves running');
    const down = faas(['engine', 'status'], env);
    assert.equal(down.code, 3);
    assert.match(down.stdout, /faas engine start/);
    // A plain stop keeps the firewall (instances keep running); --clean removes it, also later.
    const chain = `FAAS-${JSON.parse(readFileSync(join(dir, 'network.json'), 'utf8')).tag}-`;
    const save = (tool: string) => spawnSync(tool, [], { encoding: 'utf8' }).stdout;
    assert.ok(save('iptables-save').includes(`-j ${chain}IN`));
    const cleaned = faasJson(['engine', 'stop', '--clean'], 0, env);
    assert.deepEqual([cleaned.wasRunning, cleaned.cleaned], [false, true]);
    for (const tool of ['iptables-save', 'ip6tables-save']) assert.ok(!save(tool).includes(chain), `${tool} still has ${chain}*`);
    assert.equal(faasJson(['engine', 'stop', '--clean'], 0, env).cleaned, true, 'again: nothing left, no error');
    assert.match(faas(['engine', 'stop', '--help'], env).stdout + faas(['engine', '--help'], env).stdout, /--clean/);
  } finally {
    faas(['engine', 'stop', '--clean'], env);
    spawnSync('umount', ['-l', join(dir, 'runsc/null-netns')], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('image list, get and import', () => {
  const images = faasJson(['image', 'list']);
  assert.ok(images.length >= 1);
  assert.equal(faasJson(['image', 'get', images[0].id]).id, images[0].id);
  assert.match(faas(['image', 'list']).stdout, /debian|ID/);
  const dir = mkdtempSync(join(tmpdir(), 'faas-cli-image-'));
  for (const sub of ['etc', 'bin', 'usr']) mkdirSync(join(dir, 'root', sub), { recursive: true });
  writeFileSync(join(dir, 'root/etc/hostname'), 'tiny\n');
  spawnSync('tar', ['-cf', join(dir, 'tiny.tar'), '-C', join(dir, 'root'), '.']);
  const name = `tiny-${Date.now()}`;
  try {
    const imported = faasJson(['image', 'import', join(dir, 'tiny.tar'), '--name', name]);
    assert.equal(imported.name, name);
    assert.equal(imported.source, 'tar');
    assert.equal(faas(['image', 'import', join(dir, 'tiny.tar')]).code, 2, '--name is required');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('image import with a taken name is a conflict', () => {
  const dir = mkdtempSync(join(tmpdir(), 'faas-cli-image-'));
  for (const sub of ['etc', 'bin', 'usr']) mkdirSync(join(dir, 'root', sub), { recursive: true });
  spawnSync('tar', ['-cf', join(dir, 'tiny.tar'), '-C', join(dir, 'root'), '.']);
  const name = `dup-${Date.now()}`;
  try {
    faasJson(['image', 'import', join(dir, 'tiny.tar'), '--name', name]);
    assert.equal(faasJson(['image', 'import', join(dir, 'tiny.tar'), '--name', name], 1).error.code, 'conflict');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A root filesystem tar with dash (and its libraries) copied from the default image, so it boots. */
function bootableTar(dir: string): string {
  const def = faasJson(['image', 'list']).find((i: { source: string }) => i.source === 'debootstrap');
  assert.ok(def, 'the default image is registered');
  const root = join(dir, 'root');
  for (const sub of ['bin', 'lib/x86_64-linux-gnu', 'lib64', 'etc']) mkdirSync(join(root, sub), { recursive: true });
  // The test runs as root beside the engine; the default image is where the install put it.
  const src = '/var/cache/faas/images/default/rootfs';
  spawnSync('cp', ['-L', join(src, 'bin/dash'), join(root, 'bin/sh')]);
  spawnSync('cp', ['-L', join(src, 'lib/x86_64-linux-gnu/libc.so.6'), join(root, 'lib/x86_64-linux-gnu/')]);
  spawnSync('cp', ['-L', join(src, 'lib64/ld-linux-x86-64.so.2'), join(root, 'lib64/')]);
  spawnSync('tar', ['-czf', join(dir, 'boot.tar.gz'), '-C', root, '.']);
  return join(dir, 'boot.tar.gz');
}

test('image delete (SDK and CLI): 409 while a snapshot uses it, then 204; the default image stays', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'faas-cli-image-'));
  try {
    const image = await client.images.import(bootableTar(dir), { name: `del-${Date.now()}` });
    const snapshot = await client.snapshots.create({ imageId: image.id, memory: 256 });
    const busy = await client.images.delete(image.id).then(() => null, (e: unknown) => e);
    assert.ok(busy instanceof ConflictError, String(busy));
    assert.equal(busy.statusCode, 409);
    assert.deepEqual(busy.details?.snapshots, [snapshot.id]);
    const cliBusy = faasJson(['image', 'delete', image.id], 1);
    assert.equal(cliBusy.error.code, 'conflict');
    assert.match(faas(['image', 'delete', image.id]).stderr, /faas snapshot delete/);

    await client.snapshots.delete(snapshot.id, { force: true });
    await client.images.delete(image.id);
    await assert.rejects(client.images.get(image.id), ImageNotFoundError);

    const other = await client.images.import(join(dir, 'boot.tar.gz'), { name: `del-cli-${Date.now()}` });
    assert.deepEqual(faasJson(['image', 'delete', other.id]), { id: other.id, deleted: true });
    assert.equal(faasJson(['image', 'delete', other.id], 1).error.code, 'image_not_found');

    const def = faasJson(['image', 'list']).find((i: { source: string }) => i.source === 'debootstrap');
    const refused = faasJson(['image', 'delete', def.id], 1);
    assert.equal(refused.error.code, 'conflict');
    assert.equal(refused.error.details.reason, 'default_image');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('snapshot create, exec, get, list and delete', () => {
  const created = faasJson(['snapshot', 'create', '--memory', '256', '--metadata', 'cli=yes', '--env', 'GREETING=hi']);
  assert.equal(created.resources.memory, 256);
  assert.deepEqual(created.environment, { GREETING: 'hi' });
  const step = faasJson(['snapshot', 'exec', created.id, 'echo $GREETING > /root/g']);
  assert.equal(step.parentId, created.id);
  assert.equal(faasJson(['snapshot', 'get', step.id]).id, step.id);
  const listed = faasJson(['snapshot', 'list', '--metadata', 'cli=yes']);
  assert.ok(listed.some((s: { id: string }) => s.id === created.id));
  const failed = faasJson(['snapshot', 'exec', created.id, 'exit 4'], 1);
  assert.equal(failed.error.code, 'exec_failed');
  assert.equal(failed.error.details.exitCode, 4);
  assert.equal(faasJson(['snapshot', 'delete', created.id], 1).error.code, 'conflict');
  assert.equal(faasJson(['snapshot', 'delete', created.id, '--force']).deleted, true);
});

test('instance lifecycle, exec exit codes, metrics, snapshot and branch', () => {
  const inst = faasJson(['instance', 'start', sharedSnapshotId(), '--metadata', 'cli=yes']);
  startedInstances.push(inst.id);
  assert.equal(inst.state, 'ready');
  assert.ok(faasJson(['instance', 'list', '--state', 'ready']).some((i: { id: string }) => i.id === inst.id));
  assert.equal(faas(['instance', 'list', '--state', 'nonsense']).code, 2);
  assert.equal(faasJson(['instance', 'get', inst.id]).id, inst.id);

  const streamed = faas(['instance', 'exec', inst.id, 'echo out; echo err >&2; exit 5']);
  assert.equal(streamed.code, 5);
  assert.equal(streamed.stdout, 'out\n');
  assert.equal(streamed.stderr, 'err\n');
  const json = faas(['instance', 'exec', inst.id, '--json', '--', 'echo', 'hi']);
  assert.equal(json.code, 0);
  assert.equal(JSON.parse(json.stdout).stdout, 'hi\n');
  // Several words after `--` are argv, not a shell line: the README's example, quotes and all.
  const argv = faas(['instance', 'exec', inst.id, '--', 'python3', '-c', 'print(6*7)']);
  assert.equal(argv.code, 0, argv.stderr);
  assert.equal(argv.stdout, '42\n');

  assert.ok(faasJson(['instance', 'metrics', inst.id]).memory.limitBytes > 0);
  assert.equal(faasJson(['instance', 'pause', inst.id]).state, 'paused');
  const notReady = faas(['instance', 'exec', inst.id, 'true']);
  assert.equal(notReady.code, 1);
  assert.match(notReady.stderr, /faas instance resume/);
  assert.equal(faasJson(['instance', 'resume', inst.id]).state, 'ready');
  const snap = faasJson(['instance', 'snapshot', inst.id]);
  assert.equal(snap.instanceId, inst.id);
  const branched = faasJson(['instance', 'branch', inst.id, '--count', '2']);
  assert.equal(branched.instances.length, 2);
  startedInstances.push(...branched.instances.map((i: { id: string }) => i.id));
  for (const child of branched.instances) assert.equal(faasJson(['instance', 'delete', child.id]).deleted, true);
  assert.equal(faasJson(['instance', 'restart', inst.id]).state, 'ready');
  assert.equal(faasJson(['instance', 'stop', inst.id]).state, 'stopped');
  assert.equal(faasJson(['instance', 'delete', inst.id]).deleted, true);
});

test('branch create, list, get, checkout, commit, delete, and named live branches', () => {
  const name = `cli-${Date.now()}`;
  const b = faasJson(['branch', 'create', sharedSnapshotId(), '--name', name, '--metadata', 'cli=yes']);
  assert.equal(b.head, sharedSnapshotId());
  assert.equal(faasJson(['branch', 'create', sharedSnapshotId(), '--name', name], 1).error.code, 'branch_name_taken');
  assert.deepEqual(faasJson(['branch', 'list', '--name', name]).map((x: { id: string }) => x.id), [b.id]);
  assert.equal(faasJson(['branch', 'get', b.id]).name, name);
  const notOut = faas(['branch', 'commit', b.id]);
  assert.equal(notOut.code, 1);
  assert.match(notOut.stderr, /faas branch checkout/);
  const inst = faasJson(['branch', 'checkout', b.id]);
  startedInstances.push(inst.id);
  assert.equal(inst.state, 'ready');
  assert.equal(faasJson(['branch', 'checkout', b.id]).id, inst.id);
  const snap = faasJson(['branch', 'commit', b.id, '--message', 'from the cli']);
  assert.equal(snap.metadata.message, 'from the cli');
  assert.equal(faasJson(['branch', 'get', b.id]).head, snap.id);
  const forked = faasJson(['instance', 'branch', inst.id, '--name', `${name}-x`]);
  startedInstances.push(...forked.instances.map((i: { id: string }) => i.id));
  assert.equal(forked.branches[0].parentId, b.id);
  assert.equal(faasJson(['branch', 'list', '--parent', b.id])[0].id, forked.branches[0].id);
  assert.equal(faasJson(['branch', 'delete', b.id], 1).error.code, 'branch_has_children');
  assert.equal(faasJson(['branch', 'delete', b.id, '--force']).deleted, true);
  assert.equal(faasJson(['branch', 'delete', forked.branches[0].id]).deleted, true);
  const gone = faas(['branch', 'get', b.id]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /faas branch list/);
});

test('instance checkpoint, timeline, rollback, restart --from-latest-checkpoint and snapshot clone', () => {
  const inst = faasJson(['instance', 'start', sharedSnapshotId()]);
  startedInstances.push(inst.id);
  faas(['instance', 'exec', inst.id, 'echo one > /root/v']);
  const ck = faasJson(['instance', 'checkpoint', inst.id, '--metadata', 'by=cli']);
  assert.equal(ck.instanceId, inst.id);
  assert.deepEqual(ck.metadata, { by: 'cli' });
  const timeline = faasJson(['instance', 'timeline', inst.id]);
  assert.deepEqual(timeline.map((e: { snapshotId: string; inherited: boolean }) => [e.snapshotId, e.inherited]), [[sharedSnapshotId(), true], [ck.id, false]]);
  // Human output numbers the entries with the --steps that reaches each one.
  assert.match(faas(['instance', 'timeline', inst.id]).stdout, new RegExp(`\\n1 +${ck.id}`));
  faas(['instance', 'exec', inst.id, 'echo two > /root/v']);
  assert.equal(faasJson(['instance', 'rollback', inst.id]).id, inst.id);
  assert.equal(faas(['instance', 'exec', inst.id, 'cat /root/v']).stdout, 'one\n');
  const past = faas(['instance', 'rollback', inst.id, '--steps', '3', '--json']);
  assert.equal(past.code, 1);
  assert.equal(JSON.parse(past.stdout).error.code, 'no_checkpoint');
  assert.equal(faas(['instance', 'rollback', inst.id, '--steps', '0']).code, 2);
  faas(['instance', 'exec', inst.id, 'echo three > /root/v']);
  assert.equal(faasJson(['instance', 'restart', inst.id, '--from-latest-checkpoint']).state, 'ready');
  assert.equal(faas(['instance', 'exec', inst.id, 'cat /root/v']).stdout, 'one\n');
  const clone = faasJson(['snapshot', 'clone', ck.id]);
  assert.notEqual(clone.id, ck.id);
  assert.equal(clone.parentId, ck.parentId);
  assert.equal(faasJson(['instance', 'delete', inst.id]).deleted, true);
  for (const id of [clone.id, ck.id]) assert.equal(faasJson(['snapshot', 'delete', id]).deleted, true);
});

test('egress and bandwidth flags: instance start, network, branch; bad values are usage errors or 400s', () => {
  const inst = faasJson(['instance', 'start', sharedSnapshotId(), '--deny-egress', '--allow', '10.0.0.0/8', '--allow', 'Example.com', '--bandwidth', '25']);
  startedInstances.push(inst.id);
  assert.deepEqual(inst.networkConfig.egress, { mode: 'deny-all', allow: ['10.0.0.0/8', 'example.com'], deny: [], dns: true });
  assert.equal(inst.resources.networkBandwidth, 25);
  const shown = faas(['instance', 'network', inst.id]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(shown.stdout, `${inst.id} egress deny-all; allow 10.0.0.0/8,example.com; bandwidth 25 Mbit/s\n`);
  const changed = faasJson(['instance', 'network', inst.id, '--deny', '192.0.2.0/24', '--no-dns', '--bandwidth', 'none']);
  assert.deepEqual(changed.networkConfig.egress, { mode: 'allow-all', allow: [], deny: ['192.0.2.0/24'], dns: false });
  assert.equal(changed.resources.networkBandwidth, null);
  const branched = faasJson(['instance', 'branch', inst.id, '--count', '1', '--bandwidth', '7']);
  startedInstances.push(branched.instances[0].id);
  assert.deepEqual(branched.instances[0].networkConfig, changed.networkConfig, 'inherited');
  assert.equal(branched.instances[0].resources.networkBandwidth, 7, 'overridden');
  assert.equal(faasJson(['instance', 'network', inst.id, '--bandwidth', 'fast'], 2).error.code, 'usage');
  const bad = faasJson(['instance', 'network', inst.id, '--deny', '10.0.0.1/8'], 1);
  assert.equal(bad.error.code, 'invalid_request');
  assert.match(bad.error.message, /did you mean 10\.0\.0\.0\/8/);
});

test('instance cp both ways and shell --json', (t) => {
  const inst = faasJson(['instance', 'start', sharedSnapshotId()]);
  startedInstances.push(inst.id);
  const dir = mkdtempSync(join(tmpdir(), 'faas-cli-cp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'up/inner'), { recursive: true });
  writeFileSync(join(dir, 'up/inner/f.txt'), 'cp works');
  assert.ok(faasJson(['instance', 'cp', join(dir, 'up'), `${inst.id}:/root/up`]).files >= 1);
  assert.equal(faas(['instance', 'exec', inst.id, 'cat /root/up/inner/f.txt']).stdout, 'cp works');
  faasJson(['instance', 'cp', `${inst.id}:/root/up`, join(dir, 'down')]);
  assert.equal(readFileSync(join(dir, 'down/inner/f.txt'), 'utf8'), 'cp works');
  assert.equal(faas(['instance', 'cp', 'a', 'b']).code, 2);
  const shell = faasJson(['instance', 'shell', inst.id, '--command', 'echo from-shell; exit 3'], 3);
  assert.equal(shell.exitCode, 3);
  assert.match(shell.output, /from-shell/);
});

test('key create/list/revoke and token create, with --json', () => {
  const created = faasJson(['key', 'create', 'cli-tenant']);
  assert.match(created.id, /^key_/);
  assert.match(created.secret, /^faas_/);
  assert.equal(created.admin, false);
  const human = faas(['key', 'create', 'cli-admin', '--admin']);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /secret: faas_/);
  const listed = faasJson<{ id: string; name: string }[]>(['key', 'list']);
  assert.ok(listed.some((k) => k.id === created.id && !('secret' in k)));
  assert.ok(faas(['key', 'list', '-q']).stdout.split('\n').includes(created.id));
  assert.match(faas(['key', 'list', '--format', '{{id}} {{admin}}']).stdout, new RegExp(`^${created.id} false$`, 'm'));
  // The new key mints its own token; it is not an admin key, so it cannot list keys.
  const token = faasJson(['token', 'create', '--expires-in', '120', '--api-key', created.secret]);
  assert.match(token.token, /^faastok\./);
  assert.equal(token.keyId, created.id);
  assert.equal(faasJson(['key', 'list', '--api-key', created.secret], 1).error.code, 'forbidden');
  // key show: the key to paste into /login, and where it came from.
  const shown = faasJson<{ apiKey: string; source: string; loginUrl: string }>(['key', 'show', '--api-key', created.secret]);
  assert.equal(shown.apiKey, created.secret);
  assert.equal(shown.source, '--api-key');
  assert.match(shown.loginUrl, /^http:\/\/.+\/login$/);
  assert.match(faas(['key', 'show', '--api-key', created.secret]).stdout, /log in at http/);
  assert.equal(faasJson(['key', 'revoke', created.id]).revoked, true);
  assert.equal(faasJson(['instance', 'list', '--api-key', token.token], 1).error.code, 'key_revoked');
  const adminId = listed.find((k) => k.name === 'cli-admin')!.id;
  faasJson(['key', 'revoke', adminId]);
  assert.equal(faasJson(['token', 'create', '--expires-in', 'soon'], 2).error.code, 'usage');
});

test('snapshot diff (stat lines, patches, --json), merge conflicts that say what to do, merge --theirs PATH', async () => {
  const parent = await client.instances.start({ snapshotId: sharedSnapshotId() });
  startedInstances.push(parent.id);
  await parent.exec("mkdir -p /cli && printf 'one\\ntwo\\n' > /cli/t && echo base > /cli/c");
  const { snapshot: fork, instances: kids } = await client.instances.branch(parent.id, { count: 2 });
  startedInstances.push(...kids.map((k) => k.id));
  await client.execution.exec(kids[0].id, "printf 'one\\nTWO\\n' > /cli/t && echo a > /cli/c");
  await client.execution.exec(kids[1].id, 'echo b > /cli/c && echo new > "/cli/with space"');
  const a = await client.instances.snapshot(kids[0].id);
  const b = await client.instances.snapshot(kids[1].id);

  const human = faas(['snapshot', 'diff', fork.id, a.id]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^ M \/cli\/c +\| 2 \+-$/m);
  assert.match(human.stdout, /2 file\(s\) changed \(0 added, 2 modified/);
  assert.match(human.stdout, /^-two\n\+TWO$/m, 'the patches follow the stat lines');
  const stat = faas(['snapshot', 'diff', fork.id, a.id, '--stat']);
  assert.doesNotMatch(stat.stdout, /^@@/m);
  const json = faasJson(['snapshot', 'diff', fork.id, b.id]);
  assert.deepEqual(json.files.map((f: any) => `${f.change} ${f.path}`), ['modified /cli/c', 'added /cli/with space']);

  const refused = faas(['snapshot', 'merge', a.id, b.id]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /modify\/modify +\/cli\/c/);
  assert.match(refused.stderr, /--theirs PATH/);
  assert.equal(faasJson(['snapshot', 'merge', a.id, b.id], 1).error.code, 'merge_conflict');
  const merged = faasJson(['snapshot', 'merge', a.id, b.id, '--theirs', '/cli/c']);
  assert.equal(merged.parentId, a.id);
  const m = await client.instances.start({ snapshotId: merged.id });
  startedInstances.push(m.id);
  assert.equal((await m.exec('cat /cli/t /cli/c "/cli/with space"')).stdout, 'one\nTWO\nb\nnew\n');
  assert.equal(faas(['snapshot', 'merge', a.id]).code, 2, 'one snapshot is a usage error');
});

test('snapshot exec prints the step output while it runs, and says when the step cache answered', async () => {
  const step = 'echo cli-first; while [ ! -e /root/go ]; do sleep 0.05; done; echo cli-second';
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [bin, 'snapshot', 'exec', sharedSnapshotId(), step], { env: process.env });
  let stdout = '';
  let stderr = '';
  let released = false;
  child.stdout.on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((ok) => child.on('close', ok));
  for await (const chunk of child.stderr) {
    stderr += chunk;
    // Order, not time: the step cannot end before the CLI has printed its first line, because it
    // waits for a file written only now.
    if (!released && stderr.includes('cli-first')) {
      released = true;
      const [live] = await client.instances.list({ metadata: { 'faas.step': 'exec' }, state: 'ready' }).toArray();
      assert.ok(live, 'the step is still running when its first line is printed');
      await client.files.write(live.id, '/root/go', '');
    }
  }
  assert.equal(await exited, 0, stderr);
  assert.ok(released);
  assert.match(stdout.trim(), /^snap_[a-z0-9]+$/);
  assert.match(stderr, /cli-first\n[\s\S]*cli-second\n/);
  assert.doesNotMatch(stderr, /cached/);

  const again = faas(['snapshot', 'exec', sharedSnapshotId(), step]);
  assert.equal(again.code, 0);
  assert.equal(again.stdout.trim(), stdout.trim(), 'the same snapshot');
  assert.match(again.stderr, /cli-first\ncli-second\n[\s\S]*cached/);
  const json = faasJson(['snapshot', 'exec', sharedSnapshotId(), step]);
  assert.equal(json.cached, true);
  assert.equal(json.stepResult.stdout, 'cli-first\ncli-second\n');
  await client.snapshots.delete(json.id, { force: true });
});

test('snapshot upload copies a local file in as a cached step', () => {
  const dir = mkdtempSync(join(tmpdir(), 'faas-cli-upload-'));
  try {
    writeFileSync(join(dir, 'f.txt'), 'cli-upload');
    const first = faasJson(['snapshot', 'upload', sharedSnapshotId(), join(dir, 'f.txt'), '/root/cli-upload.txt']);
    assert.equal(first.cached, false);
    assert.equal(first.parentId, sharedSnapshotId());
    const again = faas(['snapshot', 'upload', sharedSnapshotId(), join(dir, 'f.txt'), '/root/cli-upload.txt']);
    assert.equal(again.code, 0);
    assert.equal(again.stdout.trim(), first.id);
    assert.match(again.stderr, /cached/);
    assert.equal(faasJson(['snapshot', 'upload', sharedSnapshotId()], 2).error.code, 'usage');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('instance expose, services and hide (--json and human), start --wake-on', () => {
  const inst = faasJson(['instance', 'start', sharedSnapshotId(), '--wake-on', 'http']);
  startedInstances.push(inst.id);
  assert.deepEqual(inst.wakeOn, { http: true, ssh: false });
  assert.equal(faas(['instance', 'start', sharedSnapshotId(), '--wake-on', 'ftp']).code, 2);
  const web = faasJson(['instance', 'expose', inst.id, 'web', '--port', '8080', '--auth', 'token']);
  assert.equal(web.auth, 'token');
  assert.match(web.tokenUrl, /\?faas_token=faassvc\./);
  const human = faas(['instance', 'expose', inst.id, 'api', '--port', '3000']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`^http://api-${inst.id.replace('_', '-')}\\.`));
  assert.equal(faas(['instance', 'expose', inst.id, 'web']).code, 2); // no --port
  assert.equal(faas(['instance', 'expose', inst.id, 'web', '--port', '80', '--auth', 'open']).code, 2);
  assert.deepEqual(faasJson(['instance', 'services', inst.id]).map((s: { name: string }) => s.name), ['api', 'web']);
  assert.equal(faasJson(['instance', 'hide', inst.id, 'api']).hidden, true);
  const missing = faasJson(['instance', 'hide', inst.id, 'api'], 1);
  assert.equal(missing.error.code, 'service_not_found');
});
