/**
 * IPv4 addresses and CIDR blocks as the proxy needs them: parse, contain, format. Pure.
 * Addresses are unsigned 32-bit numbers; a malformed address or block is a `CidrError` naming it.
 */

export class CidrError extends Error {
  override readonly name = 'CidrError';
  readonly code = 'INVALID_CIDR';
}

export interface Cidr {
  /** The network address (host bits zero). */
  readonly base: number;
  readonly prefix: number;
  /** As written after normalization: `10.96.0.0/16`. */
  readonly text: string;
}

const octet = /^(0|[1-9]\d{0,2})$/;

/** The address as a number, or undefined when `text` is not a dotted-quad IPv4 address. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!octet.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `10.96.0.0/16`; a bare address is a /32. Host bits must be zero. */
export function parseCidr(text: string, what = 'CIDR'): Cidr {
  const [addr, len, extra] = text.trim().split('/');
  const base = parseIPv4(addr ?? '');
  const prefix = len === undefined ? 32 : /^\d{1,2}$/.test(len) ? Number(len) : Number.NaN;
  if (base === undefined || extra !== undefined || !(prefix >= 0 && prefix <= 32)) {
    throw new CidrError(`${what} "${text}": not an IPv4 block like 10.96.0.0/16`);
  }
  if ((base & ~maskOf(prefix)) >>> 0 !== 0) {
    throw new CidrError(
      `${what} "${text}": host bits set (did you mean ${formatIPv4((base & maskOf(prefix)) >>> 0)}/${prefix}?)`,
    );
  }
  return { base, prefix, text: `${formatIPv4(base)}/${prefix}` };
}

export function cidrContains(cidr: Cidr, ip: string | number): boolean {
  const n = typeof ip === 'number' ? ip : parseIPv4(ip);
  if (n === undefined) return false;
  return (n & maskOf(cidr.prefix)) >>> 0 === cidr.base;
}

/** Whether every address of `inner` is in `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.base);
}

export const loopbackCidr: Cidr = parseCidr('127.0.0.0/8');
