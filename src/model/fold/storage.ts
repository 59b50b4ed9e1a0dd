/**
 * What the folds of the storage resources (volumes, snapshots) share: both are placed on a storage
 * node and observed there, and losing one that existed is an error (its data is gone).
 */
import type { RowCommon } from '../resources.ts';
import type { StoredEvent } from '../stream.ts';
import { NEW_GOAL, NO_EFFECT, type Draft, type Effect } from './kit.ts';

/** The fields of a storage resource's row that its placement and observation touch. */
type StorageDraft<O> = Draft<RowCommon> & { storageNodeId: string | null; observed: O | null };

/** What a storage node reports of a dataset or snapshot. */
type StorageObservation = {
  readonly storageNodeId: string;
  readonly present: boolean;
  readonly sizeBytes: number | null;
};

/** `*.placed` of a storage resource: its node; a new placement is a new goal. */
export function placedOnNode(
  r: { storageNodeId: string | null },
  x: { readonly storageNodeId: string },
): Effect<never> {
  r.storageNodeId = x.storageNodeId;
  return NEW_GOAL;
}

/**
 * `*.observed` of a storage resource: records the report (with the type's `extra` fields) and, when
 * something present on the resource's node vanished, the LOST event with a reason naming `what`.
 * Losing what existed is edge-triggered; the ready case settles in the type's finish.
 */
export function observedOnNode<X extends object>(
  r: StorageDraft<StorageObservation & X & { readonly atMs: number }>,
  x: StorageObservation,
  event: StoredEvent,
  what: string,
  extra: X,
): Effect<{ type: 'LOST' }> {
  const wasPresent =
    r.observed !== null && r.observed.present && r.observed.storageNodeId === x.storageNodeId;
  r.observed = {
    storageNodeId: x.storageNodeId,
    present: x.present,
    sizeBytes: x.sizeBytes,
    ...extra,
    atMs: event.meta.atMs,
  };
  if (wasPresent && !x.present && x.storageNodeId === r.storageNodeId) {
    r.lastError = `${what} ${r.id} vanished from ${x.storageNodeId}`;
    return { event: { type: 'LOST' } };
  }
  return NO_EFFECT;
}
