/**
 * The projector's reducer kit: each resource type folds its stream through a table of small
 * reducers, one per event type (as Redux reducers and xstate transitions read), and this file holds
 * what those tables share — the row a creation event starts, the generic fold that looks a reducer
 * up and then lets the type finish (feed its lifecycle machine, settle), and the reducers several
 * types use unchanged (renames, tombstones, user requests).
 *
 * Layout of src/model/fold: `kit.ts` (this file), `reconciled.ts` (bookkeeping and lifecycle
 * advance of VMs, volumes and snapshots) and `storage.ts` (placement and observation of volumes and
 * snapshots) are shared; every other file is one resource type's table.
 * A new resource type is one new file here plus its entry in projector.ts's table.
 */
import { assert, AssertionError } from '../../lib/assert.ts';
import type { EventDataMap, EventType } from '../events.ts';
import type { Row, RowCommon, StreamResourceType } from '../resources.ts';
import type { StoredEvent } from '../stream.ts';

/** Mutable view of a row while folding. */
export type Draft<T> = { -readonly [K in keyof T]: T[K] };

/** What a reducer asks of the step that follows it (see {@link ResourceFold.finish}). */
export interface Effect<E> {
  /** The lifecycle machine event the stored event stands for; absent: none (the row may settle). */
  readonly event?: E;
  /** A new goal (a user request, a new placement or attachment): attempts and failures reset. */
  readonly newGoal?: boolean;
  /** Only the row's version matters (it serialises writes): no machine step, no settling. */
  readonly versionOnly?: boolean;
}

/** Changes nothing beyond the reducer's own field updates. */
export const NO_EFFECT: Effect<never> = {};

/** A new goal without a machine event of its own (placements). */
export const NEW_GOAL: Effect<never> = { newGoal: true };

/** Only the version matters. */
export const VERSION_ONLY: Effect<never> = { versionOnly: true };

/** Folds one event of type `T` into a draft of the row (mutating it) and says what follows. */
export type Reducer<R, E, T extends EventType = EventType> = (
  r: Draft<R>,
  data: EventDataMap[T],
  event: StoredEvent,
) => Effect<E>;

/** One reducer per event type a stream of rows `R` may hold after its creation. */
export type Reducers<R, E> = { readonly [T in EventType]?: Reducer<R, E, T> };

/** How one resource type folds its stream. */
export interface ResourceFold<R extends Row, E, C extends EventType = EventType> {
  /** The event that starts a stream of this type. */
  readonly creation: C;
  /** The row the creation event starts. */
  create(data: EventDataMap[C], event: StoredEvent): R;
  readonly reducers: Reducers<R, E>;
  /** The row's kind in the assertion on an event the type does not fold: `a virtual machine`. */
  readonly noun: string;
  /**
   * After each reducer (but version-only ones): the machine step, settling, transitioning. Types
   * without a machine have none.
   */
  finish?(r: Draft<R>, effect: Effect<E>): void;
}

/** Folds `event` into `row` (null only for the stream's first event) by the type's table. */
export function foldWith<R extends Row, E, C extends EventType>(
  fold: ResourceFold<R, E, C>,
  row: R | null,
  event: StoredEvent,
): R {
  if (event.type === fold.creation) {
    assert(row === null, `${event.type} on existing ${event.stream}`);
    return fold.create(event.data as EventDataMap[C], event);
  }
  const r = { ...requireRow(row, event), rev: event.version } as Draft<R>;
  // Own members only: an event type named like an Object.prototype member is still unexpected.
  const reducer = Object.hasOwn(fold.reducers, event.type)
    ? (fold.reducers[event.type as EventType] as Reducer<R, E> | undefined)
    : undefined;
  if (reducer === undefined)
    throw new AssertionError(`projector: unexpected ${event.type} on ${fold.noun}`);
  const effect = reducer(r, event.data as EventDataMap[EventType], event);
  if (effect.versionOnly !== true) fold.finish?.(r, effect);
  return r;
}

/** The row before its creation is a bug in the writer: every stream starts with its creation. */
export function requireRow<T>(row: T | null, event: StoredEvent): T {
  assert(row !== null, `projector: ${event.type} on ${event.stream} before its creation`);
  return row;
}

/**
 * The common fields of a row its creation event starts: live, at the event's version, nothing
 * attempted or observed yet, `transitioning` as the type's first state implies.
 */
export function newRow<T extends StreamResourceType, A extends string | null>(
  event: StoredEvent,
  fields: {
    readonly type: T;
    readonly accountId: A;
    readonly name: string;
    readonly state: string;
    readonly transitioning?: RowCommon['transitioning'];
  },
): RowCommon & { readonly type: T; readonly accountId: A } {
  return {
    id: event.stream,
    type: fields.type,
    accountId: fields.accountId,
    name: fields.name,
    created: event.meta.atMs,
    removed: null,
    rev: event.version,
    state: fields.state,
    transitioning: fields.transitioning ?? 'no',
    transitioningMessage: null,
    transitioningProgress: null,
    attempts: 0,
    nextAttemptAtMs: null,
    lastError: null,
    lastCommand: null,
    lastResult: null,
  };
}

/**
 * The common fields of a row of a type without a machine (accounts, api keys, lookups, usage):
 * `active` and present from its creation on.
 */
export function activeRow<T extends StreamResourceType, A extends string | null>(
  event: StoredEvent,
  type: T,
  accountId: A,
  name: string,
): RowCommon & { readonly type: T; readonly accountId: A; readonly desired: 'present' } {
  return { ...newRow(event, { type, accountId, name, state: 'active' }), desired: 'present' };
}

/** `*.renamed`: a new name, no state moves. */
export function renamed(r: Draft<RowCommon>, data: { readonly name: string }): Effect<never> {
  r.name = data.name;
  return NO_EFFECT;
}

/** Removal of a type without a machine (accounts, api keys): the row stays as a tombstone. */
export function tombstone(
  r: Draft<RowCommon> & { desired: string },
  _data: unknown,
  event: StoredEvent,
): Effect<never> {
  r.desired = 'deleted';
  r.state = 'removed';
  r.removed = event.meta.atMs;
  return NO_EFFECT;
}

/** A user request: the row's new `desired`, fed to the machine as `event`, as a new goal. */
export function requested<E>(desired: string, event: E): (r: { desired: string }) => Effect<E> {
  return (r) => {
    r.desired = desired;
    return { event, newGoal: true };
  };
}
