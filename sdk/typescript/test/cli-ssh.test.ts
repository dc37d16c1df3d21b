// faas ssh-key add|list|remove, faas instance ssh (the system's ssh, a pinned host key, the API key
// as password or a registered key) and faas instance ssh-config, with --json.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedSnapshotId, testClient } from './helpers/env.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');
const client = testClient();
const home = mkdtempSync(join(tmpdir(), 'faas-cli-ssh-'));
// A HOME of its own: no ~/.ssh keys of the machine, the CLI's known_hosts in a fresh place.
const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
let instanceId = '';
after(async () => {
  if (instanceId) await client.instances.delete(instanceId).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

function faas(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('instance ssh runs a command with the API key as password and pins the host key', async () => {
  instanceId = (await client.instances.start({ snapshotId: sharedSnapshotId() })).id;
  const r = faas(['instance', 'ssh', instanceId, '--json', '--', 'echo', 'hi;', 'exit', '3']);
  assert.equal(r.code, 3, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { exitCode: 3, stdout: 'hi\n', stderr: '' });
  const host = await client.ssh.host();
  const known = readFileSync(join(home, '.config', 'faas', 'known_hosts'), 'utf8');
  assert.equal(known, `[127.0.0.1]:${host.port} ${host.hostKey.publicKey}\n`);
  const unknown = faas(['instance', 'ssh', 'inst_doesnotexist', '--', 'true']);
  assert.equal(unknown.code, 255);
  assert.match(unknown.stderr, /no instance "inst_doesnotexist"/);
});

test('ssh-key add/list/remove, and ssh-config gives a Host block ssh can use with that key', async () => {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cli-key', '-f', join(home, 'id')]);
  const added = JSON.parse(faas(['ssh-key', 'add', join(home, 'id.pub'), '--json']).stdout);
  assert.match(added.id, /^sshkey_/);
  assert.equal(added.name, 'cli-key');
  const listed = JSON.parse(faas(['ssh-key', 'list', '--json']).stdout);
  assert.ok(listed.some((k: { id: string }) => k.id === added.id));
  const human = faas(['ssh-key', 'list']);
  assert.match(human.stdout, new RegExp(added.fingerprint.replace(/[+/]/g, '\\$&')));
  assert.match(human.stdout, /\bAGE\b/);
  assert.ok(faas(['ssh-key', 'list', '-q']).stdout.split('\n').includes(added.id));
  assert.match(faas(['ssh-key', 'list', '--format', '{{name}} {{fingerprint}}']).stdout, new RegExp(`^cli-key ${added.fingerprint.replace(/[+/]/g, '\\$&')}$`, 'm'));

  const cfg = JSON.parse(faas(['instance', 'ssh-config', instanceId, '--name', 'box', '--json']).stdout);
  assert.equal(cfg.user, instanceId);
  const configFile = join(home, 'ssh_config');
  require_write(configFile, `${cfg.config}  IdentityFile ${join(home, 'id')}\n  IdentitiesOnly yes\n  BatchMode yes\n`);
  const viaConfig = spawnSync('ssh', ['-F', configFile, 'box', 'echo', 'config-ok'], { encoding: 'utf8', env });
  assert.equal(viaConfig.status, 0, viaConfig.stderr);
  assert.equal(viaConfig.stdout, 'config-ok\n');

  assert.equal(JSON.parse(faas(['ssh-key', 'remove', added.id, '--json']).stdout).removed, true);
  const refused = spawnSync('ssh', ['-F', configFile, 'box', 'true'], { encoding: 'utf8', env });
  assert.equal(refused.status, 255);
  const missing = faas(['ssh-key', 'add', join(home, 'nope.pub')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /ssh-keygen/);
});

function require_write(path: string, text: string): void {
  execFileSync('sh', ['-c', 'cat > "$0"', path], { input: text });
}
