import { describe, expect, it } from 'vitest';
import { cronProblem, nextCronTime, parseCron } from './cron.js';

const at = (iso: string) => Date.parse(iso);
const next = (schedule: string, after: string) => {
  const t = nextCronTime(parseCron(schedule), at(after));
  return t === undefined ? undefined : new Date(t).toISOString();
};

describe('cron schedules', () => {
  it('fires on the next matching minute, strictly after the given time', () => {
    expect(next('*/5 * * * *', '2026-01-01T00:00:00Z')).toBe('2026-01-01T00:05:00.000Z');
    expect(next('*/5 * * * *', '2026-01-01T00:04:59Z')).toBe('2026-01-01T00:05:00.000Z');
    expect(next('* * * * *', '2026-01-01T00:00:30Z')).toBe('2026-01-01T00:01:00.000Z');
  });
  it('handles ranges, lists, names and macros', () => {
    expect(next('30 9 * * mon-fri', '2026-01-03T10:00:00Z')).toBe('2026-01-05T09:30:00.000Z'); // Sat → Mon
    expect(next('0 0 1,15 * *', '2026-01-02T00:00:00Z')).toBe('2026-01-15T00:00:00.000Z');
    expect(next('@hourly', '2026-01-01T00:10:00Z')).toBe('2026-01-01T01:00:00.000Z');
    expect(next('0 0 1 jan *', '2026-02-01T00:00:00Z')).toBe('2027-01-01T00:00:00.000Z');
    expect(next('0 12 * * 7', '2026-01-01T00:00:00Z')).toBe('2026-01-04T12:00:00.000Z'); // 7 = Sunday
  });
  it('matches either day field when both are restricted, as cron does', () => {
    // The 13th, or any Friday: from Thu Jan 1 2026 the first is Fri Jan 2.
    expect(next('0 0 13 * 5', '2026-01-01T00:00:00Z')).toBe('2026-01-02T00:00:00.000Z');
  });
  it('finds Feb 29 and gives up on dates that never come', () => {
    expect(next('0 0 29 2 *', '2026-03-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    expect(next('0 0 30 2 *', '2026-01-01T00:00:00Z')).toBeUndefined();
  });
  it('names the bad field', () => {
    expect(cronProblem('*/5 * * *')).toMatch(/expected 5 fields/);
    expect(cronProblem('61 * * * *')).toMatch(/minute: 61 is out of range 0-59/);
    expect(cronProblem('* * * foo *')).toMatch(/month: "foo" is not a number/);
    expect(cronProblem('*/0 * * * *')).toMatch(/step "0" must be a positive number/);
    expect(cronProblem('5-1 * * * *')).toMatch(/backwards/);
    expect(cronProblem('0 3 * * 1-5')).toBeUndefined();
  });
});
