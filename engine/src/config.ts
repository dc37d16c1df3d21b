// Engine configuration from the environment, with defaults that match scripts/install.sh.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export interface Config {
  stateDir: string;
  host: string;
  port: number;
  runsc: string;
  agentBinary: string;
  defaultImageDir: string;
  subnet: string;
  netTag: string;
  netnsPool: number;
  warmPool: number;
  /** A template's warm pool grows to the widest recent branch, up to this many sandboxes. */
  warmPoolMax: number;
  maxLiveInstances: number;
  readyTimeoutMs: number;
  specPath: string;
  /** autoStop: seconds without exec/files/processes/terminal activity after which an instance stops. */
  idleSeconds: number;
  /** Cap on an image import's upload and on its unpacked tar stream, in bytes. */
  imageMaxBytes: number;
}

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const stateDir = env.FAAS_STATE_DIR ?? '/var/lib/faas';
  const cache = env.FAAS_CACHE_DIR ?? '/var/cache/faas';
  return {
    stateDir,
    host: env.FAAS_HOST ?? '127.0.0.1',
    port: Number(env.FAAS_PORT ?? 7440),
    runsc: env.FAAS_RUNSC ?? `${cache}/bin/runsc`,
    agentBinary: env.FAAS_AGENT_BIN ?? `${repoRoot}agent/bin/faas-agent`,
    defaultImageDir: env.FAAS_DEFAULT_IMAGE ?? `${cache}/images/default`,
    subnet: env.FAAS_SUBNET ?? '10.200.0.0/16',
    netTag: env.FAAS_NET_TAG ?? createHash('sha256').update(stateDir).digest('hex').replace(/[^a-z0-9]/g, '').slice(0, 4),
    netnsPool: Number(env.FAAS_NETNS_POOL ?? 4),
    warmPool: Number(env.FAAS_WARM_POOL ?? 8),
    warmPoolMax: Number(env.FAAS_WARM_POOL_MAX ?? 32),
    maxLiveInstances: Number(env.FAAS_MAX_INSTANCES ?? 64),
    readyTimeoutMs: Number(env.FAAS_READY_TIMEOUT_MS ?? 20_000),
    specPath: env.FAAS_SPEC ?? `${repoRoot}spec/openapi.yaml`,
    idleSeconds: Number(env.FAAS_IDLE_SECONDS ?? 300),
    imageMaxBytes: positiveInt('FAAS_IMAGE_MAX_BYTES', env.FAAS_IMAGE_MAX_BYTES, 2 * 1024 ** 3),
  };
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number of bytes, got ${JSON.stringify(value)}`);
  return n;
}
