// One SSH session channel, bridged to one upgraded connection to the instance's agent:
//   shell / exec with a PTY  → GET /v1/pty (faas-pty frames: input, output, resize, signal, exit)
//   exec without a PTY       → GET /v1/exec/attach (stdin, stdout, stderr, EOF, signal, exit)
//   exec `scp -t|-f …`       → the same route running the agent's built-in legacy scp server
//   subsystem sftp           → GET /v1/sftp (raw bytes to the agent's SFTP server)
// The exit status goes back as exit-status (or exit-signal), then EOF and close, as sshd does.
import type { Socket } from 'node:net';
import type { ServerChannel, Session } from 'ssh2';
import type { AgentClient } from '../runtime/agent-client.js';
import { FRAME, frame, FrameReader, upgradeAgent } from '../runtime/agent-upgrade.js';
import type { Target } from './gateway.js';
import { scpArgs } from './scp-command.js';

export interface SessionDeps {
  resolve: () => Promise<Target>;
  agents: AgentClient;
  hold: (instanceId: string) => () => void;
}

const MAX_ENV = 64;

export function handleSession(session: Session, d: SessionDeps): void {
  let pty: { cols: number; rows: number } | null = null;
  const env: Record<string, string> = {};
  let agent: Socket | null = null;
  let usesPty = false;
  let started = false;

  session.on('pty', (accept, _reject, info) => {
    pty = { cols: clamp(info.cols), rows: clamp(info.rows) };
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    if (pty) pty = { cols: clamp(info.cols), rows: clamp(info.rows) };
    if (agent && usesPty) agent.write(frame(FRAME.resize, JSON.stringify(pty)));
    accept?.();
  });
  session.on('env', (accept, reject, info) => {
    if (Object.keys(env).length >= MAX_ENV || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(info.key) || info.key.startsWith('FAAS_')) return reject?.();
    env[info.key] = String(info.val);
    accept?.();
  });
  session.on('signal', (accept, _reject, info) => {
    if (agent && /^[A-Z0-9]+$/.test(info.name)) agent.write(frame(FRAME.signal, JSON.stringify({ signal: `SIG${info.name}` })));
    accept?.();
  });

  const start = (kind: 'shell' | 'exec' | 'sftp', command: string | undefined, acceptCh: () => ServerChannel) => {
    if (started) return;
    started = true;
    // Accepted at once: OpenSSH sends stdin and EOF right after its request, and ssh2 drops what
    // arrives for a session whose channel is not accepted yet.
    const ch = acceptCh();
    void (async () => {
      const t = await d.resolve();
      if (!t.ok) return refuse(ch, t.message);
      const release = d.hold(t.instanceId);
      ch.on('close', release);
      const auth = d.agents.authorization(t.ip);
      try {
        if (kind === 'sftp') {
          const { socket, rest } = await upgradeAgent(t.ip, '/v1/sftp', 'faas-sftp', auth);
          agent = socket;
          return pipeRaw(ch, socket, rest);
        }
        if (pty) {
          usesPty = true;
          const q = new URLSearchParams({ cols: String(pty.cols), rows: String(pty.rows) });
          if (command !== undefined) q.set('command', command);
          const { socket, rest } = await upgradeAgent(t.ip, `/v1/pty?${q}`, 'faas-pty', auth);
          agent = socket;
          return bridgeFrames(ch, socket, rest, true);
        }
        const scp = command !== undefined ? scpArgs(command) : null;
        const q = scp ? `scp=${encodeURIComponent(JSON.stringify(scp))}` : `spec=${encodeURIComponent(JSON.stringify(execSpec(command, env)))}`;
        const { socket, rest } = await upgradeAgent(t.ip, `/v1/exec/attach?${q}`, 'faas-exec', auth);
        agent = socket;
        return bridgeFrames(ch, socket, rest, false);
      } catch (err) {
        refuse(ch, `faas: ${(err as Error).message}`);
      }
    })();
  };
  session.on('shell', (accept) => start('shell', undefined, accept));
  session.on('exec', (accept, _reject, info) => start('exec', info.command, accept));
  session.on('subsystem', (accept, reject, info) => (info.name === 'sftp' ? start('sftp', undefined, accept) : reject?.()));
}

const clamp = (n: number) => Math.min(Math.max(Math.floor(n) || 0, 1), 1000) || 80;

/** A shell without a PTY is `sh -l` reading the channel (`ssh host < script`). */
function execSpec(command: string | undefined, env: Record<string, string>): Record<string, unknown> {
  const spec: Record<string, unknown> = command === undefined ? { argv: ['/bin/sh', '-l'] } : { command };
  if (Object.keys(env).length) spec.env = env;
  spec.timeoutMs = 0;
  return spec;
}

function refuse(ch: ServerChannel, message: string): void {
  ch.stderr.write(`${message}\r\n`);
  ch.exit(255);
  ch.end();
}

/** Raw bytes both ways (SFTP); the client's EOF half-closes the agent connection. */
function pipeRaw(ch: ServerChannel, socket: Socket, rest: Buffer): void {
  if (rest.length) ch.write(rest);
  ch.pipe(socket);
  socket.pipe(ch, { end: false });
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    ch.exit(0);
    ch.end();
  };
  socket.on('end', finish);
  socket.on('close', finish);
  socket.on('error', finish);
  ch.on('close', () => socket.destroy());
}

/**
 * Frames to channel and back. Back-pressure both ways: a full SSH window pauses the agent socket
 * (the program then blocks on its pipe or terminal), a full socket pauses the channel.
 */
function bridgeFrames(ch: ServerChannel, socket: Socket, rest: Buffer, tty: boolean): void {
  const reader = new FrameReader();
  let exited = false;
  const out = (w: { write(b: Buffer): boolean; once(e: 'drain', f: () => void): unknown }, payload: Buffer) => {
    if (!w.write(payload)) {
      socket.pause();
      w.once('drain', () => socket.resume());
    }
  };
  const onData = (chunk: Buffer) => {
    for (const f of reader.push(chunk)) {
      if (f.type === FRAME.output) out(ch, f.payload);
      else if (f.type === FRAME.stderr) out(ch.stderr, f.payload);
      else if (f.type === FRAME.exit) {
        exited = true;
        let r: { exitCode?: number; signal?: string | null } = {};
        try {
          r = JSON.parse(f.payload.toString());
        } catch {
          /* malformed: reported as 255 below */
        }
        if (r.signal && !tty) ch.exit(r.signal.replace(/^SIG/, ''), false, '');
        else ch.exit(Number.isInteger(r.exitCode) ? (r.exitCode as number) : 255);
        ch.end();
        socket.end();
      }
    }
  };
  socket.on('data', onData);
  if (rest.length) onData(rest);
  ch.on('data', (data: Buffer) => {
    if (!socket.write(frame(FRAME.input, data))) {
      ch.pause();
      socket.once('drain', () => ch.resume());
    }
  });
  // EOF on stdin: the program sees end of input (a terminal has no such thing; sshd ignores it too).
  ch.on('end', () => {
    if (!tty) socket.write(frame(FRAME.eof, Buffer.alloc(0)));
  });
  const lost = () => {
    if (exited) return;
    exited = true;
    ch.stderr.write('faas: the connection to the instance was lost\r\n');
    ch.exit(255);
    ch.end();
  };
  socket.on('close', lost);
  socket.on('error', lost);
  ch.on('close', () => socket.destroy());
}
