/**
 * The docker driver of the container runtime port (dockerode). A pod's sandbox is a small
 * container of the base image that holds the network namespace and hostname; app containers
 * join it (`NetworkMode: container:<sandbox>`), so they share localhost, as in Kubernetes.
 *
 * Images are never pulled unless `pull` is set: no registry is reachable from this machine, and
 * an agent must not send traffic anywhere it was not told to. A missing image is an
 * ImagePullError naming it.
 */

import Docker from 'dockerode';
import { baseImage, ensureBaseImage, hasImage } from './images.js';
import {
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerStatus,
  ImagePullError,
  runtimeLabels as L,
  type PullPolicy,
  type SandboxSpec,
  type SandboxStatus,
} from './runtime.js';

export interface DockerRuntimeOptions {
  /** This agent's node name: every container is labelled with it, and only its own are listed. */
  node: string;
  docker?: Docker;
  /** Pull images missing locally (needs a reachable registry). Default false. */
  pull?: boolean;
}

/** The sandbox's process: sleeps until told to stop, and stops at once on SIGTERM. */
const sandboxCommand = ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'];

function shortUid(uid: string): string {
  return uid.replace(/-/g, '').slice(0, 8);
}

function dockerName(text: string): string {
  return text.replace(/[^a-zA-Z0-9_.-]/g, '-');
}

export class DockerRuntime implements ContainerRuntime {
  readonly kind = 'docker' as const;
  private readonly docker: Docker;
  private readonly node: string;
  private readonly pull: boolean;

  constructor(opts: DockerRuntimeOptions) {
    this.docker = opts.docker ?? new Docker();
    this.node = opts.node;
    this.pull = opts.pull ?? false;
  }

  async ensureImage(image: string, policy: PullPolicy): Promise<void> {
    if (image === baseImage || image === 'coxswain/busybox') {
      await ensureBaseImage(this.docker);
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
          : 'not present on this node, and this agent does not pull images (build it locally)',
      );
    }
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      throw new ImagePullError(image, err instanceof Error ? err.message : String(err));
    }
  }

  async runSandbox(spec: SandboxSpec): Promise<SandboxStatus> {
    const existing = await this.findSandbox(spec.podUid);
    if (existing !== undefined) {
      const info = await this.docker.getContainer(existing).inspect();
      if (!info.State.Running) await this.docker.getContainer(existing).start();
      return this.sandboxStatus(existing);
    }
    await ensureBaseImage(this.docker);
    const container = await this.docker.createContainer({
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
      HostConfig: { RestartPolicy: { Name: 'no' }, Init: false },
    });
    await container.start();
    return this.sandboxStatus(container.id);
  }

  async startContainer(podUid: string, spec: ContainerSpec): Promise<ContainerStatus> {
    const sandbox = await this.findSandbox(podUid);
    if (sandbox === undefined) throw new Error(`pod ${podUid}: no sandbox on node ${this.node}`);
    const sandboxInfo = await this.docker.getContainer(sandbox).inspect();
    const labels = sandboxInfo.Config.Labels ?? {};
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
    const container = await this.docker.createContainer({
      name: dockerName(
        `cox_${labels[L.podNamespace] ?? ''}_${labels[L.podName] ?? ''}_${spec.name}_${spec.restartCount}_${shortUid(podUid)}`,
      ),
      Image: spec.image,
      ...(spec.command !== undefined ? { Entrypoint: spec.command } : {}),
      ...(spec.args !== undefined ? { Cmd: spec.args } : {}),
      ...(spec.workingDir !== undefined ? { WorkingDir: spec.workingDir } : {}),
      Env: (spec.env ?? []).map((e) => `${e.name}=${e.value}`),
      Labels: {
        [L.podUid]: podUid,
        [L.podName]: labels[L.podName] ?? '',
        [L.podNamespace]: labels[L.podNamespace] ?? '',
        [L.node]: this.node,
        [L.container]: spec.name,
        [L.restartCount]: String(spec.restartCount),
        [L.role]: 'app',
      },
      HostConfig: {
        NetworkMode: `container:${sandbox}`,
        RestartPolicy: { Name: 'no' },
        Mounts: mounts,
        ...(spec.memoryBytes !== undefined ? { Memory: spec.memoryBytes, MemorySwap: spec.memoryBytes } : {}),
        ...(spec.cpuMillis !== undefined ? { NanoCpus: spec.cpuMillis * 1_000_000 } : {}),
      },
    });
    await container.start();
    return this.inspect(container.id);
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
    try {
      await this.docker.getContainer(id).remove({ force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  async removePod(podUid: string, graceSeconds: number): Promise<void> {
    const apps = await this.listContainers({ podUid });
    await Promise.all(apps.map((c) => this.stopContainer(c.id, graceSeconds)));
    await Promise.all(apps.map((c) => this.removeContainer(c.id)));
    const sandbox = await this.findSandbox(podUid);
    if (sandbox !== undefined) await this.removeContainer(sandbox);
  }

  async listContainers(filter: { podUid?: string } = {}): Promise<ContainerStatus[]> {
    const label = [`${L.node}=${this.node}`, `${L.role}=app`];
    if (filter.podUid !== undefined) label.push(`${L.podUid}=${filter.podUid}`);
    const found = await this.docker.listContainers({ all: true, filters: { label } });
    return Promise.all(found.map((c) => this.inspect(c.Id)));
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
    return status;
  }

  private async findSandbox(podUid: string): Promise<string | undefined> {
    const found = await this.docker.listContainers({
      all: true,
      filters: { label: [`${L.node}=${this.node}`, `${L.role}=sandbox`, `${L.podUid}=${podUid}`] },
    });
    return found[0]?.Id;
  }

  private async sandboxStatus(id: string): Promise<SandboxStatus> {
    const info = await this.docker.getContainer(id).inspect();
    const settings = info.NetworkSettings as {
      IPAddress?: string;
      Networks?: Record<string, { IPAddress?: string }>;
    };
    const ip = settings.IPAddress || Object.values(settings.Networks ?? {})[0]?.IPAddress;
    return { id, running: info.State.Running, ...(ip ? { ip } : {}) };
  }
}
