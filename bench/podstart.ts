/**
 * `npm run bench:podstart`: pod start latency — from the create call to `Running` seen by a
 * watch — through 3 Coxswain masters (`cox master` processes) and an in-process node agent with
 * the docker runtime, against a raw `docker run -d` of the same image in the same script.
 * 20 pods one by one, then 20 at once.
 *
 * Progress goes to stderr; the last line of stdout is one JSON object:
 * `{ pods, docker: { p50Ms, p99Ms }, coxswain: { p50Ms, p99Ms }, overheadP50Ms,
 *    parallel: { docker: {...}, coxswain: {...}, overheadP50Ms } }`.
 *
 * Flags: `--pods 20`.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import Docker from 'dockerode';
import type { WatchStream } from '../actors/api.js';
import type { ApiClient } from '../actors/grpc-client.js';
import type { Pod } from '../core/index.js';
import { NodeAgent } from '../node-agent/agent.js';
import { DockerRuntime } from '../node-agent/docker-runtime.js';
import { baseImage, ensureBaseImage } from '../node-agent/images.js';
import { runtimeLabels } from '../node-agent/runtime.js';
import { MasterCluster } from '../test/multiprocess/master-cluster.js';
import { progressTo, runBench } from './lib/output.js';
import { percentile, round2 } from './lib/stats.js';

const exec = promisify(execFile);
const progress = progressTo('podstart');
const node = `bench-podstart-${process.pid}`;

function summary(ms: number[]): { p50Ms: number; p99Ms: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50Ms: round2(percentile(sorted, 0.5)), p99Ms: round2(percentile(sorted, 0.99)) };
}

/** `docker run -d` as a user types it: returns once the container is started. */
async function dockerRun(label: string): Promise<number> {
  const t0 = performance.now();
  await exec('docker', [
    'run',
    '-d',
    '--label',
    `${runtimeLabels.node}=${node}`,
    '--label',
    label,
    baseImage,
    'sleep',
    '3600',
  ]);
  return performance.now() - t0;
}

async function removeLabelled(docker: Docker): Promise<void> {
  const found = await docker.listContainers({
    all: true,
    filters: { label: [`${runtimeLabels.node}=${node}`] },
  });
  await Promise.all(
    found.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
}

/** Resolves each pod's name with the time `Running` was first seen by the watch. */
function runningTimes(watch: WatchStream): { seen: Map<string, number>; done: Promise<void> } {
  const seen = new Map<string, number>();
  const done = (async () => {
    for (;;) {
      const events = await watch.next().catch(() => undefined);
      if (events === undefined) return;
      const now = performance.now();
      for (const e of events) {
        const pod = e.object as unknown as Pod;
        if (e.type !== 'DELETED' && pod.status?.phase === 'Running' && !seen.has(pod.metadata.name ?? '')) {
          seen.set(pod.metadata.name ?? '', now);
        }
      }
    }
  })();
  return { seen, done };
}

function podManifest(name: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { bench: 'podstart' } },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 0,
      containers: [
        { name: 'main', image: baseImage, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] },
      ],
    },
  };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function main() {
  const { values } = parseArgs({ options: { pods: { type: 'string', default: '20' } } });
  const pods = Number(values.pods);
  const docker = new Docker();
  await docker.ping();
  await ensureBaseImage(docker);
  const dir = mkdtempSync(join(tmpdir(), 'cox-bench-podstart-'));
  const cluster = await MasterCluster.start({ size: 3 });
  let api: ApiClient | undefined;
  let agent: NodeAgent | undefined;
  try {
    const leader = await cluster.waitForLeader(15_000);
    api = cluster.client([leader, ...cluster.ids().filter((id) => id !== leader)]);
    agent = new NodeAgent({
      node,
      nodeIp: '127.0.0.1',
      api,
      runtime: new DockerRuntime({ node, docker }),
      dataDir: join(dir, 'agent'),
      memoryDir: join('/dev/shm', `cox-bench-${process.pid}`),
      log: () => {},
    });
    await agent.start();

    // Reference: raw docker run -d, one by one, then all at once.
    await dockerRun('warmup=1');
    await removeLabelled(docker);
    const dockerSeq: number[] = [];
    for (let i = 0; i < pods; i += 1) dockerSeq.push(await dockerRun(`seq=${i}`));
    await removeLabelled(docker);
    const dockerPar = await Promise.all(Array.from({ length: pods }, (_, i) => dockerRun(`par=${i}`)));
    await removeLabelled(docker);
    progress(
      `docker run -d: sequential ${JSON.stringify(summary(dockerSeq))}, parallel ${JSON.stringify(summary(dockerPar))}`,
    );

    const measure = async (names: string[], parallel: boolean): Promise<number[]> => {
      const watch = await (api as ApiClient).watch('Pod', {
        fieldSelector: `spec.nodeName=${node}`,
        sendInitialEvents: false,
      });
      const { seen, done } = runningTimes(watch);
      const started = new Map<string, number>();
      const create = async (name: string) => {
        started.set(name, performance.now());
        await (api as ApiClient).create(podManifest(name));
      };
      if (parallel) await Promise.all(names.map(create));
      else {
        for (const name of names) {
          await create(name);
          await waitFor(() => seen.has(name), `pod ${name} Running`);
        }
      }
      await waitFor(() => names.every((n) => seen.has(n)), 'all pods Running');
      watch.close();
      await done;
      for (const name of names)
        await (api as ApiClient).delete({ kind: 'Pod', name }, { gracePeriodSeconds: 0 });
      return names.map((n) => (seen.get(n) as number) - (started.get(n) as number));
    };
    await measure(['warmup'], false);
    const coxSeq = await measure(
      Array.from({ length: pods }, (_, i) => `seq-${i}`),
      false,
    );
    progress(`coxswain sequential ${JSON.stringify(summary(coxSeq))}`);
    const coxPar = await measure(
      Array.from({ length: pods }, (_, i) => `par-${i}`),
      true,
    );
    progress(`coxswain parallel ${JSON.stringify(summary(coxPar))}`);
    const seq = { docker: summary(dockerSeq), coxswain: summary(coxSeq) };
    const par = { docker: summary(dockerPar), coxswain: summary(coxPar) };
    return {
      pods,
      ...seq,
      overheadP50Ms: round2(seq.coxswain.p50Ms - seq.docker.p50Ms),
      parallel: { ...par, overheadP50Ms: round2(par.coxswain.p50Ms - par.docker.p50Ms) },
    };
  } finally {
    await agent?.stop();
    api?.close();
    await cluster.close();
    await removeLabelled(docker);
    rmSync(dir, { recursive: true, force: true });
    rmSync(join('/dev/shm', `cox-bench-${process.pid}`), { recursive: true, force: true });
  }
}

runBench('podstart', main);
