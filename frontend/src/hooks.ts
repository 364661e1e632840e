import { useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { EMPTY_CONFIG, parseConfig, type LinksConfig } from './lib/config';
import { LiveModel } from './lib/live';
import { parseStats } from './lib/stats';
import { StatsStream } from './lib/stream';
import { wsUrl } from './lib/urls';

/** The live model fed by `/ws/stats` (seeded once by `/api/stats` for a fast first paint). */
export function useLive(): { model: LiveModel; retryNow: () => void } & ReturnType<LiveModel['getState']> {
  const model = useMemo(() => new LiveModel(90), []);
  const [stream, setStream] = useState<StatsStream | null>(null);
  useEffect(() => {
    const s = new StatsStream(wsUrl('/ws/stats', window.location), {
      onSample: (sample) => model.ingest(sample),
      onStatus: (st) => model.linkChanged(st),
      onGap: (g) => model.gap(g),
    });
    s.start();
    setStream(s);
    const ctl = new AbortController();
    fetch('/api/stats', { signal: ctl.signal, headers: { accept: 'application/json' } })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
      .then((text) => {
        const p = parseStats(text);
        if (p.ok) model.seed({ stats: p.stats, receivedAt: Date.now() });
      })
      .catch(() => {
        /* the stream will do */
      });
    return () => {
      ctl.abort();
      s.stop();
    };
  }, [model]);
  const state = useSyncExternalStore(model.subscribe, model.getState);
  return { ...state, model, retryNow: () => stream?.retryNow() };
}

export function useConfig(): LinksConfig {
  const [config, setConfig] = useState<LinksConfig>(EMPTY_CONFIG);
  useEffect(() => {
    const ctl = new AbortController();
    fetch('/api/config', { signal: ctl.signal, headers: { accept: 'application/json' } })
      .then((r) => (r.ok ? r.json() : null))
      .then((j) => setConfig(parseConfig(j)))
      .catch(() => {});
    return () => ctl.abort();
  }, []);
  return config;
}

/** Re-render every `ms` (for "disconnected for 12 s" and the like). */
export function useNow(ms = 1000, active = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms, active]);
  return now;
}

/** Follows prefers-color-scheme so canvases can be redrawn with the right colours. */
export function useColorScheme(): 'light' | 'dark' {
  const get = () =>
    typeof window !== 'undefined' && window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  const [scheme, setScheme] = useState<'light' | 'dark'>(get);
  useEffect(() => {
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    if (!mq) return;
    const on = () => setScheme(get());
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  return scheme;
}
