/**
 * The host lifecycle as an xstate machine, used only as a pure transition table by the projector.
 * Admin events: MAINTENANCE (evacuate), ACTIVATE (leave maintenance), REMOVE (only when empty: the
 * api checks). Liveness events from the background: UP (first inventory, or reports resumed) and
 * DOWN (reports stopped). A host in maintenance stays in maintenance whether up or down; the row's
 * `online` flag says which.
 *
 *   registering ─UP▶ active ⇄ down;  active|down ─MAINTENANCE▶ maintenance ─ACTIVATE▶ active
 *   any ─REMOVE▶ removed
 */
import { tableMachine, type UserEventOf } from './machine-kit.ts';

/** User-facing (admin) events as GDAPI action names. */
export const HOST_USER_EVENTS = {
  maintenance: 'MAINTENANCE',
  activate: 'ACTIVATE',
  remove: 'REMOVE',
} as const;

/** Events of the host machine: the admin's, and the background's liveness reports. */
export type HostMachineEvent =
  UserEventOf<typeof HOST_USER_EVENTS> | { type: 'UP' } | { type: 'DOWN' };

/** The host lifecycle (see the header). */
export const hostMachine = tableMachine<HostMachineEvent>('host', 'registering', {
  registering: { on: { UP: 'active', MAINTENANCE: 'maintenance', REMOVE: 'removed' } },
  active: { on: { DOWN: 'down', MAINTENANCE: 'maintenance', REMOVE: 'removed' } },
  down: { on: { UP: 'active', MAINTENANCE: 'maintenance', REMOVE: 'removed' } },
  maintenance: { on: { ACTIVATE: 'active', REMOVE: 'removed' } },
  removed: { type: 'final' },
});
