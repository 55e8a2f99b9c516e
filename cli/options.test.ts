import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import {
  parseCascade,
  parseConsistency,
  parseDuration,
  parseGracePeriod,
  parseKindList,
  parseOutputFormat,
  parseResourceArgs,
} from './options.js';

describe('parseOutputFormat', () => {
  it('accepts the kubectl formats and defaults to the table', () => {
    expect(parseOutputFormat(undefined)).toBe('table');
    for (const f of ['wide', 'yaml', 'json', 'name']) expect(parseOutputFormat(f)).toBe(f);
  });
  it('rejects others with a usage error', () => {
    expect(() => parseOutputFormat('xml')).toThrow(UsageError);
    expect(() => parseOutputFormat('table')).toThrow(/unknown output format "table"/);
  });
});

describe('kinds and resource arguments', () => {
  it('resolves plurals, short names and kinds, dropping duplicates', () => {
    expect(parseKindList('pods,deploy,Pod,cm')).toEqual(['Pod', 'Deployment', 'ConfigMap']);
  });
  it('names an unknown kind', () => {
    expect(() => parseKindList('pods,flurbs')).toThrow(/unknown kind "flurbs": use one of namespaces/);
  });
  it('takes KIND NAME... for every listed kind', () => {
    const t = parseResourceArgs(['po,svc', 'a', 'b']);
    expect(t.kinds).toEqual(['Pod', 'Service']);
    expect(t.names.get('Pod')).toEqual(['a', 'b']);
    expect(t.names.get('Service')).toEqual(['a', 'b']);
  });
  it('takes KIND/NAME... grouped by kind', () => {
    const t = parseResourceArgs(['pod/a', 'deploy/web', 'po/b']);
    expect(t.kinds).toEqual(['Pod', 'Deployment']);
    expect(t.names.get('Pod')).toEqual(['a', 'b']);
    expect(t.names.get('Deployment')).toEqual(['web']);
  });
  it('rejects mixed and empty forms', () => {
    expect(() => parseResourceArgs([])).toThrow(UsageError);
    expect(() => parseResourceArgs(['pod/a', 'b'])).toThrow(/expected KIND\/NAME/);
    expect(() => parseResourceArgs(['pods', 'deploy/x'])).toThrow(/may not contain/);
  });
});

describe('delete and read flags', () => {
  it('maps --cascade to a propagation policy', () => {
    expect(parseCascade(undefined)).toBeUndefined();
    expect(parseCascade('background')).toBe('Background');
    expect(parseCascade('foreground')).toBe('Foreground');
    expect(parseCascade('orphan')).toBe('Orphan');
    expect(parseCascade('false')).toBe('Orphan');
    expect(() => parseCascade('sideways')).toThrow(/--cascade/);
  });
  it('parses --grace-period', () => {
    expect(parseGracePeriod('0')).toBe(0);
    expect(parseGracePeriod('30')).toBe(30);
    expect(parseGracePeriod('-1')).toBeUndefined();
    expect(() => parseGracePeriod('-2')).toThrow(/>= -1/);
    expect(() => parseGracePeriod('1.5')).toThrow(/integer/);
  });
  it('parses --consistency', () => {
    expect(parseConsistency('serializable')).toBe('serializable');
    expect(() => parseConsistency('eventual')).toThrow(UsageError);
  });
});

describe('parseDuration', () => {
  it("takes Go's duration terms and sums them, in ms", () => {
    expect(parseDuration('500ms', '--x')).toBe(500);
    expect(parseDuration('10s', '--x')).toBe(10_000);
    expect(parseDuration('5m', '--x')).toBe(300_000);
    expect(parseDuration('1h30m', '--x')).toBe(5_400_000);
    expect(parseDuration('1.5s', '--x')).toBe(1_500);
  });
  it('rejects anything else naming the flag', () => {
    for (const bad of ['', '10', 's', '10x', '-1s', '1 s', '1s5']) {
      expect(() => parseDuration(bad, '--y')).toThrow(
        `--y: "${bad}" is not a duration like 500ms, 10s, 5m or 1h30m`,
      );
    }
  });
});
