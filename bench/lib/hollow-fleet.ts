/**
 * A hollow fleet: many node agents on the hollow runtime in one process, for scale benches
 * (Kubernetes' kubemark). Every agent is a real NodeAgent (Node registration, Lease heartbeat,
 * its own pod watch by `spec.nodeName`, one pod actor per pod, status reports); they share
 * gRPC clients: one HTTP/2 connection per master carries the calls and watches of the agents
 * assigned to it (agent i to master i mod masters, failing over to the others).
 *
 * Run: `node --import tsx bench/lib/hollow-fleet.ts --masters HOST:PORT,... --nodes 1000
 *   [--prefix hollow-] [--cpu 32] [--memory 64Gi] [--pods 110] [--lease-seconds 40]
 *   [--pod-resync-ms 60000] [--start-concurrency 50]`
 * Prints `{"ready":true,"nodes":N,"pid":P}` on stdout once every node is registered; progress and
 * failures go to stderr; SIGTERM stops every agent and exits.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiClient } from '../../actors/grpc-client.js';
import { NodeAgent } from '../../node-agent/agent.js';
import { HollowRuntime } from '../../node-agent/hollow-runtime.js';

/** Period of the summary of agents' log lines. */
const agentLogSummaryMs = 10_000;

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${flag}: "${text}" must be a positive integer`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      masters: { type: 'string' },
      nodes: { type: 'string', default: '1000' },
      prefix: { type: 'string', default: 'hollow-' },
      cpu: { type: 'string', default: '32' },
      memory: { type: 'string', default: '64Gi' },
      pods: { type: 'string', default: '110' },
      'lease-seconds': { type: 'string', default: '40' },
      'pod-resync-ms': { type: 'string', default: '60000' },
      'start-concurrency': { type: 'string', default: '50' },
    },
    strict: true,
  });
  if (!values.masters) throw new Error('--masters HOST:PORT,... is required');
  const masters = values.masters.split(',').filter(Boolean);
  const count = positive('nodes', values.nodes);
  const concurrency = positive('start-concurrency', values['start-concurrency']);
  const log = (line: string) => process.stderr.write(`[fleet] ${line}\n`);
  // Agents' lines are counted by kind (numbers and names blanked) and summed up every
  // `agentLogSummaryMs`: 1,000 agents failing a lease renewal each would flood the bench.
  const agentLines = new Map<string, number>();
  const agentLog = (line: string) => {
    const kind = line.replace(/\d+/g, 'N').slice(0, 160);
    agentLines.set(kind, (agentLines.get(kind) ?? 0) + 1);
  };
  const summary = setInterval(() => {
    for (const [kind, n] of agentLines) log(`${n} x ${kind}`);
    agentLines.clear();
  }, agentLogSummaryMs);
  summary.unref();
  // One client per master, each preferring its own master (the others are its failover): the
  // agents are spread over the masters as kubelets are over API servers behind a balancer.
  const clients = masters.map(
    (_, i) =>
      new ApiClient([...masters.slice(i), ...masters.slice(0, i)], {
        deadlineMs: 30_000,
        connectTimeoutMs: 2_000,
      }),
  );
  const dir = mkdtempSync(join(tmpdir(), 'cox-hollow-fleet-'));
  const agents: NodeAgent[] = [];
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.allSettled(agents.map((a) => a.stop()));
    for (const c of clients) c.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());

  const width = String(count - 1).length;
  let next = 0;
  const startOne = async (): Promise<void> => {
    while (next < count && !stopping) {
      const i = next++;
      const name = `${values.prefix}${String(i).padStart(width, '0')}`;
      const agent = new NodeAgent({
        node: name,
        nodeIp: `127.${1 + Math.floor(i / 65_536)}.${Math.floor(i / 256) % 256}.${(i % 256) + 1}`,
        api: clients[i % clients.length],
        runtime: new HollowRuntime({ node: name }),
        dataDir: join(dir, name, 'data'),
        memoryDir: join(dir, name, 'mem'),
        capacity: { cpu: values.cpu, memory: values.memory, pods: values.pods },
        leaseDurationSeconds: positive('lease-seconds', values['lease-seconds']),
        podResyncMs: positive('pod-resync-ms', values['pod-resync-ms']),
        log: agentLog,
      });
      agents.push(agent);
      await agent.start();
      if ((i + 1) % 100 === 0) log(`${i + 1}/${count} nodes registered`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, () => startOne()));
  process.stdout.write(`${JSON.stringify({ ready: true, nodes: count, pid: process.pid })}\n`);
}

main().catch((err) => {
  process.stderr.write(
    `hollow fleet failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
