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
import { CoxClient } from './client.js';
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

async function up(o: {
  dataDir: string;
  masters: number;
  basePort: number;
  writeConfig: boolean;
}): Promise<void> {
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
      [binPath, 'master', '--id', m.id, '--data-dir', m.dir, '--peers', peers, '--api', m.api, '--ws', m.ws],
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
    .action((o: { dataDir: string; masters: number; basePort: number; writeConfig: boolean }) => up(o));
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

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1024 || n > 65000)
    throw new Error(`--base-port: must be 1024..65000, got "${v}"`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
