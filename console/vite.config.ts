/// <reference types="vitest/config" />
import { defineConfig } from 'vite';

// The gateway serves the built files under /console/ and proxies /v1 and /auth.
// For `npm run dev`, point GATEHOUSE_URL at a running gateway (default http://127.0.0.1:8080).
// (Read through globalThis so that type-checking needs no @types/node.)
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const gateway = env.GATEHOUSE_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/console/',
  oxc: {
    jsx: { runtime: 'automatic' },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Everything is a file of its own: nothing is inlined as a data: URI or a <script>.
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
  },
  server: {
    proxy: {
      '/v1': { target: gateway, changeOrigin: false, ws: true },
      '/auth': { target: gateway, changeOrigin: false },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
    restoreMocks: true,
    unstubGlobals: true,
    testTimeout: 30000,
  },
});
