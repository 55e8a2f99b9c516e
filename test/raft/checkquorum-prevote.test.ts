/** Checklist "CheckQuorum and PreVote", items 32–35 (etcd-io/raft raft_test.go, testdata/*.txt). */
import { describe, expect, it } from 'vitest';
import { msg, Network, newHost, storageWith } from './harness.js';

const V3 = ['1', '2', '3'];
const ET = 10;

/** A random source that always draws the longest timeout, 2*ET - 1 ticks (etcd's setRandomizedElectionTimeout). */
const longestTimeout = () => 0.999;

describe('CheckQuorum and PreVote', () => {
  describe('32 CheckQuorumStepDown', () => {
    function leader() {
      const h = newHost('1', V3, { checkQuorum: true });
      h.node.campaign();
      h.drain();
      h.stepAndDrain(msg('voteResp', '2', '1', 1, { reject: false }));
      expect(h.status()).toMatchObject({ role: 'leader', term: 1 });
      return h;
    }

    it('a leader that hears from no quorum for electionTimeout ticks steps down (TestLeaderStepdownWhenQuorumLost)', () => {
      const h = leader();
      for (let i = 0; i < ET - 1; i++) h.node.tick();
      expect(h.status().role).toBe('leader');
      h.node.tick();
      expect(h.status()).toMatchObject({ role: 'follower', term: 1 });
      expect(h.status().leader).toBeUndefined();
      expect(() => h.node.propose(new Uint8Array([1]))).toThrow();
    });

    it('it stays leader while acks arrive, and steps down one timeout after they stop (…WhenQuorumActive)', () => {
      const h = leader();
      for (let i = 0; i < 3 * ET + 1; i++) {
        h.node.tick();
        h.drain();
        h.stepAndDrain(msg('heartbeatResp', '2', '1', 1));
      }
      expect(h.status()).toMatchObject({ role: 'leader', term: 1 });
      let ticks = 0;
      while (h.status().role === 'leader' && ticks < 3 * ET) {
        h.node.tick();
        h.drain();
        ticks++;
      }
      expect(h.status().role).toBe('follower');
      expect(ticks).toBeGreaterThan(0);
      expect(ticks).toBeLessThanOrEqual(2 * ET); // the last ack counts for at most the current check window
    });

    it('an isolated leader in a network steps down; the others elect a new one', () => {
      const net = new Network(V3, { checkQuorum: true });
      net.campaign('1');
      net.isolate('1');
      // the acks of the election count for the first check window; the second finds none
      net.tick(ET, ['1']);
      expect(net.status('1').role).toBe('leader');
      net.tick(ET, ['1']);
      expect(net.status('1').role).toBe('follower');
      net.tick(4 * ET, ['2', '3']);
      const leaders = net.leaders();
      expect(leaders).toHaveLength(1);
      expect(['2', '3']).toContain(leaders[0]);
    });
  });

  it('33 LeaderStickiness: a node in its lease ignores a higher-term vote request (TestLeaderSupersedingWithCheckQuorum)', () => {
    const net = new Network(V3, { checkQuorum: true, perNode: { '2': { random: longestTimeout } } });
    net.campaign('1');
    expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
    const sentBefore = net.sent.length;
    net.campaign('3');
    expect(net.status('3')).toMatchObject({ role: 'candidate', term: 2 });
    // no term bump and no answer from 2 (in its lease) or from the leader
    expect(net.status('2')).toMatchObject({ role: 'follower', term: 1, leader: '1' });
    expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
    const answers = net.sent.slice(sentBefore).filter((m) => m.type === 'voteResp');
    expect(answers).toEqual([]);
    expect(net.storage('2').initialState().hardState).toMatchObject({ term: 1, vote: '1' });
    // let 2's lease expire (its own timeout is 19 ticks, so it does not campaign itself)
    net.tick(ET, ['2']);
    expect(net.status('2')).toMatchObject({ role: 'follower', term: 1 });
    net.campaign('3');
    expect(net.status('3')).toMatchObject({ role: 'leader', term: 3 });
    expect(net.status('1')).toMatchObject({ role: 'follower', term: 3, leader: '3' });
  });

  describe('34 PreVoteNoDisrupt', () => {
    it('a rejoining partitioned node stays a pre-candidate at its old term; the leader keeps term 2 (TestDisruptiveFollowerPreVote)', () => {
      const term1 = () => ({ storage: storageWith([], { term: 1 }) });
      const net = new Network(V3, {
        checkQuorum: true,
        preVote: true,
        perNode: { '1': term1(), '2': term1(), '3': term1() },
      });
      net.campaign('1');
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 2 });
      net.isolate('3');
      for (let i = 0; i < 3; i++) net.propose('1');
      net.recover();
      net.campaign('3');
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 2 });
      expect(net.status('2')).toMatchObject({ role: 'follower', term: 2 });
      expect(net.status('3')).toMatchObject({ role: 'precandidate', term: 2 });
      // a delayed leader heartbeat does not force the leader down
      net.send(msg('heartbeat', '1', '3', 2, { commit: 1 }));
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 2 });
      expect(net.status('3')).toMatchObject({ role: 'follower', term: 2, leader: '1' });
      expect(net.sent.filter((m) => m.type === 'vote' && m.from === '3')).toEqual([]);
    });

    it('a node behind on its log gets no pre-votes and its term does not rise (testdata/prevote.txt)', () => {
      const net = new Network(V3, { preVote: true });
      net.campaign('1');
      net.isolate('3');
      net.propose('1');
      net.recover();
      const sentBefore = net.sent.length;
      net.campaign('3');
      const answers = net.sent.slice(sentBefore).filter((m) => m.type === 'preVoteResp');
      expect(answers.map((m) => [m.from, m.reject]).sort()).toEqual([
        ['1', true],
        ['2', true],
      ]);
      expect(net.status('3')).toMatchObject({ role: 'follower', term: 1 });
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
      expect(net.status('2')).toMatchObject({ role: 'follower', term: 1 });
    });

    it('dueling pre-candidates: the up-to-date one wins, the other never bumps a term (TestDuelingPreCandidates)', () => {
      const net = new Network(V3, { preVote: true });
      net.cut('1', '3');
      net.campaign('1');
      net.campaign('3');
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
      // 2 refuses (it voted in term 1) and 3 learns term 1 from the refusal; it never campaigned
      expect(net.status('3')).toMatchObject({ role: 'follower', term: 1 });
      net.recover();
      net.campaign('3'); // 3 lacks the leader's entry: its pre-vote fails
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
      expect(net.status('2')).toMatchObject({ role: 'follower', term: 1 });
      expect(net.status('3')).toMatchObject({ role: 'follower', term: 1 });
      expect(net.sent.filter((m) => m.type === 'vote' && m.from === '3')).toEqual([]);
    });
  });

  describe('35 StuckCandidateFreed (without PreVote)', () => {
    it('the higher-term node forces the leader down on reconnect and wins next (TestFreeStuckCandidateWithCheckQuorum)', () => {
      const net = new Network(V3, { checkQuorum: true });
      net.campaign('1');
      net.isolate('1');
      net.campaign('3');
      expect(net.status('2')).toMatchObject({ role: 'follower', term: 1 });
      expect(net.status('3')).toMatchObject({ role: 'candidate', term: 2 });
      net.campaign('3');
      expect(net.status('2')).toMatchObject({ role: 'follower', term: 1 });
      expect(net.status('3')).toMatchObject({ role: 'candidate', term: 3 });
      net.recover();
      net.send(msg('heartbeat', '1', '3', 1, { commit: 1 }));
      // 3 answers the stale heartbeat with its term: the leader steps down
      expect(net.status('1')).toMatchObject({ role: 'follower', term: 3 });
      expect(net.status('3').term).toBe(3);
      net.campaign('3');
      expect(net.status('3')).toMatchObject({ role: 'leader', term: 4 });
    });

    it('a follower that timed out disrupts the leader through a delayed heartbeat (TestDisruptiveFollower)', () => {
      const term1 = () => ({ storage: storageWith([], { term: 1 }) });
      const net = new Network(V3, {
        checkQuorum: true,
        perNode: { '1': term1(), '2': term1(), '3': term1() },
      });
      net.campaign('1');
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 2 });
      // 3's timer fires before the leader's messages reach it; its vote requests stay queued
      const n3 = net.host('3');
      for (let i = 0; i < 2 * ET && n3.status().role === 'follower'; i++) {
        n3.node.tick();
        n3.drain();
      }
      expect(net.status('1')).toMatchObject({ role: 'leader', term: 2 });
      expect(net.status('2')).toMatchObject({ role: 'follower', term: 2 });
      expect(net.status('3')).toMatchObject({ role: 'candidate', term: 3 });
      net.send(msg('heartbeat', '1', '3', 2, { commit: 1 }));
      expect(net.status('1')).toMatchObject({ role: 'follower', term: 3 });
      expect(net.status('2')).toMatchObject({ role: 'follower', term: 2 });
      expect(net.status('3')).toMatchObject({ role: 'candidate', term: 3 });
    });
  });
});
