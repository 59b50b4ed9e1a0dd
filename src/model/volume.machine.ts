/**
 * The volume lifecycle as an xstate machine, used only as a pure transition table by the projector.
 * Attachment is part of the state (`available` = detached, `attached`), so the actions the api
 * shows follow from the state alone. Progress events come from observations of the storage node
 * (REACHED_PRESENT when the dataset exists at least at the desired size, LOST when a dataset that
 * existed vanished), from agent results (RESTORED) and from the main loop (FAILED, REMOVED).
 *
 *   creating ─▶ available ⇄ attached;  available|attached ─GROW▶ growing ─▶ back
 *   available|attached ─RESTORE▶ restoring ─RESTORED▶ back;  ─DELETE▶ deleting ─▶ removed
 */
import { setup } from 'xstate';
import type { EventsOf, UserEventOf, WorkEvent } from './machine-kit.ts';

/** User-facing events as GDAPI action names. `delete` is the DELETE method. */
export const VOLUME_USER_EVENTS = {
  attach: 'ATTACH',
  detach: 'DETACH',
  grow: 'GROW',
  snapshot: 'SNAPSHOT',
  restore: 'RESTORE',
  delete: 'DELETE',
} as const;

/** Events of the volume machine: the user's, observations of its node, results, the main loop's. */
export type VolumeMachineEvent =
  | UserEventOf<typeof VOLUME_USER_EVENTS>
  /**
   * REACHED_PRESENT: the dataset exists at least at the desired size; RESTORED: the rollback was
   * reported done. `attached`: the row's attachment, where the work returns to.
   */
  | EventsOf<'REACHED_PRESENT' | 'RESTORED', { attached: boolean }>
  /** A dataset that existed is gone (lost disk): its data is lost, so it is an error. */
  | { type: 'LOST' }
  | WorkEvent;

const isAttached = ({ event }: { event: VolumeMachineEvent }): boolean =>
  'attached' in event && event.attached;

/** Where a finished piece of work returns to, by attachment. */
const back = [{ guard: 'isAttached', target: 'attached' }, { target: 'available' }] as const;

export const volumeMachine = setup({
  types: { events: {} as VolumeMachineEvent },
  guards: { isAttached },
}).createMachine({
  id: 'volume',
  initial: 'creating',
  states: {
    creating: {
      on: { DELETE: 'deleting', REACHED_PRESENT: [...back], FAILED: 'error' },
    },
    available: {
      on: {
        ATTACH: 'attached',
        GROW: 'growing',
        // Taking a snapshot creates a snapshot resource; the volume itself stays where it is (a
        // self-target, not a targetless transition, so xstate's `can()` reports it as accepted).
        SNAPSHOT: 'available',
        RESTORE: 'restoring',
        DELETE: 'deleting',
        LOST: 'error',
        FAILED: 'error',
      },
    },
    attached: {
      on: {
        DETACH: 'available',
        GROW: 'growing',
        SNAPSHOT: 'attached',
        RESTORE: 'restoring',
        // Only the cascade of a VM's deletion deletes an attached (root) volume; the api refuses
        // a direct delete of an attached or root volume before it reaches the machine.
        DELETE: 'deleting',
        LOST: 'error',
        FAILED: 'error',
      },
    },
    // Deleting is possible mid-work (the cascade of a VM's deletion may come at any time).
    growing: {
      on: { REACHED_PRESENT: [...back], DELETE: 'deleting', LOST: 'error', FAILED: 'error' },
    },
    restoring: {
      on: { RESTORED: [...back], DELETE: 'deleting', LOST: 'error', FAILED: 'error' },
    },
    error: {
      on: { GROW: 'growing', RESTORE: 'restoring', DELETE: 'deleting' },
    },
    deleting: {
      on: { REMOVED: 'removed', FAILED: 'error' },
    },
    removed: { type: 'final' },
  },
});
