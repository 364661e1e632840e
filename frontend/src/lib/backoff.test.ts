import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff';

describe('Backoff', () => {
  it('grows exponentially up to the cap (no jitter)', () => {
    const b = new Backoff({ initial: 100, max: 1000, factor: 2, jitter: 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(b.attempts).toBe(6);
  });

  it('starts over after reset (a successful reconnect)', () => {
    const b = new Backoff({ initial: 100, max: 1000, jitter: 0 });
    b.next();
    b.next();
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(100);
  });

  it('keeps jittered delays within [base*(1-j), base]', () => {
    const lo = new Backoff({ initial: 1000, max: 8000, jitter: 0.5, random: () => 0 });
    const hi = new Backoff({ initial: 1000, max: 8000, jitter: 0.5, random: () => 0.999999 });
    expect(lo.next()).toBe(500);
    expect(hi.next()).toBe(1000);
    for (let i = 0; i < 10; i++) {
      const d = new Backoff({ initial: 1000, max: 8000, jitter: 0.3 }).next();
      expect(d).toBeGreaterThanOrEqual(700);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });

  it('has sane defaults: first retry fast, never above 5 s', () => {
    const b = new Backoff({ random: () => 1 });
    expect(b.next()).toBeLessThanOrEqual(250);
    for (let i = 0; i < 20; i++) expect(b.next()).toBeLessThanOrEqual(5000);
  });
});
