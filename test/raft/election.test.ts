/** Checklist "Term and election", items 1–14 (etcd-io/raft raft_paper_test.go, raft_test.go). */
import { describe, expect, it } from 'vitest';
import { NotLeaderError, type RaftMessage } from '../../raft/index.js';
import { dec, ents, type Host, logOf, msg, Network, newHost, storageWith } from './harness.js';

const V3 = ['1', '2', '3'];
const V5 = ['1', '2', '3', '4', '5'];

/** A 3-voter node '1' made leader by stepping a granted vote from '2'. */
function leaderHost(opts: Parameters<typeof newHost>[2] = {}, voters = V3): Host {
  const h = newHost('1', voters, opts);
  h.node.campaign();
  h.drain();
  const term = h.status().term;
  if (voters.length > 1) h.stepAndDrain(msg('voteResp', '2', '1', term, { reject: false }));
  expect(h.status().role).toBe('leader');
  return h;
}

function lastHardState(h: Host) {
  return h.storage.initialState().hardState;
}

describe('Term and election', () => {
  describe('1 TermAdoption: any role adopts a higher term, clears its vote and follows', () => {
    const roles = ['follower', 'precandidate', 'candidate', 'leader'] as const;
    function inRole(role: (typeof roles)[number]): Host {
      // every role holds one entry, so an empty-log candidate is always behind
      const storage = storageWith(ents(1, 1), { term: 1, vote: '3' });
      switch (role) {
        case 'follower':
          return newHost('1', V3, { storage });
        case 'precandidate': {
          const h = newHost('1', V3, { storage, preVote: true });
          h.node.campaign();
          h.drain();
          return h;
        }
        case 'candidate': {
          const h = newHost('1', V3, { storage });
          h.node.campaign();
          h.drain();
          return h;
        }
        case 'leader':
          return leaderHost({ storage });
      }
    }
    const higher: Array<[string, (t: number) => RaftMessage]> = [
      ['app', (t) => msg('app', '2', '1', t, { index: 0, logTerm: 0, entries: [], commit: 0 })],
      ['heartbeat', (t) => msg('heartbeat', '2', '1', t, { commit: 0 })],
      // A vote this node must refuse (the candidate's log is behind): the term still moves.
      ['vote (refused)', (t) => msg('vote', '3', '1', t, { index: 0, logTerm: 0 })],
      ['appResp', (t) => msg('appResp', '3', '1', t, { index: 0 })],
    ];
    for (const role of roles) {
      for (const [name, make] of higher) {
        it(`${role} + higher-term ${name}`, () => {
          const h = inRole(role);
          expect(h.status().role).toBe(role);
          const before = h.status().term;
          const out = h.stepAndDrain(make(before + 5));
          const st = h.status();
          expect(st.role).toBe('follower');
          expect(st.term).toBe(before + 5);
          const hs = lastHardState(h);
          expect(hs.term).toBe(before + 5);
          expect(hs.vote).toBeUndefined();
          if (name === 'app' || name === 'heartbeat') expect(st.leader).toBe('2');
          else expect(st.leader).toBeUndefined();
          if (name.startsWith('vote')) {
            expect(out.filter((m) => m.type === 'voteResp')).toMatchObject([{ to: '3', reject: true }]);
          }
        });
      }
    }
  });

  describe('2 StaleTerm: lower-term AppendEntries/heartbeat change nothing', () => {
    function follower(opts: { checkQuorum?: boolean; preVote?: boolean } = {}) {
      const h = newHost('1', V3, { storage: storageWith(ents(1, 1, 2, 3), { term: 3, commit: 1 }), ...opts });
      h.stepAndDrain(msg('heartbeat', '2', '1', 3, { commit: 1 }));
      return h;
    }
    const stale = [
      msg('app', '3', '1', 2, { index: 3, logTerm: 3, entries: ents(4, 2), commit: 3 }),
      msg('app', '3', '1', 2, { index: 1, logTerm: 1, entries: ents(2, 2, 2, 2), commit: 3 }),
      msg('heartbeat', '3', '1', 2, { commit: 3 }),
    ];

    it('no log, commit, leader or timer change, and no reply without CheckQuorum/PreVote', () => {
      const h = follower();
      const twin = follower(); // same seed, same history, never sees the stale messages
      for (let i = 0; i < 3; i++) {
        h.node.tick();
        twin.node.tick();
      }
      for (const m of stale) expect(h.stepAndDrain(m)).toEqual([]);
      expect(logOf(h.storage)).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      const st = h.status();
      expect(st).toMatchObject({ role: 'follower', term: 3, leader: '2', commit: 1, lastIndex: 3 });
      // The election timer was not reset: both time out at the same tick.
      const ticksToCampaign = (x: Host) => {
        for (let t = 1; t <= 40; t++) {
          x.node.tick();
          if (x.drain().some((m) => m.type === 'vote')) return t;
        }
        return -1;
      };
      const a = ticksToCampaign(h);
      expect(a).toBeGreaterThan(0);
      expect(a).toBe(ticksToCampaign(twin));
    });

    for (const opts of [{ checkQuorum: true }, { preVote: true }]) {
      it(`with ${Object.keys(opts)[0]}: answers appResp reject with its own term, changes nothing`, () => {
        const h = follower(opts);
        for (const m of stale) {
          const out = h.stepAndDrain(m);
          expect(out).toHaveLength(1);
          expect(out[0]).toMatchObject({ type: 'appResp', from: '1', to: '3', term: 3, reject: true });
        }
        expect(logOf(h.storage)).toHaveLength(3);
        expect(h.status()).toMatchObject({ role: 'follower', term: 3, leader: '2', commit: 1 });
      });
    }

    it('a leader ignores an old-term message (TestStepIgnoreOldTermMsg)', () => {
      const h = leaderHost({ storage: storageWith([], { term: 4 }) });
      expect(h.status()).toMatchObject({ role: 'leader', term: 5, commit: 0 });
      expect(h.stepAndDrain(msg('appResp', '2', '1', 4, { index: 1 }))).toEqual([]);
      expect(h.stepAndDrain(msg('heartbeatResp', '2', '1', 4))).toEqual([]);
      expect(
        h.stepAndDrain(msg('app', '2', '1', 4, { index: 0, logTerm: 0, entries: ents(1, 4), commit: 1 })),
      ).toEqual([]);
      expect(h.status()).toMatchObject({ role: 'leader', term: 5, commit: 0, lastIndex: 1 });
      expect(logOf(h.storage)).toEqual([[1, 5]]);
    });
  });

  it('3 StartAsFollower: a new node is a follower with no leader', () => {
    const h = newHost('1', V3);
    expect(h.status()).toMatchObject({ id: '1', role: 'follower', term: 0, commit: 0, applied: 0 });
    expect(h.status().leader).toBeUndefined();
    expect(h.node.hasReady()).toBe(false);
  });

  it('4 Heartbeat: every heartbeatTimeout ticks, entry-free heartbeats with commit = min(match, commit)', () => {
    const net = new Network(V3, { heartbeatTicks: 2 });
    net.campaign('1');
    expect(net.status('1')).toMatchObject({ role: 'leader', term: 1, commit: 1 });
    net.cut('1', '3');
    for (let i = 0; i < 3; i++) net.propose('1');
    expect(net.status('1').commit).toBe(4); // 1 and 2 form a majority
    const h = net.host('1');
    h.node.tick();
    expect(h.drain()).toEqual([]);
    h.node.tick();
    const beats = h.drain();
    expect(beats.map((m) => m.type)).toEqual(['heartbeat', 'heartbeat']);
    const byTo = new Map(beats.map((m) => [m.to, m]));
    expect(byTo.get('2')).toMatchObject({ from: '1', term: 1, commit: 4 });
    expect(byTo.get('3')).toMatchObject({ from: '1', term: 1, commit: 1 }); // 3 only matched the no-op
    for (const m of beats) expect(m.entries ?? []).toEqual([]);
    h.node.tick();
    expect(h.drain()).toEqual([]);
    h.node.tick();
    expect(h.drain().filter((m) => m.type === 'heartbeat')).toHaveLength(2);
  });

  describe('5 ElectionOnTimeout', () => {
    for (const [log, wterm] of [
      [ents(1, 1), 2],
      [ents(1, 1, 2), 3],
    ] as const) {
      it(`follower with log terms [${log.map((e) => e.term)}] starts an election at term ${wterm} (TestVoteRequest)`, () => {
        const h = newHost('1', V3);
        h.stepAndDrain(
          msg('app', '2', '1', wterm - 1, { index: 0, logTerm: 0, entries: [...log], commit: 0 }),
        );
        let out: RaftMessage[] = [];
        let ticks = 0;
        for (let i = 1; i < 2 * 10 && out.length === 0; i++) {
          h.node.tick();
          ticks++;
          out = h.drain();
        }
        expect(ticks).toBeGreaterThanOrEqual(10);
        expect(ticks).toBeLessThan(20);
        expect(out.map((m) => [m.type, m.to, m.term, m.index, m.logTerm]).sort()).toEqual([
          ['vote', '2', wterm, log.length, wterm - 1],
          ['vote', '3', wterm, log.length, wterm - 1],
        ]);
        expect(h.status()).toMatchObject({ role: 'candidate', term: wterm });
        expect(h.storage.initialState().hardState).toMatchObject({ term: wterm, vote: '1' });
      });
    }

    it('a candidate that fails to win starts a new election with term + 1', () => {
      const h = newHost('1', V3);
      h.node.campaign();
      expect(h.drain().map((m) => m.type)).toEqual(['vote', 'vote']);
      expect(h.status()).toMatchObject({ role: 'candidate', term: 1 });
      let ticks = 0;
      let out: RaftMessage[] = [];
      while (out.length === 0 && ticks < 40) {
        h.node.tick();
        ticks++;
        out = h.drain();
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      expect(out.map((m) => [m.type, m.term]).sort()).toEqual([
        ['vote', 2],
        ['vote', 2],
      ]);
      expect(h.status()).toMatchObject({ role: 'candidate', term: 2 });
      expect(h.storage.initialState().hardState).toMatchObject({ term: 2, vote: '1' });
    });
  });

  describe('6 RandomizedTimeout', () => {
    const ET = 10;
    it('a follower observes every timeout in [ET, 2ET) and nothing else', () => {
      const h = newHost('1', V3, { electionTicks: ET, seed: 42 });
      const seen = new Set<number>();
      for (let round = 0; round < 50 * ET; round++) {
        // becomeFollower(term + 1): a heartbeat from a newer leader resets the timer
        h.stepAndDrain(msg('heartbeat', '2', '1', h.status().term + 1, { commit: 0 }));
        let time = 0;
        for (;;) {
          h.node.tick();
          time++;
          if (h.drain().some((m) => m.type === 'vote')) break;
          if (time > 2 * ET) throw new Error('no timeout');
        }
        seen.add(time);
      }
      expect([...seen].sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    });

    it('a candidate observes every timeout in [ET, 2ET) and nothing else', () => {
      const h = newHost('1', V3, { electionTicks: ET, seed: 7 });
      const seen = new Set<number>();
      h.node.campaign();
      h.drain();
      let time = 0;
      for (let round = 0; round < 50 * ET; ) {
        h.node.tick();
        time++;
        if (h.drain().some((m) => m.type === 'vote')) {
          seen.add(time);
          time = 0;
          round++;
        }
        if (time > 2 * ET) throw new Error('no timeout');
      }
      expect([...seen].sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    });

    for (const state of ['follower', 'candidate'] as const) {
      it(`5 ${state}s time out together in at most 30% of 1000 rounds`, () => {
        const hosts = V5.map((id) => newHost(id, V5, { electionTicks: ET, seed: 2024 }));
        let conflicts = 0;
        for (let round = 0; round < 1000; round++) {
          for (const [k, h] of hosts.entries()) {
            if (state === 'follower') {
              const from = V5[(k + 1) % V5.length];
              h.stepAndDrain(msg('heartbeat', from, h.id, h.status().term + 1, { commit: 0 }));
            } else {
              h.node.campaign();
              h.drain();
            }
          }
          let timedOut = 0;
          for (let t = 0; timedOut === 0; t++) {
            if (t > 2 * ET) throw new Error('no timeout');
            for (const h of hosts) {
              h.node.tick();
              if (h.drain().length > 0) timedOut++;
            }
          }
          if (timedOut > 1) conflicts++;
        }
        expect(conflicts / 1000).toBeLessThanOrEqual(0.3);
        expect(conflicts).toBeGreaterThan(0); // the measurement is real: ties do happen
      });
    }
  });

  describe('7 VoteCounting (TestLeaderElectionInOneRoundRPC)', () => {
    const cases: Array<[number, Record<string, boolean>, string]> = [
      [1, {}, 'leader'],
      [3, { 2: true, 3: true }, 'leader'],
      [3, { 2: true }, 'leader'],
      [5, { 2: true, 3: true, 4: true, 5: true }, 'leader'],
      [5, { 2: true, 3: true, 4: true }, 'leader'],
      [5, { 2: true, 3: true }, 'leader'],
      [3, { 2: false, 3: false }, 'follower'],
      [5, { 2: false, 3: false, 4: false, 5: false }, 'follower'],
      [5, { 2: true, 3: false, 4: false, 5: false }, 'follower'],
      [3, {}, 'candidate'],
      [5, { 2: true }, 'candidate'],
      [5, { 2: false, 3: false }, 'candidate'],
      [5, {}, 'candidate'],
    ];
    for (const [size, votes, want] of cases) {
      it(`${size} nodes, votes ${JSON.stringify(votes)} -> ${want}`, () => {
        const voters = V5.slice(0, size);
        const h = newHost('1', voters);
        h.node.campaign();
        h.drain();
        for (const [id, granted] of Object.entries(votes)) {
          h.stepAndDrain(msg('voteResp', id, '1', 1, { reject: !granted }));
        }
        expect(h.status().role).toBe(want);
        expect(h.status().term).toBe(1);
      });
    }
  });

  describe('8 OneVotePerTerm (TestFollowerVote)', () => {
    const cases: Array<[string | undefined, string, boolean]> = [
      [undefined, '2', false],
      [undefined, '3', false],
      ['2', '2', false],
      ['3', '3', false],
      ['2', '3', true],
      ['3', '2', true],
    ];
    for (const [vote, nvote, wreject] of cases) {
      it(`voted ${vote ?? 'none'}, request from ${nvote} -> ${wreject ? 'reject' : 'grant'}`, () => {
        const h = newHost('1', V3, { storage: storageWith([], { term: 1, vote }) });
        const out = h.stepAndDrain(msg('vote', nvote, '1', 1, { index: 0, logTerm: 0 }));
        expect(out).toHaveLength(1);
        expect(out[0]).toMatchObject({ type: 'voteResp', from: '1', to: nvote, term: 1, reject: wreject });
      });
    }

    it('first come, first served; the same candidate is granted again', () => {
      const h = newHost('1', V3, { storage: storageWith([], { term: 1 }) });
      const ask = (from: string) => h.stepAndDrain(msg('vote', from, '1', 1, { index: 0, logTerm: 0 }))[0];
      expect(ask('2')).toMatchObject({ to: '2', reject: false });
      expect(ask('3')).toMatchObject({ to: '3', reject: true });
      expect(ask('2')).toMatchObject({ to: '2', reject: false });
      expect(h.storage.initialState().hardState).toMatchObject({ term: 1, vote: '2' });
    });
  });

  describe('9 UpToDateCheck (testRecvMsgVote; receiver log [t2, t2])', () => {
    // [index, logTerm, votedFor, wreject]
    const cases: Array<[number, number, string | undefined, boolean]> = [
      [0, 0, undefined, true],
      [0, 1, undefined, true],
      [0, 2, undefined, true],
      [0, 3, undefined, false],
      [1, 0, undefined, true],
      [1, 1, undefined, true],
      [1, 2, undefined, true],
      [1, 3, undefined, false],
      [2, 0, undefined, true],
      [2, 1, undefined, true],
      [2, 2, undefined, false],
      [2, 3, undefined, false],
      [3, 0, undefined, true],
      [3, 1, undefined, true],
      [3, 2, undefined, false],
      [3, 3, undefined, false],
      [3, 2, '2', false],
      [3, 2, '1', true],
    ];
    for (const type of ['vote', 'preVote'] as const) {
      for (const [index, logTerm, voted, wreject] of cases) {
        it(`${type} (index ${index}, logTerm ${logTerm}), voted ${voted ?? 'none'} -> ${wreject ? 'reject' : 'grant'}`, () => {
          const term = Math.max(2, logTerm);
          const h = newHost('1', V3, {
            storage: storageWith(ents(1, 2, 2), { term, vote: voted }),
            preVote: type === 'preVote',
          });
          const out = h.stepAndDrain(msg(type, '2', '1', term, { index, logTerm }));
          expect(out).toHaveLength(1);
          expect(out[0]).toMatchObject({ type: `${type}Resp`, to: '2', reject: wreject });
          if (type === 'vote') {
            expect(h.storage.initialState().hardState.vote).toBe(wreject ? voted : '2');
          } else {
            // a pre-vote never records a vote
            expect(h.storage.initialState().hardState.vote).toBe(voted);
          }
        });
      }
    }

    for (const role of ['leader', 'candidate', 'precandidate'] as const) {
      it(`a ${role} that voted for itself rejects (3, 3)`, () => {
        const preVote = role === 'precandidate';
        const h = newHost('1', V3, {
          storage: storageWith(ents(1, 2, 2), { term: preVote ? 3 : 2, vote: preVote ? '1' : undefined }),
          preVote,
        });
        h.node.campaign();
        h.drain();
        if (role === 'leader') h.stepAndDrain(msg('voteResp', '3', '1', 3, { reject: false }));
        expect(h.status()).toMatchObject({ role, term: 3 });
        for (const type of ['vote', 'preVote'] as const) {
          const out = h.stepAndDrain(msg(type, '2', '1', 3, { index: 3, logTerm: 3 }));
          expect(out.filter((m) => m.type === `${type}Resp`)).toMatchObject([{ to: '2', reject: true }]);
        }
        expect(h.status().role).toBe(role);
      });
    }
  });

  describe('10 CandidateStepsDown (TestCandidateFallback, TestCandidateConcede)', () => {
    for (const role of ['candidate', 'precandidate'] as const) {
      for (const type of ['app', 'heartbeat'] as const) {
        for (const bump of [0, 1]) {
          it(`${role} + ${type} at its term + ${bump} -> follower of the sender`, () => {
            const h = newHost('1', V3, {
              storage: storageWith([], { term: 1 }),
              preVote: role === 'precandidate',
            });
            h.node.campaign();
            h.drain();
            const term = h.status().term;
            expect(h.status().role).toBe(role);
            const extra = type === 'app' ? { index: 0, logTerm: 0, entries: [], commit: 0 } : { commit: 0 };
            const out = h.stepAndDrain(msg(type, '2', '1', term + bump, extra));
            expect(h.status()).toMatchObject({ role: 'follower', term: term + bump, leader: '2' });
            expect(out.map((m) => m.type)).toEqual([type === 'app' ? 'appResp' : 'heartbeatResp']);
          });
        }
      }
    }

    it('a stuck candidate concedes to the elected leader (TestCandidateConcede)', () => {
      const net = new Network(V3);
      net.isolate('1');
      net.campaign('1');
      net.campaign('3');
      expect(net.status('1')).toMatchObject({ role: 'candidate', term: 1 });
      expect(net.status('3')).toMatchObject({ role: 'leader', term: 1 });
      net.recover();
      net.tick(1, ['3']); // heartbeat
      net.propose('3', new TextEncoder().encode('force follower'));
      net.tick(1, ['3']); // flush out the commit
      expect(net.status('1')).toMatchObject({ role: 'follower', term: 1, leader: '3', commit: 2 });
      for (const id of V3) {
        expect(logOf(net.storage(id))).toEqual([
          [1, 1],
          [2, 1],
        ]);
      }
      expect(dec(net.host('1').applied[1].data)).toBe('force follower');
    });
  });

  it('11 DurableVote: term and vote are in the Ready that sends the grant; no second vote after restart', () => {
    const h = newHost('1', V3);
    h.node.step(msg('vote', '2', '1', 1, { index: 0, logTerm: 0 }));
    const rd = h.handleReady()!;
    expect(rd.messages).toMatchObject([{ type: 'voteResp', to: '2', term: 1, reject: false }]);
    expect(rd.hardState).toMatchObject({ term: 1, vote: '2' });
    expect(rd.mustSync).toBe(true);
    expect(h.storage.initialState().hardState).toMatchObject({ term: 1, vote: '2' });

    h.restart();
    expect(h.status()).toMatchObject({ role: 'follower', term: 1 });
    expect(h.stepAndDrain(msg('vote', '3', '1', 1, { index: 0, logTerm: 0 }))).toMatchObject([
      { type: 'voteResp', to: '3', reject: true },
    ]);
    expect(h.stepAndDrain(msg('vote', '2', '1', 1, { index: 0, logTerm: 0 }))).toMatchObject([
      { type: 'voteResp', to: '2', reject: false },
    ]);
    // A restart with the pre-vote hard state would have voted twice: the vote must be durable.
    expect(h.storage.initialState().hardState.vote).toBe('2');
  });

  it('12 DuelingCandidates: the shorter log loses and everyone ends as follower at term 2', () => {
    const net = new Network(V3);
    net.cut('1', '3');
    net.campaign('1');
    net.campaign('3');
    expect(net.status('1')).toMatchObject({ role: 'leader', term: 1 });
    expect(net.status('2')).toMatchObject({ role: 'follower', term: 1 });
    expect(net.status('3')).toMatchObject({ role: 'candidate', term: 1 });
    net.recover();
    net.campaign('3');
    for (const id of V3) expect(net.status(id)).toMatchObject({ role: 'follower', term: 2 });
    expect(logOf(net.storage('1'))).toEqual([[1, 1]]);
    expect(logOf(net.storage('2'))).toEqual([[1, 1]]);
    expect(logOf(net.storage('3'))).toEqual([]);
    expect(net.status('1').commit).toBe(1);
    expect(net.status('2').commit).toBe(1);
    expect(net.status('3').commit).toBe(0);
  });

  it('13 OldLeaderIgnored: an append from a deposed leader leaves the logs unchanged', () => {
    const net = new Network(V3);
    net.campaign('1');
    net.campaign('2');
    net.campaign('1');
    expect(net.status('1')).toMatchObject({ role: 'leader', term: 3 });
    net.send(msg('app', '2', '1', 2, { index: 2, logTerm: 2, entries: ents(3, 2), commit: 2 }));
    expect(net.status('1')).toMatchObject({ role: 'leader', term: 3 });
    net.propose('1', new TextEncoder().encode('somedata'));
    for (const id of V3) {
      expect(logOf(net.storage(id))).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 3],
      ]);
      expect(dec(net.storage(id).entries(4, 5)[0].data)).toBe('somedata');
      expect(net.status(id).commit).toBe(4);
    }
  });

  describe('14 NoQuorumNoCommit', () => {
    for (const [size, down] of [
      [3, ['2', '3']],
      [5, ['3', '4', '5']],
    ] as const) {
      it(`${size} nodes with ${down.length} down: a proposal never commits`, () => {
        const net = new Network(V5.slice(0, size));
        net.campaign('1');
        expect(net.status('1').commit).toBe(1);
        for (const id of down) net.isolate(id);
        const { index } = net.propose('1');
        expect(index).toBe(2);
        net.tick(50, ['1']);
        expect(net.status('1')).toMatchObject({ role: 'leader', commit: 1, lastIndex: 2 });
        expect(net.host('1').applied.map((e) => e.index)).toEqual([1]);
      });
    }

    it('a non-leader refuses proposals with NotLeaderError carrying the leader hint', () => {
      const net = new Network(V3);
      expect(() => net.node('2').propose(new Uint8Array([1]))).toThrow(NotLeaderError);
      net.campaign('1');
      try {
        net.node('2').propose(new Uint8Array([1]));
        expect.unreachable('propose on a follower must throw');
      } catch (err) {
        expect(err).toBeInstanceOf(NotLeaderError);
        expect((err as NotLeaderError).leaderHint).toBe('1');
        expect((err as NotLeaderError).code).toBe('NOT_LEADER');
      }
    });
  });
});
