/**
 * The snapshot lifecycle as an xstate machine, used only as a pure transition table by the
 * projector: creating → available → deleting → removed; error when work gives up or a snapshot
 * that existed is lost (a snapshot cannot be re-taken with the same contents).
 */
import { setup } from 'xstate';

export type SnapshotMachineEvent =
  | { type: 'DELETE' }
  | { type: 'REACHED_PRESENT' }
  | { type: 'LOST' }
  | { type: 'FAILED' }
  | { type: 'REMOVED' };

/** User-facing events as GDAPI action names. `delete` is the DELETE method. */
export const SNAPSHOT_USER_EVENTS = { delete: 'DELETE' } as const;

export const snapshotMachine = setup({
  types: { events: {} as SnapshotMachineEvent },
}).createMachine({
  id: 'snapshot',
  initial: 'creating',
  states: {
    creating: { on: { REACHED_PRESENT: 'available', DELETE: 'deleting', FAILED: 'error' } },
    available: { on: { DELETE: 'deleting', LOST: 'error', FAILED: 'error' } },
    error: { on: { DELETE: 'deleting' } },
    deleting: { on: { REMOVED: 'removed', FAILED: 'error' } },
    removed: { type: 'final' },
  },
});
