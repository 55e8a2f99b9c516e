/** Checklist "Replication", items 15–28 (etcd-io/raft raft_paper_test.go, raft_test.go, raft_flow_control_test.go). */
import { describe, expect, it } from 'vitest';
import { type Entry, ProposalDroppedError, type RaftMessage } from '../../raft/index.js';
import {
  dec,
  enc,
  ents,
  type Host,
  leaderHost,
  logOf,
  msg,
  Network,
  newHost,
  storageWith,
} from './harness.js';

const V3 = ['1', '2', '3'];
const V5 = ['1', '2', '3', '4', '5'];

/**
 * Five nodes; leader '1' (term 1) replicated two entries to '2' only, so they are not
 * committed (commit 1); the network is then whole again.
 */
function fiveNodesWithUncommittedTailOnTwo(): Network {
  const net = new Network(V5);
  net.campaign('1');
  for (const id of ['3', '4', '5']) net.cut('1', id);
  net.propose('1', enc('some data'));
  net.propose('1', enc('some data'));
  expect(net.status('1').commit).toBe(1);
  net.recover();
  return net;
}

/** The answer of an accepting follower to an append. */
function acceptAndReply(m: RaftMessage): RaftMessage {
  expect(m.type).toBe('app');
  return msg('appResp', m.to, m.from, m.term, { index: (m.index ?? 0) + (m.entries?.length ?? 0) });
}

/** Every peer acknowledges every append until the leader sends no more appends. */
function ackAll(h: Host, first: RaftMessage[], acceptors?: Set<string>): void {
  let queue = first;
  for (let i = 0; i < 1000 && queue.length > 0; i++) {
    const next: RaftMessage[] = [];
    for (const m of queue) {
      if (m.type !== 'app' || (acceptors && !acceptors.has(m.to))) continue;
      next.push(...h.stepAndDrain(acceptAndReply(m)));
    }
    queue = next;
  }
}

/** A leader whose no-op is committed and acknowledged by every peer. */
function leaderWithCommittedNoop(voters: string[], opts: Parameters<typeof newHost>[2] = {}): Host {
  const h = leaderHost(voters, opts);
  ackAll(h, h.drain().concat(pendingAppsOf(h)));
  expect(h.status().commit).toBe(h.status().lastIndex);
  return h;
}

/** The appends the leader already produced while being elected (stored in its Readys). */
function pendingAppsOf(h: Host): RaftMessage[] {
  return h.readies.flatMap((rd) => rd.messages).filter((m) => m.type === 'app');
}

const entriesOfMsgs = (ms: RaftMessage[]) =>
  ms.filter((m) => m.type === 'app' && (m.entries?.length ?? 0) > 0);

describe('Replication', () => {
  it('15 LeaderAppend: appended at lastIndex+1 with the current term, persisted, sent with prevLogIndex/Term', () => {
    const h = leaderWithCommittedNoop(V3);
    const li = h.status().lastIndex;
    expect(li).toBe(1);
    const r = h.node.propose(enc('some data'));
    expect(r).toEqual({ index: li + 1, term: 1 });
    const rd = h.handleReady()!;
    expect(rd.entries).toHaveLength(1);
    expect(rd.entries[0]).toMatchObject({ index: 2, term: 1, type: 'normal' });
    expect(dec(rd.entries[0].data)).toBe('some data');
    expect(rd.mustSync).toBe(true);
    const apps = rd.messages.filter((m) => m.type === 'app');
    expect(apps.map((m) => m.to).sort()).toEqual(['2', '3']);
    for (const m of apps) {
      expect(m).toMatchObject({ from: '1', term: 1, index: li, logTerm: 1, commit: li });
      expect(m.entries?.map((e) => [e.index, e.term, dec(e.data)])).toEqual([[2, 1, 'some data']]);
    }
    expect(logOf(h.storage)).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(h.status().commit).toBe(1); // not committed by the leader alone
  });

  describe('16 MajorityCommit (TestLeaderAcknowledgeCommit)', () => {
    const cases: Array<[number, string[], boolean]> = [
      [1, [], true],
      [3, [], false],
      [3, ['2'], true],
      [3, ['2', '3'], true],
      [5, [], false],
      [5, ['2'], false],
      [5, ['2', '3'], true],
      [5, ['2', '3', '4'], true],
      [5, ['2', '3', '4', '5'], true],
    ];
    for (const [size, acceptors, wack] of cases) {
      it(`${size} nodes, acks from [${acceptors}] -> ${wack ? 'committed' : 'not committed'}`, () => {
        const h = leaderWithCommittedNoop(V5.slice(0, size));
        const li = h.status().lastIndex;
        h.node.propose(enc('some data'));
        const out = h.drain();
        for (const m of out)
          if (m.type === 'app' && acceptors.includes(m.to)) h.stepAndDrain(acceptAndReply(m));
        expect(h.status().commit > li).toBe(wack);
        expect(h.applied.some((e) => dec(e.data) === 'some data')).toBe(wack);
      });
    }
  });

  describe('17 CommitPrefix', () => {
    const cases: Entry[][] = [[], ents(1, 2), ents(1, 1, 2), ents(1, 1)];
    for (const prior of cases) {
      it(`a leader commits earlier-term entries [${prior.map((e) => e.term)}] with its own (TestLeaderCommitPrecedingEntries)`, () => {
        const h = leaderHost(V3, { storage: storageWith(prior, { term: 2 }) });
        expect(h.status().term).toBe(3);
        h.node.propose(enc('some data'));
        ackAll(h, pendingAppsOf(h).concat(h.drain()));
        const li = prior.length;
        expect(h.applied.map((e) => [e.index, e.term, dec(e.data)])).toEqual([
          ...prior.map((e) => [e.index, e.term, '']),
          [li + 1, 3, ''],
          [li + 2, 3, 'some data'],
        ]);
      });
    }

    const fcases: Array<[string[], number]> = [
      [['some data'], 1],
      [['some data', 'some data2'], 2],
      [['some data2', 'some data'], 2],
      [['some data', 'some data2'], 1],
    ];
    for (const [datas, commit] of fcases) {
      it(`a follower applies [${datas}] up to commit ${commit} in order (TestFollowerCommitEntry)`, () => {
        const h = newHost('1', V3, { storage: storageWith([], { term: 1 }) });
        const es = datas.map((d, i): Entry => ({ index: i + 1, term: 1, type: 'normal', data: enc(d) }));
        h.stepAndDrain(msg('app', '2', '1', 1, { index: 0, logTerm: 0, entries: es, commit }));
        expect(h.status().commit).toBe(commit);
        expect(h.applied.map((e) => dec(e.data))).toEqual(datas.slice(0, commit));
      });
    }
  });

  describe('18 FollowerCommit: commit = min(leaderCommit, last new index), never decreasing', () => {
    // follower log [t1, t2] at term 2; [msg fields, wLastIndex, wCommit, wReject]
    const cases: Array<[Partial<RaftMessage>, number, number, boolean]> = [
      // Ensure 1
      [{ logTerm: 3, index: 2, commit: 3 }, 2, 0, true],
      [{ logTerm: 3, index: 3, commit: 3 }, 2, 0, true],
      // Ensure 2
      [{ logTerm: 1, index: 1, commit: 1 }, 2, 1, false],
      [{ logTerm: 0, index: 0, commit: 1, entries: ents(1, 2) }, 1, 1, false],
      [{ logTerm: 2, index: 2, commit: 3, entries: ents(3, 2, 2) }, 4, 3, false],
      [{ logTerm: 2, index: 2, commit: 4, entries: ents(3, 2) }, 3, 3, false],
      [{ logTerm: 1, index: 1, commit: 4, entries: ents(2, 2) }, 2, 2, false],
      // Ensure 3
      [{ logTerm: 1, index: 1, commit: 3 }, 2, 1, false],
      [{ logTerm: 1, index: 1, commit: 3, entries: ents(2, 2) }, 2, 2, false],
      [{ logTerm: 2, index: 2, commit: 3 }, 2, 2, false],
      [{ logTerm: 2, index: 2, commit: 4 }, 2, 2, false],
    ];
    for (const [fields, wIndex, wCommit, wReject] of cases) {
      it(`app ${JSON.stringify({ ...fields, entries: fields.entries?.map((e) => [e.index, e.term]) })} -> last ${wIndex}, commit ${wCommit}`, () => {
        const h = newHost('1', V3, { storage: storageWith(ents(1, 1, 2), { term: 2 }) });
        const out = h.stepAndDrain(msg('app', '2', '1', 2, { entries: [], ...fields }));
        expect(h.status().lastIndex).toBe(wIndex);
        expect(h.status().commit).toBe(wCommit);
        expect(out).toHaveLength(1);
        expect(out[0].type).toBe('appResp');
        expect(out[0].reject ?? false).toBe(wReject);
      });
    }

    for (const [commit, want] of [
      [3, 3],
      [1, 2],
    ]) {
      it(`heartbeat with commit ${commit} on commit 2 -> ${want} (TestHandleHeartbeat)`, () => {
        const h = newHost('1', ['1', '2'], {
          storage: storageWith(ents(1, 1, 2, 3), { term: 3, commit: 2 }),
        });
        const out = h.stepAndDrain(msg('heartbeat', '2', '1', 3, { commit }));
        expect(h.status().commit).toBe(want);
        expect(out.map((m) => m.type)).toEqual(['heartbeatResp']);
      });
    }

    it('a later append with a lower leader commit does not move commit back', () => {
      const h = newHost('1', V3, { storage: storageWith([], { term: 1 }) });
      h.stepAndDrain(msg('app', '2', '1', 1, { index: 0, logTerm: 0, entries: ents(1, 1, 1, 1), commit: 3 }));
      expect(h.status().commit).toBe(3);
      const out = h.stepAndDrain(
        msg('app', '2', '1', 1, { index: 3, logTerm: 1, entries: ents(4, 1), commit: 1 }),
      );
      expect(out).toMatchObject([{ type: 'appResp', index: 4 }]);
      expect(h.status()).toMatchObject({ commit: 3, lastIndex: 4 });
      // an append below the commit index is answered with the commit index
      expect(
        h.stepAndDrain(msg('app', '2', '1', 1, { index: 1, logTerm: 1, entries: [], commit: 0 })),
      ).toMatchObject([{ type: 'appResp', index: 3 }]);
      expect(h.status().commit).toBe(3);
    });
  });

  describe('19 ConsistencyCheck (TestFollowerCheckMsgApp; log [t1, t2], commit 1)', () => {
    // [prevLogTerm, prevLogIndex, wIndex, wReject, wRejectHint, wHintTerm]
    const cases: Array<[number, number, number, boolean, number, number]> = [
      [0, 0, 1, false, 0, 0],
      [1, 1, 1, false, 0, 0],
      [2, 2, 2, false, 0, 0],
      [1, 2, 2, true, 1, 1],
      [3, 3, 3, true, 2, 2],
    ];
    for (const [logTerm, index, wIndex, wReject, wHint, wHintTerm] of cases) {
      it(`prev (${index}, t${logTerm}) -> ${wReject ? `reject, hint (${wHint}, t${wHintTerm})` : `ok at ${wIndex}`}`, () => {
        const h = newHost('1', V3, { storage: storageWith(ents(1, 1, 2), { term: 2, commit: 1 }) });
        const out = h.stepAndDrain(msg('app', '2', '1', 2, { logTerm, index, entries: [], commit: 1 }));
        expect(out).toHaveLength(1);
        const m = out[0];
        expect(m).toMatchObject({ type: 'appResp', from: '1', to: '2', term: 2, index: wIndex });
        expect(m.reject ?? false).toBe(wReject);
        if (wReject) expect(m).toMatchObject({ rejectHint: wHint, logTerm: wHintTerm });
        expect(logOf(h.storage)).toEqual([
          [1, 1],
          [2, 2],
        ]);
      });
    }
  });

  describe('20 ConflictTruncate', () => {
    // follower log [t1, t2]; [prevIndex, prevTerm, entries, wLog, wUnstable]
    const cases: Array<[number, number, Entry[], number[], number[]]> = [
      [2, 2, ents(3, 3), [1, 2, 3], [3]],
      [1, 1, ents(2, 3, 4), [1, 3, 4], [3, 4]],
      [0, 0, ents(1, 1), [1, 2], []],
      [0, 0, ents(1, 3), [3], [3]],
    ];
    for (const [index, logTerm, es, wLog, wUnstable] of cases) {
      it(`append after (${index}, t${logTerm}) of terms [${es.map((e) => e.term)}] -> log terms [${wLog}] (TestFollowerAppendEntries)`, () => {
        const h = newHost('1', V3, { storage: storageWith(ents(1, 1, 2), { term: 2 }) });
        h.node.step(msg('app', '2', '1', 4, { index, logTerm, entries: es, commit: 0 }));
        const rd = h.handleReady()!;
        expect(rd.entries.map((e) => e.term)).toEqual(wUnstable);
        h.drain();
        expect(logOf(h.storage).map(([, t]) => t)).toEqual(wLog);
      });
    }

    it('a duplicate or reordered append never truncates', () => {
      const h = newHost('1', V3, { storage: storageWith([], { term: 1 }) });
      const full = msg('app', '2', '1', 1, { index: 0, logTerm: 0, entries: ents(1, 1, 1, 1), commit: 0 });
      expect(h.stepAndDrain(full)).toMatchObject([{ type: 'appResp', index: 3 }]);
      // older, shorter appends arrive late: every entry they carry matches, nothing is cut
      const early1 = msg('app', '2', '1', 1, { index: 0, logTerm: 0, entries: ents(1, 1), commit: 0 });
      const early2 = msg('app', '2', '1', 1, { index: 1, logTerm: 1, entries: ents(2, 1), commit: 0 });
      expect(h.stepAndDrain(early2)).toMatchObject([{ type: 'appResp', index: 2 }]);
      expect(h.stepAndDrain(early1)).toMatchObject([{ type: 'appResp', index: 1 }]);
      expect(h.stepAndDrain(full)).toMatchObject([{ type: 'appResp', index: 3 }]);
      expect(logOf(h.storage)).toEqual([
        [1, 1],
        [2, 1],
        [3, 1],
      ]);
      expect(h.readies.flatMap((rd) => rd.entries).map((e) => e.index)).toEqual([1, 2, 3]);
    });

    it('the leader survives reordered appends and stale rejections (TestLogReplicationWithReorderedMessage)', () => {
      const r1 = leaderHost(['1', '2']);
      const r2 = newHost('2', ['1', '2']);
      const [probe] = r1
        .drain()
        .concat(pendingAppsOf(r1))
        .filter((m) => m.to === '2' && m.type === 'app');
      r1.stepAndDrain(r2.stepAndDrain(probe)[0]); // now replicating to 2, match 1
      r1.node.propose(enc('somedata'));
      const [req1] = entriesOfMsgs(r1.drain());
      r1.node.propose(enc('somedata'));
      const [req2] = entriesOfMsgs(r1.drain());
      expect([req1.index, req2.index]).toEqual([1, 2]);
      // 2 receives the second append first and rejects it
      const [resp2] = r2.stepAndDrain(req2);
      expect(resp2).toMatchObject({ type: 'appResp', reject: true, index: 2, rejectHint: 1 });
      const [resp1] = r2.stepAndDrain(req1);
      expect(resp1).toMatchObject({ type: 'appResp', index: 2 });
      expect(resp1.reject ?? false).toBe(false);
      r1.stepAndDrain(resp1);
      // the delayed rejection is stale: no append goes back below the match index 2
      const after = r1.stepAndDrain(resp2);
      for (const m of after) if (m.type === 'app') expect(m.index).toBeGreaterThanOrEqual(2);
      // the lost append is repaired through heartbeats
      for (let round = 0; round < 10 && r2.status().lastIndex < 3; round++) {
        r1.node.tick();
        let q = r1.drain();
        while (q.length > 0) {
          const m = q.shift()!;
          if (m.to !== '2') continue;
          for (const resp of r2.stepAndDrain(m)) q = q.concat(r1.stepAndDrain(resp));
        }
      }
      expect(logOf(r2.storage)).toEqual(logOf(r1.storage));
      expect(r1.status().commit).toBe(3);
    });
  });

  describe('21 Figure7Sync (TestLeaderSyncFollowerLog)', () => {
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followers: Record<string, number[]> = {
      a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
      b: [1, 1, 1, 4],
      c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      e: [1, 1, 1, 4, 4, 4, 4],
      f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    };
    const term = 8;
    for (const [name, flog] of Object.entries(followers)) {
      it(`follower (${name}) [${flog}] ends identical to the leader`, () => {
        const net = new Network(['1', '2'], {
          voters: V3, // '3' exists but drops everything, like etcd's nopStepper
          perNode: {
            '1': { storage: storageWith(ents(1, ...leaderLog), { term, commit: leaderLog.length }) },
            '2': { storage: storageWith(ents(1, ...flog), { term: term - 1 }) },
          },
        });
        net.campaign('1');
        // The follower may refuse (d has a newer log); node 3 grants.
        net.send(msg('voteResp', '3', '1', term + 1, { reject: false }));
        expect(net.status('1')).toMatchObject({ role: 'leader', term: term + 1 });
        net.propose('1', enc('x'));
        const want = [...leaderLog, term + 1, term + 1];
        expect(logOf(net.storage('1')).map(([, t]) => t)).toEqual(want);
        expect(logOf(net.storage('2'))).toEqual(logOf(net.storage('1')));
        expect(net.status('2').commit).toBe(12);
      });
    }
  });

  describe('22 CurrentTermRule', () => {
    for (const [acked, wcommit] of [
      [1, 0],
      [2, 0],
      [3, 3],
    ]) {
      it(`earlier-term entries never commit by counting: ack of ${acked} -> commit ${wcommit} (TestLeaderOnlyCommitsLogFromCurrentTerm)`, () => {
        const h = leaderHost(['1', '2'], { storage: storageWith(ents(1, 1, 2), { term: 2 }) });
        expect(h.status().term).toBe(3);
        h.node.propose(new Uint8Array(0));
        h.drain();
        h.stepAndDrain(msg('appResp', '2', '1', 3, { index: acked }));
        expect(h.status().commit).toBe(wcommit);
      });
    }

    it('a new leader cannot commit old entries while its own entry cannot replicate (TestCannotCommitWithoutNewTermEntry)', () => {
      const net = fiveNodesWithUncommittedTailOnTwo();
      net.ignore('app'); // the new leader's entry cannot replicate
      net.campaign('2');
      expect(net.status('2')).toMatchObject({ role: 'leader', term: 2, lastIndex: 4, commit: 1 });
      net.recover();
      net.tick(1, ['2']); // heartbeat: resumes replication
      net.propose('2', enc('some data'));
      expect(net.status('2').commit).toBe(5);
    });
  });

  it('23 NoopOnElection: the new leader’s empty entry commits the older tail, commit 1 -> 4 (TestCommitWithoutNewTermEntry)', () => {
    const net = fiveNodesWithUncommittedTailOnTwo();
    net.campaign('2');
    expect(net.status('2')).toMatchObject({ role: 'leader', term: 2, commit: 4 });
    const noop = net.storage('2').entries(4, 5)[0];
    expect(noop).toMatchObject({ index: 4, term: 2, type: 'normal' });
    expect(noop.data.byteLength).toBe(0);
    expect(net.status('1').commit).toBe(4); // the node etcd checks
    net.tick(1, ['2']); // followers that acked after the commit learn it from the next heartbeat
    for (const id of V5) expect(net.host(id).applied.map((e) => e.index)).toEqual([1, 2, 3, 4]);
  });

  it('24 OverwriteUncommitted: a new leader overwrites an uncommitted entry of a higher term', () => {
    const net = new Network(V5, {
      perNode: {
        '1': { storage: storageWith(ents(1, 1), { term: 1 }) }, // won the first election
        '2': { storage: storageWith(ents(1, 1), { term: 1 }) }, // got the log from 1
        '3': { storage: storageWith(ents(1, 2), { term: 2 }) }, // won the second election
        '4': { storage: storageWith([], { term: 2, vote: '3' }) }, // voted, got no log
        '5': { storage: storageWith([], { term: 2, vote: '3' }) },
      },
    });
    net.campaign('1');
    expect(net.status('1')).toMatchObject({ role: 'follower', term: 2 });
    net.campaign('1');
    expect(net.status('1')).toMatchObject({ role: 'leader', term: 3 });
    for (const id of V5) {
      expect(logOf(net.storage(id))).toEqual([
        [1, 1],
        [2, 3],
      ]);
    }
  });

  describe('25 FastBacktrack (TestFastLogRejection)', () => {
    // [leader terms, follower terms, follower compact, hint term, hint index, next term, next index]
    const cases: Array<[number[], number[], number, number, number, number, number]> = [
      [[1, 2, 2, 4, 4, 4, 4], [1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3], 0, 3, 7, 2, 3],
      [[1, 2, 2, 3, 4, 4, 4, 5], [1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3], 0, 3, 8, 3, 4],
      [[1, 1, 1, 1], [1, 2, 2, 4], 0, 1, 1, 1, 1],
      [[1, 1, 1, 1, 1, 1], [1, 2, 2, 4], 0, 1, 1, 1, 1],
      [[1, 1, 1, 1], [1, 2, 2, 4, 4, 4], 0, 1, 1, 1, 1],
      [[1, 1, 1, 4, 5], [1, 1, 1, 4], 0, 4, 4, 4, 4],
      [[2, 5, 5, 5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], 0, 4, 6, 2, 1],
      [[2, 2, 2, 2, 2], [2, 4, 4, 4, 4, 4, 4, 4], 0, 2, 1, 2, 1],
      [[1, 1, 3], [1, 1, 3, 3, 3], 5, 0, 3, 1, 2],
    ];
    for (const [i, [llog, flog, compact, hintTerm, hintIndex, nextTerm, nextIndex]] of cases.entries()) {
      it(`case ${i + 1}: leader [${llog}] follower [${flog}]${compact ? ` compacted to ${compact}` : ''}`, () => {
        const lastTerm = llog[llog.length - 1];
        const n1 = newHost('1', V3, {
          storage: storageWith(ents(1, ...llog), { term: lastTerm - 1, commit: llog.length }),
        });
        n1.node.campaign();
        n1.drain();
        n1.node.step(msg('voteResp', '3', '1', lastTerm, { reject: false }));
        expect(n1.status()).toMatchObject({ role: 'leader', term: lastTerm });
        const s2 = storageWith(ents(1, ...flog), { term: lastTerm, vote: '1', commit: 0 });
        const n2 = newHost('2', V3, { storage: s2 });
        if (compact) s2.compact(compact); // unrealistic on purpose, as in etcd: a stale append after compaction
        const app = n1.drain().find((m) => m.type === 'app' && m.to === '2')!;
        expect(app).toMatchObject({ index: llog.length, logTerm: lastTerm });
        const out = n2.stepAndDrain(app);
        expect(out).toHaveLength(1);
        expect(out[0]).toMatchObject({
          type: 'appResp',
          reject: true,
          logTerm: hintTerm,
          rejectHint: hintIndex,
        });
        const next = n1.stepAndDrain(out[0]).filter((m) => m.type === 'app' && m.to === '2');
        expect(next).toHaveLength(1);
        expect(next[0]).toMatchObject({ logTerm: nextTerm, index: nextIndex });
      });
    }
  });

  describe('26 FlowControl (raft_flow_control_test.go)', () => {
    const MAX_INFLIGHT = 4;
    /** Leader of {1, 2}, replicating to 2 with an empty window. */
    function replicatingLeader(): Host {
      const h = leaderHost(['1', '2'], { maxInflight: MAX_INFLIGHT });
      const [probe] = pendingAppsOf(h);
      expect(probe).toMatchObject({ to: '2', index: 0 });
      h.stepAndDrain(acceptAndReply(probe));
      expect(h.status().commit).toBe(1);
      return h;
    }
    const proposeAndSend = (h: Host) => {
      h.node.propose(enc('somedata'));
      return entriesOfMsgs(h.drain());
    };

    it('appends fill the window, then nothing more is sent (TestMsgAppFlowControlFull)', () => {
      const h = replicatingLeader();
      for (let i = 0; i < MAX_INFLIGHT; i++) {
        const out = proposeAndSend(h);
        expect(out).toHaveLength(1);
        expect(out[0].entries?.map((e) => e.index)).toEqual([2 + i]);
      }
      for (let i = 0; i < 10; i++) expect(proposeAndSend(h)).toEqual([]);
      expect(h.status().lastIndex).toBe(1 + MAX_INFLIGHT + 10);
    });

    it('acks slide the window; stale acks do nothing (TestMsgAppFlowControlMoveForward)', () => {
      const h = replicatingLeader();
      for (let i = 0; i < MAX_INFLIGHT; i++) expect(proposeAndSend(h)).toHaveLength(1);
      // in flight: 2..5
      for (let tt = 2; tt <= 1 + MAX_INFLIGHT; tt++) {
        for (let i = 1; i < tt; i++) {
          expect(h.stepAndDrain(msg('appResp', '2', '1', 1, { index: i }))).toEqual([]);
        }
        expect(proposeAndSend(h)).toEqual([]); // still full
        const out = entriesOfMsgs(h.stepAndDrain(msg('appResp', '2', '1', 1, { index: tt })));
        expect(out).toHaveLength(1); // exactly one slot was freed, for the waiting entry
        expect(out[0].entries).toHaveLength(1);
      }
    });

    it('a heartbeat response frees one slot (TestMsgAppFlowControlRecvHeartbeat)', () => {
      const h = replicatingLeader();
      for (let i = 0; i < MAX_INFLIGHT; i++) expect(proposeAndSend(h)).toHaveLength(1);
      for (let round = 0; round < 4; round++) {
        expect(proposeAndSend(h)).toEqual([]);
        expect(proposeAndSend(h)).toEqual([]);
        const out = h.stepAndDrain(msg('heartbeatResp', '2', '1', 1));
        const apps = out.filter((m) => m.type === 'app');
        expect(apps).toHaveLength(1); // one slot: one append carrying what waited
        expect(apps[0].entries).toHaveLength(2);
        expect(proposeAndSend(h)).toEqual([]); // full again
        const again = entriesOfMsgs(h.stepAndDrain(msg('heartbeatResp', '2', '1', 1)));
        expect(again).toHaveLength(1);
        expect(again[0].entries).toHaveLength(1);
      }
    });
  });

  describe('27 BoundedUncommitted', () => {
    const testdata = enc('testdata');
    const MAX_ENTRIES = 64;
    const limitBytes = MAX_ENTRIES * testdata.byteLength;

    it('drops data proposals over the limit, accepts empty ones; committing frees the budget (TestUncommittedEntryLimit)', () => {
      const h = leaderHost(V3, { maxUncommittedBytes: limitBytes, maxInflight: 1024 });
      for (let i = 0; i < MAX_ENTRIES; i++) h.node.propose(testdata);
      expect(() => h.node.propose(testdata)).toThrow(ProposalDroppedError);
      try {
        h.node.propose(testdata);
      } catch (err) {
        expect((err as ProposalDroppedError).code).toBe('PROPOSAL_DROPPED');
      }
      expect(h.node.propose(new Uint8Array(0)).index).toBe(1 + MAX_ENTRIES + 1);
      // a quorum acknowledges; the entries commit and are applied
      ackAll(h, h.drain().concat(pendingAppsOf(h)), new Set(['2']));
      expect(h.status().commit).toBe(h.status().lastIndex);
      // budget is free again: one large proposal over the limit is accepted because the tally was zero
      h.node.propose(new Uint8Array(2 * limitBytes));
      expect(() => h.node.propose(testdata)).toThrow(ProposalDroppedError);
      h.node.propose(new Uint8Array(0));
    });

    it('a partitioned leader’s log growth is bounded, and recovers after the heal (TestRawNodeBoundedLogGrowthWithPartition)', () => {
      const net = new Network(V3, { maxUncommittedBytes: limitBytes });
      net.campaign('1');
      net.isolate('2');
      net.isolate('3');
      let accepted = 0;
      for (let i = 0; i < 4 * MAX_ENTRIES; i++) {
        try {
          net.propose('1', testdata);
          accepted++;
        } catch (err) {
          expect(err).toBeInstanceOf(ProposalDroppedError);
        }
      }
      expect(accepted).toBe(MAX_ENTRIES);
      expect(net.status('1').lastIndex).toBe(1 + MAX_ENTRIES);
      net.recover();
      net.tick(1, ['1']);
      expect(net.status('1').commit).toBe(1 + MAX_ENTRIES);
      net.propose('1', testdata);
      expect(net.status('1').commit).toBe(2 + MAX_ENTRIES);
    });
  });

  describe('28 SingleNodeDurability: nothing is acknowledged before it is persisted', () => {
    it('the leader commits its own entry only in the Ready after the one that persisted it', () => {
      const h = newHost('1', ['1']);
      h.node.campaign();
      expect(h.status()).toMatchObject({ role: 'leader', term: 1, commit: 0 });
      const rd1 = h.node.ready();
      expect(rd1.entries.map((e) => e.index)).toEqual([1]);
      expect(rd1.committedEntries).toEqual([]);
      expect(rd1.mustSync).toBe(true);
      // not persisted yet: nothing commits, however often we ask
      expect(h.status().commit).toBe(0);
      expect(h.node.hasReady()).toBe(false);
      h.storage.append(rd1.entries);
      if (rd1.hardState) h.storage.setHardState(rd1.hardState);
      h.node.advance(rd1);
      expect(h.status().commit).toBe(1);
      const rd2 = h.node.ready();
      expect(rd2.committedEntries.map((e) => e.index)).toEqual([1]);
      expect(rd2.hardState).toMatchObject({ commit: 1 });
      h.node.advance(rd2);

      // a proposal made while an earlier Ready is being persisted is not acknowledged with it
      h.node.propose(enc('a'));
      const rd3 = h.node.ready();
      expect(rd3.entries.map((e) => e.index)).toEqual([2]);
      h.node.propose(enc('b'));
      h.storage.append(rd3.entries);
      h.node.advance(rd3);
      expect(h.status().commit).toBe(2);
      const rd4 = h.node.ready();
      expect(rd4.entries.map((e) => e.index)).toEqual([3]);
      expect(rd4.committedEntries.map((e) => dec(e.data))).toEqual(['a']);
      expect(h.status().commit).toBe(2);
      h.storage.append(rd4.entries);
      h.node.advance(rd4);
      expect(h.status().commit).toBe(3);
      const rd5 = h.node.ready();
      expect(rd5.committedEntries.map((e) => dec(e.data))).toEqual(['b']);
      h.node.advance(rd5);
      expect(h.node.hasReady()).toBe(false);
    });

    it('a restart after persisting but before committing commits from the storage', () => {
      const h = newHost('1', ['1']);
      h.node.campaign();
      const rd = h.node.ready();
      h.storage.append(rd.entries);
      if (rd.hardState) h.storage.setHardState(rd.hardState);
      // crash before advance: the restarted node must not lose or double-apply anything
      h.restart();
      expect(h.status()).toMatchObject({ role: 'follower', term: 1, lastIndex: 1, commit: 0 });
      h.node.campaign();
      h.drain();
      expect(h.status()).toMatchObject({ role: 'leader', term: 2, commit: 2 });
      expect(h.applied.map((e) => [e.index, e.term])).toEqual([
        [1, 1],
        [2, 2],
      ]);
    });
  });
});
