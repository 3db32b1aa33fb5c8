import { beforeEach, describe, expect, it, vi } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ALICE, BOB, OIDC_CONFIG, fakeGateway, listReply, sandbox } from '../test/gateway';
import { renderApp } from '../test/render';
import { renewTarget, resetPauseSupportForTests } from './SandboxDetail';

const SB = sandbox({
  id: 'sb-1',
  status: { state: 'Running', reason: 'container_running', message: 'Sandbox is up.' },
  metadata: { 'access.owner': 'alice.4kq0', 'access.team': 'team-a.99', project: 'apollo' },
});

function gateway(me = ALICE, sb = SB) {
  const gw = fakeGateway({ me });
  gw.route('GET', '/v1/sandboxes/sb-1', { status: 200, body: sb });
  gw.route('GET', '/v1/sandboxes', listReply([]));
  return gw;
}

/** Waits until the sandbox has loaded (the heading is there while loading, too). */
const loaded = () => screen.findByRole('region', { name: 'Overview' });
const button = (name: string) => screen.getByRole('button', { name });

beforeEach(() => resetPauseSupportForTests());

describe('sandbox detail', () => {
  it('shows status, image, entrypoint, owner/team and metadata without the scope keys', async () => {
    renderApp(gateway(), '/console/sandboxes/sb-1');
    await loaded();
    expect(screen.getByRole('heading', { level: 1, name: 'Sandbox sb-1' })).toBeTruthy();
    expect(screen.getByText('container_running')).toBeTruthy();
    expect(screen.getByText('Sandbox is up.')).toBeTruthy();
    expect(screen.getByText('gatehouse/busybox:latest')).toBeTruthy();
    expect(screen.getByText(`sh -c 'sleep infinity'`)).toBeTruthy();
    expect(screen.getByTestId('expiry').textContent).toMatch(/\(in (59m|1h)/);
    const md = screen.getByRole('region', { name: 'Metadata' });
    expect(within(md).getByText('project')).toBeTruthy();
    expect(within(md).queryByText('access.owner')).toBeNull();
    expect(within(md).queryByText('access.team')).toBeNull();
  });

  it('disables every mutating action for read_only, with the reason', async () => {
    renderApp(gateway(BOB), '/console/sandboxes/sb-1');
    await loaded();
    const expectations: Array<[string, string]> = [
      ['Renew', 'Your role (read_only) does not allow renewing sandboxes.'],
      ['Delete', 'Your role (read_only) does not allow deleting sandboxes.'],
      ['Pause', 'Your role (read_only) does not allow pausing sandboxes.'],
      ['Resume', 'Your role (read_only) does not allow resuming sandboxes.'],
    ];
    for (const [name, reason] of expectations) {
      const b = button(name);
      expect(b.getAttribute('aria-disabled')).toBe('true');
      expect(document.getElementById(b.getAttribute('aria-describedby')!)!.textContent).toBe(reason);
    }
    expect(screen.getByText(/Your role \(read_only\) can look at this sandbox but not change it/)).toBeTruthy();
    await userEvent.click(button('Delete'));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(screen.getByRole('region', { name: 'Metadata' }).querySelector('button[aria-disabled="true"]')).toBeTruthy();
    // Reading an endpoint is allowed for read_only; typing metadata is not.
    expect(button('Add port').getAttribute('aria-disabled')).toBeNull();
    expect((within(screen.getByRole('region', { name: 'Metadata' })).getByLabelText('Key') as HTMLInputElement).disabled).toBe(true);
    expect((screen.getByLabelText('Extend by') as HTMLSelectElement).disabled).toBe(true);
    // No terminal without the proxy permission; logs need diagnostics.
    expect(screen.queryByRole('region', { name: 'Terminal' })).toBeNull();
    expect(within(screen.getByRole('region', { name: 'Logs' })).getByText(/does not allow reading sandbox logs/)).toBeTruthy();
  });

  it('deletes after confirming in a dialog; Esc closes the dialog', async () => {
    const gw = gateway();
    gw.route('DELETE', '/v1/sandboxes/sb-1', { status: 204 });
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();

    await userEvent.click(button('Delete'));
    let dialog = screen.getByRole('dialog', { name: 'Delete this sandbox?' });
    expect(document.activeElement).toBe(within(dialog).getByRole('button', { name: 'Cancel' }));
    await userEvent.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.activeElement).toBe(button('Delete'));
    expect(gw.calls.some((c) => c.method === 'DELETE')).toBe(false);

    await userEvent.click(button('Delete'));
    dialog = screen.getByRole('dialog');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Delete sandbox' }));
    await waitFor(() => expect(window.location.pathname).toBe('/console/'));
    const del = gw.calls.find((c) => c.method === 'DELETE')!;
    expect(del.path).toBe('/v1/sandboxes/sb-1');
    expect(del.headers['x-csrf-token']).toBe(ALICE.csrfToken);
    expect(await screen.findByRole('heading', { level: 1, name: 'Sandboxes' })).toBeTruthy();
  });

  it('shows the API message when delete is forbidden', async () => {
    const gw = gateway();
    gw.route('DELETE', '/v1/sandboxes/sb-1', { status: 403, body: { code: 'GATEWAY::FORBIDDEN', message: 'Role operator may not do that.' } });
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();
    await userEvent.click(button('Delete'));
    await userEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Delete sandbox' }));
    expect(await within(screen.getByRole('dialog')).findByText('Role operator may not do that.')).toBeTruthy();
  });

  it('renews by the chosen duration from the current expiry', async () => {
    const gw = gateway();
    gw.route('POST', '/v1/sandboxes/sb-1/renew-expiration', (c) => ({ status: 200, body: { expiresAt: (c.body as { expiresAt: string }).expiresAt } }));
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();
    await userEvent.selectOptions(screen.getByLabelText('Extend by'), '4 hours');
    await userEvent.click(button('Renew'));
    await waitFor(() => expect(gw.calls.some((c) => c.path.endsWith('/renew-expiration'))).toBe(true));
    const call = gw.calls.find((c) => c.path.endsWith('/renew-expiration'))!;
    const sent = Date.parse((call.body as { expiresAt: string }).expiresAt);
    expect(sent - Date.parse(SB.expiresAt!)).toBe(4 * 3_600_000);
    expect(call.headers['x-csrf-token']).toBe(ALICE.csrfToken);
  });

  it('explains a 409 from renew, and disables renew without an expiry', async () => {
    const gw = gateway();
    gw.route('POST', '/v1/sandboxes/sb-1/renew-expiration', {
      status: 409,
      body: { code: 'DOCKER::INVALID_EXPIRATION', message: 'Sandbox sb-1 has no expiration.' },
    });
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();
    await userEvent.click(button('Renew'));
    expect(await screen.findByText(/Sandbox sb-1 has no expiration\. \(A sandbox without an expiry time cannot be renewed\.\)/)).toBeTruthy();

    const gw2 = gateway(ALICE, { ...SB, expiresAt: null });
    document.body.innerHTML = '';
    renderApp(gw2, '/console/sandboxes/sb-1');
    await loaded();
    expect(button('Renew').getAttribute('aria-disabled')).toBe('true');
    expect(button('Renew').getAttribute('title')).toMatch(/no expiry/);
  });

  it('hides pause/resume with an explanation after a 501', async () => {
    const gw = gateway();
    gw.route('POST', '/v1/sandboxes/sb-1/pause', { status: 501, body: { code: 'SANDBOX::API_NOT_SUPPORTED', message: 'Pause is not supported.' } });
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();
    expect(button('Resume').getAttribute('aria-disabled')).toBe('true');
    await userEvent.click(button('Pause'));
    expect(await screen.findByTestId('pause-unsupported')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Pause' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Resume' })).toBeNull();
  });

  it('pauses a running sandbox', async () => {
    const gw = gateway();
    gw.route('POST', '/v1/sandboxes/sb-1/pause', { status: 202 });
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();
    await userEvent.click(button('Pause'));
    await waitFor(() => expect(gw.calls.some((c) => c.method === 'POST' && c.path.endsWith('/pause'))).toBe(true));
    expect(await screen.findByText('Pause requested.')).toBeTruthy();
  });

  it('lists the endpoint up front, copies it and opens it through the proxy', async () => {
    const gw = gateway();
    gw.route('GET', '/v1/sandboxes/sb-1/endpoints/8080', { status: 200, body: { endpoint: 'gatehouse.test/v1/sandboxes/sb-1/proxy/8080' } });
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    const open = vi.spyOn(window, 'open').mockImplementation(() => null);
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();

    const url = (await screen.findByLabelText('Endpoint URL (port 8080)')) as HTMLInputElement;
    expect(url.value).toBe('http://gatehouse.test/v1/sandboxes/sb-1/proxy/8080');
    expect(gw.calls.find((c) => c.path.includes('/endpoints/'))!.url.search).toBe('?use_server_proxy=true');

    await userEvent.click(button('Copy'));
    expect(writeText).toHaveBeenCalledWith('http://gatehouse.test/v1/sandboxes/sb-1/proxy/8080');
    expect(await screen.findByText('Copied to the clipboard.', { selector: 'span' })).toBeTruthy();

    await userEvent.click(button('Open via proxy'));
    expect(open).toHaveBeenCalledWith('/v1/sandboxes/sb-1/proxy/8080/', '_blank', 'noopener,noreferrer');
  });

  it('opens a port on its own origin through a single-use hand-off when sandbox origins are on', async () => {
    const gw = fakeGateway({ me: ALICE, config: { ...OIDC_CONFIG, sandboxOrigins: true } });
    gw.route('GET', '/v1/sandboxes/sb-1', { status: 200, body: SB });
    gw.route('GET', '/v1/sandboxes', listReply([]));
    gw.route('GET', '/v1/sandboxes/sb-1/endpoints/8080', { status: 200, body: { endpoint: 'gatehouse.test/v1/sandboxes/sb-1/proxy/8080' } });
    const handoff = 'http://sb-1-8080.localhost:8080/.gatehouse/handoff?t=abc';
    gw.route('POST', '/auth/sandbox-handoff', { status: 200, body: { url: handoff } });
    const tab = { opener: {} as unknown, location: { href: 'about:blank' }, close: vi.fn() };
    const open = vi.spyOn(window, 'open').mockImplementation(() => tab as unknown as Window);
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();
    await screen.findByLabelText('Endpoint URL (port 8080)');
    await userEvent.click(button('Open via proxy'));
    expect(open).toHaveBeenCalledWith('about:blank', '_blank');
    expect(tab.opener).toBeNull();
    await waitFor(() => expect(tab.location.href).toBe(handoff));
    const call = gw.calls.find((c) => c.path === '/auth/sandbox-handoff')!;
    expect(call.method).toBe('POST');
    expect(call.url.search).toBe('?sandbox=sb-1&port=8080');
    expect(open).not.toHaveBeenCalledWith(expect.stringContaining('/proxy/'), expect.anything(), expect.anything());
  });

  it('validates the port and shows endpoint errors', async () => {
    const gw = gateway();
    gw.route('GET', '/v1/sandboxes/sb-1/endpoints/9999', { status: 404, body: { code: 'DOCKER::ENDPOINT_NOT_AVAILABLE', message: 'Port 9999 is not exposed.' } });
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();
    const port = screen.getByLabelText('Another port');
    await userEvent.type(port, '70000');
    await userEvent.click(button('Add port'));
    expect(screen.getByText('Port must be a whole number from 1 to 65535.')).toBeTruthy();
    await userEvent.clear(port);
    await userEvent.type(port, '9999');
    await userEvent.click(button('Add port'));
    expect(await screen.findByText('Port 9999 is not exposed.')).toBeTruthy();
  });

  it('edits metadata with a merge patch and refuses reserved keys', async () => {
    const gw = gateway();
    gw.route('PATCH', '/v1/sandboxes/sb-1/metadata', (c) => ({
      status: 200,
      body: { ...SB, metadata: { ...SB.metadata, ...(c.body as Record<string, string>) } },
    }));
    renderApp(gw, '/console/sandboxes/sb-1');
    await loaded();
    const md = screen.getByRole('region', { name: 'Metadata' });
    await userEvent.type(within(md).getByLabelText('Key'), 'access.owner');
    await userEvent.click(within(md).getByRole('button', { name: 'Save metadata' }));
    expect(within(md).getByText(/reserved/)).toBeTruthy();
    expect(gw.calls.some((c) => c.method === 'PATCH')).toBe(false);

    await userEvent.clear(within(md).getByLabelText('Key'));
    await userEvent.type(within(md).getByLabelText('Key'), 'env');
    await userEvent.type(within(md).getByLabelText('Value'), 'prod');
    await userEvent.click(within(md).getByRole('button', { name: 'Save metadata' }));
    expect(await within(md).findByText('prod')).toBeTruthy();
    const patch = gw.calls.find((c) => c.method === 'PATCH')!;
    expect(patch.body).toEqual({ env: 'prod' });
    expect(patch.headers['x-csrf-token']).toBe(ALICE.csrfToken);
  });

  it('says so when the sandbox does not exist (or is out of scope)', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes/nope', { status: 404, body: { code: 'SANDBOX::NOT_FOUND', message: 'Sandbox nope not found.' } });
    renderApp(gw, '/console/sandboxes/nope');
    expect(await screen.findByRole('heading', { level: 1, name: 'Sandbox not found' })).toBeTruthy();
  });
});

describe('renewTarget', () => {
  it('extends from the later of now and the current expiry', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(renewTarget('2030-01-01T01:00:00Z', 3_600_000, now)).toBe('2030-01-01T02:00:00.000Z');
    expect(renewTarget('2029-12-31T00:00:00Z', 3_600_000, now)).toBe('2030-01-01T01:00:00.000Z');
  });
});
