// GET /v1/events: the event log as Server-Sent Events. Each client keeps a cursor (the last seq it
// has been given). A live event that follows the cursor directly is written at once; anything else
// (a resume with Last-Event-ID, or a client that fell behind) is read from the log in order. So a
// resume replays then goes live without gaps or duplicates, and a slow client costs the engine no
// memory: while its socket is full it is simply not written to, and it catches up from the log.
import type { FastifyInstance } from 'fastify';
import type { FaasEvent } from '../../core/events.js';
import { owns } from '../../core/principal.js';
import { principalOf } from '../auth.js';
import type { Services } from '../../engine.js';
import type { Router } from '../app.js';
import { invalid } from '../../core/errors.js';
import { query } from './common.js';
import { openSse } from './sse.js';

const PAGE = 500;

export const eventStreams = { open: 0 };

export function registerEventRoutes(app: FastifyInstance, r: Router, s: Services, keepaliveMs = Number(process.env.FAAS_SSE_KEEPALIVE_MS ?? 15_000)): void {
  // Open streams never end on their own: end them so the server can close.
  const live = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of live) end();
  });
  r.op('streamEvents', async (req, reply) => {
    const q = query(req) as Record<string, unknown>;
    const types = q.types === undefined ? null : new Set(([] as string[]).concat(q.types as string[]).flatMap((t) => t.split(',')).filter(Boolean));
    const resourceId = (q.resourceId as string | undefined) ?? null;
    const lastId = req.headers['last-event-id'];
    // A resume point that is not a sequence number would silently become "from now on" and lose
    // the events the client asked for: refuse it before the stream starts.
    if (lastId !== undefined && !(typeof lastId === 'string' && /^\d+$/.test(lastId))) {
      throw invalid('Last-Event-ID must be the decimal seq of an event (the id: of an earlier message)', { field: 'Last-Event-ID' });
    }
    // Without Last-Event-ID the stream starts with the next event: the cursor is set by the first one.
    let cursor: number | null = typeof lastId === 'string' ? Number(lastId) : null;
    // A key sees the events of its own records only (admin keys: all).
    const who = principalOf(req);
    const wanted = (e: FaasEvent) => owns(who, e.owner) && (!types || types.has(e.type)) && (!resourceId || e.resourceId === resourceId);

    const sse = openSse(req, reply);
    eventStreams.open++;
    let blocked = false; // socket full: wait for drain
    let pumping = false;
    let closed = false;

    const write = (e: FaasEvent) => {
      cursor = e.seq;
      if (wanted(e) && !sse.send(e.type, publicEvent(e), e.seq)) blocked = true;
    };
    /** Catches up from the log until it is exhausted or the socket is full. */
    const pump = () => {
      if (pumping || blocked || closed || cursor === null) return;
      pumping = true;
      try {
        for (;;) {
          const batch = s.events.since(cursor, PAGE);
          for (const e of batch) {
            write(e);
            if (blocked) return;
          }
          if (batch.length < PAGE) return;
        }
      } finally {
        pumping = false;
      }
    };
    const onEvent = (e: FaasEvent) => {
      if (closed) return;
      if (cursor === null) cursor = e.seq - 1;
      if (e.seq <= cursor) return;
      if (!blocked && !pumping && e.seq === cursor + 1) write(e);
      else pump();
    };
    s.events.on('event', onEvent);
    const keepalive = setInterval(() => {
      if (!blocked) sse.comment('keepalive');
    }, keepaliveMs);
    sse.res.on('drain', () => {
      blocked = false;
      pump();
    });
    const end = () => sse.end();
    live.add(end);
    sse.res.on('close', () => {
      live.delete(end);
      closed = true;
      clearInterval(keepalive);
      s.events.off('event', onEvent);
      eventStreams.open--;
    });
    sse.comment('connected');
    pump();
  });
}

const publicEvent = ({ owner: _owner, ...e }: FaasEvent) => e;
