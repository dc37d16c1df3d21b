// faas instance forward ID LOCAL:REMOTE — a port forward that runs until Ctrl-C (or SIGTERM).
import type { FaaSError } from '../core/errors.js';
import { arg, type CommandGroup } from './command.js';
import { UsageError } from './output.js';

/** `8080:80`, `0:80`, `:80` or `80` (the last two: any free local port). */
export function parsePorts(text: string): { localPort: number; remotePort: number } {
  const m = /^(?:(\d{0,5}):)?(\d{1,5})$/.exec(text);
  const localPort = m?.[1] ? Number(m[1]) : 0;
  const remotePort = m ? Number(m[2]) : NaN;
  if (!m || localPort > 65535 || !(remotePort >= 1 && remotePort <= 65535)) {
    throw new UsageError(`expected LOCAL:REMOTE ports (e.g. 8080:80, or :80 for any free local port), got ${JSON.stringify(text)}`);
  }
  return { localPort, remotePort };
}

export const forwardCommands: CommandGroup = {
  forward: {
    usage: '<instance-id> <LOCAL:REMOTE>   (LOCAL 0 or empty: any free port)',
    summary: 'Forward 127.0.0.1:LOCAL to port REMOTE of an instance until Ctrl-C; prints the local address',
    async run(ctx) {
      const id = arg(ctx, 0, 'instance-id');
      const { localPort, remotePort } = parsePorts(arg(ctx, 1, 'LOCAL:REMOTE'));
      const forward = await ctx.out.progress('opening the forward', ctx.client().network.portForward(id, localPort, remotePort));
      forward.on('connectionError', (err: FaaSError) => process.stderr.write(`faas: a connection could not be forwarded: ${err.message}\n`));
      ctx.out.result(
        { instanceId: forward.instanceId, localAddress: forward.localAddress, localPort: forward.localPort, remotePort },
        (r: { localAddress: string }) => `forwarding ${r.localAddress} -> ${id}:${remotePort} (Ctrl-C to stop)`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await forward.close();
      return 0;
    },
  },
};
