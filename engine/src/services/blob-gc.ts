// Garbage collection of kept blobs (blobs/<sha256>, store/changes.ts). A blob goes once nothing
// needs it: no snapshot's manifest names it and no live instance's agent has sent it (that agent's
// hash cache would not send it again at the next checkpoint). Who needs what is recorded in the
// database (migration 19, store/sqlite/blob-refs.ts), in the same place and the same transaction
// style as the snapshot rows, and rows go with their snapshot (ON DELETE CASCADE) — so it is
// never out of step with the snapshots, survives eviction of a snapshot's directory, and a crash
// cannot leave a reference behind that the next start does not see.
//
// Races, and why each is safe:
// - A checkpoint in progress: save() records the new snapshot's (still `creating`) references
//   before it writes any blob, synchronously; a collection decides and unlinks one blob in one
//   synchronous step, so it sees either no blob or a referenced one. A checkpoint that fails rolls
//   its row back and its references go with it.
// - Two snapshots (or a clone) naming one blob: one row each; the blob stays while any row does.
// - A diff reads blobs synchronously (no collection can run in between); a merge reads them after
//   awaits, so it pins what it will read (ChangeStore.pin) until it is done.
// - Anything written outside those paths (a temp file of a killed engine, a blob of a crash before
//   its row was committed) is only removed once older than the grace period.
import { existsSync, lstatSync, opendirSync, readFileSync, unlinkSync, type Dir } from 'node:fs';
import { join } from 'node:path';
import { BLOB_NAME, MANIFEST_FILE, type ChangeStore } from '../store/changes.js';
import type { BlobRefRepo } from '../store/sqlite/blob-refs.js';
import type { Logger } from './logger.js';

export interface BlobGcOptions {
  /** Blobs (and temp files) younger than this are never removed (FAAS_BLOB_GC_GRACE_SECONDS). */
  graceMs: number;
  /** Directory entries looked at per run: a run never holds the event loop for long. */
  batch?: number;
}

export interface BlobGcTotals {
  removed: number;
  freedBytes: number;
}

export class BlobGc {
  private dir: Dir | null = null;
  private pass: BlobGcTotals = { removed: 0, freedBytes: 0 };
  private running: Promise<void> | null = null;
  /** False while a snapshot from before migration 19 could not be read: nothing is removed then. */
  private indexed = false;
  /** Runs asked for while one ran: one more follows. */
  private again = false;

  constructor(
    private readonly store: ChangeStore,
    private readonly refs: BlobRefRepo,
    private readonly opts: BlobGcOptions,
    private readonly log: Logger,
    /** Makes an evicted snapshot's files present again (SnapshotFiles.ensure). */
    private readonly ensure: (id: string) => Promise<void>,
  ) {}

  /**
   * Records the manifests of snapshots made before references were kept (once, at start-up). Until
   * every one is recorded, collection stays off: a blob they name must not go.
   */
  async index(): Promise<void> {
    let missing = 0;
    const todo = this.refs.unindexed();
    for (const s of todo) {
      try {
        if (!existsSync(join(s.imageDir, MANIFEST_FILE))) await this.ensure(s.id).catch(() => undefined);
        const file = join(s.imageDir, MANIFEST_FILE);
        if (!existsSync(s.imageDir)) {
          missing++;
          continue;
        }
        const hashes = new Set<string>();
        if (existsSync(file)) {
          const raw = JSON.parse(readFileSync(file, 'utf8')) as { entries?: { sha256?: string }[] };
          for (const e of raw.entries ?? []) if (e.sha256 && BLOB_NAME.test(e.sha256)) hashes.add(e.sha256);
        }
        // A live instance it was taken of has sent these (its agent will not send them again).
        this.refs.record(s.id, s.instanceId, hashes);
      } catch (err) {
        missing++;
        this.log.warn({ snapshotId: s.id, err: (err as Error).message }, 'blob collection: could not read a snapshot\'s change manifest');
      }
    }
    if (todo.length) this.refs.inheritHeads();
    this.indexed = missing === 0;
    if (!this.indexed) this.log.warn({ snapshots: missing }, 'blob collection is off: some snapshots\' change manifests could not be read (their blobs are kept)');
  }

  /** One bounded run (in a quiet moment). Resolves when it is over. */
  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    // .finally runs after the assignment even when the loop had nothing to wait for.
    this.running = this.loop().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      this.step(this.opts.batch ?? 2000);
      // Let requests in between the runs of a long pass.
      if (this.dir) await new Promise((r) => setImmediate(r));
    } while (this.dir || this.again);
  }

  /** Looks at up to `batch` entries of blobs/, synchronously (see the races above). */
  private step(batch: number): void {
    if (!this.indexed) return;
    if (!this.dir) {
      this.dir = opendirSync(this.store.blobDir);
      this.pass = { removed: 0, freedBytes: 0 };
      // Instances that are gone hold nothing any more.
      this.refs.pruneInstances(1000);
    }
    const oldest = Date.now() - this.opts.graceMs;
    for (let i = 0; i < batch; i++) {
      const ent = this.dir.readSync();
      if (!ent) {
        this.dir.closeSync();
        this.dir = null;
        if (this.pass.removed) this.log.info({ ...this.pass }, 'blob collection: removed blobs no snapshot names');
        return;
      }
      const name = ent.name;
      const isBlob = BLOB_NAME.test(name);
      const isTemp = /^[0-9a-f]{64}\.tmp-\d+$/.test(name);
      if (!isBlob && !isTemp) continue; // not ours: left alone
      if (isBlob && (this.store.pinned(name) || this.refs.referenced(name))) continue;
      const path = join(this.store.blobDir, name);
      try {
        const st = lstatSync(path); // a symlink (never made by the engine) is left alone
        if (!st.isFile() || st.mtimeMs > oldest) continue;
        unlinkSync(path);
        this.pass.removed++;
        this.pass.freedBytes += st.size;
      } catch {
        /* gone meanwhile */
      }
    }
  }
}
