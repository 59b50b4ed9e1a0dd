/**
 * Safety and liveness predicates the checkers use, in terms of rows only.
 *
 * `isConverged(row)`: what was asked is what is observed, in a stable state (or the resource is
 * gone). `isSettled(row)`: converged, or in the error state with a reason — the liveness goal once
 * faults heal: nothing may stay transitioning. `isConvergedIn(row, world)` adds what one row cannot
 * see (a VM on a host in maintenance still has to move; a volume of a removed VM still has to go):
 * it is true exactly when the planner has nothing left to do.
 */
import { plan, vmSatisfied } from './plan.ts';
import { DEFAULT_RETRY_POLICY } from './backoff.ts';
import { volumeObservedReady } from './projector.ts';
import { isRemoved, type Row } from './resources.ts';
import type { World } from './world.ts';

/** True when the row's observed state equals its desired state, in a stable state, or it is gone. */
export function isConverged(row: Row): boolean {
  if (isRemoved(row)) return row.state === 'removed';
  switch (row.type) {
    case 'virtualMachine':
      if (row.desired === 'deleted') return false;
      return vmSatisfied(row, row.desired);
    case 'volume':
      return (
        row.desired === 'present' &&
        (row.state === 'available' || row.state === 'attached') &&
        row.restoreSnapshotId === null &&
        volumeObservedReady(row)
      );
    case 'snapshot': {
      const o = row.observed;
      return (
        row.desired === 'present' &&
        row.state === 'available' &&
        o !== null &&
        o.present &&
        o.storageNodeId === row.storageNodeId
      );
    }
    case 'host':
      return (row.state === 'active' || row.state === 'maintenance') && row.online;
    case 'account':
    case 'apiKey':
    case 'usage':
    case 'accessKey':
      return true;
  }
}

/** Converged, or in the error state with a reason. */
export function isSettled(row: Row): boolean {
  return isConverged(row) || (row.state === 'error' && row.lastError !== null);
}

/** True when the row is converged and the planner, given the world, has nothing to do for it. */
export function isConvergedIn(row: Row, world: World, nowMs: number): boolean {
  if (!isConverged(row)) return false;
  if (row.type !== 'virtualMachine' && row.type !== 'volume' && row.type !== 'snapshot')
    return true;
  return plan(row, { nowMs, world, policy: DEFAULT_RETRY_POLICY }).kind === 'none';
}
