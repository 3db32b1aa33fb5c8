import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ALICE, BOB, fakeGateway, sandbox } from '../test/gateway';
import { renderApp } from '../test/render';

async function openForm(me = ALICE) {
  const gw = fakeGateway({ me });
  renderApp(gw, '/console/new');
  await screen.findByRole('heading', { level: 1, name: 'New sandbox' });
  return gw;
}

const field = (label: string) => screen.getByLabelText(label, { exact: false }) as HTMLInputElement;

async function fill(label: string, value: string) {
  const el = field(label);
  await userEvent.clear(el);
  if (value) await userEvent.type(el, value);
}

describe('create form', () => {
  it('has the labelled fields and the submit button', async () => {
    await openForm();
    for (const label of ['Image', 'Entrypoint', 'Timeout (seconds)', 'CPU', 'Memory']) {
      expect(screen.getByRole('textbox', { name: new RegExp(`^${label.replace(/[()]/g, '\\$&')}`) })).toBeTruthy();
    }
    expect(screen.getByRole('button', { name: 'Create sandbox' })).toBeTruthy();
  });

  it('blocks invalid input, shows each rule and sends nothing', async () => {
    const gw = await openForm();
    await fill('Timeout (seconds)', '30');
    await fill('CPU', 'lots');
    await fill('Memory', '1Mi');
    await userEvent.click(screen.getByRole('button', { name: 'Create sandbox' }));

    const summary = await screen.findByTestId('error-summary');
    expect(summary.textContent).toMatch(/5 fields need attention/);
    expect(screen.getByTestId('image-error').textContent).toMatch(/Image is required/);
    expect(screen.getByTestId('entrypoint-error').textContent).toMatch(/at least one command/);
    expect(screen.getByTestId('timeout-error').textContent).toMatch(/below the minimum of 60s/);
    expect(screen.getByTestId('cpu-error').textContent).toMatch(/millicores/);
    expect(screen.getByTestId('memory-error').textContent).toMatch(/at least 6Mi/);
    expect(field('Image').getAttribute('aria-invalid')).toBe('true');
    expect(field('Image').getAttribute('aria-describedby')).toContain('image-error');
    expect(gw.calls.some((c) => c.method === 'POST')).toBe(false);
  });

  it('shows an error as soon as a field is left invalid', async () => {
    await openForm();
    await fill('Memory', '512MB');
    await userEvent.tab();
    expect(screen.getByTestId('memory-error').textContent).toMatch(/invalid/);
    await fill('Memory', '1Gi');
    expect(screen.queryByTestId('memory-error')).toBeNull();
  });

  it('splits the entrypoint like a shell and shows the array', async () => {
    await openForm();
    await userEvent.type(field('Entrypoint'), `sh -c "echo hi; sleep 1000"`);
    expect(screen.getByTestId('entrypoint-parsed').textContent).toContain('["sh","-c","echo hi; sleep 1000"]');
    await fill('Entrypoint', `sh -c 'oops`);
    await userEvent.tab();
    expect(screen.getByTestId('entrypoint-error').textContent).toMatch(/unclosed single quote/);
  });

  it('rejects reserved and malformed metadata keys and bad env names', async () => {
    const gw = await openForm();
    await userEvent.type(field('Image'), 'busybox');
    await userEvent.type(field('Entrypoint'), 'sleep 100');
    await userEvent.click(screen.getByRole('button', { name: 'Add metadata' }));
    await userEvent.type(screen.getByLabelText('Metadata 1 key'), 'opensandbox.io/x');
    await userEvent.click(screen.getByRole('button', { name: 'Add metadata' }));
    await userEvent.type(screen.getByLabelText('Metadata 2 key'), 'access.team');
    await userEvent.click(screen.getByRole('button', { name: 'Add metadata' }));
    await userEvent.type(screen.getByLabelText('Metadata 3 key'), 'Bad Key');
    await userEvent.type(screen.getByLabelText('Metadata 3 value'), 'has space');
    await userEvent.click(screen.getByRole('button', { name: 'Add variable' }));
    await userEvent.type(screen.getByLabelText('Variable 1 name'), 'A=B');
    await userEvent.click(screen.getByRole('button', { name: 'Create sandbox' }));

    const summary = await screen.findByTestId('error-summary');
    const text = summary.textContent ?? '';
    expect(text).toMatch(/reserved prefix 'opensandbox.io\/'/);
    expect(text).toMatch(/'access.team' is reserved/);
    expect(text).toMatch(/Metadata key 'Bad Key' is invalid/);
    expect(text).toMatch(/Metadata value 'has space' is invalid/);
    expect(text).toMatch(/must not contain '='/);
    expect(gw.calls.some((c) => c.method === 'POST')).toBe(false);
  });

  it('creates a sandbox and follows it from Pending to Running', async () => {
    const gw = await openForm();
    let polls = 0;
    gw.route('POST', '/v1/sandboxes', (c) => ({
      status: 202,
      body: sandbox({ id: 'sb-new', status: { state: 'Pending', reason: 'provisioning' }, metadata: (c.body as { metadata?: Record<string, string> }).metadata ?? {} }),
    }));
    gw.route('GET', '/v1/sandboxes/sb-new', () => {
      polls++;
      return { status: 200, body: sandbox({ id: 'sb-new', status: { state: polls < 2 ? 'Pending' : 'Running' } }) };
    });

    await userEvent.type(field('Image'), 'gatehouse/busybox:latest');
    await userEvent.type(field('Entrypoint'), `sh -c "sleep 1000"`);
    await fill('Timeout (seconds)', '600');
    await fill('CPU', '0.5');
    await fill('Memory', '64Mi');
    await userEvent.click(screen.getByRole('button', { name: 'Add variable' }));
    await userEvent.type(screen.getByLabelText('Variable 1 name'), 'GREETING');
    await userEvent.type(screen.getByLabelText('Variable 1 value'), 'hello world');
    await userEvent.click(screen.getByRole('button', { name: 'Add metadata' }));
    await userEvent.type(screen.getByLabelText('Metadata 1 key'), 'project');
    await userEvent.type(screen.getByLabelText('Metadata 1 value'), 'apollo');
    await userEvent.click(screen.getByRole('button', { name: 'Create sandbox' }));

    expect(await screen.findByRole('heading', { level: 1, name: 'Starting sandbox' })).toBeTruthy();
    const post = gw.calls.find((c) => c.method === 'POST')!;
    expect(post.path).toBe('/v1/sandboxes');
    expect(post.headers['x-csrf-token']).toBe(ALICE.csrfToken);
    expect(post.headers['content-type']).toBe('application/json');
    expect(post.body).toEqual({
      image: { uri: 'gatehouse/busybox:latest' },
      entrypoint: ['sh', '-c', 'sleep 1000'],
      timeout: 600,
      resourceLimits: { cpu: '0.5', memory: '64Mi' },
      env: { GREETING: 'hello world' },
      metadata: { project: 'apollo' },
    });
    const steps = screen.getByRole('list', { name: 'Progress' });
    expect(within(steps).getByText(/Provisioning/).closest('li')!.getAttribute('aria-current')).toBe('step');

    expect(await screen.findByRole('heading', { level: 1, name: 'Sandbox running' }, { timeout: 5000 })).toBeTruthy();
    const view = screen.getByRole('link', { name: 'View sandbox' });
    expect(view.getAttribute('href')).toBe('/console/sandboxes/sb-new');
    await waitFor(() => expect(document.activeElement).toBe(view));
    expect(polls).toBeGreaterThanOrEqual(2);
  });

  it('sends no timeout for an empty field (no expiry) and omits empty limits', async () => {
    const gw = await openForm();
    gw.route('POST', '/v1/sandboxes', { status: 202, body: sandbox({ id: 'sb-x', status: { state: 'Running' } }) });
    await userEvent.type(field('Image'), 'busybox');
    await userEvent.type(field('Entrypoint'), 'sleep 100');
    await fill('Timeout (seconds)', '');
    await fill('CPU', '');
    await fill('Memory', '');
    await userEvent.click(screen.getByRole('button', { name: 'Create sandbox' }));
    expect(await screen.findByRole('heading', { level: 1, name: 'Sandbox running' })).toBeTruthy();
    expect(gw.calls.find((c) => c.method === 'POST')!.body).toEqual({ image: { uri: 'busybox' }, entrypoint: ['sleep', '100'] });
  });

  it('shows the server message when the create is refused', async () => {
    const gw = await openForm();
    gw.route('POST', '/v1/sandboxes', {
      status: 400,
      body: { code: 'SANDBOX::INVALID_PARAMETER', message: 'Sandbox timeout 100000s exceeds configured maximum of 86400s.' },
    });
    await userEvent.type(field('Image'), 'busybox');
    await userEvent.type(field('Entrypoint'), 'sleep 100');
    await fill('Timeout (seconds)', '100000');
    await userEvent.click(screen.getByRole('button', { name: 'Create sandbox' }));
    expect(await screen.findByText('Sandbox timeout 100000s exceeds configured maximum of 86400s.')).toBeTruthy();
    expect(screen.getByRole('heading', { level: 1, name: 'New sandbox' })).toBeTruthy();
  });

  it('disables submit for a role without sandbox:create', async () => {
    const gw = await openForm(BOB);
    const submit = screen.getByRole('button', { name: 'Create sandbox' });
    expect(submit.getAttribute('aria-disabled')).toBe('true');
    expect(submit.getAttribute('title')).toBe('Your role (read_only) does not allow creating sandboxes.');
    await userEvent.type(field('Image'), 'busybox');
    await userEvent.type(field('Entrypoint'), 'sleep 100');
    await userEvent.click(submit);
    expect(gw.calls.some((c) => c.method === 'POST')).toBe(false);
  });

  it('sends the name as metadata and explains a sandbox that fails to start', async () => {
    const gw = await openForm();
    gw.route('POST', '/v1/sandboxes', (c) => ({
      status: 202,
      body: sandbox({ id: 'sb-bad', status: { state: 'Pending' }, metadata: (c.body as { metadata?: Record<string, string> }).metadata ?? {} }),
    }));
    gw.route('GET', '/v1/sandboxes/sb-bad', {
      status: 200,
      body: sandbox({ id: 'sb-bad', status: { state: 'Failed', reason: 'CONTAINER_EXITED_ERROR', message: 'Sandbox container exited with code 2.' } }),
    });
    await userEvent.type(field('Name'), 'nightly-job');
    await userEvent.type(field('Image'), 'gatehouse/busybox:latest');
    await userEvent.type(field('Entrypoint'), 'false');
    await userEvent.click(screen.getByRole('button', { name: 'Create sandbox' }));
    expect(await screen.findByRole('heading', { level: 1, name: 'Sandbox failed to start' }, { timeout: 5000 })).toBeTruthy();
    expect(gw.calls.find((c) => c.method === 'POST')!.body).toMatchObject({ metadata: { name: 'nightly-job' } });
    const explained = screen.getByTestId('status-explained');
    expect(explained.textContent).toContain('exit code 2');
    expect(explained.textContent).toContain('on the sandbox page (View sandbox)');
  });
});
