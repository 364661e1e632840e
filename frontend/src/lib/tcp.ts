// Types and pure functions for `/api/tcp`: the userland TCP/IP's STATUS
// (`--stack user`), schema in docs/api.md. Side-effect free and unit-tested.

export interface TcpConnection {
  state: string;
  local: string;
  remote: string;
  cwnd: number;
  srtt_ms: number | null;
  rto_ms: number;
  retransmissions: number;
  unsent: number;
  out_of_order: number;
}

export interface TcpView {
  address: string;
  states: Record<string, number>;
  listeners: { port: number; queued: number; half_open: number }[];
  retransmissions: number;
  out_of_order_segments: number;
  packets_in: number;
  packets_out: number;
  connections: TcpConnection[];
  truncated: boolean;
}

/** What the endpoint said: a view, no user stack (404), or a failure to show. */
export type TcpResult = { kind: 'view'; view: TcpView } | { kind: 'absent' } | { kind: 'error'; error: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function n(v: unknown, fallback = 0): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fallback;
}

function s(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** The RFC 9293 states in the order a connection lives them. */
export const STATE_ORDER = [
  'LISTEN',
  'SYN-SENT',
  'SYN-RECEIVED',
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
  'CLOSED',
];

/** Parse one `/api/tcp` answer given its HTTP status and body. */
export function parseTcp(status: number, body: string): TcpResult {
  if (status === 404) return { kind: 'absent' };
  if (status !== 200) return { kind: 'error', error: `HTTP ${status}` };
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    return { kind: 'error', error: 'not JSON' };
  }
  if (!isObject(data) || !Array.isArray(data.connections) || !isObject(data.states)) {
    return { kind: 'error', error: 'not a TCP status document' };
  }
  const counters = isObject(data.counters) ? data.counters : {};
  const states: Record<string, number> = {};
  for (const [k, v] of Object.entries(data.states)) states[k] = n(v);
  const connections = data.connections.filter(isObject).map((c) => ({
    state: s(c.state),
    local: s(c.local),
    remote: s(c.remote),
    cwnd: n(c.cwnd),
    srtt_ms: typeof c.srtt_ms === 'number' ? c.srtt_ms : null,
    rto_ms: n(c.rto_ms),
    retransmissions: n(c.retransmissions),
    unsent: n(c.unsent),
    out_of_order: n(c.out_of_order),
  }));
  const listeners = (Array.isArray(data.listeners) ? data.listeners : [])
    .filter(isObject)
    .map((l) => ({ port: n(l.port), queued: n(l.queued), half_open: n(l.half_open) }));
  return {
    kind: 'view',
    view: {
      address: s(data.address),
      states,
      listeners,
      retransmissions: n(data.retransmissions),
      out_of_order_segments: n(data.out_of_order_segments),
      packets_in: n(counters.packets_in),
      packets_out: n(counters.packets_out),
      connections,
      truncated: data.truncated === true,
    },
  };
}

/** The states present, in lifecycle order (unknown names last), with their counts. */
export function stateCounts(view: TcpView): [string, number][] {
  const rank = (k: string) => {
    const i = STATE_ORDER.indexOf(k);
    return i < 0 ? STATE_ORDER.length : i;
  };
  return Object.entries(view.states)
    .filter(([, c]) => c > 0)
    .sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]));
}
