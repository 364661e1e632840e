import { useEffect } from 'react';
import { EchoForm } from './components/EchoForm';
import { Links } from './components/Links';
import { ConnectionBanner, LiveView } from './components/LiveView';
import { SlowRequests } from './components/SlowRequests';
import { TcpView } from './components/TcpView';
import { WsConsole } from './components/WsConsole';
import { useConfig, useLive } from './hooks';

declare global {
  interface Window {
    /** read by the e2e test: ms from navigation start to the first painted frame of the app */
    __glasshouseFirstRender?: number;
  }
}

export function App() {
  const live = useLive();
  const config = useConfig();
  const s = live.latest?.stats ?? null;

  useEffect(() => {
    requestAnimationFrame(() => {
      if (window.__glasshouseFirstRender === undefined) {
        window.__glasshouseFirstRender = performance.now();
        document.documentElement.dataset.ready = 'true';
      }
    });
  }, []);

  // never show a stale "serving": while cut off, the server's state is unknown to us
  const state = live.link.kind === 'open' && s ? s.state : live.link.disconnectedSince !== null && live.link.everOpen ? 'unreachable' : 'unknown';

  return (
    <>
      <a href="#main" className="skip">Skip to content</a>
      <header className="top">
        <div className="brand">
          <svg width="28" height="28" viewBox="0 0 16 16" aria-hidden="true">
            <rect x="1" y="5" width="14" height="10" rx="1" className="logo-body" />
            <path d="M1 6 8 1.5 15 6" className="logo-roof" />
          </svg>
          <h1>glasshouse</h1>
          {config.version || s?.version ? <span className="muted small">v{config.version || s?.version}</span> : null}
        </div>
        <span className={`state state-${state}`} data-testid="server-state" data-state={state} aria-label={`Server state: ${state}`}>
          {state}
        </span>
        <Links config={config} />
      </header>
      <main id="main">
        <p className="lede">
          A live view of the very server answering you: every number below comes from it, once a second.
        </p>
        <ConnectionBanner state={live} retryNow={live.retryNow} />
        <LiveView state={live} model={live.model} retryNow={live.retryNow} />
        <TcpView />
        <section aria-labelledby="play-title" className="playgrounds">
          <h2 id="play-title">Playgrounds</h2>
          <div className="cards">
            <EchoForm jaegerUrl={config.jaeger_url} />
            <WsConsole />
            <SlowRequests jaegerUrl={config.jaeger_url} />
          </div>
        </section>
      </main>
      <footer className="muted small">
        glasshouse — HTTP/1.1 and WebSocket{s?.model ? ` on ${s.model}` : ''}. Metrics at <a href="/metrics">/metrics</a>, health at{' '}
        <a href="/healthz">/healthz</a>.
      </footer>
    </>
  );
}
