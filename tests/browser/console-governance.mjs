// End to end, governance: personal API keys, the audit log and RBAC bindings in the console
// (Debian chromium, playwright-core) against the stack tests/e2e/console_governance.rs
// started (dev IdP, gateway with its SQLite governance store, backend, Docker).
//
// alice (team-a, operator) creates a key in the console; it is shown once; the real Python
// SDK uses it and sees exactly what alice sees (her team's sandbox, not carol's); she
// revokes it and the SDK is refused. She reads her team's audit events (the key's creation
// among them), follows new ones live, and has no Bindings page. dana (service_admin) adds
// a binding for erin in the Bindings page (an unknown role is refused at its field), and
// erin's role changes.
//
// Env: GATEWAY_URL, BACKEND_KEY (must never reach the browser), SHOTS, TEST_IMAGE,
// PYTHON (the venv's, with the OpenSandbox SDK), SDK_SCRIPT. Prints one JSON line with
// what it checked; exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { goto } from './lib.mjs';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const GW = process.env.GATEWAY_URL;
const KEY = process.env.BACKEND_KEY;
const SHOTS = process.env.SHOTS;
const IMAGE = process.env.TEST_IMAGE || 'gatehouse/busybox:latest';
const DOMAIN = GW.replace(/^https?:\/\//, '');
fs.mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const leaks = [];
const report = { screenshots: SHOTS, axe: [] };

async function signIn(user) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: GW });
  const page = await ctx.newPage();
  page.on('response', async (r) => {
    try {
      if (KEY && (await r.text()).includes(KEY)) leaks.push(r.url());
    } catch { /* redirects and aborted requests have no readable body */ }
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

/** axe-core on the page as it is now: zero violations. */
async function axe(page, name) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`));
  report.axe.push({ page: name, violations: violations.length });
  assert.deepEqual(violations, [], `axe-core violations on ${name}`);
}

/** A call to the gateway from the signed-in page (session cookie + CSRF token). */
async function api(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const me = await (await fetch('/auth/me')).json();
    const r = await fetch(path, {
      method,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrfToken },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, json };
  }, { method, path, body });
}

async function createSandbox(page, name) {
  const r = await api(page, 'POST', '/v1/sandboxes', {
    image: { uri: IMAGE }, entrypoint: ['sleep', '600'], timeout: 600, metadata: { name },
  });
  assert.equal(r.status, 202, JSON.stringify(r));
  return r.json.id;
}

/** The real Python SDK with `key`: what it lists and reads. */
async function sdk(key, own, other) {
  const { stdout } = await run(process.env.PYTHON, [process.env.SDK_SCRIPT, DOMAIN, key, own, other], { timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1));
}

const navLinks = async (page) => (await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts()).map((s) => s.trim());

// Two teams' sandboxes: carol's (team-b) and alice's (team-a).
const carol = await signIn('carol');
const carolBox = await createSandbox(carol.page, 'carol-box');
const alice = await signIn('alice');
const aliceBox = await createSandbox(alice.page, 'alice-box');
report.sandboxes = { alice: aliceBox, carol: carolBox };

// alice: Audit log and API keys in the nav, no Bindings.
assert.deepEqual(await navLinks(alice.page), ['Sandboxes', 'Audit log', 'API keys']);

// She creates a key: shown once, copied, then gone from the page.
await alice.page.getByRole('link', { name: 'API keys' }).click();
await alice.page.getByRole('heading', { name: 'API keys', level: 1 }).waitFor();
await alice.page.getByText('You have no API keys yet.').waitFor();
await axe(alice.page, 'keys-empty');
await alice.page.getByRole('button', { name: 'Create key' }).click();
await alice.page.getByTestId('key-name-error').waitFor();
await alice.page.getByLabel('Key name').fill('sdk-laptop');
assert.equal(await alice.page.getByLabel('Role').inputValue(), 'operator');
await alice.page.getByLabel('Expires after').selectOption('30');
await alice.page.getByRole('button', { name: 'Create key' }).click();
const shown = alice.page.getByTestId('new-key');
await shown.waitFor();
await shown.getByText('You will not see it again.').waitFor();
const secret = await alice.page.getByTestId('new-key-value').inputValue();
assert.match(secret, /^gk_[A-Za-z0-9_-]{43}$/);
await shown.getByRole('button', { name: 'Copy' }).click();
await shown.getByText('Copied to the clipboard.').waitFor();
assert.equal(await alice.page.evaluate(() => navigator.clipboard.readText()), secret);
await axe(alice.page, 'keys-created');
await shot(alice.page, 'keys-created');
await alice.page.getByRole('button', { name: 'I have copied it' }).click();
await alice.page.locator('[data-testid=key-row][data-state=active]').waitFor();
assert.ok(!(await alice.page.content()).includes(secret), 'the key is gone from the page');
await alice.page.reload();
await alice.page.locator('[data-testid=key-row]').waitFor();
assert.ok(!(await alice.page.content()).includes(secret), 'the list never shows the key');

// The real SDK with the key is alice: her team's sandbox, not carol's.
const before = await sdk(secret, aliceBox, carolBox);
report.sdkBefore = before;
assert.ok(before.listed_ids.includes(aliceBox), JSON.stringify(before));
assert.ok(!before.listed_ids.includes(carolBox), JSON.stringify(before));
assert.ok(before.own, JSON.stringify(before));
assert.match(before.other_error ?? '', /404|not found/i, JSON.stringify(before));

// Last used shows up in the list (written in the background).
let lastUsed = 'never';
for (let i = 0; i < 40 && lastUsed === 'never'; i++) {
  await alice.page.reload();
  lastUsed = (await alice.page.getByTestId('last-used').first().innerText()).trim();
  if (lastUsed === 'never') await alice.page.waitForTimeout(250);
}
assert.notEqual(lastUsed, 'never');
await shot(alice.page, 'keys-list');

// Revoke with a confirm: the SDK is refused at once.
await alice.page.getByRole('button', { name: 'Revoke sdk-laptop' }).click();
const dialog = alice.page.getByRole('dialog', { name: 'Revoke this key?' });
await dialog.waitFor();
await shot(alice.page, 'keys-revoke-confirm');
await dialog.getByRole('button', { name: 'Revoke key' }).click();
await alice.page.locator('[data-testid=key-row][data-state=revoked]').waitFor();
const after = await sdk(secret, aliceBox, carolBox);
report.sdkAfter = after;
// Revoked now: the Rust test checks it is nowhere in the gateway's log or audit file.
report.revokedKey = secret;
assert.equal(after.listed_ids, undefined, JSON.stringify(after));
assert.match(after.list_error, /401|unauth|api key/i, JSON.stringify(after));
assert.ok(after.own_error, JSON.stringify(after));

// The audit log: her team's events, the key's creation and revocation among them.
await alice.page.getByRole('link', { name: 'Audit log' }).click();
await alice.page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
await alice.page.locator('[data-testid=audit-row][data-action="key:create"]').waitFor();
await alice.page.locator('[data-testid=audit-row][data-action="key:revoke"]').waitFor();
const teams = await alice.page.locator('[data-testid=audit-row] td[data-label=Team]').allInnerTexts();
assert.ok(teams.length >= 3, JSON.stringify(teams));
assert.ok(teams.every((t) => t.trim() === 'team-a'), `only team-a events: ${JSON.stringify(teams)}`);
const all = await alice.page.locator('[data-testid=audit-row]').allInnerTexts();
assert.ok(!all.some((t) => t.includes('carol')), 'no event of carol');
assert.ok(!(await alice.page.content()).includes(secret), 'the key is not in the audit log');
await axe(alice.page, 'audit');
await shot(alice.page, 'audit');
// Filter by action.
await alice.page.getByLabel('Action').fill('key:create');
await alice.page.getByRole('button', { name: 'Apply filters' }).click();
await alice.page.waitForURL(/action=key%3Acreate/);
await alice.page.getByText('1 event').waitFor();
// Another team's events: the gateway's 403, shown.
await alice.page.getByLabel('Team').fill('team-b');
await alice.page.getByRole('button', { name: 'Apply filters' }).click();
await alice.page.getByText("You can read your own team's events only.").waitFor();
// The live tail picks up a new event without a reload.
await alice.page.getByRole('button', { name: 'Clear' }).click();
await alice.page.locator('[data-testid=audit-row][data-action="key:create"]').waitFor();
await alice.page.getByRole('checkbox', { name: /Live tail/ }).check();
const del = await api(alice.page, 'DELETE', `/v1/sandboxes/${aliceBox}`);
assert.equal(del.status, 204, JSON.stringify(del));
await alice.page.locator('[data-testid=audit-row][data-action="sandbox:delete"]').first().waitFor({ timeout: 20_000 });
const firstAction = await alice.page.locator('[data-testid=audit-row]').first().getAttribute('data-action');
assert.equal(firstAction, 'sandbox:delete', 'the new event is on top');

// No Bindings for alice: not in the nav, and the page says so without asking the gateway.
await goto(alice.page, `${GW}/console/bindings`);
await alice.page.getByText(/Your role \(operator\) does not include this page/).waitFor();

// erin (no binding yet): the default role.
const erin = await signIn('erin');
assert.equal((await erin.page.getByTestId('user-role').innerText()).replace('role', '').trim(), 'read_only');

// dana (service_admin through a binding made with `gatehouse rbac`): the Bindings page.
const dana = await signIn('dana');
assert.deepEqual(await navLinks(dana.page), ['Sandboxes', 'Audit log', 'API keys', 'Bindings']);
await dana.page.getByRole('link', { name: 'Bindings' }).click();
await dana.page.getByRole('heading', { name: 'Bindings', level: 1 }).waitFor();
await dana.page.locator('[data-testid=binding-row][data-binding="subject/dana"]').waitFor();
await dana.page.getByLabel('Name').fill('erin');
await dana.page.getByLabel('Role').fill('emperor');
await dana.page.getByRole('button', { name: 'Add binding' }).click();
const roleError = await dana.page.getByTestId('binding-role-error').innerText();
assert.match(roleError, /Unknown role 'emperor'/);
await shot(dana.page, 'bindings-unknown-role');
await dana.page.getByLabel('Role').fill('operator');
await dana.page.getByLabel('Team (optional)').fill('team-e');
await dana.page.getByRole('button', { name: 'Add binding' }).click();
await dana.page.locator('[data-testid=binding-row][data-binding="subject/erin"]').waitFor();
await axe(dana.page, 'bindings');
await shot(dana.page, 'bindings');

// It takes effect: erin is an operator of team-e now (within a second or so).
let erinRole = '';
for (let i = 0; i < 40 && erinRole !== 'operator'; i++) {
  await erin.page.reload();
  await erin.page.getByTestId('user-role').waitFor();
  erinRole = (await erin.page.getByTestId('user-role').innerText()).replace('role', '').trim();
  if (erinRole !== 'operator') await erin.page.waitForTimeout(250);
}
assert.equal(erinRole, 'operator');
assert.equal((await erin.page.getByTestId('user-team').innerText()).replace('team', '').trim(), 'team-e');
report.erinRole = erinRole;

// carol cleans up her sandbox.
assert.equal((await api(carol.page, 'DELETE', `/v1/sandboxes/${carolBox}`)).status, 204);

assert.deepEqual(leaks, [], `responses carrying the backend key: ${leaks.join(', ')}`);
await browser.close();
console.log(JSON.stringify(report));
