/**
 * Wire codec for batches of Raft messages (the payload of one transport frame).
 *
 * msgpackr with records but without shared structures: every encoded batch carries its own
 * record definitions, so any decoder can read any frame, whatever it decoded before (peers
 * restart independently and must never depend on each other's codec state).
 */
import { Packr, Unpackr } from 'msgpackr';
import { RaftError } from './errors.js';
import { MessageTypes, type RaftMessage } from './types.js';

/** A payload that is not a msgpack-encoded array of well-formed Raft messages. */
export class RaftCodecError extends RaftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CODEC', message, options);
  }
}

const packr = new Packr({ useRecords: true });

// copyBuffers: decoded `bin` values (entry data, snapshot chunks, contexts) are copied out of
// the frame, so they neither pin the whole frame in memory nor change if the frame's backing
// slab is reused by the network layer.
const unpackr = new Unpackr({ useRecords: true, copyBuffers: true, int64AsType: 'number' });

const messageTypes: ReadonlySet<string> = new Set(MessageTypes);

/**
 * Encodes a batch of messages. The result may be a view into a slab that msgpackr shares
 * between results (never overwritten by later calls); treat it as read-only.
 */
export function encodeMessages(msgs: readonly RaftMessage[]): Uint8Array {
  // One pack call for the whole batch: never `msgs.map(pack)` (map's index argument would
  // be read as msgpackr encode flags).
  return packr.pack(msgs);
}

/**
 * Decodes a batch encoded by {@link encodeMessages}.
 * @throws RaftCodecError if the bytes are not msgpack or not an array of messages with a
 *   known string `type`, string `from`/`to` and a non-negative integer `term`. Fields other
 *   than these are not checked: they are the core's business and come from a trusted peer.
 */
export function decodeMessages(buf: Uint8Array): RaftMessage[] {
  // Unpack from a plain Uint8Array view: msgpackr then copies `bin` values into plain
  // Uint8Arrays (the declared type, and deep-equal to what was sent) rather than Buffers.
  const bytes = Buffer.isBuffer(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : buf;
  let value: unknown;
  try {
    value = unpackr.unpack(bytes);
  } catch (err) {
    throw new RaftCodecError(`undecodable frame of ${buf.byteLength} bytes`, { cause: err });
  }
  if (!Array.isArray(value)) throw new RaftCodecError('frame is not an array of messages');
  for (let i = 0; i < value.length; i++) {
    const problem = messageProblem(value[i]);
    if (problem !== undefined) throw new RaftCodecError(`message ${i} of ${value.length}: ${problem}`);
  }
  return value as RaftMessage[];
}

function messageProblem(m: unknown): string | undefined {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'not an object';
  const msg = m as Record<string, unknown>;
  if (typeof msg.type !== 'string' || !messageTypes.has(msg.type)) return `bad type ${String(msg.type)}`;
  if (typeof msg.from !== 'string') return 'from is not a string';
  if (typeof msg.to !== 'string') return 'to is not a string';
  if (!Number.isSafeInteger(msg.term) || (msg.term as number) < 0)
    return 'term is not a non-negative integer';
  if (msg.entries !== undefined && !Array.isArray(msg.entries)) return 'entries is not an array';
  return undefined;
}
