// Streams 1 GiB (BENCH_TRANSFER_MB) into an instance and back through the engine, with curl in
// another process as the client, and prints how much the engine's and the agent's resident memory
// grew. Build and run (from the repository root):
//   (cd engine && npx tsc -p tsconfig.json) && npx -p typescript tsc --module nodenext --target es2022 \
//     --skipLibCheck --outDir bench/dist bench/transfer.ts && node bench/dist/transfer.js
import { execFile } from 'node:child_process';
// @ts-ignore the compiled harness has no declarations next to it
import { startEngine } from '../../engine/dist/test/harness.js';

const MB = Number(process.env.BENCH_TRANSFER_MB ?? 1024);
const size = MB * 1024 * 1024;

function sh(cmd: string): Promise<string> {
  return new Promise((ok, fail) => execFile('sh', ['-c', cmd], { maxBuffer: 1 << 20 }, (e, out, err) => (e ? fail(new Error(err || String(e))) : ok(out))));
}

async function main(): Promise<void> {
  const t = await startEngine();
  try {
    const snap = await t.api('POST', '/v1/snapshots', { diskSize: Math.max(1024, MB * 2) });
    const id = (await t.api('POST', '/v1/instances', { snapshotId: snap.body.id })).body.id;
    const agentRss = async () => {
      const r = await t.api('POST', `/v1/instances/${id}/exec`, { command: "grep VmRSS /proc/1/status | awk '{print $2}'" });
      return Number(r.body.stdout.trim()) / 1024;
    };
    const auth = `authorization: Bearer ${t.key}`;
    const base = `${t.url}/v1/instances/${id}/files`;
    const measure = async (label: string, cmd: string) => {
      const rss0 = process.memoryUsage.rss();
      const a0 = await agentRss();
      let peak = rss0;
      const m0 = process.memoryUsage();
      let heapPeak = m0.heapUsed;
      let bufPeak = m0.arrayBuffers;
      const sampler = setInterval(() => {
        const m = process.memoryUsage();
        peak = Math.max(peak, m.rss);
        heapPeak = Math.max(heapPeak, m.heapUsed);
        bufPeak = Math.max(bufPeak, m.arrayBuffers);
      }, 10);
      const t0 = performance.now();
      await sh(cmd);
      const ms = performance.now() - t0;
      clearInterval(sampler);
      const a1 = await agentRss();
      const mbps = (MB / (ms / 1000)).toFixed(0);
      console.log(`${label.padEnd(9)} ${MB} MiB in ${(ms / 1000).toFixed(2)} s (${mbps} MiB/s)  engine RSS peak +${((peak - rss0) / 2 ** 20).toFixed(1)} MiB (JS heap +${((heapPeak - m0.heapUsed) / 2 ** 20).toFixed(1)}, buffers +${((bufPeak - m0.arrayBuffers) / 2 ** 20).toFixed(1)})  agent RSS ${a0.toFixed(1)} → ${a1.toFixed(1)} MiB`);
    };
    await measure('upload', `head -c ${size} /dev/zero | curl -sS -f -X PUT -H '${auth}' -H 'content-type: application/octet-stream' -T - '${base}/write?path=/root/big.bin' >/dev/null`);
    await measure('download', `curl -sS -f -H '${auth}' '${base}/read?path=/root/big.bin' -o /dev/null`);
    await measure('tar down', `curl -sS -f -H '${auth}' '${base}/tar?path=/root/big.bin' -o /dev/null`);
  } finally {
    await t.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
