// The seams between the engine's services and the outside world. Services depend on these
// interfaces; the composition root (engine.ts) picks the implementations. A second backend
// (another runtime, PostgreSQL, object storage) is a second implementation of the same contract.

/** Lifecycle of one sandbox: create|boot → running ⇄ paused → checkpoint* → destroy. */
export interface SandboxRuntime {
  /** Cold boot from a bundle (used once per snapshot created from an image). */
  boot(id: string, bundleDir: string, opts?: { diskSizeMb?: number }): Promise<void>;
  /** Create a sandbox without starting anything in it (a later restore fills it). */
  create(id: string, bundleDir: string): Promise<void>;
  /** Restore a checkpoint image into a new (or created) sandbox; returns when the sandbox runs.
   *  `eager`: every page is loaded before it returns, so the sandbox holds no file of the image
   *  afterwards (a rollback's hot standby, services/rollback-hot.ts); otherwise the runtime's default. */
  restore(id: string, bundleDir: string, imageDir: string, opts?: { eager?: boolean }): Promise<void>;
  /** Checkpoint; with leaveRunning the sandbox continues, otherwise it exits. */
  checkpoint(id: string, imageDir: string, leaveRunning: boolean): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  /** Kill and forget the sandbox. Idempotent: an unknown id is not an error. */
  destroy(id: string): Promise<void>;
  /** Number of processes inside the sandbox. */
  processCount(id: string): Promise<number>;
  /** Sandboxes the runtime knows, with their status and host pid. */
  list(): Promise<{ id: string; status: string; pid: number }[]>;
  /** Undoes what the runtime itself leaves on the host (mounts) once no sandbox is left. Idempotent. */
  uninstall(): Promise<void>;
  /** Removes what the runtime keeps on disk for sandboxes that no longer exist (all but `known`),
   *  leaving anything younger than minAgeMs (it may belong to a sandbox being made). */
  pruneLeftovers(known: Set<string>, minAgeMs?: number): void;
}

export interface NetworkSlot {
  /** Network namespace name (under /var/run/netns). */
  netns: string;
  /** Path the OCI spec points at. */
  path: string;
  /** The instance's address inside its namespace. */
  ip: string;
  /** The host side of the veth pair. */
  hostIp: string;
  hostIf: string;
}

export interface NetworkManager {
  /** A fresh, configured namespace (gVisor strips addresses on use, so slots are never reused). */
  acquire(): Promise<NetworkSlot>;
  release(netns: string): Promise<void>;
  /**
   * Egress rules (host names resolved) and bandwidth for the slot's instance, enforced on the host;
   * release() removes them. Null fields: none.
   */
  setPolicy(netns: string, state: { egress: { denyAll: boolean; dnsServers: string[]; allow: string[]; deny: string[] } | null; bandwidth: number | null }): Promise<void>;
  /** Namespaces this engine owns that exist on the host now. */
  existing(): Promise<string[]>;
  close(): Promise<void>;
  /** After close() with no sandbox left: deletes the engine's namespaces and firewall rules. Idempotent. */
  uninstall(): Promise<void>;
}

export interface SpawnRequest {
  file: string;
  args: string[];
  /** Written to the program's stdin (otherwise stdin is /dev/null). */
  input?: string;
  /** stdout and stderr go to this file (for programs that leave a process behind holding them);
   *  otherwise both are captured through pipes and returned. */
  logFile?: string;
}

export interface SpawnResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs short-lived programs (runsc, ip) to their exit. */
export interface ProgramRunner {
  /** Rejects only when the program could not be started at all. */
  run(req: SpawnRequest): Promise<SpawnResult>;
}
