// Plain words for what went wrong: API error codes and sandbox failure reasons become a
// sentence and a next step. The code and request id stay visible for support; raw engine
// text (registry addresses, dial errors) is never shown verbatim.

import { ApiError } from './api';

export interface Friendly {
  /** What happened, in one sentence. */
  summary: string;
  /** What to do next. */
  next: string | null;
  /** Whether the server's own message is safe and useful to show as well. */
  showDetail: boolean;
}

/** Engine or network internals that mean nothing to a user and may leak addresses. */
const RAW_ENGINE = /(dial tcp|lookup [^ ]+ on |no such host|connection refused|i\/o timeout|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|registry-1\.|manifest unknown|x509:)/i;

export function looksRaw(message: string): boolean {
  return RAW_ENGINE.test(message);
}

const BY_CODE: Record<string, Omit<Friendly, 'showDetail'>> = {
  'DOCKER::SANDBOX_IMAGE_PULL_FAILED': {
    summary: 'The image could not be found or downloaded.',
    next: 'Check the image name and tag for typos, or use an image that is already on the engine.',
  },
  'SANDBOX::NOT_FOUND': {
    summary: 'This sandbox does not exist, or you cannot see it.',
    next: 'It may have expired or been deleted. Go back to the list.',
  },
  'SANDBOX::INVALID_STATE': {
    summary: 'The sandbox is not in a state that allows this.',
    next: 'Wait for it to finish changing state (or resume it if it is paused), then try again.',
  },
  'SANDBOX::EXPIRATION_NOT_SET': {
    summary: 'This sandbox has no expiry time, so it cannot be renewed.',
    next: null,
  },
  'SANDBOX::INVALID_EXPIRATION': {
    summary: 'That expiry time is not allowed.',
    next: 'Pick a shorter extension.',
  },
  'SANDBOX::API_NOT_SUPPORTED': {
    summary: 'This backend does not support that action.',
    next: null,
  },
  'SANDBOX::PROXY_UPSTREAM_ERROR': {
    summary: 'Nothing in the sandbox answered on that port.',
    next: 'Check that the program inside listens on that port; its logs may say why.',
  },
  'GATEWAY::SANDBOX_TIMEOUT': {
    summary: 'The sandbox did not answer in time.',
    next: 'If it is paused, resume it; otherwise check its logs.',
  },
  'GATEWAY::FORBIDDEN': {
    summary: 'Your role does not allow this.',
    next: 'Ask an administrator for the operator role if you need it.',
  },
  'GATEWAY::UPSTREAM_UNAVAILABLE': {
    summary: 'The sandbox service is not reachable right now.',
    next: 'Try again in a minute; if it persists, tell the platform team.',
  },
  'GATEWAY::PAYLOAD_TOO_LARGE': {
    summary: 'The request is too large.',
    next: 'Send less data at once.',
  },
  MISSING_API_KEY: { summary: 'You are signed out.', next: 'Sign in again.' },
  NETWORK_ERROR: {
    summary: 'The console could not reach the gateway.',
    next: 'Check your connection and try again.',
  },
};

const BY_STATUS: Record<number, Omit<Friendly, 'showDetail'>> = {
  400: { summary: 'The request was not accepted.', next: 'Check the values you entered.' },
  403: BY_CODE['GATEWAY::FORBIDDEN']!,
  404: { summary: 'Not found.', next: 'It may have been deleted.' },
  409: BY_CODE['SANDBOX::INVALID_STATE']!,
  429: { summary: 'Too many requests.', next: 'Wait a moment and try again.' },
  501: BY_CODE['SANDBOX::API_NOT_SUPPORTED']!,
  502: BY_CODE['GATEWAY::UPSTREAM_UNAVAILABLE']!,
  503: BY_CODE['GATEWAY::UPSTREAM_UNAVAILABLE']!,
  504: BY_CODE['GATEWAY::SANDBOX_TIMEOUT']!,
};

/** The plain-words version of any thrown value. */
export function friendlyError(e: unknown): Friendly {
  if (!(e instanceof ApiError)) {
    const message = e instanceof Error && e.message ? e.message : 'Something went wrong.';
    return { summary: message, next: null, showDetail: false };
  }
  const raw = looksRaw(e.message);
  const known = BY_CODE[e.code] ?? (e.status >= 500 || raw ? BY_STATUS[e.status] : undefined);
  if (known) return { ...known, showDetail: !raw && e.status < 500 && e.message !== known.summary };
  // Validation and other 4xx messages from the API are written for people: keep them.
  if (!raw && e.status < 500) return { summary: e.message, next: BY_STATUS[e.status]?.next ?? null, showDetail: false };
  const fallback = BY_STATUS[e.status] ?? { summary: 'Something went wrong on the server.', next: 'Try again; if it persists, tell the platform team with the request id below.' };
  return { ...fallback, showDetail: false };
}

/** Why a sandbox stopped, in plain words, with what to do next; null when it did not. */
export function explainStatus(status: { state: string; reason?: string; message?: string }): Omit<Friendly, 'showDetail'> | null {
  const reason = status.reason ?? '';
  const code = /exited with code (\d+)/.exec(status.message ?? '')?.[1];
  if (status.state === 'Failed') {
    if (/IMAGE|PULL/i.test(reason))
      return {
        summary: 'The image could not be found or downloaded, so the sandbox never started.',
        next: 'Create it again with a correct image name; delete this one.',
      };
    if (code)
      return {
        summary: `The program the sandbox runs (its entrypoint) stopped with an error (exit code ${code}).`,
        next: 'Read the logs below to see what it printed before it stopped, fix the command or image, and create a new sandbox.',
      };
    return {
      summary: 'The sandbox failed.',
      next: 'Read the logs below; they usually say why.',
    };
  }
  if (status.state === 'Terminated')
    return {
      summary: 'The program the sandbox runs finished, so the sandbox stopped.',
      next: 'To keep a sandbox running, use an entrypoint that does not exit (a server, or `sleep`).',
    };
  if (status.state === 'Paused')
    return {
      summary: 'The sandbox is paused: its processes are frozen and its ports do not answer.',
      next: 'Resume it to open its ports or run commands.',
    };
  return null;
}
