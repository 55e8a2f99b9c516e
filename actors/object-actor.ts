/**
 * One actor per API object. It owns the object's committed state and applies the commands
 * addressed to it with core's deterministic rules. Messages for one key arrive in log order
 * (one mailbox), so objects apply independently while each stays in order. The apply loop
 * asks with `askInline`: an idle actor (the usual case) applies in the loop's turn.
 */

import { type ApplyOutcome, applyCommandSafely, type Command } from '../core/commands.js';
import type { ApiObject } from '../core/index.js';
import { type ActorSpec, type RequestId, reply, type Step } from './runtime.js';

export interface ObjectActorState {
  readonly object: ApiObject | undefined;
}

export type ObjectMsg =
  | {
      readonly type: 'apply';
      readonly cmd: Command;
      readonly index: number;
      readonly replyTo: RequestId<ApplyOutcome>;
    }
  | { readonly type: 'get'; readonly replyTo: RequestId<ApiObject | undefined> };

/**
 * The spec of the actor for one key. `committed` gives the key's last committed object: the
 * initial state, and the state after a crash restart (the store's index holds it).
 */
export function objectActorSpec(
  committed: () => ApiObject | undefined,
): ActorSpec<ObjectActorState, ObjectMsg> {
  // Only `init` is per object; the logic is one shared function (there may be 100k actors).
  return { init: () => ({ object: committed() }), receive: receiveObjectMsg };
}

function receiveObjectMsg(state: ObjectActorState, msg: ObjectMsg): Step<ObjectActorState, ObjectMsg> {
  switch (msg.type) {
    case 'apply': {
      const outcome = applyCommandSafely(state.object, msg.cmd, msg.index);
      const object =
        outcome.result === 'written'
          ? outcome.event === 'DELETED'
            ? undefined
            : outcome.object
          : state.object;
      return { state: { object }, effects: [reply(msg.replyTo, outcome)] };
    }
    case 'get':
      return { state, effects: [reply(msg.replyTo, state.object)] };
    default: {
      const unknown: never = msg;
      throw new Error(`object actor: unknown message ${JSON.stringify(unknown)}`);
    }
  }
}
