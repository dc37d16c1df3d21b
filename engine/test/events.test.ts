// GET /v1/events: live events, filters, resume with Last-Event-ID without gaps or duplicates,
// keepalive comments, and a client that does not read not holding up the engine.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startEngine, type TestEngine } from './harness.js';

interface Frame { id: number | null; event: string; data: any }

/** Reads SSE frames from a live response until `until` says stop; then aborts. */
async function collect(res: Response, abort: AbortController, until: (frames: Frame[], raw: string) => boolean): Promise<{ frames: Frame[]; raw: string }> {
  const frames: Frame[] = [];
  let raw = '';
  let buf = '';
  const dec = new TextDecoder();
  try {
    for await (const chunk of res.body as any) {
      const text = dec.decode(chunk, { stream: true });
      raw += text;
      buf += text;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!data) continue;
        frames.push({ id: Number(/^id: (.*)$/m.exec(block)?.[1] ?? NaN), event: /^event: (.*)$/m.exec(block)?.[1] ?? '', data: JSON.parse(data) });
      }
      if (until(frames, raw)) break;
    }
  } finally {
    abort.abort();
  }
  return { frames, raw };
}

describe('events', () => {
  let t: TestEngine;
  let snapId: string;

  before(async () => {
    t = await startEngine({ env: { FAAS_SSE_KEEPALIVE_MS: '300' } });
    snapId = (await t.api('POST', '/v1/snapshots', {})).body.id;
  });
  after(async () => {
    await t?.close();
  });

  const open = (q = '', headers: Record<string, string> = {}) => {
    const abort = new AbortController();
    return fetch(`${t.url}/v1/events${q}`, { headers: { authorization: `Bearer ${t.key}`, ...headers }, signal: abort.signal }).then((res) => ({ res, abort }));
  };

  it('streams lifecycle events live, filtered by type and resource, with keepalives', async () => {
    const all = await open();
    assert.match(all.res.headers.get('content-type') ?? '', /text\/event-stream/);
    const inst = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    const filtered = await open(`?types=instance.stopped,execution.complete&resourceId=${inst.body.id}`);
    await t.api('POST', `/v1/instances/${inst.body.id}/exec`, { command: 'true' });
    await t.api('POST', `/v1/instances/${inst.body.id}/snapshot`, {});
    await t.api('POST', `/v1/instances/${inst.body.id}/branch`, { count: 1 }).then((b) => t.api('DELETE', `/v1/instances/${b.body.instances[0].id}`));
    await t.api('POST', `/v1/instances/${inst.body.id}/stop`);
    const f = await collect(filtered.res, filtered.abort, (fr) => fr.some((x) => x.event === 'instance.stopped'));
    assert.deepEqual(f.frames.map((x) => x.event), ['execution.complete', 'instance.stopped']);
    const a = await collect(all.res, all.abort, (fr, raw) => fr.filter((x) => x.event === 'instance.stopped').length >= 2 && raw.includes(': keepalive'));
    const types = new Set(a.frames.map((x) => x.event));
    for (const ty of ['instance.ready', 'execution.complete', 'snapshot.created', 'branch.created', 'instance.stopped']) assert.ok(types.has(ty), `saw ${ty}`);
    for (const x of a.frames) assert.equal(x.id, x.data.seq);
    const seqs = a.frames.map((x) => x.data.seq);
    assert.deepEqual(seqs, [...seqs].sort((p, q) => p - q));
  });

  it('resumes after a disconnect with Last-Event-ID: no gap, no duplicate', async () => {
    const first = await open();
    const a = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    const got = await collect(first.res, first.abort, (fr) => fr.some((x) => x.event === 'instance.ready'));
    const last = got.frames.at(-1)!.id!;
    // While disconnected: more events happen.
    await t.api('POST', `/v1/instances/${a.body.id}/exec`, { command: 'true' });
    await t.api('POST', `/v1/instances/${a.body.id}/stop`);
    const again = await open('', { 'last-event-id': String(last) });
    setTimeout(() => void t.api('DELETE', `/v1/instances/${a.body.id}`), 200); // a live one after the replay
    const rest = await collect(again.res, again.abort, (fr) => fr.some((x) => x.event === 'instance.deleted'));
    const seqs = rest.frames.map((x) => x.data.seq);
    assert.equal(seqs[0], last + 1, 'the replay starts right after the last seen event');
    seqs.forEach((s, i) => i && assert.equal(s, seqs[i - 1] + 1, 'no gap and no duplicate'));
    assert.deepEqual(rest.frames.map((x) => x.event).filter((e) => e !== 'instance.pending'), ['execution.complete', 'instance.stopped', 'instance.deleted']);
  });

  it('a client that never reads does not block the engine', async () => {
    const sock = connect(new URL(t.url).port as any, '127.0.0.1');
    sock.write(`GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.key}\r\n\r\n`);
    sock.pause(); // never read
    const inst = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) await t.api('POST', `/v1/instances/${inst.body.id}/exec`, { command: 'true' });
    assert.ok(performance.now() - t0 < 30_000);
    const m = await t.api('GET', '/v1/metrics');
    assert.ok(m.body.engine.openEventStreams >= 1);
    sock.destroy();
    await t.api('DELETE', `/v1/instances/${inst.body.id}`);
  });
});
