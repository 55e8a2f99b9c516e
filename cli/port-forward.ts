/**
 * `cox port-forward TYPE/NAME [LOCAL:]REMOTE...`, as kubectl's: listens on local ports and
 * relays each accepted connection to a port of one pod, through a master's `portForward` stream
 * op to the pod's node agent (actors/pod-streams.ts). For a service, deployment, replica set or
 * stateful set, the pod is chosen as kubectl does (the most available pod its selector matches;
 * a service port maps to its targetPort), once, at start: port-forward goes to a pod, never
 * through the service proxy.
 *
 * Runs until interrupted (SIGINT/SIGTERM: exit 0) or until the pod is deleted or stops running
 * (`error: lost connection to pod/NAME ...`, exit 1). A connection that fails (nothing listens
 * on the pod's port) prints one error line and only that connection ends.
 */

import { createServer, isIP, type Server, type Socket } from 'node:net';
import { ApiError, ApiErrorCode, isApiError, type ObjectApi } from '../actors/api.js';
import { portForwardBufferBytesMax, portForwardChunkBytesMax } from '../actors/pod-streams.js';
import { comparePodsForDeletion } from '../core/controllers/pods.js';
import type { LabelSelector, Pod, Service } from '../core/index.js';
import { resolveKindName } from '../core/kind-names.js';
import { labelSelectorFromApi, labelSelectorToString } from '../core/labels.js';
import type { ClientStream } from './client.js';
import { describeError, UsageError } from './errors.js';
import type { StreamApi } from './pod-verbs.js';

export const portForwardCliLimits = {
  /** Connections relayed at once by one `cox port-forward` (over all its ports). */
  portForwardConnectionsMax: 32,
  /** Frames the master may send ahead of this client's credit, per connection. */
  windowFrames: 32,
  /** How often a selector (svc, deploy, ...) is re-listed while no pod of it runs. */
  podPollMs: 500,
  /** Consecutive failed re-watches of the pod before the forward gives up. */
  podWatchRetriesMax: 10,
};

/** One `[LOCAL:]REMOTE` argument; `local` 0 picks a free port; undefined: the same as REMOTE. */
export interface PortSpec {
  text: string;
  local: number | undefined;
  /** A port number or a (container or service) port name. */
  remote: number | string;
}

function portNumber(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65_535 ? n : undefined;
}

/** `8080:80`, `:80` (a free local port), `80` (the same both sides); REMOTE may be a port name. */
export function parsePortSpec(text: string): PortSpec {
  const bad = () =>
    new UsageError(`port-forward: "${text}": not [LOCAL:]REMOTE (ports 1-65535; REMOTE may be a port name)`);
  const parts = text.split(':');
  if (parts.length > 2) throw bad();
  const remoteText = parts[parts.length - 1] ?? '';
  const remote =
    portNumber(remoteText) ??
    (/^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/.test(remoteText) && /[a-z]/.test(remoteText)
      ? remoteText
      : undefined);
  if (remote === undefined) throw bad();
  if (parts.length === 1) {
    if (typeof remote === 'string') throw bad(); // a name gives no local port number
    return { text, local: undefined, remote };
  }
  const localText = parts[0] ?? '';
  if (localText === '' || localText === '0') return { text, local: 0, remote };
  const local = portNumber(localText);
  if (local === undefined) throw bad();
  return { text, local, remote };
}

/** `--address`: IPs or `localhost` (127.0.0.1), comma-separated. */
export function parseAddresses(text: string): string[] {
  const out: string[] = [];
  for (const a of text.split(',').map((s) => s.trim())) {
    const addr = a === 'localhost' ? '127.0.0.1' : a;
    if (isIP(addr) === 0) throw new UsageError(`--address: "${a}": not an IP address or localhost`);
    if (!out.includes(addr)) out.push(addr);
  }
  if (out.length === 0) throw new UsageError('--address: at least one address is required');
  return out;
}

type TargetKind = 'Pod' | 'Service' | 'Deployment' | 'ReplicaSet' | 'StatefulSet';
const targetKinds: readonly string[] = ['Pod', 'Service', 'Deployment', 'ReplicaSet', 'StatefulSet'];

/** `pod/NAME`, `NAME` (a pod), `svc/NAME`, `deploy/NAME`, `rs/NAME`, `sts/NAME`. */
export function parseForwardTarget(text: string): { kind: TargetKind; name: string } {
  const slash = text.indexOf('/');
  if (slash < 0) {
    if (text === '') throw new UsageError('port-forward: TYPE/NAME is required');
    return { kind: 'Pod', name: text };
  }
  const kind = resolveKindName(text.slice(0, slash));
  const name = text.slice(slash + 1);
  if (kind === undefined || !targetKinds.includes(kind) || name === '' || name.includes('/')) {
    throw new UsageError(`port-forward: "${text}": TYPE/NAME with TYPE one of pod, svc, deploy, rs, sts`);
  }
  return { kind: kind as TargetKind, name };
}

/** Where each spec goes: the pod's port number, and the local port asked for (0: any). */
export interface PortMapping {
  local: number;
  remote: number;
}

function containerPort(pod: Pod, name: string): number | undefined {
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? [])
      if (p.name === name && (p.protocol ?? 'TCP') === 'TCP') return p.containerPort;
  return undefined;
}

function podPortOf(pod: Pod, remote: number | string): number {
  if (typeof remote === 'number') return remote;
  const n = containerPort(pod, remote);
  if (n === undefined)
    throw new UsageError(`pod/${pod.metadata.name}: has no container port named "${remote}"`);
  return n;
}

/** kubectl's mapping of pod ports: REMOTE is a port number or one of the pod's container port names. */
export function podPortMappings(pod: Pod, specs: PortSpec[]): PortMapping[] {
  return specs.map((s) => {
    const remote = podPortOf(pod, s.remote);
    return { local: s.local ?? remote, remote };
  });
}

/**
 * kubectl's mapping of service ports: REMOTE is a service port (number or name); the pod port is
 * its targetPort (a number, or a container port name looked up in the chosen pod; absent: the
 * port itself). `PORT` alone listens locally on the service port.
 */
export function servicePortMappings(svc: Service, pod: Pod, specs: PortSpec[]): PortMapping[] {
  const name = svc.metadata.name ?? '';
  return specs.map((s) => {
    const port = (svc.spec?.ports ?? []).find(
      (p) =>
        (p.protocol ?? 'TCP') === 'TCP' &&
        (typeof s.remote === 'number' ? p.port === s.remote : p.name === s.remote),
    );
    if (port === undefined) throw new UsageError(`Service ${name} does not have a service port ${s.remote}`);
    const target = port.targetPort ?? port.port;
    let remote: number;
    if (typeof target === 'number') remote = target;
    else if (portNumber(target) !== undefined) remote = Number(target);
    else {
      const n = containerPort(pod, target);
      if (n === undefined)
        throw new UsageError(
          `Service ${name}: targetPort "${target}" is not a container port name of pod/${pod.metadata.name}`,
        );
      remote = n;
    }
    return { local: s.local ?? port.port, remote };
  });
}

/** The pod most worth attaching to (kubectl: bound, running, ready, ready longest first). */
export function pickPod(pods: readonly Pod[]): Pod | undefined {
  const live = pods.filter(
    (p) => p.metadata.deletionTimestamp === undefined && p.status?.phase === 'Running',
  );
  return [...live].sort((a, b) => comparePodsForDeletion(b, a))[0];
}

function notRunning(pod: Pod): UsageError {
  return new UsageError(
    `pod/${pod.metadata.name}: unable to forward port because pod is not running. Current status=${pod.status?.phase ?? 'Pending'}`,
  );
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The selector of a workload or service (as a label selector string); throws when it has none. */
function selectorOf(kind: TargetKind, obj: Record<string, unknown>, ref: string): string {
  const spec = (obj.spec ?? {}) as { selector?: unknown };
  if (kind === 'Service') {
    const sel = spec.selector as Record<string, string> | undefined;
    if (sel === undefined || Object.keys(sel).length === 0)
      throw new UsageError(`${ref}: has no selector: no pod to forward to`);
    return Object.entries(sel)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
  }
  const sel = spec.selector as LabelSelector | undefined;
  if (sel === undefined) throw new UsageError(`${ref}: spec.selector: required to find its pods`);
  return labelSelectorToString(labelSelectorFromApi(sel));
}

/**
 * The pod to forward to and each spec's pod port. A pod must be Running now; for the others,
 * a running pod of the selector is awaited up to `podRunningTimeoutMs` (kubectl's
 * `--pod-running-timeout`).
 */
export async function resolveForward(
  api: ObjectApi,
  target: { kind: TargetKind; name: string },
  specs: PortSpec[],
  o: { namespace: string; podRunningTimeoutMs: number; nowMs: () => number },
): Promise<{ pod: Pod; mappings: PortMapping[] }> {
  const { namespace } = o;
  if (target.kind === 'Pod') {
    const pod = (await api.get({ kind: 'Pod', namespace, name: target.name })) as unknown as Pod;
    if (pod.status?.phase !== 'Running') throw notRunning(pod);
    return { pod, mappings: podPortMappings(pod, specs) };
  }
  const ref = `${target.kind.toLowerCase()}/${target.name}`;
  const obj = (await api.get({ kind: target.kind, namespace, name: target.name })) as unknown as Record<
    string,
    unknown
  >;
  const labelSelector = selectorOf(target.kind, obj, ref);
  const deadline = o.nowMs() + o.podRunningTimeoutMs;
  for (;;) {
    const pods = (await api.list('Pod', { namespace, labelSelector })).items as unknown as Pod[];
    const pod = pickPod(pods);
    if (pod !== undefined) {
      const mappings =
        target.kind === 'Service'
          ? servicePortMappings(obj as unknown as Service, pod, specs)
          : podPortMappings(pod, specs);
      return { pod, mappings };
    }
    if (o.nowMs() >= deadline)
      throw new UsageError(
        `${ref}: no running pod within ${o.podRunningTimeoutMs / 1000}s (--pod-running-timeout)`,
      );
    await sleep(portForwardCliLimits.podPollMs);
  }
}

/** The CLI's process hooks the verb needs. */
export interface PortForwardIo {
  stdout(s: string): void;
  stderr(s: string): void;
  /** Calls `cb` on SIGINT/SIGTERM; returns the unsubscribe. Absent: runs until the pod goes away. */
  onInterrupt?(cb: () => void): () => void;
  nowMs(): number;
}

export interface PortForwardOptions {
  namespace?: string;
  addresses?: string[];
  podRunningTimeoutMs?: number;
}

function hostText(address: string): string {
  return isIP(address) === 6 ? `[${address}]` : address;
}

function listen(server: Server, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.message;
      reject(new UsageError(`unable to listen on port ${port} (${hostText(address)}): ${why}`));
    };
    server.once('error', onError);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off('error', onError);
      // Later errors (accept failing with EMFILE, say) are said, not fatal to cox.
      server.on('error', (err) => process.stderr.write(`error: listening on port ${port}: ${err.message}\n`));
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : port);
    });
  });
}

/** Relays one accepted connection over one stream; resolves when both are closed. */
async function relayConnection(
  api: StreamApi,
  args: { namespace: string; pod: string; port: number },
  socket: Socket,
  label: string,
  io: PortForwardIo,
): Promise<void> {
  socket.pause();
  const window = portForwardCliLimits.windowFrames;
  let stream: ClientStream | undefined;
  let socketGone = false;
  socket.on('error', () => {
    socketGone = true;
    stream?.close();
  });
  socket.on('close', () => {
    socketGone = true;
    stream?.close();
  });
  try {
    stream = await api.stream('portForward', { ...args, window });
    const first = await stream.next();
    if (first === undefined) return;
    if (first.connected !== true)
      throw new ApiError(ApiErrorCode.Internal, 'portForward: the master did not confirm the connection');
    if (socketGone) return;
    const s = stream;
    let unacked = 0;
    let credit = 0;
    /** Frames consumed go back to the master as credit, half a window at a time. */
    const grant = (n: number) => {
      credit += n;
      if (credit >= Math.max(1, Math.floor(window / 2))) {
        s.input({ credit });
        credit = 0;
      }
    };
    grant(1); // the `connected` frame
    socket.on('data', (chunk: Buffer) => {
      for (let at = 0; at < chunk.byteLength; at += portForwardChunkBytesMax) {
        const part = chunk.subarray(at, at + portForwardChunkBytesMax);
        s.input({ data: part.toString('base64') });
        unacked += part.byteLength;
      }
      if (unacked >= portForwardBufferBytesMax) socket.pause();
    });
    socket.on('end', () => s.input({ eof: true }));
    socket.resume();
    for (;;) {
      const f = await s.next();
      if (f === undefined) break;
      if (typeof f.data === 'string') {
        if (socketGone) continue;
        socket.write(Buffer.from(f.data, 'base64'), () => grant(1));
        continue;
      }
      if (typeof f.ack === 'number') {
        unacked = Math.max(0, unacked - f.ack);
        if (unacked < portForwardBufferBytesMax && socket.isPaused() && !socketGone) socket.resume();
      } else if (f.eof === true && !socketGone) socket.end();
      grant(1);
    }
    if (!socketGone) socket.end();
  } catch (err) {
    // A socket gone (or destroyed as the forward stops) needs no report.
    if (!socketGone && !socket.destroyed)
      io.stderr(`error: an error occurred forwarding ${label}: ${describeError(err)}\n`);
    socket.destroy();
  } finally {
    stream?.close();
  }
}

/**
 * Watches the pod until it is deleted, replaced or stops running; resolves with the reason.
 * A broken watch is re-opened from a fresh read, at most `podWatchRetriesMax` times in a row.
 */
async function podGone(api: ObjectApi, pod: Pod, ctl: WatchControl): Promise<string | undefined> {
  const stopped = () => ctl.stopped;
  const namespace = pod.metadata.namespace ?? 'default';
  const name = pod.metadata.name ?? '';
  const uid = pod.metadata.uid;
  let failures = 0;
  while (!stopped()) {
    let current: Pod;
    try {
      current = (await api.get({ kind: 'Pod', namespace, name })) as unknown as Pod;
    } catch (err) {
      if (isApiError(err) && err.code === ApiErrorCode.NotFound) return 'it was deleted';
      if (++failures > portForwardCliLimits.podWatchRetriesMax)
        return `cannot watch it: ${describeError(err)}`;
      await sleep(1_000);
      continue;
    }
    if (current.metadata.uid !== uid) return 'it was deleted (a new pod has its name)';
    if (current.status?.phase !== 'Running') return `it is ${current.status?.phase ?? 'Pending'}`;
    if (stopped()) return undefined;
    try {
      const w = await api.watch('Pod', {
        namespace,
        name,
        ...(current.metadata.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
      });
      ctl.stopWatch = () => w.close();
      if (ctl.stopped) w.close();
      for (;;) {
        const events = await w.next();
        if (events === undefined) break;
        failures = 0;
        for (const e of events) {
          const p = e.object as unknown as Pod;
          if (e.type === 'BOOKMARK' || p.metadata?.name !== name) continue;
          if (e.type === 'DELETED' || p.metadata.uid !== uid) return 'it was deleted';
          if (p.status?.phase !== 'Running') return `it is ${p.status?.phase ?? 'Pending'}`;
        }
      }
    } catch (err) {
      if (++failures > portForwardCliLimits.podWatchRetriesMax)
        return `cannot watch it: ${describeError(err)}`;
      await sleep(1_000);
    }
  }
  return undefined;
}

interface WatchControl {
  stopped: boolean;
  stopWatch?: () => void;
}

/** Runs the forward; resolves with cox's exit code. */
export async function runPortForward(
  api: ObjectApi & StreamApi,
  targetText: string,
  portTexts: string[],
  o: PortForwardOptions,
  io: PortForwardIo,
): Promise<number> {
  if (portTexts.length === 0)
    throw new UsageError('port-forward: at least one [LOCAL:]REMOTE port is required');
  const target = parseForwardTarget(targetText);
  const specs = portTexts.map(parsePortSpec);
  const addresses = o.addresses ?? ['127.0.0.1'];
  const namespace = o.namespace ?? 'default';
  const { pod, mappings } = await resolveForward(api, target, specs, {
    namespace,
    podRunningTimeoutMs: o.podRunningTimeoutMs ?? 60_000,
    nowMs: io.nowMs,
  });
  const podName = pod.metadata.name ?? '';
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const ctl: WatchControl = { stopped: false };
  let interrupt: () => void = () => {};
  const interrupted = new Promise<undefined>((resolve) => {
    interrupt = () => resolve(undefined);
  });
  const unsubscribe = io.onInterrupt?.(() => interrupt());
  try {
    for (const m of mappings) {
      let local = m.local;
      for (const address of addresses) {
        const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
        servers.push(server);
        local = await listen(server, address, local);
        const label = `${local} -> ${m.remote}`;
        const localPort = local;
        server.on('connection', (socket) => {
          if (sockets.size >= portForwardCliLimits.portForwardConnectionsMax) {
            io.stderr(
              `error: port-forward: ${sockets.size} connections open (portForwardConnectionsMax); refusing a connection for ${localPort}\n`,
            );
            socket.destroy();
            return;
          }
          sockets.add(socket);
          io.stdout(`Handling connection for ${localPort}\n`);
          void relayConnection(api, { namespace, pod: podName, port: m.remote }, socket, label, io).finally(
            () => sockets.delete(socket),
          );
        });
        io.stdout(`Forwarding from ${hostText(address)}:${local} -> ${m.remote}\n`);
      }
    }
    const lost = await Promise.race([interrupted, podGone(api, pod, ctl)]);
    if (lost === undefined) return 0;
    io.stderr(`error: lost connection to pod/${podName}: ${lost}\n`);
    return 1;
  } finally {
    ctl.stopped = true;
    ctl.stopWatch?.();
    unsubscribe?.();
    for (const s of servers) s.close();
    for (const s of sockets) s.destroy();
  }
}
