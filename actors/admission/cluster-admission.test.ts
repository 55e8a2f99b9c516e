/**
 * ClusterAdmission against a real ObjectStore and a scripted Raft host: the per-term barrier,
 * claims held from admission until the apply loop settles the record (never counted twice
 * or not at all), released on definite failures, dropped at a new term, and dry runs.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Command } from '../../core/commands.js';
import type { ApiObject } from '../../core/index.js';
import { NotLeaderError } from '../../raft/index.js';
import { ApiError } from '../api.js';
import { type ActorSystem, startActorSystem, stopActorSystem } from '../runtime.js';
import { encodeRecord, ObjectStore } from '../store.js';
import { type AdmissionHost, ClusterAdmission } from './cluster-admission.js';
import { defaultAdmissionPlugins } from './plugins.js';

class FakeHost implements AdmissionHost {
  role = 'leader';
  term = 2;
  barriers = 0;
  private pending: (() => void)[] = [];
  status() {
    return { role: this.role, term: this.term, ...(this.role === 'leader' ? { leader: 'me' } : {}) };
  }
  readIndex(): Promise<number> {
    this.barriers += 1;
    return new Promise((resolve) => this.pending.push(() => resolve(0)));
  }
  /** Lets every waiting barrier pass. */
  pass(): void {
    for (const p of this.pending.splice(0)) p();
  }
}

const ns = (name: string): ApiObject =>
  ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, uid: `ns-${name}` } }) as ApiObject;
const cm = (name: string): ApiObject =>
  ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'q', uid: `cm-${name}` },
  }) as ApiObject;
const quota = (hard: Record<string, string>): ApiObject =>
  ({
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: { name: 'q', namespace: 'q', uid: 'quota' },
    spec: { hard },
  }) as ApiObject;
const create = (object: ApiObject): Command => ({ op: 'create', object });

describe('ClusterAdmission', () => {
  let system: ActorSystem;
  let store: ObjectStore;
  let host: FakeHost;
  let admission: ClusterAdmission;
  let index = 0;

  /** Applies `cmd` as record `id`, as the apply loop does on every master. */
  const apply = (cmd: Command, id: string) => {
    index += 1;
    return store.applyBatch(
      [{ index, term: host.term, type: 'normal', data: encodeRecord({ t: 'cmd', id, cmd }) }],
      index,
    );
  };

  /** Admits on the (already barriered) leader. */
  const admit = async (cmd: Command, id: string) => {
    const p = admission.admit(cmd, id);
    host.pass();
    return p;
  };

  beforeEach(async () => {
    system = startActorSystem({ log: () => {} });
    store = new ObjectStore({ system });
    host = new FakeHost();
    admission = new ClusterAdmission({ store, host, plugins: defaultAdmissionPlugins().plugins });
    index = 0;
    await apply(create(ns('q')), 'ns');
    await apply(create(quota({ configmaps: '2' })), 'quota');
  });
  afterEach(async () => {
    admission.close();
    store.close();
    await stopActorSystem(system);
  });

  it('waits for the barrier once per term before the first check', async () => {
    const pending = admission.admit(create(cm('a')), 'a');
    await new Promise((r) => setTimeout(r, 10));
    expect(host.barriers).toBe(1);
    let done = false;
    void pending.then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(false);
    host.pass();
    await pending;
    await admission.admit(create(cm('b')), 'b');
    expect(host.barriers).toBe(1);
    host.term = 3;
    const third = admission.admit(create(cm('c')), 'c');
    await new Promise((r) => setTimeout(r, 10));
    expect(host.barriers).toBe(2);
    host.pass();
    await third;
  });

  it('holds claims until the record is applied: exactly the quota fits, whatever is in flight', async () => {
    await admit(create(cm('a')), 'a');
    await admit(create(cm('b')), 'b');
    expect(admission.ledger.size).toBe(2);
    const third = await admit(create(cm('c')), 'c').catch((e: unknown) => e);
    expect(third).toBeInstanceOf(ApiError);
    expect((third as ApiError).message).toBe(
      'configmaps "c" is forbidden: exceeded quota: q, requested: configmaps=1, used: configmaps=2, limited: configmaps=2',
    );
    // Applied: the claim goes in the same step the object becomes visible; still full.
    await apply(create(cm('a')), 'a');
    expect(admission.ledger.size).toBe(1);
    expect((await admit(create(cm('c')), 'c2').catch((e: unknown) => e)) instanceof ApiError).toBe(true);
    // A proposal that provably failed gives its claim back.
    const b = await admission.admit(create(cm('b')), 'b');
    b.failed(true);
    expect(admission.ledger.size).toBe(0);
    await admit(create(cm('c')), 'c3');
  });

  it('keeps the claim of a write whose outcome is unknown, and drops every claim at a new term', async () => {
    const a = await admit(create(cm('a')), 'a');
    a.failed(false);
    expect(admission.ledger.size).toBe(1);
    await admit(create(cm('b')), 'b');
    expect((await admit(create(cm('c')), 'c').catch((e: unknown) => e)) instanceof ApiError).toBe(true);
    host.term = 3;
    await admit(create(cm('c')), 'c');
    expect(admission.ledger.size).toBe(1);
  });

  it('refuses with NotLeaderError off the leader, and dry runs hold nothing', async () => {
    host.role = 'follower';
    await expect(admission.admit(create(cm('a')), 'a')).rejects.toBeInstanceOf(NotLeaderError);
    // A dry run works anywhere, against local state.
    expect(admission.check(create(cm('a')))).toEqual(create(cm('a')));
    expect(admission.ledger.size).toBe(0);
    await apply(create(cm('x')), 'x');
    await apply(create(cm('y')), 'y');
    expect(() => admission.check(create(cm('z')))).toThrow(/exceeded quota: q/);
  });

  it('passes writes no plugin looks at straight through, with no barrier', async () => {
    const status: Command = { op: 'updateStatus', object: cm('a') };
    const out = await admission.admit(status, 's');
    expect(out.cmd).toBe(status);
    expect(host.barriers).toBe(0);
    const node: Command = create({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } } as ApiObject);
    expect((await admission.admit(node, 'n')).cmd).toBe(node);
    expect(host.barriers).toBe(0);
  });
});
