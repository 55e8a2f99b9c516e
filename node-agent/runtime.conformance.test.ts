/**
 * The conformance suite run against the three drivers. The docker driver needs the engine
 * (CI installs and starts it; this file fails, never skips, without one).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { DockerRuntime } from './docker-runtime.js';
import { HollowRuntime } from './hollow-runtime.js';
import { baseImage } from './images.js';
import { ProcessRuntime } from './process-runtime.js';
import { conformanceScript, describeRuntimeConformance } from './runtime.conformance.js';
import { runtimeLabels } from './runtime.js';

const docker = new Docker();
const dockerNode = `conformance-docker-${process.pid}`;

describeRuntimeConformance(
  'docker',
  {
    node: dockerNode,
    image: baseImage,
    setup: async () => {
      await docker.ping();
      await new DockerRuntime({ node: dockerNode, docker }).ensureImage(baseImage, 'IfNotPresent');
    },
    open: () => new DockerRuntime({ node: dockerNode, docker }),
    reopen: () => new DockerRuntime({ node: dockerNode, docker }),
    cleanup: async () => {
      const mine = await docker.listContainers({
        all: true,
        filters: { label: [`${runtimeLabels.node}=${dockerNode}`] },
      });
      await Promise.all(
        mine.map((c) =>
          docker
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => {}),
        ),
      );
    },
  },
  { sharedLocalhost: true, enforcesMemory: true, realProcesses: true },
);

const processNode = `conformance-process-${process.pid}`;
let processRoot = '';
const processDrivers: ProcessRuntime[] = [];
const openProcess = () => {
  const r = new ProcessRuntime({ node: processNode, root: processRoot, nodeIp: '127.0.0.1', logPollMs: 20 });
  processDrivers.push(r);
  return r;
};

describeRuntimeConformance(
  'process',
  {
    node: processNode,
    image: 'coxswain/busybox',
    setup: async () => {
      processRoot = await mkdtemp(join(tmpdir(), 'cox-process-runtime-'));
    },
    open: openProcess,
    reopen: (previous) => {
      (previous as ProcessRuntime).close(); // as if the agent died: its processes live on
      return openProcess();
    },
    cleanup: async () => {
      const last = processDrivers.at(-1);
      if (last !== undefined) for (const uid of await last.listPods()) await last.removePod(uid, 0);
      for (const r of processDrivers) r.close();
      await rm(processRoot, { recursive: true, force: true });
    },
  },
  { sharedLocalhost: true, enforcesMemory: false, realProcesses: true },
);

let hollow: HollowRuntime | undefined;

describeRuntimeConformance(
  'hollow',
  {
    node: 'conformance-hollow',
    image: baseImage,
    setup: async () => {},
    open: () => {
      hollow = new HollowRuntime({
        node: 'conformance-hollow',
        startDelayMs: 5,
        images: [baseImage, 'coxswain/busybox'],
        script: conformanceScript,
      });
      return hollow;
    },
    reopen: (previous) => previous,
    cleanup: async () => {
      for (const uid of (await hollow?.listPods()) ?? []) await hollow?.removePod(uid, 0);
    },
  },
  { sharedLocalhost: false, enforcesMemory: false, realProcesses: false },
);
