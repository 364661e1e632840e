import { describe, expect, it } from 'vitest';
import { jaegerTraceUrl, parseTraceResponse, safeHttpUrl } from './trace';
import { parseConfig } from './config';
import { wsUrl } from './urls';

describe('traceresponse', () => {
  const H = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it('parses a W3C traceresponse header', () => {
    expect(parseTraceResponse(H)).toEqual({
      version: '00',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      flags: '01',
      sampled: true,
    });
    expect(parseTraceResponse(` ${H.toUpperCase()} `)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });
  it('rejects malformed and all-zero ids', () => {
    expect(parseTraceResponse(null)).toBe(null);
    expect(parseTraceResponse('')).toBe(null);
    expect(parseTraceResponse('00-xyz-00f067aa0ba902b7-01')).toBe(null);
    expect(parseTraceResponse('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBe(null);
    expect(parseTraceResponse('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe(null);
  });
  it('builds the Jaeger link only for a configured http(s) Jaeger', () => {
    const id = '4bf92f3577b34da6a3ce929d0e0e4736';
    expect(jaegerTraceUrl('http://localhost:16686', id)).toBe(`http://localhost:16686/trace/${id}`);
    expect(jaegerTraceUrl('http://localhost:16686/', id)).toBe(`http://localhost:16686/trace/${id}`);
    expect(jaegerTraceUrl('http://host/jaeger/', id)).toBe(`http://host/jaeger/trace/${id}`);
    expect(jaegerTraceUrl(null, id)).toBe(null);
    expect(jaegerTraceUrl('javascript:alert(1)', id)).toBe(null);
    expect(jaegerTraceUrl('http://localhost:16686', 'nope')).toBe(null);
  });
  it('accepts only http(s) URLs from the config', () => {
    expect(safeHttpUrl('https://grafana.example/')).toBe('https://grafana.example');
    expect(safeHttpUrl('ftp://x')).toBe(null);
    expect(safeHttpUrl('not a url')).toBe(null);
    expect(safeHttpUrl(3)).toBe(null);
  });
});

describe('/api/config', () => {
  it('hides links that are null or unsafe', () => {
    expect(parseConfig({ version: '0.1.0', grafana_url: null, jaeger_url: 'http://localhost:16686', prometheus_url: 'data:x' })).toEqual({
      version: '0.1.0',
      grafana_url: null,
      jaeger_url: 'http://localhost:16686',
      prometheus_url: null,
    });
    expect(parseConfig(null).jaeger_url).toBe(null);
  });
});

describe('wsUrl', () => {
  it('derives ws(s):// from the page location', () => {
    expect(wsUrl('/ws/stats', { protocol: 'http:', host: 'localhost:8080' })).toBe('ws://localhost:8080/ws/stats');
    expect(wsUrl('ws/echo', { protocol: 'https:', host: 'example.org' })).toBe('wss://example.org/ws/echo');
    expect(wsUrl('/ws/echo', { protocol: 'http:', host: '[::1]:8080' })).toBe('ws://[::1]:8080/ws/echo');
  });
});
