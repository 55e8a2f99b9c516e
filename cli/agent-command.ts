/**
 * `cox agent`: run a node agent. It talks to the masters' gRPC API (the same addresses `cox
 * cluster status` shows under API) and runs pods with a container runtime. Loads
 * `node-agent/` lazily, like `cox master` loads `actors/`.
 */

import type { Command } from 'commander';
// Pure (no I/O): the defaults the flags override.
import { type BackoffPolicy, defaultBackoffPolicy } from '../node-agent/pod/restart.js';
import { UsageError } from './errors.js';
import { parseDuration } from './options.js';

export interface AgentFlags {
  name?: string;
  masters?: string;
  runtime: string;
  nodeIp: string;
  dataDir?: string;
  labels?: string;
  taints?: string;
  cpu?: string;
  memory?: string;
  pods?: string;
  restartBackoffInitial?: string;
  restartBackoffMax?: string;
  hollowStartDelay?: string;
  pullImages?: boolean;
  proxyMode?: string;
  serviceCidr?: string;
  nodePortRange?: string;
  clusterDns?: string;
  clusterDomain?: string;
}

export const runtimeKinds = ['docker', 'process', 'hollow'] as const;
export type RuntimeKind = (typeof runtimeKinds)[number];
/** The proxy's defaults, the same as the masters' (`--service-cidr`, `--service-node-port-range`). */
export const defaultProxySettings = {
  serviceCidr: '10.96.0.0/16',
  nodePortRange: '30000-32767',
  clusterDns: '10.96.0.10',
  clusterDomain: 'cluster.local',
} as const;

export const proxyModes = ['kernel', 'userspace', 'auto', 'none'] as const;
export type ProxyModeFlag = (typeof proxyModes)[number];

/** The longest backoff the flags accept: a day (timers stay far below 2^31 ms). */
const restartBackoffMsMax = 24 * 3_600_000;
/** The longest pretend start the hollow runtime accepts. */
const hollowStartDelayMsMax = 3_600_000;

/** What `cox agent` runs with, from its flags. */
export interface AgentSettings {
  name: string;
  masters: string[];
  runtime: RuntimeKind;
  nodeIp: string;
  dataDir?: string;
  labels: Record<string, string>;
  taints: { key: string; value?: string; effect: TaintEffect }[];
  capacity: { cpu?: string; memory?: string; pods?: string };
  restartBackoff: BackoffPolicy;
  /** The hollow runtime's pretend start of every container, in ms. */
  hollowStartDelayMs: number;
  /** The docker runtime pulls images missing on the node. */
  pullImages: boolean;
  /** The service proxy and cluster DNS this agent runs. */
  proxy: {
    mode: ProxyModeFlag;
    serviceCidr: string;
    nodePortRange: string;
    clusterDns: string;
    clusterDomain: string;
  };
}

/** Checks and converts the flags; any mistake is a one-line UsageError naming the flag. */
export function agentSettings(o: AgentFlags): AgentSettings {
  if (!o.name) throw new UsageError('agent: --name is required');
  if (!o.masters) throw new UsageError('agent: --masters is required (the gRPC API addresses)');
  const masters = o.masters
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (masters.length === 0) throw new UsageError(`agent: --masters: "${o.masters}" names no address`);
  if (!(runtimeKinds as readonly string[]).includes(o.runtime)) {
    throw new UsageError(`agent: --runtime: "${o.runtime}" is not one of ${runtimeKinds.join(', ')}`);
  }
  const initial =
    o.restartBackoffInitial === undefined
      ? defaultBackoffPolicy.backoffMsInitial
      : parseDuration(o.restartBackoffInitial, '--restart-backoff-initial');
  const max =
    o.restartBackoffMax === undefined
      ? Math.max(defaultBackoffPolicy.backoffMsMax, initial)
      : parseDuration(o.restartBackoffMax, '--restart-backoff-max');
  if (initial <= 0) throw new UsageError('--restart-backoff-initial: must be more than 0');
  if (max > restartBackoffMsMax) throw new UsageError(`--restart-backoff-max: must be at most 24h`);
  if (max < initial) {
    const initialText = o.restartBackoffInitial ?? `${initial / 1000}s (the default)`;
    throw new UsageError(
      `--restart-backoff-max: ${o.restartBackoffMax} is less than --restart-backoff-initial ${initialText}`,
    );
  }
  const hollowStartDelayMs =
    o.hollowStartDelay === undefined ? 0 : parseDuration(o.hollowStartDelay, '--hollow-start-delay');
  if (hollowStartDelayMs > hollowStartDelayMsMax)
    throw new UsageError('--hollow-start-delay: must be at most 1h');
  if (o.hollowStartDelay !== undefined && o.runtime !== 'hollow') {
    throw new UsageError('--hollow-start-delay: only with --runtime hollow');
  }
  if (o.pullImages === true && o.runtime !== 'docker') {
    throw new UsageError('--pull-images: only with --runtime docker');
  }
  const proxyMode = o.proxyMode ?? 'auto';
  if (!(proxyModes as readonly string[]).includes(proxyMode)) {
    throw new UsageError(`agent: --proxy-mode: "${proxyMode}" is not one of ${proxyModes.join(', ')}`);
  }
  return {
    name: o.name,
    masters,
    runtime: o.runtime as RuntimeKind,
    nodeIp: o.nodeIp,
    ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
    labels: parseLabelsFlag(o.labels),
    taints: parseTaintsFlag(o.taints),
    capacity: {
      ...(o.cpu ? { cpu: o.cpu } : {}),
      ...(o.memory ? { memory: o.memory } : {}),
      ...(o.pods ? { pods: o.pods } : {}),
    },
    restartBackoff: { ...defaultBackoffPolicy, backoffMsInitial: initial, backoffMsMax: max },
    hollowStartDelayMs,
    pullImages: o.pullImages === true,
    proxy: {
      mode: proxyMode as ProxyModeFlag,
      serviceCidr: o.serviceCidr ?? defaultProxySettings.serviceCidr,
      nodePortRange: o.nodePortRange ?? defaultProxySettings.nodePortRange,
      clusterDns: o.clusterDns ?? defaultProxySettings.clusterDns,
      clusterDomain: o.clusterDomain ?? defaultProxySettings.clusterDomain,
    },
  };
}

/** `a=b,c=d` → { a: 'b', c: 'd' }. */
export function parseLabelsFlag(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`--labels: "${part}" is not key=value`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

const taintEffects = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
type TaintEffect = (typeof taintEffects)[number];

/** `key=value:Effect,key:Effect` → taints. */
export function parseTaintsFlag(
  text: string | undefined,
): { key: string; value?: string; effect: TaintEffect }[] {
  return (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((part) => {
      const m = /^([^=:]+)(?:=([^:]*))?:(\w+)$/.exec(part);
      if (!m || !(taintEffects as readonly string[]).includes(m[3])) {
        throw new UsageError(`--taints: "${part}" is not key[=value]:${taintEffects.join('|')}`);
      }
      return { key: m[1], ...(m[2] !== undefined ? { value: m[2] } : {}), effect: m[3] as TaintEffect };
    });
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run a node agent: registers the node and runs the pods bound to it')
    .option('--name <name>', 'the node name (a DNS subdomain); required')
    .option('--masters <list>', "the masters' gRPC API addresses host:port,...; required")
    .option('--runtime <kind>', 'docker | process | hollow', 'docker')
    .option('--node-ip <ip>', "this node's address (pods' hostIP; NodePorts listen on it)", '127.0.0.1')
    .option('--data-dir <dir>', 'volumes and runtime state (default: ~/.cox/agents/<name>)')
    .option('--labels <list>', 'node labels k=v,...')
    .option('--taints <list>', 'node taints key[=value]:Effect,...')
    .option('--cpu <quantity>', "capacity: CPUs (default: this machine's)")
    .option('--memory <quantity>', "capacity: memory (default: this machine's)")
    .option('--pods <n>', 'capacity: pods', '110')
    .option(
      '--restart-backoff-initial <duration>',
      'delay before restarting an exited container (CrashLoopBackOff) or retrying a failed image pull; doubles each time (default 10s)',
    )
    .option(
      '--restart-backoff-max <duration>',
      'cap of that delay (default 5m, or the initial delay if longer)',
    )
    .option('--hollow-start-delay <duration>', 'hollow runtime: how long a pretend container start takes')
    .option(
      '--pull-images',
      'docker runtime: pull images missing on the node from their registries (default: run only images built here)',
    )
    .option(
      '--proxy-mode <mode>',
      'service proxy: kernel (iptables, root) | userspace (a TCP proxy in the agent) | auto (kernel when possible) | none',
      'auto',
    )
    .option(
      '--service-cidr <cidr>',
      'virtual IPs of services (made local on this machine)',
      defaultProxySettings.serviceCidr,
    )
    .option('--node-port-range <min-max>', 'node ports this agent opens', defaultProxySettings.nodePortRange)
    .option(
      '--cluster-dns <ip>',
      'the cluster DNS service IP (in --service-cidr), answered by this agent',
      defaultProxySettings.clusterDns,
    )
    .option('--cluster-domain <domain>', 'the cluster DNS domain', defaultProxySettings.clusterDomain)
    .action(async (flags: AgentFlags) => {
      const o = agentSettings(flags);
      const { homedir } = await import('node:os');
      const { join } = await import('node:path');
      const dataDir = o.dataDir ?? join(homedir(), '.cox', 'agents', o.name);
      const { ApiClient } = await import('../actors/grpc-client.js');
      const { NodeAgent } = await import('../node-agent/agent.js');
      const runtime = await createRuntime(o, dataDir);
      const api = new ApiClient(o.masters);
      const agent = new NodeAgent({
        node: o.name,
        nodeIp: o.nodeIp,
        api,
        runtime,
        dataDir,
        memoryDir: join('/dev/shm', `cox-agent-${o.name}`),
        // Each master reaches this agent directly for logs, exec and top.
        masters: o.masters,
        labels: o.labels,
        taints: o.taints,
        capacity: o.capacity,
        restartBackoff: o.restartBackoff,
        proxy: o.proxy,
      });
      // Signals are heard from the start: a stop during start still removes what it set up
      // (proxy rules), and a start that fails stops what it started before the error leaves.
      let stopping: Promise<void> | undefined;
      const stop = (why: string): Promise<void> => {
        stopping ??= (async () => {
          console.error(`agent ${o.name}: ${why}, stopping (pods keep running)`);
          await agent.stop().catch((err: unknown) => {
            console.error(`agent ${o.name}: stop: ${err instanceof Error ? err.message : String(err)}`);
          });
          api.close();
        })();
        return stopping;
      };
      const signalled = new Promise<void>((resolve) => {
        process.once('SIGTERM', () => stop('SIGTERM').then(resolve));
        process.once('SIGINT', () => stop('SIGINT').then(resolve));
      });
      const started = agent.start();
      // A signal during a start that waits for masters ends it (the start then gives up).
      started.catch(() => {});
      let outcome: 'started' | 'signalled';
      try {
        outcome = await Promise.race([
          started.then(() => 'started' as const),
          signalled.then(() => 'signalled' as const),
        ]);
      } catch (err) {
        await stop(`start failed (${err instanceof Error ? err.message : String(err)})`);
        throw err;
      }
      if (outcome === 'signalled' || stopping !== undefined) return signalled;
      process.stdout.write(
        `${JSON.stringify({ ready: true, node: o.name, pid: process.pid, runtime: runtime.kind, proxy: agent.proxyStatus()?.mode ?? 'none' })}\n`,
      );
      await signalled;
    });
}

async function createRuntime(o: AgentSettings, dataDir: string) {
  switch (o.runtime) {
    case 'docker': {
      const { DockerRuntime } = await import('../node-agent/docker-runtime.js');
      return new DockerRuntime({ node: o.name, pull: o.pullImages });
    }
    case 'process': {
      const { ProcessRuntime } = await import('../node-agent/process-runtime.js');
      const { join } = await import('node:path');
      return new ProcessRuntime({ node: o.name, root: join(dataDir, 'runtime'), nodeIp: o.nodeIp });
    }
    case 'hollow': {
      const { HollowRuntime } = await import('../node-agent/hollow-runtime.js');
      return new HollowRuntime({ node: o.name, startDelayMs: o.hollowStartDelayMs });
    }
    default: {
      const unknown: never = o.runtime;
      throw new Error(`agent: --runtime: ${String(unknown)}: unknown`);
    }
  }
}
