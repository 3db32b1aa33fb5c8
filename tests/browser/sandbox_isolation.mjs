// A hostile sandbox page in Debian's chromium (playwright-core) while alice is signed in
// to the console: it tries to plant and read the console's cookies and to call the
// console's API as her (read /auth/me for the CSRF token, then create a sandbox).
//
// Env: GATEWAY_URL, SESSION (alice's session cookie value), PAGE_URL (the sandbox page
// through the gateway's proxy route). Prints one JSON line with what happened.
import { chromium } from 'playwright-core';
import { goto } from './lib.mjs';

const GW = process.env.GATEWAY_URL;
const SESSION = process.env.SESSION;
const PAGE_URL = process.env.PAGE_URL;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const ctx = await browser.newContext();
  await ctx.addCookies([{
    name: 'gatehouse_session', value: SESSION, url: GW, httpOnly: true, sameSite: 'Lax',
  }]);
  const page = await ctx.newPage();
  await goto(page, PAGE_URL);
  await page.locator('#out[data-done]').waitFor({ timeout: 20_000 });
  const sandboxPage = JSON.parse(await page.locator('#out').innerText());
  // Give any planted cookie time to land, then look at the jar and ask who we are.
  const cookies = (await ctx.cookies(GW)).filter((c) => c.name.startsWith('gatehouse_'));
  const me = await ctx.request.get(`${GW}/auth/me`);
  const meBody = await me.json().catch(() => null);
  console.log(JSON.stringify({
    sandboxPage,
    gatehouseCookies: cookies.map((c) => ({ name: c.name, isAlices: c.value === SESSION })),
    meStatus: me.status(),
    meSubject: meBody?.subject ?? null,
  }));
} finally {
  await browser.close();
}
