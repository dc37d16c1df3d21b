// Issue 16, the CLI a person enjoys: exec words after the program are the program's, piped stdin,
// a --timeout that says what happened, global options before the group, delete of several ids,
// branch that asks for --count, --version, completion, --format/-q and ages, prune, events,
// metrics, snapshot pools, local file errors and FAAS_PORT. Run against the test engine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closedPort, InstanceTracker, sharedSnapshotId, testClient } from './helpers/env.js';

const packageDir = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const bin = join(packageDir, 'dist/cli/main.js');
const client = testClient();
const tracker = new InstanceTracker(client);
after(() => tracker.cleanup());
const run = `ux${Date.now().toString(36)}`;

function faas(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, ...opts.env }, input: opts.input ?? '', encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
function faasJson<T = any>(args: string[], expectedCode = 0, env?: NodeJS.ProcessEnv): T {
  const r = faas([...args, '--json'], { env });
  assert.equal(r.code, expectedCode, `faas ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

test('--version, completion scripts for bash, zsh and fish', () => {
  const version = faas(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^faas \d+\.\d+\.\d+\n$/);
  assert.match(faasJson(['--version']).version, /^\d+\.\d+\.\d+$/);
  // The bash function completes groups and actions from the real command table.
  const script = faas(['completion', 'bash']).stdout;
  const complete = (words: string) =>
    spawnSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _faas; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).stdout.trim();
  assert.equal(complete('faas ins'), 'instance');
  assert.equal(complete('faas instance ex'), 'exec expose');
  assert.equal(complete('faas --json pr'), 'prune');
  assert.match(faas(['completion', 'zsh']).stdout, /^#compdef faas/);
  const fish = faas(['completion', 'fish']).stdout;
  assert.match(fish, /__fish_seen_subcommand_from snapshot; .* -a '.*\bpool\b/);
  assert.equal(faas(['completion', 'tcsh']).code, 2);
});

test('global options before the group name; unknown ones are usage errors', async () => {
  const endpoint = `http://127.0.0.1:${await closedPort()}`;
  const before = faas(['--endpoint', endpoint, 'instance', 'list']);
  assert.equal(before.code, 3, before.stderr);
  assert.equal(faas([`--endpoint=${endpoint}`, '--json', 'instance', 'list']).code, 3);
  assert.equal(faas(['instance', '--endpoint', endpoint, 'list']).code, 3);
  assert.equal(faas(['--bogus', 'instance', 'list']).code, 2);
  assert.ok(Array.isArray(JSON.parse(faas(['--json', 'image', 'list']).stdout)));
});

test('FAAS_PORT alone: engine status and instance list talk to the same port', async () => {
  const port = await closedPort();
  const dir = mkdtempSync(join(tmpdir(), 'faas-test-cli-port-'));
  const env = { FAAS_ENDPOINT: '', FAAS_HOST: '', FAAS_PORT: String(port), FAAS_STATE_DIR: dir, FAAS_API_KEY: 'k' };
  try {
    assert.equal(faasJson(['engine', 'status'], 3, env).endpoint, `http://127.0.0.1:${port}`);
    const list = faas(['instance', 'list'], { env });
    assert.equal(list.code, 3, list.stderr);
    const error = faasJson(['instance', 'list'], 3, env).error;
    assert.equal(error.code, 'network_error');
    assert.match(error.message, new RegExp(`:${port}\\b`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing local tar is a local file error (exit 1), not "cannot reach the engine"', () => {
  const human = faas(['image', 'import', '/nonexistent/rootfs.tar', '--name', 'x']);
  assert.equal(human.code, 1, human.stderr);
  assert.match(human.stderr, /does not exist/);
  assert.doesNotMatch(human.stderr, /engine running|faas engine start/);
  const json = faasJson(['image', 'import', '/nonexistent/rootfs.tar', '--name', 'x'], 1).error;
  assert.deepEqual([json.code, json.details.path, json.details.errno], ['local_file_error', '/nonexistent/rootfs.tar', 'ENOENT']);
});

test('an id of the wrong kind or a name: the message says which id and where to find one', () => {
  const r = faas(['instance', 'get', 'snap_abc']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /expected an instance id \(inst_…\), got "snap_abc", which is a snapshot id/);
  assert.doesNotMatch(r.stderr, /\^inst_|must match pattern/);
  assert.match(faas(['snapshot', 'get', 'my-base']).stderr, /names are not ids/);
});

test('exec: words after the program are its own, stdin is forwarded, --timeout says what happened', async () => {
  const inst = await tracker.start({ run });
  const ls = faas(['instance', 'exec', inst.id, 'ls', '-la', '/']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^total \d+/m);
  assert.match(ls.stdout, /\setc\n/);
  // Options of exec before the program still count; after it they are the program's.
  const env = faas(['instance', 'exec', inst.id, '--env', 'A=1', 'sh', '-c', 'echo $A; exit 3']);
  assert.deepEqual([env.code, env.stdout], [3, '1\n']);
  const cat = faas(['instance', 'exec', inst.id, 'cat'], { input: 'piped in\nline two\n' });
  assert.deepEqual([cat.code, cat.stdout], [0, 'piped in\nline two\n']);
  const wc = faas(['instance', 'exec', inst.id, '--no-stdin', 'wc', '-c'], { input: 'not read' });
  assert.equal(wc.stdout.trim(), '0');
  const slow = faas(['instance', 'exec', inst.id, '--timeout', '1000', 'sleep', '30']);
  assert.equal(slow.code, 124);
  assert.match(slow.stderr, /ran past --timeout 1000 ms and was killed; give it more with --timeout MS/);
  const slowJson = faasJson(['instance', 'exec', inst.id, '--timeout', '1000', 'sleep 30'], 124);
  assert.equal(slowJson.timedOut, true);
});

test('lists: ages, -q, --format json|yaml|template; a stopped instance shows no IP', async () => {
  const a = await tracker.start({ run, list: 'yes' });
  await client.instances.stop(a.id);
  const filter = ['--metadata', `run=${run}`, '--metadata', 'list=yes'];
  const table = faas(['instance', 'list', ...filter]);
  assert.match(table.stdout.split('\n')[0], /^ID\s+STATE\s+SNAPSHOT\s+PARENT\s+IP\s+AGE\s+TTL$/);
  const row = table.stdout.split('\n')[1].split(/\s+/);
  assert.deepEqual([row[0], row[1], row[4]], [a.id, 'stopped', '-']);
  assert.match(row[5], /^\d+[smhd]$/);
  assert.equal(faas(['instance', 'list', '-q', ...filter]).stdout, `${a.id}\n`);
  assert.equal(JSON.parse(faas(['instance', 'list', '--format', 'json', ...filter]).stdout)[0].id, a.id);
  assert.match(faas(['instance', 'list', '--format', 'yaml', ...filter]).stdout, new RegExp(`^- id: "${a.id}"\\n  snapshotId: `));
  assert.equal(faas(['instance', 'list', '--format', '{{id}} {{state}} {{network.ip}} {{metadata.list}}', ...filter]).stdout, `${a.id} stopped - yes\n`);
  assert.equal(faas(['instance', 'list', '--format', 'xml']).code, 2);
  assert.match(faas(['snapshot', 'list', '-q']).stdout, /^snap_/);
  assert.match(faas(['image', 'list']).stdout.split('\n')[0], /\bAGE$/);
});

test('instance delete of several ids reports each; branch needs --count', async () => {
  const [a, b] = await Promise.all([tracker.start({ run }), tracker.start({ run })]);
  assert.deepEqual(faasJson(['instance', 'delete', a.id, b.id]), [{ id: a.id, deleted: true }, { id: b.id, deleted: true }]);
  const c = await tracker.start({ run });
  const mixed = faas(['instance', 'delete', 'inst_doesnotexist', c.id]);
  assert.equal(mixed.code, 1);
  assert.match(mixed.stdout, /not deleted inst_doesnotexist: .*\ndeleted inst_/);
  assert.equal((await client.instances.list({ metadata: { run } }).toArray()).some((i) => i.id === c.id), false, 'the one after the failure went too');
  const branch = faas(['instance', 'branch', c.id]);
  assert.equal(branch.code, 2);
  assert.match(branch.stderr, /--count N/);
});

test('prune: --dry-run lists, then stopped instances and the snapshots nothing uses go', async () => {
  const label = ['--metadata', `prune=${run}`];
  const keep = await tracker.start({ run, prune: run });
  const gone = await tracker.start({ run, prune: run });
  const snap = await client.instances.snapshot(gone.id, { metadata: { prune: run } });
  await client.instances.stop(gone.id);
  const dry = faasJson(['prune', '--dry-run', ...label]);
  assert.deepEqual(dry.instances.map((i: { id: string }) => i.id), [gone.id]);
  assert.deepEqual(dry.snapshots.map((s: { id: string }) => s.id), [snap.id]);
  assert.equal((await client.instances.get(gone.id)).state, 'stopped', 'dry run deleted nothing');
  assert.match(faas(['prune', '--dry-run', ...label]).stdout, /would delete instance .*\nwould delete snapshot .*\nwould free/);
  const done = faasJson(['prune', ...label]);
  assert.deepEqual([done.instances[0].deleted, done.snapshots[0].deleted], [true, true]);
  assert.equal((await client.instances.get(keep.id)).state, 'ready', 'a running instance stays');
  assert.equal((await client.snapshots.get(sharedSnapshotId())).id, sharedSnapshotId());
  await assert.rejects(client.snapshots.get(snap.id));
});

test('events (replay and --follow), metrics, snapshot pool', async () => {
  const inst = await tracker.start({ run });
  const replay = faasJson(['events', '--resource', inst.id]);
  assert.ok(replay.some((e: { type: string }) => e.type === 'instance.ready'), JSON.stringify(replay));
  // --since the last replayed event: whatever happens after it is printed, however late it connects.
  const since = String(replay[replay.length - 1].seq);
  const follow = spawn(process.execPath, [bin, 'events', '--follow', '--since', since, '--resource', inst.id, '--json'], { env: process.env });
  let out = '';
  const stopped = new Promise<void>((ok) =>
    follow.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"instance.stopped"')) ok();
    }),
  );
  await client.instances.stop(inst.id);
  await stopped;
  follow.kill('SIGINT');
  const code = await new Promise((ok) => follow.once('exit', ok));
  assert.equal(code, 0);
  const metrics = faasJson(['metrics']);
  assert.equal(typeof metrics.instances.ready, 'number');
  assert.match(faas(['metrics']).stdout, /instances\s+pending \d+, ready \d+/);
  const pool = faasJson(['snapshot', 'pool', sharedSnapshotId()]);
  assert.equal(pool.snapshotId, sharedSnapshotId());
  assert.equal(faasJson(['snapshot', 'pool', sharedSnapshotId(), '--min', '0']).minInstances, 0);
  assert.equal(faas(['snapshot', 'pool', sharedSnapshotId(), '--max', '3']).code, 2);
});

test('instance logs: background output with pids, --tail, --json; the SDK reads FAAS_PORT like the CLI', async () => {
  const inst = await tracker.start({ run });
  const proc = await client.processes.start(inst.id, 'echo from-bg; echo bad >&2');
  await client.processes.wait(inst.id, proc.pid);
  const human = faas(['instance', 'logs', inst.id]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`^${proc.pid}\\* \\| started: echo from-bg`, 'm'));
  assert.match(human.stdout, new RegExp(`^${proc.pid} \\| from-bg$`, 'm'));
  assert.match(human.stderr, new RegExp(`^${proc.pid} \\| bad$`, 'm'));
  assert.match(human.stdout, new RegExp(`^${proc.pid}\\* \\| exited: exit code 0$`, 'm'));
  const json = faasJson(['instance', 'logs', inst.id, '--tail', '1']);
  assert.equal(json.entries.length, 1);
  assert.deepEqual(await inst.logs({ since: json.nextSeq }), { entries: [], nextSeq: json.nextSeq });
  const { resolveConfig } = await import('../src/core/config.js');
  assert.equal(resolveConfig({ apiKey: 'k' }, { FAAS_PORT: '7501' }).endpoint, 'http://127.0.0.1:7501');
  assert.equal(resolveConfig({ apiKey: 'k' }, { FAAS_HOST: '::', FAAS_PORT: '7501' }).endpoint, 'http://[::1]:7501');
  assert.equal(resolveConfig({ apiKey: 'k' }, { FAAS_PORT: '7501', FAAS_ENDPOINT: 'http://e:1' }).endpoint, 'http://e:1');
});
