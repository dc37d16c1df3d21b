// SFTP through the SSH gateway with large requests: the agent's SFTP server announces
// limits@openssh.com (255 KiB READs and WRITEs; agent/internal/sftpserver/limits.go), so these
// check that OpenSSH's sftp uses it and that writes land where they were aimed: out of order,
// overlapping, sparse, after a seek, many files with their modes, a client that goes away
// mid-upload, a full disk. docs/ssh.md, docs/security/sftp.md.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import type { SFTPWrapper } from 'ssh2';
import { startEngine, type TestEngine } from './harness.js';
import { run } from './run-client.js';
import { keygen, trustGateway } from './ssh-client.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('sftp through the gateway', () => {
  let t: TestEngine;
  let id: string;
  let port: number;
  let dir: string;
  let key: string;

  const exec = async (command: string) => (await t.api('POST', `/v1/instances/${id}/exec`, { command })).body as { stdout: string; exitCode: number };
  const sftpArgs = (batch: string, verbose = false) => [
    '-F', '/dev/null', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes', ...(verbose ? ['-vvv'] : ['-o', 'LogLevel=ERROR']), '-i', key, '-P', String(port), '-b', batch, `${id}@127.0.0.1`,
  ];
  const sftp = (batch: string, verbose = false) => run('sftp', sftpArgs(batch, verbose));
  /** One ssh2 SFTP session (ssh2 also reads limits@openssh.com and sends 255 KiB WRITEs). */
  const session = () =>
    new Promise<{ conn: ssh2.Client; sftp: SFTPWrapper }>((resolve, reject) => {
      const conn = new ssh2.Client();
      conn.once('error', reject);
      conn.once('ready', () => conn.sftp((err, s) => (err ? reject(err) : resolve({ conn, sftp: s }))));
      conn.connect({ host: '127.0.0.1', port, username: id, privateKey: readFileSync(key), hostVerifier: () => true });
    });
  /** Pids of the SFTP servers running in the sandbox (the agent binary in server mode). */
  const sftpServers = async () => (await exec(`for p in /proc/[0-9]*; do [ "$(cat $p/cmdline 2>/dev/null | tr '\\0' ' ')" = "/proc/self/exe " ] && echo \${p#/proc/}; done; true`)).stdout.split('\n').filter(Boolean);

  before(async () => {
    t = await startEngine();
    const snap = await t.api('POST', '/v1/snapshots', {});
    const inst = await t.api('POST', '/v1/instances', { snapshotId: snap.body.id });
    assert.equal(inst.status, 201, JSON.stringify(inst.body));
    id = inst.body.id;
    dir = mkdtempSync('/tmp/faas-test-sftp-client-');
    key = keygen(dir, 'id');
    assert.equal((await t.api('POST', '/v1/ssh-keys', { publicKey: readFileSync(`${key}.pub`, 'utf8') })).status, 201);
    port = (await trustGateway(t, dir)).port;
  });
  after(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('announces limits@openssh.com, so OpenSSH sftp moves 255 KiB per request, every byte in order', async () => {
    const data = randomBytes((8 << 20) + 12345);
    writeFileSync(join(dir, 'r.bin'), data);
    writeFileSync(join(dir, 'b1'), `put ${join(dir, 'r.bin')} /tmp/r.bin\nget /tmp/r.bin ${join(dir, 'r-back.bin')}\n`);
    const r = await sftp(join(dir, 'b1'), true);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.match(r.stderr, /Server supports extension "limits@openssh.com" revision 1/);
    assert.match(r.stderr, /server upload\/download buffer sizes 261120 \/ 261120; using 261120 \/ 261120/);
    assert.equal((await exec('sha256sum < /tmp/r.bin; rm /tmp/r.bin')).stdout, `${sha(data)}  -\n`);
    assert.equal(sha(readFileSync(join(dir, 'r-back.bin'))), sha(data));
  });

  it('writes at any offset: out of order, overlapping, past the end (sparse) and after a seek', async () => {
    const { conn, sftp: s } = await session();
    try {
      const size = 3 << 20;
      const want = Buffer.alloc(size + 700_000); // the hole stays zeros
      const h = await new Promise<Buffer>((res, rej) => s.open('/tmp/offsets.bin', 'w', (e, x) => (e ? rej(e) : res(x))));
      const put = (pos: number, buf: Buffer) => {
        buf.copy(want, pos);
        return new Promise<void>((res, rej) => s.write(h, buf, 0, buf.length, pos, (e) => (e ? rej(e) : res())));
      };
      // All in flight at once, the last chunk first; 300 KiB pieces span two 255 KiB requests.
      const pieces = [...Array(10).keys()].reverse().map((i) => [i * 300_000, randomBytes(300_000)] as const);
      await Promise.all(pieces.map(([pos, buf]) => put(pos, buf)));
      await put(150_000, randomBytes(400_000)); // overlaps two earlier pieces
      await put(size + 600_000, randomBytes(100_000)); // past the end: a hole before it
      await put(10, Buffer.from('after a seek back'));
      await new Promise<void>((res, rej) => s.close(h, (e) => (e ? rej(e) : res())));
      const st = await exec('stat -c %s /tmp/offsets.bin; sha256sum < /tmp/offsets.bin; rm /tmp/offsets.bin');
      assert.equal(st.stdout, `${want.length}\n${sha(want)}  -\n`);
    } finally {
      conn.end();
    }
  });

  it('puts and gets many files recursively with their modes', async () => {
    const src = join(dir, 'many');
    mkdirSync(src);
    const files = [...Array(120).keys()].map((i) => ({ name: `f${i}`, data: randomBytes(i * 4099), mode: i % 3 ? 0o640 : 0o755 }));
    for (const f of files) {
      writeFileSync(join(src, f.name), f.data);
      chmodSync(join(src, f.name), f.mode);
    }
    writeFileSync(join(dir, 'b2'), `put -pr ${src} /tmp/many\nget -pr /tmp/many ${join(dir, 'many-back')}\n`);
    const r = await sftp(join(dir, 'b2'));
    assert.equal(r.code, 0, r.stderr);
    const remote = (await exec(`cd /tmp/many && for f in *; do echo "$f $(stat -c %a $f) $(sha256sum < $f | cut -c1-64)"; done | sort`)).stdout;
    const expected = files.map((f) => `${f.name} ${f.mode.toString(8)} ${sha(f.data)}`).sort().join('\n') + '\n';
    assert.equal(remote, expected);
    for (const f of files) assert.equal(sha(readFileSync(join(dir, 'many-back', f.name))), sha(f.data), f.name);
    await exec('rm -rf /tmp/many');
  });

  it('ends the sandbox side of a session whose client goes away mid-upload', async () => {
    const before = await sftpServers();
    writeFileSync(join(dir, 'zeros'), Buffer.alloc(256 << 20));
    writeFileSync(join(dir, 'b3'), `put ${join(dir, 'zeros')} /tmp/cut.bin\n`);
    const p = spawn('sftp', sftpArgs(join(dir, 'b3')), { stdio: 'ignore' });
    const exited = new Promise((r) => p.on('close', r));
    // Killed once the file has started to grow (or after the upload, on a fast machine).
    for (let i = 0; i < 600 && p.exitCode === null; i++) {
      if (Number((await exec('stat -c %s /tmp/cut.bin 2>/dev/null || echo 0')).stdout) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    p.kill('SIGKILL');
    await exited;
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      left = (await sftpServers()).filter((pid) => !before.includes(pid));
      if (!left.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(left, [], 'no SFTP server left running in the sandbox');
    // The gateway still serves the next session.
    writeFileSync(join(dir, 'b4'), 'pwd\n');
    assert.equal((await sftp(join(dir, 'b4'))).code, 0);
    await exec('rm -f /tmp/cut.bin');
  });

  it('reports a full disk as a failed write, not as a finished upload', async () => {
    assert.equal((await exec('mkdir -p /mnt/small && mount -t tmpfs -o size=1m tmpfs /mnt/small')).exitCode, 0);
    writeFileSync(join(dir, 'four'), randomBytes(4 << 20));
    writeFileSync(join(dir, 'b5'), `put ${join(dir, 'four')} /mnt/small/four\n`);
    const r = await sftp(join(dir, 'b5'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Failure|No space/i, r.stderr);
    await exec('umount /mnt/small');
  });
});
