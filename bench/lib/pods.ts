/** The pod the in-process benches store: a Deployment's pod, bound, ~420 bytes of JSON. */

import type { ApiObject } from '../../core/index.js';

export function benchPod(i: number): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `web-${i}`,
      namespace: 'default',
      uid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
      labels: { app: 'web', 'pod-template-hash': '5d8f7c9b4' },
      creationTimestamp: '2026-01-01T00:00:00Z',
    },
    spec: {
      containers: [
        { name: 'web', image: 'coxswain/demo:1', resources: { requests: { cpu: '100m', memory: '64Mi' } } },
      ],
      restartPolicy: 'Always',
      nodeName: `node-${i % 1000}`,
    },
    status: { phase: 'Pending' },
  } as unknown as ApiObject;
}
