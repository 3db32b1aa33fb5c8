import { afterEach, describe, expect, it, vi } from 'vitest';
import { act, screen, waitFor, within } from '@testing-library/react';
import { ALICE, fakeGateway, listReply, sandbox } from './test/gateway';
import { renderApp } from './test/render';
import type { Me, Permission } from './types';

/** A stand-in for the browser's EventSource that the test drives by hand. */
class FakeEventSource {
  static instances: FakeEventSource[] = [];
  url: string;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  private listeners = new Map<string, Array<(m: MessageEvent) => void>>();
  constructor(url: string) {
    this.url = url;
    FakeEventSource.instances.push(this);
  }
  addEventListener(type: string, f: (m: MessageEvent) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), f]);
  }
  close() {
    this.closed = true;
  }
  emit(type: string, data: unknown) {
    for (const f of this.listeners.get(type) ?? []) f(new MessageEvent(type, { data: JSON.stringify(data) }));
  }
}

const FOLLOWER: Me = { ...ALICE, permissions: [...ALICE.permissions, 'events:read' as Permission] };

afterEach(() => {
  vi.unstubAllGlobals();
  FakeEventSource.instances = [];
});

describe('live updates from the event stream', () => {
  it('updates the list when an event arrives, without waiting for the 5 s poll', async () => {
    vi.stubGlobal('EventSource', FakeEventSource);
    const gw = fakeGateway({ me: FOLLOWER });
    let items = [sandbox({ id: 'sb-a' })];
    gw.route('GET', '/v1/sandboxes', () => listReply(items));
    renderApp(gw);
    expect(await screen.findAllByTestId('sandbox-row')).toHaveLength(1);
    await waitFor(() => expect(FakeEventSource.instances.length).toBe(1));
    const es = FakeEventSource.instances[0]!;
    expect(es.url).toBe('/gatehouse/v1/events');
    act(() => es.onopen?.());
    expect(await screen.findByText('Live updates')).toBeTruthy();
    const before = gw.apiCalls().length;
    items = [sandbox({ id: 'sb-b' }), sandbox({ id: 'sb-a' })];
    act(() => es.emit('created', { id: '1-1', type: 'created', sandboxId: 'sb-b', time: '2026-01-01T00:00:00Z' }));
    await waitFor(() => expect(screen.getAllByTestId('sandbox-row')).toHaveLength(2), { timeout: 2000 });
    expect(within(screen.getAllByTestId('sandbox-row')[0]!).getByRole('link', { name: 'sb-b' })).toBeTruthy();
    expect(gw.apiCalls().length).toBe(before + 1);
  });

  it('follows only the shown sandbox on the detail page', async () => {
    vi.stubGlobal('EventSource', FakeEventSource);
    const gw = fakeGateway({ me: FOLLOWER });
    let state = 'Running';
    gw.route('GET', '/v1/sandboxes/sb-a', () => ({ status: 200, body: sandbox({ id: 'sb-a', status: { state } }) }));
    renderApp(gw, '/console/sandboxes/sb-a');
    await waitFor(() => expect(FakeEventSource.instances.length).toBe(1));
    expect(FakeEventSource.instances[0]!.url).toBe('/gatehouse/v1/events?sandbox=sb-a');
    state = 'Paused';
    act(() => FakeEventSource.instances[0]!.emit('paused', { id: '1-2', type: 'paused', sandboxId: 'sb-a', time: 'x' }));
    expect(await screen.findAllByText('Paused')).not.toHaveLength(0);
  });

  it('is not opened without events:read, and the list polls as before', async () => {
    vi.stubGlobal('EventSource', FakeEventSource);
    const gw = fakeGateway();
    gw.route('GET', '/v1/sandboxes', listReply([sandbox({ id: 'sb-a' })]));
    renderApp(gw);
    expect(await screen.findAllByTestId('sandbox-row')).toHaveLength(1);
    expect(FakeEventSource.instances).toHaveLength(0);
    expect(screen.getByText('Auto-refresh every 5 s')).toBeTruthy();
  });
});
