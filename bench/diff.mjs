#!/usr/bin/env node
// Diff of two branches with 100 changed files each on the default image (issue 14 item 2: p50 ≤
// 300 ms), beside the direct paths in the same run:
//   - the engine's diff (GET /v1/snapshots/{a}/diff/{b}, manifests + kept blobs, no sandbox);
//   - the same diff without text patches (hashes and sizes only);
//   - the agent hashing those 200 files itself in both live branches (sha256sum, in parallel);
//   - a plain restore + stop (the least a diff that restores its snapshots would pay, per side);
//   - hashing the whole root filesystem once (what a tree-walk diff pays per side).
// And what change tracking adds to a checkpoint: a live branch N=1 with its server-timing split.
// Usage: node bench/diff.mjs [--reps 20]   (env FAAS_SUBNET / FAAS_NET_TAG for a shared machine)
import { mkdtempSync } from 'node:fs';
import { fmt, now, settle, startEngine, stats } from './lib.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const REPS = arg('reps', 20);

const engine = await startEngine({
  FAAS_STATE_DIR: mkdtempSync('/tmp/faas-test-diff-bench-'),
  ...(process.env.FAAS_SUBNET ? { FAAS_SUBNET: process.env.FAAS_SUBNET } : {}),
  ...(process.env.FAAS_NET_TAG ? { FAAS_NET_TAG: process.env.FAAS_NET_TAG } : {}),
});
const row = (label, samples, unit = 'ms') => {
  const s = stats(samples);
  console.log(`${label.padEnd(58)} p50 ${fmt(s.p50).padStart(7)} ${unit}  p95 ${fmt(s.p95).padStart(7)} ${unit}  (n=${s.n})`);
  return s;
};
const exec = async (id, command) => {
  const r = await engine.api('POST', `/v1/instances/${id}/exec`, { command });
  if (r.body.exitCode !== 0) throw new Error(`${command}: ${r.body.stderr}`);
  return r.body.stdout;
};

try {
  const root = (await engine.api('POST', '/v1/snapshots', {})).body;
  const parent = (await engine.api('POST', '/v1/instances', { snapshotId: root.id })).body;
  // 200 text files of ~2 KiB in the parent; each branch then changes 100: 50 edits, 50 new files.
  await exec(parent.id, 'mkdir -p /srv/app && cd /srv/app && for i in $(seq 0 199); do seq 1 400 | sed "s/^/file $i line /" > f$i.txt; done');
  const kids = (await engine.api('POST', `/v1/instances/${parent.id}/branch`, { count: 2 })).body.instances;
  const [a, b] = kids.map((k) => k.id);
  await exec(a, 'cd /srv/app && for i in $(seq 0 49); do sed -i "s/line 7$/line seven (a)/" f$i.txt; done; for i in $(seq 0 49); do seq 1 100 > a-new$i.txt; done');
  await exec(b, 'cd /srv/app && for i in $(seq 50 99); do sed -i "s/line 300$/line 300 (b)/" f$i.txt; done; for i in $(seq 0 49); do seq 1 100 > b-new$i.txt; done');
  const sa = (await engine.api('POST', `/v1/instances/${a}/snapshot`, {})).body.id;
  const sb = (await engine.api('POST', `/v1/instances/${b}/snapshot`, {})).body.id;
  const first = await engine.api('GET', `/v1/snapshots/${sa}/diff/${sb}`);
  console.log(`diff of two branches: ${first.body.totals.files} files differ (+${first.body.totals.insertions} -${first.body.totals.deletions})\n`);

  const time = async (fn) => {
    const t = [];
    for (let i = 0; i < REPS; i++) {
      await settle();
      const t0 = now();
      await fn();
      t.push(now() - t0);
    }
    return t;
  };
  const results = {};
  results.diff = row('engine diff (manifests, unified patches)', await time(() => engine.api('GET', `/v1/snapshots/${sa}/diff/${sb}`)));
  results.diffNoText = row('engine diff, textDiffs=false', await time(() => engine.api('GET', `/v1/snapshots/${sa}/diff/${sb}?textDiffs=false`)));
  const hashCmd = 'cd /srv/app && sha256sum f[0-9]*.txt *-new*.txt 2>/dev/null | wc -l';
  results.agentHash = row('direct: agents hash the changed files (both sides, parallel)', await time(() => Promise.all([exec(a, hashCmd), exec(b, hashCmd)])));
  results.restore = row('direct: one plain restore + delete (per side)', await time(async () => {
    const i = (await engine.api('POST', '/v1/instances', { snapshotId: sa })).body;
    await engine.api('DELETE', `/v1/instances/${i.id}`);
  }));
  const full = [];
  for (let i = 0; i < 3; i++) {
    const t0 = now();
    await exec(a, 'find / -xdev -type f -not -path "/proc/*" -not -path "/sys/*" -print0 2>/dev/null | xargs -0 sha256sum >/dev/null 2>&1; true');
    full.push(now() - t0);
  }
  results.fullTree = row('direct: hash the whole root filesystem (one side)', full);

  // What the change manifest costs a checkpoint: live branch N=1 of a fresh instance (nothing
  // changed) and of a side (~250 changed paths), with the server-timing split (`changes`).
  const branchOf = async (id, label, key) => {
    const br = [];
    const parts = {};
    for (let i = 0; i < Math.min(REPS, 10); i++) {
      await settle();
      const t0 = now();
      const res = await engine.api('POST', `/v1/instances/${id}/branch`, { count: 1 });
      await engine.api('POST', `/v1/instances/${res.body.instances[0].id}/exec`, { argv: ['true'] });
      br.push(now() - t0);
      for (const m of (res.headers.get('server-timing') ?? '').split(',')) {
        const [name, dur] = m.trim().split(';dur=');
        if (dur) (parts[name] ??= []).push(Number(dur));
      }
      await engine.api('DELETE', `/v1/instances/${res.body.instances[0].id}`);
      await engine.api('DELETE', `/v1/snapshots/${res.body.snapshot.id}?force=true`);
    }
    results[key] = row(label, br);
    results[`${key}Changes`] = stats(parts.changes ?? [0]);
    console.log('  server-timing p50: ' + Object.entries(parts).map(([k, v]) => `${k} ${fmt(stats(v).p50)}`).join(', '));
  };
  const fresh = (await engine.api('POST', '/v1/instances', { snapshotId: root.id })).body;
  await branchOf(fresh.id, 'live branch N=1 of a fresh instance (every child answers)', 'branchFresh');
  await branchOf(a, 'live branch N=1 of a side, ~250 changed paths', 'branch');
  console.log(`\n${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { p50: Math.round(v.p50), p95: Math.round(v.p95) }])))}`);
} finally {
  await engine.close();
}
