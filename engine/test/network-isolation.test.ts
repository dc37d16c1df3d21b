// The network boundary, tried from the attacker's side: root inside a real sandbox (default image:
// python3, curl, iproute2) tries every way to the host and to other sandboxes, of this engine and
// of a second engine, over IPv4 and IPv6; the unprivileged host user `nobody` tries to reach the
// sandboxes (the agent has root powers inside). Every probe fails the test if it gets through:
// a TCP connect that completes, or a UDP datagram that arrives at a listener.
//
// Every target is made by this test: host addresses on the host end of a veth the test adds (a
// benchmark address 198.18.0.1 and a ULA; the kernel here has no dummy interfaces), listeners of this process on `::` and 0.0.0.0, listeners inside the test
// engines' own sandboxes, and the link-local address the host end of a veth would have. An
// "outside" network namespace (198.18.1.2) stands in for the internet, to prove egress through
// NAT still works (so the test also fails when the firewall blocks too much).
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanHost } from '../src/clean.js';
import { purge, startEngine, type TestEngine } from './harness.js';

const n = process.pid % 100000;
const DUMMY_V4 = '198.18.0.1';
const ULA_PREFIX = `fd00:faa5:${(n % 0xffff).toString(16)}`;
const DUMMY_V6 = `${ULA_PREFIX}::1`;
const OUT_NS = `fntout-${n}`;
const OUT_IF = `fnto${n}`; // never `fv…`: that prefix means "a faas sandbox veth" to every engine
const OUTSIDE = '198.18.1.2';

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const quiet = (file: string, args: string[]) => spawnSync(file, args, { stdio: 'ignore' });

/** Connection attempts and datagrams that reached this process's listeners, by peer address. */
const reached: string[] = [];

function listenTcp(host: string): Promise<{ server: Server; port: number }> {
  const server = createServer((sock) => {
    reached.push(`tcp ${host} from ${sock.remoteAddress}`);
    sock.destroy();
  });
  return new Promise((resolve) => server.listen({ host, port: 0, ipv6Only: false }, () => resolve({ server, port: (server.address() as { port: number }).port })));
}

function listenUdp(host: string): Promise<{ socket: UdpSocket; port: number }> {
  const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ipv6Only: false });
  socket.on('message', (_m, r) => reached.push(`udp ${host} from ${r.address}`));
  return new Promise((resolve) => socket.bind(0, host, () => resolve({ socket, port: socket.address().port })));
}

interface Probe {
  proto: 'tcp' | 'udp';
  host: string;
  port: number;
}

/**
 * Runs every probe at once inside the instance (as root): a TCP connect with a 3 s timeout, or a
 * UDP datagram. Answers `connected`, `sent` (UDP: only the listener knows whether it arrived) or
 * the error.
 */
const PROBE = `
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def probe(t):
    key = "%s %s %d" % (t["proto"], t["host"], t["port"])
    try:
        fam = socket.AF_INET6 if ":" in t["host"] else socket.AF_INET
        addr = socket.getaddrinfo(t["host"], t["port"], fam)[0][4]
        s = socket.socket(fam, socket.SOCK_STREAM if t["proto"] == "tcp" else socket.SOCK_DGRAM)
        s.settimeout(3)
        if t["proto"] == "tcp":
            s.connect(addr); r = "connected"
        else:
            s.sendto(b"faas-probe", addr); r = "sent"
        s.close()
        return key, r
    except Exception as e:
        return key, "error: %r" % (e,)
with ThreadPoolExecutor(32) as ex:
    print(json.dumps(dict(ex.map(probe, json.loads(sys.argv[1])))))
`;

/** Listens inside an instance on TCP and UDP `port` (all addresses) and logs every peer to a file. */
const LISTEN = `
import socket, sys, threading
port, log = int(sys.argv[1]), sys.argv[2]
def note(line):
    with open(log, "a") as f: f.write(line + "\\n")
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, a = s.accept(); note("tcp %s" % a[0]); c.close()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        d, a = s.recvfrom(100); note("udp %s" % a[0])
threading.Thread(target=udp, daemon=True).start()
print("listening", flush=True)
tcp()
`;
const LISTEN_PORT = 8099;
const LISTEN_LOG = '/tmp/faas-probe-peers.log';

/** The EUI-64 link-local address an interface with this MAC gets when IPv6 is on. */
function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  b[0] ^= 2;
  const words = [(b[0] << 8) | b[1], (b[2] << 8) | 0xff, (0xfe << 8) | b[3], (b[4] << 8) | b[5]];
  return `fe80::${words.map((w) => w.toString(16)).join(':')}`;
}

interface Sandbox {
  t: TestEngine;
  id: string;
  /** The instance's IPv4 address and its gateway (the host end of its veth). */
  addr: string;
  gateway: string;
  hostIf: string;
  hostMac: string;
}

async function sandbox(t: TestEngine, snapshotId: string): Promise<Sandbox> {
  const started = await t.api('POST', '/v1/instances', { snapshotId });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const id = started.body.id as string;
  const r = await exec(t, id, "ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1; ip -4 route show default | awk '{print $3}'");
  const [addr, gateway] = r.stdout.trim().split('\n');
  const link = (JSON.parse(ip('-j', '-4', 'addr', 'show')) as { ifname: string; addr_info: { local: string }[] }[]).find((l) => l.addr_info.some((a) => a.local === gateway));
  assert.ok(link, `the host has the gateway ${gateway} of ${id}`);
  const hostMac = readFileSync(`/sys/class/net/${link.ifname}/address`, 'utf8').trim();
  await t.api('POST', `/v1/instances/${id}/processes`, { argv: ['python3', '-c', LISTEN, String(LISTEN_PORT), LISTEN_LOG] });
  return { t, id, addr, gateway, hostIf: link.ifname, hostMac };
}

async function exec(t: TestEngine, id: string, command: string): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const r = await t.api('POST', `/v1/instances/${id}/exec`, { command, timeout: 120_000 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function probe(from: Sandbox, probes: Probe[]): Promise<Record<string, string>> {
  const r = await from.t.api('POST', `/v1/instances/${from.id}/exec`, { argv: ['python3', '-c', PROBE, JSON.stringify(probes)], timeout: 120_000 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.exitCode, 0, r.body.stderr);
  return JSON.parse(r.body.stdout);
}

async function peersOf(s: Sandbox): Promise<string> {
  return (await exec(s.t, s.id, `cat ${LISTEN_LOG} 2>/dev/null; true`)).stdout;
}

function assertNoneConnected(results: Record<string, string>, what: string): void {
  const through = Object.entries(results).filter(([, r]) => r === 'connected');
  assert.deepEqual(through, [], `${what}: these connected: ${JSON.stringify(results, null, 1)}`);
}

describe('network isolation', { timeout: 900_000 }, () => {
  let a: TestEngine;
  let b: TestEngine;
  let a1: Sandbox;
  let a2: Sandbox;
  let b1: Sandbox;
  const servers: Server[] = [];
  const sockets: UdpSocket[] = [];
  let outside: ChildProcess | undefined;
  let outsideUdp: ChildProcess | undefined;
  let outsideHeard = '';
  let anyPort = 0; // TCP+UDP on `::` (dual stack)
  let v4Port = 0; // TCP+UDP on 0.0.0.0

  before(async () => {
    // "The outside": a namespace routed from the host, with an HTTP server. The host end of its
    // veth also carries the host addresses the sandboxes try to reach.
    ip('netns', 'add', OUT_NS);
    ip('link', 'add', OUT_IF, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', OUT_NS);
    ip('addr', 'add', '198.18.1.1/30', 'dev', OUT_IF);
    ip('addr', 'add', `${DUMMY_V4}/32`, 'dev', OUT_IF);
    ip('-6', 'addr', 'add', `${DUMMY_V6}/64`, 'dev', OUT_IF, 'nodad');
    ip('link', 'set', OUT_IF, 'up');
    ip('-n', OUT_NS, 'addr', 'add', `${OUTSIDE}/30`, 'dev', 'eth0');
    ip('-n', OUT_NS, 'link', 'set', 'eth0', 'up');
    outside = spawn('ip', ['netns', 'exec', OUT_NS, 'python3', '-m', 'http.server', '8000', '--bind', OUTSIDE], { stdio: 'ignore' });
    const udpServer = `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("${OUTSIDE}", 9000))\nwhile True:\n    d, a = s.recvfrom(100); print(d.decode(), a[0], flush=True)`;
    outsideUdp = spawn('ip', ['netns', 'exec', OUT_NS, 'python3', '-c', udpServer], { stdio: ['ignore', 'pipe', 'ignore'] });
    outsideUdp.stdout!.on('data', (d: Buffer) => (outsideHeard += d.toString()));

    const tcpAny = await listenTcp('::');
    anyPort = tcpAny.port;
    const tcpV4 = await listenTcp('0.0.0.0');
    v4Port = tcpV4.port;
    servers.push(tcpAny.server, tcpV4.server);
    // UDP on the same port numbers (free for UDP in practice; bind fails loudly otherwise).
    for (const [host, port] of [['::', anyPort], ['0.0.0.0', v4Port]] as const) {
      const s = createSocket({ type: host === '::' ? 'udp6' : 'udp4', ipv6Only: false });
      s.on('message', (_m, r) => reached.push(`udp ${host} from ${r.address}`));
      await new Promise<void>((res) => s.bind(port, host, () => res()));
      sockets.push(s);
    }
    void listenUdp; // (kept for ad-hoc probes)

    // No warm pool: two engines share the test subnet, and each only avoids the slots it saw
    // taken when it started; engine B starts once A's namespaces are all made.
    a = await startEngine({ env: ENGINE_ENV });
    const snapA = await snapshotOf(a);
    a1 = await sandbox(a, snapA);
    a2 = await sandbox(a, snapA);
    await settled(a);
    b = await startEngine({ env: ENGINE_ENV });
    const snapB = await snapshotOf(b);
    b1 = await sandbox(b, snapB);
    await settled(b);
  });

  after(async () => {
    for (const s of servers) s.close();
    for (const s of sockets) s.close();
    outside?.kill();
    outsideUdp?.kill();
    await b?.close();
    await a?.close();
    quiet('ip', ['netns', 'del', OUT_NS]);
  });

  it('the host ends of the veths have no IPv6 address, and neither have the sandboxes', async () => {
    for (const s of [a1, a2, b1]) {
      assert.equal(ip('-6', 'addr', 'show', 'dev', s.hostIf).trim(), '', `host end ${s.hostIf} has IPv6 addresses`);
      assert.equal(readFileSync(`/proc/sys/net/ipv6/conf/${s.hostIf}/disable_ipv6`, 'utf8').trim(), '1');
      const inside = await exec(s.t, s.id, 'ip -6 -o addr show dev eth0; cat /proc/net/if_inet6 2>/dev/null | grep -v " lo$"; true');
      assert.doesNotMatch(inside.stdout, /inet6|fe80|^[0-9a-f]{32}/m, `sandbox ${s.id} has IPv6 on eth0:\n${inside.stdout}`);
    }
  });

  it('a sandbox cannot reach the host over IPv4: not its gateway, not another host address', async () => {
    const targets = [a1.gateway, a2.gateway, b1.gateway, DUMMY_V4];
    const probes = targets.flatMap((host) => [anyPort, v4Port].flatMap((port) => [{ proto: 'tcp' as const, host, port }, { proto: 'udp' as const, host, port }]));
    const results = await probe(a1, probes);
    assertNoneConnected(results, 'sandbox to host over IPv4');
    await sleep(500);
    assert.deepEqual(reached, [], 'nothing from a sandbox reached a host listener');
  });

  it('a sandbox cannot reach the host over IPv6, even after its root adds addresses and routes', async () => {
    const hostLinkLocal = linkLocalOf(a1.hostMac);
    const v6 = (host: string): Probe[] => [anyPort].flatMap((port) => [{ proto: 'tcp' as const, host, port }, { proto: 'udp' as const, host, port }]);
    const before = await probe(a1, [...v6(`${hostLinkLocal}%eth0`), ...v6(DUMMY_V6)]);
    assertNoneConnected(before, 'sandbox to host over IPv6, as the engine set it up');
    // Root inside configures IPv6 itself. gVisor implements these netlink calls; whatever it
    // refuses is printed here, and the probes run anyway.
    const setup = await exec(a1.t, a1.id, [
      'ip -6 addr add fe80::a1/64 dev eth0 2>&1',
      `ip -6 addr add ${ULA_PREFIX}::a1/64 dev eth0 2>&1`,
      `ip -6 route add default via ${hostLinkLocal} dev eth0 2>&1 || ip -6 route add default dev eth0 2>&1`,
      'ip -6 addr show dev eth0 2>&1; ip -6 route 2>&1; true',
    ].join('; '));
    console.log(`IPv6 set up by root in the sandbox:\n${setup.stdout}`);
    assert.match(setup.stdout, /fe80::a1/, 'gVisor accepted an IPv6 address from root inside (so the probes below are meaningful)');
    const afterSetup = await probe(a1, [...v6(`${hostLinkLocal}%eth0`), ...v6(DUMMY_V6)]);
    assertNoneConnected(afterSetup, 'sandbox to host over IPv6 after root configured it');
    await sleep(500);
    assert.deepEqual(reached, [], 'nothing from a sandbox reached a host listener');
  });

  it('a sandbox cannot reach another sandbox of its engine, nor one of another engine, either way', async () => {
    const to = (s: Sandbox): Probe[] => [7070, LISTEN_PORT].flatMap((port) => [{ proto: 'tcp' as const, host: s.addr, port }, { proto: 'udp' as const, host: s.addr, port }]);
    assertNoneConnected(await probe(a1, [...to(a2), ...to(b1)]), 'engine A sandbox to A and B sandboxes');
    assertNoneConnected(await probe(b1, [...to(a1), ...to(a2)]), 'engine B sandbox to A sandboxes');
    await sleep(500);
    for (const s of [a1, a2, b1]) assert.equal(await peersOf(s), '', `nothing reached the listener in ${s.id}`);
  });

  it('a sandbox still reaches the outside through NAT', async () => {
    const r = await exec(a1.t, a1.id, `curl --noproxy '*' -sS -m 10 -o /dev/null -w '%{http_code}' http://${OUTSIDE}:8000/`);
    assert.equal(r.stdout, '200', `egress through NAT: ${r.stderr}`);
  });

  it("a sandbox cannot send from another sandbox's address, or any address not its own", async () => {
    const send = (from: string, what: string) =>
      `python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("${from}", 0)); [s.sendto(b"${what}", ("${OUTSIDE}", 9000)) for _ in range(3)]' 2>&1`;
    const r = await exec(a1.t, a1.id, [
      `ip addr add ${a2.addr}/32 dev eth0 2>&1`,
      'ip addr add 203.0.113.7/32 dev eth0 2>&1',
      send(a2.addr, 'spoofed-sibling'),
      send('203.0.113.7', 'spoofed-foreign'),
      send(a1.addr, 'own-address'),
      `ip addr del ${a2.addr}/32 dev eth0; ip addr del 203.0.113.7/32 dev eth0; true`,
    ].join('; '));
    for (let i = 0; i < 50 && !outsideHeard.includes('own-address'); i++) await sleep(100);
    await sleep(500);
    assert.match(outsideHeard, /own-address/, `a datagram from the sandbox's own address gets out (${r.stdout})`);
    assert.doesNotMatch(outsideHeard, /spoofed/, `spoofed datagrams got out:\n${outsideHeard}`);
  });

  it('host users other than root cannot connect to a sandbox on any port; root (the engine) can', async () => {
    for (const port of [7070, LISTEN_PORT]) {
      const url = `http://${a1.addr}:${port}/`;
      const asNobody = spawnSync('runuser', ['-u', 'nobody', '--', 'curl', '-sS', '-m', '5', '-o', '/dev/null', url], { encoding: 'utf8' });
      assert.notEqual(asNobody.status, 0, `nobody reached ${url}`);
      assert.doesNotMatch(asNobody.stderr, /timed out/i, `nobody's connect is refused at once, not left to time out: ${asNobody.stderr}`);
      const connect = ['python3', '-c', 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)', a1.addr, String(port)];
      const nobodyConnect = spawnSync('runuser', ['-u', 'nobody', '--', ...connect], { encoding: 'utf8' });
      assert.notEqual(nobodyConnect.status, 0, `nobody connected to ${a1.addr}:${port}`);
      const rootConnect = spawnSync(connect[0], connect.slice(1), { encoding: 'utf8' });
      assert.equal(rootConnect.status, 0, `root connects to ${a1.addr}:${port}: ${rootConnect.stderr}`);
    }
    const udp = spawnSync('runuser', ['-u', 'nobody', '--', 'python3', '-c', `import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("${a1.addr}", ${LISTEN_PORT}))`], { encoding: 'utf8' });
    assert.notEqual(udp.status, 0, 'nobody cannot even send a datagram to a sandbox');
    await sleep(500);
    assert.doesNotMatch(await peersOf(a1), /udp/, 'no datagram from nobody arrived');
    assert.match(await peersOf(a1), /tcp/, "root's connection arrived (the listener works)");
  });

  it("faas engine stop --clean (shutdown with clean, then main.js clean) removes the engine's chains (IPv4 and IPv6), namespaces and runsc's null-netns mount; repeating it is harmless", async () => {
    // A third engine on the shared subnet: it sees the slots of A and B (settled) as taken.
    const t = await startEngine({ env: ENGINE_ENV });
    const chain = `FAAS-${t.config.netTag}-`;
    const mount = `${t.config.stateDir}/runsc/null-netns`;
    const gone = () => {
      assert.doesNotMatch(execFileSync('iptables-save', { encoding: 'utf8' }), new RegExp(chain));
      assert.doesNotMatch(execFileSync('ip6tables-save', { encoding: 'utf8' }), new RegExp(chain));
      assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(mount), 'null-netns unmounted');
      assert.deepEqual(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`faas-${t.config.netTag}-`)), []);
    };
    let shutDown = false;
    try {
      const inst = await t.api('POST', '/v1/instances', { snapshotId: await snapshotOf(t) });
      assert.equal(inst.status, 201, JSON.stringify(inst.body));
      assert.match(execFileSync('iptables-save', { encoding: 'utf8' }), new RegExp(`-j ${chain}IN`));
      assert.match(execFileSync('ip6tables-save', { encoding: 'utf8' }), new RegExp(`-j ${chain}IN`));
      assert.ok(readFileSync('/proc/mounts', 'utf8').includes(mount), 'runsc mounted its null-netns (so its removal is tested)');
      shutDown = true;
      await t.engine.shutdown({ stopInstances: true, clean: true });
      gone();
      // What `faas engine stop --clean` runs once the engine is down: again, on a clean host.
      const report = await cleanHost(t.config);
      assert.equal(report.tag, t.config.netTag);
      gone();
    } finally {
      if (!shutDown) await t.engine.shutdown({ stopInstances: true, clean: true }).catch(() => undefined);
      purge(t.config.stateDir);
    }
  });
});

/** No warm pool (see before()); a long ready timeout, since the machine may be shared and busy. */
const ENGINE_ENV = { FAAS_WARM_POOL: '0', FAAS_READY_TIMEOUT_MS: '120000' };

async function snapshotOf(t: TestEngine): Promise<string> {
  const r = await t.api('POST', '/v1/snapshots', {});
  assert.equal(r.status, 201, `snapshot of the default image: ${JSON.stringify(r.body)}`);
  return r.body.id;
}

/** Waits until the engine's namespace pool is full, so a second engine sees all its slots taken. */
async function settled(t: TestEngine): Promise<void> {
  const want = t.config.netnsPool;
  for (let i = 0; i < 300; i++) {
    const spare = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`faas-${t.config.netTag}-`)).length;
    const live = (await t.api('GET', '/v1/instances')).body.data?.length ?? 0;
    if (spare >= live + want) return;
    await sleep(100);
  }
}
