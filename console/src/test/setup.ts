import { afterEach } from 'vitest';
import { cleanup, configure } from '@testing-library/react';

// `findBy*` waits up to 5 s (default 1 s): the tests run beside a cargo build in `make test`,
// and a slow machine must not turn into a failure. A real failure still fails, just later.
configure({ asyncUtilTimeout: 5000 });

afterEach(() => {
  cleanup();
  window.history.replaceState(null, '', '/console/');
});
