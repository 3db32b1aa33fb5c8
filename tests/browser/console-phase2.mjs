// End to end, phase 2: debugging a sandbox, the terminal, paused sandboxes, read_only on
// a phone, bulk actions, accessibility (axe-core) and no request to another host. The
// Rust test (tests/e2e/console_browser.rs) started the stack; its sandboxes run the agent.
//
// Env: GATEWAY_URL, BACKEND_KEY (must never reach the browser), SHOTS, TEST_IMAGE. Prints
// one JSON line with what it checked; exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { goto } from './lib.mjs';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const GW = process.env.GATEWAY_URL;
const KEY = process.env.BACKEND_KEY;
const SHOTS = process.env.SHOTS;
const IMAGE = process.env.TEST_IMAGE || 'gatehouse/busybox:latest';
fs.mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const leaks = [];
const external = [];
const axeChecked = [];
const report = { screenshots: SHOTS };

async function signIn(user, width = 1280, height = 900) {
  const ctx = await browser.newContext({ viewport: { width, height } });
  const page = await ctx.newPage();
  ctx.on('request', (r) => {
    const u = new URL(r.url());
    if (!['127.0.0.1', 'localhost'].includes(u.hostname) && u.protocol !== 'data:') external.push(r.url());
  });
  page.on('response', async (r) => {
    try {
      if (KEY && (await r.text()).includes(KEY)) leaks.push(r.url());
    } catch { /* redirects and aborted requests have no readable body */ }
  });
  await goto(page, `${GW}/console/`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/interaction\//);
  await axe(page, `idp-login-${user}`);
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', 'any-password');
  await page.locator('button[type=submit]').first().click();
  await page.waitForURL(`${GW}/console/**`);
  await page.getByRole('heading', { name: 'Sandboxes', level: 1 }).waitFor();
  return { ctx, page };
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** axe-core on the page as it is now (the dev IdP's login page included): zero violations. */
async function axe(page, name) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`));
  axeChecked.push({ page: name, violations: violations.length, ids: violations.map((v) => v.split(":")[0]) });
  assert.deepEqual(violations, [], `axe-core violations on ${name}`);
}

/** A call to the gateway from the signed-in page (session cookie + CSRF token). */
async function api(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const me = await (await fetch('/auth/me')).json();
    const t0 = performance.now();
    const r = await fetch(path, {
      method,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrfToken },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const ms = performance.now() - t0;
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, body: json, ms };
  }, { method, path, body });
}

const create = (page, entrypoint, metadata) => api(page, 'POST', '/v1/sandboxes', {
  image: { uri: IMAGE }, entrypoint, timeout: 600, metadata,
});

// ---- alice (operator, team-a): an empty team list with a call to action ----
const alice = await signIn('alice');
const empty = alice.page.getByTestId('empty-state');
await empty.waitFor();
assert.match(await empty.innerText(), /Team team-a has no sandboxes yet/);
await axe(alice.page, 'list-empty');

// Create through the form, with a name.
await empty.getByRole('button', { name: 'Create a sandbox' }).click();
await alice.page.getByRole('textbox', { name: 'Name' }).fill('web-demo');
await alice.page.getByRole('textbox', { name: 'Entrypoint' }).fill('httpd -f -p 8080 -h /www');
await alice.page.getByRole('textbox', { name: 'Timeout (seconds)' }).fill('600');
// A missing image: plain words and the code, never the engine's registry dial error.
await alice.page.getByRole('textbox', { name: 'Image' }).fill('gatehouse/no-such-image:1');
await alice.page.getByRole('button', { name: 'Create sandbox', exact: true }).click();
const pullError = alice.page.getByRole('alert').filter({ hasText: 'The image could not be found or downloaded.' });
await pullError.waitFor({ timeout: 30_000 });
const pullText = await alice.page.locator('main').innerText();
assert.match(pullText, /DOCKER::SANDBOX_IMAGE_PULL_FAILED/);
assert.doesNotMatch(pullText, /dial tcp|registry-1|no such host|:53/, pullText);
await shot(alice.page, '19-create-missing-image');
await alice.page.getByRole('textbox', { name: 'Image' }).fill(IMAGE);
await axe(alice.page, 'create');
await shot(alice.page, '20-create');
await alice.page.getByRole('button', { name: 'Create sandbox', exact: true }).click();
await alice.page.getByRole('heading', { name: 'Sandbox running' }).waitFor({ timeout: 60_000 });
const id = (await alice.page.getByTestId('created-id').innerText()).trim();
report.sandbox = id;
await alice.page.getByRole('link', { name: 'View sandbox' }).click();
await alice.page.getByRole('region', { name: 'Overview' }).waitFor();
assert.match(await alice.page.locator('h1').innerText(), /web-demo/);
// Ports listed up front, live resources from the agent.
const endpoint = alice.page.getByRole('textbox', { name: 'Endpoint URL (port 8080)' });
await endpoint.waitFor();
assert.ok((await endpoint.inputValue()).includes(`/sandboxes/${id}/proxy/8080`));
await alice.page.getByTestId('resources').waitFor({ timeout: 20_000 });
assert.match(await alice.page.getByTestId('resources').innerText(), /MiB used of/);

// The terminal runs `echo hi` through the agent.
const term = alice.page.getByRole('region', { name: 'Terminal' });
await term.getByRole('textbox', { name: 'Command' }).fill('echo hi');
await term.getByRole('button', { name: 'Run' }).click();
const out = term.getByTestId('terminal-output');
for (let i = 0; i < 50 && !/exit code 0/.test(await out.innerText()); i++) await alice.page.waitForTimeout(200);
const termText = await out.innerText();
assert.match(termText, /\$ echo hi\nhi\nexit code 0/, termText);
report.terminal = termText;
await axe(alice.page, 'detail-running');
await shot(alice.page, '21-detail-running');

// ---- a failing sandbox: the reason in plain words, and its logs ----
const failing = await create(alice.page, ['sh', '-c', 'echo "config.yaml is missing"; exit 3'], { name: 'broken-job' });
assert.equal(failing.status, 202, JSON.stringify(failing));
const failedId = failing.body.id;
await goto(alice.page, `${GW}/console/sandboxes/${failedId}`);
const explained = alice.page.getByTestId('status-explained');
await explained.waitFor({ timeout: 60_000 });
for (let i = 0; i < 60 && !/exit code 3/.test(await explained.innerText()); i++) await alice.page.waitForTimeout(500);
assert.match(await explained.innerText(), /stopped with an error \(exit code 3\)/);
const logs = alice.page.getByTestId('sandbox-logs');
await logs.waitFor({ timeout: 20_000 });
for (let i = 0; i < 20 && !/config.yaml is missing/.test(await logs.innerText()); i++) await alice.page.waitForTimeout(500);
assert.match(await logs.innerText(), /config.yaml is missing/);
await axe(alice.page, 'detail-failed');
await shot(alice.page, '22-detail-failed');

// ---- paused: proxy actions disabled with the reason; the proxy answers at once ----
await goto(alice.page, `${GW}/console/sandboxes/${id}`);
await alice.page.getByRole('region', { name: 'Overview' }).waitFor();
await alice.page.getByRole('button', { name: 'Pause', exact: true }).click();
await alice.page.locator('.page-head [data-state="Paused"]').waitFor({ timeout: 30_000 });
const open = alice.page.getByRole('button', { name: 'Open via proxy' });
await open.waitFor();
assert.equal(await open.getAttribute('aria-disabled'), 'true');
const pausedReason = alice.page.getByRole('region', { name: 'Ports' }).getByTestId('disabled-reason');
assert.ok(await pausedReason.isVisible());
assert.match(await pausedReason.innerText(), /paused: resume it/);
const proxied = await api(alice.page, 'GET', `/v1/sandboxes/${id}/proxy/8080/`);
assert.equal(proxied.status, 409, JSON.stringify(proxied));
assert.match(proxied.body.message, /paused/);
report.pausedProxyMs = proxied.ms;
await axe(alice.page, 'detail-paused');
await shot(alice.page, '23-detail-paused');
await alice.page.getByRole('button', { name: 'Resume', exact: true }).click();
await alice.page.locator('.page-head [data-state="Running"]').waitFor({ timeout: 30_000 });

// ---- bob (read_only, team-a) on a 390 px phone: first row near the top, reasons inline ----
const bob = await signIn('bob', 390, 844);
const firstRow = bob.page.getByTestId('sandbox-row').first();
await firstRow.waitFor();
const box = await firstRow.boundingBox();
report.phoneFirstRowY = box.y;
assert.ok(box.y < 500, `first row at ${box.y}px`);
assert.equal(await bob.page.getByRole('checkbox', { name: /^Select/ }).count(), 0, 'no selection for read_only');
await axe(bob.page, 'list-phone-bob');
await shot(bob.page, '24-list-phone-bob');
await goto(bob.page, `${GW}/console/sandboxes/${id}`);
await bob.page.getByRole('region', { name: 'Overview' }).waitFor();
const reasons = bob.page.locator('.toolbar').getByTestId('disabled-reason');
assert.ok((await reasons.count()) >= 3);
for (const r of await reasons.all()) assert.ok(await r.isVisible(), 'reason visible without hover');
assert.match(await reasons.allInnerTexts().then((t) => t.join(' ')), /does not allow deleting sandboxes/);
assert.equal(await bob.page.getByRole('combobox', { name: 'Extend by' }).isDisabled(), true);
assert.equal(await bob.page.getByRole('region', { name: 'Metadata' }).getByRole('textbox', { name: 'Key' }).isDisabled(), true);
assert.equal(await bob.page.getByRole('region', { name: 'Terminal' }).count(), 0);
await axe(bob.page, 'detail-phone-bob');
await shot(bob.page, '25-detail-phone-bob');

// ---- bulk delete of three, with the count typed ----
const batch = [];
for (let i = 1; i <= 3; i++) {
  const r = await create(alice.page, ['sleep', '600'], { name: `batch-${i}`, batch: 'b1' });
  assert.equal(r.status, 202, JSON.stringify(r));
  batch.push(r.body.id);
}
await goto(alice.page, `${GW}/console/?meta=batch%3Db1`);
for (const b of batch) await alice.page.locator(`[data-sandbox-id="${b}"]`).waitFor();
assert.equal(await alice.page.getByTestId('sandbox-row').count(), 3, 'only the filtered three');
await alice.page.getByRole('checkbox', { name: 'Select all on this page' }).check();
await alice.page.getByRole('button', { name: 'Delete selected' }).click();
const dialog = alice.page.getByRole('dialog', { name: 'Delete 3 sandboxes?' });
await dialog.waitFor();
assert.equal(await dialog.getByRole('button', { name: 'Delete 3' }).getAttribute('aria-disabled'), 'true');
await dialog.getByRole('textbox', { name: 'Type 3 to confirm' }).fill('3');
await axe(alice.page, 'bulk-confirm');
await shot(alice.page, '26-bulk-confirm');
await dialog.getByRole('button', { name: 'Delete 3' }).click();
const results = alice.page.getByTestId('bulk-results');
await results.waitFor({ timeout: 30_000 });
const lines = await results.getByRole('listitem').allInnerTexts();
assert.equal(lines.length, 3);
report.bulkDeleted = lines.filter((l) => l.endsWith('deleted')).length;
await alice.page.getByTestId('toast').filter({ hasText: 'Deleted 3 of 3' }).waitFor();
await shot(alice.page, '27-bulk-results');
for (const b of batch) {
  let s = 0;
  for (let i = 0; i < 50 && s !== 404; i++) {
    s = (await api(alice.page, 'GET', `/v1/sandboxes/${b}`)).status;
    if (s !== 404) await alice.page.waitForTimeout(200);
  }
  assert.equal(s, 404, `${b} deleted`);
}

// ---- the list with names, a delete from the detail page shows a toast ----
await goto(alice.page, `${GW}/console/`);
await alice.page.locator(`[data-sandbox-id="${id}"]`).getByTestId('sandbox-name').filter({ hasText: 'web-demo' }).waitFor();
await axe(alice.page, 'list-alice');
await shot(alice.page, '28-list-alice');
await goto(alice.page, `${GW}/console/sandboxes/${failedId}`);
await alice.page.getByRole('region', { name: 'Overview' }).waitFor();
await alice.page.getByRole('button', { name: 'Delete', exact: true }).click();
await alice.page.getByRole('button', { name: 'Delete sandbox' }).click();
await alice.page.waitForURL(`${GW}/console/`);
await alice.page.getByTestId('toast').filter({ hasText: 'broken-job' }).waitFor();

// ---- sign-out goes back to the console without a page to click through ----
await alice.page.getByRole('button', { name: 'Sign out' }).click();
await alice.page.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: 15_000 });
assert.ok(alice.page.url().startsWith(GW), alice.page.url());

assert.deepEqual(external, [], `requests to another host: ${external.join(', ')}`);
assert.deepEqual(leaks, [], `responses carrying the API key: ${leaks.join(', ')}`);
report.axe = axeChecked;
await browser.close();
console.log(JSON.stringify(report));
