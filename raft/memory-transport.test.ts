import { describe, expect, it } from 'vitest';
import { RaftTransportError } from './errors.js';
import { MemoryNetwork, type MemoryTransport } from './memory-transport.js';
import type { RaftMessage } from './types.js';

function hb(from: string, to: string, term: number): RaftMessage {
  return { type: 'heartbeat', from, to, term, commit: 0 };
}

function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

async function cluster(net: MemoryNetwork, ids: string[]) {
  const got = new Map<string, RaftMessage[]>();
  const transports = new Map<string, MemoryTransport>();
  for (const id of ids) {
    const t = net.createTransport(id);
    const inbox: RaftMessage[] = [];
    got.set(id, inbox);
    transports.set(id, t);
    await t.start((m) => inbox.push(m));
  }
  return { got: (id: string) => got.get(id)!, t: (id: string) => transports.get(id)! };
}

describe('MemoryTransport', () => {
  it('delivers on a later turn, in order, as copies', async () => {
    const net = new MemoryNetwork();
    const c = await cluster(net, ['a', 'b', 'c']);
    const data = new Uint8Array([1, 2, 3]);
    const first: RaftMessage = {
      type: 'app',
      from: 'a',
      to: 'b',
      term: 1,
      entries: [{ index: 1, term: 1, type: 'normal', data }],
    };
    c.t('a').send([first, hb('a', 'c', 1), hb('a', 'b', 2)]);
    c.t('a').send([hb('a', 'b', 3)]);
    expect(c.got('b')).toEqual([]);
    await turn();
    expect(c.got('b')).toEqual([first, hb('a', 'b', 2), hb('a', 'b', 3)]);
    expect(c.got('c')).toEqual([hb('a', 'c', 1)]);
    data[0] = 99;
    expect(c.got('b')[0].entries?.[0].data[0]).toBe(1);
    expect(net.stats()).toEqual({ delivered: 4, dropped: 0 });
  });

  it('shares objects when copyMessages is off', async () => {
    const net = new MemoryNetwork({ copyMessages: false });
    const c = await cluster(net, ['a', 'b']);
    const m = hb('a', 'b', 1);
    c.t('a').send([m]);
    await turn();
    expect(c.got('b')[0]).toBe(m);
  });

  it('does not deliver re-entrantly: replies sent by a handler go out on the next turn', async () => {
    const net = new MemoryNetwork();
    const order: string[] = [];
    const a = net.createTransport('a');
    const b = net.createTransport('b');
    await a.start((m) => order.push(`a<-${m.type}`));
    await b.start((m) => {
      order.push(`b<-${m.type}`);
      b.send([{ type: 'heartbeatResp', from: 'b', to: 'a', term: m.term }]);
      order.push('b sent');
    });
    a.send([hb('a', 'b', 1)]);
    await turn();
    expect(order).toEqual(['b<-heartbeat', 'b sent']);
    await turn();
    expect(order).toEqual(['b<-heartbeat', 'b sent', 'a<-heartbeatResp']);
  });

  it('partitions, isolates, cuts one way and heals', async () => {
    const net = new MemoryNetwork();
    const c = await cluster(net, ['a', 'b', 'c']);
    const all = () => {
      for (const from of ['a', 'b', 'c']) {
        c.t(from).send(['a', 'b', 'c'].filter((to) => to !== from).map((to) => hb(from, to, 1)));
      }
    };
    const senders = (id: string) => c.got(id).map((m) => m.from);
    const reset = () => {
      for (const id of ['a', 'b', 'c']) c.got(id).length = 0;
    };

    net.partition('a', ['b', 'c']);
    all();
    await turn();
    expect(senders('a')).toEqual([]);
    expect(senders('b')).toEqual(['c']);
    expect(senders('c')).toEqual(['b']);

    reset();
    net.heal();
    net.isolate('b');
    all();
    await turn();
    expect(senders('a')).toEqual(['c']);
    expect(senders('b')).toEqual([]);
    expect(senders('c')).toEqual(['a']);

    reset();
    net.heal();
    net.cutOneWay('a', 'b');
    all();
    await turn();
    expect(senders('b')).toEqual(['c']);
    expect(senders('a')).toEqual(['b', 'c']);

    reset();
    net.heal();
    all();
    await turn();
    expect(senders('a')).toEqual(['b', 'c']);
    expect(senders('b')).toEqual(['a', 'c']);
  });

  it('applies partitions to messages already in flight', async () => {
    const net = new MemoryNetwork();
    const c = await cluster(net, ['a', 'b']);
    c.t('a').send([hb('a', 'b', 1)]);
    net.partition('a', 'b');
    await turn();
    expect(c.got('b')).toEqual([]);
    expect(net.stats().dropped).toBe(1);
  });

  it('drops what the filter rejects', async () => {
    const net = new MemoryNetwork();
    const c = await cluster(net, ['a', 'b']);
    net.setFilter((m) => m.term % 2 === 0);
    c.t('a').send([1, 2, 3, 4].map((term) => hb('a', 'b', term)));
    await turn();
    expect(c.got('b').map((m) => m.term)).toEqual([2, 4]);
    net.setFilter(undefined);
    c.t('a').send([hb('a', 'b', 5)]);
    await turn();
    expect(c.got('b').map((m) => m.term)).toEqual([2, 4, 5]);
  });

  it('drops messages to removed, closed or never-started nodes; a restarted node takes its address back', async () => {
    const net = new MemoryNetwork();
    const c = await cluster(net, ['a', 'b']);
    const ghost = net.createTransport('ghost');
    expect(ghost.address).toBe('ghost');
    c.t('a').send([hb('a', 'ghost', 1)]);
    await turn();
    expect(net.stats().dropped).toBe(1);

    c.t('a').removePeer('b');
    c.t('a').send([hb('a', 'b', 1)]);
    expect(c.t('a').stats().messagesDropped).toBe(1);
    c.t('a').setPeer('b', 'b');

    await c.t('b').close();
    c.t('a').send([hb('a', 'b', 2)]);
    await turn();
    expect(c.got('b')).toEqual([]);

    const b2 = net.createTransport('b');
    const got2: RaftMessage[] = [];
    await b2.start((m) => got2.push(m));
    c.t('a').send([hb('a', 'b', 3)]);
    await turn();
    expect(got2.map((m) => m.term)).toEqual([3]);
    expect(() => c.t('b').send([hb('b', 'a', 1)])).not.toThrow();
  });

  it('routes by peer address and drops messages that land on the wrong node', async () => {
    const net = new MemoryNetwork();
    const a = net.createTransport('a', { peers: { b: 'host-b' } });
    const b = net.createTransport('b', { address: 'host-b' });
    const c = net.createTransport('c');
    const got: RaftMessage[] = [];
    await a.start(() => {});
    await b.start((m) => got.push(m));
    await c.start((m) => got.push(m));
    a.send([hb('a', 'b', 1)]);
    a.setPeer('b', 'c');
    a.send([hb('a', 'b', 2)]);
    await turn();
    expect(got.map((m) => m.term)).toEqual([1]);
    expect(net.stats()).toEqual({ delivered: 1, dropped: 1 });
  });

  it('refuses an address in use and a second start', async () => {
    const net = new MemoryNetwork();
    const a = net.createTransport('a');
    await a.start(() => {});
    await expect(a.start(() => {})).rejects.toBeInstanceOf(RaftTransportError);
    await expect(net.createTransport('a').start(() => {})).rejects.toMatchObject({ code: 'TRANSPORT' });
  });

  it('bounds the messages in flight', async () => {
    const net = new MemoryNetwork({ inFlightMessagesMax: 3 });
    const c = await cluster(net, ['a', 'b']);
    c.t('a').send([1, 2, 3, 4, 5].map((term) => hb('a', 'b', term)));
    await turn();
    expect(c.got('b').map((m) => m.term)).toEqual([1, 2, 3]);
    expect(net.stats()).toEqual({ delivered: 3, dropped: 2 });
  });
});
