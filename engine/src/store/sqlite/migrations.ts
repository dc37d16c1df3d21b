// Ordered, append-only. Never edit a migration that has shipped; add the next one.
export const MIGRATIONS: string[] = [
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
];
