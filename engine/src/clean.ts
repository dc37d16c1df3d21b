// `node engine/dist/src/main.js clean` (run by `faas engine stop --clean` once the engine has
// exited): stops every instance of the state directory and removes what the engine put on the host
// outside it — sandboxes, network namespaces, firewall chains (IPv4 and IPv6), runsc's null-netns
// mount. It builds the same engine graph without listening (so records end `stopped`, exactly as a
// stop through the API leaves them, also after a SIGKILL), then shuts it down with `clean`.
// Idempotent: on a clean host it only confirms there is nothing left.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import { createEngine, NETWORK_FILE } from './engine.js';

export interface CleanReport {
  stateDir: string;
  tag: string;
  subnet: string;
}

/**
 * Refuses while an engine runs on the state directory (its sandboxes need their firewall): the
 * engine built here takes the state directory's lock, which a running engine holds
 * (StateDirLockedError, store/state-lock.ts).
 */
export async function cleanHost(config: Config): Promise<CleanReport> {
  // The tag and subnet the engine last ran with, whatever this environment says.
  let last: { tag?: string; subnet?: string } = {};
  try {
    last = JSON.parse(readFileSync(join(config.stateDir, NETWORK_FILE), 'utf8'));
  } catch {
    /* never started here, or an engine from before the file: the environment's values */
  }
  const cfg: Config = { ...config, netTag: last.tag ?? config.netTag, subnet: last.subnet ?? config.subnet, netnsPool: 0, warmPool: 0, warmPoolMax: 0 };
  const engine = await createEngine(cfg);
  await engine.shutdown({ stopInstances: true, clean: true });
  return { stateDir: cfg.stateDir, tag: cfg.netTag, subnet: cfg.subnet };
}
