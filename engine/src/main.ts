#!/usr/bin/env node
// Entry point: config, logger, one engine per state directory, listen, graceful shutdown.
// Instances keep running when the engine stops; the next start adopts them (reconcile).
// "One engine per state directory" is a kernel-released lock (store/state-lock.ts), so a start
// right after any kill — SIGKILL, OOM, a zombie nobody reaps — goes through.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from './config.js';
import { createEngine } from './engine.js';
import { cleanHost } from './clean.js';
import { StateDirLockedError } from './store/state-lock.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = {
    info: (o: object, m?: string) => console.log(JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: m, ...o })),
    warn: (o: object, m?: string) => console.log(JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg: m, ...o })),
    error: (o: object, m?: string) => console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: m, ...o })),
  };
  const engine = await createEngine(config, log, { pidFile: true });
  log.info({ reconcile: engine.reconcileReport }, 'reconciled state with the host');
  await engine.app.listen({ host: config.host, port: config.port });
  log.info({ endpoint: `http://${config.host}:${config.port}`, stateDir: config.stateDir, pid: process.pid }, 'faas engine listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down (instances keep running)');
    await engine.shutdown({ stopInstances: process.env.FAAS_STOP_INSTANCES_ON_EXIT === '1' });
    rmSync(join(config.stateDir, 'engine.pid'), { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

if (process.argv[2] === 'clean') {
  cleanHost(loadConfig()).then(
    (report) => console.log(JSON.stringify(report)),
    (err) => {
      console.error(`faas engine clean failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(err instanceof StateDirLockedError ? 2 : 1);
    },
  );
} else {
  main().catch((err) => {
    // One line that says why, for engine.log and `faas engine start` (which prints it). Exit 2 when
    // another engine holds the state directory: systemd's RestartPreventExitStatus keeps it from
    // restarting into the same refusal forever.
    const locked = err instanceof StateDirLockedError;
    console.error(`faas engine failed to start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(locked ? 2 : 1);
  });
}
