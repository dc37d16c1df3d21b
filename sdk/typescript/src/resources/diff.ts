// Diff and merge of snapshots and branches (the engine's diffSnapshots, mergeSnapshots, diffBranch,
// mergeBranches, rebaseBranch). Memory and processes are never merged: a merge result has the
// first side's, a rebase result the target's.
import type * as api from '../generated/api.gen.js';

/** The file differences between two snapshots or two branches' heads. */
export type BranchDiff = api.BranchDiff;
/** The seed's name for a diff of two snapshots: the same shape. */
export type SnapshotDiff = api.BranchDiff;
/** One changed path: `change`, type/mode/size/sha256 before and after, a unified `diff` for small text files. */
export type FileChange = api.FileChange;
/** `fail` (default: MergeConflictError), `ours`, `theirs`, or per path `{paths: {'/p': 'theirs'}, default}`. */
export type MergeStrategy = api.MergeStrategy;

export interface DiffOptions {
  /** Include unified text diffs (default true); false answers hashes and sizes only. */
  textDiffs?: boolean;
}

export interface MergeOptions {
  strategy?: MergeStrategy;
  /** A name for the merged snapshot (snapshots.merge only). */
  name?: string;
  /** Kept as the result's metadata.message (branches.merge only). */
  message?: string;
  metadata?: Record<string, string>;
}

export interface RebaseOptions {
  /** `ours` is the target, `theirs` the branch being replayed (git's convention during a rebase). */
  strategy?: MergeStrategy;
}

/** The exact bytes of a changed path (`pathBase64` when it is not valid UTF-8). */
export function pathBytes(change: { path: string; pathBase64?: string }): Buffer {
  return change.pathBase64 !== undefined ? Buffer.from(change.pathBase64, 'base64') : Buffer.from(change.path, 'utf8');
}
