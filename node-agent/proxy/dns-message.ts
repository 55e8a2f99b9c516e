/**
 * DNS messages (RFC 1035, with RFC 2782 SRV, RFC 3596 AAAA, RFC 6891 EDNS0 OPT): decode and
 * encode, pure. Enough for the cluster DNS: queries in, answers with A, AAAA, SRV, PTR and SOA
 * records out, name compression, and truncation to a byte budget (TC set, whole records only).
 *
 * Names are dotted, without the trailing dot (the root is ''), case kept as received. Decoding
 * checks every length and offset; a compression pointer must point backwards (no loops). A
 * malformed message is a `DnsFormatError` carrying the id when the header was readable, so the
 * server can answer FORMERR.
 */

export const RecordType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

export const RecordClass = { IN: 1, ANY: 255 } as const;

export const Rcode = {
  NoError: 0,
  FormErr: 1,
  ServFail: 2,
  NXDomain: 3,
  NotImp: 4,
  Refused: 5,
} as const;

export const Opcode = { Query: 0 } as const;

/** Longest name (RFC 1035 2.3.4), in wire bytes. */
export const nameBytesMax = 255;
export const labelBytesMax = 63;
/** Classic UDP payload limit without EDNS0. */
export const udpPayloadBytesDefault = 512;
const pointerJumpsMax = 64;

export class DnsFormatError extends Error {
  override readonly name = 'DnsFormatError';
  readonly code = 'DNS_FORMAT';
  constructor(
    message: string,
    /** The message id, when the header could be read. */
    readonly id?: number,
  ) {
    super(message);
  }
}

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

interface Named {
  name: string;
  ttl: number;
}

export type DnsRecord =
  | (Named & { type: 'A'; address: string })
  | (Named & { type: 'AAAA'; address: string })
  | (Named & { type: 'SRV'; priority: number; weight: number; port: number; target: string })
  | (Named & { type: 'PTR'; target: string })
  | (Named & {
      type: 'SOA';
      mname: string;
      rname: string;
      serial: number;
      refresh: number;
      retry: number;
      expire: number;
      minimum: number;
    })
  | { type: 'OPT'; udpPayloadBytes: number; extendedRcode: number; version: number; dnssecOk: boolean }
  | (Named & { type: 'OTHER'; code: number; class: number; rdata: Uint8Array });

export interface DnsMessage {
  id: number;
  /** A response. */
  qr: boolean;
  opcode: number;
  /** Authoritative answer. */
  aa: boolean;
  /** Truncated. */
  tc: boolean;
  /** Recursion desired / available. */
  rd: boolean;
  ra: boolean;
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authority: DnsRecord[];
  additional: DnsRecord[];
}

// ---------------------------------------------------------------- decoding

class Reader {
  offset = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly id?: number,
  ) {}

  fail(what: string): never {
    throw new DnsFormatError(`dns: ${what} at byte ${this.offset}`, this.id);
  }

  need(n: number): void {
    if (this.offset + n > this.buf.length) this.fail(`message ends early (${n} more bytes needed)`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++];
  }

  u16(): number {
    this.need(2);
    const v = (this.buf[this.offset] << 8) | this.buf[this.offset + 1];
    this.offset += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const o = this.offset;
    this.offset += 4;
    return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** A possibly compressed name starting at the current offset. */
  name(): string {
    const labels: string[] = [];
    let at = this.offset;
    let jumped = false;
    let jumps = 0;
    let wire = 1;
    for (;;) {
      if (at >= this.buf.length) this.fail('name runs past the end');
      const len = this.buf[at];
      if ((len & 0xc0) === 0xc0) {
        if (at + 1 >= this.buf.length) this.fail('truncated compression pointer');
        const target = ((len & 0x3f) << 8) | this.buf[at + 1];
        if (target >= at) this.fail('compression pointer does not point backwards');
        if (++jumps > pointerJumpsMax) this.fail('too many compression pointers');
        if (!jumped) this.offset = at + 2;
        jumped = true;
        at = target;
        continue;
      }
      if ((len & 0xc0) !== 0) this.fail(`unsupported label type 0x${len.toString(16)}`);
      if (len === 0) {
        if (!jumped) this.offset = at + 1;
        return labels.join('.');
      }
      if (at + 1 + len > this.buf.length) this.fail('label runs past the end');
      // A dot inside a label cannot be written back as a name (nor is it a name we serve).
      if (this.buf.subarray(at + 1, at + 1 + len).includes(0x2e)) this.fail('label holds a dot');
      wire += len + 1;
      if (wire > nameBytesMax) this.fail(`name longer than ${nameBytesMax} bytes`);
      labels.push(String.fromCharCode(...this.buf.subarray(at + 1, at + 1 + len)));
      at += 1 + len;
    }
  }
}

function ipv4Text(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function ipv6Text(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return groups.join(':');
}

function readRecord(r: Reader): DnsRecord {
  const name = r.name();
  const type = r.u16();
  const cls = r.u16();
  const ttl = r.u32();
  const rdlength = r.u16();
  r.need(rdlength);
  const end = r.offset + rdlength;
  let rec: DnsRecord;
  switch (type) {
    case RecordType.A:
      if (rdlength !== 4) r.fail('A record with rdata other than 4 bytes');
      rec = { type: 'A', name, ttl, address: ipv4Text(r.bytes(4)) };
      break;
    case RecordType.AAAA:
      if (rdlength !== 16) r.fail('AAAA record with rdata other than 16 bytes');
      rec = { type: 'AAAA', name, ttl, address: ipv6Text(r.bytes(16)) };
      break;
    case RecordType.SRV:
      rec = { type: 'SRV', name, ttl, priority: r.u16(), weight: r.u16(), port: r.u16(), target: r.name() };
      break;
    case RecordType.PTR:
      rec = { type: 'PTR', name, ttl, target: r.name() };
      break;
    case RecordType.SOA:
      rec = {
        type: 'SOA',
        name,
        ttl,
        mname: r.name(),
        rname: r.name(),
        serial: r.u32(),
        refresh: r.u32(),
        retry: r.u32(),
        expire: r.u32(),
        minimum: r.u32(),
      };
      break;
    case RecordType.OPT:
      if (name !== '') r.fail('OPT record not at the root');
      r.bytes(rdlength); // options are not used
      rec = {
        type: 'OPT',
        udpPayloadBytes: cls,
        extendedRcode: ttl >>> 24,
        version: (ttl >>> 16) & 0xff,
        dnssecOk: (ttl & 0x8000) !== 0,
      };
      break;
    default:
      rec = { type: 'OTHER', name, ttl, code: type, class: cls, rdata: r.bytes(rdlength) };
  }
  if (r.offset !== end) r.fail(`rdata of a type ${type} record is not ${rdlength} bytes`);
  return rec;
}

/** Decodes a whole message. Throws DnsFormatError. */
export function decodeMessage(buf: Uint8Array): DnsMessage {
  if (buf.length < 12)
    throw new DnsFormatError(`dns: message of ${buf.length} bytes is shorter than a header`);
  const id = (buf[0] << 8) | buf[1];
  const r = new Reader(buf, id);
  r.offset = 2;
  const flags = r.u16();
  const counts = [r.u16(), r.u16(), r.u16(), r.u16()];
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < counts[0]; i += 1) questions.push({ name: r.name(), type: r.u16(), class: r.u16() });
  const section = (n: number): DnsRecord[] => Array.from({ length: n }, () => readRecord(r));
  const answers = section(counts[1]);
  const authority = section(counts[2]);
  const additional = section(counts[3]);
  if (r.offset !== buf.length) r.fail(`${buf.length - r.offset} bytes after the last record`);
  return {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >>> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
    questions,
    answers,
    authority,
    additional,
  };
}

// ---------------------------------------------------------------- encoding

class Writer {
  private buf = new Uint8Array(512);
  length = 0;
  /** Lowercased name suffix → offset, for compression. */
  private readonly names = new Map<string, number>();

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v & 0xff;
  }

  u16(v: number): void {
    this.room(2);
    this.buf[this.length++] = (v >>> 8) & 0xff;
    this.buf[this.length++] = v & 0xff;
  }

  u32(v: number): void {
    this.u16((v >>> 16) & 0xffff);
    this.u16(v & 0xffff);
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  setU16(at: number, v: number): void {
    this.buf[at] = (v >>> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }

  name(name: string): void {
    const labels = name === '' ? [] : name.split('.');
    let wire = 1;
    for (const l of labels) {
      const n = Buffer.byteLength(l, 'latin1');
      if (n === 0 || n > labelBytesMax)
        throw new Error(`dns: label "${l}" of ${name} must be 1-${labelBytesMax} bytes`);
      wire += n + 1;
    }
    if (wire > nameBytesMax) throw new Error(`dns: name ${name} is longer than ${nameBytesMax} bytes`);
    for (let i = 0; i < labels.length; i += 1) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const at = this.names.get(suffix);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.length < 0x3fff) this.names.set(suffix, this.length);
      const bytes = Buffer.from(labels[i], 'latin1');
      this.u8(bytes.length);
      this.bytes(bytes);
    }
    this.u8(0);
  }

  /** Drops everything written after `length` (compression entries past it too). */
  truncate(length: number): void {
    this.length = length;
    for (const [k, at] of this.names) if (at >= length) this.names.delete(k);
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function ipv4Bytes(text: string): Uint8Array {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`dns: not an IPv4 address: ${text}`);
  return Uint8Array.from(parts);
}

function ipv6Bytes(text: string): Uint8Array {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new Error(`dns: not an IPv6 address: ${text}`);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    if (!/^[0-9a-f]{1,4}$/i.test(g)) throw new Error(`dns: not an IPv6 address: ${text}`);
    out[i * 2] = v >>> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

function writeRecord(w: Writer, rec: DnsRecord): void {
  if (rec.type === 'OPT') {
    w.u8(0);
    w.u16(RecordType.OPT);
    w.u16(rec.udpPayloadBytes);
    w.u32(((rec.extendedRcode & 0xff) << 24) | ((rec.version & 0xff) << 16) | (rec.dnssecOk ? 0x8000 : 0));
    w.u16(0);
    return;
  }
  w.name(rec.name);
  const code = rec.type === 'OTHER' ? rec.code : RecordType[rec.type];
  w.u16(code);
  w.u16(rec.type === 'OTHER' ? rec.class : RecordClass.IN);
  w.u32(rec.ttl >>> 0);
  const lengthAt = w.length;
  w.u16(0);
  const start = w.length;
  switch (rec.type) {
    case 'A':
      w.bytes(ipv4Bytes(rec.address));
      break;
    case 'AAAA':
      w.bytes(ipv6Bytes(rec.address));
      break;
    case 'SRV':
      w.u16(rec.priority);
      w.u16(rec.weight);
      w.u16(rec.port);
      w.name(rec.target);
      break;
    case 'PTR':
      w.name(rec.target);
      break;
    case 'SOA':
      w.name(rec.mname);
      w.name(rec.rname);
      w.u32(rec.serial);
      w.u32(rec.refresh);
      w.u32(rec.retry);
      w.u32(rec.expire);
      w.u32(rec.minimum);
      break;
    case 'OTHER':
      w.bytes(rec.rdata);
      break;
    default: {
      const unknown: never = rec;
      throw new Error(`dns: unknown record ${JSON.stringify(unknown)}`);
    }
  }
  w.setU16(lengthAt, w.length - start);
}

/**
 * Encodes `msg`. With `bytesMax`, a message that would be longer keeps the questions and as many
 * whole records as fit (answers first, then authority; additional records other than OPT are
 * dropped first) and gets TC set, as RFC 2181 9 asks.
 */
export function encodeMessage(msg: DnsMessage, bytesMax?: number): Uint8Array {
  const w = new Writer();
  w.u16(msg.id);
  const flagsAt = w.length;
  w.u16(0);
  const countsAt = w.length;
  w.u16(msg.questions.length);
  w.u16(0);
  w.u16(0);
  w.u16(0);
  for (const q of msg.questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  const opt = msg.additional.filter((r) => r.type === 'OPT');
  const optBytes = opt.length * 11;
  const limit = bytesMax === undefined ? Number.POSITIVE_INFINITY : bytesMax - optBytes;
  let tc = msg.tc;
  const counts = [0, 0, 0];
  const sections = [msg.answers, msg.authority, msg.additional.filter((r) => r.type !== 'OPT')];
  outer: for (let s = 0; s < sections.length; s += 1) {
    for (const rec of sections[s]) {
      const before = w.length;
      writeRecord(w, rec);
      if (w.length > limit) {
        w.truncate(before);
        // Records left out of the additional section are optional (RFC 2181 9): no TC for them.
        if (s < 2) tc = true;
        break outer;
      }
      counts[s] += 1;
    }
  }
  for (const rec of opt) writeRecord(w, rec);
  const flags =
    (msg.qr ? 0x8000 : 0) |
    ((msg.opcode & 0xf) << 11) |
    (msg.aa ? 0x0400 : 0) |
    (tc ? 0x0200 : 0) |
    (msg.rd ? 0x0100 : 0) |
    (msg.ra ? 0x0080 : 0) |
    (msg.rcode & 0xf);
  w.setU16(flagsAt, flags);
  w.setU16(countsAt + 2, counts[0]);
  w.setU16(countsAt + 4, counts[1]);
  w.setU16(countsAt + 6, counts[2] + opt.length);
  return w.done();
}

/** A query message (for clients and tests). */
export function queryMessage(
  id: number,
  name: string,
  type: number,
  opts: { udpPayloadBytes?: number } = {},
): DnsMessage {
  return {
    id,
    qr: false,
    opcode: Opcode.Query,
    aa: false,
    tc: false,
    rd: true,
    ra: false,
    rcode: Rcode.NoError,
    questions: [{ name, type, class: RecordClass.IN }],
    answers: [],
    authority: [],
    additional:
      opts.udpPayloadBytes !== undefined
        ? [
            {
              type: 'OPT',
              udpPayloadBytes: opts.udpPayloadBytes,
              extendedRcode: 0,
              version: 0,
              dnssecOk: false,
            },
          ]
        : [],
  };
}
