// client.events: engine events (instance.ready, snapshot.created, …) from the SSE route.
// `on/once/off` share one background connection, opened with the first handler and closed with
// the last; after a drop it reconnects with Last-Event-ID so no event in between is lost (as far
// as the engine still keeps them). `stream()` is the same feed as a plain async iterator.
// Shared with the Python SDK (docs/sdk-behaviour.md): `on` returns at once and `connected()` waits
// for the subscription; network errors and transient answers (5xx, 429) reconnect with backoff
// (0.5 s doubling up to 8 s); any other refusal (401, 403, …) stops the listener for good — it goes
// to the 'error' handlers and `connected()` rejects with it. The open connection keeps a Node
// process alive until `close()` (or `off` of the last handler); Python's listener is a daemon thread.
import type * as api from '../generated/api.gen.js';
import type { HttpTransport } from '../core/http.js';
import { FaaSError } from '../core/errors.js';
import { readServerSentEvents } from '../core/sse.js';
import { isRetryableError, retryDelayMs, sleep } from '../core/retry.js';

export type FaaSEvent = api.Event;
export type EventHandler = (event: FaaSEvent) => void;
export type ErrorHandler = (error: unknown) => void;

export interface EventStreamOptions {
  /** Only these event types (e.g. `instance.ready`); all when omitted. */
  types?: string[];
  /** Only events about this image, snapshot or instance. */
  resourceId?: string;
  /** Resume after this sequence number. */
  lastEventId?: number | string;
  signal?: AbortSignal;
  /** Called when the stream is open (the engine answered). */
  onOpen?: () => void;
}

/** Matches every event in on/once/off. */
export const ANY_EVENT = '*';

export class EventManager {
  private readonly handlers = new Map<string, Set<EventHandler>>();
  private readonly errorHandlers = new Set<ErrorHandler>();
  private controller?: AbortController;
  private lastSeq?: string;
  private openWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private open = false;
  /** The refusal that stopped the listener, until the next `on` starts a new one. */
  private fatal?: unknown;

  constructor(private readonly http: HttpTransport) {}

  /** One connection; ends when the engine closes it. Breaking out of the loop closes it. */
  async *stream(options: EventStreamOptions = {}): AsyncGenerator<FaaSEvent, void, undefined> {
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (options.lastEventId !== undefined) headers['Last-Event-ID'] = String(options.lastEventId);
    const response = await this.http.requestRaw({
      method: 'GET',
      path: '/v1/events',
      query: { types: options.types, resourceId: options.resourceId },
      headers,
      signal: options.signal,
      maxRetries: 0,
    });
    options.onOpen?.();
    for await (const message of readServerSentEvents(response.body!)) yield JSON.parse(message.data) as FaaSEvent;
  }

  /** Calls `handler` for each event of `type` (or every event for `'*'`); `'error'` receives connection errors. */
  on(type: 'error', handler: ErrorHandler): this;
  on(type: string, handler: EventHandler): this;
  on(type: string, handler: EventHandler | ErrorHandler): this {
    if (type === 'error') this.errorHandlers.add(handler as ErrorHandler);
    else {
      if (!this.handlers.has(type)) this.handlers.set(type, new Set());
      this.handlers.get(type)!.add(handler as EventHandler);
      this.ensureConnected();
    }
    return this;
  }

  once(type: string, handler: EventHandler): this {
    const wrapper: EventHandler = (event) => {
      this.off(type, wrapper);
      handler(event);
    };
    return this.on(type, wrapper);
  }

  off(type: string, handler: EventHandler | ErrorHandler): this {
    if (type === 'error') this.errorHandlers.delete(handler as ErrorHandler);
    else {
      this.handlers.get(type)?.delete(handler as EventHandler);
      if (this.handlers.get(type)?.size === 0) this.handlers.delete(type);
      if (this.handlers.size === 0) this.close();
    }
    return this;
  }

  /**
   * Resolves once the background connection is open, so events from now on will be seen; rejects
   * with the refusal (401, 403 …) that stopped the listener.
   */
  connected(): Promise<void> {
    if (this.open) return Promise.resolve();
    if (this.fatal !== undefined && !this.controller) return Promise.reject(this.fatal);
    if (!this.controller) return Promise.reject(new FaaSError('no event listener: register a handler with on() first', { code: 'invalid_request' }));
    return new Promise((resolve, reject) => this.openWaiters.push({ resolve, reject }));
  }

  /** Drops every handler and closes the connection. */
  close(): void {
    this.handlers.clear();
    this.controller?.abort(new Error('event subscription closed'));
    this.controller = undefined;
    this.open = false;
  }

  private ensureConnected(): void {
    if (this.controller) return;
    this.fatal = undefined;
    const controller = (this.controller = new AbortController());
    void this.run(controller.signal);
  }

  private async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const onOpen = () => {
          failures = 0;
          this.open = true;
          this.openWaiters.splice(0).forEach((w) => w.resolve());
        };
        for await (const event of this.stream({ lastEventId: this.lastSeq, signal, onOpen })) {
          this.lastSeq = String(event.seq);
          this.dispatch(event);
        }
      } catch (error) {
        if (signal.aborted) return;
        this.open = false;
        const transient = !(error instanceof FaaSError) || isRetryableError(error, { attempt: 0 });
        this.errorHandlers.forEach((h) => h(error));
        if (!transient) {
          if (this.controller?.signal === signal) this.controller = undefined;
          this.fatal = error;
          this.openWaiters.splice(0).forEach((w) => w.reject(error));
          return;
        }
        failures += 1;
      }
      this.open = false;
      await sleep(retryDelayMs(Math.min(failures, 4), undefined) ?? 1000, signal).catch(() => undefined);
    }
  }

  private dispatch(event: FaaSEvent): void {
    for (const key of [event.type, ANY_EVENT]) {
      for (const handler of [...(this.handlers.get(key) ?? [])]) {
        try {
          handler(event);
        } catch (error) {
          this.errorHandlers.forEach((h) => h(error));
        }
      }
    }
  }
}
