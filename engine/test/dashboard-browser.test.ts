// The dashboard and /docs in a real browser: Debian's chromium (scripts/install.sh installs it)
// driven by puppeteer-core, against a real engine and real sandboxes. A person logs in, starts an
// instance, types in its terminal and reads the output, branches it and sees the tree grow, opens
// /docs; a page of another origin and another key try their luck. Screenshots are kept in
// test-artifacts/dashboard-<time>/ (printed), gitignored.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { startEngine, type TestEngine } from './harness.js';

const CHROMIUM = process.env.FAAS_CHROMIUM ?? '/usr/bin/chromium';
const artifacts = join(fileURLToPath(new URL('../../../test-artifacts/', import.meta.url)), `dashboard-${new Date().toISOString().replace(/[:.]/g, '-')}`);

let t: TestEngine;
let browser: Browser;
let page: Page;
let evil: Server;
let instanceId: string;

const shot = (name: string, fullPage = true) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage });
const nodesInTree = () => page.$eval('svg.tree', (el) => Number(el.getAttribute('data-nodes')));

async function login(p: Page, key: string) {
  await p.goto(`${t.url}/dashboard`);
  await p.waitForSelector('input[name=key]');
  await p.type('input[name=key]', key);
  await Promise.all([p.waitForNavigation(), p.click('button[type=submit]')]);
}

describe('dashboard in headless chromium', () => {
  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    console.log(`screenshots: ${artifacts}`);
    t = await startEngine();
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Root in a container: chromium's own sandbox needs user namespaces it may not get.
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 1000 });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && console.log(`browser console: ${m.text()}`));
  });
  after(async () => {
    await browser?.close();
    evil?.close();
    await t?.close();
  });

  it('without a session the dashboard is the login page; a wrong key says so', async () => {
    await page.goto(`${t.url}/dashboard`);
    assert.equal(new URL(page.url()).pathname, '/login');
    const hint = await page.$eval('.hint', (el) => el.textContent ?? '');
    assert.match(hint, /faas key show/);
    await page.type('input[name=key]', 'not-a-key');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.match(await page.$eval('.error', (el) => el.textContent ?? ''), /not valid/);
    await shot('01-login-error');
  });

  it('logs in: an HttpOnly SameSite=Strict cookie, the key nowhere in the page or its storage', async () => {
    await page.$eval('input[name=key]', (el) => ((el as HTMLInputElement).value = ''));
    await page.type('input[name=key]', t.key);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.equal(new URL(page.url()).pathname, '/dashboard');
    await page.waitForFunction(() => document.querySelector('header .who')?.textContent?.includes('key_'));
    const cookies = await browser.cookies();
    const session = cookies.find((c) => c.name === 'faas_session');
    assert.ok(session);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.ok(!page.url().includes(t.key));
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    assert.ok(!stored.includes(t.key));
    assert.equal(await page.evaluate(() => document.cookie.includes('faas_session')), false);
  });

  it('starts an instance, and its terminal runs what is typed', async () => {
    const base = await t.api('POST', '/v1/snapshots', {});
    assert.equal(base.status, 201);
    // The snapshot.created event refreshes the page's lists.
    await page.waitForFunction((id) => [...document.querySelectorAll('form.start option')].some((o) => (o as HTMLOptionElement).value === id), {}, base.body.id);
    await page.select('form.start select', base.body.id);
    await page.click('form.start button');
    await page.waitForSelector('.instance-panel .terminal[data-state=open]', { timeout: 120_000 });
    instanceId = await page.$eval('.instance-panel', (el) => el.getAttribute('data-id')!);
    assert.match(instanceId, /^inst_/);
    await page.click('.instance-panel .terminal');
    await page.keyboard.type('echo dash-$((6*7))\n');
    await page.waitForFunction(() => document.querySelector('.instance-panel .xterm-rows')?.textContent?.includes('dash-42'), { timeout: 60_000 });
    await shot('02-terminal');
  });

  it('branches the instance from its row and the tree grows', async () => {
    await page.waitForFunction((id) => document.querySelector(`svg.tree g[data-id="${id}"]`), {}, instanceId);
    const before = await nodesInTree();
    await page.click(`tr[data-id="${instanceId}"] .actions button`); // Branch
    // A branch is a snapshot of the instance and an instance started from it: two more nodes.
    await page.waitForFunction((n) => Number(document.querySelector('svg.tree')?.getAttribute('data-nodes')) >= n + 2, { timeout: 120_000 }, before);
    const branched = await t.api('GET', '/v1/instances');
    const child = branched.body.data.find((i: { id: string; snapshotId: string }) => i.id !== instanceId);
    assert.ok(child, 'the branch started an instance');
    await page.waitForSelector(`svg.tree g[data-id="${child.id}"]`);
    // Clicking a node offers its actions.
    await page.click(`svg.tree g[data-id="${child.id}"]`);
    await page.waitForSelector(`.node-actions[data-for="${child.id}"]`);
    await shot('03-tree-after-branch');
  });

  it("an instance's files (upload, list, download), processes and services", async () => {
    await page.click(`tr[data-id="${instanceId}"] a`);
    await page.waitForSelector(`.instance-panel[data-id="${instanceId}"]`);
    const tab = async (name: string) => {
      const buttons = await page.$$('.instance-panel nav button');
      for (const b of buttons) if ((await b.evaluate((el) => el.textContent)) === name) await b.click();
    };
    await tab('files');
    await page.waitForSelector('.files table');
    const local = join(artifacts, 'upload-me.txt');
    writeFileSync(local, 'uploaded through the dashboard\n');
    const input = (await page.$('.files .upload input'))!;
    await (input as import('puppeteer-core').ElementHandle<HTMLInputElement>).uploadFile(local);
    await page.waitForFunction(() => [...document.querySelectorAll('.files a')].some((a) => a.textContent === 'upload-me.txt'));
    const read = await t.api('GET', `/v1/instances/${instanceId}/files/read?path=/root/upload-me.txt`);
    assert.equal(read.body, 'uploaded through the dashboard\n');
    const downloaded = await page.$$eval('.files a', (links) =>
      fetch((links.find((a) => a.textContent === 'upload-me.txt') as HTMLAnchorElement).href).then((r) => r.text()),
    );
    assert.equal(downloaded, 'uploaded through the dashboard\n');
    await shot('03a-files');

    assert.equal((await t.api('POST', `/v1/instances/${instanceId}/processes`, { command: 'sleep 600' })).status, 201);
    await tab('processes');
    await page.waitForFunction(() => document.querySelector('.processes table')?.textContent?.includes('sleep 600'));
    await tab('services');
    await page.waitForSelector('.services form.expose');
    await page.type('.services input[name=name]', 'web');
    await page.type('.services input[name=port]', '8080');
    await page.click('.services form.expose button');
    await page.waitForFunction(() => document.querySelector('.services table')?.textContent?.includes('8080'));
    const services = await t.api('GET', `/v1/instances/${instanceId}/services`);
    assert.equal(services.body.data[0].name, 'web');
    await shot('03b-services');
  });

  it('diffs two snapshots picked in the tree', async () => {
    const snaps = (await t.api('GET', '/v1/snapshots')).body.data as { id: string; instanceId: string | null }[];
    assert.ok(snaps.length >= 2);
    await page.click(`svg.tree g[data-id="${snaps[1].id}"]`);
    await page.waitForSelector(`.node-actions[data-for="${snaps[1].id}"]`);
    const clickButton = async (prefix: string) => {
      for (const b of await page.$$('.node-actions button')) if ((await b.evaluate((el) => el.textContent ?? '')).startsWith(prefix)) return b.click();
      throw new Error(`no button ${prefix}`);
    };
    await clickButton('Diff from here');
    await page.click(`svg.tree g[data-id="${snaps[0].id}"]`);
    await page.waitForSelector(`.node-actions[data-for="${snaps[0].id}"]`);
    await clickButton('Diff snap_');
    await page.waitForFunction(() => document.querySelector('.output')?.textContent?.includes('files:'), { timeout: 120_000 });
    await shot('03c-diff');
  });

  it('the events stream shows what happened', async () => {
    await page.waitForFunction(() => document.querySelector('ol.events')?.textContent?.includes('instance.ready'));
  });

  it('opens /docs after login, with the address it was reached at', async () => {
    await page.goto(`${t.url}/docs`);
    // Redoc renders the whole contract in the page; polled, not per animation frame.
    await page.waitForFunction(() => document.body.innerText.includes('HTTP API of the faas engine'), { polling: 500, timeout: 180_000 });
    const servers = await page.evaluate(async () => (await (await fetch('/v1/openapi.json')).json()).servers);
    assert.equal(servers[0].url, t.url);
    await shot('04-docs', false); // the rendered reference is too tall for one full-page image
  });

  it('a page of another origin cannot act with the cookie', async () => {
    // Same site (127.0.0.1), another port: the SameSite cookie is sent, so the engine's own
    // checks (Origin, CSRF token) are what refuse it.
    evil = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<form id=f method=post action="${t.url}/v1/instances/${instanceId}/stop"></form>
<script>fetch(${JSON.stringify(t.url + '/v1/instances')}, {credentials:'include'}).then(r => r.text()).then(x => document.title = 'read:' + x, e => document.title = 'blocked'); setTimeout(() => f.submit(), 300)</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const evilUrl = `http://127.0.0.1:${(evil.address() as { port: number }).port}/`;
    const attacker = await browser.newPage();
    await attacker.goto(evilUrl);
    await attacker.waitForFunction(() => document.title !== '');
    assert.equal(await attacker.title(), 'blocked'); // no CORS: the page cannot read the answer
    await attacker.waitForNavigation().catch(() => undefined);
    assert.match(await attacker.evaluate(() => document.body.textContent ?? ''), /unauthorized|cross_origin|another origin/);
    await attacker.screenshot({ path: join(artifacts, '05-cross-origin-refused.png') });
    await attacker.close();
    const still = await t.api('GET', `/v1/instances/${instanceId}`);
    assert.equal(still.body.state, 'ready');
  });

  it("another key's session sees none of this key's instances, and cannot open their terminal", async () => {
    const other = await t.api('POST', '/v1/keys', { name: 'dashboard-other' });
    const context = await browser.createBrowserContext();
    const p = await context.newPage();
    await login(p, other.body.secret);
    await p.waitForFunction(() => document.querySelector('header .who')?.textContent?.includes('key_'));
    const listed = await p.evaluate(async () => (await (await fetch('/v1/instances')).json()).data.length);
    assert.equal(listed, 0);
    assert.equal(await p.$$eval('table.instances tbody tr', (rows) => rows.length), 0);
    const ws = await p.evaluate(
      (id) =>
        new Promise<string>((resolve) => {
          const s = new WebSocket(`ws://${location.host}/v1/instances/${id}/terminal`, ['faas-terminal']);
          s.onopen = () => resolve('open');
          s.onerror = () => resolve('refused');
        }),
      instanceId,
    );
    assert.equal(ws, 'refused');
    await context.close();
  });

  it('logs out: the cookie is gone and the dashboard is the login page again', async () => {
    await page.goto(`${t.url}/dashboard`);
    await page.waitForSelector('header button');
    await Promise.all([page.waitForNavigation(), page.click('header button')]);
    assert.equal(new URL(page.url()).pathname, '/login');
    assert.equal((await browser.cookies()).some((c) => c.name === 'faas_session' && c.value), false);
    await page.goto(`${t.url}/dashboard`);
    assert.equal(new URL(page.url()).pathname, '/login');
  });
});
