import { describe, expect, it } from 'vitest';
import { RaftNode } from './node.js';
import { MemoryStorage } from './storage.js';
import type { Entry, RaftMessage } from './types.js';

/** A tiny lock-step cluster: every message is delivered, in order, until the network is quiet. */
function cluster(ids: string[], seed = 1) {
  let s = seed;
  const random = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const storages = new Map(ids.map((id) => [id, new MemoryStorage()]));
  const nodes = new Map(
    ids.map((id) => [
      id,
      new RaftNode({
        id,
        voters: ids,
        electionTicks: 10,
        heartbeatTicks: 1,
        preVote: true,
        checkQuorum: true,
        random,
        storage: storages.get(id)!,
      }),
    ]),
  );
  const applied = new Map<string, Entry[]>(ids.map((id) => [id, []]));
  const queue: RaftMessage[] = [];
  const drain = () => {
    for (let round = 0; round < 1000; round++) {
      let any = false;
      for (const [id, n] of nodes) {
        while (n.hasReady()) {
          any = true;
          const rd = n.ready();
          const st = storages.get(id)!;
          if (rd.snapshot) st.applySnapshot(rd.snapshot);
          st.append(rd.entries);
          if (rd.hardState) st.setHardState(rd.hardState);
          queue.push(...rd.messages);
          applied.get(id)!.push(...rd.committedEntries);
          n.advance(rd);
        }
      }
      while (queue.length > 0) {
        any = true;
        const m = queue.shift()!;
        nodes.get(m.to)?.step(m);
      }
      if (!any) return;
    }
    throw new Error('network did not quiesce');
  };
  return { nodes, storages, applied, drain };
}

describe('RaftNode smoke', () => {
  it('elects a leader and replicates proposals to every node in order', () => {
    const c = cluster(['a', 'b', 'c']);
    c.nodes.get('a')!.campaign();
    c.drain();
    expect(c.nodes.get('a')!.status().role).toBe('leader');
    const enc = new TextEncoder();
    for (let i = 0; i < 5; i++) c.nodes.get('a')!.propose(enc.encode(`v${i}`));
    c.drain();
    for (const id of ['a', 'b', 'c']) {
      const data = c.applied
        .get(id)!
        .filter((e) => e.data.byteLength > 0)
        .map((e) => new TextDecoder().decode(e.data));
      expect(data).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    }
  });

  it('elects by ticking alone', () => {
    const c = cluster(['a', 'b', 'c'], 7);
    for (let t = 0; t < 100; t++) {
      for (const n of c.nodes.values()) n.tick();
      c.drain();
    }
    const leaders = [...c.nodes.values()].filter((n) => n.status().role === 'leader');
    expect(leaders).toHaveLength(1);
  });

  it('serves ReadIndex on the leader and on a follower', () => {
    const c = cluster(['a', 'b', 'c']);
    c.nodes.get('a')!.campaign();
    c.drain();
    c.nodes.get('a')!.propose(new Uint8Array([1]));
    c.drain();
    const reads: Array<{ id: string; index: number }> = [];
    const ctx = new Uint8Array([9]);
    c.nodes.get('a')!.readIndex(ctx);
    c.nodes.get('b')!.readIndex(ctx);
    for (let r = 0; r < 10; r++) {
      for (const [id, n] of c.nodes) {
        while (n.hasReady()) {
          const rd = n.ready();
          for (const rs of rd.readStates) reads.push({ id, index: rs.index });
          const st = c.storages.get(id)!;
          st.append(rd.entries);
          if (rd.hardState) st.setHardState(rd.hardState);
          for (const m of rd.messages) c.nodes.get(m.to)!.step(m);
          n.advance(rd);
        }
      }
    }
    expect(reads).toEqual(
      expect.arrayContaining([
        { id: 'a', index: 2 },
        { id: 'b', index: 2 },
      ]),
    );
  });

  it('catches a compacted-behind follower up through a chunked snapshot', () => {
    const c = cluster(['a', 'b', 'c']);
    c.nodes.get('a')!.campaign();
    c.drain();
    // c is down while a and b move on.
    const down = c.nodes.get('c')!;
    c.nodes.delete('c');
    const a = c.nodes.get('a')!;
    for (let i = 0; i < 20; i++) a.propose(new Uint8Array(100).fill(i));
    c.drain();
    const sa = c.storages.get('a')!;
    const idx = a.status().applied;
    sa.createSnapshot(idx, new Uint8Array(5000).fill(7), { voters: ['a', 'b', 'c'], learners: [] });
    sa.compact(idx);
    c.nodes.set('c', down);
    for (let t = 0; t < 3; t++) {
      a.tick();
      c.drain();
    }
    const sc = c.storages.get('c')!;
    expect(sc.snapshot().index).toBe(idx);
    expect(sc.snapshot().data.byteLength).toBe(5000);
    expect(down.status().commit).toBe(a.status().commit);
  });

  it('adds a learner, promotes it, and removes a voter', () => {
    const c = cluster(['a', 'b', 'c']);
    c.nodes.get('a')!.campaign();
    c.drain();
    const a = c.nodes.get('a')!;
    a.proposeConfChange({ type: 'addLearner', node: 'd' });
    c.drain();
    expect(a.status().learners).toEqual(['d']);
    a.proposeConfChange({ type: 'addVoter', node: 'd' });
    c.drain();
    expect(a.status().voters).toEqual(['a', 'b', 'c', 'd']);
    a.proposeConfChange({ type: 'removeNode', node: 'c' });
    c.drain();
    expect(a.status().voters).toEqual(['a', 'b', 'd']);
  });

  it('transfers leadership to an up-to-date follower', () => {
    const c = cluster(['a', 'b', 'c']);
    c.nodes.get('a')!.campaign();
    c.drain();
    c.nodes.get('a')!.transferLeadership('c');
    c.drain();
    expect(c.nodes.get('c')!.status().role).toBe('leader');
    expect(c.nodes.get('a')!.status().role).toBe('follower');
  });
});
