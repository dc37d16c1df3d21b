// runsc leaves `<id>_sandbox:<id>.lock` in its --root after `runsc delete`, and a `runsc list`
// overlapping a delete re-creates it: the soak found ~7 % of deleted sandboxes' lock files left
// (one file each, forever). The watcher sweeps them; this pins down what the sweep may remove.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { RunscRuntime } from '../src/runtime/runsc/runsc.js';
import { Spawner } from '../src/runtime/spawner.js';
import { purge } from './harness.js';

it('sweeps lock files of deleted sandboxes, never those of live or just-created ones', () => {
  const dir = mkdtempSync('/tmp/faas-test-leftovers-');
  const root = join(dir, 'runsc');
  const spawner = new Spawner();
  const runtime = new RunscRuntime({ binary: loadConfig().runsc, root, filestoreDir: join(dir, 'fs'), logDir: join(dir, 'logs'), spawner });
  const lock = (id: string, ageMs: number) => {
    const p = join(root, `${id}_sandbox:${id}.lock`);
    writeFileSync(p, '');
    const t = (Date.now() - ageMs) / 1000;
    utimesSync(p, t, t);
  };
  try {
    lock('inst_gone', 120_000); // deleted long ago: swept
    lock('inst_live', 120_000); // a record says it is live: kept
    lock('inst_running', 120_000); // has a state file (runsc knows it): kept
    writeFileSync(join(root, 'inst_running_sandbox:inst_running.state'), '{}');
    lock('inst_new', 1_000); // being created (state file not written yet): kept
    writeFileSync(join(root, 'unrelated.lock'), '');
    runtime.pruneLeftovers(new Set(['inst_live']), 60_000);
    assert.deepEqual(readdirSync(root).sort(), [
      'inst_live_sandbox:inst_live.lock',
      'inst_new_sandbox:inst_new.lock',
      'inst_running_sandbox:inst_running.lock',
      'inst_running_sandbox:inst_running.state',
      'unrelated.lock',
    ]);
    runtime.pruneLeftovers(new Set(['inst_live'])); // at start-up (no age limit): the young one too
    assert.ok(!readdirSync(root).includes('inst_new_sandbox:inst_new.lock'));
  } finally {
    spawner.close();
    purge(dir);
  }
});
