import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DnsFormatError,
  type DnsMessage,
  type DnsRecord,
  decodeMessage,
  encodeMessage,
  queryMessage,
  Rcode,
  RecordType,
} from './dns-message.js';

function response(answers: DnsRecord[], over: Partial<DnsMessage> = {}): DnsMessage {
  return {
    ...queryMessage(0x1234, 'web.prod.svc.cluster.local', RecordType.A),
    qr: true,
    aa: true,
    answers,
    ...over,
  };
}

describe('dns messages', () => {
  it('encodes a query byte for byte as RFC 1035 lays it out', () => {
    const bytes = encodeMessage(queryMessage(0xbeef, 'a.b', RecordType.A));
    expect(Buffer.from(bytes).toString('hex')).toBe(
      // id, flags (RD), 1 question, 0/0/0, name 1a1b0, type A, class IN
      ['beef', '0100', '0001', '0000', '0000', '0000', '0161', '0162', '00', '0001', '0001'].join(''),
    );
  });

  it('round-trips every record type it serves', () => {
    const msg = response(
      [
        { type: 'A', name: 'web.prod.svc.cluster.local', ttl: 5, address: '10.96.0.20' },
        {
          type: 'SRV',
          name: '_http._tcp.web.prod.svc.cluster.local',
          ttl: 5,
          priority: 0,
          weight: 100,
          port: 80,
          target: 'web.prod.svc.cluster.local',
        },
        { type: 'PTR', name: '20.0.96.10.in-addr.arpa', ttl: 5, target: 'web.prod.svc.cluster.local' },
        { type: 'AAAA', name: 'x.cluster.local', ttl: 5, address: '2001:db8:0:0:0:0:0:1' },
      ],
      {
        authority: [
          {
            type: 'SOA',
            name: 'cluster.local',
            ttl: 5,
            mname: 'ns.dns.cluster.local',
            rname: 'hostmaster.cluster.local',
            serial: 1,
            refresh: 7200,
            retry: 1800,
            expire: 86400,
            minimum: 5,
          },
        ],
        additional: [{ type: 'OPT', udpPayloadBytes: 1232, extendedRcode: 0, version: 0, dnssecOk: false }],
      },
    );
    expect(decodeMessage(encodeMessage(msg))).toEqual(msg);
  });

  it('compresses repeated names (pointers to earlier occurrences)', () => {
    const many = Array.from({ length: 10 }, (_, i) => ({
      type: 'A' as const,
      name: 'web.prod.svc.cluster.local',
      ttl: 5,
      address: `10.0.0.${i}`,
    }));
    const bytes = encodeMessage(response(many));
    // Header 12 + question 28 + 4 + 10 answers of (pointer 2 + 10 + rdata 4).
    expect(bytes.length).toBe(12 + 28 + 4 + 10 * 16);
    expect(decodeMessage(bytes).answers).toEqual(many);
  });

  it('truncates to the byte budget with whole records and TC set', () => {
    const many = Array.from({ length: 100 }, (_, i) => ({
      type: 'A' as const,
      name: 'db.prod.svc.cluster.local',
      ttl: 5,
      address: `172.17.0.${i}`,
    }));
    const opt: DnsRecord = {
      type: 'OPT',
      udpPayloadBytes: 1232,
      extendedRcode: 0,
      version: 0,
      dnssecOk: false,
    };
    const bytes = encodeMessage(response(many, { additional: [opt] }), 512);
    expect(bytes.length).toBeLessThanOrEqual(512);
    const back = decodeMessage(bytes);
    expect(back.tc).toBe(true);
    expect(back.answers.length).toBeGreaterThan(20);
    expect(back.answers).toEqual(many.slice(0, back.answers.length));
    expect(back.additional).toEqual([opt]);
    const whole = decodeMessage(encodeMessage(response(many), 65535));
    expect(whole.tc).toBe(false);
    expect(whole.answers).toHaveLength(100);
  });

  it('rejects malformed messages with DnsFormatError, carrying the id when readable', () => {
    expect(() => decodeMessage(new Uint8Array(5))).toThrow(DnsFormatError);
    const q = encodeMessage(queryMessage(7, 'a.b', RecordType.A));
    const cut = q.slice(0, q.length - 2);
    expect(() => decodeMessage(cut)).toThrow(expect.objectContaining({ id: 7 }));
    // A compression pointer to itself.
    const loop = Uint8Array.from([...q.slice(0, 12), 0xc0, 12, 0, 1, 0, 1]);
    expect(() => decodeMessage(loop)).toThrow('does not point backwards');
    const trailing = Uint8Array.from([...q, 0]);
    expect(() => decodeMessage(trailing)).toThrow('1 bytes after the last record');
    // A label holding a dot (a name no reply could carry back): refused, with the id.
    const dotted = Uint8Array.from([...q.slice(0, 12), 1, 0x2e, 0, 0, 1, 0, 1]);
    expect(() => decodeMessage(dotted)).toThrow(expect.objectContaining({ id: 7 }));
    expect(() => decodeMessage(dotted)).toThrow('label holds a dot');
  });

  it('never fails on arbitrary bytes with anything but DnsFormatError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          decodeMessage(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(DnsFormatError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('decodes what it encodes for arbitrary names and answers', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
    const name = fc.array(label, { minLength: 1, maxLength: 6 }).map((l) => l.join('.'));
    const a = fc.record({
      type: fc.constant('A' as const),
      name,
      ttl: fc.nat({ max: 2 ** 31 - 1 }),
      address: fc.ipV4(),
    });
    fc.assert(
      fc.property(fc.nat({ max: 0xffff }), name, fc.array(a, { maxLength: 20 }), (id, q, answers) => {
        const msg: DnsMessage = {
          ...queryMessage(id, q, RecordType.A),
          qr: true,
          rcode: Rcode.NXDomain,
          answers,
        };
        expect(decodeMessage(encodeMessage(msg))).toEqual(msg);
      }),
      { numRuns: 500 },
    );
  });
});
