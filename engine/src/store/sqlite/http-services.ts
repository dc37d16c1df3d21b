// Rows of the HTTP services instances expose and of what wakes each instance (migration 8).
// No rules here: services/http-services.ts and services/wake.ts decide.
import { statement, type Db } from './db.js';

export type ServiceAuth = 'api-key' | 'token' | 'none';

export interface HttpServiceRecord {
  instanceId: string;
  name: string;
  port: number;
  auth: ServiceAuth;
  createdAt: string;
}

export interface WakeOn {
  http: boolean;
  ssh: boolean;
}

type Row = { instance_id: string; name: string; port: number; auth: string; created_at: string };
const toRecord = (r: Row): HttpServiceRecord => ({ instanceId: r.instance_id, name: r.name, port: r.port, auth: r.auth as ServiceAuth, createdAt: r.created_at });

export class HttpServiceRepo {
  constructor(private readonly db: Db) {}

  /** Inserts or replaces port and auth; a replaced service keeps its createdAt. */
  upsert(s: HttpServiceRecord): void {
    statement(
      this.db,
      `INSERT INTO http_services (instance_id,name,port,auth,created_at) VALUES (?,?,?,?,?)
       ON CONFLICT (instance_id,name) DO UPDATE SET port = excluded.port, auth = excluded.auth`,
    ).run(s.instanceId, s.name, s.port, s.auth, s.createdAt);
  }
  get(instanceId: string, name: string): HttpServiceRecord | undefined {
    const r = statement(this.db, 'SELECT * FROM http_services WHERE instance_id = ? AND name = ?').get(instanceId, name) as Row | undefined;
    return r && toRecord(r);
  }
  list(instanceId: string): HttpServiceRecord[] {
    return (statement(this.db, 'SELECT * FROM http_services WHERE instance_id = ? ORDER BY name').all(instanceId) as Row[]).map(toRecord);
  }
  /** True when a row was removed. */
  delete(instanceId: string, name: string): boolean {
    return statement(this.db, 'DELETE FROM http_services WHERE instance_id = ? AND name = ?').run(instanceId, name).changes > 0;
  }
  deleteInstance(instanceId: string): void {
    statement(this.db, 'DELETE FROM http_services WHERE instance_id = ?').run(instanceId);
    statement(this.db, 'DELETE FROM instance_wake WHERE instance_id = ?').run(instanceId);
  }
  /** Every service of `from` becomes one of `to` too (a branch child). */
  copy(from: string, to: string, createdAt: string): void {
    statement(this.db, 'INSERT OR IGNORE INTO http_services (instance_id,name,port,auth,created_at) SELECT ?,name,port,auth,? FROM http_services WHERE instance_id = ?').run(to, createdAt, from);
  }

  wakeOn(instanceId: string): WakeOn {
    const r = statement(this.db, 'SELECT http, ssh FROM instance_wake WHERE instance_id = ?').get(instanceId) as { http: number; ssh: number } | undefined;
    return { http: Boolean(r?.http), ssh: Boolean(r?.ssh) };
  }
  setWakeOn(instanceId: string, w: WakeOn): void {
    statement(this.db, 'INSERT INTO instance_wake (instance_id,http,ssh) VALUES (?,?,?) ON CONFLICT (instance_id) DO UPDATE SET http = excluded.http, ssh = excluded.ssh')
      .run(instanceId, w.http ? 1 : 0, w.ssh ? 1 : 0);
  }
}
