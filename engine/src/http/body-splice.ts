// Large response bodies of the service proxy, moved off Node's HTTP layer. Node has no splice(2),
// and copying a body through it costs ~2 s of the engine's CPU per GiB (two copies through user
// space plus loopback TCP), which capped the proxy near a quarter of a direct download. So once a
// response's head is in and its body has a known length of at least SPLICE_MIN_BYTES:
//   1. Node stops reading the upstream socket inside the 'response' callback (libuv reads no more
//      after it), and what the parser already took from that read is written to the client first;
//   2. once the client's socket has flushed everything Node queued, `faas-agent splice N` starts
//      with the upstream socket on fd 3 and the client's on fd 4 and splices the remaining N bytes
//      kernel to kernel (agent/internal/splice);
//   3. on its success the response is ended (the client's keep-alive goes on: the framing is the
//      Content-Length, which was counted exactly) and the upstream connection is closed, as its
//      parser never saw the body. On failure both sockets are destroyed, as when a piped body fails.
// The client's socket stays the engine's the whole time (it keeps reading the next request); the
// helper only writes to it. Auth and header rewriting happened before any of this (service-proxy.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** From this size on a body is spliced; below, starting a process (~ms) costs more than it saves. */
export const SPLICE_MIN_BYTES = 8 << 20;

/** The body length to splice, or null when this response goes through Node (no length, small, none). */
export function spliceLength(ur: IncomingMessage, method: string | undefined): number | null {
  const status = ur.statusCode ?? 0;
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) return null;
  const raw = ur.headers['content-length'];
  if (ur.headers['transfer-encoding'] !== undefined || raw === undefined || !/^\d+$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= SPLICE_MIN_BYTES ? n : null;
}

interface Handle {
  fd: number;
  readStop(): number;
}

/**
 * Must be called synchronously from the 'response' callback, after res.writeHead. Returns a
 * cancel function (the instance went away, the client left): it stops the helper and destroys
 * both sockets.
 */
export function spliceBody(helper: string, ur: IncomingMessage, res: ServerResponse, length: number, done: (err?: Error) => void): (reason: string) => void {
  const up = ur.socket as Socket & { _handle: Handle | null };
  up._handle?.readStop();
  // Nothing may start reading the upstream socket again (a 'data' listener would): the bytes
  // after this point are the helper's.
  up._read = () => {};
  up.setTimeout(0); // Node sees no traffic on it while the helper works
  const early: Buffer[] = [];
  ur.on('data', (c: Buffer) => early.push(c));
  ur.on('error', () => {}); // the upstream connection is closed below, mid-"body" as its parser sees it
  let child: ChildProcess | undefined;
  let over = false;
  const finish = (err?: Error) => {
    if (over) return;
    over = true;
    if (err) res.destroy();
    else res.end();
    up.destroy();
    done(err);
  };
  // The rest of the read that carried the head is parsed as body after this callback returns.
  setImmediate(() => {
    ur.removeAllListeners('data');
    const got = early.reduce((n, c) => n + c.length, 0);
    res.flushHeaders(); // the head is Node's to send, always before the helper's first byte
    if (got) res.write(Buffer.concat(early));
    const client = res.socket as (Socket & { _handle: Handle | null }) | null;
    const start = () => {
      if (over) return;
      if (!client?._handle || client.destroyed) return finish(new Error('the client went away before the body was spliced'));
      if (!up._handle || up.destroyed) return finish(new Error('the upstream connection closed before the body was spliced'));
      if (got >= length) return finish();
      // The helper writes only after everything Node queued for the client is in the kernel.
      if (client.writableLength > 0) return void setTimeout(start, 1);
      let out = '';
      let errText = '';
      child = spawn(helper, ['splice', String(length - got)], { stdio: ['ignore', 'pipe', 'pipe', up._handle.fd, client._handle.fd] });
      child.stdout!.on('data', (c) => (out += c));
      child.stderr!.on('data', (c) => (errText += c));
      child.once('error', (err) => finish(err));
      child.once('close', (code) => finish(code === 0 && Number(out) === length - got ? undefined : new Error(`splice helper: exit ${code}: ${errText.trim() || out.trim()}`)));
    };
    start();
  });
  return (reason: string) => {
    child?.kill('SIGKILL');
    finish(new Error(reason));
  };
}
