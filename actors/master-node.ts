/**
 * Assembles one master from its ports: durable storage, Raft transport, peer link. The real
 * process (`master-process.ts`) passes the file storage, gRPC transport and gRPC peer link;
 * in-process clusters pass memory adapters.
 */

import { randomUUID } from 'node:crypto';
import { type DurableStorage, RaftHost, type RaftHostOptions, type Transport } from '../raft/index.js';
import { ClusterAdmission, defaultAdmissionPlugins } from './admission/index.js';
import type { Controller } from './controllers/controller.js';
import { type ControllerOptions, defaultControllers } from './controllers/index.js';
import { ControllerManager } from './controllers/manager.js';
import { MasterApi, type MasterApiOptions } from './master.js';
import type { PeerLink } from './peers.js';
import { type ActorSystem, startActorSystem, stopActorSystem } from './runtime.js';
import { encodeRecord, type MemberRecord, ObjectStore, type StoreOptions } from './store.js';

export interface MasterNodeOptions {
  id: string;
  storage: DurableStorage;
  transport: Transport;
  peers: PeerLink;
  /** Founding members and their Raft addresses (every founder gets the same map). Empty with `join`. */
  founders: Record<string, string>;
  /** Join a running cluster (started with `cox cluster add` on it) instead of founding one. */
  join?: boolean;
  addresses: { raft: string; api: string; ws: string };
  host?: Partial<
    Pick<
      RaftHostOptions,
      | 'tickMs'
      | 'electionTicks'
      | 'heartbeatTicks'
      | 'snapshotEveryEntries'
      | 'snapshotEveryLogBytes'
      | 'snapshotLogBytesRatio'
      | 'compactionMarginEntries'
      | 'random'
      | 'logger'
      | 'readTimeoutMs'
    >
  >;
  store?: Omit<StoreOptions, 'system' | 'onMembersChanged'>;
  writeTimeoutMs?: number;
  /** How writes that arrive together share Raft entries (MasterApiOptions). */
  writeGroup?: Pick<MasterApiOptions, 'writeGroupLingerMs' | 'writeGroupItemsMax'>;
  nowMs?: () => number;
  /** The controllers run on the leader. Default: every built-in controller and the scheduler. */
  controllers?: readonly Controller[];
  /** Cluster IPs come from here. Default 10.96.0.0/16. */
  serviceCidr?: string;
  /** NodePorts come from here. Default 30000-32767. */
  nodePortRange?: string;
  /** Settings of the built-in controllers (when `controllers` is not given). */
  controllerOptions?: ControllerOptions;
  /** Period of the controllers' tick (delayed keys, resyncs). Default 1,000. */
  controllerTickMs?: number;
}

export class MasterNode {
  readonly id: string;
  readonly system: ActorSystem;
  readonly store: ObjectStore;
  readonly host: RaftHost;
  readonly api: MasterApi;
  /** Leader admission (namespaces, LimitRanges, quotas); its quota usage feeds the quota controller. */
  readonly admission: ClusterAdmission;
  readonly controllers: ControllerManager;
  private readonly opts: MasterNodeOptions;
  private stopped = false;

  constructor(opts: MasterNodeOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.system = startActorSystem({
      log: (line, detail) => console.error(`[master ${opts.id}] ${line}`, detail ?? ''),
    });
    for (const [id, address] of Object.entries(opts.founders)) {
      if (id !== opts.id) opts.peers.setAddress(id, address);
    }
    this.store = new ObjectStore({
      ...opts.store,
      system: this.system,
      onMembersChanged: (members) => this.onMembersChanged(members),
    });
    const voters = opts.join ? [] : Object.keys(opts.founders).sort();
    this.host = new RaftHost({
      id: opts.id,
      voters,
      bootstrap: opts.join ? 'join' : 'initial',
      storage: opts.storage,
      transport: opts.transport,
      stateMachine: this.store,
      // A master's state is every object: re-encoded every 10,000 entries, a cluster of 30,000
      // pods spent most of its CPU on snapshots (the log grows ~10 KB per pod started).
      snapshotLogBytesRatio: 1,
      // Masters apply the same log: without a jitter all three encode and write their whole
      // state at the same index (at 30,000 pods, ~60 MB each), and the commits stall while the
      // leader and both followers do. Each draws its own point, up to half the threshold later.
      snapshotJitter: 0.5,
      ...opts.host,
      onLeaderChange: (leader, term) => {
        if (leader === opts.id) void this.recordFounders();
        this.controllers?.onLeaderChange(leader, term);
      },
    });
    const admissionPlugins = defaultAdmissionPlugins({
      ...(opts.serviceCidr !== undefined ? { serviceCidr: opts.serviceCidr } : {}),
      ...(opts.nodePortRange !== undefined ? { nodePortRange: opts.nodePortRange } : {}),
    });
    this.admission = new ClusterAdmission({
      store: this.store,
      host: this.host,
      plugins: admissionPlugins.plugins,
      ...(opts.nowMs ? { nowMs: opts.nowMs } : {}),
    });
    this.api = new MasterApi({
      admission: this.admission,
      id: opts.id,
      host: this.host,
      store: this.store,
      peers: opts.peers,
      addresses: opts.addresses,
      ...(opts.writeTimeoutMs !== undefined ? { writeTimeoutMs: opts.writeTimeoutMs } : {}),
      ...opts.writeGroup,
      ...(opts.nowMs ? { nowMs: opts.nowMs } : {}),
      // Read at call time: the manager is made just below.
      controllerStatus: () => this.controllers.status(),
    });
    this.controllers = new ControllerManager({
      id: opts.id,
      system: this.system,
      store: this.store,
      api: this.api,
      host: this.host,
      controllers:
        opts.controllers ??
        defaultControllers({ ...opts.controllerOptions, quotaUsage: admissionPlugins.quota }),
      ...(opts.nowMs ? { nowMs: opts.nowMs } : {}),
      ...(opts.controllerTickMs !== undefined ? { tickMs: opts.controllerTickMs } : {}),
    });
  }

  async start(): Promise<void> {
    await this.host.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.controllers.close();
    this.admission.close();
    this.store.close();
    await this.host.stop();
    this.opts.peers.close();
    await stopActorSystem(this.system);
  }

  private onMembersChanged(members: readonly MemberRecord[]): void {
    for (const m of members) {
      if (m.id === this.id) continue;
      this.opts.transport.setPeer(m.id, m.raftAddress);
      this.opts.peers.setAddress(m.id, m.raftAddress);
    }
  }

  /** A new leader writes the founders' addresses into the replicated directory once. */
  private async recordFounders(): Promise<void> {
    const known = new Set(this.store.memberList().map((m) => m.id));
    for (const [id, raftAddress] of Object.entries(this.opts.founders)) {
      if (known.has(id) || this.stopped) continue;
      try {
        await this.host.propose(encodeRecord({ t: 'member', id: randomUUID(), member: { id, raftAddress } }));
      } catch {
        return; // lost leadership or stopping: the next leader does it
      }
    }
  }
}
