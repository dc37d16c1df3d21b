// faas key create|list|revoke|show and faas token create
import { credentialsPath } from '../core/config.js';
import type { ApiKey, CreatedKey, Token } from '../resources/keys.js';
import { arg, int, type CommandGroup } from './command.js';
import { age, LIST_USAGE, listOptions, printList, type Column } from './listing.js';

const KEY_COLUMNS: Array<Column<ApiKey>> = [
  { header: 'ID', value: (k) => k.id },
  { header: 'NAME', value: (k) => k.name },
  { header: 'ADMIN', value: (k) => (k.admin ? 'yes' : 'no') },
  { header: 'AGE', value: (k) => age(k.createdAt) },
];

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
    usage: LIST_USAGE,
    summary: 'List active API keys (admin keys only; no secrets; AGE since created)',
    options: listOptions,
    async run(ctx) {
      printList(ctx, await ctx.client().keys.list(), KEY_COLUMNS);
    },
  },
  show: {
    usage: '',
    summary: 'Print the API key this CLI uses and where it comes from (to log in at /login in a browser)',
    async run(ctx) {
      const http = ctx.client().http;
      const source = ctx.values['api-key'] ? '--api-key' : process.env.FAAS_API_KEY ? 'FAAS_API_KEY' : credentialsPath();
      const shown = { apiKey: http.apiKey, source, endpoint: http.endpoint, loginUrl: `${http.endpoint}/login` };
      ctx.out.result(shown, (s: typeof shown) => `${s.apiKey}\n(from ${s.source}; log in at ${s.loginUrl})`);
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
