// Bundles the dashboard (preact + xterm.js) and the login page's styles into dist/, which the
// engine serves under /dashboard/assets/. Run by `npm run build --workspaces` (scripts/install.sh).
import { build } from 'esbuild';
import { statSync } from 'node:fs';

const result = await build({
  entryPoints: { app: 'src/main.jsx', login: 'src/login.css' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  outdir: 'dist',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
for (const file of Object.keys(result.metafile.outputs)) console.log(`${file} ${(statSync(file).size / 1024).toFixed(1)} KiB`);
