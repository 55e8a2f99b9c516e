/**
 * Images on a docker node: `cox image build-base` and `cox image build DIR -t NAME` (the real
 * `cox` process against the real engine), a pod of the built image run by a node agent against
 * 3 real masters, and ImagePullBackOff carrying the registry's own error for an image that is
 * neither on the node nor in its registry (an empty registry on loopback, which the engine
 * really asks). Needs Docker (CI starts it); never skipped.
 */

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Event } from '../../core/index.js';
import { DockerRuntime } from '../../node-agent/docker-runtime.js';
import { baseImage } from '../../node-agent/images.js';
import {
  type AgentCluster,
  podHelpers,
  runCoxProcess,
  startDockerAgentCluster,
  waitFor,
} from '../fixtures/e2e.js';
import { type EmptyRegistry, startEmptyRegistry } from '../fixtures/registry.js';

const node = `e2e-images-${process.pid}`;
const docker = new Docker();
/** Built by this file, removed at the end. */
const greeterTag = `coxswain-test/greeter-${process.pid}:1`;
const brokenTag = `coxswain-test/broken-${process.pid}:1`;
let api: ApiClient;
let registry: EmptyRegistry;
let workDir: string;

const { getPod, createPod } = podHelpers(() => api, node);

describe('images on a docker node', () => {
  let env: AgentCluster;
  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'cox-images-'));
    registry = await startEmptyRegistry();
    env = await startDockerAgentCluster({
      node,
      docker,
      podResyncMs: 1_000,
      restartBackoff: { backoffMsInitial: 500, backoffMsMax: 1_000, backoffResetAfterRunMs: 600_000 },
      // This agent pulls what it lacks (only from the loopback registry in these tests).
      runtime: new DockerRuntime({ node, docker, pull: true }),
    });
    api = env.api;
  }, 60_000);

  afterAll(async () => {
    await env?.stop();
    await registry?.close();
    for (const tag of [greeterTag, brokenTag]) {
      await docker
        .getImage(tag)
        .remove({ force: true })
        .catch(() => {});
    }
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  }, 60_000);

  it('cox image build-base (re)builds coxswain/busybox and prints its id', async () => {
    const r = await runCoxProcess(['image', 'build-base'], { timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const id = (await docker.getImage(baseImage).inspect()).Id;
    expect(r.stdout).toBe(`image ${baseImage} built (${id})\n`);
  }, 130_000);

  it('cox image build builds a Dockerfile directory, and a pod of that image runs on the node', async () => {
    const dir = join(workDir, 'greeter');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'greeting'), 'hello from a Dockerfile\n');
    await writeFile(
      join(dir, 'Dockerfile'),
      'FROM coxswain/busybox\nCOPY greeting /srv/greeting\nCMD ["cat", "/srv/greeting"]\n',
    );
    const r = await runCoxProcess(['image', 'build', dir, '-t', greeterTag], { timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    const id = (await docker.getImage(greeterTag).inspect()).Id;
    expect(r.stdout).toBe(`image ${greeterTag} built (${id})\n`);

    await createPod('greeter', {
      restartPolicy: 'Never',
      containers: [{ name: 'app', image: greeterTag, imagePullPolicy: 'Never' }],
    });
    const done = await waitFor(
      'greeter Succeeded',
      async () => {
        const p = await getPod('greeter');
        return p.status?.phase === 'Succeeded' ? p : undefined;
      },
      20_000,
    );
    const runtime = new DockerRuntime({ node, docker });
    const [app] = await runtime.listContainers({ podUid: done.metadata.uid ?? '' });
    let text = '';
    for await (const chunk of runtime.logs(app?.id ?? '')) text += Buffer.from(chunk.data).toString();
    expect(text).toBe('hello from a Dockerfile\n');
  }, 150_000);

  it('a failed build is one error line naming the step, and exit code 1', async () => {
    const dir = join(workDir, 'broken');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), 'FROM coxswain/busybox\nRUN exit 7\n');
    const r = await runCoxProcess(['image', 'build', dir, '-t', brokenTag], { timeoutMs: 120_000 });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^error: building coxswain-test\/broken-\d+:1 from .*: step 2\/2 "RUN exit 7" failed: .*code: 7\n$/,
    );
    const missing = await runCoxProcess(['image', 'build', join(workDir, 'nowhere'), '-t', brokenTag]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^error: building coxswain-test\/broken-\d+:1 from .*nowhere: .*ENOENT.*\n$/,
    );
  }, 150_000);

  it('backs off an image neither on the node nor in its registry, with the registry’s error as the message', async () => {
    const image = `${registry.host}/cox/missing:1`;
    await createPod('unpullable', { containers: [{ name: 'app', image }] });
    const reasons = new Set<string>();
    const waiting = await waitFor(
      'ImagePullBackOff',
      async () => {
        const w = (await getPod('unpullable')).status?.containerStatuses?.[0]?.state?.waiting;
        if (w?.reason !== undefined) reasons.add(w.reason);
        return w?.reason === 'ImagePullBackOff' ? w : undefined;
      },
      20_000,
      50,
    );
    // The engine asked the registry, and the registry's answer is what the pod shows.
    expect(registry.requests).toContain('GET /v2/');
    expect(registry.requests.some((r) => r.includes('/v2/cox/missing/manifests/1'))).toBe(true);
    expect(waiting.message).toBe(
      `image ${image}: manifest for ${image} not found: manifest unknown: manifest unknown`,
    );
    expect([...reasons].filter((r) => r !== 'ContainerCreating')).toEqual(
      reasons.has('ErrImagePull') ? ['ErrImagePull', 'ImagePullBackOff'] : ['ImagePullBackOff'],
    );
    expect((await getPod('unpullable')).status?.phase).toBe('Pending');
    // Kubelet's events: the pull was tried, and failed with the registry's words.
    const events = await waitFor('Pulling and Failed events', async () => {
      const all = ((await api.list('Event', { namespace: 'default' })).items as unknown as Event[]).filter(
        (e) => e.involvedObject.name === 'unpullable',
      );
      return all.some((e) => e.reason === 'Pulling') && all.some((e) => e.message === 'Error: ErrImagePull')
        ? all
        : undefined;
    });
    expect(events.find((e) => e.reason === 'Pulling')?.message).toBe(`Pulling image "${image}"`);
    expect(events.find((e) => e.message?.startsWith('Failed to pull image'))).toMatchObject({
      type: 'Warning',
      reason: 'Failed',
      message: `Failed to pull image "${image}": manifest for ${image} not found: manifest unknown: manifest unknown`,
    });
  }, 30_000);
});
