/**
 * Probes, restart policies, exits and image pull failures of pods run by a node agent with the
 * docker runtime against 3 real master processes. The agent resyncs only every 5 s, so a pod
 * reacting sooner shows the exit events at work. Needs Docker (CI starts it); never skipped.
 */

import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Event } from '../../core/index.js';
import {
  type AgentCluster,
  podHelpers,
  readyCondition,
  startDockerAgentCluster,
  waitFor,
} from '../fixtures/e2e.js';

const node = `e2e-probes-${process.pid}`;
const podResyncMs = 5_000;
const docker = new Docker();
let api: ApiClient;

const { getPod, createPod } = podHelpers(() => api, node);

describe('node agent probes and restarts with the docker runtime', () => {
  let env: AgentCluster;
  beforeAll(async () => {
    env = await startDockerAgentCluster({
      node,
      docker,
      podResyncMs: podResyncMs,
      restartBackoff: { backoffMsInitial: 500, backoffMsMax: 1_000, backoffResetAfterRunMs: 600_000 },
    });
    api = env.api;
  }, 60_000);

  afterAll(async () => {
    await env?.stop();
  }, 60_000);

  it('restarts a container whose liveness probe fails, with a rising restartCount', async () => {
    await createPod('liveness', {
      restartPolicy: 'Always',
      containers: [
        {
          name: 'web',
          image: 'coxswain/busybox',
          // Healthy for about 2 s: then the file the probe fetches is deleted.
          command: [
            'sh',
            '-c',
            'mkdir -p /www; echo ok > /www/healthz; (sleep 2; rm /www/healthz) & exec httpd -f -p 8080 -h /www',
          ],
          ports: [{ name: 'http', containerPort: 8080 }],
          livenessProbe: {
            httpGet: { path: '/healthz', port: 'http' },
            initialDelaySeconds: 1,
            periodSeconds: 1,
            timeoutSeconds: 1,
            failureThreshold: 1,
          },
        },
      ],
    });
    const restarted = await waitFor(
      'restartCount >= 2',
      async () => {
        const p = await getPod('liveness');
        const s = p.status?.containerStatuses?.[0];
        return (s?.restartCount ?? 0) >= 2 ? s : undefined;
      },
      30_000,
    );
    expect(restarted?.lastState?.terminated?.reason).toBe('Error');
    expect(restarted?.lastState?.terminated?.exitCode).toBeGreaterThan(0);
    // The run was healthy until the file went away (about 2 s), then stopped for the failure.
    const last = restarted?.lastState?.terminated;
    const ranMs = Date.parse(last?.finishedAt ?? '') - Date.parse(last?.startedAt ?? '');
    expect(ranMs).toBeGreaterThanOrEqual(2_000);
    // Kubelet's events, one Event per reason whose count follows the restarts.
    const events = await waitFor(
      'Unhealthy and Killing events counted twice, BackOff',
      async () => {
        const all = ((await api.list('Event', { namespace: 'default' })).items as unknown as Event[]).filter(
          (e) => e.involvedObject.name === 'liveness',
        );
        const count = (reason: string) => all.find((e) => e.reason === reason)?.count ?? 0;
        return count('Unhealthy') >= 2 && count('Killing') >= 2 && count('BackOff') >= 1 ? all : undefined;
      },
      15_000,
    );
    const of = (reason: string) => events.filter((e) => e.reason === reason);
    expect(of('Killing')).toHaveLength(1);
    expect(of('Killing')[0]).toMatchObject({
      type: 'Normal',
      message: 'Container web failed liveness probe, will be restarted',
      involvedObject: { kind: 'Pod', fieldPath: 'spec.containers{web}' },
      source: { component: 'kubelet', host: node },
    });
    expect(of('Unhealthy')[0]?.type).toBe('Warning');
    expect(of('Unhealthy')[0]?.message).toMatch(
      /^Liveness probe failed: HTTP probe failed with statuscode: 404$/,
    );
    expect(of('BackOff')[0]?.message).toMatch(
      /^Back-off restarting failed container web in pod liveness_default\(/,
    );
    expect(of('Started')[0]?.count ?? 0).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('keeps a pod unready until its readiness probe passes', async () => {
    await createPod('readiness', {
      containers: [
        {
          name: 'web',
          image: 'coxswain/busybox',
          // Ready after about 4 s: the file the probe fetches appears.
          command: [
            'sh',
            '-c',
            'mkdir -p /www; (sleep 4; echo ok > /www/ready) & exec httpd -f -p 8080 -h /www',
          ],
          readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1, timeoutSeconds: 1 },
        },
      ],
    });
    const unready = await waitFor(
      'Running but not Ready',
      async () => {
        const p = await getPod('readiness');
        return p.status?.phase === 'Running' ? p : undefined;
      },
      10_000,
    );
    expect(readyCondition(unready)).toBe('False');
    expect(unready.status?.containerStatuses?.[0]?.ready).toBe(false);
    const ready = await waitFor(
      'Ready',
      async () => {
        const p = await getPod('readiness');
        return readyCondition(p) === 'True' ? p : undefined;
      },
      15_000,
    );
    expect(ready.status?.containerStatuses?.[0]?.ready).toBe(true);
  }, 30_000);

  it('backs off pulling an image that does not exist (ImagePullBackOff with the message)', async () => {
    await createPod('nosuchimage', {
      containers: [{ name: 'app', image: 'coxswain/does-not-exist:1' }],
    });
    const waiting = await waitFor(
      'ImagePullBackOff',
      async () => {
        const p = await getPod('nosuchimage');
        const w = p.status?.containerStatuses?.[0]?.state?.waiting;
        return w?.reason === 'ImagePullBackOff' ? w : undefined;
      },
      10_000,
    );
    expect(waiting.message).toBe(
      'image coxswain/does-not-exist:1: not present on this node, and this agent does not pull images (build it with `cox image build`, or run the agent with --pull-images)',
    );
    expect((await getPod('nosuchimage')).status?.phase).toBe('Pending');
  }, 20_000);

  it('fails a pod under restartPolicy Never when its container exits 1, seen at once by the exit event', async () => {
    const createdMs = Date.now();
    await createPod('never', {
      restartPolicy: 'Never',
      containers: [{ name: 'app', image: 'coxswain/busybox', command: ['sh', '-c', 'sleep 1; exit 1'] }],
    });
    const failed = await waitFor(
      'phase Failed',
      async () => {
        const p = await getPod('never');
        return p.status?.phase === 'Failed' ? p : undefined;
      },
      10_000,
    );
    // The 5 s resync would be later than this: the container's exit triggered the pass.
    expect(Date.now() - createdMs).toBeLessThan(podResyncMs);
    expect(failed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(1);
    expect(failed.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  }, 20_000);

  it('completes a pod under restartPolicy OnFailure when its container exits 0', async () => {
    await createPod('onfailure', {
      restartPolicy: 'OnFailure',
      containers: [{ name: 'app', image: 'coxswain/busybox', command: ['sh', '-c', 'sleep 1; exit 0'] }],
    });
    const done = await waitFor(
      'phase Succeeded',
      async () => {
        const p = await getPod('onfailure');
        return p.status?.phase === 'Succeeded' ? p : undefined;
      },
      10_000,
    );
    expect(done.status?.containerStatuses?.[0]?.state?.terminated?.reason).toBe('Completed');
    expect(done.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  }, 20_000);
});
