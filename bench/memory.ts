/**
 * `npm run bench:memory`: a master's heap per stored pod. Pod creates are applied to an
 * ObjectStore as committed entries, the way every master applies the log (an object actor
 * per pod, the store's indexes, the watch hub's window), and the heap is measured after full
 * collections before and after. The reference, measured in the same run: the same decoded
 * pods held in a plain Map, nothing else. Target (DESIGN.md): at most 3 KB per stored pod
 * beyond its encoded size.
 *
 * Flags: `--pods N` (default 30,000). Needs `--expose-gc` (the npm script passes it).
 * Prints `{ pods, encodedBytesPerPod, heapBytesPerPod, overheadBytesPerPod, targetOverheadBytes,
 * plainMapBytesPerPod, objectActors }`.
 */

import { parseArgs } from 'node:util';
import { pack } from 'msgpackr';
import { startActorSystem, stopActorSystem } from '../actors/runtime.js';
import { decodeRecord, encodeRecord, ObjectStore } from '../actors/store.js';
import type { Command } from '../core/commands.js';
import type { ApiObject } from '../core/index.js';
import type { Entry } from '../raft/index.js';
import { progressTo, runBench } from './lib/output.js';
import { benchPod } from './lib/pods.js';

const progress = progressTo('memory');
const BATCH_ENTRIES = 200;
const TARGET_OVERHEAD_BYTES = 3 * 1024;

function collect(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc (npm run bench:memory does)');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** The entry that creates pod `i`, as the log holds it. */
function createEntry(i: number): Entry {
  const cmd: Command = { op: 'create', object: benchPod(i) };
  return { index: i + 1, term: 1, type: 'normal', data: encodeRecord({ t: 'cmd', cmd }) } as Entry;
}

runBench('memory', async () => {
  const { values } = parseArgs({ options: { pods: { type: 'string', default: '30000' } } });
  const pods = Number(values.pods);
  if (!Number.isSafeInteger(pods) || pods < 1)
    throw new Error(`--pods: a positive integer, not ${values.pods}`);

  // The reference: the decoded pods alone, in a Map by key.
  let before = collect();
  const plain = new Map<string, ApiObject>();
  for (let i = 0; i < pods; i += 1) {
    const rec = decodeRecord(createEntry(i).data);
    if (rec.t === 'cmd' && rec.cmd.op === 'create') plain.set(`Pod/default/web-${i}`, rec.cmd.object);
  }
  const plainMapBytesPerPod = (collect() - before) / pods;
  let encoded = 0;
  for (const obj of plain.values()) encoded += pack(obj).byteLength;
  plain.clear();
  progress(`plain map: ${plainMapBytesPerPod.toFixed(0)} bytes per pod`);

  // The store, applying the creates in batches (generated per batch: no entry outlives it).
  const system = startActorSystem();
  before = collect();
  const store = new ObjectStore({ system });
  for (let from = 0; from < pods; from += BATCH_ENTRIES) {
    const batch: Entry[] = [];
    for (let i = from; i < Math.min(pods, from + BATCH_ENTRIES); i += 1) batch.push(createEntry(i));
    await store.applyBatch(batch, batch[batch.length - 1].index);
  }
  const heapBytesPerPod = (collect() - before) / pods;
  if (store.count('Pod') !== pods) throw new Error(`${store.count('Pod')} pods stored, not ${pods}`);
  const objectActors = system.systemMetrics().actors;
  progress(`store: ${heapBytesPerPod.toFixed(0)} bytes per pod, ${objectActors} actors`);
  store.close();
  await stopActorSystem(system);

  const encodedBytesPerPod = encoded / pods;
  return {
    pods,
    encodedBytesPerPod: Math.round(encodedBytesPerPod),
    heapBytesPerPod: Math.round(heapBytesPerPod),
    overheadBytesPerPod: Math.round(heapBytesPerPod - encodedBytesPerPod),
    targetOverheadBytes: TARGET_OVERHEAD_BYTES,
    plainMapBytesPerPod: Math.round(plainMapBytesPerPod),
    objectActors,
  };
});
