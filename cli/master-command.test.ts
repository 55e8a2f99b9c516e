import { describe, expect, it } from 'vitest';
import { durationMs } from './master-command.js';

describe('durationMs (cox master duration flags)', () => {
  it('reads h/m/s durations and refuses zero and the rest with the flag named', () => {
    expect(durationMs('40s', '--node-monitor-grace-period')).toBe(40_000);
    expect(durationMs('1h30m', '--event-ttl')).toBe(5_400_000);
    expect(() => durationMs('0s', '--event-ttl')).toThrow(
      '--event-ttl: must be a duration like 40s, 5m or 1h, got "0s"',
    );
    expect(() => durationMs('soon', '--event-ttl')).toThrow('--event-ttl: must be a duration');
    expect(() => durationMs('', '--event-ttl')).toThrow('--event-ttl: must be a duration');
  });
});
