/**
 * `cox agent`: run a node agent. It talks to the masters' gRPC API (the same addresses `cox
 * cluster status` shows under API) and runs pods with a container runtime. Loads
 * `node-agent/` lazily, like `cox master` loads `actors/`.
 */

import type { Command } from 'commander';

interface AgentFlags {
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
  proxyMode: string;
  serviceCidr: string;
  nodePortRange: string;
  clusterDns: string;
  clusterDomain: string;
}

/** `a=b,c=d` → { a: 'b', c: 'd' }. */
export function parseLabelsFlag(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new Error(`--labels: "${part}" is not key=value`);
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
        throw new Error(`--taints: "${part}" is not key[=value]:${taintEffects.join('|')}`);
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
      '--proxy-mode <mode>',
      'service proxy: kernel (iptables, root) | userspace (a TCP proxy in the agent) | auto (kernel when possible) | none',
      'auto',
    )
    .option('--service-cidr <cidr>', 'virtual IPs of services (made local on this machine)', '10.96.0.0/16')
    .option('--node-port-range <min-max>', 'node ports this agent opens', '30000-32767')
    .option(
      '--cluster-dns <ip>',
      'the cluster DNS service IP (in --service-cidr), answered by this agent',
      '10.96.0.10',
    )
    .option('--cluster-domain <domain>', 'the cluster DNS domain', 'cluster.local')
    .action(async (o: AgentFlags) => {
      if (!o.name) throw new Error('agent: --name is required');
      if (!o.masters) throw new Error('agent: --masters is required (the gRPC API addresses)');
      const masters = o.masters
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean);
      const { homedir } = await import('node:os');
      const { join } = await import('node:path');
      const dataDir = o.dataDir ?? join(homedir(), '.cox', 'agents', o.name);
      const { ApiClient } = await import('../actors/grpc-client.js');
      const { NodeAgent } = await import('../node-agent/agent.js');
      const runtime = await createRuntime(o.runtime, o.name, dataDir, o.nodeIp);
      const api = new ApiClient(masters);
      const agent = new NodeAgent({
        node: o.name,
        nodeIp: o.nodeIp,
        api,
        runtime,
        dataDir,
        memoryDir: join('/dev/shm', `cox-agent-${o.name}`),
        // Each master reaches this agent directly for logs, exec and top.
        masters,
        labels: parseLabelsFlag(o.labels),
        taints: parseTaintsFlag(o.taints),
        capacity: {
          ...(o.cpu ? { cpu: o.cpu } : {}),
          ...(o.memory ? { memory: o.memory } : {}),
          ...(o.pods ? { pods: o.pods } : {}),
        },
        proxy: {
          mode: o.proxyMode as 'kernel' | 'userspace' | 'auto' | 'none',
          serviceCidr: o.serviceCidr,
          nodePortRange: o.nodePortRange,
          clusterDns: o.clusterDns,
          clusterDomain: o.clusterDomain,
        },
      });
      await agent.start();
      process.stdout.write(
        `${JSON.stringify({ ready: true, node: o.name, pid: process.pid, runtime: runtime.kind, proxy: agent.proxyStatus()?.mode ?? 'none' })}\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          console.error(`agent ${o.name}: ${signal}, stopping (pods keep running)`);
          agent.stop().then(() => {
            api.close();
            resolve();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}

async function createRuntime(kind: string, node: string, dataDir: string, nodeIp: string) {
  switch (kind) {
    case 'docker': {
      const { DockerRuntime } = await import('../node-agent/docker-runtime.js');
      return new DockerRuntime({ node });
    }
    case 'process': {
      const { ProcessRuntime } = await import('../node-agent/process-runtime.js');
      const { join } = await import('node:path');
      return new ProcessRuntime({ node, root: join(dataDir, 'runtime'), nodeIp });
    }
    case 'hollow': {
      const { HollowRuntime } = await import('../node-agent/hollow-runtime.js');
      return new HollowRuntime({ node });
    }
    default:
      throw new Error(`agent: --runtime: "${kind}" is not one of docker, process, hollow`);
  }
}
