// The shape of a CLI command and the helpers the command files share.
import type { ParseArgsConfig } from 'node:util';
import { FaaSClient } from '../client.js';
import { Output, UsageError } from './output.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Context {
  out: Output;
  args: string[];
  values: Values;
  /** The SDK client, built on first use (engine commands may not need a key). */
  client(): FaaSClient;
}

export interface Command {
  /** Argument synopsis after `faas <group> <action>`. */
  usage: string;
  summary: string;
  options?: Options;
  /**
   * After this many positionals, every further word is a positional too (options included), so
   * `faas instance exec I ls -la` passes `-la` to ls: the words after the program are its own.
   */
  passthroughAfter?: number;
  /** Returns the exit code (default 0). */
  run(ctx: Context): Promise<number | void>;
}

export type CommandGroup = Record<string, Command>;

export function arg(ctx: Context, index: number, name: string): string {
  const value = ctx.args[index];
  if (value === undefined) throw new UsageError(`missing <${name}>`);
  return value;
}

export function str(ctx: Context, name: string): string | undefined {
  const value = ctx.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function int(ctx: Context, name: string): number | undefined {
  const value = str(ctx, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(value)}`);
  return n;
}

/** `--metadata a=1 --metadata b=2` -> {a: '1', b: '2'}; undefined when none given. */
export function pairs(ctx: Context, name: string): Record<string, string> | undefined {
  const value = ctx.values[name];
  const list = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  if (list.length === 0) return undefined;
  const result: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${name} takes KEY=VALUE, got ${JSON.stringify(item)}`);
    result[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return result;
}

export const metadataOption: Options = { metadata: { type: 'string', multiple: true, short: 'm' } };
