/**
 * What the lifecycle machines (`*.machine.ts`) share: their user events follow from their GDAPI
 * action maps, the main loop's progress events are the same for every reconciled type, and a
 * machine without guards is only a table of states.
 */
import { setup, type EventObject } from 'xstate';

/** The user events of a machine, one `{ type }` per entry of its action map (GDAPI action → event). */
export type UserEventOf<M extends Readonly<Record<string, string>>> = {
  [K in keyof M]: { type: M[K] };
}[keyof M];

/**
 * One event per type of `T`, each carrying `data`: a union of events (as xstate narrows them by
 * `type`), not one event whose `type` is a union.
 */
export type EventsOf<T extends string, D extends object = object> = T extends unknown
  ? { type: T } & D
  : never;

/** Events from the main loop: the work gave up (attempts exhausted), the resource is gone. */
export type WorkEvent = EventsOf<'FAILED' | 'REMOVED'>;

/** A state of a machine without guards: its transitions by event type, or final. */
type TableState<E extends EventObject> =
  { readonly on: { readonly [T in E['type']]?: string } } | { readonly type: 'final' };

/** A lifecycle machine without guards: `states` by name, starting in `initial`. */
export function tableMachine<E extends EventObject>(
  id: string,
  initial: string,
  states: Readonly<Record<string, TableState<E>>>,
) {
  return setup({ types: { events: {} as E } }).createMachine({ id, initial, states });
}
