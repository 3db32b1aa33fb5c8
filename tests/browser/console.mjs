// End to end: the console in Debian's chromium (playwright-core, executablePath) against
// the whole stack the Rust test started (dev IdP, gateway, backend, Docker).
//
// Env: GATEWAY_URL, BACKEND_KEY (must never reach the browser), SHOTS (screenshot folder),
// TEST_IMAGE. Prints one JSON line with what it checked; exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { goto } from './lib.mjs';
import fs from 'node:fs';
import assert from 'node:assert/strict';

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
const report = { screenshots: SHOTS };

async function signIn(user, width = 1280) {
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: GW });
  const page = await ctx.newPage();
  page.on('response', async (r) => {
    try {
      const body = await r.text();
      if (KEY && body.includes(KEY)) leaks.push(r.url());
    } catch { /* bodies of redirects and aborted requests are not readable */ }
  });
  await goto(page, `${GW}/console/`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/interaction\//);
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', 'any-password');
  await page.locator('button[type=submit]').first().click();
  await page.waitForURL(`${GW}/console/**`);
  await page.getByRole('heading', { name: 'Sandboxes', level: 1 }).waitFor();
  await page.getByTestId('user-subject').filter({ hasText: user }).waitFor();
  return { ctx, page };
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

// alice (team-a, operator): create → Running → renew → endpoint → proxy.
const alice = await signIn('alice');
await shot(alice.page, '01-list-alice-empty');
await alice.page.getByRole('button', { name: 'New sandbox' }).click();
await alice.page.getByRole('textbox', { name: 'Image' }).fill(IMAGE);
await alice.page.getByRole('textbox', { name: 'Entrypoint' }).fill('httpd -f -p 8080 -h /www');
await alice.page.getByRole('textbox', { name: 'Timeout (seconds)' }).fill('30');
await alice.page.getByRole('textbox', { name: 'CPU' }).fill('500m');
await alice.page.getByRole('textbox', { name: 'Memory' }).fill('64Mi');
await alice.page.getByRole('button', { name: 'Create sandbox', exact: true }).click();
await alice.page.getByTestId('timeout-error').waitFor();
await shot(alice.page, '02-create-validation');
await alice.page.getByRole('textbox', { name: 'Timeout (seconds)' }).fill('600');
await alice.page.getByRole('button', { name: 'Create sandbox', exact: true }).click();
await alice.page.getByRole('heading', { name: 'Sandbox running' }).waitFor({ timeout: 60_000 });
const id = (await alice.page.getByTestId('created-id').innerText()).trim();
report.sandbox = id;
await shot(alice.page, '03-create-running');
await alice.page.getByRole('link', { name: 'View sandbox' }).click();
await alice.page.getByRole('region', { name: 'Overview' }).waitFor();
const expiryBefore = await alice.page.getByTestId('expiry').innerText();
await alice.page.getByRole('combobox', { name: 'Extend by' }).selectOption({ label: '4 hours' });
await alice.page.getByRole('button', { name: 'Renew', exact: true }).click();
await alice.page.getByTestId('announcer').filter({ hasText: 'renewed' }).waitFor();
report.expiryBefore = expiryBefore;
report.expiryAfter = await alice.page.getByTestId('expiry').innerText();
// The endpoint of port 8080 is listed up front: no button to press.
const endpointBox = alice.page.getByRole('textbox', { name: /Endpoint URL/ });
await endpointBox.waitFor();
const endpoint = await endpointBox.inputValue();
assert.ok(endpoint.includes(`/sandboxes/${id}/proxy/8080`), endpoint);
assert.ok(endpoint.startsWith(GW.replace('http://', '')) || endpoint.startsWith(GW), endpoint);
await alice.page.getByRole('button', { name: 'Copy', exact: true }).click();
const copied = await alice.page.evaluate(() => navigator.clipboard.readText());
assert.ok(copied.includes(`/sandboxes/${id}/proxy/8080`), copied);
report.endpoint = copied;
await shot(alice.page, '04-detail-alice');
const [popup] = await Promise.all([
  alice.ctx.waitForEvent('page'),
  alice.page.getByRole('button', { name: 'Open via proxy' }).click(),
]);
await popup.waitForLoadState();
for (let i = 0; i < 30 && !(await popup.content()).includes('hello from a gatehouse sandbox'); i++) {
  await popup.waitForTimeout(500);
  await popup.reload();
}
assert.ok((await popup.content()).includes('hello from a gatehouse sandbox'), 'the proxied page');
await shot(popup, '05-proxied-page');
await popup.close();

// bob (team-a, read_only): sees team-a's sandbox, mutating actions disabled; the API says 403.
const bob = await signIn('bob');
await bob.page.locator(`[data-testid=sandbox-row][data-sandbox-id="${id}"]`).waitFor();
assert.equal(await bob.page.getByRole('button', { name: 'New sandbox' }).getAttribute('aria-disabled'), 'true');
await shot(bob.page, '06-list-bob');
await bob.page.getByRole('link', { name: id }).click();
await bob.page.getByRole('region', { name: 'Overview' }).waitFor();
for (const name of ['Renew', 'Delete', 'Pause']) {
  const b = bob.page.getByRole('button', { name, exact: true });
  const disabled = (await b.getAttribute('aria-disabled')) === 'true' || (await b.isDisabled());
  assert.ok(disabled, `${name} is disabled for bob`);
}
await shot(bob.page, '07-detail-bob');
const direct = await bob.page.evaluate(async (sid) => {
  const me = await (await fetch('/auth/me')).json();
  const r = await fetch(`/v1/sandboxes/${sid}`, { method: 'DELETE', headers: { 'X-CSRF-Token': me.csrfToken } });
  return { status: r.status, body: await r.json() };
}, id);
assert.equal(direct.status, 403, JSON.stringify(direct));
report.bobDirectDelete = direct;

// carol (team-b, operator): never sees team-a's sandbox.
const carol = await signIn('carol');
await carol.page.waitForTimeout(500);
assert.equal(await carol.page.locator(`[data-sandbox-id="${id}"]`).count(), 0);
await shot(carol.page, '08-list-carol');
await goto(carol.page, `${GW}/console/sandboxes/${id}`);
await carol.page.waitForTimeout(1000);
assert.equal(await carol.page.getByRole('region', { name: 'Overview' }).count(), 0, 'carol cannot open it');

// The list at phone width, then alice deletes.
const phone = await alice.ctx.newPage();
await phone.setViewportSize({ width: 375, height: 800 });
await goto(phone, `${GW}/console/`);
await phone.locator(`[data-sandbox-id="${id}"]`).waitFor();
await shot(phone, '09-list-phone');
await goto(alice.page, `${GW}/console/`);
await alice.page.locator(`[data-sandbox-id="${id}"]`).waitFor();
await shot(alice.page, '10-list-alice');
await alice.page.getByRole('link', { name: id }).click();
await alice.page.getByRole('region', { name: 'Overview' }).waitFor();
await alice.page.getByRole('button', { name: 'Delete', exact: true }).click();
await alice.page.getByRole('dialog', { name: 'Delete this sandbox?' }).waitFor();
await shot(alice.page, '11-delete-confirm');
await alice.page.getByRole('button', { name: 'Delete sandbox' }).click();
// The delete confirmation returns to the list; the sandbox is gone within seconds (the
// engine removes the container first, so poll rather than guess a delay).
await alice.page.waitForURL(`${GW}/console/`);
let gone = 0;
for (let i = 0; i < 50 && gone !== 404; i++) {
  gone = await alice.page.evaluate(async (sid) => (await fetch(`/v1/sandboxes/${sid}`)).status, id);
  if (gone !== 404) await alice.page.waitForTimeout(200);
}
assert.equal(gone, 404);

assert.deepEqual(leaks, [], `responses carrying the API key: ${leaks.join(', ')}`);
await browser.close();
console.log(JSON.stringify(report));
