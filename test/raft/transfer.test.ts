/** Checklist "Leadership transfer", items 36–38 (etcd-io/raft raft_test.go TestLeaderTransfer*). */
import { describe, expect, it } from 'vitest';
import { ProposalDroppedError } from '../../raft/index.js';
import { enc, Network } from './harness.js';

const V3 = ['1', '2', '3'];
const ET = 10;

describe('Leadership transfer', () => {
  describe('36 TransferUpToDate', () => {
    for (const opts of [{}, { checkQuorum: true }, { checkQuorum: true, preVote: true }]) {
      it(`TimeoutNow makes an up-to-date target win at once ${JSON.stringify(opts)} (TestLeaderTransferToUpToDateNode…)`, () => {
        const net = new Network(V3, opts);
        net.campaign('1');
        expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
        const before = net.sent.length;
        net.node('1').transferLeadership('2');
        net.stabilize();
        expect(net.status('2')).toMatchObject({ role: 'leader', term: 2 });
        expect(net.status('1')).toMatchObject({ role: 'follower', term: 2, leader: '2' });
        const sent = net.sent.slice(before);
        expect(sent.filter((m) => m.type === 'timeoutNow')).toMatchObject([{ from: '1', to: '2', term: 1 }]);
        // the campaign skips PreVote and carries the transfer flag, which breaks 3's lease
        expect(sent.filter((m) => m.from === '2' && m.type === 'preVote')).toEqual([]);
        const votes = sent.filter((m) => m.from === '2' && m.type === 'vote');
        expect(votes.map((m) => m.to).sort()).toEqual(['1', '3']);
        for (const v of votes) expect(v.transfer).toBe(true);

        // after some replication, a follower asks for leadership back: the request is forwarded
        net.propose('2');
        net.node('1').transferLeadership('1');
        net.stabilize();
        expect(net.status('1')).toMatchObject({ role: 'leader', term: 3 });
        expect(net.status('2')).toMatchObject({ role: 'follower', term: 3, leader: '1' });
        expect(net.sent.some((m) => m.type === 'transferLeader' && m.from === '1' && m.to === '2')).toBe(
          true,
        );
      });
    }
  });

  describe('37 TransferLagging', () => {
    it('the leader catches a slow target up by append, then sends TimeoutNow (TestLeaderTransferToSlowFollower)', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.isolate('3');
      net.propose('1');
      net.recover();
      expect(net.status('3').lastIndex).toBe(1);
      const before = net.delivered.length;
      net.node('1').transferLeadership('3');
      net.stabilize();
      expect(net.status('3')).toMatchObject({ role: 'leader', term: 2 });
      expect(net.status('1')).toMatchObject({ role: 'follower', term: 2 });
      const seq = net.delivered.slice(before).filter((m) => m.from === '1' || m.from === '3');
      const timeoutAt = seq.findIndex((m) => m.type === 'timeoutNow');
      const caughtUpAt = seq.findIndex(
        (m) => m.type === 'appResp' && m.from === '3' && !m.reject && m.index === 2,
      );
      expect(caughtUpAt).toBeGreaterThanOrEqual(0);
      expect(timeoutAt).toBeGreaterThan(caughtUpAt); // TimeoutNow only once the target has the whole log
      expect(seq.filter((m) => m.type === 'timeoutNow')).toHaveLength(1);
      expect(seq.slice(0, caughtUpAt).some((m) => m.type === 'app' && m.to === '3')).toBe(true);
    });

    it('the leader catches the target up by snapshot first (TestLeaderTransferAfterSnapshot)', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.isolate('3');
      net.propose('1');
      const lead = net.host('1');
      const applied = lead.appliedIndex;
      expect(applied).toBe(2);
      net.storage('1').createSnapshot(applied, enc('state@2'), { voters: V3, learners: [] });
      net.storage('1').compact(applied);
      net.recover();
      const before = net.delivered.length;
      net.node('1').transferLeadership('3');
      net.stabilize();
      const seq = net.delivered.slice(before);
      const snapAt = seq.findIndex((m) => m.type === 'snap' && m.to === '3');
      const timeoutAt = seq.findIndex((m) => m.type === 'timeoutNow');
      expect(snapAt).toBeGreaterThanOrEqual(0);
      expect(timeoutAt).toBeGreaterThan(snapAt);
      expect(net.host('3').restored.map((s) => s.index)).toEqual([2]);
      expect(net.status('3')).toMatchObject({ role: 'leader', term: 2 });
      expect(net.status('1')).toMatchObject({ role: 'follower', term: 2 });
    });
  });

  describe('38 TransferGuards', () => {
    it('proposals are dropped while a transfer is pending (TestLeaderTransferIgnoreProposal)', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.isolate('3');
      net.node('1').transferLeadership('3');
      net.stabilize();
      expect(() => net.node('1').propose(enc('x'))).toThrow(ProposalDroppedError);
      try {
        net.node('1').propose(enc('x'));
      } catch (err) {
        expect((err as ProposalDroppedError).code).toBe('PROPOSAL_DROPPED');
      }
      expect(net.status('1')).toMatchObject({ role: 'leader', lastIndex: 1 });
    });

    it('a transfer aborts after electionTimeout ticks (TestLeaderTransferTimeout)', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.isolate('3');
      net.node('1').transferLeadership('3');
      net.stabilize();
      net.tick(1, ['1']); // one heartbeat timeout
      expect(() => net.node('1').propose(enc('x'))).toThrow(ProposalDroppedError);
      net.tick(ET - 2, ['1']);
      expect(() => net.node('1').propose(enc('x'))).toThrow(ProposalDroppedError);
      net.tick(1, ['1']);
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
      expect(net.propose('1').index).toBe(2);
    });

    it('a transfer to self does nothing (TestLeaderTransferToSelf)', () => {
      const net = new Network(V3);
      net.campaign('1');
      const h = net.host('1');
      h.node.transferLeadership('1');
      expect(h.drain()).toEqual([]);
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
      expect(net.propose('1').index).toBe(2);
    });

    it('a transfer to a non-member does nothing (TestLeaderTransferToNonExistingNode)', () => {
      const net = new Network(V3);
      net.campaign('1');
      const h = net.host('1');
      h.node.transferLeadership('4');
      expect(h.drain()).toEqual([]);
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
      expect(net.propose('1').index).toBe(2);
    });

    it('a second transfer to the same target keeps the first; to another target replaces it', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.isolate('3');
      net.node('1').transferLeadership('3');
      net.stabilize();
      net.tick(ET - 1, ['1']);
      net.node('1').transferLeadership('3'); // not restarted: still aborts at ET
      net.stabilize();
      net.tick(1, ['1']);
      expect(net.propose('1').index).toBe(2);
      net.node('1').transferLeadership('3');
      net.node('1').transferLeadership('2');
      net.stabilize();
      expect(net.status('2')).toMatchObject({ role: 'leader', term: 2 });
    });
  });
});
