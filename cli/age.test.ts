import { describe, expect, it } from 'vitest';
import { formatAge, formatDuration } from './age.js';

const s = 1000;
const m = 60 * s;
const h = 60 * m;
const d = 24 * h;

describe('formatDuration (kubectl HumanDuration)', () => {
  it.each([
    [-5 * s, '<invalid>'],
    [-500, '0s'],
    [0, '0s'],
    [59 * s, '59s'],
    [119 * s, '119s'],
    [2 * m, '2m'],
    [3 * m + 20 * s, '3m20s'],
    [10 * m + 5 * s, '10m'],
    [179 * m, '179m'],
    [3 * h, '3h'],
    [5 * h + 7 * m, '5h7m'],
    [8 * h + 30 * m, '8h'],
    [47 * h, '47h'],
    [2 * d, '2d'],
    [3 * d + 4 * h, '3d4h'],
    [8 * d, '8d'],
    [729 * d, '729d'],
    [2 * 365 * d, '2y'],
    [2 * 365 * d + 30 * d, '2y30d'],
    [9 * 365 * d, '9y'],
  ])('%i ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('formatAge', () => {
  it('measures from the creation timestamp to now', () => {
    expect(formatAge('2026-01-01T00:00:00Z', Date.parse('2026-01-01T00:05:30Z'))).toBe('5m30s');
  });
  it('is <unknown> without a parsable timestamp', () => {
    expect(formatAge(undefined, 0)).toBe('<unknown>');
    expect(formatAge('yesterday', 0)).toBe('<unknown>');
  });
});
