// The terminal WebSocket bridged to the agent's faas-pty: output, exit code, resize, auth.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startEngine, type TestEngine } from './harness.js';

describe('terminal', () => {
  let t: TestEngine;
  let id: string;

  before(async () => {
    t = await startEngine();
    const snap = await t.api('POST', '/v1/snapshots', {});
    id = (await t.api('POST', '/v1/instances', { snapshotId: snap.body.id })).body.id;
  });
  after(async () => {
    await t?.close();
  });

  const wsUrl = (q = '') => `${t.url.replace('http', 'ws')}/v1/instances/${id}/terminal${q}`;

  /** Collects output until the exit message and the close. */
  function session(ws: WebSocket, onOpen?: (ws: WebSocket) => void): Promise<{ out: string; exit: any; code: number }> {
    return new Promise((resolve, reject) => {
      let out = '';
      let exit: any = null;
      ws.on('open', () => onOpen?.(ws));
      ws.on('message', (data, binary) => {
        if (binary) out += data.toString();
        else exit = JSON.parse(data.toString());
      });
      ws.on('close', (code) => resolve({ out, exit, code }));
      ws.on('error', reject);
    });
  }

  it('runs a command, streams its output and reports the exit code', async () => {
    const ws = new WebSocket(wsUrl(`?command=${encodeURIComponent('echo hi; exit 3')}`), { headers: { authorization: `Bearer ${t.key}` } });
    const r = await session(ws);
    assert.match(r.out, /hi/);
    assert.deepEqual(r.exit, { type: 'exit', exitCode: 3 });
    assert.equal(r.code, 1000);
  });

  it('takes input and resizes an interactive shell (browser-style subprotocol auth)', async () => {
    const ws = new WebSocket(wsUrl('?cols=80&rows=24'), ['faas-terminal', `bearer.${t.key}`]);
    const r = await session(ws, (s) => {
      assert.equal(s.protocol, 'faas-terminal');
      s.send(Buffer.from('stty size\n'));
      setTimeout(() => {
        s.send(JSON.stringify({ type: 'resize', cols: 132, rows: 50 }));
        s.send(Buffer.from('stty size; exit 0\n'));
      }, 500);
    });
    assert.match(r.out, /24 80/);
    assert.match(r.out, /50 132/);
    assert.equal(r.exit.exitCode, 0);
  });

  it('refuses a missing key, a key in the query, and an unknown instance with JSON errors', async () => {
    const status = (url: string, opts: WebSocket.ClientOptions = {}) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, opts);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => undefined);
      });
    assert.equal(await status(wsUrl()), 401);
    assert.equal(await status(wsUrl(`?token=${t.key}`)), 401);
    assert.equal(await status(wsUrl().replace(id, 'inst_nope'), { headers: { authorization: `Bearer ${t.key}` } }), 404);
    assert.equal(await status(wsUrl('?cols=0'), { headers: { authorization: `Bearer ${t.key}` } }), 400);
    const plain = await t.api('GET', `/v1/instances/${id}/terminal`);
    assert.equal(plain.status, 400);
  });
});
