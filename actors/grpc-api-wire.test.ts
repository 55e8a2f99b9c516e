import { describe, expect, it } from 'vitest';
import { encodeJson, encodeObjectJson, recentJsonEntriesMax } from './grpc-api-wire.js';

describe('object JSON on the wire', () => {
  it('encodes a committed object once for its recent answers and watch events, within a bound', () => {
    const pod = { kind: 'Pod', metadata: { name: 'p', resourceVersion: '7' } };
    const first = encodeObjectJson(pod);
    expect(JSON.parse(first.toString('utf8'))).toEqual(pod);
    // The same object: the same bytes, not a second encoding.
    expect(encodeObjectJson(pod)).toBe(first);
    // Another object with the same content is another object (identity, not content).
    const twin = { kind: 'Pod', metadata: { name: 'p', resourceVersion: '7' } };
    expect(encodeObjectJson(twin)).not.toBe(first);
    expect(encodeObjectJson(twin).equals(first)).toBe(true);
    // Past the bound the oldest are forgotten: encoded again, to the same JSON.
    for (let i = 0; i < recentJsonEntriesMax; i += 1) encodeObjectJson({ i });
    const again = encodeObjectJson(pod);
    expect(again).not.toBe(first);
    expect(again.equals(encodeJson(pod))).toBe(true);
  });
});
