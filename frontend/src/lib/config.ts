import { safeHttpUrl } from './trace';

export interface LinksConfig {
  version: string | null;
  grafana_url: string | null;
  jaeger_url: string | null;
  prometheus_url: string | null;
}

export const EMPTY_CONFIG: LinksConfig = {
  version: null,
  grafana_url: null,
  jaeger_url: null,
  prometheus_url: null,
};

export function parseConfig(data: unknown): LinksConfig {
  if (typeof data !== 'object' || data === null) return EMPTY_CONFIG;
  const o = data as Record<string, unknown>;
  return {
    version: typeof o.version === 'string' ? o.version : null,
    grafana_url: safeHttpUrl(o.grafana_url),
    jaeger_url: safeHttpUrl(o.jaeger_url),
    prometheus_url: safeHttpUrl(o.prometheus_url),
  };
}
