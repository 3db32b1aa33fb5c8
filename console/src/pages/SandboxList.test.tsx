import { describe, expect, it, vi } from 'vitest';
import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { BOB, fakeGateway, listReply, sandbox } from '../test/gateway';
import { renderApp } from '../test/render';
import { readListParams, writeListParams } from './SandboxList';

const ITEMS = [
  sandbox({ id: 'sb-run' }),
  sandbox({
    id: 'sb-paused',
    status: { state: 'Paused' },
    metadata: { 'access.owner': 'bob.77aa', 'access.team': 'team-a.1234' },
    expiresAt: null,
  }),
  sandbox({ id: 'sb-pending', status: { state: 'Pending' } }),
];

describe('sandbox list', () => {
  it('shows owner and team (readable part, full token in the title) and state badges', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply(ITEMS));
    renderApp(gw);
    expect(await screen.findByRole('heading', { level: 1, name: 'Sandboxes' })).toBeTruthy();
    const rows = await screen.findAllByTestId('sandbox-row');
    expect(rows).toHaveLength(3);

    const first = rows[0]!;
    const owner = within(first).getByTestId('owner');
    expect(owner.textContent).toBe('alice');
    expect(owner.querySelector('[title]')!.getAttribute('title')).toBe('alice.4kq0abcdefghijklmnop');
    const team = within(first).getByTestId('team');
    expect(team.textContent).toBe('team-a');
    expect(team.querySelector('[title]')!.getAttribute('title')).toBe('team-a.9zz1qrstuvwxyz012345');
    expect(within(first).getByText('Running').className).toContain('badge-running');
    expect(within(first).getByRole('link', { name: 'sb-run' }).getAttribute('href')).toBe('/console/sandboxes/sb-run');

    expect(within(rows[1]!).getByTestId('owner').textContent).toBe('bob');
    expect(within(rows[1]!).getByText('no expiry')).toBeTruthy();
    expect(within(rows[2]!).getByText('Pending').className).toContain('badge-pending');
    expect(screen.getByText('1–3 of 3 sandboxes')).toBeTruthy();
  });

  it('disables New sandbox for a read_only user with the reason', async () => {
    const gw = fakeGateway({ me: BOB });
    gw.route('GET', '/v1/sandboxes', listReply(ITEMS));
    renderApp(gw);
    const button = await screen.findByRole('button', { name: 'New sandbox' });
    expect(button.getAttribute('aria-disabled')).toBe('true');
    const reason = 'Your role (read_only) does not allow creating sandboxes.';
    expect(button.getAttribute('title')).toBe(reason);
    const tip = document.getElementById(button.getAttribute('aria-describedby')!)!;
    expect(tip.textContent).toBe(reason);
    // Visible inline, not only on hover.
    expect(tip.getAttribute('data-testid')).toBe('disabled-reason');
    await userEvent.click(button);
    expect(window.location.pathname).toBe('/console/');
  });

  it('lets an operator go to the create page', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply([]));
    renderApp(gw);
    const button = await screen.findByRole('button', { name: 'New sandbox' });
    expect(button.getAttribute('aria-disabled')).toBeNull();
    await userEvent.click(button);
    expect(window.location.pathname).toBe('/console/new');
    expect(await screen.findByRole('heading', { level: 1, name: 'New sandbox' })).toBeTruthy();
  });

  it('sends state and metadata filters and keeps them in the URL', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply(ITEMS));
    renderApp(gw);
    await screen.findAllByTestId('sandbox-row');

    await userEvent.click(screen.getByRole('checkbox', { name: 'Running' }));
    await userEvent.click(screen.getByRole('checkbox', { name: 'Paused' }));
    await userEvent.type(screen.getByLabelText('Metadata filter'), 'project=apollo{Enter}');

    await waitFor(() => {
      const last = gw.calls.filter((c) => c.path === '/v1/sandboxes').at(-1)!;
      expect(last.url.search).toBe('?state=Running&state=Paused&metadata=project%3Dapollo&page=1&pageSize=20');
    });
    expect(window.location.search).toBe('?state=Running&state=Paused&meta=project%3Dapollo');
    expect(screen.getByRole('button', { name: 'Remove filter project=apollo' })).toBeTruthy();
  });

  it('rejects a malformed or scope metadata filter inline', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply([]));
    renderApp(gw);
    const input = await screen.findByLabelText('Metadata filter');
    await userEvent.type(input, 'nonsense{Enter}');
    expect(screen.getByRole('alert').textContent).toMatch(/key=value/);
    await userEvent.clear(input);
    await userEvent.type(input, 'access.team=x{Enter}');
    expect(screen.getByRole('alert').textContent).toMatch(/set by the gateway/);
    expect(input.getAttribute('aria-invalid')).toBe('true');
  });

  it('paginates', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', (c) =>
      listReply([sandbox({ id: `sb-page-${c.url.searchParams.get('page')}` })], Number(c.url.searchParams.get('page')), 20, 45),
    );
    renderApp(gw);
    expect(await screen.findByText('Page 1 of 3')).toBeTruthy();
    expect((screen.getByRole('button', { name: 'Previous' }) as HTMLButtonElement).disabled).toBe(true);
    await userEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(await screen.findByText('Page 2 of 3')).toBeTruthy();
    expect(screen.getByRole('link', { name: 'sb-page-2' })).toBeTruthy();
    expect(window.location.search).toBe('?page=2');
  });

  it('shows the API message on errors', async () => {
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', { status: 400, body: { code: 'SANDBOX::INVALID_METADATA_FORMAT', message: 'Invalid metadata format.' } });
    renderApp(gw);
    expect(await screen.findByText('Invalid metadata format.')).toBeTruthy();
    expect(screen.getByText('SANDBOX::INVALID_METADATA_FORMAT')).toBeTruthy();
  });

  it('refreshes every 5 seconds, keeping the rows in place', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const gw = fakeGateway();
      let n = 0;
      gw.route('GET', '/v1/sandboxes', () => {
        n++;
        return listReply(n === 1 ? [sandbox({ id: 'sb-a' })] : [sandbox({ id: 'sb-a', status: { state: 'Paused' } })]);
      });
      renderApp(gw);
      const row = await screen.findByTestId('sandbox-row');
      expect(within(row).getByText('Running')).toBeTruthy();
      await act(async () => {
        await vi.advanceTimersByTimeAsync(5_100);
      });
      await waitFor(() => expect(within(row).getByText('Paused')).toBeTruthy());
      // The same row element was updated in place: no flicker, no empty state in between.
      expect(screen.getByTestId('sandbox-row')).toBe(row);
      expect(n).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('list URL parameters', () => {
  it('round-trips', () => {
    const p = { states: ['Running'], metadata: [['a', 'b=c']] as Array<[string, string]>, page: 3, pageSize: 50 };
    expect(readListParams(writeListParams(p))).toEqual(p);
    expect(readListParams('?state=Bogus&page=-4&pageSize=7')).toEqual({ states: [], metadata: [], page: 1, pageSize: 20 });
  });
});
