import { render } from '@testing-library/react';
import { App } from '../App';
import type { FakeGateway } from './gateway';

/** Renders the whole console at `path` against a fake gateway. */
export function renderApp(gw: FakeGateway, path = '/console/') {
  window.history.replaceState(null, '', path);
  return render(<App fetchImpl={gw.fetch} />);
}
