// One engine per state directory, held by a lock that the kernel releases when the engine dies.
//
// Why not the pid in engine.pid: `kill(pid, 0)` succeeds for a zombie, and a SIGKILLed engine whose
// parent (a host init that does not reap, a CLI that exited) never waits for it stays a zombie, so
// the next start was refused (11 of 12 tries after SIGKILL mid-branch). A pid can also be reused by
// an unrelated process.
//
// Why an SQLite-held POSIX lock on <stateDir>/engine.lock: the kernel drops a process's fcntl locks
// when it closes its files in exit(), before the process becomes a zombie, whatever killed it.
// Node has no flock/fcntl of its own, but better-sqlite3 (already the state store) takes exactly
// such a lock: in `locking_mode=EXCLUSIVE` a connection that has written once keeps its EXCLUSIVE
// lock until it closes. The file lives in the state directory, so a host user who cannot open that
// directory cannot take or squat the lock (an abstract unix socket, the other kernel-released
// option, has a name any local user can bind first). fcntl locks are not inherited across fork(),
// so the spawner helper and runsc never hold it. Tested in engine/test/restart-lock.test.ts.
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export class StateDirLockedError extends Error {}

export interface StateLock {
  readonly path: string;
  release(): void;
}

export function lockStateDir(stateDir: string): StateLock {
  const path = join(stateDir, 'engine.lock');
  const db = new Database(path);
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('journal_mode = MEMORY'); // nothing here worth a journal file (OFF is refused in defensive mode)
    db.pragma('locking_mode = EXCLUSIVE');
    // The first write takes the EXCLUSIVE lock; exclusive locking mode keeps it after COMMIT.
    db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER, since TEXT); DELETE FROM holder; COMMIT;');
    db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, new Date().toISOString());
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      const pid = pidHint(stateDir);
      throw new StateDirLockedError(
        `another engine${pid ? ` (pid ${pid}, per engine.pid)` : ''} holds ${path}: one engine per state directory. ` +
          'Stop it with `faas engine stop` (or `systemctl stop faas-engine`), or give this one another FAAS_STATE_DIR.',
      );
    }
    throw new Error(`cannot lock ${path}: ${(err as Error).message}`);
  }
  let held = true;
  return {
    path,
    release() {
      if (held) db.close();
      held = false;
    },
  };
}

function pidHint(stateDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(stateDir, 'engine.pid'), 'utf8').trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
