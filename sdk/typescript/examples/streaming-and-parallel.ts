// Typed-usage check: streams, processes, files, terminal, events and the parallel helpers.
import { FaaSClient, type ExecStreamEvent, type FaaSEvent, type Instance } from '@faas/sdk';

export async function streaming(instance: Instance): Promise<number> {
  for await (const event of instance.execStream('make test')) {
    const e: ExecStreamEvent = event;
    if (e.type === 'stdout') process.stdout.write(e.data);
    else if (e.type === 'exit') return e.exitCode;
  }
  const collected = await instance.execStream('ls', { onStdout: (d: string) => process.stdout.write(d) });
  return collected.exitCode;
}

export async function processesAndFiles(instance: Instance): Promise<void> {
  const server = await instance.processes.start('python3 -m http.server 8080', { tag: 'web' });
  for await (const chunk of server.output({ follow: true })) {
    if (chunk.type === 'stdout' && chunk.data.includes('Serving')) break;
  }
  await server.sendStdin('ignored\n');
  await server.kill('SIGTERM');
  const exited = await server.wait(5_000);
  console.log(exited.exitCode);
  await instance.files.upload('./data', '/data');
  await instance.files.download('/data', './data-copy');
  const text: string = await instance.files.readText('/etc/hostname');
  console.log(text);
  const terminal = await instance.terminal({ cols: 80, rows: 24 });
  terminal.write('exit\n');
  console.log(await terminal.exited);
}

export async function parallel(client: FaaSClient, source: Instance): Promise<string[]> {
  client.events.on('instance.ready', (event: FaaSEvent) => console.log(event.resourceId));
  const outputs = await client.parallel.map(['a', 'b', 'c'], async (item, child) => (await child.exec(`echo ${item}`)).stdout, { source, concurrency: 2 });
  // Two live branches of `source`; the first to succeed wins and keeps running, the other is stopped.
  const winner = await client.parallel.race(source, [(i: Instance) => i.exec('solve --plan a'), (i: Instance) => i.exec('solve --plan b')]);
  await winner.instance.stop();
  const checks = await client.parallel.all(source, [(i: Instance) => i.exec('make lint'), (i: Instance) => i.exec('make test')]);
  console.log(checks.map((c) => c.exitCode));
  const pooled = await client.parallel.pool(2, outputs.map((o) => async () => o.toUpperCase()));
  client.close();
  return [...outputs, winner.value.stdout, ...pooled];
}
