import { Packr, pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeMessages, encodeMessages, RaftCodecError } from './codec.js';
import { RaftError } from './errors.js';
import type { RaftMessage } from './types.js';

function sampleMessages(): RaftMessage[] {
  return [
    {
      type: 'app',
      from: 'n1',
      to: 'n2',
      term: 7,
      logTerm: 6,
      index: 41,
      commit: 40,
      entries: [
        { index: 42, term: 7, type: 'normal', data: new Uint8Array([0, 1, 2, 255]) },
        { index: 43, term: 7, type: 'conf', data: new Uint8Array(0) },
      ],
    },
    { type: 'heartbeat', from: 'n1', to: 'n2', term: 7, commit: 40, context: new Uint8Array([9]), seq: 3 },
    { type: 'appResp', from: 'n2', to: 'n1', term: 7, index: 12, reject: true, rejectHint: 10, logTerm: 5 },
    {
      type: 'snap',
      from: 'n1',
      to: 'n3',
      term: 2 ** 40,
      snapshot: {
        index: 2 ** 50,
        term: 2 ** 40,
        voters: ['n1', 'n2', 'n3'],
        learners: ['n4'],
        size: 1 << 20,
        offset: 4096,
        data: new Uint8Array(4096).fill(0xab),
        done: false,
      },
    },
    { type: 'vote', from: 'n3', to: 'n1', term: 8, logTerm: 7, index: 43, transfer: true },
    { type: 'transferLeader', from: 'n2', to: 'n1', term: 8, target: 'n2' },
  ];
}

describe('raft message codec', () => {
  it('round-trips every field, including binary data and large integers', () => {
    const msgs = sampleMessages();
    const decoded = decodeMessages(encodeMessages(msgs));
    expect(decoded).toEqual(msgs);
    expect(decoded[3].snapshot?.data).toBeInstanceOf(Uint8Array);
    expect(decoded[3].term).toBe(2 ** 40);
    expect(typeof decoded[3].snapshot?.index).toBe('number');
  });

  it('round-trips an empty batch', () => {
    expect(decodeMessages(encodeMessages([]))).toEqual([]);
  });

  it('decodes every frame on its own, whatever was decoded or encoded before', () => {
    const first = encodeMessages(sampleMessages());
    const second = encodeMessages(sampleMessages());
    const other = encodeMessages([{ type: 'timeoutNow', from: 'x', to: 'y', term: 1 }]);
    // Decode out of order: no record definition may leak from one frame to another.
    expect(decodeMessages(other)).toEqual([{ type: 'timeoutNow', from: 'x', to: 'y', term: 1 }]);
    expect(decodeMessages(second)).toEqual(sampleMessages());
    expect(decodeMessages(first)).toEqual(sampleMessages());
    // A frame from another encoder instance (a peer process) decodes too.
    const foreign = new Packr({ useRecords: true }).pack(sampleMessages());
    expect(decodeMessages(foreign)).toEqual(sampleMessages());
  });

  it('copies binary values out of the frame buffer', () => {
    const frame = Buffer.from(encodeMessages(sampleMessages()));
    const decoded = decodeMessages(frame);
    frame.fill(0);
    expect(decoded[0].entries?.[0].data).toEqual(new Uint8Array([0, 1, 2, 255]));
    expect(decoded[3].snapshot?.data.every((b) => b === 0xab)).toBe(true);
  });

  it('does not let later encodes overwrite earlier results', () => {
    const a = encodeMessages([{ type: 'vote', from: 'a', to: 'b', term: 1 }]);
    const copyOfA = Buffer.from(a);
    for (let i = 0; i < 2000; i++) encodeMessages(sampleMessages());
    expect(Buffer.compare(a, copyOfA)).toBe(0);
  });

  it.each([
    ['not msgpack', Buffer.from([0xc1])],
    ['truncated msgpack', encodeMessages(sampleMessages()).subarray(0, 20)],
    ['empty bytes', new Uint8Array(0)],
    ['not an array', pack({ type: 'app', from: 'a', to: 'b', term: 1 })],
    ['an array of non-objects', pack([1, 2, 3])],
    ['a null message', pack([null])],
    ['an unknown type', pack([{ type: 'bogus', from: 'a', to: 'b', term: 1 }])],
    ['a missing from', pack([{ type: 'app', to: 'b', term: 1 }])],
    ['a numeric to', pack([{ type: 'app', from: 'a', to: 2, term: 1 }])],
    ['a string term', pack([{ type: 'app', from: 'a', to: 'b', term: '1' }])],
    ['a negative term', pack([{ type: 'app', from: 'a', to: 'b', term: -1 }])],
    ['non-array entries', pack([{ type: 'app', from: 'a', to: 'b', term: 1, entries: 'x' }])],
    [
      'a good message followed by a bad one',
      pack([{ type: 'app', from: 'a', to: 'b', term: 1 }, { type: 'app' }]),
    ],
  ])('rejects %s with a RaftCodecError', (_name, bytes) => {
    let caught: unknown;
    try {
      decodeMessages(bytes);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RaftCodecError);
    expect(caught).toBeInstanceOf(RaftError);
    expect((caught as RaftCodecError).code).toBe('CODEC');
  });
});
