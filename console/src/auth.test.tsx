import { describe, expect, it, vi } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { browser, loginHref, safeRedirect } from './App';
import { ALICE, BOB, PROXY_CONFIG, UNAUTHENTICATED, fakeGateway, listReply, sandbox } from './test/gateway';
import { renderApp } from './test/render';

describe('signed out', () => {
  it('offers a Sign in button that returns to the current page', async () => {
    const assign = vi.spyOn(browser, 'assign').mockImplementation(() => {});
    const gw = fakeGateway({ me: UNAUTHENTICATED });
    renderApp(gw, '/console/sandboxes/sb-1?x=1');
    const button = await screen.findByRole('button', { name: 'Sign in' });
    expect(screen.getByRole('heading', { level: 1, name: 'Sign in to Gatehouse' })).toBeTruthy();
    await userEvent.click(button);
    expect(assign).toHaveBeenCalledWith(`/auth/login?return_to=${encodeURIComponent('/console/sandboxes/sb-1?x=1')}`);
    // Only the config and the probe: no API call without a session.
    expect(gw.calls.map((c) => c.path)).toEqual(['/auth/config', '/auth/me']);
  });

  it('shows the auth-proxy misconfiguration state without a retry loop', async () => {
    const gw = fakeGateway({ config: PROXY_CONFIG, me: UNAUTHENTICATED });
    renderApp(gw);
    expect(await screen.findByRole('heading', { level: 1, name: 'Authentication required' })).toBeTruthy();
    expect(
      screen.getByText(
        'Authentication required — this console is behind an auth proxy that did not identify you (auth proxy misconfiguration?).',
      ),
    ).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Sign in' })).toBeNull();
    // Wait well past any polling interval: nothing is asked again by itself.
    await new Promise((r) => setTimeout(r, 300));
    expect(gw.fetch).toHaveBeenCalledTimes(2);
  });

  it('explains an api_key_only gateway', async () => {
    const gw = fakeGateway({ config: { ...PROXY_CONFIG, mode: 'api_key_only' }, me: UNAUTHENTICATED });
    renderApp(gw);
    expect(await screen.findByRole('heading', { name: 'Console sign-in is turned off' })).toBeTruthy();
  });

  it('shows the message when the gateway cannot answer', async () => {
    const gw = fakeGateway({ config: { status: 502, body: { code: 'GATEWAY::UPSTREAM_UNAVAILABLE', message: 'The backend is unavailable.' } } });
    renderApp(gw);
    // In plain words with a next step; the code stays visible for support.
    expect(await screen.findByText('The sandbox service is not reachable right now.')).toBeTruthy();
    expect(screen.getByText('GATEWAY::UPSTREAM_UNAVAILABLE')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Try again' })).toBeTruthy();
  });

  it('goes back to the signed-out state when an API call answers 401', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', UNAUTHENTICATED);
    renderApp(gw);
    expect(await screen.findByRole('button', { name: 'Sign in' })).toBeTruthy();
    expect(screen.getByText('Your session has ended. Sign in again to continue.')).toBeTruthy();
    await new Promise((r) => setTimeout(r, 200));
    // One list call, one probe: the 401 is not retried and /auth/me is not polled.
    expect(gw.calls.filter((c) => c.path === '/v1/sandboxes')).toHaveLength(1);
    expect(gw.calls.filter((c) => c.path === '/auth/me')).toHaveLength(1);
  });
});

describe('signed in header', () => {
  it('shows subject, team and role, and signs out with the CSRF token', async () => {
    const assign = vi.spyOn(browser, 'assign').mockImplementation(() => {});
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply([sandbox({ id: 'sb-1' })]));
    gw.route('POST', '/auth/logout', { status: 200, body: { redirect: 'http://idp.example/logout?x=1' } });
    renderApp(gw);
    const user = await screen.findByRole('group', { name: 'Signed-in user' });
    expect(within(user).getByTestId('user-subject').textContent).toBe('alice');
    expect(within(user).getByTestId('user-team').textContent).toContain('team-a');
    expect(within(user).getByTestId('user-role').textContent).toContain('operator');
    await userEvent.click(within(user).getByRole('button', { name: 'Sign out' }));
    await waitFor(() => expect(assign).toHaveBeenCalledWith('http://idp.example/logout?x=1'));
    const logout = gw.calls.find((c) => c.path === '/auth/logout')!;
    expect(logout.method).toBe('POST');
    expect(logout.headers['x-csrf-token']).toBe(ALICE.csrfToken);
    expect(logout.headers['content-type']).toBe('application/json');
  });

  it('has no sign-out for a trusted-header identity', async () => {
    const gw = fakeGateway({ config: PROXY_CONFIG, me: { ...BOB, csrfToken: null, authMethod: 'trusted_header' } });
    gw.route('GET', '/v1/sandboxes', listReply([]));
    renderApp(gw);
    expect(await screen.findByTestId('user-subject')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Sign out' })).toBeNull();
  });
});

describe('redirect targets', () => {
  it('accepts only local paths and http(s) URLs', () => {
    expect(safeRedirect('/console/')).toBe('/console/');
    expect(safeRedirect('https://idp.example/end?x=1')).toBe('https://idp.example/end?x=1');
    expect(safeRedirect('javascript:alert(1)')).toBe('/console/');
    expect(safeRedirect('//evil.example/')).toBe('/console/');
    expect(safeRedirect(undefined)).toBe('/console/');
  });

  it('builds the login URL from the config, never off-site', () => {
    const cfg = { oidc: true, loginUrl: '/auth/login', mode: 'api_key_and_user' as const };
    expect(loginHref(cfg, '/console/new')).toBe('/auth/login?return_to=%2Fconsole%2Fnew');
    expect(loginHref({ ...cfg, loginUrl: '//evil.example/login' }, '/console/')).toBe('/auth/login?return_to=%2Fconsole%2F');
  });
});
