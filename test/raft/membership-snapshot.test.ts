/** Checklist "Membership and snapshots", items 39–43 (etcd-io/raft raft_test.go, raft_snap_test.go, confchange/, quorum/). */
import { describe, expect, it } from 'vitest';
import { decodeConfChange, type RaftMessage } from '../../raft/index.js';
import { dec, enc, ents, leaderHost, logOf, msg, Network, newHost, storageWith } from './harness.js';

const V3 = ['1', '2', '3'];
const ET = 10;

/** Ticks leader '1' once and returns what was then delivered to '3'. */
function deliveredTo3AfterLeaderTick(net: Network): RaftMessage[] {
  const before = net.delivered.length;
  net.tick(1, ['1']);
  return net.delivered.slice(before).filter((m) => m.to === '3');
}

describe('Membership and snapshots', () => {
  describe('39 OnePendingConfChange', () => {
    it('a second change before the first is applied becomes an empty entry (TestStepIgnoreConfig)', () => {
      const h = leaderHost(['1', '2']); // 2 never answers: nothing commits
      const first = h.node.proposeConfChange({ type: 'addVoter', node: '3' });
      expect(first).toEqual({ index: 2, term: 1 });
      const second = h.node.proposeConfChange({ type: 'addVoter', node: '4' });
      expect(second).toEqual({ index: 3, term: 1, dropped: true });
      h.drain();
      const [e2, e3] = h.storage.entries(2, 4);
      expect(e2.type).toBe('conf');
      expect(decodeConfChange(e2.data)).toEqual({ type: 'addVoter', node: '3' });
      expect(e3).toMatchObject({ index: 3, term: 1, type: 'normal' });
      expect(e3.data.byteLength).toBe(0);
    });

    it('once the pending change is applied, the next change is accepted', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.node('1').proposeConfChange({ type: 'addLearner', node: '4' });
      expect(net.node('1').proposeConfChange({ type: 'addLearner', node: '5' }).dropped).toBe(true);
      net.stabilize();
      expect(net.status('1').learners).toEqual(['4']);
      const r = net.node('1').proposeConfChange({ type: 'addLearner', node: '5' });
      expect(r.dropped).toBeUndefined();
      net.stabilize();
      expect(net.status('1').learners).toEqual(['4', '5']);
    });

    it('a new leader treats its whole log as possibly holding a change (TestNewLeaderPendingConfig)', () => {
      // empty log: pendingConfIndex 0, a change is accepted at once
      const fresh = leaderHost(['1', '2']);
      expect(fresh.node.proposeConfChange({ type: 'addLearner', node: '3' }).dropped).toBeUndefined();
      // an uncommitted entry at index 1: pendingConfIndex = 1, so a change waits until it is applied
      const withEntry = leaderHost(['1', '2'], { storage: storageWith(ents(1, 1), { term: 1 }) });
      expect(withEntry.status()).toMatchObject({ term: 2, lastIndex: 2, applied: 0 });
      expect(withEntry.node.proposeConfChange({ type: 'addLearner', node: '3' }).dropped).toBe(true);
    });
  });

  it('40 QuorumShrink: after removing node 2 of 2 and applying it, a pending entry commits (TestCommitAfterRemoveNode)', () => {
    const h = leaderHost(['1', '2'], { electionTicks: 5 });
    h.node.proposeConfChange({ type: 'removeNode', node: '2' });
    h.drain();
    expect(h.applied).toEqual([]);
    const ccIndex = h.status().lastIndex;
    expect(ccIndex).toBe(2);
    h.node.propose(enc('hello'));
    h.drain();
    h.node.step(msg('appResp', '2', '1', 1, { index: ccIndex }));
    const rd = h.handleReady()!;
    expect(rd.committedEntries.map((e) => [e.type, e.data.byteLength])).toEqual([
      ['normal', 0],
      ['conf', rd.committedEntries[1].data.byteLength],
    ]);
    expect(h.status().voters).toEqual(['1']); // applied (advanced): the quorum is now 1
    const rd2 = h.handleReady()!;
    expect(rd2.committedEntries.map((e) => [e.type, dec(e.data)])).toEqual([['normal', 'hello']]);
  });

  describe('41 SimpleVsJoint (single-server changes only: the contract has no joint configurations)', () => {
    it('each change alters one member; commit then needs a majority of the new voter set', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.node('1').proposeConfChange({ type: 'addVoter', node: '4' }); // 4 never comes up
      net.stabilize();
      for (const id of V3) expect(net.status(id).voters).toEqual(['1', '2', '3', '4']);
      // with 4 voters, 1 and 2 are not a majority
      net.isolate('3');
      const { index } = net.propose('1');
      net.tick(3, ['1']);
      expect(net.status('1').commit).toBe(index - 1);
      net.recover();
      net.tick(1, ['1']);
      expect(net.status('1').commit).toBe(index);
    });

    it('an election needs a majority of the new voter set', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.node('1').proposeConfChange({ type: 'addVoter', node: '4' });
      net.stabilize();
      net.isolate('3');
      net.campaign('2'); // 2 gets 1's vote: 2 of 4
      expect(net.status('2')).toMatchObject({ role: 'candidate', term: 2 });
      net.recover();
      net.campaign('2'); // now 1 and 3 answer: 3 of 4
      expect(net.status('2')).toMatchObject({ role: 'leader', term: 3 });
    });

    it('a removed voter no longer counts, and the last voter cannot be removed', () => {
      const net = new Network(V3);
      net.campaign('1');
      net.node('1').proposeConfChange({ type: 'removeNode', node: '3' });
      net.stabilize();
      expect(net.status('1').voters).toEqual(['1', '2']);
      net.isolate('2');
      const { index } = net.propose('1', enc('needs 2'));
      net.tick(3, ['1']);
      expect(net.status('1').commit).toBeLessThan(index); // 3's acks would not count anyway
      net.recover();
      net.tick(1, ['1']);
      expect(net.status('1').commit).toBe(index);

      const solo = new Network(['1']);
      solo.campaign('1');
      solo.node('1').proposeConfChange({ type: 'removeNode', node: '1' });
      solo.stabilize();
      expect(solo.status('1')).toMatchObject({ role: 'leader', voters: ['1'] });
    });
  });

  describe('42 Learners', () => {
    it('a learner never campaigns on timeout (TestLearnerElectionTimeout)', () => {
      const h = newHost('2', ['1'], { learners: ['2'] });
      for (let i = 0; i < 4 * ET; i++) h.node.tick();
      expect(h.drain()).toEqual([]);
      expect(h.status()).toMatchObject({ role: 'follower', term: 0, voters: ['1'], learners: ['2'] });
    });

    it('a learner ignores campaign() and TimeoutNow; a leader will not transfer to it (TestLearnerCampaign)', () => {
      const net = new Network(['1', '2'], { voters: ['1'], learners: ['2'] });
      net.campaign('2');
      expect(net.status('2')).toMatchObject({ role: 'follower', term: 0 });
      net.campaign('1');
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
      net.send(msg('timeoutNow', '1', '2', 1));
      expect(net.status('2')).toMatchObject({ role: 'follower', term: 1, leader: '1' });
      const before = net.sent.length;
      net.node('1').transferLeadership('2');
      net.stabilize();
      expect(net.sent.slice(before).filter((m) => m.type === 'timeoutNow')).toEqual([]);
      expect(net.status('1').role).toBe('leader');
      expect(net.propose('1').index).toBe(2); // no transfer pending
    });

    it('a learner replicates the log and commit (TestLearnerLogReplication)', () => {
      const net = new Network(['1', '2'], { voters: ['1'], learners: ['2'] });
      net.campaign('1');
      net.tick(1, ['1']);
      const { index } = net.propose('1', enc('somedata'));
      net.tick(1, ['1']);
      expect(net.status('1').commit).toBe(index);
      expect(net.status('2').commit).toBe(index);
      expect(logOf(net.storage('2'))).toEqual(logOf(net.storage('1')));
      expect(dec(net.host('2').applied[index - 1].data)).toBe('somedata');
    });

    it('learners never count toward the quorum', () => {
      const net = new Network(['1', '2', '3'], { voters: ['1', '2'], learners: ['3'] });
      net.campaign('1');
      expect(net.status('1')).toMatchObject({ role: 'leader', commit: 1 });
      net.isolate('2');
      const { index } = net.propose('1');
      net.tick(3, ['1']);
      expect(net.status('3').lastIndex).toBe(index); // the learner has it
      expect(net.status('1').commit).toBe(index - 1); // but it does not count
      // a learner's vote request is never sent, nor counted
      expect(net.sent.filter((m) => m.type === 'vote' && m.to === '3')).toEqual([]);
    });

    it('a learner promoted to voter catches up first and can then be elected', () => {
      const net = new Network(V3, { voters: ['1', '2'], learners: ['3'] });
      net.campaign('1');
      for (let i = 0; i < 5; i++) net.propose('1');
      net.node('1').proposeConfChange({ type: 'addVoter', node: '3' });
      net.stabilize();
      expect(net.status('3')).toMatchObject({ voters: ['1', '2', '3'], learners: [] });
      net.campaign('3');
      expect(net.status('3')).toMatchObject({ role: 'leader', term: 2 });
    });
  });

  describe('43 SnapshotCatchUp', () => {
    /** Leader 1 of 3; 3 is isolated while `n` entries commit; the leader snapshots and compacts. */
    function laggingFollower(n: number, opts: { maxSizePerMsg?: number; tail?: number } = {}) {
      const net = new Network(V3, { maxSizePerMsg: opts.maxSizePerMsg });
      net.campaign('1');
      net.isolate('3');
      for (let i = 0; i < n; i++) net.propose('1', new Uint8Array(0));
      const lead = net.host('1');
      const snapIndex = lead.appliedIndex;
      net.storage('1').createSnapshot(snapIndex, new Uint8Array(5000).fill(7), { voters: V3, learners: [] });
      net.storage('1').compact(snapIndex);
      for (let i = 0; i < (opts.tail ?? 0); i++) net.propose('1', enc(`tail${i}`));
      return { net, snapIndex };
    }

    it('a follower behind the first index gets the snapshot and reaches the commit (TestProvideSnap, TestSlowNodeRestore)', () => {
      const { net, snapIndex } = laggingFollower(100);
      expect(snapIndex).toBe(101);
      net.recover();
      const to3 = deliveredTo3AfterLeaderTick(net);
      // the leader learns from a rejected probe that 3 needs entries it no longer has
      const snapAt = to3.findIndex((m) => m.type === 'snap');
      expect(snapAt).toBeGreaterThanOrEqual(0);
      expect(to3[snapAt].snapshot).toMatchObject({ index: snapIndex, term: 1, offset: 0 });
      for (const m of to3.slice(0, snapAt)) expect(m.entries ?? []).toEqual([]);
      net.propose('1'); // trigger a commit
      expect(net.status('3').commit).toBe(net.status('1').commit);
      expect(net.host('3').restored.map((s) => [s.index, s.data.byteLength])).toEqual([[snapIndex, 5000]]);
      expect(net.storage('3').firstIndex()).toBe(snapIndex + 1);
      // applying resumes right after the snapshot
      expect(net.host('3').applied.map((e) => e.index)).toEqual([1, snapIndex + 1]);
    });

    it('a large snapshot travels in chunks of maxSizePerMsg, acknowledged by offset', () => {
      const { net, snapIndex } = laggingFollower(3, { maxSizePerMsg: 1000 });
      net.recover();
      const before = net.delivered.length;
      net.tick(1, ['1']);
      const chunks = net.delivered.slice(before).filter((m) => m.type === 'snap');
      expect(chunks.map((m) => [m.snapshot!.offset, m.snapshot!.data.byteLength, m.snapshot!.done])).toEqual([
        [0, 1000, false],
        [1000, 1000, false],
        [2000, 1000, false],
        [3000, 1000, false],
        [4000, 1000, true],
      ]);
      const acks = net.delivered.slice(before).filter((m) => m.type === 'snapResp');
      expect(acks.map((m) => m.offset)).toEqual([1000, 2000, 3000, 4000]);
      expect(net.storage('3').snapshot().index).toBe(snapIndex);
      expect(net.storage('3').snapshot().data).toEqual(new Uint8Array(5000).fill(7));
    });

    it('a failed transfer is retried with the same snapshot from the last acknowledged offset (TestSnapshotFailure)', () => {
      const { net, snapIndex } = laggingFollower(3, { maxSizePerMsg: 1000 });
      net.recover();
      // the first chunk arrives; everything after it is lost
      let passed = 0;
      net.filter = (m) => m.type !== 'snap' || passed++ < 1;
      const before = net.delivered.length;
      net.tick(1, ['1']);
      expect(net.storage('3').snapshot().index).toBe(0);
      net.filter = undefined;
      // nothing moves until the transfer has been idle for an election timeout
      net.tick(ET - 2, ['1']);
      expect(net.storage('3').snapshot().index).toBe(0);
      net.tick(2, ['1']);
      expect(net.storage('3').snapshot().index).toBe(snapIndex);
      const resent = net.delivered.slice(before).filter((m) => m.type === 'snap');
      expect(resent[0].snapshot!.offset).toBe(0);
      expect(resent[1].snapshot!.offset).toBe(1000); // resumed after the acknowledged first chunk
      expect(resent.every((m) => m.snapshot!.index === snapIndex)).toBe(true);
      expect(net.status('3').commit).toBe(snapIndex);
    });

    it('a follower that restarts mid-transfer makes the leader rewind to offset 0', () => {
      const { net, snapIndex } = laggingFollower(3, { maxSizePerMsg: 1000 });
      net.recover();
      let restarted = false;
      net.filter = (m: RaftMessage) => {
        if (!restarted && m.type === 'snap' && m.snapshot!.offset === 2000) {
          net.host('3').restart(); // loses the chunks it held in memory
          restarted = true;
        }
        return true;
      };
      net.tick(1, ['1']);
      net.tick(ET, ['1']);
      expect(restarted).toBe(true);
      expect(net.storage('3').snapshot().index).toBe(snapIndex);
      expect(net.storage('3').snapshot().data).toEqual(new Uint8Array(5000).fill(7));
      expect(net.delivered.some((m) => m.type === 'snapResp' && m.offset === 0)).toBe(true);
    });

    it('success resumes replication at snapIndex + 1 (TestSnapshotSucceed)', () => {
      const { net, snapIndex } = laggingFollower(3, { tail: 2 });
      net.recover();
      const to3 = deliveredTo3AfterLeaderTick(net);
      const snapAt = to3.findIndex((m) => m.type === 'snap');
      expect(snapAt).toBeGreaterThanOrEqual(0);
      const afterSnap = to3.slice(snapAt).filter((m) => m.type === 'app');
      expect(afterSnap.length).toBeGreaterThan(0);
      expect(afterSnap[0]).toMatchObject({ index: snapIndex, logTerm: 1 });
      expect(afterSnap[0].entries?.map((e) => e.index)).toEqual([snapIndex + 1, snapIndex + 2]);
      expect(logOf(net.storage('3'))).toEqual(logOf(net.storage('1')));
      expect(
        net
          .host('3')
          .applied.slice(-2)
          .map((e) => dec(e.data)),
      ).toEqual(['tail0', 'tail1']);
    });

    it('a snapshot at or below commit is ignored but may move commit forward (TestRestoreIgnoreSnapshot)', () => {
      const h = newHost('1', ['1', '2'], { storage: storageWith(ents(1, 1, 1, 1), { term: 1, commit: 1 }) });
      const snap = (index: number): RaftMessage =>
        msg('snap', '2', '1', 1, {
          snapshot: {
            index,
            term: 1,
            voters: ['1', '2'],
            learners: [],
            size: 0,
            offset: 0,
            data: new Uint8Array(0),
            done: true,
          },
        });
      expect(h.stepAndDrain(snap(1))).toMatchObject([{ type: 'appResp', index: 1 }]);
      expect(h.status().commit).toBe(1);
      expect(h.stepAndDrain(snap(2))).toMatchObject([{ type: 'appResp', index: 2 }]);
      expect(h.status().commit).toBe(2);
      expect(h.restored).toEqual([]);
      expect(h.readies.every((rd) => rd.snapshot === undefined)).toBe(true);
      expect(logOf(h.storage)).toEqual([
        [1, 1],
        [2, 1],
        [3, 1],
      ]);
    });
  });
});
