import { describe, expect, it } from 'vitest';
import { workersBlurb } from './models';

describe('workersBlurb', () => {
  it('names the loop of each model', () => {
    expect(workersBlurb('epoll')).toMatch(/epoll loop/);
    expect(workersBlurb('io_uring')).toMatch(/io_uring/);
    expect(workersBlurb('poll')).toMatch(/poll\(2\)/);
    expect(workersBlurb('preforked')).toMatch(/process/);
  });

  it('falls back for an unknown or missing model', () => {
    expect(workersBlurb('future')).toBe('Workers of the future model');
    expect(workersBlurb('')).toBe('Workers');
  });
});
