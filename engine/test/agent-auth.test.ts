// faas-agent obeys only the engine (spec/agent-protocol.md "Authentication",
// docs/security/agent.md): tried as root inside real sandboxes and as root on the host.
// Keys are read from the engine's database, as only a test in the engine's process could.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { purge, startEngine, type TestEngine } from './harness.js';

const AGENT = 7070;
const NPROC = 48;

// Run by root inside the sandbox: every way to another process's memory, aimed at the agent.
const READ_AGENT = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def tried(name, fn):
    try:
        r = fn()
        print(name, 'OPEN', r if isinstance(r, (int, str)) else len(r))
    except OSError as e:
        print(name, 'DENIED', e.errno)
def mem():
    # Opening is the gate (reading address 0 would fail for another reason).
    with open('/proc/1/mem', 'rb'):
        return 'opened'
def environ():
    with open('/proc/1/environ', 'rb') as f:
        return f.read()
def maps():
    with open('/proc/1/maps', 'rb') as f:
        return f.read()
def fds():
    # Listing the numbers is harmless; opening one would hand over the agent's socket or file.
    for fd in os.listdir('/proc/1/fd'):
        try:
            os.close(os.open('/proc/1/fd/' + fd, os.O_RDONLY))
            return 'fd ' + fd
        except OSError as e:
            err = e
    raise err
# If an attach ever succeeds, let the agent go again (it would stay stopped and the test hang).
def release():
    os.waitpid(1, 0x40000000)  # __WALL
    libc.ptrace(17, 1, None, None)  # PTRACE_DETACH
def attach():
    r = libc.ptrace(16, 1, None, None)  # PTRACE_ATTACH
    if r < 0: raise OSError(ctypes.get_errno(), 'ptrace')
    release()
    return r
def seize():
    r = libc.ptrace(0x4206, 1, None, None)  # PTRACE_SEIZE
    if r < 0: raise OSError(ctypes.get_errno(), 'ptrace')
    libc.ptrace(0x4207, 1, None, None)  # PTRACE_INTERRUPT
    release()
    return r
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
def vm_readv():
    buf = ctypes.create_string_buffer(64)
    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)
    remote = iovec(0x400000, 64)
    r = libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if r < 0: raise OSError(ctypes.get_errno(), 'process_vm_readv')
    return r
def pidfd_getfd():
    pidfd = libc.syscall(434, 1, 0)  # pidfd_open
    if pidfd < 0: raise OSError(ctypes.get_errno(), 'pidfd_open')
    for fd in range(3, 16):
        r = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
        if r >= 0: return r
    raise OSError(ctypes.get_errno(), 'pidfd_getfd')
for name, fn in [('mem', mem), ('environ', environ), ('maps', maps), ('fds', fds), ('attach', attach), ('seize', seize), ('vm_readv', vm_readv), ('pidfd_getfd', pidfd_getfd)]:
    tried(name, fn)
`;

// Run by root inside the sandbox: take over the agent's port to catch the engine's next request.
const STEAL_PORT = `
import socket, sys
for host in [sys.argv[1], '127.0.0.1', '0.0.0.0', '::1', '::']:
    for reuse in (False, True):
        s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            s.bind((host, ${AGENT})); s.listen(1)
            print('BOUND', host, reuse)
        except OSError as e:
            print('REFUSED', host, reuse, e.errno)
for kind in ('raw', 'packet'):
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) if kind == 'raw' else socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        print('OPENED', kind)
    except OSError as e:
        print('REFUSED', kind, e.errno)
`;

describe('agent authentication', () => {
  let t: TestEngine;
  let stateDir: string;
  let db: Database.Database;
  let snapId: string;

  const keyOf = (table: 'instances' | 'snapshots', id: string): string | null =>
    (db.prepare(`SELECT agent_key FROM ${table} WHERE id = ?`).get(id) as { agent_key: string | null } | undefined)?.agent_key ?? null;
  const exec = async (id: string, command: string) => {
    const r = await t.api('POST', `/v1/instances/${id}/exec`, { command, timeout: 60_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { exitCode: number; stdout: string; stderr: string };
  };
  const start = async (snapshotId = snapId) => {
    const r = await t.api('POST', '/v1/instances', { snapshotId });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body as { id: string; network: { ip: string }; snapshotId: string };
  };
  const ipOf = async (id: string) => (await t.api('GET', `/v1/instances/${id}`)).body.network.ip as string;
  /** Status of GET /v1/health on an agent, asked from the host (as root, like the engine). */
  const hostAsk = (ip: string, key?: string) =>
    new Promise<number>((resolve, reject) => {
      // A connection of its own (agent: false): addresses are reused by later instances.
      const req = request({ host: ip, port: AGENT, path: '/v1/health', agent: false, headers: key ? { authorization: `Bearer ${key}` } : {} }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          if (res.statusCode === 401) assert.match(body, /"code":"unauthorized"/);
          resolve(res.statusCode!);
        });
      });
      req.on('error', reject);
      req.end();
    });
  /** Works end to end through the engine: exec, files, background processes, terminal. */
  const everythingWorks = async (id: string) => {
    assert.equal((await exec(id, 'echo ok')).stdout, 'ok\n');
    const w = await t.api('PUT', `/v1/instances/${id}/files/write?path=/tmp/auth-check`, undefined, {
      raw: Buffer.from('payload'),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(w.status, 200, JSON.stringify(w.body));
    assert.equal((await t.api('GET', `/v1/instances/${id}/files/read?path=/tmp/auth-check`)).body, 'payload');
    const p = await t.api('POST', `/v1/instances/${id}/processes`, { command: 'echo bg' });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    assert.equal((await t.api('GET', `/v1/instances/${id}/processes`)).status, 200);
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/v1/instances/${id}/terminal?command=${encodeURIComponent('echo term-ok')}`, {
      headers: { authorization: `Bearer ${t.key}` },
    });
    const out = await new Promise<string>((resolve, reject) => {
      let o = '';
      ws.on('message', (d, binary) => binary && (o += d.toString()));
      ws.on('close', () => resolve(o));
      ws.on('error', reject);
    });
    assert.match(out, /term-ok/);
  };

  before(async () => {
    stateDir = mkdtempSync('/tmp/faas-test-agentauth-');
    t = await startEngine({ stateDir, env: { FAAS_WARM_POOL: '1' } });
    db = new Database(join(stateDir, 'faas.db'), { readonly: true });
    const s = await t.api('POST', '/v1/snapshots', { maxProcesses: NPROC });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    snapId = s.body.id;
  });
  after(async () => {
    db?.close();
    await t?.close();
    purge(stateDir);
  });

  it('gives every snapshot and instance a key of its own, never shown by the API', async () => {
    const a = await start();
    const b = await start();
    const keys = [keyOf('snapshots', snapId), keyOf('instances', a.id), keyOf('instances', b.id)];
    for (const k of keys) assert.match(k ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(new Set(keys).size, 3, 'all different');
    const seen = JSON.stringify([
      (await t.api('GET', `/v1/instances/${a.id}`)).body,
      (await t.api('GET', '/v1/instances')).body,
      (await t.api('GET', `/v1/snapshots/${snapId}`)).body,
      db.prepare('SELECT data FROM events').all(),
    ]);
    for (const k of keys) assert.ok(!seen.includes(k!), 'a key leaked into a response or an event');
    // The snapshot's key no longer opens an instance restored from it.
    assert.equal(await hostAsk(a.network.ip, keys[0]!), 401);
    assert.equal(await hostAsk(a.network.ip, keys[1]!), 200);
    assert.equal(await hostAsk(a.network.ip, keys[2]!), 401, "another instance's key");
    assert.equal(await hostAsk(a.network.ip), 401, 'root on the host without a key');
    // An unprivileged host user gets nothing either (connection refused by the host firewall, or 401).
    const asNobody = spawnSync('runuser', ['-u', 'nobody', '--', 'curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${a.network.ip}:${AGENT}/v1/health`], {
      encoding: 'utf8',
    }).stdout.trim();
    assert.ok(asNobody === '401' || asNobody === '000', `nobody got ${asNobody}`);
    for (const i of [a, b]) await t.api('POST', `/v1/instances/${i.id}/stop`);
  });

  it('refuses root inside the sandbox on 127.0.0.1 and on its own address, without or with a wrong key', async () => {
    const i = await start();
    const wrong = 'x'.repeat(43);
    const mine = keyOf('instances', i.id)!;
    const r = await exec(
      i.id,
      [`127.0.0.1`, i.network.ip]
        .flatMap((host) =>
          ['', `-H 'Authorization: Bearer ${wrong}'`, `-H 'Authorization: Bearer ${keyOf('snapshots', snapId)}'`].flatMap((h) => [
            `curl -s -o /dev/null -w '%{http_code} ' ${h} http://${host}:${AGENT}/v1/health`,
            `curl -s -o /dev/null -w '%{http_code} ' ${h} -X POST -d '{"command":"touch /tmp/pwned"}' http://${host}:${AGENT}/v1/exec`,
            `curl -s -o /dev/null -w '%{http_code} ' ${h} -X PUT -d '{"instanceId":"inst_evil","hostname":"evil","maxProcesses":0,"key":"${wrong}"}' http://${host}:${AGENT}/v1/identity`,
          ]),
        )
        .join('; ') + '; test -e /tmp/pwned && echo PWNED',
    );
    assert.equal(r.stdout.trim(), Array(18).fill('401').join(' '));
    // The engine's own key for it still works, so nothing was re-keyed from inside.
    assert.equal(await hostAsk(i.network.ip, mine), 200);
    await t.api('POST', `/v1/instances/${i.id}/stop`);
  });

  it('makes the engine refuse an agent that someone else keyed, and survive a lost identity answer', async () => {
    const i = await start();
    const mine = keyOf('instances', i.id)!;
    const agents = t.engine.services.instances.agents;
    const other = 'o'.repeat(43);
    // As if someone had provisioned the agent first: the engine's keys do not open it.
    await assert.rejects(agents.identify(i.network.ip, i.id, 2_000, NPROC, { current: other, next: 'n'.repeat(43) }), /refused the engine's key/);
    // As if an earlier attempt had re-keyed it but its answer was lost: the new key is tried next.
    await agents.identify(i.network.ip, i.id, 2_000, NPROC, { current: other, next: mine });
    assert.equal(await hostAsk(i.network.ip, mine), 200);
    await everythingWorks(i.id);
    await t.api('POST', `/v1/instances/${i.id}/stop`);
  });

  it('keeps maxProcesses, hostname and identity out of reach of the code inside', async () => {
    const i = await start();
    const hostname = i.id.replace(/_/g, '-');
    const r = await exec(
      i.id,
      `curl -s -X PUT -d '{"instanceId":"inst_evil","hostname":"evil","maxProcesses":0}' http://127.0.0.1:${AGENT}/v1/identity; hostname; ` +
        `python3 -c "
import os, signal, time
kids = []
for _ in range(400):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30); os._exit(0)
    kids.append(pid)
print(len(kids))
for k in kids:
    os.kill(k, signal.SIGKILL); os.waitpid(k, 0)
"`,
    );
    const [answer, host, forked] = r.stdout.trim().split('\n');
    assert.match(answer, /"code":"unauthorized"/);
    assert.equal(host, hostname);
    assert.ok(Number(forked) < NPROC, `forked ${forked} processes under a limit of ${NPROC}`);
    const after = await exec(i.id, 'hostname; echo $FAAS_INSTANCE_ID; grep CapBnd /proc/self/status');
    const [h2, id2, bnd] = after.stdout.trim().split('\n');
    assert.equal(h2, hostname);
    assert.equal(id2, i.id);
    const mask = BigInt('0x' + bnd.split(/\s+/)[1]);
    assert.equal(mask & (1n << 19n), 0n, 'children have no CAP_SYS_PTRACE in their bounding set');
    await t.api('POST', `/v1/instances/${i.id}/stop`);
  });

  it('keeps the key out of reach of root inside: no env, argv, file, /proc/1 memory, ptrace or fd theft', async () => {
    const i = await start();
    const key = keyOf('instances', i.id)!;
    await exec(i.id, `cat > /tmp/read-agent.py <<'EOF'\n${READ_AGENT}\nEOF`);
    const r = await exec(i.id, 'id -u; python3 /tmp/read-agent.py');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], '0', 'tried as root');
    for (const name of ['mem', 'environ', 'maps', 'fds', 'attach', 'seize', 'vm_readv', 'pidfd_getfd']) {
      assert.match(lines.find((l) => l.startsWith(name + ' ')) ?? `${name} missing`, /DENIED/, `${name}: ${r.stdout}${r.stderr}`);
    }
    const visible = await exec(i.id, 'env; cat /proc/1/cmdline; echo; cat /proc/self/environ; ls -la /.faas');
    assert.ok(!visible.stdout.includes(key), 'the key is visible to the code inside');
    const found = await exec(i.id, `grep -rlsF -- '${key}' /etc /root /tmp /.faas /run /var 2>/dev/null | head -1`);
    assert.equal(found.stdout, '', 'the key is in a file');
    await t.api('POST', `/v1/instances/${i.id}/stop`);
  });

  it("cannot take the agent's port or sniff the engine's requests from inside", async () => {
    const i = await start();
    await exec(i.id, `cat > /tmp/steal.py <<'EOF'\n${STEAL_PORT}\nEOF`);
    const r = await exec(i.id, `python3 /tmp/steal.py ${i.network.ip}`);
    assert.doesNotMatch(r.stdout, /BOUND|OPENED/, r.stdout);
    await t.api('POST', `/v1/instances/${i.id}/stop`);
  });

  it("re-keys every branch child: the parent's key does not open a child", async () => {
    const parent = await start();
    const res = await t.api('POST', `/v1/instances/${parent.id}/branch`, { count: 2 });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const kids = res.body.instances as { id: string; network: { ip: string } }[];
    const pk = keyOf('instances', parent.id)!;
    assert.equal(keyOf('snapshots', res.body.snapshot.id), pk, "the branch image's agent holds the parent's key");
    const [k1, k2] = kids.map((k) => keyOf('instances', k.id)!);
    assert.equal(new Set([pk, k1, k2]).size, 3);
    assert.equal(await hostAsk(kids[0].network.ip, pk), 401, "the parent's key on a child");
    assert.equal(await hostAsk(kids[0].network.ip, k2), 401, "a sibling's key");
    assert.equal(await hostAsk(kids[0].network.ip, k1), 200);
    assert.equal(await hostAsk(parent.network.ip, pk), 200, 'the parent keeps its key');
    for (const k of kids) await everythingWorks(k.id);
    for (const i of [parent, ...kids]) await t.api('POST', `/v1/instances/${i.id}/stop`);
  });

  it('re-keys on restart and on a start from a paused clone of the pool', async () => {
    const i = await start();
    const before = keyOf('instances', i.id)!;
    assert.equal((await t.api('POST', `/v1/instances/${i.id}/restart`)).status, 200);
    const afterRestart = keyOf('instances', i.id)!;
    assert.notEqual(afterRestart, before);
    const ip = await ipOf(i.id);
    assert.equal(await hostAsk(ip, before), 401);
    assert.equal(await hostAsk(ip, afterRestart), 200);
    await everythingWorks(i.id);
    await t.api('POST', `/v1/instances/${i.id}/stop`);

    assert.equal((await t.api('PUT', `/v1/snapshots/${snapId}/pool`, { minInstances: 1 })).status, 200);
    for (let n = 0; (await t.api('GET', `/v1/snapshots/${snapId}/pool`)).body.ready < 1; n++) {
      assert.ok(n < 300, 'the clone pool never filled');
      await new Promise((r) => setTimeout(r, 100));
    }
    const res = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    assert.match(res.headers.get('server-timing') ?? '', /resume;dur=/, 'started from a pooled clone');
    const ck = keyOf('instances', res.body.id)!;
    assert.ok(ck && ck !== keyOf('snapshots', snapId));
    assert.equal(await hostAsk(res.body.network.ip, keyOf('snapshots', snapId)!), 401);
    assert.equal(await hostAsk(res.body.network.ip, ck), 200);
    await everythingWorks(res.body.id);
    await t.api('PUT', `/v1/snapshots/${snapId}/pool`, { minInstances: 0 });
    await t.api('POST', `/v1/instances/${res.body.id}/stop`);
  });

  it('keeps working after an engine restart (adoption), still refusing callers without the key', async () => {
    const i = await start();
    const key = keyOf('instances', i.id)!;
    const tag = t.config.netTag;
    db.close();
    await t.engine.shutdown(); // the sandbox keeps running; the engine is gone
    t = await startEngine({ stateDir, env: { FAAS_NET_TAG: tag, FAAS_WARM_POOL: '1' } });
    db = new Database(join(stateDir, 'faas.db'), { readonly: true });
    assert.equal((await t.api('GET', `/v1/instances/${i.id}`)).body.state, 'ready');
    assert.equal(keyOf('instances', i.id), key, 'adopted with the key it holds');
    await everythingWorks(i.id);
    assert.equal(await hostAsk(i.network.ip), 401);
    assert.equal(await hostAsk(i.network.ip, key), 200);
    // A snapshot of the adopted instance restores and re-keys as usual.
    const s = await t.api('POST', `/v1/instances/${i.id}/snapshot`, {});
    assert.equal(s.status, 201, JSON.stringify(s.body));
    assert.equal(keyOf('snapshots', s.body.id), key);
    const c = await start(s.body.id);
    assert.notEqual(keyOf('instances', c.id), key);
    assert.equal(await hostAsk(c.network.ip, key), 401);
    await everythingWorks(c.id);
    for (const x of [i, c]) await t.api('POST', `/v1/instances/${x.id}/stop`);
  });
});
