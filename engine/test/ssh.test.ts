// The SSH gateway with the real OpenSSH client: exec, a PTY shell, scp (SFTP and legacy), sftp
// batches, -L forwards, API-key passwords, and refusals (unknown instance, unknown key, another
// API key's instance, a sandbox's root dialling the gateway). docs/ssh.md, docs/security/ssh.md.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { startEngine, type TestEngine } from './harness.js';
import { run } from './run-client.js';
import { keygen as newKey, trustGateway } from './ssh-client.js';

describe('ssh gateway', () => {
  let t: TestEngine;
  let id: string;
  let port: number;
  let dir: string;
  let key: string;

  const common = () => ['-F', '/dev/null', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR'];
  /** `ssh [flags] <user>@host [command]`: args are the user, then the command's words. */
  const ssh = (args: string[], opts: { input?: string; identity?: string; host?: string; flags?: string[] } = {}) =>
    run('ssh', [...common(), ...(opts.flags ?? []), '-i', opts.identity ?? key, '-p', String(port), `${args[0]}@${opts.host ?? '127.0.0.1'}`, ...args.slice(1)], opts);
  const exec = (command: string) => t.api('POST', `/v1/instances/${id}/exec`, { command });
  const keygen = (name: string) => newKey(dir, name);

  before(async () => {
    // Every address, so that the firewall (not the bind address) is what keeps sandboxes out.
    t = await startEngine({ env: { FAAS_SSH_HOST: '0.0.0.0,::1' } });
    const snap = await t.api('POST', '/v1/snapshots', {});
    id = (await t.api('POST', '/v1/instances', { snapshotId: snap.body.id })).body.id;
    dir = mkdtempSync('/tmp/faas-test-ssh-client-');
    key = keygen('id_ed25519');
    const added = await t.api('POST', '/v1/ssh-keys', { publicKey: readFileSync(`${key}.pub`, 'utf8') });
    assert.equal(added.status, 201);
    assert.match(added.body.fingerprint, /^SHA256:/);
    assert.equal(added.body.fingerprint, execFileSync('ssh-keygen', ['-lf', `${key}.pub`]).toString().split(' ')[1]);
    const gateway = await trustGateway(t, dir);
    assert.equal(gateway.host.enabled, true);
    port = gateway.port;
  });
  after(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs a command: stdout and stderr apart, stdin, the exit code', async () => {
    const r = await ssh([id, 'echo out; echo err >&2; pwd; exit 7']);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'out\n/root\n');
    assert.equal(r.stderr, 'err\n');
    const wc = await ssh([id, 'wc -c'], { input: 'hello' });
    assert.equal(wc.stdout.trim(), '5');
    assert.equal(wc.code, 0);
  });

  it('forwards signals to a command without a PTY and reports exit-signal', async () => {
    const conn = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      conn.once('ready', () => resolve()).once('error', reject);
      conn.connect({ host: '127.0.0.1', port, username: id, privateKey: readFileSync(key), hostVerifier: () => true });
    });
    try {
      const r = await new Promise<{ out: string; code: number | null; signal?: string }>((resolve, reject) => {
        conn.exec("trap 'echo got-term; exit 9' TERM; echo ready; while :; do sleep 0.1; done", (err, ch) => {
          if (err) return reject(err);
          let out = '';
          let code: number | null = null;
          ch.on('data', (d: Buffer) => {
            out += d;
            if (out === 'ready\n') ch.signal('TERM');
          });
          ch.on('exit', (c: number | null) => (code = c));
          ch.on('close', () => resolve({ out, code }));
        });
      });
      assert.deepEqual(r, { out: 'ready\ngot-term\n', code: 9 });
      const killed = await new Promise<unknown[]>((resolve, reject) =>
        conn.exec('kill -KILL $$', (err, ch) => (err ? reject(err) : ch.on('exit', (...a: unknown[]) => resolve(a)).resume())),
      );
      assert.deepEqual(killed.slice(0, 2), [null, 'SIGKILL']);
    } finally {
      conn.end();
    }
  });

  it('answers over IPv6 too', async () => {
    const r = await ssh([id, 'hostname'], { host: '::1' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), id.replace(/_/g, '-'));
  });

  it('runs a shell on a PTY (ssh -tt) with its exit status', async () => {
    const r = await ssh([id], { flags: ['-tt'], input: 'tty; echo $((6*7))\nexit 3\n' });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/\d+/);
    assert.match(r.stdout, /42/);
  });

  it('copies directories both ways with scp -r over SFTP and with the legacy protocol (scp -O -r)', async () => {
    const src = join(dir, 'tree');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    writeFileSync(join(src, 'sub', 'b.bin'), Buffer.alloc(300_000, 7));
    chmodSync(join(src, 'sub', 'b.bin'), 0o640);
    chmodSync(join(src, 'sub'), 0o750);
    for (const legacy of [false, true]) {
      const remote = legacy ? '/tmp/legacy' : '/tmp/modern';
      const flags = [...common(), '-i', key, '-P', String(port), '-r', '-p', ...(legacy ? ['-O'] : [])];
      const up = await run('scp', [...flags, src, `${id}@127.0.0.1:${remote}`]);
      assert.equal(up.code, 0, up.stderr);
      const st = await exec(`cat ${remote}/a.txt; stat -c '%a' ${remote}/sub; stat -c '%a %s' ${remote}/sub/b.bin`);
      assert.equal(st.body.stdout, 'alpha\n750\n640 300000\n');
      const back = join(dir, legacy ? 'back-legacy' : 'back-modern');
      const down = await run('scp', [...flags, `${id}@127.0.0.1:${remote}`, back]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(readFileSync(join(back, 'a.txt'), 'utf8'), 'alpha\n');
      assert.deepEqual(readFileSync(join(back, 'sub', 'b.bin')), Buffer.alloc(300_000, 7));
      assert.equal(statSync(join(back, 'sub', 'b.bin')).mode & 0o777, 0o640);
      assert.equal(statSync(join(back, 'sub')).mode & 0o777, 0o750);
    }
  });

  it('runs sftp batches', async () => {
    writeFileSync(join(dir, 'up.txt'), 'via sftp\n');
    writeFileSync(join(dir, 'batch'), `pwd\nput ${join(dir, 'up.txt')} /tmp/up.txt\nchmod 600 /tmp/up.txt\nls -l /tmp/up.txt\nget /tmp/up.txt ${join(dir, 'down.txt')}\nrm /tmp/up.txt\n`);
    const r = await run('sftp', [...common(), '-i', key, '-P', String(port), '-b', join(dir, 'batch'), `${id}@127.0.0.1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /-rw------- .* \/tmp\/up.txt/);
    assert.match(r.stdout, /Remote working directory: \/root\n/, 'sessions start in the home directory');
    assert.equal(readFileSync(join(dir, 'down.txt'), 'utf8'), 'via sftp\n');
    assert.equal((await exec('test -e /tmp/up.txt; echo $?')).body.stdout, '1\n');
  });

  it('keeps every byte in order through a large sftp put and get (writes are coalesced on the way in)', async () => {
    // Random bytes, many SSH packets per SFTP WRITE and many WRITEs in flight: a reordered, lost or
    // doubled chunk anywhere on the way (the engine corks the agent socket per read burst) changes
    // the checksum.
    const data = randomBytes(24 << 20);
    writeFileSync(join(dir, 'big.bin'), data);
    const sum = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(dir, 'batch-big'), `put ${join(dir, 'big.bin')} /tmp/big.bin\nget /tmp/big.bin ${join(dir, 'big-back.bin')}\n`);
    const r = await run('sftp', [...common(), '-i', key, '-P', String(port), '-b', join(dir, 'batch-big'), `${id}@127.0.0.1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await exec('sha256sum /tmp/big.bin; rm /tmp/big.bin')).body.stdout, `${sum}  /tmp/big.bin\n`);
    assert.equal(createHash('sha256').update(readFileSync(join(dir, 'big-back.bin'))).digest('hex'), sum);
  });

  it('forwards a local port to the instance (ssh -L) and nowhere else', async () => {
    await t.api('POST', `/v1/instances/${id}/processes`, { command: 'mkdir -p /srv && echo served > /srv/index.html && cd /srv && exec python3 -m http.server 8000 --bind 0.0.0.0' });
    await exec('for i in $(seq 50); do python3 -c "import socket;socket.create_connection((\'127.0.0.1\',8000))" 2>/dev/null && break; sleep 0.1; done');
    const local = await freePort();
    const fwd = spawn('ssh', [...common(), '-i', key, '-p', String(port), '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:localhost:8000`, `${id}@127.0.0.1`], { stdio: 'ignore' });
    try {
      let body = '';
      for (let i = 0; i < 100 && !body; i++) {
        body = await fetch(`http://127.0.0.1:${local}/index.html`).then((r) => r.text(), () => '');
        if (!body) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(body, 'served\n');
    } finally {
      fwd.kill();
    }
    // A destination other than the instance is refused: the gateway is no general proxy.
    const other = await run('ssh', [...common(), '-i', key, '-p', String(port), '-W', '127.0.0.2:8000', `${id}@127.0.0.1`]);
    assert.notEqual(other.code, 0);
  });

  it('takes the API key as the password', async () => {
    const askpass = join(dir, 'askpass.sh');
    writeFileSync(askpass, `#!/bin/sh\necho '${t.key}'\n`, { mode: 0o700 });
    const args = ['-F', '/dev/null', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password', '-o', 'NumberOfPasswordPrompts=1', '-p', String(port), `${id}@127.0.0.1`, 'echo in'];
    const env = { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' };
    const r = await run('setsid', ['-w', 'ssh', ...args], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'in\n');
    writeFileSync(askpass, `#!/bin/sh\necho 'faas_wrong'\n`, { mode: 0o700 });
    const bad = await run('setsid', ['-w', 'ssh', ...args], { env });
    assert.equal(bad.code, 255);
    assert.match(bad.stderr, /Permission denied/);
  });

  it('refuses an unknown instance, an unknown key and another API key\'s instance, with a message and a non-zero exit', async () => {
    const unknown = await ssh(['inst_doesnotexist', 'true']);
    assert.equal(unknown.code, 255);
    assert.match(unknown.stderr, /no instance "inst_doesnotexist" for this key/);
    const stranger = keygen('stranger');
    const r = await ssh([id, 'true'], { identity: stranger });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied/);
    // Key B registers its own SSH key: it gets into B's instances, not into this one.
    const b = await t.api('POST', '/v1/keys', { name: 'other' });
    const bKey = keygen('other');
    const added = await fetch(`${t.url}/v1/ssh-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${b.body.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ publicKey: readFileSync(`${bKey}.pub`, 'utf8') }),
    });
    assert.equal(added.status, 201);
    const refused = await ssh([id, 'echo inside'], { identity: bKey });
    assert.equal(refused.code, 255);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, new RegExp(`no instance "${id}" for this key`));
    const sftp = await run('sftp', [...common(), '-i', bKey, '-P', String(port), '-b', '/dev/null', `${id}@127.0.0.1`]);
    assert.notEqual(sftp.code, 0);
    // B cannot see or remove A's SSH keys either.
    const list = await fetch(`${t.url}/v1/ssh-keys`, { headers: { authorization: `Bearer ${b.body.secret}` } }).then((x) => x.json());
    assert.deepEqual(list.data.map((k: { name: string }) => k.name), ['other']);
    const mine = (await t.api('GET', '/v1/ssh-keys')).body.data.find((k: { name: string }) => k.name === 'id_ed25519');
    const del = await fetch(`${t.url}/v1/ssh-keys/${mine.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${b.body.secret}` } });
    assert.equal(del.status, 404);
    // Revoking B ends its SSH keys' logins too.
    await t.api('DELETE', `/v1/keys/${b.body.id}`);
    const revoked = await ssh([id, 'true'], { identity: bKey });
    assert.equal(revoked.code, 255);
    assert.match(revoked.stderr, /Permission denied/);
  });

  it('refuses bad public keys and duplicates with a message that says what to do', async () => {
    const bad = await t.api('POST', '/v1/ssh-keys', { publicKey: 'not a key' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /ssh-keygen/);
    const dup = await t.api('POST', '/v1/ssh-keys', { publicKey: readFileSync(`${key}.pub`, 'utf8') });
    assert.equal(dup.status, 409);
    const anon = await fetch(`${t.url}/v1/ssh-keys`);
    assert.equal(anon.status, 401);
  });

  it('wakes a paused instance that allows it (wakeOn.ssh) and explains why it does not otherwise', async () => {
    const snapshotId = (await t.api('GET', `/v1/instances/${id}`)).body.snapshotId;
    const sleepy = (await t.api('POST', '/v1/instances', { snapshotId, wakeOn: { ssh: true } })).body.id;
    const stays = (await t.api('POST', '/v1/instances', { snapshotId })).body.id;
    try {
      for (const i of [sleepy, stays]) assert.equal((await t.api('POST', `/v1/instances/${i}/pause`)).body.state, 'paused');
      const woke = await ssh([sleepy, 'echo awake']);
      assert.equal(woke.code, 0, woke.stderr);
      assert.equal(woke.stdout, 'awake\n');
      assert.equal((await t.api('GET', `/v1/instances/${sleepy}`)).body.state, 'ready');
      const refused = await ssh([stays, 'true']);
      assert.equal(refused.code, 255);
      assert.match(refused.stderr, /paused and does not wake on ssh/);
      assert.equal((await t.api('GET', `/v1/instances/${stays}`)).body.state, 'paused');
    } finally {
      for (const i of [sleepy, stays]) await t.api('POST', `/v1/instances/${i}/stop`);
    }
  });

  it('is not reachable from inside a sandbox, even as root and when listening on every address', async () => {
    const ip = (await t.api('GET', `/v1/instances/${id}`)).body.network.ip as string;
    const hostSide = ip.replace(/\.(\d+)$/, (_m, d) => `.${Number(d) - 1}`);
    const probe = (host: string, p: number) => exec(`timeout 3 bash -c 'echo > /dev/tcp/${host}/${p}' 2>/dev/null && echo open || echo closed`);
    assert.equal((await probe('127.0.0.1', 7070)).body.stdout, 'open\n', 'the probe itself works (the agent inside)');
    assert.equal((await probe(hostSide, port)).body.stdout, 'closed\n');
  });

  it('keeps its host key private (0600 in the state directory) and lets the host user nobody in with nothing', async () => {
    const path = join(t.config.stateDir, 'ssh_host_ed25519_key');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const read = await run('runuser', ['-u', 'nobody', '--', 'cat', path]);
    assert.notEqual(read.code, 0, 'nobody reads the host key');
    const login = await run('runuser', ['-u', 'nobody', '--', 'ssh', '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-p', String(port), `${id}@127.0.0.1`, 'true']);
    assert.equal(login.code, 255);
    assert.match(login.stderr, /Permission denied/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}
