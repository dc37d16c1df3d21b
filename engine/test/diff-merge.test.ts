// Diff and three-way merge of snapshots in real sandboxes: every kind of change (odd names,
// symlinks, modes, a large binary), every kind of conflict, the strategies, a clean line-wise
// merge, and a merge result that carries the first side's running process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkedCalls, startEngine, type TestEngine } from './harness.js';

const TEXT = Array.from({ length: 12 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';

describe('snapshot diff and merge', () => {
  let t: TestEngine;
  let fork: string; // the snapshot both sides branched from
  let sa: string; // side A's snapshot
  let sb: string; // side B's snapshot
  let instA: string;
  let bigSha: string;
  const { exec, snapshot, start } = checkedCalls(() => t);

  before(async () => {
    t = await startEngine();
    const root = (await t.api('POST', '/v1/snapshots', {})).body.id;
    const p = await start(root);
    await exec(p, [
      'mkdir -p /work && cd /work',
      `printf '${TEXT}' > text.txt`,
      "printf 'same\\n' > both.txt; printf 'keep\\n' > md.txt; printf 'x\\n' > tc; printf 'gone\\n' > del.txt",
      "printf '#!/bin/sh\\n' > mode.sh; chmod 644 mode.sh",
      'ln -s text.txt link',
      "mkdir gonedir && printf 'g\\n' > gonedir/f",
    ].join(' && '));
    const kids = await t.api('POST', `/v1/instances/${p}/branch`, { count: 2 });
    assert.equal(kids.status, 201, JSON.stringify(kids.body));
    fork = kids.body.snapshot.id;
    const [a, b] = kids.body.instances.map((i: { id: string }) => i.id);
    instA = a;
    // A: a counter in memory, a clean edit on line 2, and one side of each conflict.
    await exec(a, [
      'cd /work',
      "sed -i 's/^line 2$/line 2 from A/' text.txt",
      "printf 'A\\n' > both.txt",
      "printf 'changed by A\\n' > md.txt",
      "printf 'A new\\n' > new.txt",
      'rm tc && mkdir tc',
      'rm -r gonedir',
      "sh -c 'n=0; while :; do n=$((n+1)); echo $n > /tmp/count; sleep 0.2; done' >/dev/null 2>&1 &",
    ].join(' && '));
    // B: a clean edit on line 11, the other sides, and every odd kind of change.
    await exec(b, [
      'cd /work',
      "sed -i 's/^line 11$/line 11 from B/' text.txt",
      "printf 'B\\n' > both.txt",
      'rm md.txt',
      "printf 'B new\\n' > new.txt",
      "printf 'y\\n' > tc",
      'rm del.txt',
      "printf 'g2\\n' > gonedir/f",
      'chmod 755 mode.sh',
      'ln -sfn both.txt link',
      "printf 'spaced\\n' > 'with space.txt'",
      "printf 'nl\\n' > \"$(printf 'new\\nline')\"",
      "printf 'raw\\n' > \"$(printf 'bad\\377name')\"",
      'head -c 3000000 /dev/urandom > big.bin',
      "mkdir -p deep/er && printf 'deep\\n' > deep/er/file",
    ].join(' && '));
    bigSha = (await exec(b, 'sha256sum /work/big.bin | cut -c1-64')).stdout.trim();
    sa = await snapshot(a);
    sb = await snapshot(b);
    await t.api('DELETE', `/v1/instances/${b}`);
    await t.api('DELETE', `/v1/instances/${p}`);
  });
  after(async () => {
    await t?.close();
  });

  it('diffs two snapshots from their change records: every kind of change, odd names, modes, symlinks, a large binary', async () => {
    const r = await t.api('GET', `/v1/snapshots/${fork}/diff/${sb}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const by = new Map<string, any>(r.body.files.map((f: any) => [f.pathBase64 ? `b64:${f.pathBase64}` : f.path, f]));
    const text = by.get('/work/text.txt');
    assert.equal(text.change, 'modified');
    assert.match(text.diff, /^--- a\/work\/text\.txt\n\+\+\+ b\/work\/text\.txt\n/m);
    assert.match(text.diff, /^-line 11\n\+line 11 from B$/m);
    assert.equal(text.insertions, 1);
    assert.equal(text.deletions, 1);
    assert.equal(by.get('/work/del.txt').change, 'deleted');
    assert.equal(by.get('/work/del.txt').typeAfter, null);
    assert.equal(by.get('/work/md.txt').change, 'deleted');
    const mode = by.get('/work/mode.sh');
    assert.deepEqual([mode.change, mode.modeBefore, mode.modeAfter, mode.diffOmitted], ['modified', 0o644, 0o755, 'mode_only']);
    const link = by.get('/work/link');
    assert.deepEqual([link.type, link.symlinkTargetBefore, link.symlinkTargetAfter], ['symlink', 'text.txt', 'both.txt']);
    assert.equal(by.get('/work/with space.txt').change, 'added');
    assert.match(by.get('/work/with space.txt').diff, /^\+spaced$/m);
    assert.equal(by.get('/work/new\nline').change, 'added');
    const raw = by.get(`b64:${Buffer.from('/work/bad\xffname', 'latin1').toString('base64')}`);
    assert.ok(raw, `a non-UTF-8 name is reported with its exact bytes: ${[...by.keys()].join(' | ')}`);
    assert.equal(raw.path, '/work/bad\uFFFDname');
    const big = by.get('/work/big.bin');
    assert.deepEqual([big.change, big.sizeAfter, big.sha256After, big.diff, big.diffOmitted], ['added', 3000000, bigSha, null, 'too_large']);
    assert.equal(by.get('/work/deep/er').type, 'dir');
    assert.equal(by.get('/work/deep/er/file').change, 'added');
    assert.equal(by.get('/work/tc').change, 'modified');
    assert.equal(r.body.totals.files, r.body.files.length);
    assert.equal(r.body.totals.deleted, 2);
    // Nothing but what changed: no image path the sandboxes did not touch.
    for (const f of r.body.files) assert.ok(f.path.startsWith('/work') || f.path.startsWith('/tmp'), f.path);

    // Reversed: additions become deletions; textDiffs=false leaves the patches out.
    const back = await t.api('GET', `/v1/snapshots/${sb}/diff/${fork}?textDiffs=false`);
    assert.equal(back.status, 200);
    const bb = back.body.files.find((f: any) => f.path === '/work/del.txt');
    assert.equal(bb.change, 'added');
    assert.equal(bb.diff, null);
    // A type change.
    const ab = await t.api('GET', `/v1/snapshots/${sa}/diff/${sb}`);
    const tc = ab.body.files.find((f: any) => f.path === '/work/tc');
    assert.deepEqual([tc.change, tc.typeBefore, tc.typeAfter], ['typeChanged', 'dir', 'file']);
  });

  it('refuses a merge with every conflict listed, kind by kind, and makes nothing', async () => {
    const before = (await t.api('GET', '/v1/snapshots?limit=100')).body.data.length;
    const r = await t.api('POST', '/v1/snapshots/merge', { snapshotIds: [sa, sb] });
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'merge_conflict');
    const kinds = Object.fromEntries(r.body.error.details.conflicts.map((c: any) => [c.path, c.kind]));
    assert.deepEqual(kinds, {
      '/work/both.txt': 'modify/modify',
      '/work/md.txt': 'modify/delete',
      '/work/new.txt': 'add/add',
      '/work/tc': 'typeChange',
      '/work/gonedir/f': 'delete/modify',
    });
    for (const c of r.body.error.details.conflicts) assert.deepEqual([c.base, c.ours, c.theirs], [fork, sa, sb]);
    const other = await t.api('POST', '/v1/snapshots/merge', { snapshotIds: [sb, sa] });
    assert.equal(other.body.error.details.conflicts.find((c: any) => c.path === '/work/md.txt').kind, 'delete/modify');
    assert.equal((await t.api('GET', '/v1/snapshots?limit=100')).body.data.length, before, 'a refused merge makes no snapshot');
  });

  it('merges with per-path resolutions: line-wise text merge, the other side\'s odd names, modes, symlinks and large binary, the first side\'s running process', async () => {
    const r = await t.api('POST', '/v1/snapshots/merge', {
      snapshotIds: [sa, sb],
      strategy: { paths: { '/work/both.txt': 'theirs', '/work/md.txt': 'ours', '/work/tc': 'ours' }, default: 'theirs' },
      name: 'merged',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.parentId, sa, 'the merge result descends from the first side');
    const m = await start(r.body.id);
    const out = (cmd: string) => exec(m, cmd).then((x) => x.stdout);
    const merged = await out('cat /work/text.txt');
    assert.equal(merged, TEXT.replace('line 2\n', 'line 2 from A\n').replace('line 11\n', 'line 11 from B\n'), 'both clean edits');
    assert.equal(await out('cat /work/both.txt'), 'B\n');
    assert.equal(await out('cat /work/md.txt'), 'changed by A\n');
    assert.equal(await out('cat /work/new.txt'), 'B new\n', 'the default resolution');
    assert.equal(await out('test -d /work/tc && echo dir'), 'dir\n');
    assert.equal(await out('test -e /work/del.txt || echo gone'), 'gone\n');
    assert.equal(await out('stat -c %a /work/mode.sh'), '755\n');
    assert.equal(await out('readlink /work/link'), 'both.txt\n');
    assert.equal(await out("cat '/work/with space.txt' \"$(printf '/work/new\\nline')\" \"$(printf '/work/bad\\377name')\""), 'spaced\nnl\nraw\n');
    assert.equal(await out('sha256sum /work/big.bin | cut -c1-64'), `${bigSha}\n`);
    assert.equal(await out('cat /work/deep/er/file'), 'deep\n');
    assert.equal(await out('cat /work/gonedir/f'), 'g2\n', 'a file taken into a directory this side removed');
    // The first side's process came along with its memory and keeps counting.
    const c1 = Number(await out('cat /tmp/count'));
    await out('sleep 0.6');
    assert.ok(Number(await out('cat /tmp/count')) > c1, 'the counter from side A runs in the merge result');
    // The result diffs like any snapshot: against A it holds B's changes.
    const d = await t.api('GET', `/v1/snapshots/${sa}/diff/${r.body.id}`);
    assert.equal(d.status, 200);
    assert.ok(d.body.files.some((f: any) => f.path === '/work/big.bin' && f.sha256After === bigSha));
    await t.api('DELETE', `/v1/instances/${m}`);
  });

  it('resolves every conflict with strategy ours or theirs', async () => {
    const ours = await t.api('POST', '/v1/snapshots/merge', { snapshotIds: [sa, sb], strategy: 'ours' });
    assert.equal(ours.status, 201, JSON.stringify(ours.body));
    const theirs = await t.api('POST', '/v1/snapshots/merge', { snapshotIds: [sa, sb], strategy: 'theirs' });
    assert.equal(theirs.status, 201, JSON.stringify(theirs.body));
    const o = await start(ours.body.id);
    const th = await start(theirs.body.id);
    assert.equal((await exec(o, 'cat /work/both.txt /work/new.txt /work/md.txt')).stdout, 'A\nA new\nchanged by A\n');
    assert.equal((await exec(th, 'cat /work/both.txt /work/new.txt; test -e /work/md.txt || echo deleted; cat /work/tc')).stdout, 'B\nB new\ndeleted\ny\n');
    await t.api('DELETE', `/v1/instances/${o}`);
    await t.api('DELETE', `/v1/instances/${th}`);
  });

  it('keeps small changed files once by hash and refuses a blob whose name is not its hash', async () => {
    const blobs = join(t.config.stateDir, 'blobs');
    assert.equal(statSync(blobs).mode & 0o777, 0o700);
    const sha = createHash('sha256').update('spaced\n').digest('hex');
    assert.ok(statSync(join(blobs, sha)).isFile());
    // The host user nobody cannot read kept file contents.
    const peek = spawnSync('runuser', ['-u', 'nobody', '--', 'cat', join(blobs, sha)], { encoding: 'utf8' });
    assert.notEqual(peek.status, 0);
    assert.doesNotMatch(peek.stdout, /spaced/);
    t.engine.services.diffs['store'].putBlob('0'.repeat(64), Buffer.from('lie'));
    assert.throws(() => statSync(join(blobs, '0'.repeat(64))));
  });

  it('answers another key and bad ids like missing snapshots', async () => {
    const k = await t.api('POST', '/v1/keys', { name: 'other' });
    const other = { authorization: `Bearer ${k.body.secret}` };
    const d = await t.api('GET', `/v1/snapshots/${fork}/diff/${sb}`, undefined, { headers: other });
    assert.equal(d.status, 404);
    assert.equal(d.body.error.code, 'snapshot_not_found');
    const m = await t.api('POST', '/v1/snapshots/merge', { snapshotIds: [sa, sb] }, { headers: other });
    assert.equal(m.status, 404);
    const anon = await fetch(`${t.url}/v1/snapshots/${fork}/diff/${sb}`);
    assert.equal(anon.status, 401);
    const one = await t.api('POST', '/v1/snapshots/merge', { snapshotIds: [sa] });
    assert.equal(one.status, 400);
    const dup = await t.api('POST', '/v1/snapshots/merge', { snapshotIds: [sa, sa] });
    assert.equal(dup.status, 400);
  });

  it('a snapshot without a change record (taken while paused) answers diff_unavailable, for diffs and merges', async () => {
    const i = await start(fork);
    assert.equal((await t.api('POST', `/v1/instances/${i}/pause`)).status, 200);
    const paused = await snapshot(i);
    const d = await t.api('GET', `/v1/snapshots/${fork}/diff/${paused}`);
    assert.equal(d.status, 409);
    assert.deepEqual([d.body.error.code, d.body.error.details.reason], ['diff_unavailable', 'no_manifest']);
    const m = await t.api('POST', '/v1/snapshots/merge', { snapshotIds: [paused, sa] });
    assert.equal(m.body.error.code, 'diff_unavailable');
    await t.api('DELETE', `/v1/instances/${i}`);
  });

  it('the first side keeps running untouched by a merge', async () => {
    const r = await t.api('GET', `/v1/instances/${instA}`);
    assert.equal(r.body.state, 'ready');
    assert.equal((await exec(instA, 'cat /work/both.txt')).stdout, 'A\n');
  });
});

describe('branch diff, merge and rebase', () => {
  let t: TestEngine;
  const exec = async (id: string, command: string) => {
    const r = await t.api('POST', `/v1/instances/${id}/exec`, { command });
    assert.equal(r.body.exitCode, 0, JSON.stringify(r.body));
    return r.body.stdout as string;
  };
  /** A branch at `snapshotId` with `command` run and committed. */
  const branchWith = async (snapshotId: string, name: string, command: string) => {
    const b = await t.api('POST', '/v1/branches', { snapshotId, name });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    const inst = (await t.api('POST', `/v1/branches/${b.body.id}/checkout`)).body.id;
    await exec(inst, command);
    const c = await t.api('POST', `/v1/branches/${b.body.id}/commit`, { message: name });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    return { id: b.body.id as string, instance: inst as string, head: c.body.id as string };
  };

  before(async () => {
    t = await startEngine();
  });
  after(async () => {
    await t?.close();
  });

  it('diffs branch heads, merges into the first (moving its head) and rebases onto another', async () => {
    const root = (await t.api('POST', '/v1/snapshots', {})).body.id;
    const base = await branchWith(root, 'main', "mkdir /app && printf 'a\\nb\\nc\\nd\\ne\\n' > /app/conf");
    const feat = await branchWith(base.head, 'feature', "sed -i 's/^b$/B/' /app/conf && echo new > /app/feature.txt");
    const fix = await branchWith(base.head, 'fix', "sed -i 's/^e$/E/' /app/conf && echo 'sleep 1000' > /app/fix.sh");

    const d = await t.api('GET', `/v1/branches/${feat.id}/diff/${fix.id}`);
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.deepEqual(d.body.files.map((f: any) => `${f.change} ${f.path}`), ['modified /app/conf', 'deleted /app/feature.txt', 'added /app/fix.sh']);
    const ds = await t.api('GET', `/v1/branches/${feat.id}/diff/${base.head}`);
    assert.equal(ds.body.target, base.head, 'a snapshot is a target too');

    const m = await t.api('POST', '/v1/branches/merge', { branchIds: [feat.id, fix.id], message: 'merge fix' });
    assert.equal(m.status, 201, JSON.stringify(m.body));
    assert.equal(m.body.metadata.message, 'merge fix');
    const after = (await t.api('GET', `/v1/branches/${feat.id}`)).body;
    assert.equal(after.head, m.body.id, 'the first branch moved to the result');
    assert.equal(after.instanceId, null, 'its old instance is detached, not overwritten');
    assert.equal(await exec(feat.instance, 'cat /app/conf'), 'a\nB\nc\nd\ne\n', 'the detached instance kept its files');
    assert.equal((await t.api('GET', `/v1/branches/${fix.id}`)).body.head, fix.head, 'the other branch is unchanged');
    const co = (await t.api('POST', `/v1/branches/${feat.id}/checkout`)).body.id;
    assert.equal(await exec(co, 'cat /app/conf /app/feature.txt /app/fix.sh'), 'a\nB\nc\nd\nE\nnew\nsleep 1000\n');

    // Rebase fix onto main after main moved: fix's head gets main's change and keeps its own.
    const mainInst = (await t.api('POST', `/v1/branches/${base.id}/checkout`)).body.id;
    await exec(mainInst, "sed -i 's/^a$/A/' /app/conf");
    const moved = (await t.api('POST', `/v1/branches/${base.id}/commit`, {})).body.id;
    const r = await t.api('POST', `/v1/branches/${fix.id}/rebase`, { targetId: base.id });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.divergencePoint, moved);
    assert.notEqual(r.body.head, fix.head);
    const rc = (await t.api('POST', `/v1/branches/${fix.id}/checkout`)).body.id;
    assert.equal(await exec(rc, 'cat /app/conf; test -e /app/feature.txt || echo no-feature'), 'A\nb\nc\nd\nE\nno-feature\n');
    const back = await t.api('GET', `/v1/branches/${fix.id}/diff/${base.id}`);
    assert.deepEqual(back.body.files.map((f: any) => `${f.change} ${f.path}`), ['modified /app/conf', 'deleted /app/fix.sh']);

    // Conflicts are the snapshot merge's; another key sees nothing.
    const c1 = await branchWith(base.head, 'c1', 'echo 1 > /app/x');
    const c2 = await branchWith(base.head, 'c2', 'echo 2 > /app/x');
    const conflict = await t.api('POST', '/v1/branches/merge', { branchIds: [c1.id, c2.id] });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error.details.conflicts[0].kind, 'add/add');
    assert.equal((await t.api('GET', `/v1/branches/${c1.id}`)).body.head, c1.head, 'a refused merge moves nothing');
    const k = await t.api('POST', '/v1/keys', { name: 'other' });
    const other = { authorization: `Bearer ${k.body.secret}` };
    assert.equal((await t.api('GET', `/v1/branches/${c1.id}/diff/${c2.id}`, undefined, { headers: other })).status, 404);
    assert.equal((await t.api('POST', '/v1/branches/merge', { branchIds: [c1.id, c2.id] }, { headers: other })).status, 404);
    assert.equal((await t.api('POST', `/v1/branches/${c1.id}/rebase`, { targetId: c2.id }, { headers: other })).status, 404);
  });
});

describe('change records from a sandbox are not trusted on the host', () => {
  it('drops manifest paths that would leave the image directory', async () => {
    const { ChangeStore, isPlainPath } = await import('../src/store/changes.js');
    const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/faas-test-diff-manifest-');
    try {
      const store = new ChangeStore(dir);
      mkdirSync(join(dir, 'snap'));
      const e = (path: string) => ({ path, type: 'file', mode: 0o644, size: 1, sha256: 'a'.repeat(64) });
      writeFileSync(join(dir, 'snap', 'changes.json'), JSON.stringify({
        version: 1, complete: true,
        entries: [e('/ok'), e('/../../etc/shadow'), e('/a/./b'), e('//etc'), e('relative'), e('/x/'), { pathBase64: Buffer.from('/a\0b').toString('base64'), type: 'file', mode: 0, size: 0 }],
      }));
      const m = store.load('snap_x', join(dir, 'snap'));
      assert.deepEqual([...(m?.entries.keys() ?? [])], ['/ok']);
      assert.equal(isPlainPath('/'), false);
      assert.equal(isPlainPath('/a b/\nc'), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
