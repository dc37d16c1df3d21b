import { statement, type Db } from './db.js';
import type { EventLog, EventType, FaasEvent } from '../../core/events.js';
import { newId } from '../../core/ids.js';

/** The event log in SQLite, trimmed to the newest `keep` events. */
export class SqliteEventLog implements EventLog {
  private appended = 0;
  constructor(private readonly db: Db, private readonly keep = 10_000) {}

  append(type: EventType, resourceId: string, data: Record<string, unknown>, owner: string | null): FaasEvent {
    const id = newId('evt');
    const createdAt = new Date().toISOString();
    const r = statement(this.db, 'INSERT INTO events (id, type, resource_id, data, created_at, owner) VALUES (?,?,?,?,?,?)')
      .run(id, type, resourceId, JSON.stringify(data), createdAt, owner);
    if (++this.appended % 500 === 0) statement(this.db, 'DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?').run(this.keep);
    return { id, seq: Number(r.lastInsertRowid), type, resourceId, data, createdAt, owner };
  }

  since(seq: number, limit: number): FaasEvent[] {
    const rows = statement(this.db, 'SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?').all(seq, limit) as {
      seq: number; id: string; type: EventType; resource_id: string; data: string; created_at: string; owner: string | null;
    }[];
    return rows.map((r) => ({ id: r.id, seq: r.seq, type: r.type, resourceId: r.resource_id, data: JSON.parse(r.data), createdAt: r.created_at, owner: r.owner ?? null }));
  }
}
