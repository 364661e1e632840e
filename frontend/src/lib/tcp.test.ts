import { describe, expect, it } from 'vitest';
import { parseTcp, stateCounts } from './tcp';

const DOC = {
  address: '10.77.0.2',
  clock_ms: 5123,
  counters: { packets_in: 812, packets_out: 790, established: 3 },
  listeners: [{ port: 80, backlog: 1024, queued: 0, half_open: 1 }],
  states: { 'TIME-WAIT': 1, ESTABLISHED: 2, 'SYN-RECEIVED': 0 },
  retransmissions: 4,
  out_of_order_segments: 2,
  connections: [
    {
      state: 'ESTABLISHED',
      local: '10.77.0.2:80',
      remote: '10.77.0.1:41234',
      cwnd: 14600,
      srtt_ms: 1,
      rto_ms: 200,
      retransmissions: 4,
      unsent: 0,
      out_of_order: 0,
    },
    { state: 'SYN-RECEIVED', local: '10.77.0.2:80', remote: '10.77.0.1:41240', srtt_ms: null, cwnd: -1 },
  ],
  truncated: false,
};

describe('parseTcp', () => {
  it('reads a status document', () => {
    const r = parseTcp(200, JSON.stringify(DOC));
    expect(r.kind).toBe('view');
    if (r.kind !== 'view') return;
    expect(r.view.address).toBe('10.77.0.2');
    expect(r.view.packets_in).toBe(812);
    expect(r.view.retransmissions).toBe(4);
    expect(r.view.listeners).toEqual([{ port: 80, queued: 0, half_open: 1 }]);
    expect(r.view.connections[0].srtt_ms).toBe(1);
    // missing or negative numbers become 0, a null RTT stays unknown
    expect(r.view.connections[1].cwnd).toBe(0);
    expect(r.view.connections[1].srtt_ms).toBeNull();
  });

  it('says absent on 404 (the kernel carries the connections)', () => {
    expect(parseTcp(404, '{"error":"no userland TCP/IP"}')).toEqual({ kind: 'absent' });
  });

  it('refuses what is not a status document', () => {
    expect(parseTcp(200, 'nope').kind).toBe('error');
    expect(parseTcp(200, '{"connections":1}').kind).toBe('error');
    expect(parseTcp(500, '{}')).toEqual({ kind: 'error', error: 'HTTP 500' });
  });
});

describe('stateCounts', () => {
  it('lists present states in lifecycle order', () => {
    const r = parseTcp(200, JSON.stringify({ ...DOC, states: { ...DOC.states, WEIRD: 1 } }));
    if (r.kind !== 'view') throw new Error('view');
    expect(stateCounts(r.view)).toEqual([
      ['ESTABLISHED', 2],
      ['TIME-WAIT', 1],
      ['WEIRD', 1],
    ]);
  });
});
