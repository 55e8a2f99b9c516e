import { describe, expect, it } from 'vitest';
import type { Pod, Service } from '../../core/objects.js';
import { containerEnv } from './env.js';
import { serviceEnv } from './service-env.js';

function svc(name: string, ns: string, spec: Partial<Service['spec']>): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: spec as Service['spec'],
  };
}

const services = [
  svc('redis-primary', 'prod', {
    clusterIP: '10.96.0.11',
    ports: [
      { name: 'redis', port: 6379, protocol: 'TCP' },
      { name: 'metrics', port: 9121, protocol: 'UDP' },
    ],
  }),
  svc('api', 'prod', { clusterIP: '10.96.0.12', ports: [{ port: 8765 }] }),
  svc('headless', 'prod', { clusterIP: 'None', ports: [{ port: 80 }] }),
  svc('unallocated', 'prod', { ports: [{ port: 80 }] }),
  svc('elsewhere', 'dev', { clusterIP: '10.96.0.13', ports: [{ port: 80 }] }),
];

describe('service environment variables', () => {
  it("makes kubelet's variables for the namespace's services with a cluster IP", () => {
    expect(serviceEnv(services, 'prod', undefined)).toEqual([
      { name: 'API_SERVICE_HOST', value: '10.96.0.12' },
      { name: 'API_SERVICE_PORT', value: '8765' },
      { name: 'API_PORT', value: 'tcp://10.96.0.12:8765' },
      { name: 'API_PORT_8765_TCP', value: 'tcp://10.96.0.12:8765' },
      { name: 'API_PORT_8765_TCP_PROTO', value: 'tcp' },
      { name: 'API_PORT_8765_TCP_PORT', value: '8765' },
      { name: 'API_PORT_8765_TCP_ADDR', value: '10.96.0.12' },
      { name: 'REDIS_PRIMARY_SERVICE_HOST', value: '10.96.0.11' },
      { name: 'REDIS_PRIMARY_SERVICE_PORT', value: '6379' },
      { name: 'REDIS_PRIMARY_SERVICE_PORT_REDIS', value: '6379' },
      { name: 'REDIS_PRIMARY_SERVICE_PORT_METRICS', value: '9121' },
      { name: 'REDIS_PRIMARY_PORT', value: 'tcp://10.96.0.11:6379' },
      { name: 'REDIS_PRIMARY_PORT_6379_TCP', value: 'tcp://10.96.0.11:6379' },
      { name: 'REDIS_PRIMARY_PORT_6379_TCP_PROTO', value: 'tcp' },
      { name: 'REDIS_PRIMARY_PORT_6379_TCP_PORT', value: '6379' },
      { name: 'REDIS_PRIMARY_PORT_6379_TCP_ADDR', value: '10.96.0.11' },
      { name: 'REDIS_PRIMARY_PORT_9121_UDP', value: 'udp://10.96.0.11:9121' },
      { name: 'REDIS_PRIMARY_PORT_9121_UDP_PROTO', value: 'udp' },
      { name: 'REDIS_PRIMARY_PORT_9121_UDP_PORT', value: '9121' },
      { name: 'REDIS_PRIMARY_PORT_9121_UDP_ADDR', value: '10.96.0.11' },
    ]);
  });

  it('makes none when enableServiceLinks is false', () => {
    expect(serviceEnv(services, 'prod', false)).toEqual([]);
    expect(serviceEnv(services, 'dev', true).map((e) => e.name)).toContain('ELSEWHERE_SERVICE_HOST');
  });

  it("come after the container's own variables, which override them and may refer to them", () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'prod' },
      spec: { containers: [] },
    };
    const env = containerEnv(
      {
        name: 'app',
        image: 'i',
        env: [
          { name: 'API_SERVICE_PORT', value: '1' },
          { name: 'URL', value: 'http://$(API_SERVICE_HOST):$(API_SERVICE_PORT)/' },
        ],
      },
      'spec.containers[0]',
      { pod, configMaps: {}, secrets: {}, services },
    );
    expect(env.slice(0, 3)).toEqual([
      { name: 'API_SERVICE_PORT', value: '1' },
      { name: 'URL', value: 'http://10.96.0.12:1/' },
      { name: 'API_SERVICE_HOST', value: '10.96.0.12' },
    ]);
    expect(env.filter((e) => e.name === 'API_SERVICE_PORT')).toEqual([
      { name: 'API_SERVICE_PORT', value: '1' },
    ]);
    const off = containerEnv({ name: 'app', image: 'i' }, 'spec.containers[0]', {
      pod: { ...pod, spec: { ...pod.spec, enableServiceLinks: false } },
      configMaps: {},
      secrets: {},
      services,
    });
    expect(off).toEqual([]);
  });
});
