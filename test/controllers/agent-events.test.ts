/**
 * Kubelet's events in a cluster: in-process masters with the scheduler and a hollow node. A
 * pod's life shows as the scheduler's `Scheduled` and the agent's `Pulled`, `Created` and
 * `Started`, through `cox events --for pod/NAME` as a user reads them.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Event } from '../../core/index.js';
import { coxAgainst } from '../fixtures/cox-in-process.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

let c: HollowCluster;

beforeAll(async () => {
  c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
}, 60_000);
afterAll(async () => {
  await c?.stop();
});

describe('agent events (in-process masters, hollow node)', () => {
  it('shows a pod scheduled, its container pulled, created and started', async () => {
    await c.api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'solo', namespace: 'default' },
      spec: { containers: [{ name: 'app', image: 'coxswain/busybox' }] },
    });
    const events = await waitFor(
      'Scheduled and Started',
      async () => {
        const all = (await listOf<Event>(c.api, 'Event')).filter((e) => e.involvedObject.name === 'solo');
        const reasons = new Set(all.map((e) => e.reason));
        return reasons.has('Scheduled') && reasons.has('Started') ? all : undefined;
      },
      60_000,
    );
    const byReason = new Map(events.map((e) => [e.reason, e]));
    expect(byReason.get('Scheduled')?.source?.component).toBe('default-scheduler');
    for (const reason of ['Pulled', 'Created', 'Started']) {
      expect(byReason.get(reason)).toMatchObject({
        type: 'Normal',
        source: { component: 'kubelet', host: 'n1' },
        involvedObject: { kind: 'Pod', name: 'solo', fieldPath: 'spec.containers{app}' },
      });
    }
    const r = await coxAgainst(c.api, 'events', '--for', 'pod/solo');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    for (const reason of ['Scheduled', 'Pulled', 'Created', 'Started']) {
      expect(lines.some((l) => new RegExp(`Normal\\s+${reason}\\s+pod/solo\\s`).test(l))).toBe(true);
    }
    expect(r.stdout).toMatch(/Normal\s+Started\s+pod\/solo\s+Started container app/);
    expect(r.stdout).toMatch(
      /Normal\s+Pulled\s+pod\/solo\s+Container image "coxswain\/busybox" already present on machine/,
    );
    // The node's own events.
    const nodeEvents = await waitFor('NodeReady', async () => {
      const all = (await listOf<Event>(c.api, 'Event')).filter((e) => e.involvedObject.kind === 'Node');
      return all.some((e) => e.reason === 'NodeReady') ? all : undefined;
    });
    expect(nodeEvents.map((e) => e.reason).sort()).toEqual(['NodeReady', 'Starting']);
  });
});
