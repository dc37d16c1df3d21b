// Speaks gVisor's urpc to a sandbox's control socket, the way the runsc CLI itself does, for the
// calls on the hot path (checkpoint, pause, resume). Each runsc CLI call starts a 100 MB Go binary
// and reloads the container state: 10–15 ms before it sends the one message this sends directly.
//
// The wire format (gvisor pkg/urpc): a stream unix socket at <runsc root>/runsc-<sandbox id>.sock;
// a call is one JSON object {"method", "arg"} whose files ride as SCM_RIGHTS on its first bytes;
// the answer is one JSON object {"success", "err", "result"}. Node's net module cannot pass file
// descriptors, so usocket (a small native addon) carries them.
import { createRequire } from 'node:module';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
// usocket ships no types; this is the part of its API used here.
interface USocketLike {
  connect(path: string, cb: () => void): void;
  on(event: 'data', cb: (chunk: Buffer) => void): this;
  on(event: 'fds', cb: (fds: number[]) => void): this;
  on(event: 'error' | 'end' | 'close', cb: (err?: Error & { code?: string }) => void): this;
  write(chunk: { data: Buffer; fds?: number[] }): void;
  destroy(): void;
}
const { USocket } = require('usocket') as { USocket: new () => USocketLike };

/** sockaddr_un.sun_path holds 108 bytes, the terminating NUL included. */
const UNIX_PATH_MAX = 108;

function describe(id: string, err: (Error & { code?: string }) | undefined): string {
  if (err?.code === 'ECONNREFUSED' || err?.code === 'ENOENT') return `sandbox ${id} is not running (nothing answers on its control socket)`;
  return `control socket of ${id}: ${err?.code ?? err?.message ?? 'unknown error'}`;
}

export class ControlSocket {
  constructor(private readonly runscRoot: string) {}

  /** Calls `method` in sandbox `id`; `fds` stay owned by the caller (close them after). */
  call(id: string, method: string, arg: unknown, fds: number[] = []): Promise<unknown> {
    const path = join(this.runscRoot, `runsc-${id}.sock`);
    // runsc binds a long path through /proc/self/fd/<dir fd>/<name>; connecting needs the same trick.
    const dirFd = path.length >= UNIX_PATH_MAX ? openSync(this.runscRoot, 'r') : -1;
    const target = dirFd >= 0 ? `/proc/self/fd/${dirFd}/runsc-${id}.sock` : path;
    return new Promise<unknown>((resolve, reject) => {
      const sock = new USocket();
      let buf = '';
      let settled = false;
      const finish = (err: Error | null, result?: unknown) => {
        if (settled) return;
        settled = true;
        if (dirFd >= 0) closeSync(dirFd);
        // usocket asserts if it is closed from inside its own read callback: close on the next turn.
        setImmediate(() => sock.destroy());
        if (err) reject(err);
        else resolve(result);
      };
      sock.on('error', (err) => finish(new Error(describe(id, err))));
      sock.on('close', () => finish(new Error(`sandbox ${id} closed its control socket before answering`)));
      sock.connect(target, () => {
        // Listeners that start the read side go on only once connected (usocket resumes reading
        // on a not-yet-open handle otherwise).
        sock.on('fds', (got) => got.forEach((fd) => closeSync(fd)));
        sock.on('data', (chunk) => {
          buf += chunk.toString('utf8');
          let answer: { success?: boolean; err?: string; result?: unknown };
          try {
            answer = JSON.parse(buf) as typeof answer;
          } catch {
            return; // not all of it yet
          }
          if (answer.success) finish(null, answer.result);
          else finish(new Error(answer.err || `${method} failed`));
        });
        sock.on('end', () => finish(new Error(`sandbox ${id} closed its control socket before answering`)));
        sock.write({ data: Buffer.from(JSON.stringify({ method, arg })), fds });
      });
    });
  }
}
