#!/usr/bin/env node
// Renders branch latency from a bench results file as an SVG line chart: against N (bench/run.mjs),
// or, for a bench/memfork.mjs result, against the parent's written memory (one line per N and side).
// Usage: node bench/chart.mjs bench/results/latest.json docs/branch-latency.svg
//        node bench/chart.mjs bench/results/memfork.json docs/branch-memory.svg
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output] = process.argv.slice(2);
const res = JSON.parse(readFileSync(input, 'utf8'));
const byMemory = res.rows.some((r) => r.mb !== undefined);
if (byMemory) res.rows = res.rows.filter((r) => !r.restoreOnly);
const COLORS = ['#d33', '#36c', '#393', '#c80', '#839', '#088', '#555', '#a55', '#5a5'];
let ns, series, title, xLabel;
if (byMemory) {
  const mbs = [...new Set(res.rows.map((r) => r.mb))].sort((a, b) => a - b);
  const widths = [...new Set(res.rows.map((r) => r.n))].sort((a, b) => a - b);
  const sides = [['faas', (r) => r.p50], ...Object.keys(res.rows[0].floors).map((k) => [k, (r) => r.floors[k].p50])];
  ns = mbs;
  series = widths.flatMap((n, wi) => sides.map(([label, get], si) => ({
    label: `N=${n} ${label}`,
    color: COLORS[wi % COLORS.length],
    dash: si === 0 ? '' : si === 1 ? '6 3' : '2 3',
    values: mbs.map((mb) => get(res.rows.find((r) => r.mb === mb && r.n === n))),
  })));
  title = `Live branch latency (p50, ms) against the parent's written memory — ${res.machine.cores} cores, ${res.date.slice(0, 10)}`;
  xLabel = (mb) => `${mb} MB`;
} else {
  const rows = res.rows.filter((r) => r.name.startsWith('live branch N='));
  ns = rows.map((r) => Number(/N=(\d+)/.exec(r.name)[1]));
  series = [
    { label: 'faas engine (API, until every child answers)', color: '#d33', values: rows.map((r) => r.p50) },
    ...Object.keys(rows[0]?.floors ?? {}).map((k, i) => ({ label: k, color: ['#36c', '#393'][i] ?? '#888', values: rows.map((r) => r.floors[k].p50) })),
  ];
  title = `Live branch latency (p50, ms) against N — ${res.machine.cores} cores, ${res.date.slice(0, 10)}`;
  xLabel = (n) => `N=${n}`;
}
const W = 640, H = 360, L = 60, B = 50, T = 30, R = 20;
const maxY = Math.max(...series.flatMap((s) => s.values)) * 1.1;
const x = (i) => L + (i * (W - L - R)) / Math.max(1, ns.length - 1);
const y = (v) => H - B - (v / maxY) * (H - B - T);
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${title}</text>\n`;
for (let k = 0; k <= 5; k++) {
  const v = (maxY * k) / 5;
  svg += `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(0)}</text>\n`;
}
ns.forEach((n, i) => (svg += `<text x="${x(i)}" y="${H - B + 18}" text-anchor="middle">${xLabel(n)}</text>\n`));
series.forEach((s, si) => {
  svg += `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${s.values.map((v, i) => `${x(i)},${y(v)}`).join(' ')}"/>\n`;
  s.values.forEach((v, i) => (svg += `<circle cx="${x(i)}" cy="${y(v)}" r="3" fill="${s.color}"/>\n`));
  svg += `<rect x="${L + 10}" y="${T + 8 + si * 18}" width="12" height="3" fill="${s.color}"/><text x="${L + 28}" y="${T + 13 + si * 18}">${s.label}</text>\n`;
});
writeFileSync(output, svg + '</svg>\n');
console.log(`wrote ${output}`);
