// How list commands print: a table (default, with ages instead of timestamps), `--format json`,
// `--format yaml`, a template (`--format '{{id}} {{state}}'`, fields of the JSON objects, dotted
// for nested ones), or `-q` (ids only, one per line, for `xargs` and `$(…)`). `--json` stays the
// machine form of every command and wins over --format.
import type { Options } from './command.js';
import type { Context } from './command.js';
import { table, UsageError } from './output.js';

export const listOptions: Options = { format: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } };
export const LIST_USAGE = '[--format table|json|yaml|<template>] [-q]';

export interface Column<T> {
  header: string;
  value(item: T): string | number | null | undefined;
}

/** "3s", "5m", "2h", "4d" since `iso`; '-' when absent. Times in the future (clock skew) are "0s". */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const seconds = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (!Number.isFinite(seconds)) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** A small YAML writer for JSON values (strings quoted as JSON, which YAML reads). */
export function yaml(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return value.map((v) => `${indent}- ${yaml(v, `${indent}  `).trimStart()}`).join('\n');
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}';
    return entries
      .map(([k, v]) => {
        const nested = v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
        return nested ? `${indent}${k}:\n${yaml(v, `${indent}  `)}` : `${indent}${k}: ${yaml(v)}`;
      })
      .join('\n');
  }
  return JSON.stringify(value ?? null);
}

function field(item: unknown, path: string): unknown {
  let value: unknown = item;
  for (const key of path.split('.')) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  return value;
}

/** `{{id}} {{network.ip}}` filled from one item; unknown fields print as '-', objects as JSON. */
export function fillTemplate(template: string, item: unknown): string {
  return template.replace(/\{\{\s*\.?([A-Za-z0-9_.]+)\s*\}\}/g, (_, path: string) => {
    const value = field(item, path);
    if (value === undefined || value === null) return '-';
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  });
}

/** The item as its JSON form (resource objects carry a client that JSON.stringify leaves out). */
const plain = (item: unknown): unknown => JSON.parse(JSON.stringify(item ?? null));

/** Prints a list as the options ask; `toJson` gives each item's plain JSON form. */
export function printList<T extends { id: string }>(ctx: Context, items: T[], columns: Array<Column<T>>, toJson: (item: T) => unknown = plain): void {
  const format = typeof ctx.values.format === 'string' ? ctx.values.format : undefined;
  if (ctx.out.json) return ctx.out.result(items.map(toJson));
  if (ctx.values.quiet === true) return void process.stdout.write(items.map((i) => `${i.id}\n`).join(''));
  if (format === undefined || format === 'table') {
    return void process.stdout.write(`${table(columns.map((c) => c.header), items.map((i) => columns.map((c) => c.value(i))))}\n`);
  }
  if (format === 'json') return void process.stdout.write(`${JSON.stringify(items.map(toJson), null, 2)}\n`);
  if (format === 'yaml') return void process.stdout.write(`${yaml(items.map(toJson))}\n`);
  if (!format.includes('{{')) throw new UsageError(`--format takes table, json, yaml or a template such as '{{id}} {{createdAt}}', got ${JSON.stringify(format)}`);
  process.stdout.write(items.map((i) => `${fillTemplate(format, toJson(i))}\n`).join(''));
}
