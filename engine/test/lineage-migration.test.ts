// Migration 13 (instance history) on a database an older engine wrote: each checkpoint follows the
// previous one of its instance, each instance's head is its latest checkpoint, the numbers reserved
// for parallel work are neither run nor recorded, and a deleted checkpoint is spliced out.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openDb } from '../src/store/sqlite/db.js';
import { LineageRepo } from '../src/store/sqlite/lineage.js';
import { MIGRATIONS } from '../src/store/sqlite/migrations.js';

describe('migration 13: history of existing rows', () => {
  const dir = mkdtempSync('/tmp/faas-test-lineage-');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('backfills predecessors and heads, and splices a deleted checkpoint out', () => {
    const path = join(dir, 'faas.db');
    const old = new Database(path);
    old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    MIGRATIONS.slice(0, 7).forEach((sql, i) => {
      old.exec(sql!);
      old.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(i + 1, 'then');
    });
    old.prepare("INSERT INTO images (id,name,source,rootfs,size,digest,created_at) VALUES ('img_a','a','default','/x',0,'d','t')").run();
    const snap = old.prepare(
      "INSERT INTO snapshots (id,state,parent_id,image_id,instance_id,digest,resources,environment,spec,image_dir,created_at) VALUES (?,'ready',?,'img_a',?,'d','{}','{}','{}','/x',?)",
    );
    const inst = old.prepare("INSERT INTO instances (id,snapshot_id,state,resources,created_at) VALUES (?,?,'ready','{}','t')");
    snap.run('snap_root', null, null, '1');
    inst.run('inst_a', 'snap_root');
    snap.run('snap_a1', 'snap_root', 'inst_a', '2');
    snap.run('snap_a2', 'snap_root', 'inst_a', '3');
    inst.run('inst_b', 'snap_a2'); // a branch child of inst_a
    snap.run('snap_b1', 'snap_a2', 'inst_b', '4');
    inst.run('inst_c', 'snap_root'); // no checkpoint of its own
    old.close();

    const db = openDb(path);
    try {
      const versions = (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]).map((r) => r.version);
      const expected = MIGRATIONS.flatMap((sql, i) => (sql === null ? [] : [i + 1]));
      assert.deepEqual(versions, expected, 'every migration after 7 runs; the unused numbers are neither run nor recorded');
      assert.ok(versions.includes(13));
      const lineage = new LineageRepo(db);
      assert.equal(lineage.previousOf('snap_root'), null);
      assert.equal(lineage.previousOf('snap_a1'), 'snap_root');
      assert.equal(lineage.previousOf('snap_a2'), 'snap_a1');
      assert.equal(lineage.previousOf('snap_b1'), 'snap_a2');
      assert.equal(lineage.headOf('inst_a'), 'snap_a2');
      assert.equal(lineage.headOf('inst_b'), 'snap_b1');
      assert.equal(lineage.headOf('inst_c'), 'snap_root', 'no checkpoint: the snapshot it was started from');

      lineage.spliceOut('snap_a2');
      db.prepare("DELETE FROM snapshots WHERE id = 'snap_a2'").run();
      assert.equal(lineage.previousOf('snap_b1'), 'snap_a1');
      assert.equal(lineage.headOf('inst_a'), 'snap_a1');
      assert.equal(lineage.headOf('inst_b'), 'snap_b1');
    } finally {
      db.close();
    }
  });
});
