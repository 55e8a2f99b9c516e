/**
 * The node agents of `cox up`: background `cox agent` processes on loopback node IPs
 * (127.0.1.N), one data directory each under `<root>/agents/<name>`, on the docker runtime when
 * a Docker engine answers and on the process runtime otherwise. `down` stops exactly the
 * agents `up` started (by the PID recorded in `agent.json`, checked against its command line).
 */

import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { colocatedNodeFlags } from './node-flags.js';

export const localAgentLimits = {
  agentsMax: 9,
  /** How long `up` waits for every agent's Node to be Ready. */
  readyTimeoutMs: 60_000,
  /** How long a Docker engine may take to answer the runtime probe. */
  dockerProbeMs: 3_000,
  downGraceMs: 10_000,
} as const;

export type LocalRuntime = 'docker' | 'process';

export interface LocalAgent {
  name: string;
  nodeIp: string;
  dir: string;
}

interface AgentFile {
  name: string;
  pid: number;
  runtime: LocalRuntime;
  nodeIp: string;
}

const binPath = join(dirname(fileURLToPath(import.meta.url)), 'bin.mjs');

export function planAgents(root: string, count: number): LocalAgent[] {
  return Array.from({ length: count }, (_, k) => ({
    name: `n${k + 1}`,
    nodeIp: `127.0.1.${k + 1}`,
    dir: join(root, 'agents', `n${k + 1}`),
  }));
}

function readAgentFile(dir: string): AgentFile | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'agent.json'), 'utf8')) as AgentFile;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and is the agent `name` (not a recycled PID). */
export function isOurAgent(pid: number, name: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = cmdline.indexOf('--name');
    return cmdline.includes('agent') && i >= 0 && cmdline[i + 1] === name;
  } catch {
    return false;
  }
}

/** `docker` when a Docker engine answers (building the base image if it is missing), else `process`. */
export async function chooseRuntime(
  wanted: 'auto' | LocalRuntime,
  log: (line: string) => void,
): Promise<LocalRuntime> {
  if (wanted === 'process') return 'process';
  let reason = '';
  try {
    const { default: Docker } = await import('dockerode');
    const docker = new Docker();
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) =>
        setTimeout(
          () => reject(new Error(`no answer in ${localAgentLimits.dockerProbeMs} ms`)),
          localAgentLimits.dockerProbeMs,
        ).unref(),
      ),
    ]);
    const { ensureBaseImage, hasImage, baseImage } = await import('../node-agent/images.js');
    if (!(await hasImage(docker, baseImage)))
      log(`building ${baseImage} (FROM scratch with Debian's static busybox)...`);
    await ensureBaseImage(docker);
    return 'docker';
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
  }
  if (wanted === 'docker') throw new Error(`--runtime docker: no usable Docker engine (${reason})`);
  log(
    `no usable Docker engine (${reason}): using the process runtime (pods are host processes, no isolation)`,
  );
  return 'process';
}

/** Starts the agents that are not running; resolves with the names started. */
export function startAgents(
  agents: readonly LocalAgent[],
  runtime: LocalRuntime,
  apiAddresses: readonly string[],
): string[] {
  const started: string[] = [];
  for (const a of agents) {
    mkdirSync(a.dir, { recursive: true });
    const running = readAgentFile(a.dir);
    if (running && isOurAgent(running.pid, a.name)) continue;
    const log = openSync(join(a.dir, 'agent.log'), 'a');
    const child = spawn(
      process.execPath,
      [
        ...colocatedNodeFlags,
        binPath,
        'agent',
        '--name',
        a.name,
        '--masters',
        apiAddresses.join(','),
        '--runtime',
        runtime,
        '--node-ip',
        a.nodeIp,
        '--data-dir',
        a.dir,
      ],
      { detached: true, stdio: ['ignore', log, log] },
    );
    child.unref();
    if (child.pid === undefined)
      throw new Error(`agent ${a.name}: could not start (see ${join(a.dir, 'agent.log')})`);
    const file: AgentFile = { name: a.name, pid: child.pid, runtime, nodeIp: a.nodeIp };
    writeFileSync(join(a.dir, 'agent.json'), `${JSON.stringify(file, null, 2)}\n`);
    started.push(a.name);
  }
  return started;
}

/** Stops the agents `up` started under `root` (their pods keep running, to be adopted on the next `up`). */
export async function stopAgents(root: string): Promise<string[]> {
  const stopping: AgentFile[] = [];
  for (let i = 1; i <= localAgentLimits.agentsMax; i += 1) {
    const dir = join(root, 'agents', `n${i}`);
    const f = readAgentFile(dir);
    if (f && isOurAgent(f.pid, f.name)) {
      process.kill(f.pid, 'SIGTERM');
      stopping.push(f);
    }
  }
  const deadline = Date.now() + localAgentLimits.downGraceMs;
  for (const s of stopping) {
    while (isOurAgent(s.pid, s.name) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (isOurAgent(s.pid, s.name)) process.kill(s.pid, 'SIGKILL');
  }
  return stopping.map((s) => s.name);
}

/** The runtime the agents under `root` were started with, if any. */
export function recordedRuntime(root: string): LocalRuntime | undefined {
  return readAgentFile(join(root, 'agents', 'n1'))?.runtime;
}

/** Removes the docker containers of the local nodes (for `down --purge`). */
export async function removeLocalContainers(nodes: readonly string[]): Promise<number> {
  const { default: Docker } = await import('dockerode');
  const { runtimeLabels } = await import('../node-agent/runtime.js');
  const docker = new Docker();
  let removed = 0;
  for (const node of nodes) {
    const list = await docker.listContainers({
      all: true,
      filters: { label: [`${runtimeLabels.node}=${node}`] },
    });
    for (const c of list) {
      await docker.getContainer(c.Id).remove({ force: true });
      removed += 1;
    }
  }
  return removed;
}

export function clearAgentFiles(agents: readonly LocalAgent[]): void {
  for (const a of agents) rmSync(join(a.dir, 'agent.json'), { force: true });
}
