import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatQuantity, parseQuantity, Quantity, QuantityError, QuantityFormat } from './quantity.js';

const { BinarySI, DecimalSI, DecimalExponent } = QuantityFormat;
const unit = 1_000_000_000n;

// Cases from Kubernetes apimachinery resource/quantity_test.go (TestQuantityParse):
// input → exact value in nanos and the format kept.
const parseCases: [string, bigint, QuantityFormat][] = [
  ['0', 0n, DecimalSI],
  ['0n', 0n, DecimalSI],
  ['0Ki', 0n, BinarySI],
  ['1Ki', 1024n * unit, BinarySI],
  ['8Ki', 8n * 1024n * unit, BinarySI],
  ['7Mi', 7n * 2n ** 20n * unit, BinarySI],
  ['6Gi', 6n * 2n ** 30n * unit, BinarySI],
  ['5Ti', 5n * 2n ** 40n * unit, BinarySI],
  ['4Pi', 4n * 2n ** 50n * unit, BinarySI],
  ['3Ei', 3n * 2n ** 60n * unit, BinarySI],
  ['5n', 5n, DecimalSI],
  ['4u', 4000n, DecimalSI],
  ['3m', 3_000_000n, DecimalSI],
  ['9', 9n * unit, DecimalSI],
  ['8k', 8000n * unit, DecimalSI],
  ['7M', 7n * 10n ** 6n * unit, DecimalSI],
  ['6G', 6n * 10n ** 9n * unit, DecimalSI],
  ['5T', 5n * 10n ** 12n * unit, DecimalSI],
  ['2P', 2n * 10n ** 15n * unit, DecimalSI],
  ['1E', 10n ** 18n * unit, DecimalSI],
  ['1E-3', 1_000_000n, DecimalExponent],
  ['1e3', 1000n * unit, DecimalExponent],
  ['1E6', 10n ** 6n * unit, DecimalExponent],
  ['1e9', 10n ** 9n * unit, DecimalExponent],
  ['1E18', 10n ** 18n * unit, DecimalExponent],
  ['100.035k', 100_035n * unit, DecimalSI],
  ['0.001', 1_000_000n, DecimalSI],
  ['0.0005k', 500_000_000n, DecimalSI],
  ['0.5', 500_000_000n, DecimalSI],
  ['0.50000', 500_000_000n, DecimalSI],
  ['0.5e0', 500_000_000n, DecimalExponent],
  ['0.5e-1', 50_000_000n, DecimalExponent],
  ['0.5e-3', 500_000n, DecimalExponent],
  ['10.035M', 10_035_000n * unit, DecimalSI],
  ['1.2e3', 1200n * unit, DecimalExponent],
  ['1.3E+6', 1_300_000n * unit, DecimalExponent],
  ['9.01', 9_010_000_000n, DecimalSI],
  ['7.123456M', 7_123_456n * unit, DecimalSI],
  ['6.987654321G', 6_987_654_321n * unit, DecimalSI],
  ['1.01E', 101n * 10n ** 16n * unit, DecimalSI],
  // Rounding: finer than nano rounds up (away from zero).
  ['3.001n', 4n, DecimalSI],
  ['1.1E-9', 2n, DecimalExponent],
  ['0.0000000001', 1n, DecimalSI],
  ['0.0000000005', 1n, DecimalSI],
  ['0.9n', 1n, DecimalSI],
  ['0.00000012345', 124n, DecimalSI],
  ['-0.00000012345', -124n, DecimalSI],
  // Fractional binary.
  ['100.035Ki', (10_243_584n * unit) / 100n, BinarySI],
  ['0.5Mi', 524_288n * unit, BinarySI],
  ['0.05Gi', 53_687_091_200_000_000n, BinarySI],
  ['1.5Gi', 1_610_612_736n * unit, BinarySI],
  // Binary below 1 becomes decimal, as in Kubernetes.
  ['0.000000000001Ki', 2n, DecimalSI],
  // Odd but accepted spellings.
  ['.001', 1_000_000n, DecimalSI],
  ['.0001k', 100_000_000n, DecimalSI],
  ['1.', unit, DecimalSI],
  ['1.G', 10n ** 9n * unit, DecimalSI],
  ['+5', 5n * unit, DecimalSI],
  ['-5', -5n * unit, DecimalSI],
  ['-0', 0n, DecimalSI],
];

describe('parseQuantity', () => {
  it.each(parseCases)('%s', (text, nanos, format) => {
    const q = parseQuantity(text);
    expect(q.nanos).toBe(nanos);
    expect(q.format).toBe(format);
  });

  // Invalid inputs from Kubernetes' table plus a few of our own.
  it.each([
    ['', 'must not be empty'],
    ['1.1.M', 'unknown suffix ".M"'],
    ['1+1.0M', 'unknown suffix "+1.0M"'],
    ['0.1mi', 'unknown suffix "mi"'],
    ['0.1am', 'unknown suffix "am"'],
    ['aoeu', 'has no digits'],
    ['.5i', 'unknown suffix "i"'],
    ['1i', 'unknown suffix "i"'],
    ['-3.01i', 'unknown suffix "i"'],
    ['-3.01e-', 'unknown suffix "e-"'],
    ['1e', 'unknown suffix "e"'],
    ['1K', 'unknown suffix "K"'],
    ['1KI', 'unknown suffix "KI"'],
    ['.', 'has no digits'],
    ['-', 'has no digits'],
    ['Mi', 'has no digits'],
    [' 1', 'has no digits'],
    ['1 ', 'unknown suffix " "'],
    ['1e1.5', 'unknown suffix "e1.5"'],
    ['1e101', 'exponent must be within ±100'],
    ['1constructor', 'unknown suffix "constructor"'],
  ])('rejects %j', (text, reason) => {
    let caught: unknown;
    try {
      parseQuantity(text);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(QuantityError);
    const error = caught as QuantityError;
    expect(error.code).toBe('INVALID_QUANTITY');
    expect(error.name).toBe('QuantityError');
    expect(error.input).toBe(text);
    expect(error.message).toBe(`quantity ${JSON.stringify(text)}: ${reason}`);
  });

  it('rejects overlong input', () => {
    expect(() => parseQuantity('1'.repeat(300))).toThrow(/longer than 256 characters/);
  });
});

// Canonical forms from Kubernetes' TestQuantityCanonicalize / TestQuantityString and the
// documented examples (`1.5` → `1500m`, `1.5Gi` → `1536Mi`). Each row: inputs, canonical.
const formatCases: [string[], string][] = [
  [['1Gi', '1024Mi', '1048576Ki'], '1Gi'],
  [['1073741824'], '1073741824'],
  [['300Mi', '307200Ki'], '300Mi'],
  [['6Ki'], '6Ki'],
  [['1001Gi', '1025024Mi'], '1001Gi'],
  [['1Ti', '1024Gi'], '1Ti'],
  [['1.5Gi'], '1536Mi'],
  [['1.5Ki'], '1536'],
  [['0.5Ki'], '512'],
  [['1000Ei'], '1000Ei'],
  [['1024Ei'], '1024Ei'],
  [['-1Gi'], '-1Gi'],
  [['1100.5Ki'], '1126912'],
  [['0.1Ki'], '102400m'],
  [['5', '0.005k'], '5'],
  [['500m', '0.5'], '500m'],
  [['1.5', '1500m'], '1500m'],
  [['1G', '1000M', '0.001T'], '1G'],
  [['1M', '0.001G'], '1M'],
  [['1k', '1000'], '1k'],
  [['100k', '100000'], '100k'],
  [['1m'], '1m'],
  [['80m'], '80m'],
  [['1080m', '1.08', '1080000000n', '1.0800'], '1080m'],
  [['1u'], '1u'],
  [['80u'], '80u'],
  [['1080u'], '1080u'],
  [['1n'], '1n'],
  [['1000n'], '1u'],
  [['10800n'], '10800n'],
  [['-1080n'], '-1080n'],
  [['0', '00', '0Gi', '0e3', '-0m'], '0'],
  [['12E'], '12E'],
  [['1000E', '1000000P'], '1000E'],
  [['5e0', '0.005e3'], '5'],
  [['1e9', '.001e12'], '1e9'],
  [['1e-3', '0.001e0'], '1e-3'],
  [['1e-9', '1000e-12'], '1e-9'],
  [['80e-3'], '80e-3'],
  [['300e6', '3e8'], '300e6'],
  [['1e12', '1000e9'], '1e12'],
  [['1.5e3'], '1500'],
  [['1.2e3', '12e2'], '1200'],
  [['1e21'], '1e21'],
];

describe('formatQuantity', () => {
  for (const [inputs, canonical] of formatCases) {
    it.each(inputs)(`%s → ${canonical}`, (input) => {
      expect(formatQuantity(parseQuantity(input))).toBe(canonical);
      expect(parseQuantity(input).toString()).toBe(canonical);
    });
  }

  it('serializes to JSON as the canonical string', () => {
    expect(JSON.stringify({ cpu: parseQuantity('1.5') })).toBe('{"cpu":"1500m"}');
  });
});

describe('Quantity arithmetic', () => {
  it('has no float drift', () => {
    const sum = parseQuantity('0.1').add(parseQuantity('0.2'));
    expect(sum.cmp(parseQuantity('0.3'))).toBe(0);
    expect(sum.equals(parseQuantity('300m'))).toBe(true);
    expect(sum.toString()).toBe('300m');
  });

  it('adds across suffix families, keeping the left format', () => {
    expect(parseQuantity('1Gi').add(parseQuantity('512Mi')).toString()).toBe('1536Mi');
    expect(parseQuantity('1k').add(parseQuantity('24')).toString()).toBe('1024');
    expect(parseQuantity('1Ki').add(parseQuantity('1k')).toString()).toBe('2024');
  });

  it('takes the other format when the left is zero', () => {
    expect(parseQuantity('0').add(parseQuantity('1Gi')).toString()).toBe('1Gi');
    expect(parseQuantity('0').sub(parseQuantity('1Gi')).toString()).toBe('-1Gi');
  });

  it('subtracts and compares', () => {
    const left = parseQuantity('2').sub(parseQuantity('500m'));
    expect(left.toString()).toBe('1500m');
    expect(left.cmp(parseQuantity('1.5'))).toBe(0);
    expect(parseQuantity('1Gi').cmp(parseQuantity('1G'))).toBe(1);
    expect(parseQuantity('999m').cmp(parseQuantity('1'))).toBe(-1);
    expect(parseQuantity('1').sub(parseQuantity('2')).toString()).toBe('-1');
    expect(parseQuantity('1').neg().toString()).toBe('-1');
    expect(parseQuantity('0m').isZero()).toBe(true);
  });

  it.each([
    ['1', 1000n, 1n],
    ['1500m', 1500n, 2n],
    ['1100m', 1100n, 2n],
    ['1n', 1n, 1n],
    ['0', 0n, 0n],
    ['128Mi', 134_217_728_000n, 134_217_728n],
    ['-1500m', -1500n, -2n],
    ['-1n', -1n, -1n],
  ])('%s: milliValue %s, value %s (rounded away from zero)', (text, milli, value) => {
    const q = parseQuantity(text);
    expect(q.milliValue()).toBe(milli);
    expect(q.value()).toBe(value);
  });

  it('builds from units', () => {
    expect(Quantity.fromMilli(250n).toString()).toBe('250m');
    expect(Quantity.fromUnits(2048n, BinarySI).toString()).toBe('2Ki');
    expect(Quantity.fromNanos(5n).toString()).toBe('5n');
  });
});

describe('properties', () => {
  const quantity = fc
    .record({
      nanos: fc.oneof(
        fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
        fc.bigInt({ min: -1000n, max: 1000n }).map((n) => n * unit * 1024n ** 3n),
        fc.bigInt({ min: -1000n, max: 1000n }).map((n) => n * 10n ** 6n),
      ),
      format: fc.constantFrom(BinarySI, DecimalSI, DecimalExponent),
    })
    .map(({ nanos, format }) => Quantity.fromNanos(nanos, format));

  it('parse(format(q)) equals q and format is idempotent', () => {
    fc.assert(
      fc.property(quantity, (q) => {
        const text = formatQuantity(q);
        const back = parseQuantity(text);
        expect(back.nanos).toBe(q.nanos);
        expect(formatQuantity(back)).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('addition is exact: (a + b) - b == a', () => {
    fc.assert(
      fc.property(quantity, quantity, (a, b) => {
        expect(a.add(b).sub(b).cmp(a)).toBe(0);
      }),
    );
  });
});
