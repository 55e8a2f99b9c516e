/**
 * Checklist "Reads", items 29–31, and the ReadIndex points 1–5 of the "Reads" section
 * (etcd-io/raft read_only.go; raft.go stepLeader MsgReadIndex; raft_test.go, node_test.go).
 */
import { describe, expect, it } from 'vitest';
import { RaftConfigError, type RaftMessage, RaftNode } from '../../raft/index.js';
import { dec, enc, ents, type Host, Network, newHost, nodeConfig, storageWith } from './harness.js';

const V3 = ['1', '2', '3'];

const readsOf = (h: Host) => h.readStates.map((r) => ({ index: r.index, ctx: dec(r.ctx) }));

describe('Reads', () => {
  describe('29 ReadIndexSafe', () => {
    it('reads at any node return the leader’s commit index with the caller’s context: 11, 21, …, 61 (TestReadOnlyOptionSafe)', () => {
      const net = new Network(V3);
      net.campaign('1');
      const cases: Array<[string, number, number, string]> = [
        ['1', 10, 11, 'ctx1'],
        ['2', 10, 21, 'ctx2'],
        ['3', 10, 31, 'ctx3'],
        ['1', 10, 41, 'ctx4'],
        ['2', 10, 51, 'ctx5'],
        ['3', 10, 61, 'ctx6'],
      ];
      for (const [id, proposals, wri, wctx] of cases) {
        for (let j = 0; j < proposals; j++) net.propose('1', new Uint8Array(0));
        const before = net.host(id).readStates.length;
        net.node(id).readIndex(enc(wctx));
        net.stabilize();
        const got = net.host(id).readStates.slice(before);
        expect(got.map((r) => ({ index: r.index, ctx: dec(r.ctx) }))).toEqual([{ index: wri, ctx: wctx }]);
        for (const other of V3) {
          if (other !== id) expect(net.host(other).readStates.every((r) => dec(r.ctx) !== wctx)).toBe(true);
        }
      }
    });

    it('the answer waits for a quorum to acknowledge a heartbeat round', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.propose('1');
      const leader = net.host('1');
      leader.node.readIndex(enc('r'));
      const out = leader.drain();
      expect(leader.readStates).toEqual([]);
      const beats = out.filter((m) => m.type === 'heartbeat');
      expect(beats.map((m) => m.to).sort()).toEqual(['2', '3']);
      for (const b of beats) expect(b).toMatchObject({ term: 1, commit: 2, seq: 1 });
      // one follower's ack makes a quorum with the leader's own
      const [ack] = net.host('2').stepAndDrain(beats.find((m) => m.to === '2')!);
      expect(ack).toMatchObject({ type: 'heartbeatResp', seq: 1 });
      leader.stepAndDrain(ack);
      expect(readsOf(leader)).toEqual([{ index: 2, ctx: 'r' }]);
    });

    it('in 5 nodes one follower ack is not enough; the second makes the quorum', () => {
      const net = new Network(['1', '2', '3', '4', '5']);
      net.campaign('1');
      const leader = net.host('1');
      leader.node.readIndex(enc('r5'));
      const beats = leader.drain().filter((m) => m.type === 'heartbeat');
      expect(beats).toHaveLength(4);
      const ackFrom = (id: string) => net.host(id).stepAndDrain(beats.find((m) => m.to === id)!)[0];
      leader.stepAndDrain(ackFrom('2'));
      leader.stepAndDrain(ackFrom('2')); // a duplicate ack is still one voter
      expect(leader.readStates).toEqual([]);
      leader.stepAndDrain(ackFrom('4'));
      expect(readsOf(leader)).toEqual([{ index: 1, ctx: 'r5' }]);
    });

    it('a leader cut off from its quorum never answers (without CheckQuorum it keeps believing it leads)', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.isolate('1');
      net.node('1').readIndex(enc('lost'));
      net.tick(30, ['1']);
      expect(net.status('1').role).toBe('leader');
      expect(net.host('1').readStates).toEqual([]);
    });

    it('an old leader forwards reads it receives to the new leader, keeping the requester (TestNodeReadIndexToOldLeader)', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.node('2').readIndex(enc('testdata'));
      const fwd2 = net.host('2').drain();
      expect(fwd2).toHaveLength(1);
      expect(fwd2[0]).toMatchObject({ type: 'readIndex', from: '2', to: '1' });
      net.node('3').readIndex(enc('testdata'));
      const fwd3 = net.host('3').drain();
      expect(fwd3[0]).toMatchObject({ type: 'readIndex', from: '3', to: '1' });
      net.campaign('3');
      expect(net.status('3')).toMatchObject({ role: 'leader', term: 2 });
      // the delayed requests reach 1, now a follower: it forwards them to 3 on the requesters' behalf
      const again = [...net.host('1').stepAndDrain(fwd2[0]), ...net.host('1').stepAndDrain(fwd3[0])];
      expect(again.map((m) => [m.type, m.from, m.to, dec(m.context!)])).toEqual([
        ['readIndex', '2', '3', 'testdata'],
        ['readIndex', '3', '3', 'testdata'],
      ]);
      net.send(...again);
      expect(readsOf(net.host('2'))).toEqual([{ index: 2, ctx: 'testdata' }]);
      expect(readsOf(net.host('3'))).toEqual([{ index: 2, ctx: 'testdata' }]);
      expect(net.host('1').readStates).toEqual([]);
    });
  });

  describe('30 ReadIndexNewLeader: reads wait until the leader commits an entry of its term (TestReadOnlyForNewLeader)', () => {
    function cluster() {
      return new Network(V3, {
        perNode: {
          '1': { storage: storageWith(ents(1, 1, 1), { term: 1, commit: 1 }), applied: 1 },
          '2': { storage: storageWith(ents(1, 1, 1), { term: 1, commit: 2 }), applied: 2 },
          '3': { storage: storageWith(ents(1, 1, 1), { term: 1, commit: 2 }), applied: 2 },
        },
      });
    }

    it('leader and follower requests are queued, then answered with the new commit index', () => {
      const net = cluster();
      net.ignore('app'); // the new leader cannot commit anything of its term
      net.campaign('1');
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 2, commit: 1, lastIndex: 3 });
      net.node('1').readIndex(enc('ctx'));
      net.stabilize();
      net.tick(3, ['1']); // heartbeat rounds happen (2 learns its leader), still nothing of term 2 commits
      expect(net.status('2').leader).toBe('1');
      net.node('2').readIndex(enc('ctx2'));
      net.stabilize();
      expect(net.host('1').readStates).toEqual([]);
      expect(net.host('2').readStates).toEqual([]);
      net.propose('1', new Uint8Array(0)); // index 4
      net.recover();
      net.tick(1, ['1']);
      expect(net.status('1').commit).toBe(4);
      expect(readsOf(net.host('1'))).toEqual([{ index: 4, ctx: 'ctx' }]);
      expect(readsOf(net.host('2'))).toEqual([{ index: 4, ctx: 'ctx2' }]);
      // now reads are accepted right away (after one heartbeat round)
      net.node('1').readIndex(enc('ctx'));
      net.stabilize();
      expect(readsOf(net.host('1'))).toEqual([
        { index: 4, ctx: 'ctx' },
        { index: 4, ctx: 'ctx' },
      ]);
    });
  });

  describe('31 LeaseNeedsCheckQuorum', () => {
    it('lease-based reads without CheckQuorum are a configuration error', () => {
      const storage = storageWith([]);
      let caught: unknown;
      try {
        new RaftNode(nodeConfig('1', V3, storage, { readOnly: 'lease', checkQuorum: false }));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RaftConfigError);
      expect((caught as RaftConfigError).code).toBe('CONFIG');
      expect(
        () => new RaftNode(nodeConfig('1', V3, storage, { readOnly: 'lease', checkQuorum: true })),
      ).not.toThrow();
    });

    it('lease reads skip the heartbeat round: 11, 21, …, 61 (TestReadOnlyOptionLease)', () => {
      const net = new Network(V3, { readOnly: 'lease', checkQuorum: true });
      net.campaign('1');
      const cases: Array<[string, number, string]> = [
        ['1', 11, 'ctx1'],
        ['2', 21, 'ctx2'],
        ['3', 31, 'ctx3'],
        ['1', 41, 'ctx4'],
        ['2', 51, 'ctx5'],
        ['3', 61, 'ctx6'],
      ];
      for (const [id, wri, wctx] of cases) {
        for (let j = 0; j < 10; j++) net.propose('1', new Uint8Array(0));
        const before = net.host(id).readStates.length;
        const sentBefore = net.sent.length;
        net.node(id).readIndex(enc(wctx));
        net.stabilize();
        expect(readsOf(net.host(id)).slice(before)).toEqual([{ index: wri, ctx: wctx }]);
        expect(net.sent.slice(sentBefore).filter((m) => m.type === 'heartbeat')).toEqual([]);
      }
    });

    it('after a transfer starts, the old leader serves lease reads only through a heartbeat round', () => {
      const net = new Network(V3, { readOnly: 'lease', checkQuorum: true });
      net.campaign('1');
      // Hold back the TimeoutNow so '1' is still leader while the transfer is under way.
      net.ignore('timeoutNow');
      net.node('1').transferLeadership('2');
      net.stabilize();
      expect(net.status('1').role).toBe('leader');
      const sentBefore = net.sent.length;
      net.node('1').readIndex(enc('after-transfer'));
      net.stabilize();
      expect(net.sent.slice(sentBefore).filter((m) => m.type === 'heartbeat')).toHaveLength(2);
      expect(readsOf(net.host('1'))).toEqual([{ index: 1, ctx: 'after-transfer' }]);
    });

    it('by default (safe) every read costs a heartbeat round', () => {
      const net = new Network(V3, { checkQuorum: true });
      net.campaign('1');
      const sentBefore = net.sent.length;
      net.node('1').readIndex(enc('x'));
      net.stabilize();
      expect(net.sent.slice(sentBefore).filter((m) => m.type === 'heartbeat')).toHaveLength(2);
      expect(readsOf(net.host('1'))).toEqual([{ index: 1, ctx: 'x' }]);
    });
  });

  describe('ReadIndex protocol points (read_only.go)', () => {
    it('1–2: a read records the commit index at request time with its context', () => {
      const net = new Network(V3);
      net.campaign('1');
      const leader = net.host('1');
      leader.node.readIndex(enc('a'));
      const beats = leader.drain();
      // commits after the request do not change its read index
      net.propose('1');
      expect(net.status('1').commit).toBe(2);
      for (const b of beats) net.send(b);
      expect(readsOf(leader)).toEqual([{ index: 1, ctx: 'a' }]);
    });

    it('3: heartbeats carry a monotonic round number; an ack confirms every read up to it', () => {
      const net = new Network(V3);
      net.campaign('1');
      const leader = net.host('1');
      leader.node.readIndex(enc('r1'));
      leader.node.readIndex(enc('r1b')); // same round: one set of heartbeats
      const round1 = leader.drain();
      expect(round1.map((m) => [m.type, m.seq])).toEqual([
        ['heartbeat', 1],
        ['heartbeat', 1],
      ]);
      net.propose('1');
      leader.node.readIndex(enc('r2'));
      const round2 = leader.drain();
      expect(round2.map((m) => [m.type, m.seq])).toEqual([
        ['heartbeat', 2],
        ['heartbeat', 2],
      ]);
      // round 1's heartbeats are lost; one ack of round 2 answers every read
      const ack = net.host('3').stepAndDrain(round2.find((m) => m.to === '3')!);
      expect(ack).toMatchObject([{ type: 'heartbeatResp', seq: 2 }]);
      leader.stepAndDrain(ack[0]);
      expect(readsOf(leader)).toEqual([
        { index: 1, ctx: 'r1' },
        { index: 1, ctx: 'r1b' },
        { index: 2, ctx: 'r2' },
      ]);
      // a late ack of round 1 answers nothing twice
      leader.stepAndDrain(net.host('2').stepAndDrain(round1.find((m) => m.to === '2')!)[0]);
      expect(leader.readStates).toHaveLength(3);
    });

    it('3: an ack of an older round does not confirm a newer read', () => {
      const net = new Network(V3);
      net.campaign('1');
      const leader = net.host('1');
      leader.node.readIndex(enc('old'));
      const round1 = leader.drain();
      net.propose('1');
      leader.node.readIndex(enc('new'));
      const round2 = leader.drain();
      leader.stepAndDrain(net.host('2').stepAndDrain(round1.find((m) => m.to === '2')!)[0]);
      expect(readsOf(leader)).toEqual([{ index: 1, ctx: 'old' }]);
      leader.stepAndDrain(net.host('3').stepAndDrain(round2.find((m) => m.to === '3')!)[0]);
      expect(readsOf(leader)).toEqual([
        { index: 1, ctx: 'old' },
        { index: 2, ctx: 'new' },
      ]);
    });

    it('4: a follower gets a readIndexResp and a ReadState with its context', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.node('2').readIndex(enc('f'));
      net.stabilize();
      const resp = net.delivered.filter((m: RaftMessage) => m.type === 'readIndexResp');
      expect(resp).toMatchObject([{ from: '1', to: '2', index: 1 }]);
      expect(readsOf(net.host('2'))).toEqual([{ index: 1, ctx: 'f' }]);
    });

    it('5: the caller reads once applied ≥ readIndex; a single voter answers without messages', () => {
      const h = newHost('1', ['1']);
      h.node.campaign();
      h.drain();
      h.node.propose(enc('v'));
      h.drain();
      expect(h.status()).toMatchObject({ role: 'leader', commit: 2, applied: 2 });
      h.node.readIndex(enc('s'));
      const rd = h.handleReady()!;
      expect(rd.messages).toEqual([]);
      expect(rd.readStates.map((r) => ({ index: r.index, ctx: dec(r.ctx) }))).toEqual([
        { index: 2, ctx: 's' },
      ]);
      expect(h.appliedIndex).toBeGreaterThanOrEqual(rd.readStates[0].index);
    });

    it('5: a restarted single voter does not answer below entries that may have been committed', () => {
      // Entries 1..5 were persisted and committed before the crash, but the commit record
      // (not fsynced: mustSync is false for commit-only changes) only says 3.
      const storage = storageWith(ents(1, 1, 1, 1, 1, 1), { term: 1, vote: '1', commit: 3 });
      const h = newHost('1', ['1'], { storage });
      h.node.campaign();
      h.node.readIndex(enc('after-restart'));
      h.drain();
      expect(h.readStates).toHaveLength(1);
      expect(h.readStates[0].index).toBeGreaterThanOrEqual(5);
      expect(h.appliedIndex).toBeGreaterThanOrEqual(h.readStates[0].index);
    });

    it('a follower without a leader drops the request', () => {
      const h = newHost('2', V3);
      h.node.readIndex(enc('nobody'));
      expect(h.drain()).toEqual([]);
      expect(h.readStates).toEqual([]);
    });

    it('a follower serves the read locally once it has applied the read index', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.isolate('3');
      net.propose('1', enc('w')); // 3 misses it
      net.recover();
      net.node('3').readIndex(enc('q'));
      // deliver only the read traffic, not the append repair: 3 knows the index before it has the entry
      net.filter = (m) => m.type !== 'app';
      net.stabilize();
      const [rs] = net.host('3').readStates;
      expect(rs.index).toBe(2);
      expect(net.host('3').appliedIndex).toBeLessThan(rs.index); // must wait
      net.filter = undefined;
      net.tick(1, ['1']);
      expect(net.host('3').appliedIndex).toBeGreaterThanOrEqual(rs.index);
      expect(dec(net.host('3').applied[1].data)).toBe('w');
    });
  });
});
