// App-wide context: the API client, the signed-in user and the screen-reader announcer.

import { createContext, useContext } from 'react';
import type { ApiClient } from './api';
import type { AuthConfig, Me } from './types';

export const ApiContext = createContext<ApiClient | null>(null);

export function useApi(): ApiClient {
  const api = useContext(ApiContext);
  if (!api) throw new Error('useApi outside <ApiContext.Provider>');
  return api;
}

export interface Session {
  config: AuthConfig;
  me: Me;
  /** Ends the session at the gateway and leaves the console. */
  signOut: () => Promise<void>;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in console');
  return s;
}

/** Puts a message into the polite `aria-live` region. */
export type Announce = (message: string) => void;

export const AnnounceContext = createContext<Announce>(() => {});

export function useAnnounce(): Announce {
  return useContext(AnnounceContext);
}

/** Shows a short visible confirmation (a toast) that outlives the page that raised it. */
export type Toast = (message: string) => void;

export const ToastContext = createContext<Toast>(() => {});

export function useToast(): Toast {
  return useContext(ToastContext);
}
