/**
 * The virtual machine lifecycle as an xstate machine, used only as a pure transition table: the
 * projector feeds it one event per stored event (`transition()`), never an actor, never a timer.
 * User events (START, STOP, RESTART, DELETE) come from api requests; progress events come from
 * observations (REACHED_*), the main loop (FAILED, REMOVED). A state is transitional exactly when
 * the observed domain differs from what the user asked for, which is what the main loop works on.
 *
 *   creating ─▶ starting ─▶ running ─▶ stopping ─▶ stopped ─▶ starting …
 *   running ─RESTART▶ restarting ─(shut off)▶ starting ─▶ running
 *   any live state ─DELETE▶ deleting ─REMOVED▶ removed;   work that gives up ─FAILED▶ error
 */
import { setup } from 'xstate';
import type { EventsOf, UserEventOf, WorkEvent } from './machine-kit.ts';
import type { VmDesired } from './resources.ts';

/** User-facing events of this machine, as GDAPI action names. `delete` is the DELETE method. */
export const VM_USER_EVENTS = {
  start: 'START',
  stop: 'STOP',
  restart: 'RESTART',
  delete: 'DELETE',
} as const;

/** Events of the VM machine. `desired` is the row's desired state after the event's own effect. */
export type VmMachineEvent =
  | UserEventOf<typeof VM_USER_EVENTS>
  /**
   * The domain as observed on the VM's host: running (or paused), shut off (or crashed), or
   * absent (the host has no such domain).
   */
  | EventsOf<'REACHED_RUNNING' | 'REACHED_STOPPED' | 'REACHED_ABSENT', { desired: VmDesired }>
  | WorkEvent;

const wantsRunning = ({ event }: { event: VmMachineEvent }): boolean =>
  'desired' in event && event.desired === 'running';
const wantsStopped = ({ event }: { event: VmMachineEvent }): boolean =>
  'desired' in event && event.desired === 'stopped';

export const vmMachine = setup({
  types: { events: {} as VmMachineEvent },
  guards: { wantsRunning, wantsStopped },
}).createMachine({
  id: 'virtualMachine',
  initial: 'creating',
  states: {
    creating: {
      on: {
        DELETE: 'deleting',
        REACHED_RUNNING: [{ guard: 'wantsStopped', target: 'stopping' }, { target: 'running' }],
        REACHED_STOPPED: [{ guard: 'wantsRunning', target: 'starting' }, { target: 'stopped' }],
        // An absent domain is what creating starts from: it is defined by the first command.
        FAILED: 'error',
      },
    },
    starting: {
      on: {
        STOP: 'stopping',
        DELETE: 'deleting',
        REACHED_RUNNING: 'running',
        FAILED: 'error',
      },
    },
    running: {
      on: {
        STOP: 'stopping',
        RESTART: 'restarting',
        DELETE: 'deleting',
        // It crashed, was shut down from inside, or its host lost it: bring it back.
        REACHED_STOPPED: 'starting',
        REACHED_ABSENT: 'starting',
        FAILED: 'error',
      },
    },
    stopping: {
      on: {
        START: 'starting',
        DELETE: 'deleting',
        REACHED_STOPPED: 'stopped',
        REACHED_ABSENT: 'stopped',
        FAILED: 'error',
      },
    },
    stopped: {
      on: {
        START: 'starting',
        DELETE: 'deleting',
        // Someone started it behind our back: stop it again.
        REACHED_RUNNING: 'stopping',
        FAILED: 'error',
      },
    },
    restarting: {
      on: {
        STOP: 'stopping',
        DELETE: 'deleting',
        REACHED_STOPPED: 'starting',
        REACHED_ABSENT: 'starting',
        FAILED: 'error',
      },
    },
    error: {
      // Sticky until the user asks again; a new request resets the attempts.
      on: { START: 'starting', STOP: 'stopping', DELETE: 'deleting' },
    },
    deleting: {
      on: { REMOVED: 'removed', FAILED: 'error' },
    },
    removed: { type: 'final' },
  },
});
