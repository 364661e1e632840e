import { describe, expect, it } from 'vitest';
import { DASH, formatBytes, formatDuration, formatInt, formatLatency, formatPercent, formatRate } from './format';

describe('percentile / latency display', () => {
  it('picks a unit that keeps the digits meaningful', () => {
    expect(formatLatency(0.21)).toBe('210 µs');
    expect(formatLatency(0.0042)).toBe('4.2 µs');
    expect(formatLatency(1.1)).toBe('1.10 ms');
    expect(formatLatency(12.345)).toBe('12.3 ms');
    expect(formatLatency(250.4)).toBe('250 ms');
    expect(formatLatency(1500)).toBe('1.50 s');
    expect(formatLatency(60000)).toBe('60.0 s');
    expect(formatLatency(0)).toBe('0 ms');
  });
  it('shows a dash when there is no value (no requests yet)', () => {
    expect(formatLatency(null)).toBe(DASH);
    expect(formatLatency(undefined)).toBe(DASH);
    expect(formatLatency(NaN)).toBe(DASH);
    expect(formatLatency(-1)).toBe(DASH);
  });
});

describe('formatRate', () => {
  it('formats requests per second', () => {
    expect(formatRate(0)).toBe('0');
    expect(formatRate(0.5)).toBe('0.5');
    expect(formatRate(250)).toBe('250');
    expect(formatRate(1234.4)).toBe('1,234');
    expect(formatRate(45678)).toBe('45.7k');
    expect(formatRate(null)).toBe(DASH);
    expect(formatRate(-3)).toBe('0');
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.00 KiB');
    expect(formatBytes(123456)).toBe('121 KiB');
    expect(formatBytes(5 * 1024 * 1024 * 1024)).toBe('5.00 GiB');
    expect(formatBytes(undefined)).toBe(DASH);
  });
});

describe('formatDuration (uptime)', () => {
  it('drops leading zero units', () => {
    expect(formatDuration(12.5)).toBe('12s');
    expect(formatDuration(125)).toBe('2m 5s');
    expect(formatDuration(3 * 3600 + 61)).toBe('3h 1m 1s');
    expect(formatDuration(2 * 86400 + 3600 * 5 + 60 * 7)).toBe('2d 5h 7m');
    expect(formatDuration(null)).toBe(DASH);
  });
});

describe('small ones', () => {
  it('formats integers and percents', () => {
    expect(formatInt(1234567)).toBe('1,234,567');
    expect(formatInt(null)).toBe(DASH);
    expect(formatPercent(0.486)).toBe('49%');
  });
});
