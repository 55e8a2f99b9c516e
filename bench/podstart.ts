/**
 * `npm run bench:podstart`: pod start latency — from the create call to `Running` seen by a
 * watch — through 3 Coxswain masters (`cox master` processes) and an in-process node agent with
 * the docker runtime, against a raw `docker run -d` of the same image in the same script.
 * 20 pods one by one (a docker sample and a Coxswain sample in turns), then 20 at once (docker's
 * batch, then Coxswain's, twice, the latencies of both rounds pooled).
 *
 * Progress goes to stderr; the last line of stdout is one JSON object:
 * `{ pods, docker: { p50Ms, p99Ms }, coxswain: { p50Ms, p99Ms }, overheadP50Ms,
 *    parallel: { docker: {...}, coxswain: {...}, overheadP50Ms } }`.
 *
 * Flags: `--pods 20` (per batch and one by one), `--rounds 2` (batches at once of each).
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

/** The label of this run's reference containers (`docker run -d`). */
const referenceLabel = `io.coxswain.bench.podstart=${process.pid}`;

/** `docker run -d` as a user types it: returns once the container is started. */
async function dockerRun(label: string): Promise<number> {
  const t0 = performance.now();
  await exec('docker', [
    'run',
    '-d',
    '--label',
    referenceLabel,
    '--label',
    label,
    baseImage,
    'sleep',
    '3600',
  ]);
  return performance.now() - t0;
}

/** Removes the containers carrying `label` (default: the reference containers). */
async function removeLabelled(docker: Docker, label = referenceLabel): Promise<void> {
  const found = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(
    found.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
}

/** Waits until the node has no containers left (deleted pods' containers are removed). */
async function waitForNoContainers(docker: Docker): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`${runtimeLabels.node}=${node}`] },
    });
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${left.length} containers still on node ${node} after 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
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
  const { values } = parseArgs({
    options: { pods: { type: 'string', default: '20' }, rounds: { type: 'string', default: '2' } },
  });
  const pods = Number(values.pods);
  const rounds = Number(values.rounds);
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

    const watch = await (api as ApiClient).watch('Pod', {
      fieldSelector: `spec.nodeName=${node}`,
      sendInitialEvents: false,
    });
    const { seen, done } = runningTimes(watch);
    /** Create → Running seen by the watch, in ms. */
    const coxswainStart = async (name: string): Promise<number> => {
      const t0 = performance.now();
      await (api as ApiClient).create(podManifest(name));
      await waitFor(() => seen.has(name), `pod ${name} Running`);
      return (seen.get(name) as number) - t0;
    };
    const deletePods = async (names: string[]) => {
      for (const name of names)
        await (api as ApiClient).delete({ kind: 'Pod', name }, { gracePeriodSeconds: 0 });
    };

    // Warm-up of both paths, then the samples taken in turns (docker, Coxswain, docker, ...) so
    // that the machine's other load weighs on both alike.
    await dockerRun('warmup=1');
    await coxswainStart('warmup');
    await removeLabelled(docker);
    await deletePods(['warmup']);
    const dockerSeq: number[] = [];
    const coxSeq: number[] = [];
    const seqNames = Array.from({ length: pods }, (_, i) => `seq-${i}`);
    for (const [i, name] of seqNames.entries()) {
      dockerSeq.push(await dockerRun(`seq=${i}`));
      coxSeq.push(await coxswainStart(name));
    }
    progress(
      `sequential: docker run -d ${JSON.stringify(summary(dockerSeq))}, coxswain ${JSON.stringify(summary(coxSeq))}`,
    );
    await removeLabelled(docker);
    await deletePods(seqNames);
    await waitForNoContainers(docker); // the agent removed the pods' containers

    // At once: docker's batch, then Coxswain's, `rounds` times in turns (latencies pooled).
    const dockerPar: number[] = [];
    const coxPar: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      dockerPar.push(
        ...(await Promise.all(Array.from({ length: pods }, (_, i) => dockerRun(`par=${round}-${i}`)))),
      );
      await removeLabelled(docker);
      const parNames = Array.from({ length: pods }, (_, i) => `par-${round}-${i}`);
      coxPar.push(...(await Promise.all(parNames.map((name) => coxswainStart(name)))));
      await deletePods(parNames);
      await waitForNoContainers(docker);
    }
    progress(
      `parallel: docker run -d ${JSON.stringify(summary(dockerPar))}, coxswain ${JSON.stringify(summary(coxPar))}`,
    );
    watch.close();
    await done;
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
    await removeLabelled(docker, `${runtimeLabels.node}=${node}`);
    rmSync(dir, { recursive: true, force: true });
    rmSync(join('/dev/shm', `cox-bench-${process.pid}`), { recursive: true, force: true });
  }
}

runBench('podstart', main);
