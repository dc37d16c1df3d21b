// Port forwards (WS …/tcp/{port}) and remote tunnels (WS …/tunnels/{port}) against servers and
// clients really running in a sandbox: bytes checked by sha256 both ways, half-closes, errors
// before the upgrade, and the attacker's side (no key, another key, root in the sandbox).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { sh, startEngine, type TestEngine } from './harness.js';

// A threaded echo server: echoes until the client's FIN, then half-closes its own side.
const ECHO = `
import socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d: break
            self.request.sendall(d)
        self.request.shutdown(1)
socketserver.ThreadingTCPServer.allow_reuse_address = True
# gVisor resets connections beyond the listen backlog (the default 5 is less than 24 at once).
socketserver.ThreadingTCPServer.request_queue_size = 128
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("0.0.0.0", 8000), H).serve_forever()
`;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Sends `data` over a forward WebSocket, then `end`; resolves with what came back and the close code. */
function roundTrip(ws: WebSocket, data: Buffer): Promise<{ got: Buffer; code: number; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    ws.on('open', () => {
      for (let i = 0; i < data.length; i += 256 * 1024) ws.send(data.subarray(i, i + 256 * 1024), { binary: true });
      ws.send(JSON.stringify({ type: 'end' }));
    });
    ws.on('message', (m: Buffer, binary) => {
      if (binary) chunks.push(m);
      else if (JSON.parse(m.toString()).type === 'end') ended = true;
    });
    ws.on('close', (code) => resolve({ got: Buffer.concat(chunks), code, ended }));
    ws.on('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

/** The status of a WebSocket attempt (101 when it opened) and the error code of a refusal. */
function attempt(url: string, opts: WebSocket.ClientOptions = {}): Promise<{ status: number; code?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, opts);
    ws.on('unexpected-response', (_q, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: JSON.parse(text || '{}').error?.code }));
    });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('error', () => undefined);
  });
}

describe('port forwards and tunnels', () => {
  let t: TestEngine;
  let id: string;
  let other: string;
  const ws = (path: string, key = t.key) => new WebSocket(`${t.url.replace('http', 'ws')}/v1/instances/${id}${path}`, { headers: { authorization: `Bearer ${key}` } });
  const exec = async (command: string) => (await t.api('POST', `/v1/instances/${id}/exec`, sh(command))).body;

  before(async () => {
    t = await startEngine();
    const snap = await t.api('POST', '/v1/snapshots', {});
    id = (await t.api('POST', '/v1/instances', { snapshotId: snap.body.id })).body.id;
    other = (await t.api('POST', '/v1/keys', { name: 'other' })).body.secret;
    await exec(`cat > /tmp/echo.py <<'EOF'\n${ECHO}\nEOF`);
    await t.api('POST', `/v1/instances/${id}/processes`, { command: 'python3 /tmp/echo.py' });
    // Ready once the probe says so (the plain GET of the same route).
    for (let i = 0; i < 100; i++) {
      if ((await t.api('GET', `/v1/instances/${id}/tcp/8000`)).status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await t?.close();
  });

  it('carries 32 MiB both ways through one forward, byte for byte, with a half-close', async () => {
    const data = randomBytes(32 * 1024 * 1024);
    const r = await roundTrip(ws('/tcp/8000'), data);
    assert.equal(r.got.length, data.length);
    assert.equal(sha(r.got), sha(data));
    assert.equal(r.ended, true, 'the server half-closed after the echo: an end message');
    assert.equal(r.code, 1000);
  });

  it('carries 24 concurrent connections, each its own stream', async () => {
    const datas = Array.from({ length: 24 }, (_, i) => randomBytes(64 * 1024 + i));
    const results = await Promise.all(datas.map((d) => roundTrip(ws('/tcp/8000'), d)));
    results.forEach((r, i) => assert.equal(sha(r.got), sha(datas[i])));
  });

  it('says port_not_listening (502) before the upgrade, and checks the port and the state', async () => {
    const probe = await t.api('GET', `/v1/instances/${id}/tcp/8001`);
    assert.equal(probe.status, 502);
    assert.equal(probe.body.error.code, 'port_not_listening');
    assert.deepEqual((await t.api('GET', `/v1/instances/${id}/tcp/8000`)).body, { port: 8000, listening: true });
    const url = (p: string) => `${t.url.replace('http', 'ws')}/v1/instances/${id}${p}`;
    const auth = { headers: { authorization: `Bearer ${t.key}` } };
    assert.deepEqual(await attempt(url('/tcp/8001'), auth), { status: 502, code: 'port_not_listening' });
    assert.deepEqual(await attempt(url('/tcp/0'), auth), { status: 400, code: 'invalid_request' });
    assert.deepEqual(await attempt(url('/tcp/65536'), auth), { status: 400, code: 'invalid_request' });
    assert.equal((await t.api('GET', `/v1/instances/${id}/tcp/0`)).status, 400);
  });

  it('refuses no key, another key (as a missing instance) and the host user nobody', async () => {
    const url = `${t.url.replace('http', 'ws')}/v1/instances/${id}/tcp/8000`;
    assert.deepEqual(await attempt(url), { status: 401, code: 'unauthorized' });
    assert.deepEqual(await attempt(url, { headers: { authorization: `Bearer ${other}` } }), { status: 404, code: 'instance_not_found' });
    assert.deepEqual(await attempt(`${t.url.replace('http', 'ws')}/v1/instances/${id}/tunnels/9100`, { headers: { authorization: `Bearer ${other}` } }), { status: 404, code: 'instance_not_found' });
    const plain = await fetch(`${t.url}/v1/instances/${id}/tcp/8000`, { headers: { authorization: `Bearer ${other}` } });
    assert.equal(plain.status, 404);
    // nobody on the host, without the key: the same 401 (and it cannot reach the sandbox itself).
    // Asynchronously: the engine answering it runs in this process.
    const asNobody = await promisify(execFile)('runuser', ['-u', 'nobody', '--', 'curl', '-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', `${t.url}/v1/instances/${id}/tcp/8000`], { encoding: 'utf8' }).catch((e) => e);
    assert.equal(asNobody.stdout, '401');
  });

  it('closing the WebSocket ends the connection in the instance', async () => {
    // A one-connection server that says when it listens and writes a marker once its client has gone.
    await t.api('POST', `/v1/instances/${id}/processes`, {
      command: `python3 -c "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',8003));s.listen();open('/tmp/ready','w').write('1');c,_=s.accept();c.sendall(b'hi');c.recv(10);open('/tmp/gone','w').write('1')"`,
    });
    for (let i = 0; i < 100 && (await exec('cat /tmp/ready 2>/dev/null')).stdout !== '1'; i++) await new Promise((r) => setTimeout(r, 100));
    const sock = ws('/tcp/8003');
    const first = await new Promise<string>((resolve, reject) => {
      sock.on('message', (m) => resolve(m.toString()));
      sock.on('error', reject);
    });
    assert.equal(first, 'hi');
    sock.close(1000);
    let gone = '';
    for (let i = 0; i < 50 && gone !== '1'; i++) {
      gone = (await exec('cat /tmp/gone 2>/dev/null')).stdout;
      if (gone !== '1') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(gone, '1');
  });

  it('a remote tunnel: curl in the instance reaches the test process (127.0.0.1, ::1, the instance IP)', async () => {
    const tunnel = ws('/tunnels/9100');
    const seen: string[] = [];
    tunnel.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      seen.push(msg.id);
      // Answer as an HTTP server on the caller's side would.
      const conn = ws(`/tunnels/9100/connections/${msg.id}`);
      let req = '';
      conn.on('message', (d: Buffer, binary) => {
        if (!binary) return;
        req += d.toString();
        if (!req.includes('\r\n\r\n')) return;
        const body = `hello from the caller: ${req.split(' ')[1]}`;
        conn.send(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`));
        conn.send(JSON.stringify({ type: 'end' }));
      });
      conn.on('error', () => undefined);
    });
    await new Promise((resolve, reject) => {
      tunnel.on('open', resolve);
      tunnel.on('error', reject);
    });
    const ip = (await t.api('GET', `/v1/instances/${id}`)).body.network.ip;
    const r = await exec(`curl -s -m 10 http://127.0.0.1:9100/one && echo && curl -s -m 10 http://${ip}:9100/two && echo && curl -s -m 10 'http://[::1]:9100/three'`);
    assert.equal(r.stdout, 'hello from the caller: /one\nhello from the caller: /two\nhello from the caller: /three');
    assert.equal(seen.length, 3);

    // Not claimable by another key, nor twice, nor on a port that is no tunnel.
    const url = (p: string) => `${t.url.replace('http', 'ws')}/v1/instances/${id}${p}`;
    const auth = (k: string) => ({ headers: { authorization: `Bearer ${k}` } });
    assert.equal((await attempt(url(`/tunnels/9100/connections/${seen[0]}`), auth(t.key))).status, 404);
    assert.equal((await attempt(url(`/tunnels/9101/connections/${'0'.repeat(32)}`), auth(t.key))).status, 404);
    // A second tunnel on the same port, or on a port a server already holds: 409.
    assert.deepEqual(await attempt(url('/tunnels/9100'), auth(t.key)), { status: 409, code: 'conflict' });
    assert.deepEqual(await attempt(url('/tunnels/8000'), auth(t.key)), { status: 409, code: 'conflict' });
    assert.deepEqual(await attempt(url('/tunnels/7070'), auth(t.key)), { status: 409, code: 'conflict' });

    // Root in the sandbox cannot open a tunnel on the agent without the agent's key.
    const raw = await exec(`curl -s -o /dev/null -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: faas-tunnel' 'http://127.0.0.1:7070/v1/tunnels/listen?port=9200'`);
    assert.equal(raw.stdout, '401');

    // Closing the tunnel stops the listener inside.
    tunnel.close();
    let code = 0;
    for (let i = 0; i < 50 && code !== 7; i++) {
      code = (await exec('curl -s -m 5 http://127.0.0.1:9100/')).exitCode;
      if (code !== 7) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(code, 7, 'curl: connection refused once the tunnel is closed');
  });

  it('a tunnel announcement cannot be claimed by another key', async () => {
    const tunnel = ws('/tunnels/9300');
    const announced = new Promise<string>((resolve) => tunnel.on('message', (m) => resolve(JSON.parse(m.toString()).id)));
    await new Promise((resolve, reject) => {
      tunnel.on('open', resolve);
      tunnel.on('error', reject);
    });
    const client = exec('curl -s -m 10 http://127.0.0.1:9300/');
    const cid = await announced;
    const url = `${t.url.replace('http', 'ws')}/v1/instances/${id}/tunnels/9300/connections/${cid}`;
    assert.equal((await attempt(url, { headers: { authorization: `Bearer ${other}` } })).status, 404);
    tunnel.close();
    assert.notEqual((await client).exitCode, 0);
  });

  it('reaches a server bound to 127.0.0.1 only, through the agent', async () => {
    await t.api('POST', `/v1/instances/${id}/processes`, { command: 'python3 -m http.server 8006 --bind 127.0.0.1' });
    let probe = 0;
    for (let i = 0; i < 100 && probe !== 200; i++) {
      probe = (await t.api('GET', `/v1/instances/${id}/tcp/8006`)).status;
      if (probe !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(probe, 200);
    const r = await roundTrip(ws('/tcp/8006'), Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    assert.match(r.got.toString(), /^HTTP\/1\.0 200/);
    assert.equal(r.code, 1000);
  });

  // Last: it stops the instance. Without the engine closing them, the sockets to a sandbox that
  // is gone would hang until a keep-alive timeout.
  it('stopping the instance resets its open forwards and closes its tunnels', async () => {
    const forward = ws('/tcp/8000');
    const tunnel = ws('/tunnels/9400');
    await Promise.all([forward, tunnel].map((w) => new Promise((resolve, reject) => (w.on('open', resolve), w.on('error', reject)))));
    const codes = Promise.all([forward, tunnel].map((w) => new Promise<number>((resolve) => w.on('close', (code) => resolve(code)))));
    assert.equal((await t.api('POST', `/v1/instances/${id}/stop`)).status, 200);
    assert.deepEqual(await codes, [4001, 1011]);
  });
});

describe('port forward limits', () => {
  let t: TestEngine;
  before(async () => {
    t = await startEngine({ env: { FAAS_FORWARD_CONCURRENCY: '2', FAAS_INSTANCE_CONCURRENCY: '1' } });
  });
  after(async () => {
    await t?.close();
  });

  it('open forwards have slots of their own: beyond them 429, and exec still runs beside them', async () => {
    const snap = await t.api('POST', '/v1/snapshots', {});
    const id = (await t.api('POST', '/v1/instances', { snapshotId: snap.body.id })).body.id;
    await t.api('POST', `/v1/instances/${id}/processes`, { command: 'python3 -m http.server 8000 --bind 0.0.0.0' });
    for (let i = 0; i < 100 && (await t.api('GET', `/v1/instances/${id}/tcp/8000`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    const url = `${t.url.replace('http', 'ws')}/v1/instances/${id}/tcp/8000`;
    const auth = { headers: { authorization: `Bearer ${t.key}` } };
    const held = [new WebSocket(url, auth), new WebSocket(url, auth)];
    await Promise.all(held.map((w) => new Promise((resolve, reject) => (w.on('open', resolve), w.on('error', reject)))));
    const refused = await new Promise<{ status: number; body: any }>((resolve) => {
      const w = new WebSocket(url, auth);
      w.on('unexpected-response', (_q, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      w.on('error', () => undefined);
    });
    assert.equal(refused.status, 429);
    assert.deepEqual(refused.body.error.details, { reason: 'too_many_requests', scope: 'forward-instance', limit: 2 });
    // The one exec slot of this instance is free: forwards never took it.
    const r = await t.api('POST', `/v1/instances/${id}/exec`, sh('echo still'));
    assert.equal(r.body.stdout, 'still\n');
    // A closed forward gives its slot back.
    held[0].close();
    await new Promise((r) => held[0].on('close', r));
    let status = 0;
    for (let i = 0; i < 50 && status !== 101; i++) {
      status = (await attempt(url, auth)).status;
      if (status !== 101) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 101);
    held[1].close();
  });
});
