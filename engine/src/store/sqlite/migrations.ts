// Ordered, append-only. Never edit a migration that has shipped; add the next one.
// A null entry is a number reserved by work merged in parallel: skipped and not recorded, so the
// migration that later takes its place still runs.
export const MIGRATIONS: (string | null)[] = [
  // 1: the domain records
  `CREATE TABLE images (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL, rootfs TEXT NOT NULL,
     size INTEGER NOT NULL, digest TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}',
     created_at TEXT NOT NULL);
   CREATE TABLE snapshots (
     id TEXT PRIMARY KEY, state TEXT NOT NULL, parent_id TEXT, image_id TEXT NOT NULL REFERENCES images(id),
     instance_id TEXT, name TEXT, digest TEXT NOT NULL, checksum TEXT NOT NULL DEFAULT '',
     size INTEGER NOT NULL DEFAULT 0, resources TEXT NOT NULL, environment TEXT NOT NULL,
     metadata TEXT NOT NULL DEFAULT '{}', spec TEXT NOT NULL, image_dir TEXT NOT NULL,
     created_at TEXT NOT NULL, expires_at TEXT);
   CREATE INDEX snapshots_parent ON snapshots(parent_id);
   CREATE INDEX snapshots_digest ON snapshots(digest);
   CREATE TABLE instances (
     id TEXT PRIMARY KEY, snapshot_id TEXT NOT NULL, parent_instance_id TEXT, state TEXT NOT NULL,
     error TEXT, resources TEXT NOT NULL, ip TEXT, netns TEXT, metadata TEXT NOT NULL DEFAULT '{}',
     ttl INTEGER, ttl_action TEXT NOT NULL DEFAULT 'stop', auto_stop INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL, ready_at TEXT, stopped_at TEXT);
   CREATE INDEX instances_snapshot ON instances(snapshot_id);
   CREATE INDEX instances_state ON instances(state);`,
  // 2: idempotent replays and the event log
  `CREATE TABLE idempotency (
     key TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, body_hash TEXT NOT NULL,
     status INTEGER NOT NULL, response TEXT NOT NULL, created_at TEXT NOT NULL,
     PRIMARY KEY (key, method, path));
   CREATE TABLE events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL,
     resource_id TEXT NOT NULL, data TEXT NOT NULL, created_at TEXT NOT NULL);`,
  // 3: warm pools of paused clones per snapshot (AutoScaling minInstances)
  `ALTER TABLE snapshots ADD COLUMN pool_min INTEGER NOT NULL DEFAULT 0;`,
  // 4: lifetimes: an instance's ttl fires once (recorded so a restart or a resume does not re-fire
  // it); snapshot expiry is looked up by deadline
  `ALTER TABLE instances ADD COLUMN ttl_fired_at TEXT;
   CREATE INDEX snapshots_expires ON snapshots(expires_at) WHERE expires_at IS NOT NULL;`,
  // 5: AutoScaling maxInstances: a cap on the live instances of a snapshot (null: none)
  `ALTER TABLE snapshots ADD COLUMN pool_max INTEGER;`,
  // 6: faas-agent keys (spec/agent-protocol.md "Authentication"): the key each live instance's agent
  // holds, and the key the agent inside each snapshot image holds (what a restore must present
  // before it re-keys). Never part of a record the API returns.
  `ALTER TABLE instances ADD COLUMN agent_key TEXT;
   ALTER TABLE snapshots ADD COLUMN agent_key TEXT;`,
  // 7: API keys (only the SHA-256 of each secret is kept) and the key that owns each record.
  // Records from before keys existed keep owner NULL until the engine adopts them for the
  // bootstrap key (KeyService.bootstrap); a NULL-owner image is shared (the default image).
  `CREATE TABLE api_keys (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE,
     admin INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, revoked_at TEXT);
   ALTER TABLE images ADD COLUMN owner TEXT;
   ALTER TABLE snapshots ADD COLUMN owner TEXT;
   ALTER TABLE instances ADD COLUMN owner TEXT;
   ALTER TABLE events ADD COLUMN owner TEXT;
   CREATE INDEX snapshots_owner ON snapshots(owner);
   CREATE INDEX instances_owner ON instances(owner);`,
  // 8: HTTP services exposed through the engine's proxy (services/http-services.ts), and what wakes
  // a paused instance (wakeOn). Own tables, so the instance row and its mapping stay as they are;
  // rows of a deleted instance go with it (HttpServices listens for instance.deleted).
  `CREATE TABLE http_services (
     instance_id TEXT NOT NULL, name TEXT NOT NULL, port INTEGER NOT NULL, auth TEXT NOT NULL,
     created_at TEXT NOT NULL, PRIMARY KEY (instance_id, name));
   CREATE TABLE instance_wake (
     instance_id TEXT PRIMARY KEY, http INTEGER NOT NULL DEFAULT 0, ssh INTEGER NOT NULL DEFAULT 0);`,
  // 9: SSH public keys for the gateway (services/ssh-keys.ts), each owned by the API key that
  // registered it; the gateway looks keys up by fingerprint. One public key may be registered by
  // several API keys, once each.
  `CREATE TABLE ssh_keys (
     id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, algorithm TEXT NOT NULL,
     public_key TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at TEXT NOT NULL,
     UNIQUE (owner, fingerprint));
   CREATE INDEX ssh_keys_fingerprint ON ssh_keys(fingerprint);`,
  // 10: unused (numbers were handed out to work done in parallel; this one was not needed)
  null,
  // 11: branches (services/branches.ts): named, owned pointers to snapshots. A name is unique per
  // owner (IFNULL: SQLite's UNIQUE lets NULLs repeat); the head hook looks branches up by instance.
  // branch_log is each branch's reflog (every head it had, in order): a head deleted with force
  // falls back to the newest one still there (a checkpoint's parent is the instance's snapshot,
  // not the previous head, so the snapshot tree alone cannot say).
  `CREATE TABLE branches (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, parent_id TEXT, divergence_point TEXT NOT NULL,
     head TEXT NOT NULL, instance_id TEXT, metadata TEXT NOT NULL DEFAULT '{}', owner TEXT,
     created_at TEXT NOT NULL);
   CREATE UNIQUE INDEX branches_owner_name ON branches(IFNULL(owner, ''), name);
   CREATE INDEX branches_parent ON branches(parent_id);
   CREATE INDEX branches_head ON branches(head);
   CREATE INDEX branches_instance ON branches(instance_id);
   CREATE TABLE branch_log (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, branch_id TEXT NOT NULL, snapshot_id TEXT NOT NULL,
     created_at TEXT NOT NULL);
   CREATE INDEX branch_log_branch ON branch_log(branch_id, seq);`,
  // 12: unused (likewise)
  null,
  // 13: instance history (services/state.ts). `previous_id`: the checkpoint a snapshot's state
  // descends from (for a checkpoint of an instance: that instance's head when it was taken; for a
  // root: null). `head_id`: the checkpoint an instance's current state descends from (null: its
  // snapshot_id). Existing rows: a checkpoint follows the previous ready checkpoint of the same
  // instance (else its parent); an instance's head is its latest checkpoint.
  `ALTER TABLE snapshots ADD COLUMN previous_id TEXT;
   ALTER TABLE instances ADD COLUMN head_id TEXT;
   UPDATE snapshots SET previous_id = COALESCE(
     (SELECT p.id FROM snapshots p WHERE snapshots.instance_id IS NOT NULL AND p.instance_id = snapshots.instance_id
        AND p.state = 'ready' AND p.rowid < snapshots.rowid ORDER BY p.rowid DESC LIMIT 1),
     parent_id);
   UPDATE instances SET head_id =
     (SELECT s.id FROM snapshots s WHERE s.instance_id = instances.id AND s.state = 'ready' ORDER BY s.rowid DESC LIMIT 1);
   CREATE INDEX snapshots_previous ON snapshots(previous_id);`,
];

// Numbered slots: helpers working in parallel were each given one number, so later migrations are
// placed at their version (versions are applied by number, in order, each once; an empty slot is
// skipped until it is filled).
// 14: the step cache (docs/step-cache.md): cache lookups by (owner, parent, digest) among ready
// snapshots, root lookups among unnamed roots, and the recorded result of the exec step that made
// each step snapshot (replayed on a hit); it goes with its snapshot.
MIGRATIONS[14 - 1] = `CREATE INDEX snapshots_step_cache ON snapshots(owner, parent_id, digest) WHERE state = 'ready';
   CREATE TABLE step_results (
     snapshot_id TEXT PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
     exit_code INTEGER NOT NULL, stdout TEXT NOT NULL, stderr TEXT NOT NULL,
     duration INTEGER NOT NULL, truncated INTEGER NOT NULL);`;
// 15: the cache policy a snapshot was made with (docs/storage.md): its CacheConfig and
// OptimizationHints as given, JSON (only the fields given; the engine's config fills the rest).
// Rows exist only for snapshots made with one; they go with their snapshot.
MIGRATIONS[15 - 1] = `CREATE TABLE snapshot_cache_policy (
     snapshot_id TEXT PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
     policy TEXT NOT NULL);`;
// 16, 17: numbers reserved by work merged in parallel, unused.
MIGRATIONS[16 - 1] = null;
MIGRATIONS[17 - 1] = null;
// 18: the runsc sandbox that backs a live instance (services/rollback-standby.ts). NULL: the
// instance's own id (every start and cold restore); a rollback swaps in a sandbox created ahead
// under an id of its own, so the instance keeps its id, address and namespace while the sandbox
// behind it changes.
MIGRATIONS[18 - 1] = `ALTER TABLE instances ADD COLUMN sandbox_id TEXT;`;
// 19: which kept blobs (blobs/<sha256>, store/changes.ts) each snapshot's change manifest names,
// and which each live instance's agent has already sent (its hash cache will not send them again
// at the next checkpoint). Written before the blobs themselves, so a blob on disk is referenced
// from the moment it exists; rows go with their snapshot or instance (services/blob-gc.ts).
// `blobs_indexed`: the snapshot's manifest is recorded here (0: made before this migration, to be
// read once at start-up before any blob is collected).
MIGRATIONS[19 - 1] = `CREATE TABLE snapshot_blobs (
     snapshot_id TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
     sha256 TEXT NOT NULL,
     PRIMARY KEY (snapshot_id, sha256)) WITHOUT ROWID;
   CREATE INDEX snapshot_blobs_sha ON snapshot_blobs(sha256);
   CREATE TABLE instance_blobs (
     instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
     sha256 TEXT NOT NULL,
     PRIMARY KEY (instance_id, sha256)) WITHOUT ROWID;
   CREATE INDEX instance_blobs_sha ON instance_blobs(sha256);
   ALTER TABLE snapshots ADD COLUMN blobs_indexed INTEGER NOT NULL DEFAULT 0;`;
