// Everything the engine does that a client may want to react to. Events are appended to a bounded
// log (so SSE clients can resume with Last-Event-ID) and fanned out in-process; state waits
// (instances.wait) listen here instead of polling.
import { EventEmitter } from 'node:events';

export type EventType =
  | 'instance.pending'
  | 'instance.ready'
  | 'instance.paused'
  | 'instance.resumed'
  | 'instance.stopped'
  | 'instance.error'
  | 'instance.deleted'
  | 'snapshot.created'
  | 'snapshot.deleted'
  | 'branch.created'
  | 'branch.deleted'
  | 'execution.complete'
  | 'image.imported'
  | 'image.deleted';

export interface FaasEvent {
  id: string;
  seq: number;
  type: EventType;
  resourceId: string;
  data: Record<string, unknown>;
  createdAt: string;
  /** The API key that owns the resource (null: admin keys only); never sent to clients. */
  owner: string | null;
}

export interface EventLog {
  append(type: EventType, resourceId: string, data: Record<string, unknown>, owner: string | null): FaasEvent;
  since(seq: number, limit: number): FaasEvent[];
}

export class EventBus extends EventEmitter {
  /** Set by the composition root: the owner of a resource by id (for events of records that exist). */
  ownerOf: (resourceId: string) => string | null = () => null;

  constructor(private readonly log: EventLog) {
    super();
    this.setMaxListeners(0);
  }

  /** `owner` is passed when the record is already gone (deletions); otherwise it is looked up. */
  publish(type: EventType, resourceId: string, data: Record<string, unknown> = {}, owner?: string | null): FaasEvent {
    const event = this.log.append(type, resourceId, data, owner === undefined ? this.ownerOf(resourceId) : owner);
    this.emit('event', event);
    this.emit(`resource:${resourceId}`, event);
    return event;
  }

  since(seq: number, limit = 1000): FaasEvent[] {
    return this.log.since(seq, limit);
  }
}
