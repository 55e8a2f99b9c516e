/**
 * `cox up` and `cox down`: a local HA cluster of masters as background processes on loopback,
 * one data directory each under one root. `up` over an existing root restarts the same
 * members with their data; `down` stops exactly the processes `up` started (by the PID each
 * master wrote, checked against its command line).
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { applyObject } from './apply.js';
import { CoxClient } from './client.js';
import {
  chooseRuntime,
  type LocalRuntime,
  localAgentLimits,
  planAgents,
  recordedRuntime,
  removeLocalContainers,
  startAgents,
  stopAgents,
} from './local-agents.js';
import { readManifests } from './manifests.js';
import { colocatedNodeFlags } from './node-flags.js';
import { configPath } from './servers.js';

export const localClusterLimits = {
  /** How long `up` waits for every master to be ready and a leader to be elected. */
  upTimeoutMs: 60_000,
  /** How long `down` waits after SIGTERM before SIGKILL. */
  downGraceMs: 10_000,
  mastersMax: 7,
} as const;

export function defaultDataRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.COX_DATA_DIR ?? join(env.COX_HOME ?? join(homedir(), '.cox'), 'local');
}

interface MasterFile {
  id: string;
  pid: number;
  raft: string;
  api: string;
  ws: string;
}

export interface LocalPlan {
  root: string;
  members: { id: string; dir: string; raft: string; api: string; ws: string }[];
}

/** Ports: Raft base+i, gRPC API base+100+i, WebSocket base+200+i (i = 1..n). */
export function planLocalCluster(root: string, masters: number, basePort: number): LocalPlan {
  const members = Array.from({ length: masters }, (_, k) => {
    const i = k + 1;
    const id = `m${i}`;
    return {
      id,
      dir: join(root, id),
      raft: `127.0.0.1:${basePort + i}`,
      api: `127.0.0.1:${basePort + 100 + i}`,
      ws: `127.0.0.1:${basePort + 200 + i}`,
    };
  });
  return { root, members };
}

function readMasterFile(dir: string): MasterFile | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'master.json'), 'utf8')) as MasterFile;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and is the master `id` (not a recycled PID). */
function isOurMaster(pid: number, id: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = cmdline.indexOf('--id');
    return cmdline.includes('master') && i >= 0 && cmdline[i + 1] === id;
  } catch {
    return false;
  }
}

const binPath = join(dirname(fileURLToPath(import.meta.url)), 'bin.mjs');

interface UpOptions {
  dataDir: string;
  masters: number;
  basePort: number;
  writeConfig: boolean;
  agents: number;
  runtime: 'auto' | LocalRuntime;
  demo: boolean;
}

async function up(o: UpOptions): Promise<void> {
  const root = resolve(o.dataDir);
  const plan = planLocalCluster(root, o.masters, o.basePort);
  const peers = plan.members.map((m) => `${m.id}=${m.raft}`).join(',');
  const started: string[] = [];
  /** Masters that died before they were ready (a taken port, a locked data directory...). */
  const exited = new Map<string, string>();
  const children: number[] = [];
  for (const m of plan.members) {
    mkdirSync(m.dir, { recursive: true });
    const running = readMasterFile(m.dir);
    if (running && isOurMaster(running.pid, m.id)) {
      console.error(`${m.id}: already running (pid ${running.pid})`);
      continue;
    }
    rmSync(join(m.dir, 'master.json'), { force: true });
    const log = openSync(join(m.dir, 'master.log'), 'a');
    const child = spawn(
      process.execPath,
      [
        ...colocatedNodeFlags,
        binPath,
        'master',
        '--id',
        m.id,
        '--data-dir',
        m.dir,
        '--peers',
        peers,
        '--api',
        m.api,
        '--ws',
        m.ws,
      ],
      { detached: true, stdio: ['ignore', log, log] },
    );
    if (child.pid !== undefined) children.push(child.pid);
    child.once('exit', (code, signal) => exited.set(m.id, `exited (${signal ?? `code ${code}`})`));
    child.unref();
    started.push(m.id);
  }
  let leader: string;
  try {
    leader = await waitUntilServing(plan, exited);
  } catch (err) {
    // Leave nothing half-started: stop the masters this call started.
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    throw err;
  }
  const servers = plan.members.map((m) => `ws://${m.ws}`);
  if (o.writeConfig) {
    const path = configPath(process.env, homedir());
    mkdirSync(dirname(path), { recursive: true });
    let config: Record<string, unknown> = {};
    if (existsSync(path)) {
      try {
        config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
      } catch {
        config = {};
      }
    }
    writeFileSync(path, `${JSON.stringify({ ...config, servers }, null, 2)}\n`);
  }
  console.log(
    `cluster up: ${plan.members.length} masters, leader ${leader}${started.length ? ` (started ${started.join(', ')})` : ''}`,
  );
  console.log('ID  RAFT             GRPC API         WEBSOCKET');
  for (const m of plan.members)
    console.log(`${m.id.padEnd(3)} ${m.raft.padEnd(16)} ${m.api.padEnd(16)} ws://${m.ws}`);
  console.log(`data: ${root}   logs: ${root}/<id>/master.log`);
  if (o.writeConfig)
    console.log(
      'cox now talks to these masters (servers written to the cox config); try: cox cluster status',
    );
  const runtime = o.agents > 0 ? await upAgents(root, plan, o) : undefined;
  if (o.demo) await upDemo(plan, runtime);
}

async function upAgents(root: string, plan: LocalPlan, o: UpOptions): Promise<LocalRuntime> {
  const runtime = await chooseRuntime(o.runtime, (line) => console.log(line));
  const previous = recordedRuntime(root);
  if (previous !== undefined && previous !== runtime) {
    console.log(`note: the agents ran on the ${previous} runtime before; now ${runtime}`);
  }
  const agents = planAgents(root, o.agents);
  const started = startAgents(
    agents,
    runtime,
    plan.members.map((m) => m.api),
  );
  const client = new CoxClient({ servers: plan.members.map((m) => `ws://${m.ws}`), log: () => {} });
  const deadline = Date.now() + localAgentLimits.readyTimeoutMs;
  try {
    for (const a of agents) {
      for (;;) {
        const node = (await client.get({ kind: 'Node', name: a.name }).catch(() => undefined)) as
          | { status?: { conditions?: { type: string; status: string }[] } }
          | undefined;
        // Ready, and its process says so too (the ready line carries its proxy mode).
        const ready = node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        if (ready && proxyModeOf(a.dir) !== 'unknown') break;
        if (Date.now() > deadline) {
          throw new Error(
            `node ${a.name} not Ready in ${localAgentLimits.readyTimeoutMs} ms; see ${join(a.dir, 'agent.log')}`,
          );
        }
        await sleep(200);
      }
    }
  } finally {
    client.close();
  }
  const proxies = [...new Set(agents.map((a) => proxyModeOf(a.dir)))].join('/');
  console.log(
    `agents up on the ${runtime} runtime, ${proxies} service proxy: ${agents.map((a) => `${a.name} (${a.nodeIp})`).join(', ')}${started.length ? ` (started ${started.join(', ')})` : ''}`,
  );
  console.log(`agent logs: ${root}/agents/<name>/agent.log`);
  return runtime;
}

/** The proxy mode an agent reported in its ready line (`cox agent` prints it to agent.log). */
function proxyModeOf(dir: string): string {
  try {
    const lines = readFileSync(join(dir, 'agent.log'), 'utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      if (!lines[i].startsWith('{"ready":true')) continue;
      return (JSON.parse(lines[i]) as { proxy?: string }).proxy ?? 'unknown';
    }
  } catch {
    // no log yet
  }
  return 'unknown';
}

const demoManifest = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'demo.yaml');
/** How long `up --demo` waits for the demo's Deployments to be available. */
const demoReadyTimeoutMs = 180_000;

async function upDemo(plan: LocalPlan, runtime: LocalRuntime | undefined): Promise<void> {
  const manifests = await readManifests([demoManifest], {
    listDir: () => undefined,
    readFile: (p: string) => readFileSync(p, 'utf8'),
    readStdin: async () => '',
    join,
  });
  if (runtime === 'process') {
    // Process pods share their node's network: two replicas on one node would both want port
    // 80 (or 8080). One of each keeps them apart.
    console.log('process runtime: the demo runs 1 web and 1 backend replica (pods share the node network)');
    for (const { object } of manifests) {
      const d = object as { kind?: string; spec?: { replicas?: number } };
      if (d.kind === 'Deployment' && d.spec) d.spec.replicas = 1;
    }
  }
  const client = new CoxClient({ servers: plan.members.map((m) => `ws://${m.ws}`), log: () => {} });
  try {
    for (const { object } of manifests) {
      const r = await applyObject(client, object, {});
      const meta = object as { kind?: string; metadata?: { name?: string } };
      console.log(`${String(meta.kind).toLowerCase()}/${meta.metadata?.name} ${r.outcome}`);
    }
    const deadline = Date.now() + demoReadyTimeoutMs;
    let last = '';
    let deps: {
      metadata: { name: string };
      spec: { replicas?: number };
      status?: { availableReplicas?: number };
    }[];
    for (;;) {
      deps = (await client.list('Deployment', { namespace: 'demo' })).items as unknown as typeof deps;
      const text = deps
        .map((d) => `${d.metadata.name} ${d.status?.availableReplicas ?? 0}/${d.spec.replicas ?? 1}`)
        .join(', ');
      if (text !== last) console.log(`waiting for the demo: ${text}`);
      last = text;
      if (deps.length > 0 && deps.every((d) => (d.status?.availableReplicas ?? 0) >= (d.spec.replicas ?? 1)))
        break;
      if (Date.now() > deadline) {
        throw new Error(
          `the demo app was not available in ${demoReadyTimeoutMs / 1000} s (${text}); try: cox get pods -n demo -o wide; cox describe pods -n demo`,
        );
      }
      await sleep(500);
    }
    const replicasOf = (name: string) => {
      const n = deps.find((d) => d.metadata.name === name)?.spec.replicas ?? 1;
      return `${n} replica${n === 1 ? '' : 's'}`;
    };
    const pods = (await client.list('Pod', { namespace: 'demo', labelSelector: 'app=web' }))
      .items as unknown as {
      status?: { podIP?: string; phase?: string };
    }[];
    const svc = (await client
      .get({ kind: 'Service', namespace: 'demo', name: 'web' })
      .catch(() => undefined)) as { spec?: { ports?: { nodePort?: number }[] } } | undefined;
    const nodePort = svc?.spec?.ports?.[0]?.nodePort;
    console.log(
      `\nThe demo app is up (namespace demo): web (${replicasOf('web')}) calls backend (${replicasOf('backend')}).`,
    );
    if (nodePort !== undefined)
      console.log(`  open:  curl http://127.0.1.1:${nodePort}/   (the web NodePort, on every node IP)`);
    const ips = pods.map((p) => p.status?.podIP).filter((ip): ip is string => ip !== undefined);
    if (ips.length > 0)
      console.log(`  pods:  curl http://${ips[0]}/   (a web pod directly; all: ${ips.join(', ')})`);
    if (nodePort !== undefined) await showDemoAnswer(`http://127.0.1.1:${nodePort}/`);
    console.log(`
A short tour (alias cox="$PWD/cli/bin.mjs"):
  cox get pods -n demo -o wide              # where the pods run
  cox get svc,endpoints -n demo -o wide     # the services' virtual IPs and their ready pods
  cox cluster status                        # the masters; the leader is marked *
  kill -9 <pid of the leader>               # from ${plan.root}/<id>/master.json: writes go on
  cox delete pod -n demo -l app=backend     # the web keeps answering: new backends join the service
  cox scale deploy/web -n demo --replicas=5
  cox rollout restart deploy/web -n demo && cox rollout status deploy/web -n demo
  cox rollout history deploy/web -n demo; cox rollout undo deploy/web -n demo
  cox describe deploy/web -n demo; cox events -n demo; cox why pod/<a web pod> -n demo
  npm run down                              # stop it all (cox down --purge also deletes data and containers)`);
  } finally {
    client.close();
  }
}

/** How long the demo's first answer through its NodePort may take, in ms (the proxy syncs first). */
const demoAnswerTimeoutMs = 30_000;

/** Asks the web frontend once through its NodePort (so the user sees the web reach the backend). */
async function showDemoAnswer(url: string): Promise<void> {
  const deadline = Date.now() + demoAnswerTimeoutMs;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      const body = (await res.text()).trim();
      if (res.ok && body.includes('backend pod:')) {
        console.log(`\n$ curl ${url}\n${body}`);
        return;
      }
      last = `HTTP ${res.status}: ${body.split('\n').slice(-1)[0]}`;
    } catch (err) {
      last =
        err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the demo did not answer through its backend in ${demoAnswerTimeoutMs / 1000} s at ${url} (${last}); the cluster stays up: see cox get endpoints -n demo and cox events -n demo`,
      );
    }
    await sleep(500);
  }
}

/** Waits for every master's ready file, then for a leader; returns the leader's id. */
async function waitUntilServing(plan: LocalPlan, exited: Map<string, string>): Promise<string> {
  const deadline = Date.now() + localClusterLimits.upTimeoutMs;
  for (const m of plan.members) {
    for (;;) {
      const f = readMasterFile(m.dir);
      if (f && isOurMaster(f.pid, m.id)) break;
      const died = exited.get(m.id);
      if (died !== undefined) {
        const log = join(m.dir, 'master.log');
        const tail = readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ');
        throw new Error(`${m.id} ${died} before it was ready: ${tail} (see ${log})`);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${m.id} did not start in ${localClusterLimits.upTimeoutMs} ms; see ${join(m.dir, 'master.log')}`,
        );
      }
      await sleep(100);
    }
  }
  const servers = plan.members.map((m) => `ws://${m.ws}`);
  const client = new CoxClient({ servers, log: () => {} });
  let leader: string | undefined;
  try {
    while (leader === undefined) {
      const st = await client.clusterStatus().catch(() => undefined);
      leader = st?.leader;
      if (leader !== undefined) break;
      if (Date.now() > deadline) throw new Error('no leader elected in time; see the master.log files');
      await sleep(200);
    }
  } finally {
    client.close();
  }
  return leader;
}

async function down(o: { dataDir: string; purge: boolean }): Promise<void> {
  const root = resolve(o.dataDir);
  if (!existsSync(root)) {
    console.log(`no local cluster at ${root}`);
    return;
  }
  const runtime = recordedRuntime(root);
  const agents = await stopAgents(root);
  if (agents.length > 0)
    console.log(`stopped agents ${agents.join(', ')} (their pods keep running until purged)`);
  if (o.purge && runtime === 'docker') {
    const removed = await removeLocalContainers(
      planAgents(root, localAgentLimits.agentsMax).map((a) => a.name),
    ).catch((err: unknown) => {
      console.error(
        `could not remove the pods' containers: ${err instanceof Error ? err.message : String(err)}`,
      );
      return 0;
    });
    console.log(`removed ${removed} containers of the local nodes`);
  }
  const stopping: { id: string; pid: number }[] = [];
  for (let i = 1; i <= localClusterLimits.mastersMax; i += 1) {
    const id = `m${i}`;
    const f = readMasterFile(join(root, id));
    if (f && isOurMaster(f.pid, id)) {
      process.kill(f.pid, 'SIGTERM');
      stopping.push({ id, pid: f.pid });
    }
  }
  const deadline = Date.now() + localClusterLimits.downGraceMs;
  for (const s of stopping) {
    while (isOurMaster(s.pid, s.id) && Date.now() < deadline) await sleep(100);
    if (isOurMaster(s.pid, s.id)) {
      console.error(`${s.id}: still running after ${localClusterLimits.downGraceMs} ms, sending SIGKILL`);
      process.kill(s.pid, 'SIGKILL');
    }
  }
  console.log(stopping.length ? `stopped ${stopping.map((s) => s.id).join(', ')}` : 'no master was running');
  if (o.purge) {
    rmSync(root, { recursive: true, force: true });
    console.log(`removed ${root}`);
  }
}

export function registerLocalClusterCommands(program: Command): void {
  program
    .command('up')
    .description('start a local HA cluster of masters in the background (restarts an existing one)')
    .option('--data-dir <dir>', "root of the members' data directories", defaultDataRoot())
    .option('--masters <n>', 'number of masters (3 or 5)', (v) => mastersCount(v), 3)
    .option(
      '--base-port <port>',
      'Raft on base+i, gRPC on base+100+i, WebSocket on base+200+i',
      (v) => port(v),
      7100,
    )
    .option('--no-write-config', 'do not point the cox config at this cluster')
    .option('--agents <n>', 'node agents to run (0: masters only)', (v) => agentsCount(v), 2)
    .option(
      '--runtime <kind>',
      "the agents' runtime: auto (docker when an engine answers, else process), docker, process",
      (v) => runtimeKind(v),
      'auto',
    )
    .option('--demo', 'apply the demo app (examples/demo.yaml), wait for it, and print a tour')
    .action((o: Omit<UpOptions, 'demo'> & { demo?: boolean }) => up({ ...o, demo: o.demo === true }));
  program
    .command('down')
    .description('stop the local cluster started by `cox up`')
    .option('--data-dir <dir>', "root of the members' data directories", defaultDataRoot())
    .option('--purge', 'also delete the data directories')
    .action((o: { dataDir: string; purge?: boolean }) =>
      down({ dataDir: o.dataDir, purge: o.purge ?? false }),
    );
}

function mastersCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > localClusterLimits.mastersMax) {
    throw new Error(`--masters: must be 1..${localClusterLimits.mastersMax} (3 or 5 for HA), got "${v}"`);
  }
  return n;
}

function agentsCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > localAgentLimits.agentsMax) {
    throw new Error(`--agents: must be 0..${localAgentLimits.agentsMax}, got "${v}"`);
  }
  return n;
}

function runtimeKind(v: string): 'auto' | LocalRuntime {
  if (v === 'auto' || v === 'docker' || v === 'process') return v;
  throw new Error(`--runtime: "${v}" is not one of auto, docker, process`);
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1024 || n > 65000)
    throw new Error(`--base-port: must be 1024..65000, got "${v}"`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
