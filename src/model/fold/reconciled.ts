/**
 * What the folds of the reconciled types (VMs, volumes, snapshots) share: the bookkeeping events
 * the main loop and the background write for each of them (commands sent, failed attempts,
 * waiting, failure, removal, results, progress), the row a creation starts and the lifecycle step
 * that follows every reducer (feed the machine, settle on the current observation, reset attempts).
 *
 * Attempts reset whenever the state changes or the user asks for something: a new goal gets the
 * full budget of attempts. The last failure reason (`lastError`, shown in `transitioningMessage`)
 * outlives progress toward the same goal — a start that failed for lack of memory still moves the
 * VM from creating to starting, as the domain got defined — and is cleared only when the resource
 * settles (the operation succeeded) or a new goal begins (the user asked again, a new placement).
 */
import { assert } from '../../lib/assert.ts';
import type { EventDataMap } from '../events.ts';
import { stepState, transitioningOf, type MachineEventOf } from '../lifecycle.ts';
import type { WorkEvent } from '../machine-kit.ts';
import type { ReconciledType, RowCommon } from '../resources.ts';
import type { StoredEvent } from '../stream.ts';
import { newRow, NO_EFFECT, type Draft, type Effect, type Reducers } from './kit.ts';

/**
 * The reducers of the bookkeeping events of `prefix` (`vm.command-sent`, `vm.attempt-failed`, …),
 * to spread into the type's table. Their data has the same shape under every prefix.
 */
export function bookkeepingReducers<R extends RowCommon>(
  prefix: 'vm' | 'volume' | 'snapshot',
): Reducers<R, WorkEvent> {
  const table = {
    'command-sent': (r: Draft<RowCommon>, x: EventDataMap['vm.command-sent'], e: StoredEvent) => {
      r.lastCommand = {
        commandId: x.commandId,
        command: x.command,
        hostId: x.hostId,
        attempt: x.attempt,
        token: x.token,
        sentAtMs: e.meta.atMs,
        goal: x.goal,
      };
      r.attempts = x.attempt;
      r.nextAttemptAtMs = x.nextAttemptAtMs;
      // The reason the previous attempt failed stays visible while the next one is in flight. A
      // command sent again after no answer is not a failure (a guest may take its time to shut
      // down): the message says what happened, not that something went wrong.
      r.transitioningMessage =
        r.lastError !== null
          ? `retrying (attempt ${x.attempt}) after: ${r.lastError}`
          : x.attempt > 1
            ? `no answer from the host yet: sent again (attempt ${x.attempt})`
            : null;
      return NO_EFFECT;
    },
    'attempt-failed': (r: Draft<RowCommon>, x: EventDataMap['vm.attempt-failed']) => {
      r.attempts = x.attempt;
      r.nextAttemptAtMs = x.nextAttemptAtMs;
      r.lastError = x.reason;
      r.transitioningMessage = x.reason;
      return NO_EFFECT;
    },
    waiting: (r: Draft<RowCommon>, x: EventDataMap['vm.waiting']) => {
      r.transitioningMessage = x.message;
      return NO_EFFECT;
    },
    failed: (r: Draft<RowCommon>, x: EventDataMap['vm.failed']): Effect<WorkEvent> => {
      r.lastError = x.reason;
      return { event: { type: 'FAILED' } };
    },
    removed: (r: Draft<RowCommon>, _x: unknown, e: StoredEvent): Effect<WorkEvent> => {
      r.removed = e.meta.atMs;
      return { event: { type: 'REMOVED' } };
    },
    'command-reported': (
      r: Draft<RowCommon>,
      x: EventDataMap['vm.command-reported'],
      e: StoredEvent,
    ) => {
      r.lastResult = { commandId: x.commandId, ok: x.ok, error: x.error, atMs: e.meta.atMs };
      if (!x.ok && r.lastCommand?.commandId === x.commandId) {
        r.lastError = x.error ?? 'command failed';
        if (r.transitioning === 'yes') r.transitioningMessage = r.lastError;
      }
      return NO_EFFECT;
    },
    'progress-reported': (r: Draft<RowCommon>, x: EventDataMap['vm.progress-reported']) => {
      r.transitioningMessage = x.message;
      r.transitioningProgress = x.progress;
      return NO_EFFECT;
    },
  };
  return Object.fromEntries(
    Object.entries(table).map(([suffix, reducer]) => [`${prefix}.${suffix}`, reducer]),
  );
}

/**
 * The common fields of a reconciled row its creation event starts: `creating`, work in progress,
 * and what the user wants of it.
 */
export function reconciledRow<T extends ReconciledType, D extends string>(
  event: StoredEvent,
  type: T,
  x: { readonly accountId: string; readonly name: string },
  desired: D,
): RowCommon & { readonly type: T; readonly accountId: string; readonly desired: D } {
  const common = newRow(event, {
    type,
    accountId: x.accountId,
    name: x.name,
    state: 'creating',
    transitioning: 'yes',
  });
  return { ...common, desired };
}

/**
 * The step after every reducer of a reconciled type: feed the reducer's machine event, then settle
 * once on what the current observation implies (`settle`, not asked of removed rows). Settling
 * matters because observations are written only on change: a VM asked to stop and then to start
 * again before anything happened is still observed running, and no new observation will come to
 * move it from `starting` to `running`.
 */
export function finishReconciled<T extends ReconciledType, R extends RowCommon>(
  type: T,
  settle: (r: Draft<R>) => MachineEventOf[T] | null,
): (r: Draft<R>, effect: Effect<MachineEventOf[T]>) => void {
  return (r, effect) => {
    const settled = r.state === 'removed' ? null : settle(r);
    advance(type, r, [effect.event ?? null, settled], effect.newGoal ?? false);
  };
}

/**
 * Applies `events` to the row's machine in order, then updates the transitioning fields and resets
 * attempts on a state change. `newGoal`: the event starts a new goal (a user request, a new
 * placement or attachment): attempts reset and the last failure is forgotten. A state change toward
 * the same goal resets attempts but keeps the last failure reason until the state settles.
 */
function advance<T extends ReconciledType>(
  type: T,
  r: Draft<RowCommon>,
  events: readonly (MachineEventOf[T] | null)[],
  newGoal: boolean,
): void {
  const before = r.state;
  let state = before;
  for (const e of events) if (e !== null) state = stepState(type, state, e);
  r.state = state;
  // Removal is recorded only for a resource being deleted; anything else is a planner bug.
  if (events.some((e) => e?.type === 'REMOVED'))
    assert(state === 'removed', `${type} ${r.id}: removed while ${before}`);
  r.transitioning = transitioningOf(type, state);
  if (state !== before || newGoal) {
    r.attempts = 0;
    r.nextAttemptAtMs = null;
    r.transitioningProgress = null;
    if (state === 'error') {
      // The error state shows its reason (below).
    } else if (newGoal || r.transitioning === 'no') {
      // Asked again, or done: an old failure says nothing about this.
      r.lastError = null;
      r.transitioningMessage = null;
    } else {
      // Progress toward the same goal: the reason the last attempt failed stays visible.
      r.transitioningMessage = r.lastError;
    }
  }
  if (state === 'error') r.transitioningMessage = r.lastError ?? 'failed';
}
