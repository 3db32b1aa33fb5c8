import { describe, expect, it, vi } from 'vitest';
import { ApiClient, ApiError, encodeMetadataFilter, endpointUrl, listQuery, parseError, proxyPath } from './api';

function mockFetch(status = 200, body: string | null = '{}', headers: Record<string, string> = {}) {
  return vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) => new Response(body, { status, headers }));
}

function sent(fetch: ReturnType<typeof mockFetch>, i = 0) {
  const [input, init] = fetch.mock.calls[i]!;
  return { url: String(input), init: init!, headers: new Headers(init!.headers) };
}

describe('CSRF and JSON headers', () => {
  const client = (fetch: ReturnType<typeof mockFetch>) =>
    new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, getCsrfToken: () => 'tok-1' });

  it('sends no CSRF token and no Content-Type on reads', async () => {
    const fetch = mockFetch(200, '{"items":[],"pagination":{}}');
    await client(fetch).listSandboxes({});
    const { init, headers } = sent(fetch);
    expect(init.method).toBe('GET');
    expect(headers.has('X-CSRF-Token')).toBe(false);
    expect(headers.has('Content-Type')).toBe(false);
    expect(init.credentials).toBe('same-origin');
  });

  it.each([
    ['POST create', (c: ApiClient) => c.createSandbox({ image: { uri: 'x' }, entrypoint: ['sh'] }), 'POST'],
    ['POST renew', (c: ApiClient) => c.renewExpiration('sb1', '2030-01-01T00:00:00Z'), 'POST'],
    ['POST pause', (c: ApiClient) => c.pauseSandbox('sb1'), 'POST'],
    ['POST resume', (c: ApiClient) => c.resumeSandbox('sb1'), 'POST'],
    ['PATCH metadata', (c: ApiClient) => c.patchMetadata('sb1', { a: 'b', c: null }), 'PATCH'],
    ['DELETE', (c: ApiClient) => c.deleteSandbox('sb1'), 'DELETE'],
    ['POST logout', (c: ApiClient) => c.logout(), 'POST'],
  ])('%s carries X-CSRF-Token and Content-Type: application/json', async (_name, call, method) => {
    const fetch = mockFetch(200, '{}');
    await call(client(fetch));
    const { init, headers } = sent(fetch);
    expect(init.method).toBe(method);
    expect(headers.get('X-CSRF-Token')).toBe('tok-1');
    expect(headers.get('Content-Type')).toBe('application/json');
    expect(init.credentials).toBe('same-origin');
  });

  it('sends the JSON body of a mutation', async () => {
    const fetch = mockFetch(200, '{"expiresAt":"2030-01-01T00:00:00Z"}');
    const res = await client(fetch).renewExpiration('sb 1', '2030-01-01T00:00:00Z');
    const { url, init } = sent(fetch);
    expect(url).toBe('/v1/sandboxes/sb%201/renew-expiration');
    expect(JSON.parse(init.body as string)).toEqual({ expiresAt: '2030-01-01T00:00:00Z' });
    expect(res.expiresAt).toBe('2030-01-01T00:00:00Z');
  });

  it('omits the token when the session has none (trusted-header mode)', async () => {
    const fetch = mockFetch(204, null);
    await new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, getCsrfToken: () => null }).deleteSandbox('x');
    expect(sent(fetch).headers.has('X-CSRF-Token')).toBe(false);
  });

  it('never sends an API key header', async () => {
    const fetch = mockFetch(200, '{}');
    const c = client(fetch);
    await c.getSandbox('a');
    await c.createSandbox({ image: { uri: 'x' }, entrypoint: ['sh'] });
    for (let i = 0; i < fetch.mock.calls.length; i++) {
      const { headers } = sent(fetch, i);
      expect(headers.has('OPEN-SANDBOX-API-KEY')).toBe(false);
      expect(headers.has('Authorization')).toBe(false);
    }
  });
});

describe('responses', () => {
  it('returns undefined for 204 and 202 without a body', async () => {
    const c = new ApiClient({ fetch: mockFetch(204, null) as unknown as typeof fetch });
    await expect(c.deleteSandbox('a')).resolves.toBeUndefined();
    const c2 = new ApiClient({ fetch: mockFetch(202, '') as unknown as typeof fetch });
    await expect(c2.pauseSandbox('a')).resolves.toBeUndefined();
  });

  it('asks for a server-proxy endpoint', async () => {
    const fetch = mockFetch(200, '{"endpoint":"gw.example:8080/v1/sandboxes/a/proxy/8080"}');
    const res = await new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch }).getEndpoint('a', 8080);
    expect(sent(fetch).url).toBe('/v1/sandboxes/a/endpoints/8080?use_server_proxy=true');
    expect(endpointUrl(res.endpoint, 'https:')).toBe('https://gw.example:8080/v1/sandboxes/a/proxy/8080');
    expect(endpointUrl('http://already/x', 'https:')).toBe('http://already/x');
    expect(proxyPath('a/b', 8080)).toBe('/v1/sandboxes/a%2Fb/proxy/8080/');
  });

  it('reports an unreadable success body as an ApiError', async () => {
    const c = new ApiClient({ fetch: mockFetch(200, 'not json') as unknown as typeof fetch });
    await expect(c.getSandbox('a')).rejects.toMatchObject({ code: 'INVALID_RESPONSE' });
  });
});

describe('errors', () => {
  it('parses the {code, message} shape', async () => {
    const fetch = mockFetch(403, '{"code":"GATEWAY::FORBIDDEN","message":"role read_only may not sandbox:delete"}', {
      'X-Request-ID': 'req-9',
    });
    const c = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch });
    const err = await c.deleteSandbox('a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({
      status: 403,
      code: 'GATEWAY::FORBIDDEN',
      message: 'role read_only may not sandbox:delete',
      requestId: 'req-9',
    });
  });

  it('handles non-JSON bodies', () => {
    const html = parseError(502, 'Bad Gateway', '<html><body>nginx</body></html>');
    expect(html).toMatchObject({ status: 502, code: 'HTTP_502', message: 'The gateway answered 502 Bad Gateway.' });
    const plain = parseError(500, '', 'upstream timed out');
    expect(plain.message).toBe('The gateway answered 500 Internal server error: upstream timed out');
    const empty = parseError(503, '', '');
    expect(empty.message).toBe('The gateway answered 503 Service unavailable.');
    const detail = parseError(422, '', '{"detail":"field required"}');
    expect(detail.message).toBe('field required');
    const array = parseError(400, '', '[1,2]');
    expect(array.code).toBe('HTTP_400');
    const noMessage = parseError(409, 'Conflict', '{"code":"X"}');
    expect(noMessage).toMatchObject({ code: 'X', message: 'The gateway answered 409 Conflict.' });
  });

  /** A fetch that never gets an answer, as when the network is gone. */
  const unreachable = () =>
    vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit): Promise<Response> => {
      throw new TypeError('Failed to fetch');
    });
  const retrying = (fetch: ReturnType<typeof vi.fn>) =>
    new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, retryDelayMs: 0 });

  it.each([
    ['a read, after retrying it twice', (c: ApiClient) => c.getSandbox('a'), 3],
    ['a mutation, never retried', (c: ApiClient) => c.deleteSandbox('a'), 1],
  ])('turns a network failure of %s into an ApiError with status 0', async (_name, call, attempts) => {
    const fetch = unreachable();
    const err = await call(retrying(fetch)).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, code: 'NETWORK_ERROR' });
    expect(fetch).toHaveBeenCalledTimes(attempts);
  });

  it('answers a read that failed once at the network level from its retry', async () => {
    let calls = 0;
    const fetch = vi.fn(async () => {
      calls += 1;
      if (calls === 1) throw new TypeError('Failed to fetch');
      return new Response('{"id":"a"}', { status: 200 });
    });
    const sb = await retrying(fetch).getSandbox('a');
    expect(sb).toMatchObject({ id: 'a' });
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('lets an abort through as an abort', async () => {
    const fetch = vi.fn(async () => {
      throw new DOMException('aborted', 'AbortError');
    });
    const err = await new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch }).getSandbox('a').catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
  });
});

describe('401 handling', () => {
  const body = '{"code":"GATEWAY::UNAUTHENTICATED","message":"Authentication required."}';

  it('calls onUnauthorized once for an API call and does not retry', async () => {
    const fetch = mockFetch(401, body);
    const onUnauthorized = vi.fn();
    const c = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, onUnauthorized });
    const err = await c.listSandboxes({}).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401, code: 'GATEWAY::UNAUTHENTICATED', message: 'Authentication required.' });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('treats 401 from /auth/me as an answer, not a lost session', async () => {
    const fetch = mockFetch(401, body);
    const onUnauthorized = vi.fn();
    const c = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch, onUnauthorized });
    await expect(c.me()).rejects.toMatchObject({ status: 401 });
    expect(onUnauthorized).not.toHaveBeenCalled();
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('does not call onUnauthorized for other errors', async () => {
    const onUnauthorized = vi.fn();
    const c = new ApiClient({ fetch: mockFetch(403, '{"code":"GATEWAY::FORBIDDEN","message":"no"}') as unknown as typeof fetch, onUnauthorized });
    await expect(c.getSandbox('a')).rejects.toMatchObject({ status: 403 });
    expect(onUnauthorized).not.toHaveBeenCalled();
  });
});

describe('list query and metadata filter encoding', () => {
  it('encodes the filters as one URL-encoded query string', () => {
    expect(encodeMetadataFilter([])).toBe('');
    expect(encodeMetadataFilter([['project', 'apollo']])).toBe('metadata=project%3Dapollo');
    expect(
      encodeMetadataFilter([
        ['project', 'apollo'],
        ['env', 'prod'],
      ]),
    ).toBe(`metadata=${encodeURIComponent('project=apollo&env=prod')}`);
  });

  it('round-trips keys and values with special characters through two decodings', () => {
    const pairs: Array<[string, string]> = [
      ['example.com/team', 'a b'],
      ['k&=', 'v+%'],
    ];
    const q = new URLSearchParams(encodeMetadataFilter(pairs));
    const inner = new URLSearchParams(q.get('metadata')!);
    expect([...inner.entries()]).toEqual(pairs);
  });

  it('builds the list query with repeated states and paging', () => {
    expect(listQuery({ states: ['Running', 'Paused'], metadata: [['project', 'apollo']], page: 2, pageSize: 50 })).toBe(
      'state=Running&state=Paused&metadata=project%3Dapollo&page=2&pageSize=50',
    );
    expect(listQuery({})).toBe('page=1&pageSize=20');
  });

  it('sends the list query to /v1/sandboxes', async () => {
    const fetch = mockFetch(200, '{"items":[],"pagination":{}}');
    await new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch }).listSandboxes({
      states: ['Running'],
      metadata: [['team', 'x']],
    });
    expect(sent(fetch).url).toBe('/v1/sandboxes?state=Running&metadata=team%3Dx&page=1&pageSize=20');
  });
});
