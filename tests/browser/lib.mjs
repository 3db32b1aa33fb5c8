// Helpers shared by the browser tests.

/** Chromium's network errors that mean "the machine's network changed", not "the server failed". */
const NETWORK_CHANGED = /net::ERR_NETWORK_CHANGED/;

/**
 * `page.goto(url)`, sent again (up to three times in all) when Chromium aborts the
 * navigation with ERR_NETWORK_CHANGED: Docker creating or removing a container's
 * interface on this machine makes Chromium abort requests in flight, as a user's browser
 * does when Wi-Fi changes. Any other failure is thrown at once.
 */
export async function goto(page, url, options) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await page.goto(url, options);
    } catch (e) {
      if (attempt >= 3 || !NETWORK_CHANGED.test(String(e?.message ?? e))) throw e;
      console.error(`navigation to ${url} aborted by a network change; retrying (${attempt})`);
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}
