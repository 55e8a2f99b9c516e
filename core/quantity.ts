/**
 * Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1e3`), exact.
 *
 * Representation: a signed `bigint` count of nano-units (10^-9) plus the suffix family the
 * value was written in. Nano is the finest precision Kubernetes keeps, so every quantity
 * Kubernetes accepts is represented without loss and sums never drift (`0.1 + 0.2 == 0.3`).
 * As in Kubernetes, parsing rounds any finer precision up (away from zero) to the next nano.
 * Unlike Kubernetes, values are not capped at 2^63-1: bigint has no overflow.
 */

import { CoreError } from './errors.js';

/** The suffix family a quantity is written in; canonical formatting keeps it. */
export const QuantityFormat = {
  /** `Ki Mi Gi Ti Pi Ei` (powers of 1024). */
  BinarySI: 'BinarySI',
  /** `n u m "" k M G T P E` (powers of 1000). */
  DecimalSI: 'DecimalSI',
  /** `e<n>` / `E<n>` (powers of 10). */
  DecimalExponent: 'DecimalExponent',
} as const;
export type QuantityFormat = (typeof QuantityFormat)[keyof typeof QuantityFormat];

/** Longest quantity text accepted by `parseQuantity`. */
export const quantityTextLengthMax = 256;
/** Largest absolute decimal exponent accepted in `<n>e<exp>` forms. */
export const quantityExponentAbsMax = 100;

export class QuantityError extends CoreError {
  /** The text that failed to parse. */
  readonly input: string;
  constructor(input: string, reason: string) {
    super('INVALID_QUANTITY', `quantity ${JSON.stringify(input)}: ${reason}`);
    this.input = input;
  }
}

const nanosPerUnit = 1_000_000_000n;
const nanosPerMilli = 1_000_000n;

const decimalSuffixExponents: Readonly<Record<string, number>> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const binarySuffixShifts: Readonly<Record<string, number>> = {
  Ki: 10,
  Mi: 20,
  Gi: 30,
  Ti: 40,
  Pi: 50,
  Ei: 60,
};
const decimalSuffixByExponent = new Map(Object.entries(decimalSuffixExponents).map(([s, e]) => [e, s]));
const binarySuffixByShift = new Map(Object.entries(binarySuffixShifts).map(([s, e]) => [e, s]));
const decimalSuffixExponentMax = 18;
const binarySuffixShiftMax = 60;

/** An immutable, exact resource quantity. */
export class Quantity {
  /** The value in nano-units (10^-9). */
  readonly nanos: bigint;
  /** The suffix family used by `toString`. */
  readonly format: QuantityFormat;

  private constructor(nanos: bigint, format: QuantityFormat) {
    this.nanos = nanos;
    this.format = format;
  }

  static fromNanos(nanos: bigint, format: QuantityFormat = QuantityFormat.DecimalSI): Quantity {
    return new Quantity(nanos, format);
  }

  static fromMilli(milli: bigint, format: QuantityFormat = QuantityFormat.DecimalSI): Quantity {
    return new Quantity(milli * nanosPerMilli, format);
  }

  static fromUnits(units: bigint, format: QuantityFormat = QuantityFormat.DecimalSI): Quantity {
    return new Quantity(units * nanosPerUnit, format);
  }

  /** Sum; keeps this quantity's format unless this is zero (then takes `other`'s), as Kubernetes does. */
  add(other: Quantity): Quantity {
    return new Quantity(this.nanos + other.nanos, this.nanos === 0n ? other.format : this.format);
  }

  /** Difference; format chosen as in `add`. */
  sub(other: Quantity): Quantity {
    return new Quantity(this.nanos - other.nanos, this.nanos === 0n ? other.format : this.format);
  }

  neg(): Quantity {
    return new Quantity(-this.nanos, this.format);
  }

  /** -1, 0 or 1 as this is less than, equal to or greater than `other` (formats are ignored). */
  cmp(other: Quantity): -1 | 0 | 1 {
    if (this.nanos < other.nanos) return -1;
    return this.nanos > other.nanos ? 1 : 0;
  }

  /** Value equality; formats are ignored. */
  equals(other: Quantity): boolean {
    return this.nanos === other.nanos;
  }

  isZero(): boolean {
    return this.nanos === 0n;
  }

  /** The value in milli-units, rounded away from zero (Kubernetes `MilliValue`). */
  milliValue(): bigint {
    return divideAwayFromZero(this.nanos, nanosPerMilli);
  }

  /** The value in units, rounded away from zero (Kubernetes `Value`: `1100m` → 2). */
  value(): bigint {
    return divideAwayFromZero(this.nanos, nanosPerUnit);
  }

  /** The canonical Kubernetes string, e.g. `1500m`, `1Gi`, `1e3`. */
  toString(): string {
    return formatQuantity(this);
  }

  /** Quantities serialize as their canonical string, as in the Kubernetes API. */
  toJSON(): string {
    return formatQuantity(this);
  }
}

/**
 * Parse Kubernetes quantity syntax: `[+-]<digits>[.<digits>]<suffix>` where the suffix is
 * one of `Ki..Ei`, `n u m k M G T P E`, `e<int>`/`E<int>`, or empty.
 * Throws `QuantityError` naming the input.
 */
export function parseQuantity(text: string): Quantity {
  if (text.length === 0) throw new QuantityError(text, 'must not be empty');
  if (text.length > quantityTextLengthMax) {
    throw new QuantityError(text.slice(0, 32), `longer than ${quantityTextLengthMax} characters`);
  }
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(.*)$/s.exec(text);
  if (match === null) throw new QuantityError(text, 'not a number');
  const [, sign, whole = '', fraction = '', suffix = ''] = match;
  if (whole.length + fraction.length === 0) throw new QuantityError(text, 'has no digits');
  const { decimalExponent, binaryShift, format } = parseSuffix(text, suffix);
  const digits = BigInt(whole + fraction);
  const tenPower = 9 + decimalExponent - fraction.length;
  const scaled = digits << BigInt(binaryShift);
  const magnitude =
    tenPower >= 0 ? scaled * 10n ** BigInt(tenPower) : divideAwayFromZero(scaled, 10n ** BigInt(-tenPower));
  const nanos = sign === '-' ? -magnitude : magnitude;
  const isFractionalBinary = format === QuantityFormat.BinarySI && magnitude > 0n && magnitude < nanosPerUnit;
  return Quantity.fromNanos(nanos, isFractionalBinary ? QuantityFormat.DecimalSI : format);
}

function parseSuffix(
  text: string,
  suffix: string,
): { decimalExponent: number; binaryShift: number; format: QuantityFormat } {
  const decimal = decimalSuffixExponents[suffix];
  if (decimal !== undefined && Object.hasOwn(decimalSuffixExponents, suffix)) {
    return { decimalExponent: decimal, binaryShift: 0, format: QuantityFormat.DecimalSI };
  }
  const shift = binarySuffixShifts[suffix];
  if (shift !== undefined && Object.hasOwn(binarySuffixShifts, suffix)) {
    return { decimalExponent: 0, binaryShift: shift, format: QuantityFormat.BinarySI };
  }
  const exponent = /^[eE]([+-]?\d+)$/.exec(suffix);
  if (exponent === null) throw new QuantityError(text, `unknown suffix ${JSON.stringify(suffix)}`);
  const value = Number(exponent[1]);
  if (Math.abs(value) > quantityExponentAbsMax) {
    throw new QuantityError(text, `exponent must be within ±${quantityExponentAbsMax}`);
  }
  return { decimalExponent: value, binaryShift: 0, format: QuantityFormat.DecimalExponent };
}

/**
 * The canonical Kubernetes form: no fractional digits, the largest suffix of the quantity's
 * family that keeps the number whole. Binary quantities below 1024 in magnitude or not whole
 * are written in decimal (`1.5Ki` → `1536`, `0.5` → `500m`), as Kubernetes does.
 */
export function formatQuantity(q: Quantity): string {
  if (q.nanos === 0n) return '0';
  const sign = q.nanos < 0n ? '-' : '';
  const magnitude = q.nanos < 0n ? -q.nanos : q.nanos;
  switch (q.format) {
    case QuantityFormat.BinarySI:
      if (magnitude >= 1024n * nanosPerUnit && magnitude % nanosPerUnit === 0n) {
        return sign + formatBinary(magnitude / nanosPerUnit);
      }
      return sign + formatDecimal(magnitude, QuantityFormat.DecimalSI);
    case QuantityFormat.DecimalSI:
    case QuantityFormat.DecimalExponent:
      return sign + formatDecimal(magnitude, q.format);
    default: {
      const unreachable: never = q.format;
      throw new Error(`unknown quantity format ${String(unreachable)}`);
    }
  }
}

function formatBinary(units: bigint): string {
  let mantissa = units;
  let shift = 0;
  while (shift < binarySuffixShiftMax && mantissa % 1024n === 0n) {
    mantissa /= 1024n;
    shift += 10;
  }
  return `${mantissa}${binarySuffixByShift.get(shift) ?? ''}`;
}

/** `magnitude` is positive nanos; the exponent ends on a multiple of 3, as large as keeps it whole. */
function formatDecimal(magnitude: bigint, format: 'DecimalSI' | 'DecimalExponent'): string {
  let mantissa = magnitude;
  let exponent = -9;
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    exponent += 1;
  }
  while (exponent % 3 !== 0) {
    mantissa *= 10n;
    exponent -= 1;
  }
  if (format === QuantityFormat.DecimalExponent) {
    return exponent === 0 ? `${mantissa}` : `${mantissa}e${exponent}`;
  }
  while (exponent > decimalSuffixExponentMax) {
    mantissa *= 1000n;
    exponent -= 3;
  }
  return `${mantissa}${decimalSuffixByExponent.get(exponent) ?? ''}`;
}

/** Integer division rounding any remainder away from zero; `divisor` is positive. */
function divideAwayFromZero(dividend: bigint, divisor: bigint): bigint {
  const quotient = dividend / divisor;
  if (dividend % divisor === 0n) return quotient;
  return dividend < 0n ? quotient - 1n : quotient + 1n;
}
