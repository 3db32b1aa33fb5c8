import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ALICE, BOB, fakeGateway, listReply, sandbox } from '../test/gateway';
import { renderApp } from '../test/render';
import { visibleNav } from '../nav';

const FIVE = ['s1', 's2', 's3', 's4', 's5'].map((id, i) => sandbox({ id, metadata: { ...sandbox({ id }).metadata, name: `web-${i + 1}` } }));

describe('bulk actions', () => {
  it('deletes more than three only after the count is typed, and reports each result', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply(FIVE));
    gw.route('DELETE', /^\/v1\/sandboxes\/s[1-4]$/, (c) =>
      c.path.endsWith('s3') ? { status: 404, body: { code: 'SANDBOX::NOT_FOUND', message: 'gone' } } : { status: 204 },
    );
    renderApp(gw);
    await screen.findByText('web-1');
    for (const id of ['s1', 's2', 's3', 's4']) {
      await userEvent.click(screen.getByRole('checkbox', { name: new RegExp(`Select web-\\d ${id}$`) }));
    }
    expect(screen.getByTestId('selected-count').textContent).toBe('4 selected');
    await userEvent.click(screen.getByRole('button', { name: 'Delete selected' }));
    const dialog = screen.getByRole('dialog', { name: 'Delete 4 sandboxes?' });
    const go = within(dialog).getByRole('button', { name: 'Delete 4' });
    expect(go.getAttribute('aria-disabled')).toBe('true');
    await userEvent.click(go);
    expect(gw.calls.some((c) => c.method === 'DELETE')).toBe(false);
    await userEvent.type(within(dialog).getByLabelText('Type 4 to confirm'), '4');
    const ready = within(dialog).getByRole('button', { name: 'Delete 4' });
    expect(ready.getAttribute('aria-disabled')).toBeNull();
    await userEvent.click(ready);
    const results = await screen.findByTestId('bulk-results');
    expect(within(results).getAllByRole('listitem')).toHaveLength(4);
    expect(results.textContent).toContain('s3: was already gone');
    expect(gw.calls.filter((c) => c.method === 'DELETE').map((c) => c.path)).toEqual([
      '/v1/sandboxes/s1',
      '/v1/sandboxes/s2',
      '/v1/sandboxes/s3',
      '/v1/sandboxes/s4',
    ]);
    expect((await screen.findByTestId('toast')).textContent).toContain('Deleted 4 of 4 sandboxes.');
  });

  it('renews the selected by an hour each; one without expiry is reported, not renewed', async () => {
    const noExpiry = sandbox({ id: 's9', expiresAt: null, metadata: { ...FIVE[0]!.metadata, name: 'forever' } });
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply([FIVE[0]!, noExpiry]));
    gw.route('POST', '/v1/sandboxes/s1/renew-expiration', { status: 200, body: { expiresAt: '2030-01-01T00:00:00Z' } });
    renderApp(gw);
    await screen.findByText('web-1');
    await userEvent.click(screen.getByRole('checkbox', { name: 'Select all on this page' }));
    await userEvent.click(screen.getByRole('button', { name: 'Renew selected' }));
    const dialog = screen.getByRole('dialog', { name: 'Renew 2 sandboxes?' });
    await userEvent.click(within(dialog).getByRole('button', { name: 'Renew 2' }));
    const results = await screen.findByTestId('bulk-results');
    expect(results.textContent).toContain('s1: renewed by 1 hour');
    expect(results.textContent).toContain('s9: has no expiry time; nothing to renew');
    const renew = gw.calls.filter((c) => c.method === 'POST');
    expect(renew).toHaveLength(1);
    const asked = Date.parse((renew[0]!.body as { expiresAt: string }).expiresAt);
    expect(asked - Date.parse(FIVE[0]!.expiresAt!)).toBe(3_600_000);
  });

  it('selects all matching the filter across pages', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', (c) => {
      const size = Number(c.url.searchParams.get('pageSize'));
      const page = Number(c.url.searchParams.get('page'));
      if (size === 100) return listReply(FIVE, page, 100, 5);
      return listReply(FIVE.slice(0, 2), 1, 20, 5);
    });
    renderApp(gw);
    await screen.findByText('web-1');
    await userEvent.click(screen.getByRole('checkbox', { name: 'Select all on this page' }));
    await userEvent.click(screen.getByRole('button', { name: 'Select all 5 matching these filters' }));
    await waitFor(() => expect(screen.getByTestId('selected-count').textContent).toBe('5 selected'));
  });

  it('offers no selection to read_only users', async () => {
    const gw = fakeGateway({ me: BOB });
    gw.route('GET', '/v1/sandboxes', listReply(FIVE));
    renderApp(gw);
    await screen.findByText('web-1');
    expect(screen.queryByRole('checkbox', { name: /^Select/ })).toBeNull();
  });
});

describe('list clarity', () => {
  it('shows names beside ids and searches by name', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply(FIVE));
    renderApp(gw);
    const row = (await screen.findAllByTestId('sandbox-row'))[0]!;
    expect(within(row).getByTestId('sandbox-name').textContent).toBe('web-1');
    await userEvent.type(screen.getByLabelText('Name'), 'web-2');
    await userEvent.click(screen.getByRole('button', { name: 'Search' }));
    await waitFor(() =>
      expect(gw.calls.some((c) => c.url.searchParams.get('metadata') === 'name=web-2')).toBe(true),
    );
  });

  it('has a team-aware empty state with a call to action', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply([]));
    renderApp(gw);
    const empty = await screen.findByTestId('empty-state');
    expect(empty.textContent).toContain('Team team-a has no sandboxes yet.');
    await userEvent.click(within(empty).getByRole('button', { name: 'Create a sandbox' }));
    expect(window.location.pathname).toBe('/console/new');
  });

  it('shows governance pages only when the gateway grants them', () => {
    expect(visibleNav(ALICE).map((n) => n.label)).toEqual(['Sandboxes']);
    const auditor = { ...ALICE, permissions: [...ALICE.permissions, 'audit:read'] };
    expect(visibleNav(auditor).map((n) => n.label)).toEqual(['Sandboxes', 'Audit log']);
  });
});
