// Composition root: builds the stores, drivers and services by hand and wires them together.
// Tests build the same graph with another state directory.
import { LoginLimiter, WebSessions } from './services/web-sessions.js';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { EventBus } from './core/events.js';
import { buildApp } from './http/app.js';
import { loadContract, type Contract } from './http/spec.js';
import { NetnsManager } from './network/netns.js';
import { AGENT_PORT, AgentClient } from './runtime/agent-client.js';
import { ChangeStore } from './store/changes.js';
import { BlobRefRepo } from './store/sqlite/blob-refs.js';
import { BlobGc } from './services/blob-gc.js';
import { DiffService, fetchManifest } from './services/diff.js';
import { MergeService } from './services/merge.js';
import { BranchMergeService } from './services/branch-merge.js';
import { Cgroups } from './runtime/cgroups.js';
import { RunscRuntime } from './runtime/runsc/runsc.js';
import { Spawner, waitForLeftoverHelpers } from './runtime/spawner.js';
import { ExecService } from './services/exec.js';
import { ImageService } from './services/images.js';
import { InstanceService } from './services/instances.js';
import type { Logger } from './services/logger.js';
import { Reconciler } from './services/reconciler.js';
import { Sandboxes } from './services/sandboxes.js';
import { SnapshotService } from './services/snapshots.js';
import { StateService } from './services/state.js';
import { LineageRepo } from './store/sqlite/lineage.js';
import { StepService } from './services/steps.js';
import { StepCacheRepo } from './store/sqlite/step-cache.js';
import { WarmPool } from './services/warm-pool.js';
import { HotStandbys } from './services/rollback-hot.js';
import { RollbackStandbys } from './services/rollback-standby.js';
import { swapSandbox } from './services/sandbox-swap.js';
import { FileService } from './services/files.js';
import { Lifetimes } from './services/lifetimes.js';
import { Tunnels } from './services/tunnels.js';
import { Admission, HostCapacity } from './services/limits.js';
import { EngineMetrics } from './services/metrics.js';
import { ProcessService } from './services/processes.js';
import { eventStreams } from './http/routes/events.js';
import { terminals } from './http/routes/terminal.js';
import { NetworkPolicyService } from './services/network-policy.js';
import { ClonePool } from './services/clone-pool.js';
import { SnapshotFiles } from './store/snapshot-files.js';
import { ImageStore } from './store/images/image-store.js';
import { CachePolicyRepo } from './store/sqlite/cache-policy.js';
import { lockStateDir } from './store/state-lock.js';
import { openDb, type Db } from './store/sqlite/db.js';
import { SqliteEventLog } from './store/sqlite/event-log.js';
import { IdempotencyRepo, ImageRepo, InstanceRepo, SnapshotRepo } from './store/sqlite/repos.js';
import { KeyRepo } from './store/sqlite/keys.js';
import { KeyService } from './services/keys.js';
import { BranchService } from './services/branches.js';
import { BranchRepo } from './store/sqlite/branches.js';
import { SshKeyRepo } from './store/sqlite/ssh-keys.js';
import { SshKeyService } from './services/ssh-keys.js';
import { SshGateway } from './ssh/gateway.js';
import { SshGuard } from './ssh/guard.js';
import { loadOrCreateHostKey } from './ssh/host-key.js';
import { HttpServices } from './services/http-services.js';
import { Wake } from './services/wake.js';
import { HttpServiceRepo } from './store/sqlite/http-services.js';
import { ServiceProxy } from './http/service-proxy.js';

export const VERSION = '0.1.0';

/** `{tag, subnet}` of the last engine that ran on a state directory. */
export const NETWORK_FILE = 'network.json';

export interface Services {
  images: ImageService;
  snapshots: SnapshotService;
  instances: InstanceService;
  state: StateService;
  exec: ExecService;
  events: EventBus;
  idempotency: IdempotencyRepo;
  clones: ClonePool;
  /** Sandboxes made ahead for rollbacks (services/rollback-standby.ts). */
  standbys: RollbackStandbys;
  hot: HotStandbys;
  files: FileService;
  processes: ProcessService;
  lifetimes: Lifetimes;
  metrics: EngineMetrics;
  keys: KeyService;
  diffs: DiffService;
  merges: MergeService;
  branchMerges: BranchMergeService;
  branches: BranchService;
  steps: StepService;
  sshKeys: SshKeyService;
  /** The SSH gateway's address and host key (GET /v1/ssh/host). */
  sshHost: () => SshHostInfo;
  httpServices: HttpServices;
  /** ensureAwake(instanceId, 'http' | 'ssh'): resumes a paused instance that allows it. */
  wake: Wake;
  tunnels: Tunnels;
  /** Browser sessions of /login and the dashboard, and the failed-login limiter. */
  webSessions: WebSessions;
  loginLimiter: LoginLimiter;
  /** Where the engine keeps its first admin key (said on the login page). */
  credentialsPath: string;
}

export interface SshHostInfo {
  enabled: boolean;
  host: string;
  port: number;
  hostKey: { algorithm: string; publicKey: string; fingerprint: string };
}

export interface Engine {
  config: Config;
  app: FastifyInstance;
  services: Services;
  /** The bootstrap admin key (credentials.json). */
  apiKey: string;
  contract: Contract;
  reconcileReport: Awaited<ReturnType<Reconciler['reconcile']>>;
  /** Collection of kept blobs (services/blob-gc.ts): runs in quiet moments; tests run it at will. */
  blobGc: BlobGc;
  /**
   * Stops serving. With stopInstances, every live instance is stopped first. With clean (implies
   * stopInstances), what the engine put on the host outside its state directory goes too: any
   * sandbox still listed, its network namespaces, its firewall chains, runsc's null-netns mount.
   */
  shutdown(opts?: { stopInstances?: boolean; clean?: boolean }): Promise<void>;
}

/** With pidFile, engine.pid is written as soon as the lock is held (for `faas engine stop` and
 *  people; it is information only: the lock, not the pid, decides whether an engine runs). */
export async function createEngine(config: Config, log: Logger = silentLogger, opts: { pidFile?: boolean } = {}): Promise<Engine> {
  // Before anything reads or changes the state: the reconciler below destroys every sandbox
  // without a record, so a second engine on the same directory would kill the first one's work.
  mkdirSync(config.stateDir, { recursive: true });
  const lock = lockStateDir(config.stateDir);
  try {
    if (opts.pidFile) writeFileSync(join(config.stateDir, 'engine.pid'), `${process.pid}\n`);
    return await assemble(config, log, lock.release);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function assemble(config: Config, log: Logger, releaseLock: () => void): Promise<Engine> {
  const dirs = {
    runsc: join(config.stateDir, 'runsc'),
    filestore: join(config.stateDir, 'filestore'),
    logs: join(config.stateDir, 'logs'),
    bundles: join(config.stateDir, 'bundles'),
    snapshots: join(config.stateDir, 'snapshots'),
    images: join(config.stateDir, 'images'),
    agents: join(config.stateDir, 'agents'),
    uploads: join(config.stateDir, 'uploads'),
    store: join(config.stateDir, 'store'),
  };
  makePrivateDirs(config.stateDir, Object.values(dirs));
  if (!existsSync(config.runsc)) throw new Error(`runsc not found at ${config.runsc}: run scripts/install.sh`);
  const agentDir = installAgent(config.agentBinary, dirs.agents);
  // A crashed engine's spawner helper may still be finishing a runsc restore or an `ip netns add`;
  // reconciling before it is done would miss what it makes (spawner.ts).
  const unfinished = await waitForLeftoverHelpers(dirs.runsc, 60_000);
  if (unfinished.length) log.warn({ pids: unfinished }, 'a previous engine\'s helper is still running programs after 60 s; reconciling anyway');

  const db: Db = openDb(join(config.stateDir, 'faas.db'));
  const apiKey = loadOrCreateKey(config);
  const contract = loadContract(config.specPath);
  const repos = { images: new ImageRepo(db), snapshots: new SnapshotRepo(db), instances: new InstanceRepo(db), idempotency: new IdempotencyRepo(db) };
  const events = new EventBus(new SqliteEventLog(db));
  // Events carry their resource's owner so each key's stream shows only its own records.
  events.ownerOf = (id) => (repos.instances.get(id) ?? repos.snapshots.get(id) ?? repos.images.get(id))?.owner ?? null;
  // The key in credentials.json is the first admin key (an existing install's key is migrated).
  const keyRepo = new KeyRepo(db);
  const keys = new KeyService(keyRepo, join(config.stateDir, 'token-secret'));
  const sshKeys = new SshKeyService(new SshKeyRepo(db), keyRepo);
  const bootstrap = keys.bootstrap(apiKey);
  if (bootstrap.revokedAt) log.warn({ keyId: bootstrap.id }, 'the key in credentials.json has been revoked; use another admin key');
  const spawner = new Spawner(dirs.runsc);
  const runtime = new RunscRuntime({ binary: config.runsc, root: dirs.runsc, filestoreDir: dirs.filestore, logDir: dirs.logs, spawner, lazyRestore: config.lazyRestore });
  const network = new NetnsManager({ tag: config.netTag, subnet: config.subnet, poolSize: config.netnsPool, runner: spawner, controlPort: AGENT_PORT });
  const agents = new AgentClient();
  const cgroups = new Cgroups(`faas-${config.netTag}`);
  // The deduplicated image store (docs/storage.md): reference counts rebuilt from its manifests and
  // chunks no manifest names removed, before anything reads or drops an image.
  const imageStore = new ImageStore(dirs.store);
  const storeReport = imageStore.reconcile();
  if (storeReport.removedChunks) log.info({ removed: storeReport.removedChunks }, 'image store: removed chunks no image names (an interrupted store or delete)');
  const files = new SnapshotFiles(dirs.snapshots, imageStore, config.cache);
  const cachePolicies = new CachePolicyRepo(db);
  files.policyOf = (id) => cachePolicies.get(id);
  const warm = new WarmPool({ size: config.warmPool, maxSize: Math.max(config.warmPool, config.warmPoolMax), maxTemplates: 2 }, { runtime, network, cgroups, bundlesDir: dirs.bundles });
  const sandboxes = new Sandboxes({ runtime, network, agents, cgroups, bundlesDir: dirs.bundles, readyTimeoutMs: config.readyTimeoutMs, warm });
  const images = new ImageService(repos.images, events, dirs.images, repos.snapshots, { maxBytes: config.imageMaxBytes });
  const capacity = new HostCapacity(dirs.filestore, config.maxMemoryMb);
  const snapshots = new SnapshotService(repos.snapshots, repos.instances, files, images, sandboxes, runtime, events, () => agentDir, capacity);
  const instances = new InstanceService(repos.instances, snapshots, sandboxes, runtime, agents, cgroups, events, {
    admission: new Admission({ maxLiveInstances: config.maxLiveInstances, capacity }, () => repos.instances.live()),
    capacity,
  });
  const exec = new ExecService(instances, agents, events, config.execOutputMax);
  const clones = new ClonePool({ repo: repos.snapshots, instances: repos.instances, snapshots, sandboxes, runtime, warm, events, log });
  instances.clones = clones;
  instances.defaultTtl = config.defaultInstanceTtl;
  const lineage = new LineageRepo(db);
  snapshots.lineage = lineage;
  snapshots.cachePolicies = cachePolicies;
  files.inUse = (id) => snapshots.held(id);
  const state = new StateService(instances, snapshots, lineage);
  // Rollback and restart of a live instance swap in a sandbox restored ahead of the call's path
  // (services/rollback-standby.ts, sandbox-swap.ts); with FAAS_ROLLBACK_STANDBYS=0 they restore cold.
  const standbys = new RollbackStandbys({ max: config.rollbackStandbys, runtime, network, cgroups, instances: repos.instances, bundlesDir: dirs.bundles, warm, events, log });
  // The head of each recently checkpointed instance is also held restored and paused (a hot
  // standby, services/rollback-hot.ts) within FAAS_ROLLBACK_HOT_MB; a rollback to it only resumes.
  const hot = new HotStandbys({ budgetBytes: config.rollbackHotMb * 1024 * 1024, standbys, runtime, snapshots, lineage, instances: repos.instances, cgroups, warm, events, log });
  if (standbys.enabled) {
    const swapDeps = { repo: repos.instances, snapshots, sandboxes, runtime, agents, cgroups, events, standbys, hot: hot.enabled ? hot : null, swapNetwork: network.swapIn.bind(network), bundlesDir: dirs.bundles, readyTimeoutMs: config.readyTimeoutMs };
    instances.swap = (inst, snap, opts) => swapSandbox(swapDeps, inst, snap, opts);
    instances.onCheckpoint = (id, template) => {
      standbys.want(id, template);
      hot.want(id);
    };
  }
  // An interrupted start, restart or rollback is finished from the instance's head.
  instances.sourceOf = (inst) => lineage.headOf(inst.id);
  const networkPolicy = new NetworkPolicyService({
    network, instances: repos.instances, log, resolveSeconds: config.egressResolveSeconds, hostsFile: config.egressHostsFile,
  });
  instances.networkPolicy = networkPolicy;
  clones.networkPolicy = networkPolicy;
  snapshots.stopInstance = (id) => instances.stop(id);
  // Checkpoints of running instances are checksummed in the next quiet moment.
  snapshots.whenQuiet = () => warm.nudge();
  snapshots.onSealError = (id, err) => log.warn({ snapshotId: id, err: err.message }, 'could not checksum a snapshot image');
  warm.on('idle', () => void snapshots.sealPending());
  const lifetimes = new Lifetimes({ instances: repos.instances, snapshots: repos.snapshots, instanceService: instances, snapshotService: snapshots, events, idleMs: config.idleSeconds * 1000, log });
  const metrics = new EngineMetrics(repos, () => ({ eventStreams: eventStreams.open, terminals: terminals.open }), capacity, () => warm.stats());
  const fileService = new FileService(instances, agents);
  const steps = new StepService({
    snapshots, instances, files: fileService, agents, cache: new StepCacheRepo(db),
    outputMax: config.execOutputMax, uploadDir: dirs.uploads, uploadMax: config.imageMaxBytes,
  });
  // Diff and merge (store/changes.ts): each checkpoint keeps the agent's change manifest.
  const changes = new ChangeStore(config.stateDir);
  // Blobs nothing names any more go in quiet moments (services/blob-gc.ts).
  const blobRefs = new BlobRefRepo(db);
  const blobGc = new BlobGc(changes, blobRefs, { graceMs: config.blobGcGraceSeconds * 1000 }, log, (id) => files.ensure(id));
  snapshots.blobRefs = blobRefs;
  snapshots.onDeleted = () => warm.nudge();
  warm.on('idle', () => void blobGc.run().catch((err) => log.warn({ err: (err as Error).message }, 'blob collection failed')));
  snapshots.captureChanges = async (ip) => {
    try {
      const answer = await fetchManifest(agents, ip);
      if (!Array.isArray(answer?.entries)) throw new Error('the agent answered no entries');
      return (dir, snapshotId, instanceId) => {
        try {
          changes.save(dir, answer, (hashes) => blobRefs.record(snapshotId, instanceId, hashes));
        } catch (err) {
          // A malformed manifest costs the snapshot its diffs, never the checkpoint.
          log.warn({ ip, err: (err as Error).message }, 'could not keep a change manifest; this snapshot cannot be diffed');
        }
      };
    } catch (err) {
      // An agent from before change tracking (an old snapshot): the snapshot keeps no manifest
      // and a diff of it says so (diff_unavailable).
      log.warn({ ip, err: (err as Error).message }, 'the agent keeps no change manifest; this snapshot cannot be diffed');
      return null;
    }
  };
  const diffs = new DiffService(snapshots, images, changes, files);
  const merges = new MergeService(diffs, snapshots, instances, agents, repos.snapshots);
  const branchRepo = new BranchRepo(db);
  const branches = new BranchService(branchRepo, snapshots, instances, events);
  const branchMerges = new BranchMergeService(branches, branchRepo, diffs, merges);
  snapshots.branches = branches;
  const serviceRepo = new HttpServiceRepo(db);
  const wake = new Wake(serviceRepo, instances);
  const httpServices = new HttpServices(serviceRepo, instances, keys, events, {
    baseHost: config.serviceHost, scheme: config.serviceScheme, urlPort: config.serviceUrlPort, tokenSeconds: config.serviceTokenSeconds,
  });
  instances.onCreated = (inst, input) => {
    // A branch child wakes like its parent and exposes what it exposed, under its own host names.
    if (input.parentInstanceId) {
      wake.set(inst.id, wake.get(input.parentInstanceId));
      httpServices.inherit(input.parentInstanceId, inst.id);
    } else if (input.wakeOn) {
      wake.set(inst.id, input.wakeOn);
    }
  };
  const hostKey = loadOrCreateHostKey(config.stateDir);
  // A paused instance with wakeOn.ssh is resumed by the connection's first channel.
  const gateway = new SshGateway({ instances, keys, sshKeys, agents, lifetimes, log, hostKey, guard: new SshGuard(config.sshGuard), wake: (id) => wake.ensureAwake(id, 'ssh') });
  const services: Services = {
    diffs, merges, branchMerges,
    images, snapshots, instances, state, exec, events, idempotency: repos.idempotency, clones, standbys, hot,
    files: fileService, processes: new ProcessService(instances, agents), lifetimes, metrics, keys, branches, steps,
    sshKeys,
    sshHost: () => ({
      enabled: config.sshPort !== null,
      host: config.sshHosts[0] ?? '127.0.0.1',
      port: config.sshPort === null ? 0 : gateway.port,
      hostKey: { algorithm: hostKey.algorithm, publicKey: hostKey.publicKey, fingerprint: hostKey.fingerprint },
    }),
    httpServices, wake,
    tunnels: new Tunnels(),
    webSessions: new WebSessions(config.webSessionSeconds),
    loginLimiter: new LoginLimiter(),
    credentialsPath: join(config.stateDir, 'credentials.json'),
  };

  if (existsSync(config.defaultImageDir)) await images.registerDefault(realpathSync(config.defaultImageDir));
  const reconciler = new Reconciler({ runtime, network, cgroups, snapshots: repos.snapshots, instances: repos.instances, files, service: instances, agents, bundlesDir: dirs.bundles, log });
  await network.init();
  // `faas engine stop --clean` removes the chains of the tag the engine actually used.
  writeFileSync(join(config.stateDir, NETWORK_FILE), JSON.stringify({ tag: config.netTag, subnet: config.subnet }) + '\n');
  // Images a crash left unchecksummed are sealed before anything restores them (the reconciler
  // finishes interrupted starts from them).
  snapshots.queueSeal(repos.snapshots.unsealed());
  await snapshots.sealPending();
  // Images not in the store yet (made before it, or a crash came first) are stored in quiet moments.
  snapshots.queueSeal(repos.snapshots.all().filter((s) => s.state === 'ready' && !imageStore.has(s.id)).map((s) => s.id));
  const evictTimer = setInterval(() => files.evict(), 60_000).unref();
  const reconcileReport = await reconciler.reconcile();
  // After the reconciler rolled back interrupted snapshots (their references went with their rows):
  // what a crash left in blobs/ is swept now, off the start (the grace period still applies).
  await blobGc.index();
  void blobGc.run().catch((err) => log.warn({ err: (err as Error).message }, 'blob collection failed'));
  // Adopted instances get their egress rules and bandwidth re-applied (host names re-resolved).
  await networkPolicy.start();
  network.startPool();
  clones.start();
  reconciler.watch();
  lifetimes.start(); // after reconcile: deadlines that passed while the engine was down act now
  if (config.sshPort !== null) await gateway.listen(config.sshHosts, config.sshPort);

  const proxy = new ServiceProxy({ services: httpServices, wake, keys, instances, lifetimes, events, log, spliceHelper: join(agentDir, 'faas-agent') });
  const app = buildApp({
    services, contract, version: VERSION, log, proxy,
    limits: {
      instanceConcurrency: config.instanceConcurrency, credentialConcurrency: config.credentialConcurrency,
      forwardConcurrency: config.forwardConcurrency, forwardCredentialConcurrency: config.forwardCredentialConcurrency,
      execBodyMax: config.execBodyMax, jsonBodyMax: config.jsonBodyMax, jsonDepthMax: config.jsonDepthMax,
    },
  });
  await app.ready();

  return {
    config, app, services, apiKey, contract, reconcileReport, blobGc,
    async shutdown(opts = {}) {
      reconciler.stop();
      lifetimes.stop();
      await networkPolicy.stop();
      clearInterval(evictTimer);
      await gateway.close();
      await app.close();
      proxy.close();
      await snapshots.sealPending();
      if (opts.stopInstances || opts.clean) {
        await Promise.all(repos.instances.live().map((i) => instances.stop(i.id).catch(() => undefined)));
      }
      await clones.close();
      await hot.close();
      await standbys.close();
      await warm.close();
      // runsc lock files that a list or create overlapping a delete re-created (runsc.ts
      // pruneLeftovers): nothing makes sandboxes any more, so every one without a state file goes.
      runtime.pruneLeftovers(new Set(repos.instances.live().map((i) => repos.instances.sandboxOf(i.id))));
      await network.close();
      if (opts.clean) {
        // Firewall rules go last: they must outlive every sandbox they protect.
        for (const s of await runtime.list()) await runtime.destroy(s.id);
        await network.uninstall();
        await runtime.uninstall();
      }
      await agents.close();
      spawner.close();
      cgroups.removeParentIfEmpty();
      db.close();
      releaseLock();
    },
  };
}

/**
 * The state directory holds the API key, checkpoint images (sandbox memory) and imported images
 * (setuid files of an archive): only root may enter it. Directories an older engine made with
 * 0755 are tightened too. See docs/security/images.md.
 */
function makePrivateDirs(stateDir: string, subdirs: string[]): void {
  for (const d of [stateDir, ...subdirs]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chmodSync(d, 0o700);
  }
}

/** Copies faas-agent to a content-addressed directory: snapshots mount it, so it never changes. */
function installAgent(binary: string, agentsDir: string): string {
  if (!existsSync(binary)) throw new Error(`faas-agent not found at ${binary}: run scripts/install.sh`);
  const digest = createHash('sha256').update(readFileSync(binary)).digest('hex').slice(0, 16);
  const dir = join(agentsDir, digest);
  if (!existsSync(join(dir, 'faas-agent'))) {
    mkdirSync(dir, { recursive: true });
    const tmp = join(agentsDir, `.tmp-${digest}-${process.pid}`);
    copyFileSync(binary, tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, join(dir, 'faas-agent'));
  }
  return dir;
}

/** The API key lives with the endpoint in credentials.json (0600), where SDKs and the CLI look. */
function loadOrCreateKey(config: Config): string {
  const path = join(config.stateDir, 'credentials.json');
  let key: string | undefined;
  try {
    key = JSON.parse(readFileSync(path, 'utf8')).apiKey;
  } catch {
    /* first start */
  }
  key ??= `faas_${randomBytes(24).toString('base64url')}`;
  writeFileSync(path, JSON.stringify({ endpoint: `http://${config.host}:${config.port}`, apiKey: key }, null, 2) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return key;
}

const silentLogger: Logger = { info() {}, warn() {}, error() {} };
