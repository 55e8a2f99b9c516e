/**
 * The container runtime port of a node agent: what a pod actor asks of the machine. One
 * interface, three drivers (docker, process, hollow) and one conformance suite. A pod is a
 * sandbox (the network namespace and hostname its containers share) plus app containers joined
 * to it. Every container carries labels naming its pod uid, container name, restart count and
 * node, so an agent restarted with `kill -9` finds (adopts) what it started instead of starting
 * it twice.
 */

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/** Labels every runtime object carries (the adoption contract). */
export const runtimeLabels = {
  podUid: 'io.coxswain.pod.uid',
  podName: 'io.coxswain.pod.name',
  podNamespace: 'io.coxswain.pod.namespace',
  node: 'io.coxswain.node',
  container: 'io.coxswain.container.name',
  restartCount: 'io.coxswain.container.restart-count',
  /** 'sandbox' or 'app'. */
  role: 'io.coxswain.role',
} as const;

export interface SandboxSpec {
  podUid: string;
  namespace: string;
  name: string;
  node: string;
  /** Default: the pod's name. */
  hostname?: string;
  /** The pod's resolv.conf (dnsPolicy); absent: the runtime's default (the node's resolver). */
  dns?: { nameservers: string[]; searches: string[]; options: string[] };
}

export interface SandboxStatus {
  id: string;
  /** The pod's IP (absent for runtimes without their own network namespace). */
  ip?: string;
  running: boolean;
}

export interface MountSpec {
  containerPath: string;
  /** A host directory (hostPath, emptyDir, configMap and secret volumes materialized by the agent). */
  hostPath?: string;
  /** A tmpfs of this many bytes instead (emptyDir `medium: Memory`, secrets). */
  tmpfsBytes?: number;
  readOnly?: boolean;
}

export interface ContainerSpec {
  name: string;
  image: string;
  /** Replaces the image's entrypoint (Kubernetes `command`). */
  command?: string[];
  /** Replaces the image's cmd (Kubernetes `args`). */
  args?: string[];
  workingDir?: string;
  /** In order; later entries may refer to earlier ones as the pod spec allows. */
  env?: { name: string; value: string }[];
  mounts?: MountSpec[];
  /** Hard memory limit. */
  memoryBytes?: number;
  /** CPU limit in millicores. */
  cpuMillis?: number;
  /** Which start of this container this is (0 for the first); recorded as a label. */
  restartCount: number;
}

export type ContainerPhase = 'created' | 'running' | 'exited' | 'unknown';

export interface ContainerStatus {
  id: string;
  podUid: string;
  name: string;
  image: string;
  restartCount: number;
  phase: ContainerPhase;
  exitCode?: number;
  /** `OOMKilled`, `Error`, `Completed`, as Kubernetes reports them. */
  reason?: string;
  startedAt?: string;
  finishedAt?: string;
}

/** The image is neither local nor pullable; `message` is what the engine said. */
export class ImagePullError extends Error {
  override readonly name = 'ImagePullError';
  constructor(
    readonly image: string,
    message: string,
  ) {
    super(`image ${image}: ${message}`);
  }
}

export interface LogOptions {
  /** Keep streaming new output until the stream is closed or the container exits. */
  follow?: boolean;
  /** Only the last N lines (of the output so far). */
  tailLines?: number;
  /** Only output written at or after this time (RFC 3339). */
  sinceTime?: string;
  /** Prefix each line with its RFC 3339 timestamp (nanoseconds where the runtime has them). */
  timestamps?: boolean;
}

/** One chunk of a container's output. */
export interface LogChunk {
  stream: 'stdout' | 'stderr';
  data: Uint8Array;
}

export interface ExecOptions {
  command: string[];
  tty?: boolean;
  /** Keep stdin open: the session's `write` feeds it. */
  stdin?: boolean;
}

/** A running command in a container. Output arrives through `output`; it ends with the exit code. */
export interface ExecSession {
  /** stdout/stderr chunks (one merged `stdout` stream with a tty), in order. */
  output: AsyncIterable<LogChunk>;
  write(data: Uint8Array): void;
  /** Closes stdin (EOF). */
  end(): void;
  resize?(cols: number, rows: number): void;
  /** Resolves with the command's exit code once it has exited and its output was consumed. */
  exitCode: Promise<number>;
  /** Ends the session at once (kills the command where the runtime can). */
  kill(): void;
}

export interface ContainerStats {
  /** Cumulative CPU time used, in nanoseconds. */
  cpuNanos: number;
  memoryBytes: number;
  /** When these were read (RFC 3339). */
  timestamp: string;
}

export interface ContainerRuntime {
  readonly kind: 'docker' | 'process' | 'hollow';
  /** What the Node reports as `containerRuntimeVersion`: `docker://<engine version>`, `process`, `hollow`. */
  version(): Promise<string>;
  /**
   * Makes `image` available (builds the base image on first use); throws ImagePullError.
   * `onPull` is called when the runtime starts to fetch it (not when it has it already): the
   * agent's `Pulling` event, and `Pulled` says "already present" otherwise.
   */
  ensureImage(image: string, policy: PullPolicy, onPull?: () => void): Promise<void>;
  /** Starts the pod's sandbox, or returns the running one of this pod uid (adoption). */
  runSandbox(spec: SandboxSpec): Promise<SandboxStatus>;
  /** Creates and starts an app container joined to the pod's sandbox. */
  startContainer(podUid: string, spec: ContainerSpec): Promise<ContainerStatus>;
  /**
   * Optional, with `startCreated`: creates an app container without starting it, even while the
   * pod's `runSandbox` is still in flight, so creating overlaps the sandbox's start;
   * `startCreated` starts it once the sandbox runs. A container created but never started is
   * in phase `created` (the agent removes such leftovers).
   */
  createContainer?(podUid: string, spec: ContainerSpec): Promise<string>;
  startCreated?(id: string): Promise<ContainerStatus>;
  /** SIGTERM, up to `graceSeconds`, then SIGKILL. Stopping a stopped container is fine. */
  stopContainer(id: string, graceSeconds: number): Promise<void>;
  removeContainer(id: string): Promise<void>;
  /**
   * Optional: stops the pod's sandbox, keeping it and the app containers (their logs and exit
   * codes) until `removePod`; for pods that finished (Succeeded, Failed). Runtimes whose sandbox
   * holds no process have nothing to stop.
   */
  stopSandbox?(podUid: string): Promise<void>;
  /** Stops and removes every container and the sandbox of a pod. */
  removePod(podUid: string, graceSeconds: number): Promise<void>;
  /** App containers of one pod, or of every pod on this node (adoption after a restart). */
  listContainers(filter?: { podUid?: string }): Promise<ContainerStatus[]>;
  /** Pod uids that have a sandbox on this node. */
  listPods(): Promise<string[]>;
  inspect(id: string): Promise<ContainerStatus>;
  /** The container's output. Logs of exited containers stay readable until they are removed. */
  logs(id: string, opts?: LogOptions): AsyncIterable<LogChunk>;
  exec(id: string, opts: ExecOptions): Promise<ExecSession>;
  stats(id: string): Promise<ContainerStats>;
  /**
   * Optional: calls `onExit` with the pod uid whenever an app container of this node exits, so
   * the pod is reconciled at once; returns the unsubscribe. Runtimes without it are seen by the
   * pod actor's periodic resync.
   */
  events?(onExit: (podUid: string) => void): () => void;
}
