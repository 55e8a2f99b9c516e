import { describe, expect, it } from 'vitest';
import type { Pod } from '../../core/objects.js';
import { podDnsSettings } from './dns-config.js';

function pod(spec: Partial<Pod['spec']> & Record<string, unknown> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'shop' },
    spec: { containers: [], ...spec } as Pod['spec'],
  };
}

const cluster = { nameserver: '10.96.0.10', domain: 'cluster.local' };

describe('pod DNS settings', () => {
  it('ClusterFirst (the default): the cluster DNS, the namespace search path, ndots:5', () => {
    const want = {
      nameservers: ['10.96.0.10'],
      searches: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      options: ['ndots:5'],
    };
    expect(podDnsSettings(pod(), cluster)).toEqual(want);
    expect(podDnsSettings(pod({ dnsPolicy: 'ClusterFirst' }), cluster)).toEqual(want);
  });

  it('falls back to the node resolver without a cluster DNS, and for Default', () => {
    expect(podDnsSettings(pod(), undefined)).toBeUndefined();
    expect(podDnsSettings(pod({ dnsPolicy: 'Default' }), cluster)).toBeUndefined();
  });

  it('None takes only dnsConfig; dnsConfig merges into ClusterFirst within the limits', () => {
    expect(
      podDnsSettings(
        pod({
          dnsPolicy: 'None',
          dnsConfig: { nameservers: ['10.96.0.53'], searches: ['a.example'], options: [{ name: 'edns0' }] },
        }),
        cluster,
      ),
    ).toEqual({ nameservers: ['10.96.0.53'], searches: ['a.example'], options: ['edns0'] });
    expect(
      podDnsSettings(
        pod({
          dnsConfig: {
            nameservers: ['10.96.0.10', '10.96.0.11', '10.96.0.12', '10.96.0.13'],
            searches: ['svc.cluster.local', 'extra.local'],
            options: [
              { name: 'ndots', value: '2' },
              { name: 'timeout', value: '1' },
            ],
          },
        }),
        cluster,
      ),
    ).toEqual({
      nameservers: ['10.96.0.10', '10.96.0.11', '10.96.0.12'],
      searches: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'extra.local'],
      options: ['ndots:2', 'timeout:1'],
    });
    const long = Array.from({ length: 40 }, (_, i) => `d${i}.example`);
    expect(
      podDnsSettings(pod({ dnsPolicy: 'None', dnsConfig: { searches: long } }), cluster)?.searches,
    ).toHaveLength(32);
  });
});
