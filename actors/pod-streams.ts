/**
 * The gateway's pod stream ops (`cox logs`, `cox exec`, `cox top`): the master reads the pod,
 * finds its node, and opens a remote stream to that node's agent over the agent's session in
 * this master's {@link AgentHub}. Every agent keeps a session with every master, so any master
 * reaches any agent directly; a node whose agent is not connected here is Unavailable (the
 * client then tries another master).
 *
 * ## Agent protocol (remote actors, msgpack bodies)
 *
 * | to           | type     | body                | answer                                       |
 * |--------------|----------|---------------------|----------------------------------------------|
 * | `pod/<uid>`  | `logs`   | {@link AgentLogsRequest} | stream of {@link AgentOutputFrame}       |
 * | `pod/<uid>`  | `exec`   | {@link AgentExecRequest} | output frames, then `{ exitCode }`       |
 * | `node`       | `stats`  | {@link AgentStatsRequest} | {@link AgentStatsReply}                 |
 * | `stream/<id>`| `credit` | `{ frames }` (tell) | — the agent may send that many more frames   |
 * | `stream/<id>`| `stdin`, `resize`, `eof` | `{ data }`, `{ cols, rows }`, — (tells) | —   |
 * | `pod/<uid>`  | `portForward` | {@link AgentPortForwardRequest} | `{ connected }`, then {@link AgentPortForwardFrame}s |
 * | `stream/<id>`| `data`, `eof` | `{ data }`, — (tells: bytes for the pod, the client's half-close) | — |
 *
 * Flow control: the agent sends at most `window` frames beyond the credit the master granted;
 * the master grants credit as the gateway pulls frames, and the gateway pulls only while the
 * client's socket drains. A slow client thus stops the agent reading the container's output
 * instead of filling the master (whose remote stream queue is bounded).
 *
 * ## Gateway ops
 *
 * - `logs` { namespace?, pod, container?, follow?, tailLines?, sinceSeconds?, timestamps?, previous? }
 *   → `{ stream: 'stdout'|'stderr', data: base64 }` frames.
 * - `exec` { namespace?, pod, container?, command[], stdin?, tty? } → `{ started: true }` once
 *   the agent was asked (input may follow; before it, another master may be tried), output frames, then
 *   `{ exitCode }`. Input frames: `{ stdin: base64 }`, `{ resize: { cols, rows } }`, `{ eof: true }`.
 * - `portForward` { namespace?, pod, port, window? } → `{ connected: true }` once the agent holds a
 *   TCP connection to the pod's port (a refused connection ends the stream with its error), then
 *   `{ data: base64 }` (bytes from the pod), `{ ack: bytes }` (bytes the agent wrote to the pod)
 *   and `{ eof: true }` (the pod half-closed). Input: `{ data: base64 }`, `{ eof: true }`,
 *   `{ credit: frames }`. Flow control both ways: the gateway sends at most `window` frames
 *   beyond the credit the client granted (the client grants as it writes them to its socket),
 *   and the client keeps at most {@link portForwardBufferBytesMax} bytes sent but not acked.
 * - `stats` { target: 'pods', namespace? (absent: all), pod? } → one `{ pods, unreachable }` frame;
 *   { target: 'nodes' } → one `{ nodes, unreachable }` frame.
 */

import { randomUUID } from 'node:crypto';
import type { Node, Pod } from '../core/index.js';
import { ApiError, ApiErrorCode, type ObjectApi } from './api.js';
import type { RemoteSession, RemoteStream } from './remoting.js';
import type { GatewayStream, StreamOpHandler, WsRequest } from './ws-gateway.js';

export const podStreamLimits = {
  /** Frames an agent may send ahead of the master's credit, per stream (under remoting's streamQueueFramesMax). */
  windowFrames: 256,
  /** How long a `stats` ask waits for one agent. */
  statsTimeoutMs: 10_000,
  /** Longest command line of an exec, in arguments. */
  execArgsMax: 1_024,
  /** Largest `window` (frames sent beyond the client's credit) a port-forward client may ask for. */
  portForwardWindowFramesMax: 64,
  /** A port-forward's window when the client names none, in frames. */
  portForwardWindowFrames: 32,
} as const;

/**
 * Port-forward bytes a client may have sent that the agent has not yet acked (written to the
 * pod's socket), per connection: what bounds the agent's write buffer.
 */
export const portForwardBufferBytesMax = 1024 * 1024;
/** Largest data frame of a port-forward, either way, in bytes (before base64). */
export const portForwardChunkBytesMax = 32 * 1024;

/** Agent request `portForward` to `pod/<uid>`: connect to the pod's `port` (TCP). */
export interface AgentPortForwardRequest {
  streamId: string;
  window: number;
  port: number;
  /** The pod's name, for messages. */
  pod?: string;
  /** The pod's IP as its status reports it (docker: where the agent connects). */
  podIP?: string;
}

export type AgentPortForwardFrame =
  | { connected: true }
  | { data: Uint8Array }
  | { ack: number }
  | { eof: true };

/** Agent request `logs` to `pod/<uid>`. */
export interface AgentLogsRequest {
  streamId: string;
  window: number;
  container: string;
  follow?: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  timestamps?: boolean;
  previous?: boolean;
}

/** Agent request `exec` to `pod/<uid>`. */
export interface AgentExecRequest {
  streamId: string;
  window: number;
  container: string;
  command: string[];
  stdin?: boolean;
  tty?: boolean;
}

export type AgentOutputFrame = { stream: 'stdout' | 'stderr'; data: Uint8Array } | { exitCode: number };

/** Agent request `stats` to `node`: the running containers of these pods (absent: all). */
export interface AgentStatsRequest {
  podUids?: string[];
}

export interface ContainerUsage {
  podUid: string;
  name: string;
  /** CPU used over the sampling window, in millicores. */
  cpuMillis: number;
  memoryBytes: number;
}

export interface AgentStatsReply {
  containers: ContainerUsage[];
}

/** What the ops need of the hub: a node's agent session, when connected here. */
export interface AgentSessions {
  session(node: string): RemoteSession | undefined;
}

export interface PodStatsFrame {
  pods: { namespace: string; name: string; node: string; containers: Omit<ContainerUsage, 'podUid'>[] }[];
  /** Nodes whose agents did not answer (not connected here, or failed), with the reason. */
  unreachable: { node: string; reason: string }[];
}

export interface NodeStatsFrame {
  nodes: { name: string; cpuMillis: number; memoryBytes: number; capacity: Record<string, string> }[];
  unreachable: { node: string; reason: string }[];
}

// ---------------------------------------------------------------------------------- arguments

function invalid(message: string, fieldPath: string): ApiError {
  return new ApiError(ApiErrorCode.Invalid, message, { fieldPath });
}

function str(req: WsRequest, field: string, required: true): string;
function str(req: WsRequest, field: string, required?: false): string | undefined;
function str(req: WsRequest, field: string, required = false): string | undefined {
  const v = req[field];
  if (v === undefined || v === null || v === '') {
    if (required) throw invalid(`${req.op}: ${field}: required`, field);
    return undefined;
  }
  if (typeof v !== 'string') throw invalid(`${req.op}: ${field}: must be a string`, field);
  return v;
}

function bool(req: WsRequest, field: string): boolean | undefined {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalid(`${req.op}: ${field}: must be a boolean`, field);
  return v;
}

function count(req: WsRequest, field: string): number | undefined {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw invalid(`${req.op}: ${field}: must be a non-negative integer`, field);
  return v;
}

/** The pod, its node's agent session and the container the request names (default: the first). */
async function target(
  req: WsRequest,
  objects: ObjectApi,
  hub: AgentSessions,
): Promise<{ pod: Pod; session: RemoteSession; container: string }> {
  const namespace = str(req, 'namespace') ?? 'default';
  const name = str(req, 'pod', true);
  const pod = (await objects.get({ kind: 'Pod', namespace, name })) as unknown as Pod;
  const ref = `pod/${name}`;
  const names = (pod.spec?.containers ?? []).map((c) => c.name);
  const container = str(req, 'container') ?? names[0];
  if (container === undefined || !names.includes(container)) {
    throw invalid(
      `${ref}: container "${container ?? ''}" is not one of the pod's containers (${names.join(', ')})`,
      'container',
    );
  }
  const node = pod.spec?.nodeName;
  if (node === undefined || node === '')
    throw new ApiError(ApiErrorCode.Invalid, `${ref}: spec.nodeName: not scheduled to a node yet`);
  const session = hub.session(node);
  if (session === undefined) {
    throw new ApiError(
      ApiErrorCode.Unavailable,
      `${ref}: node "${node}": its agent is not connected to this master`,
      { retryAfterMs: 200 },
    );
  }
  return { pod, session, container };
}

// ------------------------------------------------------------------------------------ streams

/**
 * Adapts an agent's output stream to gateway frames, granting the agent credit as frames are
 * pulled (see the flow control contract above). `input` forwards exec input as tells.
 */
export function agentOutputFrames(
  session: RemoteSession,
  streamId: string,
  remote: RemoteStream<AgentOutputFrame>,
  window: number,
  /** Send `{ started: true }` first: the client may send input from then on (exec). */
  announce = false,
): GatewayStream {
  const it = remote[Symbol.asyncIterator]();
  const control = `stream/${streamId}`;
  let consumed = 0;
  let closed = false;
  let announced = !announce;
  return {
    async next() {
      if (closed) return undefined;
      if (!announced) {
        announced = true;
        return { started: true };
      }
      const r = await it.next();
      if (r.done) return undefined;
      consumed += 1;
      if (consumed >= Math.max(1, Math.floor(window / 2))) {
        session.tell(control, 'credit', { frames: consumed });
        consumed = 0;
      }
      const f = r.value;
      if ('exitCode' in f) return { exitCode: f.exitCode };
      return { stream: f.stream, data: Buffer.from(f.data).toString('base64') };
    },
    input(req) {
      if (closed) return;
      if (typeof req.stdin === 'string') {
        session.tell(control, 'stdin', { data: new Uint8Array(Buffer.from(req.stdin, 'base64')) });
      }
      const resize = req.resize as { cols?: unknown; rows?: unknown } | undefined;
      if (resize !== undefined && typeof resize === 'object' && resize !== null) {
        const { cols, rows } = resize;
        if (!Number.isInteger(cols) || !Number.isInteger(rows))
          throw invalid('input: resize: cols and rows must be integers', 'resize');
        session.tell(control, 'resize', { cols, rows });
      }
      if (req.eof === true) session.tell(control, 'eof', {});
    },
    close() {
      if (closed) return;
      closed = true;
      remote.cancel();
    },
  };
}

function logsOp(hub: AgentSessions, newId: () => string): StreamOpHandler {
  return async (req, apis) => {
    const { pod, session, container } = await target(req, apis.objects, hub);
    const body: AgentLogsRequest = { streamId: newId(), window: podStreamLimits.windowFrames, container };
    const follow = bool(req, 'follow');
    const tailLines = count(req, 'tailLines');
    const sinceSeconds = count(req, 'sinceSeconds');
    const timestamps = bool(req, 'timestamps');
    const previous = bool(req, 'previous');
    if (follow !== undefined) body.follow = follow;
    if (tailLines !== undefined) body.tailLines = tailLines;
    if (sinceSeconds !== undefined) body.sinceSeconds = sinceSeconds;
    if (timestamps !== undefined) body.timestamps = timestamps;
    if (previous !== undefined) body.previous = previous;
    const remote = session.stream<AgentOutputFrame>(`pod/${pod.metadata.uid}`, 'logs', body);
    return agentOutputFrames(session, body.streamId, remote, body.window);
  };
}

function execOp(hub: AgentSessions, newId: () => string): StreamOpHandler {
  return async (req, apis) => {
    const command = req.command;
    if (
      !Array.isArray(command) ||
      command.length === 0 ||
      command.length > podStreamLimits.execArgsMax ||
      !command.every((a) => typeof a === 'string')
    ) {
      throw invalid(
        `exec: command: required non-empty list of at most ${podStreamLimits.execArgsMax} strings`,
        'command',
      );
    }
    const { pod, session, container } = await target(req, apis.objects, hub);
    const body: AgentExecRequest = {
      streamId: newId(),
      window: podStreamLimits.windowFrames,
      container,
      command: command as string[],
      stdin: bool(req, 'stdin') ?? false,
      tty: bool(req, 'tty') ?? false,
    };
    const remote = session.stream<AgentOutputFrame>(`pod/${pod.metadata.uid}`, 'exec', body);
    return agentOutputFrames(session, body.streamId, remote, body.window, true);
  };
}

/**
 * A port-forward connection as gateway frames: pulls the agent's frames only while the client
 * has credit, grants the agent credit as frames are pulled, and forwards the client's bytes,
 * half-close and credit (see the flow control contract in the file comment).
 */
export function portForwardFrames(
  session: RemoteSession,
  streamId: string,
  remote: RemoteStream<AgentPortForwardFrame>,
  window: number,
): GatewayStream {
  const it = remote[Symbol.asyncIterator]();
  const control = `stream/${streamId}`;
  let clientCredit = window;
  let consumed = 0;
  let closed = false;
  let wake: (() => void) | undefined;
  const wakeUp = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  return {
    async next() {
      while (clientCredit <= 0 && !closed) await new Promise<void>((r) => (wake = r));
      if (closed) return undefined;
      const r = await it.next();
      if (r.done) return undefined;
      clientCredit -= 1;
      consumed += 1;
      if (consumed >= Math.max(1, Math.floor(window / 2))) {
        session.tell(control, 'credit', { frames: consumed });
        consumed = 0;
      }
      const f = r.value;
      if ('data' in f) return { data: Buffer.from(f.data).toString('base64') };
      return { ...f };
    },
    input(req) {
      if (closed) return;
      if (typeof req.data === 'string') {
        const data = Buffer.from(req.data, 'base64');
        if (data.byteLength > portForwardChunkBytesMax)
          throw invalid(
            `input: data: more than ${portForwardChunkBytesMax} bytes (portForwardChunkBytesMax)`,
            'data',
          );
        session.tell(control, 'data', { data: new Uint8Array(data) });
      }
      if (req.credit !== undefined) {
        const n = req.credit;
        if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0 || n > window)
          throw invalid(`input: credit: must be an integer in [1, ${window}]`, 'credit');
        clientCredit = Math.min(clientCredit + n, window);
        wakeUp();
      }
      if (req.eof === true) session.tell(control, 'eof', {});
    },
    close() {
      if (closed) return;
      closed = true;
      wakeUp();
      remote.cancel();
    },
  };
}

function portForwardOp(hub: AgentSessions, newId: () => string): StreamOpHandler {
  return async (req, apis) => {
    const port = req.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535)
      throw invalid('portForward: port: must be an integer in [1, 65535]', 'port');
    const window = count(req, 'window') ?? podStreamLimits.portForwardWindowFrames;
    if (window < 1 || window > podStreamLimits.portForwardWindowFramesMax)
      throw invalid(
        `portForward: window: must be in [1, ${podStreamLimits.portForwardWindowFramesMax}] frames`,
        'window',
      );
    const { pod, session } = await target(req, apis.objects, hub);
    if (pod.status?.phase !== 'Running') {
      throw new ApiError(
        ApiErrorCode.Invalid,
        `pod/${pod.metadata.name}: unable to forward port because pod is not running. Current status=${pod.status?.phase ?? 'Unknown'}`,
      );
    }
    const body: AgentPortForwardRequest = { streamId: newId(), window, port, pod: pod.metadata.name ?? '' };
    if (pod.status.podIP !== undefined && pod.status.podIP !== '') body.podIP = pod.status.podIP;
    const remote = session.stream<AgentPortForwardFrame>(`pod/${pod.metadata.uid}`, 'portForward', body);
    return portForwardFrames(session, body.streamId, remote, window);
  };
}

/** A gateway stream of exactly one frame. */
function oneFrame(frame: () => Promise<Record<string, unknown>>): GatewayStream {
  let sent = false;
  return {
    async next() {
      if (sent) return undefined;
      sent = true;
      return frame();
    },
    close() {
      sent = true;
    },
  };
}

async function askStats(
  hub: AgentSessions,
  node: string,
  request: AgentStatsRequest,
): Promise<AgentStatsReply | string> {
  const session = hub.session(node);
  if (session === undefined) return 'agent not connected to this master';
  try {
    return await session.ask<AgentStatsReply>('node', 'stats', request, podStreamLimits.statsTimeoutMs);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

async function podStats(req: WsRequest, objects: ObjectApi, hub: AgentSessions): Promise<PodStatsFrame> {
  const namespace = str(req, 'namespace');
  const name = str(req, 'pod');
  const pods =
    name !== undefined
      ? [(await objects.get({ kind: 'Pod', namespace: namespace ?? 'default', name })) as unknown as Pod]
      : ((await objects.list('Pod', namespace === undefined ? {} : { namespace })).items as unknown as Pod[]);
  const byNode = new Map<string, Pod[]>();
  for (const p of pods) {
    const node = p.spec?.nodeName;
    if (node === undefined || node === '' || p.status?.phase !== 'Running') continue;
    byNode.set(node, [...(byNode.get(node) ?? []), p]);
  }
  const frame: PodStatsFrame = { pods: [], unreachable: [] };
  await Promise.all(
    [...byNode].map(async ([node, onNode]) => {
      const reply = await askStats(hub, node, { podUids: onNode.map((p) => p.metadata.uid ?? '') });
      if (typeof reply === 'string') {
        frame.unreachable.push({ node, reason: reply });
        return;
      }
      for (const p of onNode) {
        const containers = reply.containers
          .filter((c) => c.podUid === p.metadata.uid)
          .map(({ name: n, cpuMillis, memoryBytes }) => ({ name: n, cpuMillis, memoryBytes }));
        if (containers.length === 0) continue;
        frame.pods.push({
          namespace: p.metadata.namespace ?? 'default',
          name: p.metadata.name ?? '',
          node,
          containers,
        });
      }
    }),
  );
  frame.pods.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  return frame;
}

async function nodeStats(objects: ObjectApi, hub: AgentSessions): Promise<NodeStatsFrame> {
  const nodes = (await objects.list('Node')).items as unknown as Node[];
  const frame: NodeStatsFrame = { nodes: [], unreachable: [] };
  await Promise.all(
    nodes.map(async (n) => {
      const name = n.metadata.name ?? '';
      const reply = await askStats(hub, name, {});
      if (typeof reply === 'string') {
        frame.unreachable.push({ node: name, reason: reply });
        return;
      }
      frame.nodes.push({
        name,
        cpuMillis: reply.containers.reduce((s, c) => s + c.cpuMillis, 0),
        memoryBytes: reply.containers.reduce((s, c) => s + c.memoryBytes, 0),
        capacity: { ...(n.status?.capacity ?? {}) },
      });
    }),
  );
  frame.nodes.sort((a, b) => a.name.localeCompare(b.name));
  return frame;
}

function statsOp(hub: AgentSessions): StreamOpHandler {
  return async (req, apis) => {
    const what = str(req, 'target', true);
    if (what === 'pods') return oneFrame(async () => ({ ...(await podStats(req, apis.objects, hub)) }));
    if (what === 'nodes') return oneFrame(async () => ({ ...(await nodeStats(apis.objects, hub)) }));
    throw invalid(`stats: target: "${what}" is not pods or nodes`, 'target');
  };
}

/** The `logs`, `exec`, `portForward` and `stats` stream ops for `startWsGateway({ streamOps })`. */
export function podStreamOps(
  hub: AgentSessions,
  opts: { newId?: () => string } = {},
): Record<string, StreamOpHandler> {
  const newId = opts.newId ?? randomUUID;
  return {
    logs: logsOp(hub, newId),
    exec: execOp(hub, newId),
    portForward: portForwardOp(hub, newId),
    stats: statsOp(hub),
  };
}
