/**
 * A Deployment on real Docker: 3 real master processes (the leader runs the Deployment and
 * ReplicaSet controllers) and a docker agent. Pods serve with busybox httpd behind an httpGet
 * readiness probe. A rollout to a second image (built locally FROM the base image) with
 * maxUnavailable 0, then `cox rollout undo`, are followed by a pod watch over the whole run:
 * ready pods never drop below the replica count. `cox rollout status` streams both to
 * completion. Needs Docker (CI starts it); never skipped.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WatchStream } from '../../actors/api.js';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Deployment, Pod } from '../../core/index.js';
import { buildImage, ensureBaseImage } from '../../node-agent/images.js';
import { runtimeLabels } from '../../node-agent/runtime.js';
import { type CoxRun, coxRunner } from '../fixtures/cox-process.js';
import { type AgentCluster, readyCondition, startDockerAgentCluster, waitFor } from '../fixtures/e2e.js';

const node = `e2e-deploy-${process.pid}`;
const docker = new Docker();
const v1 = 'coxswain/busybox';
const v2 = `coxswain/rollout-e2e:v${process.pid}`;
const replicas = 3;
let env: AgentCluster;
let api: ApiClient;
let servers: string;
let home: string;

/** The real `cox` against every master's WebSocket gateway. */
function cox(args: string[], input?: string): Promise<CoxRun> {
  const run = coxRunner({ PATH: process.env.PATH ?? '', HOME: home, COX_HOME: home });
  return run(['--server', servers, ...args], input, 150_000);
}

function manifest(image: string): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          nodeName: node,
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'web',
              image,
              command: [
                'sh',
                '-c',
                'mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www',
              ],
              ports: [{ containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1, timeoutSeconds: 1 },
            },
          ],
        },
      },
    },
  });
}

/**
 * Follows the app's pods from now on and records the fewest ready ones (Ready, not being
 * deleted) seen after each batch of events.
 */
async function watchReady() {
  const listed = await api.list('Pod', { namespace: 'default', labelSelector: 'app=web' });
  const pods = new Map<string, Pod>();
  for (const p of listed.items as Pod[]) pods.set(p.metadata.name ?? '', p);
  const readyNow = () =>
    [...pods.values()].filter((p) => !p.metadata.deletionTimestamp && readyCondition(p) === 'True').length;
  let fewest = readyNow();
  const stream: WatchStream = await api.watch('Pod', {
    namespace: 'default',
    labelSelector: 'app=web',
    resourceVersion: listed.resourceVersion,
  });
  const loop = (async () => {
    for (;;) {
      const events = await stream.next();
      if (events === undefined) return;
      for (const e of events) {
        if (e.type === 'BOOKMARK') continue;
        const p = e.object as Pod;
        if (e.type === 'DELETED') pods.delete(p.metadata.name ?? '');
        else pods.set(p.metadata.name ?? '', p);
      }
      fewest = Math.min(fewest, readyNow());
    }
  })();
  return {
    stop: async () => {
      stream.close();
      await loop;
      return fewest;
    },
  };
}

/** The image each running app container of the node actually runs, per Docker. */
async function runningImages(): Promise<string[]> {
  const list = await docker.listContainers({ filters: { label: [`${runtimeLabels.node}=${node}`] } });
  const images: string[] = [];
  for (const c of list) {
    if (c.Labels[runtimeLabels.role] !== 'app' || c.Labels[runtimeLabels.container] !== 'web') continue;
    images.push(c.Image.replace(/:latest$/, ''));
  }
  return images.sort();
}

describe('Deployment rollout and rollback on Docker', () => {
  beforeAll(async () => {
    await ensureBaseImage(docker);
    const dir = mkdtempSync(join(tmpdir(), 'cox-rollout-image-'));
    writeFileSync(join(dir, 'Dockerfile'), `FROM ${v1}\nLABEL coxswain.test=rollout-v2\n`);
    await buildImage(docker, dir, v2);
    rmSync(dir, { recursive: true, force: true });
    home = mkdtempSync(join(tmpdir(), 'cox-rollout-home-'));
    env = await startDockerAgentCluster({ node, docker, podResyncMs: 1_000 });
    api = env.api;
    servers = [...env.cluster.members.values()].map((m) => `ws://${m.wsAddress}`).join(',');
  }, 120_000);

  afterAll(async () => {
    await env?.stop();
    await docker
      .getImage(v2)
      .remove()
      .catch(() => {});
    if (home) rmSync(home, { recursive: true, force: true });
  }, 60_000);

  it('rolls to a new image and back without ever dropping below the replica count of ready pods', async () => {
    expect(await cox(['apply', '-f', '-'], manifest(v1))).toMatchObject({
      code: 0,
      stdout: 'deployment/web created\n',
    });
    const first = await cox(['rollout', 'status', 'deploy/web', '--timeout', '120s']);
    expect(first.stdout.trimEnd().split('\n').at(-1)).toBe('deployment "web" successfully rolled out');
    expect(first.code).toBe(0);
    expect(await runningImages()).toEqual(Array(replicas).fill(v1));

    // Roll forward, watching readiness over the whole rollout.
    let watch = await watchReady();
    expect(await cox(['apply', '-f', '-'], manifest(v2))).toMatchObject({
      code: 0,
      stdout: 'deployment/web configured\n',
    });
    const forward = await cox(['rollout', 'status', 'deploy/web', '--timeout', '120s']);
    expect(forward.code).toBe(0);
    expect(forward.stdout).toMatch(/Waiting for deployment "web" rollout to finish: /);
    expect(forward.stdout.trimEnd().split('\n').at(-1)).toBe('deployment "web" successfully rolled out');
    await waitFor('only new containers run', async () =>
      (await runningImages()).join() === Array(replicas).fill(v2).join() ? true : undefined,
    );
    expect(await watch.stop()).toBeGreaterThanOrEqual(replicas);
    const rolled = (await api.get({ kind: 'Deployment', name: 'web' })) as Deployment;
    expect(rolled.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('2');

    // And back: the old template, under a new revision number.
    watch = await watchReady();
    expect(await cox(['rollout', 'undo', 'deploy/web'])).toMatchObject({
      code: 0,
      stdout: 'deployment/web rolled back\n',
    });
    const back = await cox(['rollout', 'status', 'deploy/web', '--timeout', '120s']);
    expect(back.code).toBe(0);
    expect(back.stdout.trimEnd().split('\n').at(-1)).toBe('deployment "web" successfully rolled out');
    await waitFor('only old containers run', async () =>
      (await runningImages()).join() === Array(replicas).fill(v1).join() ? true : undefined,
    );
    expect(await watch.stop()).toBeGreaterThanOrEqual(replicas);
    const d = (await api.get({ kind: 'Deployment', name: 'web' })) as Deployment;
    expect(d.spec.template.spec.containers[0].image).toBe(v1);
    expect(d.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('3');
    const history = await cox(['rollout', 'history', 'deploy/web']);
    expect(history.stdout).toBe(
      'deployment/web\nREVISION   CHANGE-CAUSE\n2          <none>\n3          <none>\n',
    );
  }, 300_000);
});
