/**
 * What every decision shares: its outcome and error types, the context it runs in, and the few
 * shapes every resource's decisions are built from — an event on a new stream, an event on an
 * existing row's stream at the version read, a user action the row's lifecycle machine must accept.
 *
 * Layout of src/model/decide: this kit and `clones.ts` (the clone rule that spans volumes and
 * snapshots) are shared; every other file holds the decisions of one resource type. src/model/
 * decide.ts re-exports them all, so adding a resource type is adding a file here.
 */
import { newEvent, type EventDataMap, type EventType } from '../events.ts';
import { accepts, availableActions, USER_EVENTS } from '../lifecycle.ts';
import type { MachineType } from '../resources.ts';
import type { EventMeta, IdSource, NewEvent, StreamAppend } from '../stream.ts';

/** GDAPI error codes a decision may return (422 unless noted). */
export type DecideErrorCode =
  | 'InvalidState'
  /** 404 in GDAPI: the action is not valid in the resource's current state. */
  | 'ActionNotAvailable'
  | 'InvalidReference'
  | 'MaxLimitExceeded'
  | 'MinLimitExceeded'
  | 'NotUnique'
  | 'MissingRequired'
  | 'InvalidOption'
  /** Field rules (a new name): as the api's schema validation reports them. */
  | 'InvalidFormat'
  | 'MinLengthExceeded'
  | 'MaxLengthExceeded'
  | 'InvalidCharacters'
  /** 403. */
  | 'PermissionDenied';

/** A refused decision: a GDAPI error code, its message and the field it is about, if any. */
export interface DecideError {
  readonly code: DecideErrorCode;
  readonly message: string;
  readonly fieldName?: string;
}

/** The outcome of a decision. `id`: the resource created or acted on (for `Location`). */
export type Decision =
  | { readonly ok: true; readonly id: string; readonly appends: readonly StreamAppend[] }
  | { readonly ok: false; readonly error: DecideError };

/** What every decision needs from the world. */
export interface DecideContext {
  /** Time of the request, ms since the epoch: every event's `meta.atMs`. */
  readonly nowMs: number;
  /** Ids for new resources (the Ids port). */
  readonly ids: IdSource;
  /** `api:<accountId>`. */
  readonly actor?: string;
  /** The request id, shared by every event of the operation. */
  readonly correlationId?: string;
}

function metaOf(ctx: DecideContext): EventMeta {
  return {
    atMs: ctx.nowMs,
    ...(ctx.actor === undefined ? {} : { actor: ctx.actor }),
    ...(ctx.correlationId === undefined ? {} : { correlationId: ctx.correlationId }),
  };
}

/** An event of the decision, stamped with the request's time, actor and correlation id. */
export function ev<T extends EventType>(
  type: T,
  data: EventDataMap[T],
  ctx: DecideContext,
): NewEvent {
  return newEvent(type, data, metaOf(ctx));
}

/** A refusal. */
export function fail(code: DecideErrorCode, message: string, fieldName?: string): Decision {
  return {
    ok: false,
    error: fieldName === undefined ? { code, message } : { code, message, fieldName },
  };
}

/** An acceptance: `appends` to commit in one batch, answering with `id`. */
export function ok(id: string, appends: readonly StreamAppend[]): Decision {
  return { ok: true, id, appends };
}

/** One event starting the new stream `id` (which must not exist yet). */
export function startStream<T extends EventType>(
  id: string,
  type: T,
  data: EventDataMap[T],
  ctx: DecideContext,
): StreamAppend {
  return { stream: id, expectedVersion: 0, events: [ev(type, data, ctx)] };
}

/**
 * One event on an existing row's stream, at the version the decision read: a concurrent write to
 * the row conflicts, and the api decides again on the fresh row.
 */
export function appendTo<T extends EventType>(
  row: { readonly id: string; readonly rev: number },
  type: T,
  data: EventDataMap[T],
  ctx: DecideContext,
): StreamAppend {
  return { stream: row.id, expectedVersion: row.rev, events: [ev(type, data, ctx)] };
}

/** ActionNotAvailable unless the machine of `type` accepts the user `action` in `state`. */
export function requireAction(
  type: MachineType,
  id: string,
  state: string,
  action: string,
): Decision | null {
  const event = USER_EVENTS[type][action];
  if (event !== undefined && accepts(type, state, { type: event } as never)) return null;
  const valid = availableActions(type, state);
  return fail(
    'ActionNotAvailable',
    `${action} is not available for ${type} ${id} in state ${state}` +
      (valid.length > 0 ? ` (available: ${valid.join(', ')})` : ''),
  );
}

/** A row a user action is decided on. */
type ActionRow = { readonly id: string; readonly rev: number; readonly state: string };

/**
 * A user action: ActionNotAvailable unless the row's machine accepts it, then whatever `refuse`
 * (the action's own rules) says, else `type` (an event without data) on the row's stream.
 */
export function decideUserAction<T extends EventType & `${string}-requested`>(
  action: { readonly machine: MachineType; readonly action: string; readonly type: T },
  row: ActionRow,
  ctx: DecideContext,
  refuse: () => Decision | null = () => null,
): Decision {
  return (
    requireAction(action.machine, row.id, row.state, action.action) ??
    refuse() ??
    ok(row.id, [appendTo(row, action.type, {} as EventDataMap[T], ctx)])
  );
}

/** The decision of a user action that needs nothing but the machine's consent. */
export function userAction<T extends EventType & `${string}-requested`>(
  machine: MachineType,
  action: string,
  type: T,
): (row: ActionRow, ctx: DecideContext) => Decision {
  return (row, ctx) => decideUserAction({ machine, action, type }, row, ctx);
}

/** A new resource: an id of `prefix` and its stream, started by `type`. */
export function createResource<T extends EventType>(
  prefix: string,
  type: T,
  data: EventDataMap[T],
  ctx: DecideContext,
): Decision {
  const id = ctx.ids.next(prefix);
  return ok(id, [startStream(id, type, data, ctx)]);
}

/** NotUnique when a live row of `existing` is named `name` already (`noun`: `an account`). */
export function requireUniqueName(
  existing: readonly { readonly name: string; readonly removed: number | null }[],
  name: string,
  noun: string,
): Decision | null {
  return existing.some((r) => r.removed === null && r.name === name)
    ? fail('NotUnique', `${noun} named ${name} exists`, 'name')
    : null;
}

/**
 * MinLimitExceeded below `min` (saying `tooSmall`), MaxLimitExceeded above `max` (saying
 * `tooLarge`), about `fieldName`; null within the bounds (inclusive).
 */
export function requireBetween(
  value: number,
  bounds: {
    readonly min: number;
    readonly max: number;
    readonly tooSmall: string;
    readonly tooLarge: string;
  },
  fieldName: string,
): Decision | null {
  if (value < bounds.min) return fail('MinLimitExceeded', bounds.tooSmall, fieldName);
  if (value > bounds.max) return fail('MaxLimitExceeded', bounds.tooLarge, fieldName);
  return null;
}

/** Up to ten ids for a message, with an ellipsis when there are more. */
export function someIds(ids: readonly string[]): string {
  return `${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', …' : ''}`;
}
