// Interactive terminal over WebSocket (`GET /v1/instances/{id}/terminal`): binary frames carry
// terminal bytes both ways, text frames carry JSON control (resize from us, exit from the engine).
// Errors before the upgrade are the usual JSON envelope and are raised as the usual classes.
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { HttpTransport } from '../core/http.js';
import { networkError } from '../core/errors.js';
import { refusal } from './port-forwards.js';
import { seg, type IdRef } from '../core/ids.js';

export interface TerminalOptions {
  cols?: number;
  rows?: number;
  /** Shell command line to run instead of the login shell. */
  command?: string;
  signal?: AbortSignal;
}

/**
 * An open terminal. Events: `data` (Buffer of output), `exit` (exit code), `close`.
 * Iterating it yields output chunks until the program exits.
 */
export class Terminal extends EventEmitter implements AsyncIterable<Buffer> {
  /** Resolves with the exit code when the program exits (null if the socket closed without one). */
  readonly exited: Promise<number | null>;
  private exitCode: number | null = null;
  /** Output that arrived before anyone listened: ws can deliver frames in the same tick as 'open'. */
  private readonly pending: Buffer[] = [];
  private closed = false;

  constructor(private readonly socket: WebSocket) {
    super();
    this.on('newListener', (event) => {
      if (event === 'data' && this.pending.length) queueMicrotask(() => this.flush());
    });
    this.exited = new Promise((resolve) => {
      socket.on('message', (data, isBinary) => {
        if (isBinary) {
          this.pending.push(toBuffer(data));
          return this.flush();
        }
        try {
          const control = JSON.parse(toBuffer(data).toString('utf8'));
          if (control?.type === 'exit') {
            this.exitCode = control.exitCode;
            this.emit('exit', control.exitCode);
          }
        } catch {
          /* unknown control messages are ignored, as the engine does */
        }
      });
      socket.on('close', () => {
        this.closed = true;
        this.emit('close');
        resolve(this.exitCode);
      });
      socket.on('error', () => undefined); // surfaced as 'close'; an unhandled 'error' would crash the process
    });
  }

  /** Hands buffered output to the `data` listeners, once there are some. */
  private flush(): void {
    if (this.listenerCount('data') === 0) return;
    for (const chunk of this.pending.splice(0)) this.emit('data', chunk);
  }

  write(data: string | Uint8Array): void {
    this.socket.send(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, { binary: true });
  }

  resize(cols: number, rows: number): void {
    this.socket.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  /** Hangs up (SIGHUP to the terminal's process group). */
  close(): void {
    this.socket.close(1000);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    const queue: Buffer[] = [...this.pending.splice(0)];
    let wake: (() => void) | undefined;
    const onData = (chunk: Buffer) => {
      queue.push(chunk);
      wake?.();
    };
    const onClose = () => wake?.();
    this.on('data', onData);
    this.on('close', onClose);
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (this.closed) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off('data', onData);
      this.off('close', onClose);
    }
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data as ArrayBuffer);
}

export class TerminalOperations {
  constructor(private readonly http: HttpTransport) {}

  async open(target: IdRef, options: TerminalOptions = {}): Promise<Terminal> {
    const url = this.http.url(`/v1/instances/${seg(target)}/terminal`, { cols: options.cols, rows: options.rows, command: options.command }).replace(/^http/, 'ws');
    const socket = new WebSocket(url, { headers: await this.http.authHeaders() });
    return new Promise((resolve, reject) => {
      const onAbort = () => socket.terminate();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('open', () => {
        options.signal?.removeEventListener('abort', onAbort);
        resolve(new Terminal(socket));
      });
      socket.once('unexpected-response', (_request, response) => void refusal(response).then(reject));
      socket.once('error', (err) => reject(networkError(`terminal connection failed: ${err.message}`, err)));
    });
  }
}
