/**
 * `cox expose KIND/NAME --port N`: a Service in front of a workload, as `kubectl expose` makes
 * it — the selector from the workload's (or pod's) labels, the target port from `--target-port`
 * or the port itself, the name from `--name` or the workload's.
 */

import type { ObjectApi } from '../actors/api.js';
import type { Service } from '../core/index.js';
import { UsageError } from './errors.js';
import type { Output } from './get.js';
import { parseKind } from './options.js';

export interface ExposeOptions {
  namespace?: string;
  port?: string;
  targetPort?: string;
  name?: string;
  type?: string;
  protocol?: string;
  /** Port name (needed with several ports). */
  portName?: string;
  sessionAffinity?: string;
  clusterIp?: string;
  dryRun?: boolean;
}

const exposable = ['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Pod', 'Service'] as const;

function portNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UsageError(`${flag}: "${text}" is not a port 1-65535`);
  return n;
}

/** The selector `kubectl expose` takes from an object: its pod selector's matchLabels, a pod's labels. */
function selectorOf(obj: Record<string, unknown>, ref: string): Record<string, string> {
  const kind = obj.kind as string;
  if (kind === 'Pod') {
    const labels = (obj.metadata as { labels?: Record<string, string> }).labels ?? {};
    if (Object.keys(labels).length === 0)
      throw new UsageError(`${ref}: the pod has no labels to select it by`);
    return labels;
  }
  if (kind === 'Service') {
    const sel = (obj.spec as { selector?: Record<string, string> }).selector;
    if (!sel) throw new UsageError(`${ref}: the service has no selector to copy`);
    return sel;
  }
  const selector = (
    obj.spec as { selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } }
  ).selector;
  if (selector?.matchExpressions?.length) {
    throw new UsageError(
      `${ref}: its selector has matchExpressions, which a Service selector cannot express`,
    );
  }
  const labels = selector?.matchLabels ?? {};
  if (Object.keys(labels).length === 0) throw new UsageError(`${ref}: no selector to expose`);
  return labels;
}

/** The container port of the workload's pod template (or pod), when exactly one is declared. */
function onlyContainerPort(obj: Record<string, unknown>): number | undefined {
  const spec = obj.kind === 'Pod' ? obj.spec : (obj.spec as { template?: { spec?: unknown } }).template?.spec;
  const ports = (
    (spec as { containers?: { ports?: { containerPort: number }[] }[] })?.containers ?? []
  ).flatMap((c) => c.ports ?? []);
  return ports.length === 1 ? ports[0].containerPort : undefined;
}

export async function runExpose(
  api: ObjectApi,
  target: string,
  opts: ExposeOptions,
  out: Output,
): Promise<number> {
  const slash = target.indexOf('/');
  if (slash <= 0 || slash === target.length - 1)
    throw new UsageError(`expose: "${target}": expected KIND/NAME`);
  const kind = parseKind(target.slice(0, slash));
  if (!(exposable as readonly string[]).includes(kind)) {
    throw new UsageError(`expose: cannot expose a ${kind}; expose one of ${exposable.join(', ')}`);
  }
  const name = target.slice(slash + 1);
  const ref = `${kind.toLowerCase()}/${name}`;
  const namespace = opts.namespace ?? 'default';
  const obj = (await api.get({ kind, namespace, name })) as unknown as Record<string, unknown>;
  const selector = selectorOf(obj, ref);
  const inferred = onlyContainerPort(obj);
  if (opts.port === undefined && inferred === undefined) {
    throw new UsageError(`expose: ${ref}: --port is required (the pods declare no single container port)`);
  }
  const port = opts.port !== undefined ? portNumber(opts.port, '--port') : (inferred as number);
  const targetPort =
    opts.targetPort === undefined
      ? port
      : /^\d+$/.test(opts.targetPort)
        ? portNumber(opts.targetPort, '--target-port')
        : opts.targetPort;
  const type = opts.type ?? 'ClusterIP';
  if (type !== 'ClusterIP' && type !== 'NodePort') {
    throw new UsageError(`--type: "${type}" is not one of ClusterIP, NodePort`);
  }
  const protocol = opts.protocol ?? 'TCP';
  if (!['TCP', 'UDP', 'SCTP'].includes(protocol))
    throw new UsageError(`--protocol: "${protocol}" is not one of TCP, UDP, SCTP`);
  if (opts.sessionAffinity !== undefined && !['None', 'ClientIP'].includes(opts.sessionAffinity)) {
    throw new UsageError(`--session-affinity: "${opts.sessionAffinity}" is not one of None, ClientIP`);
  }
  const service: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: opts.name ?? name,
      namespace,
      ...((obj.metadata as { labels?: Record<string, string> }).labels
        ? { labels: (obj.metadata as { labels: Record<string, string> }).labels }
        : {}),
    },
    spec: {
      type,
      selector,
      ports: [
        {
          ...(opts.portName ? { name: opts.portName } : {}),
          port,
          targetPort,
          protocol: protocol as 'TCP' | 'UDP' | 'SCTP',
        },
      ],
      ...(opts.sessionAffinity ? { sessionAffinity: opts.sessionAffinity as 'None' | 'ClientIP' } : {}),
      ...(opts.clusterIp ? { clusterIP: opts.clusterIp } : {}),
    },
  };
  const created = (await api.create(service, { dryRun: opts.dryRun === true })) as Service;
  out.stdout(`service/${created.metadata.name} exposed${opts.dryRun ? ' (server dry run)' : ''}\n`);
  return 0;
}
