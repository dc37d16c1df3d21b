// Background processes through the engine: start, list, get, wait (with timeout), stdin, signal,
// output replay + follow as SSE, and survival across a live branch.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readSse, startEngine, type TestEngine } from './harness.js';

describe('processes', () => {
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

  const output = async (inst: string, pid: number, q = '') =>
    readSse(await fetch(`${t.url}/v1/instances/${inst}/processes/${pid}/output${q}`, { headers: { authorization: `Bearer ${t.key}` } }));

  it('starts, lists, gets, waits with a timeout, and replays output', async () => {
    const p = await t.api('POST', `/v1/instances/${id}/processes`, { command: 'echo one; echo two >&2; sleep 1; echo three; exit 4', tag: 'job' });
    assert.equal(p.status, 201);
    assert.equal(p.body.state, 'running');
    assert.equal(p.body.tag, 'job');
    const list = await t.api('GET', `/v1/instances/${id}/processes`);
    assert.ok(list.body.data.some((x: any) => x.pid === p.body.pid));
    const early = await t.api('POST', `/v1/instances/${id}/processes/${p.body.pid}/wait?timeout=100`);
    assert.equal(early.status, 409); // the caller's deadline, not a server failure
    assert.equal(early.body.error.details.state, 'running');
    const done = await t.api('POST', `/v1/instances/${id}/processes/${p.body.pid}/wait`);
    assert.equal(done.body.state, 'exited');
    assert.equal(done.body.exitCode, 4);
    const events = await output(id, p.body.pid);
    assert.deepEqual(events.filter((e) => e.event !== 'exit').map((e) => [e.event, e.data.data]), [['stdout', 'one\n'], ['stderr', 'two\n'], ['stdout', 'three\n']]);
    assert.deepEqual(events.at(-1), { event: 'exit', data: { exitCode: 4, signal: null } });
    const since = await output(id, p.body.pid, `?since=${events[1].data.seq}`);
    assert.equal(since[0].data.data, 'three\n');
    assert.equal((await t.api('GET', `/v1/instances/${id}/processes/99999`)).body.error.code, 'process_not_found');
  });

  it('writes stdin, closes it, and follows live output', async () => {
    const p = await t.api('POST', `/v1/instances/${id}/processes`, { argv: ['sh', '-c', 'while read l; do echo "got $l"; done; echo eof'] });
    const follow = fetch(`${t.url}/v1/instances/${id}/processes/${p.body.pid}/output?follow=true`, { headers: { authorization: `Bearer ${t.key}` } }).then(readSse);
    const w = await t.api('POST', `/v1/instances/${id}/processes/${p.body.pid}/stdin`, undefined, { headers: { 'content-type': 'application/octet-stream' }, raw: 'a\nb\n' });
    assert.equal(w.status, 204);
    assert.equal((await t.api('POST', `/v1/instances/${id}/processes/${p.body.pid}/stdin/close`)).status, 204);
    const events = await follow;
    assert.equal(events.filter((e) => e.event === 'stdout').map((e) => e.data.data).join(''), 'got a\ngot b\neof\n');
    assert.equal(events.at(-1)!.data.exitCode, 0);
    const late = await t.api('POST', `/v1/instances/${id}/processes/${p.body.pid}/stdin`, undefined, { headers: { 'content-type': 'application/octet-stream' }, raw: 'x' });
    assert.equal(late.status, 409);
  });

  it('signals a process group', async () => {
    const p = await t.api('POST', `/v1/instances/${id}/processes`, { command: 'sleep 300' });
    assert.equal((await t.api('POST', `/v1/instances/${id}/processes/${p.body.pid}/signal`, { signal: 'SIGTERM' })).status, 204);
    const done = await t.api('POST', `/v1/instances/${id}/processes/${p.body.pid}/wait?timeout=5000`);
    assert.equal(done.body.signal, 'SIGTERM');
    assert.equal((await t.api('POST', `/v1/instances/${id}/processes/${p.body.pid}/signal`, { signal: 9 })).status, 409);
  });

  it('keeps running after the client goes and in every child of a live branch', async () => {
    const p = await t.api('POST', `/v1/instances/${id}/processes`, { command: 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done', tag: 'ticker' });
    const br = await t.api('POST', `/v1/instances/${id}/branch`, { count: 2 });
    assert.equal(br.status, 201);
    await new Promise((r) => setTimeout(r, 700));
    for (const child of br.body.instances) {
      const list = await t.api('GET', `/v1/instances/${child.id}/processes`);
      const tk = list.body.data.find((x: any) => x.tag === 'ticker');
      assert.ok(tk, `the ticker is listed in ${child.id}`);
      assert.equal(tk.state, 'running');
      const a = (await output(child.id, tk.pid)).filter((e) => e.event === 'stdout');
      await new Promise((r) => setTimeout(r, 600));
      const b = (await output(child.id, tk.pid)).filter((e) => e.event === 'stdout');
      assert.ok(b.at(-1)!.data.seq > a.at(-1)!.data.seq, 'still producing output after the branch');
      await t.api('DELETE', `/v1/instances/${child.id}`);
    }
    await t.api('POST', `/v1/instances/${id}/processes/${p.body.pid}/signal`, { signal: 'SIGKILL' });
  });
});
