/**
 * The snapshot lifecycle as an xstate machine, used only as a pure transition table by the
 * projector: creating → available → deleting → removed; error when work gives up or a snapshot
 * that existed is lost (a snapshot cannot be re-taken with the same contents).
 */
import { tableMachine, type UserEventOf, type WorkEvent } from './machine-kit.ts';

/** User-facing events as GDAPI action names. `delete` is the DELETE method. */
export const SNAPSHOT_USER_EVENTS = { delete: 'DELETE' } as const;

/** Events of the snapshot machine: the user's, observations of its node, the main loop's. */
export type SnapshotMachineEvent =
  | UserEventOf<typeof SNAPSHOT_USER_EVENTS>
  | { type: 'REACHED_PRESENT' }
  | { type: 'LOST' }
  | WorkEvent;

/** The snapshot lifecycle (see the header). */
export const snapshotMachine = tableMachine<SnapshotMachineEvent>('snapshot', 'creating', {
  creating: { on: { REACHED_PRESENT: 'available', DELETE: 'deleting', FAILED: 'error' } },
  available: { on: { DELETE: 'deleting', LOST: 'error', FAILED: 'error' } },
  error: { on: { DELETE: 'deleting' } },
  deleting: { on: { REMOVED: 'removed', FAILED: 'error' } },
  removed: { type: 'final' },
});
