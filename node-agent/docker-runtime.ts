/**
 * The docker driver of the container runtime port (dockerode). A pod's sandbox is a small
 * container of the base image that holds the network namespace and hostname; app containers
 * join it (`NetworkMode: container:<sandbox>`), so they share localhost, as in Kubernetes.
 *
 * Images are never pulled unless `pull` is set: no registry is reachable from this machine, and
 * an agent must not send traffic anywhere it was not told to. A missing image is an
 * ImagePullError naming it.
 */

import type { IncomingMessage } from 'node:http';
import {
  type Duplex,
  finished,
  pipeline,
  type Readable,
  Transform,
  type TransformCallback,
} from 'node:stream';
import Docker from 'dockerode';
import { enableHairpin } from './hairpin.js';
import { baseImage, ensureBaseImage, hasImage } from './images.js';
import {
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerStats,
  type ContainerStatus,
  type ExecOptions,
  type ExecSession,
  ImagePullError,
  runtimeLabels as L,
  type LogChunk,
  type LogOptions,
  type PullPolicy,
  type SandboxSpec,
  type SandboxStatus,
} from './runtime.js';
import { StartGate } from './start-gate.js';

export interface DockerRuntimeOptions {
  /** This agent's node name: every container is labelled with it, and only its own are listed. */
  node: string;
  docker?: Docker;
  /**
   * Pull images missing on the node from their registries (needs a reachable registry). Default
   * false: only images built on this machine run, and the agent sends no traffic to registries.
   */
  pull?: boolean;
  /**
   * Container starts asked of the engine at once (app containers of pods whose sandbox runs go
   * ahead of new sandboxes). Default `engineStartsInFlightMax`.
   */
  startsInFlightMax?: number;
}

/** On a 2-core machine a few starts at once keep the engine busy; more only slow each other. */
export const engineStartsInFlightMax = 4;

/** The sandbox's process: sleeps until told to stop, and stops at once on SIGTERM. */
const sandboxCommand = ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'];

/** Demultiplexed chunks buffered ahead of a slow reader before the engine's stream is paused. */
const outputBufferChunksMax = 64;
/** A frame header announcing more than this is a corrupted stream, not output. */
const frameBytesMax = 16 * 1024 * 1024;
/** How long the engine may take to record an exec's exit code after its stream ended. */
const execExitWaitMs = 5_000;
const execExitPollMs = 10;
/** Exit code reported for an exec session ended by `kill()` whose command the engine still runs. */
const killedExitCode = 137;
/** Wait before reopening the engine's event stream after it ended or failed. */
const eventsReconnectMs = 1_000;
/** A line of the event stream longer than this is not an event: the stream is reopened. */
const eventLineBytesMax = 1024 * 1024;
/**
 * Inspected app containers remembered, by id (oldest forgotten first): an exited container
 * never changes, and a running one only by exiting, which its `die` event and then the engine's
 * list show, so a list needs no inspect for them.
 */
const containerStatusesMax = 4_096;
/** Sandboxes remembered, by pod uid, so starting a container needs no engine look-up. */
const sandboxesMax = 4_096;

/**
 * Splits the engine's multiplexed stream (8-byte frame headers: stream type 0 stdin, 1 stdout,
 * 2 stderr, 3 engine error; 3 zero bytes; big-endian payload length) into LogChunks. With a tty there are no frames: everything is
 * stdout. Frames may be split across, or packed into, the incoming chunks.
 */
export class DockerStreamDemux extends Transform {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly tty: boolean) {
    super({ readableObjectMode: true, readableHighWaterMark: outputBufferChunksMax });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.tty) {
      if (chunk.length > 0) this.push({ stream: 'stdout', data: new Uint8Array(chunk) } satisfies LogChunk);
      done();
      return;
    }
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 8) {
      const type = this.pending[0];
      const size = this.pending.readUInt32BE(4);
      if (type > 3 || size > frameBytesMax) {
        done(new Error(`docker stream: bad frame header (stream type ${type}, ${size} bytes)`));
        return;
      }
      if (this.pending.length < 8 + size) break;
      const data = new Uint8Array(this.pending.subarray(8, 8 + size));
      this.pending = this.pending.subarray(8 + size);
      if (type === 3) {
        // The engine's own error (stdcopy's Systemerr), not the program's output.
        done(new Error(`docker stream: engine error: ${Buffer.from(data).toString().trim()}`));
        return;
      }
      if (size > 0) this.push({ stream: type === 2 ? 'stderr' : 'stdout', data } satisfies LogChunk);
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    done(
      this.pending.length > 0
        ? new Error(`docker stream: ended inside a frame (${this.pending.length} bytes left)`)
        : null,
    );
  }
}

/**
 * Pipes an engine stream into a demultiplexer at once (so the stream drains, up to
 * `outputBufferChunksMax` chunks, even before anyone iterates), and hands out its chunks.
 * Stopping the iteration early (break, return, throw) or `stop()` destroys the engine stream,
 * so an abandoned `logs -f` holds no connection open; after `stop()` the iteration just ends.
 */
function demultiplex(
  source: Readable | Duplex,
  tty: boolean,
): { chunks: AsyncGenerator<LogChunk>; stop(): void } {
  const demux = new DockerStreamDemux(tty);
  let stopped = false;
  pipeline(source, demux, () => {});
  const stop = (): void => {
    stopped = true;
    demux.destroy();
    source.destroy();
  };
  async function* chunks(): AsyncGenerator<LogChunk> {
    try {
      for await (const chunk of demux) yield chunk as LogChunk;
    } catch (err) {
      if (!stopped) throw err;
    } finally {
      stop();
    }
  }
  return { chunks: chunks(), stop };
}

/** RFC 3339 (with up to nanosecond fractions) as the engine's `since`: "<seconds>.<nanoseconds>". */
export function engineTimestamp(rfc3339: string): string | undefined {
  const fraction = /T[^.]*\.(\d+)/.exec(rfc3339)?.[1] ?? '';
  const ms = Date.parse(fraction === '' ? rfc3339 : rfc3339.replace(`.${fraction}`, ''));
  if (Number.isNaN(ms)) return undefined;
  return `${Math.floor(ms / 1000)}.${fraction.padEnd(9, '0').slice(0, 9)}`;
}

/** What the engine said, without docker-modem's `(HTTP code 404) unexpected - ` prefix. */
function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: string } | null }).json;
  const text = json?.message ?? (err instanceof Error ? err.message : String(err));
  return text.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

function shortUid(uid: string): string {
  return uid.replace(/-/g, '').slice(0, 8);
}

function dockerName(text: string): string {
  return text.replace(/[^a-zA-Z0-9_.-]/g, '-');
}

/** A pod's sandbox as app containers need it. */
interface SandboxRef {
  id: string;
  name: string;
  namespace: string;
}

/** Puts `key` last in `map`, dropping the oldest entries beyond `max`. */
function remember<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value as K);
}

export class DockerRuntime implements ContainerRuntime {
  readonly kind = 'docker' as const;
  private readonly docker: Docker;
  private readonly node: string;
  private readonly pull: boolean;
  private readonly statuses = new Map<string, ContainerStatus>();
  /** Containers whose `die` event came (their list entry may still say running). */
  private readonly died = new Map<string, true>();
  private readonly sandboxes = new Map<string, SandboxRef>();
  /** Sandboxes being created (by pod uid): resolve once the container exists, before it runs. */
  private readonly sandboxCreations = new Map<string, Promise<SandboxRef | undefined>>();
  /** The base image was there (or built) once; a create that misses it clears this. */
  private baseImageReady = false;
  private readonly starts: StartGate;

  constructor(opts: DockerRuntimeOptions) {
    this.docker = opts.docker ?? new Docker();
    this.node = opts.node;
    this.pull = opts.pull ?? false;
    this.starts = new StartGate(opts.startsInFlightMax ?? engineStartsInFlightMax);
  }

  async version(): Promise<string> {
    return `docker://${(await this.docker.version()).Version}`;
  }

  async ensureImage(image: string, policy: PullPolicy, onPull?: () => void): Promise<void> {
    if (image === baseImage || image === 'coxswain/busybox') {
      await this.ensureBase();
      return;
    }
    const present = await hasImage(this.docker, image);
    if (present && policy !== 'Always') return;
    if (policy === 'Never' || !this.pull) {
      if (present) return;
      throw new ImagePullError(
        image,
        policy === 'Never'
          ? 'not present on this node and imagePullPolicy is Never'
          : 'not present on this node, and this agent does not pull images (build it with `cox image build`, or run the agent with --pull-images)',
      );
    }
    // The registry's own words: a refusal before the transfer is the engine's error response, a
    // failure during it an `error` line of the progress stream.
    let failure: string | undefined;
    onPull?.();
    try {
      const stream = await this.docker.pull(image);
      type Progress = { error?: string; errorDetail?: { message?: string } };
      const progress = await new Promise<Progress[]>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null, output: Progress[]) =>
          err ? reject(err) : resolve(output),
        ),
      );
      const line = progress.find((p) => p.error !== undefined || p.errorDetail?.message !== undefined);
      failure = line === undefined ? undefined : (line.errorDetail?.message ?? line.error);
    } catch (err) {
      failure = engineMessage(err);
    }
    if (failure !== undefined) throw new ImagePullError(image, failure.trim().replace(/\s*\n\s*/g, '; '));
  }

  runSandbox(spec: SandboxSpec): Promise<SandboxStatus> {
    // Containers of the pod may be created as soon as the sandbox exists (before it runs).
    let created: (ref: SandboxRef | undefined) => void = () => {};
    const ref = new Promise<SandboxRef | undefined>((resolve) => {
      created = resolve;
    });
    this.sandboxCreations.set(spec.podUid, ref);
    const done = this.startSandbox(spec, created);
    return done.finally(() => {
      created(undefined);
      if (this.sandboxCreations.get(spec.podUid) === ref) this.sandboxCreations.delete(spec.podUid);
    });
  }

  private async startSandbox(spec: SandboxSpec, created: (ref: SandboxRef) => void): Promise<SandboxStatus> {
    const existing = await this.findSandbox(spec.podUid);
    if (existing !== undefined) {
      if (existing.State !== 'running') {
        created(existing);
        await this.starts.run(false, () => this.docker.getContainer(existing.Id).start());
        return this.sandboxStatus(existing.Id, true);
      }
      created(existing);
      const ip = Object.values(existing.NetworkSettings?.Networks ?? {})[0]?.IPAddress;
      return { id: existing.Id, running: true, ...(ip ? { ip } : {}) };
    }
    await this.ensureBase();
    const container = await this.create({
      name: dockerName(`cox_${spec.namespace}_${spec.name}_sandbox_${shortUid(spec.podUid)}`),
      Image: baseImage,
      Cmd: sandboxCommand,
      Hostname: (spec.hostname ?? spec.name).slice(0, 63),
      Labels: {
        [L.podUid]: spec.podUid,
        [L.podName]: spec.name,
        [L.podNamespace]: spec.namespace,
        [L.node]: this.node,
        [L.role]: 'sandbox',
      },
      HostConfig: {
        RestartPolicy: { Name: 'no' },
        Init: false,
        // App containers join this network namespace and share its resolv.conf.
        ...(spec.dns !== undefined
          ? { Dns: spec.dns.nameservers, DnsSearch: spec.dns.searches, DnsOptions: spec.dns.options }
          : {}),
      },
    });
    const ref = { id: container.id, name: spec.name, namespace: spec.namespace };
    remember(this.sandboxes, spec.podUid, ref, sandboxesMax);
    created(ref);
    await this.starts.run(false, () => container.start());
    return this.sandboxStatus(container.id, true);
  }

  async startContainer(podUid: string, spec: ContainerSpec): Promise<ContainerStatus> {
    return this.startCreated(await this.createContainer(podUid, spec));
  }

  async startCreated(id: string): Promise<ContainerStatus> {
    // Completes a pod (its sandbox runs): ahead of sandboxes waiting to start.
    await this.starts.run(true, () => this.docker.getContainer(id).start());
    return this.inspect(id);
  }

  async createContainer(podUid: string, spec: ContainerSpec): Promise<string> {
    const sandbox =
      (await this.sandboxCreations.get(podUid)) ??
      this.sandboxes.get(podUid) ??
      (await this.findSandbox(podUid));
    if (sandbox === undefined) throw new Error(`pod ${podUid}: no sandbox on node ${this.node}`);
    const mounts: Docker.MountSettings[] = (spec.mounts ?? []).map((m) =>
      m.tmpfsBytes !== undefined
        ? {
            Type: 'tmpfs',
            Source: '',
            Target: m.containerPath,
            TmpfsOptions: { SizeBytes: m.tmpfsBytes, Mode: 0o1777 },
            ReadOnly: m.readOnly ?? false,
          }
        : { Type: 'bind', Source: m.hostPath ?? '', Target: m.containerPath, ReadOnly: m.readOnly ?? false },
    );
    const container = await this.create({
      name: dockerName(
        `cox_${sandbox.namespace}_${sandbox.name}_${spec.name}_${spec.restartCount}_${shortUid(podUid)}`,
      ),
      Image: spec.image,
      ...(spec.command !== undefined ? { Entrypoint: spec.command } : {}),
      ...(spec.args !== undefined ? { Cmd: spec.args } : {}),
      ...(spec.workingDir !== undefined ? { WorkingDir: spec.workingDir } : {}),
      Env: (spec.env ?? []).map((e) => `${e.name}=${e.value}`),
      Labels: {
        [L.podUid]: podUid,
        [L.podName]: sandbox.name,
        [L.podNamespace]: sandbox.namespace,
        [L.node]: this.node,
        [L.container]: spec.name,
        [L.restartCount]: String(spec.restartCount),
        [L.role]: 'app',
      },
      HostConfig: {
        NetworkMode: `container:${sandbox.id}`,
        RestartPolicy: { Name: 'no' },
        Mounts: mounts,
        ...(spec.memoryBytes !== undefined ? { Memory: spec.memoryBytes, MemorySwap: spec.memoryBytes } : {}),
        ...(spec.cpuMillis !== undefined ? { NanoCpus: spec.cpuMillis * 1_000_000 } : {}),
      },
    });
    return container.id;
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.ceil(graceSeconds)) });
    } catch (err) {
      // 304: already stopped; 404: already gone. Both mean "stopped".
      const status = (err as { statusCode?: number }).statusCode;
      if (status !== 304 && status !== 404) throw err;
    }
  }

  async removeContainer(id: string): Promise<void> {
    this.statuses.delete(id);
    this.died.delete(id);
    try {
      await this.docker.getContainer(id).remove({ force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  async stopSandbox(podUid: string): Promise<void> {
    const sandbox = await this.findSandbox(podUid);
    // Its process exits at once on SIGTERM.
    if (sandbox !== undefined && sandbox.State === 'running') await this.stopContainer(sandbox.Id, 1);
  }

  async removePod(podUid: string, graceSeconds: number): Promise<void> {
    const apps = await this.listContainers({ podUid });
    await Promise.all(apps.map((c) => this.stopContainer(c.id, graceSeconds)));
    await Promise.all(apps.map((c) => this.removeContainer(c.id)));
    this.sandboxes.delete(podUid);
    const sandbox = await this.findSandbox(podUid);
    if (sandbox !== undefined) await this.removeContainer(sandbox.Id);
  }

  /** One engine list; an inspect only for containers whose state changed since the last one. */
  async listContainers(filter: { podUid?: string } = {}): Promise<ContainerStatus[]> {
    const label = [`${L.node}=${this.node}`, `${L.role}=app`];
    if (filter.podUid !== undefined) label.push(`${L.podUid}=${filter.podUid}`);
    const found = await this.docker.listContainers({ all: true, filters: { label } });
    return Promise.all(
      found.map((c) => {
        const known = this.statuses.get(c.Id);
        const unchanged =
          known !== undefined &&
          (known.phase === 'exited' ||
            (known.phase === 'running' && c.State === 'running' && !this.died.has(c.Id)));
        return unchanged ? { ...known } : this.inspect(c.Id);
      }),
    );
  }

  async listPods(): Promise<string[]> {
    const found = await this.docker.listContainers({
      all: true,
      filters: { label: [`${L.node}=${this.node}`, `${L.role}=sandbox`] },
    });
    return found.map((c) => c.Labels[L.podUid]).filter((u): u is string => u !== undefined);
  }

  async inspect(id: string): Promise<ContainerStatus> {
    const info = await this.docker.getContainer(id).inspect();
    const labels = info.Config.Labels ?? {};
    const s = info.State;
    const phase = s.Running
      ? 'running'
      : s.Status === 'created'
        ? 'created'
        : s.Status === 'exited' || s.Status === 'dead'
          ? 'exited'
          : 'unknown';
    const status: ContainerStatus = {
      id: info.Id,
      podUid: labels[L.podUid] ?? '',
      name: labels[L.container] ?? '',
      image: info.Config.Image,
      restartCount: Number(labels[L.restartCount] ?? 0),
      phase,
    };
    if (phase === 'exited') {
      status.exitCode = s.ExitCode;
      status.reason = s.OOMKilled ? 'OOMKilled' : s.ExitCode === 0 ? 'Completed' : 'Error';
      if (s.FinishedAt && !s.FinishedAt.startsWith('0001')) status.finishedAt = s.FinishedAt;
    }
    if (s.StartedAt && !s.StartedAt.startsWith('0001')) status.startedAt = s.StartedAt;
    // The engine stamps StartedAt once the start call returns, which a quick command can outlive:
    // a run never finishes before it started.
    if (status.finishedAt !== undefined && status.startedAt !== undefined) {
      if (Date.parse(status.finishedAt) < Date.parse(status.startedAt)) status.finishedAt = status.startedAt;
    }
    if (labels[L.role] === 'app') remember(this.statuses, status.id, { ...status }, containerStatusesMax);
    return status;
  }

  /**
   * Reads through the engine's log driver (json-file here), so logs of exited containers stay
   * readable until the container is removed. A follow stream ends when the container exits.
   */
  async *logs(id: string, opts: LogOptions = {}): AsyncGenerator<LogChunk> {
    let tty: boolean;
    try {
      tty = (await this.docker.getContainer(id).inspect()).Config.Tty;
    } catch (err) {
      throw new Error(`logs of container ${id}: ${engineMessage(err)}`);
    }
    const query: Record<string, string | number | boolean> = {
      stdout: true,
      stderr: true,
      follow: opts.follow ?? false,
      timestamps: opts.timestamps ?? false,
    };
    if (opts.tailLines !== undefined) query.tail = Math.max(0, Math.floor(opts.tailLines));
    if (opts.sinceTime !== undefined) {
      const since = engineTimestamp(opts.sinceTime);
      if (since === undefined)
        throw new Error(`logs of container ${id}: sinceTime "${opts.sinceTime}" is not an RFC 3339 time`);
      query.since = since;
    }
    const response = await this.dialStream(
      `/containers/${id}/logs?`,
      'GET',
      query,
      `logs of container ${id}`,
    );
    yield* demultiplex(response, tty).chunks;
  }

  /**
   * Runs a command over a hijacked connection. The engine cannot kill an exec: `kill()` closes
   * the connection, which ends a tty command (SIGHUP) or one reading stdin (EOF); others run on
   * until they exit by themselves, and `exitCode` then reports 137. `exitCode` resolves once the
   * engine closed the stream (the command exited) and its output went into the session's buffer
   * (`outputBufferChunksMax` chunks): read `output` to let a chatty command's exit code through.
   */
  async exec(id: string, opts: ExecOptions): Promise<ExecSession> {
    const tty = opts.tty ?? false;
    const stdin = opts.stdin ?? false;
    const what = `exec ${JSON.stringify(opts.command)} in container ${id}`;
    let exec: Docker.Exec;
    let socket: Duplex;
    try {
      exec = await this.docker.getContainer(id).exec({
        Cmd: opts.command,
        AttachStdin: stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: tty,
      });
      socket = await exec.start({ hijack: true, stdin, Tty: tty });
    } catch (err) {
      throw new Error(`${what}: ${engineMessage(err)}`);
    }
    let killed = false;
    let wantedSize: { w: number; h: number } | undefined;
    let resizing = false;
    const { chunks: output, stop } = demultiplex(socket, tty);
    const drained = new Promise<void>((resolve) => {
      finished(socket, { writable: false }, () => resolve());
    });
    const exitCode = (async () => {
      await drained;
      return this.execExitCode(exec, what, () => killed);
    })();
    exitCode.catch(() => {}); // callers that await it see the rejection; unobserved, it is not a crash
    return {
      output,
      exitCode,
      write(data: Uint8Array): void {
        if (!stdin) throw new Error(`${what}: stdin is not open (start the session with stdin: true)`);
        socket.write(data);
      },
      end(): void {
        if (stdin) socket.end();
      },
      ...(tty
        ? {
            resize(cols: number, rows: number): void {
              // One resize call at a time, the newest size last: two calls in flight at once may
              // reach the engine out of order and leave the older size.
              wantedSize = { w: cols, h: rows };
              if (resizing) return;
              resizing = true;
              void (async () => {
                while (wantedSize !== undefined) {
                  const size = wantedSize;
                  wantedSize = undefined;
                  await exec.resize(size).catch(() => {}); // a resize racing the exit is harmless
                }
                resizing = false;
              })();
            },
          }
        : {}),
      kill(): void {
        killed = true;
        stop();
      },
    };
  }

  /**
   * Cumulative CPU time and memory in use, as kubelet counts it: usage minus the inactive file
   * cache (`total_inactive_file` on cgroup v1, `inactive_file` on v2), which the kernel can reclaim.
   */
  async stats(id: string): Promise<ContainerStats> {
    let s: Docker.ContainerStats;
    try {
      s = await this.docker.getContainer(id).stats({ stream: false, 'one-shot': true });
    } catch (err) {
      throw new Error(`stats of container ${id}: ${engineMessage(err)}`);
    }
    if (s.read === undefined || s.read.startsWith('0001'))
      throw new Error(`stats of container ${id}: not running`);
    const memory = s.memory_stats as { usage?: number; stats?: Record<string, number | undefined> };
    const usage = memory.usage ?? 0;
    const inactive = memory.stats?.total_inactive_file ?? memory.stats?.inactive_file ?? 0;
    return {
      cpuNanos: s.cpu_stats?.cpu_usage?.total_usage ?? 0,
      memoryBytes: inactive < usage ? usage - inactive : usage,
      timestamp: s.read,
    };
  }

  /**
   * Follows the engine's `die` events of this node's app containers (by label) and reports each
   * one's pod uid. The stream is reopened after a failure (the engine restarted); exits missed
   * meanwhile are found by the pod actors' resync.
   */
  events(onExit: (podUid: string) => void): () => void {
    let closed = false;
    const abort = new AbortController();
    const follow = async (): Promise<void> => {
      const stream = (await this.docker.getEvents({
        filters: { type: ['container'], event: ['die'], label: [`${L.node}=${this.node}`, `${L.role}=app`] },
        abortSignal: abort.signal,
      } as Docker.GetEventsOptions)) as unknown as Readable;
      let pending = '';
      for await (const chunk of stream) {
        pending += String(chunk);
        if (pending.length > eventLineBytesMax) throw new Error('docker events: line too long');
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
          if (line === '') continue;
          const event = JSON.parse(line) as { Actor?: { ID?: string; Attributes?: Record<string, string> } };
          // The engine reports `die` before its container list shows the exit: from now on a
          // remembered `running` must not stand in for an inspect.
          if (event.Actor?.ID !== undefined) remember(this.died, event.Actor.ID, true, containerStatusesMax);
          const uid = event.Actor?.Attributes?.[L.podUid];
          if (uid !== undefined) onExit(uid);
        }
      }
    };
    void (async () => {
      while (!closed) {
        try {
          await follow();
        } catch {
          // The engine went away or the stream broke: reopen below.
        }
        if (!closed) await new Promise((r) => setTimeout(r, eventsReconnectMs));
      }
    })();
    return () => {
      closed = true;
      abort.abort();
    };
  }

  /** Polls the exec until the engine has recorded its exit (it may lag the end of the stream). */
  private async execExitCode(exec: Docker.Exec, what: string, killed: () => boolean): Promise<number> {
    const deadline = Date.now() + execExitWaitMs;
    for (;;) {
      const info = await exec.inspect();
      if (!info.Running && info.ExitCode !== null) return info.ExitCode;
      if (killed()) return killedExitCode;
      if (Date.now() > deadline)
        throw new Error(`${what}: stream ended but no exit code within ${execExitWaitMs} ms`);
      await new Promise((r) => setTimeout(r, execExitPollMs));
    }
  }

  /** An engine request answered with a stream (dockerode buffers non-follow logs whole). */
  private dialStream(
    path: string,
    method: string,
    query: Record<string, string | number | boolean>,
    what: string,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) =>
      this.docker.modem.dial(
        {
          path,
          method,
          isStream: true,
          statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
          options: query,
        },
        (err, result) =>
          err ? reject(new Error(`${what}: ${engineMessage(err)}`)) : resolve(result as IncomingMessage),
      ),
    );
  }

  /** The pod's sandbox as the engine lists it (remembered for starting its containers). */
  private async findSandbox(podUid: string): Promise<(Docker.ContainerInfo & SandboxRef) | undefined> {
    const found = await this.docker.listContainers({
      all: true,
      filters: { label: [`${L.node}=${this.node}`, `${L.role}=sandbox`, `${L.podUid}=${podUid}`] },
    });
    const info = found[0];
    if (info === undefined) return undefined;
    const ref = {
      id: info.Id,
      name: info.Labels[L.podName] ?? '',
      namespace: info.Labels[L.podNamespace] ?? '',
    };
    remember(this.sandboxes, podUid, ref, sandboxesMax);
    return { ...info, ...ref };
  }

  /** Builds the base image unless this runtime has seen it already. */
  private async ensureBase(): Promise<void> {
    if (this.baseImageReady) return;
    await ensureBaseImage(this.docker);
    this.baseImageReady = true;
  }

  /** Creates a container; an image gone since (the base image removed) is looked for again next time. */
  private async create(options: Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await this.docker.createContainer(options);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404 && options.Image === baseImage) {
        this.baseImageReady = false;
      }
      throw err;
    }
  }

  /** The sandbox's state and IP; `started`: it was just started, so hairpin mode is set on its port. */
  private async sandboxStatus(id: string, started = false): Promise<SandboxStatus> {
    const info = await this.docker.getContainer(id).inspect();
    // A pod may reach itself through its service (best effort: needs root; see hairpin.ts).
    if (started && info.State.Running && process.getuid?.() === 0) {
      await enableHairpin(info.State.Pid).catch(() => undefined);
    }
    const settings = info.NetworkSettings as {
      IPAddress?: string;
      Networks?: Record<string, { IPAddress?: string }>;
    };
    const ip = settings.IPAddress || Object.values(settings.Networks ?? {})[0]?.IPAddress;
    return { id, running: info.State.Running, ...(ip ? { ip } : {}) };
  }
}
