import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ApiError, EventStreamParser } from '../api';
import { explainStatus, friendlyError } from '../friendly';
import { eventLines } from '../components/Terminal';
import { ALICE, BOB, fakeGateway, listReply, sandbox } from '../test/gateway';
import { renderApp } from '../test/render';
import type { CommandEvent, Sandbox } from '../types';

function gateway(sb: Sandbox, me = ALICE) {
  const gw = fakeGateway({ me });
  gw.route('GET', `/v1/sandboxes/${sb.id}`, { status: 200, body: sb });
  gw.route('GET', '/v1/sandboxes', listReply([]));
  gw.route('GET', `/v1/sandboxes/${sb.id}/endpoints/8080`, {
    status: 200,
    body: { endpoint: `gatehouse.test/v1/sandboxes/${sb.id}/proxy/8080` },
  });
  return gw;
}

const FAILED = sandbox({
  id: 'sb-f',
  status: { state: 'Failed', reason: 'CONTAINER_EXITED_ERROR', message: 'Sandbox container exited with code 3.' },
});

describe('debugging a sandbox', () => {
  it('explains a failed sandbox in plain words and shows its logs', async () => {
    const gw = gateway(FAILED);
    gw.route('GET', '/v1/sandboxes/sb-f/diagnostics/logs', (c) => {
      expect(c.url.search).toBe('?scope=container');
      return { status: 200, body: { content: 'starting\nconfig.yaml: no such file\n', truncated: false } };
    });
    renderApp(gw, '/console/sandboxes/sb-f');
    const explained = await screen.findByTestId('status-explained');
    expect(explained.textContent).toContain('stopped with an error (exit code 3)');
    expect(explained.textContent).toContain('Read the logs below');
    const logs = await screen.findByTestId('sandbox-logs');
    expect(logs.textContent).toContain('config.yaml: no such file');
    // A failed sandbox answers nothing: the ports and the terminal say why.
    const ports = screen.getByRole('region', { name: 'Ports' });
    expect(within(ports).getByTestId('ports-stopped')).toBeTruthy();
    expect(gw.calls.some((c) => c.path.includes('/endpoints/'))).toBe(false);
    const term = screen.getByRole('region', { name: 'Terminal' });
    expect(within(term).getByText('The sandbox is failed: only a running sandbox answers.')).toBeTruthy();
  });

  it('follows the logs while checked', async () => {
    let n = 0;
    const gw = gateway(sandbox({ id: 'sb-r' }));
    gw.route('GET', '/v1/sandboxes/sb-r/diagnostics/logs', () => ({ status: 200, body: { content: `line ${++n}\n` } }));
    gw.route('GET', '/v1/sandboxes/sb-r/proxy/44772/metrics', {
      status: 200,
      body: { cpu_count: 0.5, cpu_used_pct: 12.5, mem_total_mib: 64, mem_used_mib: 16, timestamp: 1 },
    });
    renderApp(gw, '/console/sandboxes/sb-r');
    await screen.findByText('line 1');
    await screen.findByText('line 2', {}, { timeout: 4000 });
    expect(await screen.findByText(/12\.5% of 0\.5 CPUs/)).toBeTruthy();
    expect(screen.getByText(/16 MiB used of 64 MiB/)).toBeTruthy();
    await userEvent.click(screen.getByRole('checkbox', { name: /Follow/ }));
    const seen = n;
    await new Promise((r) => setTimeout(r, 2500));
    expect(n).toBe(seen);
  });

  it('disables proxy actions on a paused sandbox with the reason shown inline', async () => {
    const gw = gateway(sandbox({ id: 'sb-p', status: { state: 'Paused' } }));
    gw.route('GET', '/v1/sandboxes/sb-p/diagnostics/logs', { status: 200, body: { content: '' } });
    renderApp(gw, '/console/sandboxes/sb-p');
    await screen.findByLabelText('Endpoint URL (port 8080)');
    const open = screen.getByRole('button', { name: 'Open via proxy' });
    expect(open.getAttribute('aria-disabled')).toBe('true');
    const reason = document.getElementById(open.getAttribute('aria-describedby')!)!;
    expect(reason.textContent).toBe('The sandbox is paused: resume it to open its ports.');
    expect(screen.getByTestId('status-explained').textContent).toContain('Resume it');
    expect(screen.getByRole('button', { name: 'Run' }).getAttribute('aria-disabled')).toBe('true');
  });

  it('runs a command in the terminal and streams its output', async () => {
    const gw = gateway(sandbox({ id: 'sb-t' }));
    gw.route('GET', '/v1/sandboxes/sb-t/diagnostics/logs', { status: 200, body: { content: '' } });
    gw.route('POST', '/v1/sandboxes/sb-t/proxy/44772/command', (c) => {
      expect(c.body).toMatchObject({ command: 'echo hi' });
      expect(c.headers['x-csrf-token']).toBe(ALICE.csrfToken);
      return {
        status: 200,
        text: '{"type":"init","text":"c1"}\n\n{"type":"stdout","text":"hi\\n"}\n\n{"type":"execution_complete","execution_time":3}\n\n',
      };
    });
    renderApp(gw, '/console/sandboxes/sb-t');
    const term = await screen.findByRole('region', { name: 'Terminal' });
    await userEvent.type(within(term).getByLabelText('Command'), 'echo hi');
    await userEvent.click(within(term).getByRole('button', { name: 'Run' }));
    const out = within(term).getByTestId('terminal-output');
    await waitFor(() => expect(out.textContent).toContain('$ echo hi\nhi\nexit code 0'));
  });

  it('hides the terminal and explains logs for read_only', async () => {
    const gw = gateway(sandbox({ id: 'sb-b' }), BOB);
    renderApp(gw, '/console/sandboxes/sb-b');
    await screen.findByRole('region', { name: 'Overview' });
    expect(screen.queryByRole('region', { name: 'Terminal' })).toBeNull();
    expect(gw.calls.some((c) => c.path.includes('/diagnostics/'))).toBe(false);
  });
});

describe('the agent event stream', () => {
  it('splits frames across chunks and accepts data: lines', () => {
    const got: CommandEvent[] = [];
    const p = new EventStreamParser((e) => got.push(e));
    p.push('{"type":"stdout","te');
    p.push('xt":"a"}\n\ndata: {"type":"stderr","text":"b"}\n\n{"type":"error","error":{"ename":"CommandExecError","evalue":"2"}}');
    p.end();
    expect(got.map((e) => e.type)).toEqual(['stdout', 'stderr', 'error']);
    expect(got.flatMap(eventLines).map((l) => l.text)).toEqual(['a', 'b', 'exit code 2']);
  });
});

describe('friendly errors', () => {
  it('never shows raw engine text and keeps the code', () => {
    const raw = new ApiError(
      500,
      'DOCKER::SANDBOX_IMAGE_PULL_FAILED',
      'pull: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 10.0.0.2:53: no such host',
      'req-1',
    );
    const f = friendlyError(raw);
    expect(f.summary).toBe('The image could not be found or downloaded.');
    expect(f.next).toMatch(/Check the image name/);
    expect(f.showDetail).toBe(false);
  });

  it('keeps a validation message written for people', () => {
    const f = friendlyError(new ApiError(400, 'SANDBOX::INVALID_PARAMETER', "'timeout' must be at least 60 seconds."));
    expect(f.summary).toBe("'timeout' must be at least 60 seconds.");
  });

  it('explains states', () => {
    expect(explainStatus({ state: 'Running' })).toBeNull();
    expect(explainStatus({ state: 'Terminated' })!.next).toMatch(/does not exit/);
    expect(explainStatus({ state: 'Failed', reason: 'DOCKER::SANDBOX_IMAGE_PULL_FAILED' })!.summary).toMatch(/image/);
  });
});
