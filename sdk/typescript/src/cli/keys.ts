// faas key create|list|revoke and faas token create
import type { ApiKey, CreatedKey, Token } from '../resources/keys.js';
import { arg, int, type CommandGroup } from './command.js';
import { table } from './output.js';

const keyRow = (k: ApiKey) => [k.id, k.name, k.admin ? 'yes' : 'no', k.createdAt];

export const keyCommands: CommandGroup = {
  create: {
    usage: '<name> [--admin]',
    summary: 'Create an API key (admin keys only); its secret is shown once',
    options: { admin: { type: 'boolean' } },
    async run(ctx) {
      const key = await ctx.client().keys.create({ name: arg(ctx, 0, 'name'), admin: ctx.values.admin === true });
      ctx.out.result(key, (k: CreatedKey) => `created ${k.id} (${k.name}${k.admin ? ', admin' : ''})\nsecret: ${k.secret}\nThe secret is not shown again: store it now.`);
    },
  },
  list: {
    usage: '',
    summary: 'List active API keys (admin keys only; no secrets)',
    async run(ctx) {
      const keys = await ctx.client().keys.list();
      ctx.out.result(keys, (list: ApiKey[]) => table(['ID', 'NAME', 'ADMIN', 'CREATED'], list.map(keyRow)));
    },
  },
  revoke: {
    usage: '<key-id>',
    summary: 'Revoke an API key and every token minted from it',
    async run(ctx) {
      const id = arg(ctx, 0, 'key-id');
      await ctx.client().keys.revoke(id);
      ctx.out.result({ id, revoked: true }, () => `revoked ${id}`);
    },
  },
};

export const tokenCommands: CommandGroup = {
  create: {
    usage: '[--expires-in SECONDS]',
    summary: 'Mint a short-lived token that acts as this key (default 3600 s, at most 86400)',
    options: { 'expires-in': { type: 'string' } },
    async run(ctx) {
      const token = await ctx.client().tokens.create({ expiresIn: int(ctx, 'expires-in') });
      ctx.out.result(token, (t: Token) => `${t.token}\n(expires ${t.expiresAt})`);
    },
  },
};
