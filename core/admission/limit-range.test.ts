import { describe, expect, it } from 'vitest';
import type { Container, LimitRange, LimitRangeItem, Pod } from '../objects.js';
import { applyLimitRanges, effectiveDefaults, limitRangerAnnotation } from './limit-range.js';

const pod = (containers: Partial<Container>[], initContainers?: Partial<Container>[]): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'ns' },
  spec: {
    containers: containers.map((c, i) => ({ name: `c${i}`, image: 'busybox', ...c })),
    ...(initContainers
      ? { initContainers: initContainers.map((c, i) => ({ name: `init${i}`, image: 'busybox', ...c })) }
      : {}),
  },
});

const lr = (name: string, ...limits: LimitRangeItem[]): LimitRange => ({
  apiVersion: 'v1',
  kind: 'LimitRange',
  metadata: { name, namespace: 'ns' },
  spec: { limits },
});

describe('effectiveDefaults (SetDefaults_LimitRangeItem)', () => {
  it('defaults the limit to max and the request to the limit, then to min', () => {
    expect(effectiveDefaults({ type: 'Container', max: { cpu: '1' }, min: { memory: '64Mi' } })).toEqual({
      limits: { cpu: '1' },
      requests: { cpu: '1', memory: '64Mi' },
    });
    expect(
      effectiveDefaults({ type: 'Container', default: { cpu: '500m' }, defaultRequest: { cpu: '100m' } }),
    ).toEqual({ limits: { cpu: '500m' }, requests: { cpu: '100m' } });
    expect(effectiveDefaults({ type: 'Pod', max: { cpu: '1' } })).toEqual({ limits: {}, requests: {} });
  });
});

describe('applyLimitRanges: defaults (item 48)', () => {
  it('gives a container without resources the defaults, and annotates the pod', () => {
    const r = applyLimitRanges(pod([{}]), [
      lr('lr1', {
        type: 'Container',
        default: { cpu: '500m', memory: '256Mi' },
        defaultRequest: { cpu: '100m' },
      }),
    ]);
    expect(r.violations).toEqual([]);
    expect(r.pod.spec.containers[0].resources).toEqual({
      limits: { cpu: '500m', memory: '256Mi' },
      requests: { cpu: '100m', memory: '256Mi' },
    });
    expect(r.pod.metadata.annotations?.[limitRangerAnnotation]).toBe(
      'LimitRanger plugin set: cpu limit for container c0; memory limit for container c0; cpu request for container c0; memory request for container c0',
    );
  });

  it('keeps what the container sets, and its requests default to its own limits first', () => {
    const r = applyLimitRanges(pod([{ resources: { limits: { cpu: '2' } } }]), [
      lr('lr1', { type: 'Container', default: { cpu: '500m' }, defaultRequest: { cpu: '100m' } }),
    ]);
    expect(r.pod.spec.containers[0].resources).toEqual({ limits: { cpu: '2' }, requests: { cpu: '2' } });
    expect(r.defaulted).toEqual([]);
  });

  it('defaults init containers too; the first LimitRange by name wins', () => {
    const r = applyLimitRanges(pod([{}], [{}]), [
      lr('b', { type: 'Container', default: { cpu: '300m' } }),
      lr('a', { type: 'Container', default: { cpu: '200m' } }),
    ]);
    expect(r.pod.spec.containers[0].resources?.limits).toEqual({ cpu: '200m' });
    expect(r.pod.spec.initContainers?.[0].resources?.limits).toEqual({ cpu: '200m' });
  });

  it('returns the pod itself when no LimitRange has a Container item', () => {
    const p = pod([{}]);
    expect(applyLimitRanges(p, [lr('a', { type: 'Pod', max: { cpu: '4' } })]).pod).toBe(p);
  });
});

describe('applyLimitRanges: limits', () => {
  const max = lr('lr1', { type: 'Container', max: { cpu: '500m' } });

  it('rejects a limit above max with the field path and Kubernetes wording', () => {
    const r = applyLimitRanges(pod([{ resources: { limits: { cpu: '1' } } }]), [max]);
    expect(r.violations).toEqual([
      {
        limitRange: 'lr1',
        path: 'spec.containers[0].resources.limits.cpu',
        message: 'maximum cpu usage per Container is 500m, but limit is 1',
      },
      {
        limitRange: 'lr1',
        path: 'spec.containers[0].resources.requests.cpu',
        message: 'maximum cpu usage per Container is 500m, but request is 1',
      },
    ]);
  });

  it('max defaults the limit, so a container without one gets max and passes', () => {
    const r = applyLimitRanges(pod([{}]), [max]);
    expect(r.violations).toEqual([]);
    expect(r.pod.spec.containers[0].resources).toEqual({
      limits: { cpu: '500m' },
      requests: { cpu: '500m' },
    });
  });

  it('min: a request below it, and a missing request', () => {
    const min = lr('lr1', { type: 'Container', min: { memory: '64Mi' } });
    const low = applyLimitRanges(pod([{ resources: { requests: { memory: '32Mi' } } }]), [min]);
    expect(low.violations.map((v) => v.message)).toEqual([
      'minimum memory usage per Container is 64Mi, but request is 32Mi',
    ]);
    const limitLow = applyLimitRanges(
      pod([{ resources: { requests: { memory: '64Mi' }, limits: { memory: '48Mi' } } }]),
      [min],
    );
    expect(limitLow.violations[0]).toMatchObject({
      path: 'spec.containers[0].resources.limits.memory',
      message: 'minimum memory usage per Container is 64Mi, but limit is 48Mi',
    });
  });

  it('maxLimitRequestRatio', () => {
    const ratio = lr('lr1', { type: 'Container', maxLimitRequestRatio: { cpu: '2' } });
    const bad = applyLimitRanges(pod([{ resources: { requests: { cpu: '250m' }, limits: { cpu: '1' } } }]), [
      ratio,
    ]);
    expect(bad.violations[0]).toMatchObject({
      path: 'spec.containers[0].resources.limits.cpu',
      message: 'cpu max limit to request ratio per Container is 2, but provided ratio is 4',
    });
    const ok = applyLimitRanges(pod([{ resources: { requests: { cpu: '500m' }, limits: { cpu: '1' } } }]), [
      ratio,
    ]);
    expect(ok.violations).toEqual([]);
    const none = applyLimitRanges(pod([{}]), [ratio]);
    expect(none.violations[0].message).toBe(
      'cpu max limit to request ratio per Container is 2, but no request is specified or request is 0',
    );
  });

  it('Pod items limit the pod totals', () => {
    const podMax = lr('lr1', { type: 'Pod', max: { cpu: '1' } });
    const two = applyLimitRanges(
      pod([{ resources: { limits: { cpu: '600m' } } }, { resources: { limits: { cpu: '600m' } } }]),
      [podMax],
    );
    expect(two.violations[0]).toMatchObject({
      path: 'spec.containers[*].resources.limits.cpu',
      message: 'maximum cpu usage per Pod is 1, but limit is 1200m',
    });
    const one = applyLimitRanges(pod([{ resources: { limits: { cpu: '600m' } } }, {}]), [podMax]);
    expect(one.violations[0].message).toBe('maximum cpu usage per Pod is 1; no limit is specified');
  });
});
