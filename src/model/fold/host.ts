/**
 * How a host's stream folds into its row: one reducer per `host.*` event, then the host machine
 * is fed and settles on the host's liveness (an active host that is offline is down, a down host
 * that is online is active).
 */
import { stepState, transitioningOf, type MachineEventOf } from '../lifecycle.ts';
import type { HostRow } from '../resources.ts';
import { newRow, NO_EFFECT, renamed, type Draft, type Effect, type ResourceFold } from './kit.ts';

type HostEvent = MachineEventOf['host'];

/** Settles the host's state on its liveness and shows why it is not active. */
function finish(r: Draft<HostRow>, effect: Effect<HostEvent>): void {
  let state = effect.event === undefined ? r.state : stepState('host', r.state, effect.event);
  if (state === 'active' && !r.online) state = stepState('host', state, { type: 'DOWN' });
  if (state === 'down' && r.online) state = stepState('host', state, { type: 'UP' });
  r.state = state;
  r.transitioning = transitioningOf('host', state);
  r.transitioningMessage =
    state === 'down' ? 'no reports from the host' : state === 'maintenance' ? 'evacuating' : null;
}

/** The fold of `host` streams. */
export const hostFold: ResourceFold<HostRow, HostEvent, 'host.created'> = {
  creation: 'host.created',
  create: (x, event) => ({
    ...newRow(event, { type: 'host', accountId: null, name: x.name, state: 'registering' }),
    desired: 'present',
    kind: x.kind,
    vcpus: x.vcpus,
    memoryMb: x.memoryMb,
    poolSizeGb: x.poolSizeGb,
    online: false,
    observed: null,
  }),
  noun: 'a host',
  reducers: {
    'host.maintenance-requested': () => ({ event: { type: 'MAINTENANCE' } }),
    'host.activate-requested': () => ({ event: { type: 'ACTIVATE' } }),
    'host.removed': (r, _x, event) => {
      r.desired = 'deleted';
      r.removed = event.meta.atMs;
      return { event: { type: 'REMOVE' } };
    },
    'host.up': (r, x, event) => {
      r.online = true;
      r.observed = {
        vcpus: x.vcpus,
        memoryMb: x.memoryMb,
        poolSizeBytes: x.poolSizeBytes,
        atMs: event.meta.atMs,
      };
      return { event: { type: 'UP' } };
    },
    'host.down': (r) => {
      r.online = false;
      return { event: { type: 'DOWN' } };
    },
    // Only the version matters: it serialises placements on this host (the host still settles).
    'host.placement-recorded': () => NO_EFFECT,
    'host.renamed': renamed,
  },
  finish,
};
