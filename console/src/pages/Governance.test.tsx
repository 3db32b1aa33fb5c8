import { describe, expect, it, vi } from 'vitest';
import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ALICE, ALL_PERMISSIONS, BOB, fakeGateway, type Call } from '../test/gateway';
import { renderApp } from '../test/render';
import type { Me } from '../types';
import type { ApiKey, AuditEvent, Binding } from '../governance';
import { fromLocalInput, mergeNewer, toLocalInput } from './AuditLog';

const OPERATOR: Me = {
  ...ALICE,
  permissions: [...ALL_PERMISSIONS, 'audit:read', 'apikey:manage'],
  assignableRoles: ['operator', 'read_only'],
};
const VIEWER: Me = { ...BOB, permissions: [...BOB.permissions, 'apikey:manage'], assignableRoles: ['read_only'] };
const ADMIN: Me = {
  subject: 'dana',
  team: 'platform',
  role: 'service_admin',
  permissions: [...ALL_PERMISSIONS, 'audit:read', 'apikey:manage', 'binding:read', 'binding:write'],
  assignableRoles: ['operator', 'read_only', 'service_admin'],
  csrfToken: 'csrf-dana',
  authMethod: 'session',
};

let seq = 0;
function event(over: Partial<AuditEvent> = {}): AuditEvent {
  seq++;
  return {
    id: `ev-${seq}`,
    time: new Date(Date.UTC(2026, 11, 3, 10, 0, seq)).toISOString(),
    request_id: `req-${seq}`,
    principal: { subject: 'alice', team: 'team-a', role: 'operator', auth_method: 'session', key_name: null },
    action: 'sandbox:delete',
    sandbox_id: `sb-${seq}`,
    method: 'DELETE',
    path: `/v1/sandboxes/sb-${seq}`,
    status: 204,
    outcome: 'allowed',
    reason: null,
    duration_ms: 3.2,
    peer: '127.0.0.1',
    ...over,
  };
}

function key(over: Partial<ApiKey> = {}): ApiKey {
  return {
    id: 'k-1',
    prefix: 'gk_AbCd',
    name: 'ci',
    subject: 'alice',
    team: 'team-a',
    role: 'operator',
    createdAt: '2026-12-01T10:00:00Z',
    expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    lastUsedAt: null,
    revokedAt: null,
    ...over,
  };
}

const nav = () => screen.getByRole('navigation', { name: 'Main' });

describe('governance navigation', () => {
  it('shows Audit log and API keys to an operator, never Bindings', async () => {
    renderApp(fakeGateway({ me: OPERATOR }), '/console/');
    await screen.findByRole('heading', { level: 1, name: 'Sandboxes' });
    const links = within(nav()).getAllByRole('link').map((a) => a.textContent);
    expect(links).toEqual(['Sandboxes', 'Audit log', 'API keys']);
  });

  it('shows Bindings only with binding:read', async () => {
    const gw = fakeGateway({ me: ADMIN });
    gw.route('GET', '/gatehouse/v1/bindings', { status: 200, body: { items: [], fresh: true } });
    renderApp(gw, '/console/');
    await screen.findByRole('heading', { level: 1, name: 'Sandboxes' });
    await userEvent.click(within(nav()).getByRole('link', { name: 'Bindings' }));
    expect(await screen.findByRole('heading', { level: 1, name: 'Bindings' })).toBeTruthy();
    expect(window.location.pathname).toBe('/console/bindings');
  });

  it('does not load a page the role does not include', async () => {
    const gw = fakeGateway({ me: OPERATOR });
    renderApp(gw, '/console/bindings');
    expect(await screen.findByText(/Your role \(operator\) does not include this page/)).toBeTruthy();
    expect(gw.apiCalls().filter((c) => c.path.startsWith('/gatehouse/'))).toEqual([]);
  });
});

describe('audit log page', () => {
  it('lists events newest first with actor, action, target and outcome, and loads more by cursor', async () => {
    const gw = fakeGateway({ me: OPERATOR });
    const first = [event({ outcome: 'denied', status: 403, reason: 'GATEWAY::FORBIDDEN' }), event()];
    const older = [event({ action: 'key:create', sandbox_id: 'k-9', method: 'POST', path: '/gatehouse/v1/keys' })];
    gw.route('GET', '/gatehouse/v1/audit', (c) =>
      c.url.searchParams.get('cursor') === 'c2'
        ? { status: 200, body: { items: older, nextCursor: null } }
        : { status: 200, body: { items: first, nextCursor: 'c2' } },
    );
    renderApp(gw, '/console/audit');
    const rows = await screen.findAllByTestId('audit-row');
    expect(rows).toHaveLength(2);
    expect(within(rows[0]!).getByText('denied').className).toContain('badge-failed');
    expect(within(rows[0]!).getByText('GATEWAY::FORBIDDEN')).toBeTruthy();
    expect(within(rows[1]!).getByText('alice')).toBeTruthy();
    expect(within(rows[1]!).getByText('sandbox:delete')).toBeTruthy();
    expect(screen.getByText(/team team-a/)).toBeTruthy();
    await userEvent.click(screen.getByRole('button', { name: 'Load more' }));
    await waitFor(() => expect(screen.getAllByTestId('audit-row')).toHaveLength(3));
    expect(screen.getAllByTestId('audit-row')[2]!.getAttribute('data-action')).toBe('key:create');
    expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull();
    const calls = gw.calls.filter((c) => c.path === '/gatehouse/v1/audit');
    expect(calls[0]!.url.search).toBe('?limit=50');
    expect(calls[1]!.url.search).toBe('?limit=50&cursor=c2');
  });

  it('sends the filters (time range in UTC) and keeps them in the page URL', async () => {
    const gw = fakeGateway({ me: OPERATOR });
    gw.route('GET', '/gatehouse/v1/audit', { status: 200, body: { items: [], nextCursor: null } });
    renderApp(gw, '/console/audit');
    expect(await screen.findByText('No events yet.')).toBeTruthy();
    await userEvent.type(screen.getByLabelText('Actor'), 'key:ci');
    await userEvent.type(screen.getByLabelText('Sandbox'), 'sb-7');
    await userEvent.type(screen.getByLabelText('Action'), 'sandbox:create');
    await userEvent.selectOptions(screen.getByLabelText('Outcome'), 'denied');
    await userEvent.type(screen.getByLabelText('From'), '2026-12-01T08:30');
    await userEvent.click(screen.getByRole('button', { name: 'Apply filters' }));
    const since = new Date('2026-12-01T08:30').toISOString();
    await waitFor(() => {
      const last = gw.calls.filter((c) => c.path === '/gatehouse/v1/audit').at(-1)!;
      expect(Object.fromEntries(last.url.searchParams)).toEqual({
        actor: 'key:ci',
        sandbox: 'sb-7',
        action: 'sandbox:create',
        outcome: 'denied',
        since,
        limit: '50',
      });
    });
    expect(new URLSearchParams(window.location.search).get('outcome')).toBe('denied');
    expect(await screen.findByText('No event matches these filters.')).toBeTruthy();
  });

  it('refuses a time range that ends before it starts, without asking the gateway', async () => {
    const gw = fakeGateway({ me: OPERATOR });
    gw.route('GET', '/gatehouse/v1/audit', { status: 200, body: { items: [], nextCursor: null } });
    renderApp(gw, '/console/audit');
    await screen.findByText('No events yet.');
    await userEvent.type(screen.getByLabelText('From'), '2026-12-02T08:30');
    await userEvent.type(screen.getByLabelText('To'), '2026-12-01T08:30');
    const before = gw.calls.length;
    await userEvent.click(screen.getByRole('button', { name: 'Apply filters' }));
    expect(screen.getByRole('alert').textContent).toMatch(/before/);
    expect(gw.calls.length).toBe(before);
  });

  it("shows the gateway's 403 for another team's events", async () => {
    const gw = fakeGateway({ me: OPERATOR });
    gw.route('GET', '/gatehouse/v1/audit', (c: Call) =>
      c.url.searchParams.get('team') === 'team-b'
        ? { status: 403, body: { code: 'GATEWAY::FORBIDDEN', message: "You can read your own team's events only." } }
        : { status: 200, body: { items: [], nextCursor: null } },
    );
    renderApp(gw, '/console/audit?team=team-b');
    expect(await screen.findByText("You can read your own team's events only.")).toBeTruthy();
  });

  it('follows new events in the live tail', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const gw = fakeGateway({ me: OPERATOR });
      const old = event();
      const fresh = event({ action: 'sandbox:create', method: 'POST', path: '/v1/sandboxes' });
      let n = 0;
      gw.route('GET', '/gatehouse/v1/audit', () => {
        n++;
        return { status: 200, body: { items: n === 1 ? [old] : [fresh, old], nextCursor: null } };
      });
      renderApp(gw, '/console/audit');
      await screen.findAllByTestId('audit-row');
      await userEvent.click(screen.getByRole('checkbox', { name: /Live tail/ }));
      await act(async () => {
        await vi.advanceTimersByTimeAsync(3_100);
      });
      await waitFor(() => expect(screen.getAllByTestId('audit-row')).toHaveLength(2));
      expect(screen.getAllByTestId('audit-row')[0]!.getAttribute('data-action')).toBe('sandbox:create');
    } finally {
      vi.useRealTimers();
    }
  });

  it('merges a tail page on top, or replaces the list when the pages do not meet', () => {
    const [a, b, c, d] = [event(), event(), event(), event()];
    expect(mergeNewer([b!, a!], [c!, b!]).events.map((e) => e.id)).toEqual([c!.id, b!.id, a!.id]);
    expect(mergeNewer([b!, a!], [b!, a!]).added).toBe(0);
    const gap = mergeNewer([a!], [d!, c!]);
    expect(gap.replaced).toBe(true);
    expect(gap.events).toEqual([d, c]);
  });

  it('converts datetime-local values to UTC and back', () => {
    const iso = fromLocalInput('2026-12-01T08:30');
    expect(iso).toBe(new Date(2026, 11, 1, 8, 30).toISOString());
    expect(toLocalInput(iso)).toBe('2026-12-01T08:30');
    expect(fromLocalInput('')).toBe('');
    expect(toLocalInput('nonsense')).toBe('');
  });
});

describe('API keys page', () => {
  it('creates a key with a role no higher than mine, shows it once with Copy, then forgets it', async () => {
    const gw = fakeGateway({ me: OPERATOR });
    let keys: ApiKey[] = [];
    gw.route('GET', '/gatehouse/v1/keys', () => ({ status: 200, body: { items: keys } }));
    gw.route('POST', '/gatehouse/v1/keys', (c) => {
      const body = c.body as { name: string; role: string; expiresInDays: number };
      keys = [key({ name: body.name, role: body.role })];
      return { status: 201, body: { ...keys[0], key: 'gk_SECRETsecretSECRETsecret' } };
    });
    renderApp(gw, '/console/keys');
    expect(await screen.findByText('You have no API keys yet.')).toBeTruthy();
    const role = screen.getByLabelText('Role') as HTMLSelectElement;
    expect(Array.from(role.options).map((o) => o.value)).toEqual(['operator', 'read_only']);
    await userEvent.click(screen.getByRole('button', { name: 'Create key' }));
    expect(screen.getByTestId('key-name-error').textContent).toMatch(/name/);
    await userEvent.type(screen.getByLabelText('Key name'), 'ci pipeline');
    await userEvent.selectOptions(role, 'read_only');
    await userEvent.selectOptions(screen.getByLabelText('Expires after'), '30');
    await userEvent.click(screen.getByRole('button', { name: 'Create key' }));

    const shown = await screen.findByTestId('new-key');
    expect(within(shown).getByText('You will not see it again.')).toBeTruthy();
    expect((screen.getByTestId('new-key-value') as HTMLInputElement).value).toBe('gk_SECRETsecretSECRETsecret');
    const post = gw.calls.find((c) => c.method === 'POST' && c.path === '/gatehouse/v1/keys')!;
    expect(post.body).toEqual({ name: 'ci pipeline', role: 'read_only', expiresInDays: 30 });
    expect(post.headers['x-csrf-token']).toBe('csrf-alice-123');

    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    await userEvent.click(within(shown).getByRole('button', { name: 'Copy' }));
    expect(writeText).toHaveBeenCalledWith('gk_SECRETsecretSECRETsecret');
    expect(await within(shown).findByText('Copied to the clipboard.')).toBeTruthy();

    await screen.findByTestId('key-row');
    await userEvent.click(screen.getByRole('button', { name: 'I have copied it' }));
    expect(screen.queryByTestId('new-key')).toBeNull();
    expect(document.body.textContent).not.toContain('gk_SECRETsecret');
    // The list never holds the secret.
    expect(screen.getByTestId('key-row').textContent).toContain('gk_AbCd');
  });

  it('shows a 403 for a role above mine where the key was being created', async () => {
    const gw = fakeGateway({ me: { ...OPERATOR, assignableRoles: ['operator', 'service_admin'] } });
    gw.route('GET', '/gatehouse/v1/keys', { status: 200, body: { items: [] } });
    gw.route('POST', '/gatehouse/v1/keys', {
      status: 403,
      body: { code: 'GATEWAY::FORBIDDEN', message: "Role 'operator' cannot create a key with role 'service_admin'." },
    });
    renderApp(gw, '/console/keys');
    await screen.findByText('You have no API keys yet.');
    await userEvent.type(screen.getByLabelText('Key name'), 'x');
    await userEvent.selectOptions(screen.getByLabelText('Role'), 'service_admin');
    await userEvent.click(screen.getByRole('button', { name: 'Create key' }));
    expect(await screen.findByText("Role 'operator' cannot create a key with role 'service_admin'.")).toBeTruthy();
    expect(screen.queryByTestId('new-key')).toBeNull();
  });

  it('lists keys with last use and state, and revokes after a confirm', async () => {
    const gw = fakeGateway({ me: VIEWER });
    let revoked = false;
    gw.route('GET', '/gatehouse/v1/keys', () => ({
      status: 200,
      body: {
        items: [
          key({ lastUsedAt: '2026-12-02T09:00:00Z', revokedAt: revoked ? '2026-12-03T00:00:00Z' : null }),
          key({ id: 'k-0', name: 'old', expiresAt: '2020-01-01T00:00:00Z' }),
        ],
      },
    }));
    gw.route('DELETE', '/gatehouse/v1/keys/k-1', () => {
      revoked = true;
      return { status: 204 };
    });
    renderApp(gw, '/console/keys');
    const rows = await screen.findAllByTestId('key-row');
    expect(rows[0]!.getAttribute('data-state')).toBe('active');
    expect(within(rows[0]!).getByTestId('last-used').textContent).not.toBe('never');
    expect(rows[1]!.getAttribute('data-state')).toBe('expired');
    expect(screen.queryByLabelText("Show every user's keys")).toBeNull();

    await userEvent.click(screen.getByRole('button', { name: 'Revoke ci' }));
    const dialog = screen.getByRole('dialog', { name: 'Revoke this key?' });
    expect(document.activeElement).toBe(within(dialog).getByRole('button', { name: 'Cancel' }));
    await userEvent.click(within(dialog).getByRole('button', { name: 'Revoke key' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    await waitFor(() => expect(screen.getAllByTestId('key-row')[0]!.getAttribute('data-state')).toBe('revoked'));
    const del = gw.calls.find((c) => c.method === 'DELETE')!;
    expect(del.headers['x-csrf-token']).toBe('csrf-bob-456');
  });

  it('lets service_admin list every key and name a team', async () => {
    const gw = fakeGateway({ me: ADMIN });
    gw.route('GET', '/gatehouse/v1/keys', (c) => ({
      status: 200,
      body: { items: c.url.searchParams.get('all') === 'true' ? [key(), key({ id: 'k-2', subject: 'carol' })] : [] },
    }));
    gw.route('POST', '/gatehouse/v1/keys', { status: 201, body: { ...key({ team: 'team-b' }), key: 'gk_x' } });
    renderApp(gw, '/console/keys');
    await screen.findByText('You have no API keys yet.');
    await userEvent.click(screen.getByLabelText("Show every user's keys"));
    expect(await screen.findAllByTestId('key-row')).toHaveLength(2);
    expect(screen.getByText('carol')).toBeTruthy();
    await userEvent.type(screen.getByLabelText('Key name'), 'team-b-ci');
    await userEvent.type(screen.getByLabelText('Team (a team key)'), 'team-b');
    await userEvent.click(screen.getByRole('button', { name: 'Create key' }));
    await screen.findByTestId('new-key');
    const post = gw.calls.find((c) => c.method === 'POST')!;
    expect(post.body).toEqual({ name: 'team-b-ci', role: 'service_admin', expiresInDays: 90, team: 'team-b' });
  });
});

describe('bindings page', () => {
  const B: Binding = { kind: 'subject', name: 'dave', role: 'operator', team: 'team-c', createdBy: 'dana', createdAt: '2026-12-01T10:00:00Z' };

  it('lists, adds, replaces and deletes bindings', async () => {
    const gw = fakeGateway({ me: ADMIN });
    let items: Binding[] = [B];
    gw.route('GET', '/gatehouse/v1/bindings', () => ({ status: 200, body: { items, fresh: true } }));
    gw.route('PUT', '/gatehouse/v1/bindings', (c) => {
      const b = { ...(c.body as Binding), team: (c.body as Binding).team ?? null, createdBy: 'dana', createdAt: '2026-12-03T10:00:00Z' };
      items = [...items.filter((x) => !(x.kind === b.kind && x.name === b.name)), b];
      return { status: 200, body: b };
    });
    gw.route('DELETE', /^\/gatehouse\/v1\/bindings\//, () => {
      items = [];
      return { status: 204 };
    });
    renderApp(gw, '/console/bindings');
    const row = await screen.findByTestId('binding-row');
    expect(within(row).getByText('dave')).toBeTruthy();
    expect(screen.queryByTestId('bindings-stale')).toBeNull();

    // Add a group binding.
    await userEvent.selectOptions(screen.getByLabelText('Kind'), 'group');
    await userEvent.type(screen.getByLabelText('Name'), 'qa');
    await userEvent.type(screen.getByLabelText('Role'), 'read_only');
    await userEvent.click(screen.getByRole('button', { name: 'Add binding' }));
    await waitFor(() => expect(screen.getAllByTestId('binding-row')).toHaveLength(2));
    expect(gw.calls.find((c) => c.method === 'PUT')!.body).toEqual({ kind: 'group', name: 'qa', role: 'read_only' });

    // Typing an existing subject offers to replace it.
    await userEvent.selectOptions(screen.getByLabelText('Kind'), 'subject');
    await userEvent.type(screen.getByLabelText('Name'), 'dave');
    expect(screen.getByTestId('binding-replaces').textContent).toMatch(/now operator/);
    expect(screen.getByRole('button', { name: 'Replace binding' })).toBeTruthy();
    await userEvent.clear(screen.getByLabelText('Name'));

    // Delete with a confirm.
    await userEvent.click(screen.getByRole('button', { name: 'Delete subject dave' }));
    await userEvent.click(within(screen.getByRole('dialog', { name: 'Delete this binding?' })).getByRole('button', { name: 'Delete binding' }));
    await waitFor(() => expect(screen.queryAllByTestId('binding-row')).toHaveLength(0));
    expect(gw.calls.find((c) => c.method === 'DELETE')!.path).toBe('/gatehouse/v1/bindings/subject/dave');
  });

  it('shows an unknown role at the role field', async () => {
    const gw = fakeGateway({ me: ADMIN });
    gw.route('GET', '/gatehouse/v1/bindings', { status: 200, body: { items: [], fresh: true } });
    gw.route('PUT', '/gatehouse/v1/bindings', { status: 400, body: { code: 'GATEWAY::INVALID_REQUEST', message: "Unknown role 'emperor'." } });
    renderApp(gw, '/console/bindings');
    await screen.findByText(/No bindings yet/);
    await userEvent.type(screen.getByLabelText('Name'), 'erin');
    await userEvent.type(screen.getByLabelText('Role'), 'emperor');
    await userEvent.click(screen.getByRole('button', { name: 'Add binding' }));
    const err = await screen.findByTestId('binding-role-error');
    expect(err.textContent).toBe("Unknown role 'emperor'.");
    const input = screen.getByLabelText('Role');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(input.getAttribute('aria-describedby')).toBe(err.id);
    expect(document.activeElement).toBe(input);
  });

  it('says when the store cannot be read and the last bindings apply', async () => {
    const gw = fakeGateway({ me: ADMIN });
    gw.route('GET', '/gatehouse/v1/bindings', { status: 200, body: { items: [B], fresh: false } });
    renderApp(gw, '/console/bindings');
    expect((await screen.findByTestId('bindings-stale')).textContent).toMatch(/last bindings/);
  });

  it('disables changes, with the reason, for a reader without binding:write', async () => {
    const reader: Me = { ...ADMIN, role: 'auditor', permissions: ['binding:read'] };
    const gw = fakeGateway({ me: reader });
    gw.route('GET', '/gatehouse/v1/bindings', { status: 200, body: { items: [B], fresh: true } });
    renderApp(gw, '/console/bindings');
    await screen.findByTestId('binding-row');
    const add = screen.getByRole('button', { name: 'Add binding' });
    expect(add.getAttribute('aria-disabled')).toBe('true');
    expect(document.getElementById(add.getAttribute('aria-describedby')!)!.textContent).toBe(
      'Your role (auditor) does not allow changing bindings.',
    );
    expect(screen.getByRole('button', { name: 'Delete subject dave' }).getAttribute('aria-disabled')).toBe('true');
  });
});
