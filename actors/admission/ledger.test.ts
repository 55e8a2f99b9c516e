import { describe, expect, it } from 'vitest';
import { ClaimLedger } from './ledger.js';

const claim = (plugin: string, namespace: string, value: unknown = 1) => ({ plugin, namespace, value });

describe('ClaimLedger', () => {
  it('finds claims by plugin and namespace, and releases them by record id', () => {
    const l = new ClaimLedger();
    l.add('r1', 1, 0, [claim('quota', 'a', 'x'), claim('ip', '', '10.0.0.1')]);
    l.add('r2', 1, 0, [claim('quota', 'b', 'y')]);
    expect([...l.claims('quota', 'a')].map((c) => c.value)).toEqual(['x']);
    expect([...l.claims('quota')].map((c) => c.value)).toEqual(['x', 'y']);
    expect([...l.claims('ip')].map((c) => c.value)).toEqual(['10.0.0.1']);
    l.release('r1');
    expect([...l.claims('quota')].map((c) => c.value)).toEqual(['y']);
    expect([...l.claims('ip')]).toEqual([]);
    // Adding again replaces what the record held.
    l.add('r2', 1, 0, [claim('quota', 'b', 'z')]);
    expect([...l.claims('quota', 'b')].map((c) => c.value)).toEqual(['z']);
    expect(l.size).toBe(1);
  });

  it('is bounded: claimsMax entries, each for at most claimTtlMs', () => {
    const l = new ClaimLedger({ claimsMax: 2, claimTtlMs: 1_000 });
    l.add('a', 1, 0, [claim('quota', 'n')]);
    l.add('b', 1, 500, [claim('quota', 'n')]);
    expect(l.hasRoom(900)).toBe(false);
    expect(l.hasRoom(1_000)).toBe(true);
    expect(l.size).toBe(1);
    l.expire(1_500);
    expect(l.size).toBe(0);
  });

  it('keeps only the current term', () => {
    const l = new ClaimLedger();
    l.add('old', 1, 0, [claim('quota', 'n')]);
    l.add('new', 2, 0, [claim('quota', 'n')]);
    l.keepOnlyTerm(2);
    expect(l.size).toBe(1);
    expect([...l.claims('quota', 'n')]).toHaveLength(1);
  });
});
