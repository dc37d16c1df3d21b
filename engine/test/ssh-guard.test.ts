// The SSH gateway's limits before a login, from the attacker's side with the real OpenSSH client
// (API keys typed through SSH_ASKPASS, as `ssh -o PreferredAuthentications=password` would) and
// raw TCP sockets: per-source lock-out after failed logins (IPv4 and IPv6), MaxAuthTries per
// connection, probes of unknown keys not counted, the login grace time, and the caps on
// unauthenticated connections. docs/security/sshguard.md says which test proves which claim.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { LoginLimiter } from '../src/services/login-limiter.js';
import { sourceOf } from '../src/ssh/guard.js';
import { startEngine, type TestEngine } from './harness.js';
import { run } from './run-client.js';
import { keygen as newKey, trustGateway } from './ssh-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw TCP connection to the gateway that never logs in; `lines` is what the server sent. */
function dial(port: number, host: string, localAddress?: string): Promise<{ sock: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host, localAddress });
    let got = '';
    sock.on('data', (d) => (got += d));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.once('error', reject);
    sock.once('connect', () => resolve({ sock, received: () => got, closed }));
  });
}

describe('ssh gateway limits before a login', () => {
  let t: TestEngine;
  let id: string;
  let port: number;
  let dir: string;
  let key: string;
  const logged: string[] = [];
  const capture = (obj: object, msg?: string) => void logged.push(`${msg ?? ''} ${JSON.stringify(obj)}`);

  /** One password login of `ssh` from `bind` to `host` with `secret` typed at up to `prompts` prompts. */
  const passwordLogin = (secret: string, o: { bind?: string; host?: string; prompts?: number; counter?: string } = {}) => {
    const askpass = join(dir, `askpass-${Math.random().toString(36).slice(2)}.sh`);
    // The counter file records how many times ssh asked: how many attempts the server allowed.
    writeFileSync(askpass, `#!/bin/sh\n${o.counter ? `echo x >> '${o.counter}'\n` : ''}echo '${secret}'\n`, { mode: 0o700 });
    const args = ['-F', '/dev/null', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PubkeyAuthentication=no',
      '-o', 'PreferredAuthentications=password', '-o', `NumberOfPasswordPrompts=${o.prompts ?? 1}`, ...(o.bind ? ['-b', o.bind] : []), '-p', String(port), `${id}@${o.host ?? '127.0.0.1'}`, 'echo in'];
    return run('setsid', ['-w', 'ssh', ...args], { env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' } });
  };
  const keyLogin = (identities: string[], bind?: string) =>
    run('ssh', ['-F', '/dev/null', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes',
      ...identities.flatMap((i) => ['-i', i]), ...(bind ? ['-b', bind] : []), '-p', String(port), `${id}@127.0.0.1`, 'echo in']);
  const keygen = (name: string) => newKey(dir, name);

  before(async () => {
    t = await startEngine({
      env: {
        FAAS_SSH_MAX_AUTH_TRIES: '2',
        FAAS_SSH_MAX_FAILURES: '3',
        FAAS_SSH_LOCKOUT_SECONDS: '4',
        FAAS_SSH_MAX_STARTUPS: '6',
        FAAS_SSH_MAX_STARTUPS_PER_SOURCE: '3',
      },
      log: { info: capture, warn: capture, error: capture },
    });
    const snap = await t.api('POST', '/v1/snapshots', {});
    id = (await t.api('POST', '/v1/instances', { snapshotId: snap.body.id })).body.id;
    dir = mkdtempSync('/tmp/faas-test-sshguard-client-');
    key = keygen('id_ed25519');
    assert.equal((await t.api('POST', '/v1/ssh-keys', { publicKey: readFileSync(`${key}.pub`, 'utf8') })).status, 201);
    port = (await trustGateway(t, dir)).port;
  });
  after(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('locks a source out after repeated wrong API keys, with a message; other sources and the same key elsewhere still get in', async () => {
    const bind = '127.0.0.3';
    for (let i = 0; i < 3; i++) {
      const bad = await passwordLogin('faas_wrong_guess', { bind });
      assert.equal(bad.code, 255);
      // The third failure is answered by a disconnect (it starts the lock-out), not a refusal.
      assert.match(bad.stderr, i < 2 ? /Permission denied/ : /Disconnected from/);
    }
    // Locked: the right key is refused, and the banner says why.
    const locked = await passwordLogin(t.key, { bind });
    assert.equal(locked.code, 255);
    assert.equal(locked.stdout, '');
    assert.match(locked.stderr, /too many failed logins from this address; locked out, try again in \d+ s/);
    const lockedKey = await keyLogin([key], bind);
    assert.equal(lockedKey.code, 255, 'a registered key is refused from a locked source too');
    // Another source is unaffected, by password and by key.
    const other = await passwordLogin(t.key, { bind: '127.0.0.1' });
    assert.equal(other.code, 0, other.stderr);
    assert.equal(other.stdout, 'in\n');
    assert.equal((await keyLogin([key])).code, 0);
    // The lock-out is logged, with the source and without the guessed key.
    const line = logged.find((l) => l.includes('locked out') && l.includes(bind));
    assert.ok(line, logged.join('\n'));
    assert.doesNotMatch(logged.join('\n'), /faas_wrong_guess/);
    assert.doesNotMatch(logged.join('\n'), new RegExp(t.key));
    // After the lock-out (FAAS_SSH_LOCKOUT_SECONDS=4) the right key gets in; attempts made while
    // locked are not looked at, so they do not extend it.
    let ok = await passwordLogin(t.key, { bind });
    for (let i = 0; i < 60 && ok.code !== 0; i++) {
      await sleep(500);
      ok = await passwordLogin(t.key, { bind });
    }
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'in\n');
  });

  it('locks out an IPv6 source apart from IPv4 ones', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await passwordLogin('faas_wrong_v6', { host: '::1' })).code, 255);
    const locked = await passwordLogin(t.key, { host: '::1' });
    assert.equal(locked.code, 255);
    assert.match(locked.stderr, /too many failed logins from this address/);
    const v4 = await passwordLogin(t.key, { bind: '127.0.0.1' });
    assert.equal(v4.code, 0, v4.stderr);
    assert.ok(logged.some((l) => l.includes('locked out') && l.includes('"source":"0:0:0:0::/64"')), logged.join('\n'));
  });

  it('closes a connection after FAAS_SSH_MAX_AUTH_TRIES failures (MaxAuthTries)', async () => {
    const counter = join(dir, 'asked');
    const r = await passwordLogin('faas_wrong_again', { bind: '127.0.0.4', prompts: 5, counter });
    assert.equal(r.code, 255);
    assert.equal(readFileSync(counter, 'utf8'), 'x\nx\n', 'two attempts, then the server hung up');
    // keyboard-interactive answers count the same (ssh2 as the client).
    const conn = new ssh2.Client();
    let asked = 0;
    const ended = await new Promise<string>((resolve) => {
      conn.on('keyboard-interactive', (_n, _i, _l, _p, finish) => {
        asked++;
        finish(['faas_wrong_kbd']);
      });
      conn.once('ready', () => resolve('ready')).once('error', (e) => resolve(e.message)).once('close', () => resolve('closed'));
      conn.connect({ host: '127.0.0.1', localAddress: '127.0.0.5', port, username: id, tryKeyboard: true, hostVerifier: () => true,
        authHandler: Array(4).fill('keyboard-interactive') });
    });
    conn.end();
    assert.notEqual(ended, 'ready');
    assert.equal(asked, 2);
  });

  it('does not count asking whether unregistered keys would do', async () => {
    // Four keys the engine does not know, then the registered one: with two failures allowed per
    // connection, the login works only if the unsigned queries are not failures.
    const strangers = ['s1', 's2', 's3', 's4'].map(keygen);
    const r = await keyLogin([...strangers, key], '127.0.0.6');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'in\n');
  });

  it('caps unauthenticated connections per source and in total; logged-in users are not counted and keep working', async () => {
    // A logged-in connection made before the flood.
    const conn = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      conn.once('ready', () => resolve()).once('error', reject);
      conn.connect({ host: '127.0.0.1', port, username: id, privateKey: readFileSync(key), hostVerifier: () => true });
    });
    const flood: Awaited<ReturnType<typeof dial>>[] = [];
    try {
      for (let i = 0; i < 3; i++) flood.push(await dial(port, '127.0.0.1', '127.0.0.7'));
      const extra = await dial(port, '127.0.0.1', '127.0.0.7');
      await extra.closed;
      assert.match(extra.received(), /too many unauthenticated connections/);
      // Another source still gets in past a full source.
      const other = await keyLogin([key], '127.0.0.8');
      assert.equal(other.code, 0, other.stderr);
      // The total (6): three more from two other sources fill it; then nobody new gets in.
      for (const from of ['127.0.0.9', '127.0.0.9', '127.0.0.10']) flood.push(await dial(port, '127.0.0.1', from));
      const refused = await dial(port, '127.0.0.1', '127.0.0.11');
      await refused.closed;
      assert.match(refused.received(), /too many unauthenticated connections/);
      // The six before it were let in: the logged-in connection does not take a place.
      for (const f of flood) assert.doesNotMatch(f.received(), /too many/);
      assert.ok(logged.some((l) => l.includes('FAAS_SSH_MAX_STARTUPS"')), logged.join('\n'));
      assert.ok(logged.some((l) => l.includes('FAAS_SSH_MAX_STARTUPS_PER_SOURCE')), logged.join('\n'));
      // The connection that had logged in before is not counted and still runs commands.
      const out = await new Promise<string>((resolve, reject) =>
        conn.exec('echo still', (err, ch) => {
          if (err) return reject(err);
          let s = '';
          ch.on('data', (d: Buffer) => (s += d)).on('close', () => resolve(s));
        }),
      );
      assert.equal(out, 'still\n');
    } finally {
      for (const f of flood) f.sock.destroy();
      conn.end();
    }
    // The flood gone, new logins work again.
    await Promise.all(flood.map((f) => f.closed));
    let again = await keyLogin([key], '127.0.0.7');
    for (let i = 0; i < 20 && again.code !== 0; i++) {
      await sleep(200); // the engine sees the closes a moment after the client does
      again = await keyLogin([key], '127.0.0.7');
    }
    assert.equal(again.code, 0, again.stderr);
  });
});

describe('ssh gateway login grace time', () => {
  let t: TestEngine;
  const logged: string[] = [];
  const capture = (obj: object, msg?: string) => void logged.push(`${msg ?? ''} ${JSON.stringify(obj)}`);
  before(async () => {
    // `::` is one dual-stack socket: IPv4 clients arrive as IPv4-mapped IPv6 addresses.
    t = await startEngine({ env: { FAAS_SSH_HOST: '::', FAAS_SSH_LOGIN_GRACE_SECONDS: '2', FAAS_SSH_MAX_STARTUPS_PER_SOURCE: '2' }, log: { info: capture, warn: capture, error: capture } });
  });
  after(async () => {
    await t?.close();
  });

  it('closes connections that do not log in within FAAS_SSH_LOGIN_GRACE_SECONDS, silent or mid-handshake', async () => {
    const port = (await t.api('GET', '/v1/ssh/host')).body.port;
    for (const host of ['127.0.0.1', '::1']) {
      const started = Date.now();
      const silent = await dial(port, host);
      const talker = await dial(port, host);
      talker.sock.write('SSH-2.0-OpenSSH_9.2\r\n'); // and then nothing more
      await Promise.all([silent.closed, talker.closed]);
      assert.ok(Date.now() - started >= 1900, 'not before the grace time');
      assert.match(talker.received(), /^SSH-2\.0-OpenSSH_9\.2-faas/);
    }
    // An ssh2 client that completes the handshake but never answers the password prompt.
    const conn = new ssh2.Client();
    const closed = new Promise<void>((r) => conn.once('close', () => r()));
    conn.on('error', () => undefined);
    conn.connect({ host: '127.0.0.1', port, username: 'inst_x', tryKeyboard: true, hostVerifier: () => true, authHandler: ['keyboard-interactive'] });
    conn.on('keyboard-interactive', () => undefined); // never finishes
    await closed;
    // Through the dual-stack socket 127.0.0.1 arrives as ::ffff:127.0.0.1 and is counted (and
    // logged) as 127.0.0.1: FAAS_SSH_MAX_STARTUPS_PER_SOURCE=2 refuses the third.
    const held = [await dial(port, '127.0.0.1'), await dial(port, '127.0.0.1')];
    const third = await dial(port, '127.0.0.1');
    await third.closed;
    assert.match(third.received(), /too many unauthenticated connections/);
    assert.ok(logged.some((l) => l.includes('"source":"127.0.0.1"')), logged.join('\n'));
    await Promise.all(held.map((h) => h.closed)); // by the grace time
  });
});

describe('ssh gateway sources and lock-outs (units)', () => {
  it('takes IPv4 as is, IPv4-mapped IPv6 as its IPv4 address and IPv6 by its /64', () => {
    assert.equal(sourceOf('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceOf('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceOf('::FFFF:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(sourceOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(sourceOf('::1'), '0:0:0:0::/64');
    assert.notEqual(sourceOf('2001:db8:1:3::1'), sourceOf('2001:db8:1:2::1'));
  });

  it('locks for the base time, doubles on each repeat up to the max, and forgets after a quiet max', () => {
    let now = 1_000_000;
    const l = new LoginLimiter(2, 60_000, () => now, { ms: 10_000, maxMs: 25_000 });
    const lockOut = () => [l.fail('a'), l.fail('a')];
    assert.deepEqual(lockOut(), [0, 10]);
    assert.equal(l.retryAfter('a'), 10);
    assert.equal(l.retryAfter('b'), 0);
    now += 10_000;
    assert.equal(l.retryAfter('a'), 0, 'the failure count starts afresh after a lock-out');
    assert.deepEqual(lockOut(), [0, 20]);
    now += 20_000;
    assert.deepEqual(lockOut(), [0, 25]);
    now += 25_000 + 25_001;
    assert.deepEqual(lockOut(), [0, 10]);
  });
});
