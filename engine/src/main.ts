#!/usr/bin/env node
// Entry point: config, logger, one engine per state directory, listen, graceful shutdown.
// Instances keep running when the engine stops; the next start adopts them (reconcile).
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from './config.js';
import { createEngine } from './engine.js';
import { cleanHost } from './clean.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const pidFile = join(config.stateDir, 'engine.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8'));
    if (pid && pid !== process.pid && alive(pid)) {
      console.error(`another engine (pid ${pid}) already uses ${config.stateDir}; stop it with \`faas engine stop\``);
      process.exit(1);
    }
  }
  const log = {
    info: (o: object, m?: string) => console.log(JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: m, ...o })),
    warn: (o: object, m?: string) => console.log(JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg: m, ...o })),
    error: (o: object, m?: string) => console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: m, ...o })),
  };
  const engine = await createEngine(config, log);
  writeFileSync(pidFile, String(process.pid));
  log.info({ reconcile: engine.reconcileReport }, 'reconciled state with the host');
  await engine.app.listen({ host: config.host, port: config.port });
  log.info({ endpoint: `http://${config.host}:${config.port}`, stateDir: config.stateDir }, 'faas engine listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down (instances keep running)');
    await engine.shutdown({ stopInstances: process.env.FAAS_STOP_INSTANCES_ON_EXIT === '1' });
    rmSync(pidFile, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

if (process.argv[2] === 'clean') {
  cleanHost(loadConfig(), alive).then(
    (report) => console.log(JSON.stringify(report)),
    (err) => {
      console.error(`faas engine clean failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
} else {
  main().catch((err) => {
    console.error(`faas engine failed to start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
