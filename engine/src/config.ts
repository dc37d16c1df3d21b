// Engine configuration from the environment, with defaults that match scripts/install.sh.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { cacheConfigFromEnv, type CacheConfig } from './store/images/image-cache.js';
import type { SshGuardConfig } from './ssh/guard.js';

export interface Config {
  stateDir: string;
  host: string;
  port: number;
  /** SSH gateway port (FAAS_SSH_PORT, default 7422; `off` → null, no gateway; 0 → any free port). */
  sshPort: number | null;
  /** Addresses the SSH gateway listens on (FAAS_SSH_HOST, comma-separated; loopback v4 + v6 by default). */
  sshHosts: string[];
  /** The gateway's limits before a login: failed logins, grace time, unauthenticated connections (FAAS_SSH_*; docs/security/sshguard.md). */
  sshGuard: SshGuardConfig;
  runsc: string;
  agentBinary: string;
  defaultImageDir: string;
  subnet: string;
  netTag: string;
  netnsPool: number;
  warmPool: number;
  /** A template's warm pool grows to the widest recent branch, up to this many sandboxes. */
  warmPoolMax: number;
  /** Instances with a rollback standby at once (services/rollback-standby.ts); 0: rollbacks restore cold. */
  rollbackStandbys: number;
  /** MB of checkpoint memory held in hot standbys (restored and paused) across the engine (services/rollback-hot.ts); 0: off. */
  rollbackHotMb: number;
  maxLiveInstances: number;
  /** Seconds an instance started without `ttl` lives before its ttlAction (stop); null: no limit. */
  defaultInstanceTtl: number | null;
  /** Memory (MB) all live instances together may be given (default: the machine's RAM). */
  maxMemoryMb: number;
  /** Restores load memory pages lazily behind the running sandbox (runsc restore --background). */
  lazyRestore: boolean;
  readyTimeoutMs: number;
  specPath: string;
  /** autoStop: seconds without exec/files/processes/terminal activity after which an instance stops. */
  idleSeconds: number;
  /** One-shot exec keeps this many bytes of each of stdout/stderr; the rest is `truncated`. */
  execOutputMax: number;
  /** exec/files/processes requests in flight per instance, and per API credential (429 beyond). */
  instanceConcurrency: number;
  credentialConcurrency: number;
  /** Open port-forward connections and tunnels per instance, and per API credential (429 beyond). */
  forwardConcurrency: number;
  forwardCredentialConcurrency: number;
  /** JSON request bodies: the exec routes (stdin travels inside them), every other route, nesting. */
  execBodyMax: number;
  jsonBodyMax: number;
  jsonDepthMax: number;
  /** Cap on an image import's upload and on its unpacked tar stream, in bytes. */
  imageMaxBytes: number;
  /** Seconds between re-resolutions of host names in egress policies (at least 5). */
  egressResolveSeconds: number;
  /**
   * A hosts-format file consulted before the host's resolver for host names in egress policies
   * (null: none). For tests and for operators who pin names; the sandboxes never see it.
   */
  egressHostsFile: string | null;
  /** HTTP services (docs/services.md): base host of service host names, URL scheme and port. */
  serviceHost: string;
  serviceScheme: 'http' | 'https';
  serviceUrlPort: number | null;
  serviceTokenSeconds: number;
  /** How long a browser session (the /login cookie) lasts at most. */
  webSessionSeconds: number;
  /** Kept blobs younger than this are never collected (FAAS_BLOB_GC_GRACE_SECONDS; services/blob-gc.ts). */
  blobGcGraceSeconds: number;
  /** CacheConfig of the image store (FAAS_CACHE_*; docs/storage.md). */
  cache: CacheConfig;
}

/** Hard ceiling of FAAS_EXEC_OUTPUT_MAX: the agent's own (spec/agent-protocol.md). */
export const EXEC_OUTPUT_HARD_MAX = 16 * 1024 * 1024;

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const stateDir = env.FAAS_STATE_DIR ?? '/var/lib/faas';
  const cache = env.FAAS_CACHE_DIR ?? '/var/cache/faas';
  return {
    stateDir,
    host: env.FAAS_HOST ?? '127.0.0.1',
    port: Number(env.FAAS_PORT ?? 7440),
    sshPort: env.FAAS_SSH_PORT === 'off' ? null : int(env, 'FAAS_SSH_PORT', 7422, 0, 65535),
    sshHosts: (env.FAAS_SSH_HOST ?? '127.0.0.1,::1').split(',').map((h) => h.trim()).filter(Boolean),
    // OpenSSH's MaxAuthTries 6, LoginGraceTime 120 and MaxStartups' hard 100; fail2ban-like lock-outs.
    sshGuard: {
      maxAuthTries: int(env, 'FAAS_SSH_MAX_AUTH_TRIES', 6, 1, 1000),
      maxFailures: int(env, 'FAAS_SSH_MAX_FAILURES', 10, 1, 100_000),
      failureWindowSeconds: int(env, 'FAAS_SSH_FAILURE_WINDOW_SECONDS', 600, 1, 7 * 86_400),
      lockoutSeconds: int(env, 'FAAS_SSH_LOCKOUT_SECONDS', 300, 1, 7 * 86_400),
      lockoutMaxSeconds: int(env, 'FAAS_SSH_LOCKOUT_MAX_SECONDS', 86_400, 1, 30 * 86_400),
      loginGraceSeconds: int(env, 'FAAS_SSH_LOGIN_GRACE_SECONDS', 120, 1, 86_400),
      maxStartups: int(env, 'FAAS_SSH_MAX_STARTUPS', 200, 1, 100_000),
      maxStartupsPerSource: int(env, 'FAAS_SSH_MAX_STARTUPS_PER_SOURCE', 64, 1, 100_000),
    },
    runsc: env.FAAS_RUNSC ?? `${cache}/bin/runsc`,
    agentBinary: env.FAAS_AGENT_BIN ?? `${repoRoot}agent/bin/faas-agent`,
    defaultImageDir: env.FAAS_DEFAULT_IMAGE ?? `${cache}/images/default`,
    subnet: env.FAAS_SUBNET ?? '10.200.0.0/16',
    netTag: env.FAAS_NET_TAG ?? createHash('sha256').update(stateDir).digest('hex').replace(/[^a-z0-9]/g, '').slice(0, 4),
    netnsPool: Number(env.FAAS_NETNS_POOL ?? 4),
    warmPool: Number(env.FAAS_WARM_POOL ?? 8),
    warmPoolMax: Number(env.FAAS_WARM_POOL_MAX ?? 32),
    rollbackStandbys: Number(env.FAAS_ROLLBACK_STANDBYS ?? 4),
    rollbackHotMb: int(env, 'FAAS_ROLLBACK_HOT_MB', 512, 0, 1024 * 1024),
    maxLiveInstances: Number(env.FAAS_MAX_INSTANCES ?? 64),
    // 24 h, then stopped (not deleted: `restart` brings it back); 0 turns the default off.
    defaultInstanceTtl: ((n) => (n === 0 ? null : n))(int(env, 'FAAS_INSTANCE_TTL', 86_400, 0, 365 * 86_400)),
    maxMemoryMb: Number(env.FAAS_MAX_MEMORY_MB ?? 0),
    lazyRestore: int(env, 'FAAS_LAZY_RESTORE', 1, 0, 1) === 1,
    readyTimeoutMs: Number(env.FAAS_READY_TIMEOUT_MS ?? 20_000),
    specPath: env.FAAS_SPEC ?? `${repoRoot}spec/openapi.yaml`,
    idleSeconds: Number(env.FAAS_IDLE_SECONDS ?? 300),
    execOutputMax: int(env, 'FAAS_EXEC_OUTPUT_MAX', 1024 * 1024, 0, EXEC_OUTPUT_HARD_MAX),
    instanceConcurrency: int(env, 'FAAS_INSTANCE_CONCURRENCY', 16, 1, 100_000),
    credentialConcurrency: int(env, 'FAAS_CREDENTIAL_CONCURRENCY', 64, 1, 100_000),
    forwardConcurrency: int(env, 'FAAS_FORWARD_CONCURRENCY', 256, 1, 100_000),
    forwardCredentialConcurrency: int(env, 'FAAS_FORWARD_CREDENTIAL_CONCURRENCY', 1024, 1, 100_000),
    execBodyMax: int(env, 'FAAS_EXEC_BODY_MAX', 16 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    jsonBodyMax: int(env, 'FAAS_JSON_BODY_MAX', 1024 * 1024, 1024, 64 * 1024 * 1024),
    jsonDepthMax: int(env, 'FAAS_JSON_DEPTH_MAX', 32, 4, 1000),
    imageMaxBytes: int(env, 'FAAS_IMAGE_MAX_BYTES', 2 * 1024 ** 3, 1, Number.MAX_SAFE_INTEGER),
    egressResolveSeconds: int(env, 'FAAS_EGRESS_RESOLVE_SECONDS', 60, 5, 86_400),
    egressHostsFile: env.FAAS_EGRESS_HOSTS_FILE || null,
    serviceHost: serviceHost(env.FAAS_SERVICE_HOST ?? 'localhost'),
    serviceScheme: env.FAAS_SERVICE_SCHEME === 'https' ? 'https' : 'http',
    // 0: no port in URLs (a front proxy on 80/443); default: the engine's own port.
    serviceUrlPort: ((n) => (n === 0 ? null : n))(int(env, 'FAAS_SERVICE_URL_PORT', Number(env.FAAS_PORT ?? 7440), 0, 65535)),
    serviceTokenSeconds: int(env, 'FAAS_SERVICE_TOKEN_SECONDS', 3600, 10, 86_400),
    webSessionSeconds: int(env, 'FAAS_WEB_SESSION_SECONDS', 12 * 3600, 1, 7 * 86_400),
    blobGcGraceSeconds: int(env, 'FAAS_BLOB_GC_GRACE_SECONDS', 3600, 0, 30 * 86_400),
    cache: cacheConfigFromEnv(env),
  };
}

/** A DNS name (labels of letters, digits, inner `-`); anything else stops the engine. */
function serviceHost(raw: string): string {
  const host = raw.toLowerCase().replace(/\.$/, '');
  if (!/^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/.test(host)) {
    throw new Error(`FAAS_SERVICE_HOST=${raw}: expected a DNS name such as localhost or svc.example.com`);
  }
  return host;
}

/** An integer variable within [min, max]; anything else stops the engine with a clear message. */
function int(env: NodeJS.ProcessEnv, name: string, dflt: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected an integer from ${min} to ${max}`);
  return n;
}
