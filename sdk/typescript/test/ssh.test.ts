// SSHClient over the engine's SSH gateway: exec, files and trees with modes, a PTY shell, typed
// errors; sshKeys add/list/remove with a registered private key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaaSClient, SSHAuthenticationError, SSHClient, SSHError, type Instance } from '../src/index.js';
import { InstanceTracker, requireEngine, testClient } from './helpers/env.js';

const client = testClient();
const tracker = new InstanceTracker(client);
let instance: Instance;
let dir: string;
before(async () => {
  instance = await tracker.start();
  dir = mkdtempSync(join(tmpdir(), 'faas-sdk-ssh-'));
});
after(async () => {
  await tracker.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('execCommand separates stdout and stderr and reports the exit code', async () => {
  const ssh = new SSHClient(client);
  await ssh.connect(instance);
  try {
    const r = await ssh.execCommand('echo out; echo err >&2; exit 5');
    assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', exitCode: 5, signal: null });
    const killed = await ssh.execCommand('kill -KILL $$');
    assert.equal(killed.signal, 'SIGKILL');
    assert.equal(killed.exitCode, null);
  } finally {
    await ssh.disconnect();
  }
});

test('putFile/getFile and putDirectory/getDirectory keep contents, modes and symlinks', async () => {
  const ssh = await client.ssh.connect(instance);
  try {
    const src = join(dir, 'tree');
    mkdirSync(join(src, 'bin'), { recursive: true });
    writeFileSync(join(src, 'bin', 'run.sh'), '#!/bin/sh\necho ran\n');
    chmodSync(join(src, 'bin', 'run.sh'), 0o750);
    writeFileSync(join(src, 'secret'), 'x'.repeat(100_000));
    chmodSync(join(src, 'secret'), 0o600);
    symlinkSync('bin/run.sh', join(src, 'link'));
    await ssh.putDirectory(src, '/root/tree');
    const r = await ssh.execCommand('cd /root/tree && stat -c "%n %a" bin bin/run.sh secret && readlink link && ./bin/run.sh');
    assert.equal(r.stdout, `bin ${(statSync(join(src, 'bin')).mode & 0o777).toString(8)}\nbin/run.sh 750\nsecret 600\nbin/run.sh\nran\n`);
    const back = join(dir, 'back');
    await ssh.getDirectory('/root/tree', back);
    assert.equal(readFileSync(join(back, 'secret'), 'utf8'), 'x'.repeat(100_000));
    assert.equal(statSync(join(back, 'secret')).mode & 0o777, 0o600);
    assert.equal(statSync(join(back, 'bin', 'run.sh')).mode & 0o777, 0o750);
    assert.equal(readlinkSync(join(back, 'link')), 'bin/run.sh');

    writeFileSync(join(dir, 'one.txt'), 'one');
    chmodSync(join(dir, 'one.txt'), 0o640);
    await ssh.putFile(join(dir, 'one.txt'), '/tmp/one.txt');
    await ssh.getFile('/tmp/one.txt', join(dir, 'one-back.txt'));
    assert.equal(readFileSync(join(dir, 'one-back.txt'), 'utf8'), 'one');
    assert.equal(statSync(join(dir, 'one-back.txt')).mode & 0o777, 0o640);
    await assert.rejects(ssh.getFile('/nonexistent', join(dir, 'x')), SSHError);
  } finally {
    await ssh.disconnect();
  }
});

test('createShell runs a login shell on a PTY: input, resize, exit status', async () => {
  const ssh = await client.ssh.connect(instance);
  try {
    const shell = await ssh.createShell({ cols: 100, rows: 30 });
    let out = '';
    shell.on('data', (d: Buffer) => (out += d.toString()));
    shell.write('stty size\n');
    await waitFor(() => /30 100/.test(out));
    shell.resize(120, 40);
    shell.write('stty size; exit 4\n');
    assert.equal(await shell.exited, 4);
    assert.match(out, /40 120/);
    // A signal request reaches the shell (an interactive shell ignores INT and TERM; KILL it).
    const second = await ssh.createShell();
    let prompt = '';
    second.on('data', (d: Buffer) => (prompt += d.toString()));
    await waitFor(() => /# $/.test(prompt));
    second.signal('KILL');
    assert.equal(await second.exited, 137);
  } finally {
    await ssh.disconnect();
  }
});

test('a registered private key logs in; an unknown one and another key\'s instance are typed errors', async () => {
  const keyPath = join(dir, 'id');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'sdk-test', '-f', keyPath]);
  const privateKey = readFileSync(keyPath);
  await assert.rejects(client.ssh.connect(instance, { privateKey }), SSHAuthenticationError);
  const added = await client.sshKeys.add(readFileSync(`${keyPath}.pub`, 'utf8'));
  assert.equal(added.name, 'sdk-test');
  const listed = await client.sshKeys.list().toArray();
  assert.ok(listed.some((k) => k.id === added.id));
  const ssh = await client.ssh.connect(instance, { privateKey });
  assert.equal((await ssh.execCommand('echo key')).stdout, 'key\n');
  await ssh.disconnect();
  await client.sshKeys.remove(added.id);
  await assert.rejects(client.ssh.connect(instance, { privateKey }), SSHAuthenticationError);

  // Another API key (its own credential is a valid login) cannot use this instance.
  const other = await client.keys.create({ name: 'ssh-other' });
  const otherClient = new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: other.secret });
  const theirs = await otherClient.ssh.connect(instance.id);
  await assert.rejects(theirs.execCommand('true'), (e: unknown) => e instanceof SSHError && /no instance/.test((e as Error).message));
  await theirs.disconnect();
  await client.keys.revoke(other.id);
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(cond());
}
