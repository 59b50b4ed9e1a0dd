/** Decisions about snapshots: take one of a volume, delete one; and which one a restore may use. */
import { ID_PREFIX, isRemoved } from '../resources.ts';
import type { SnapshotRow, VmRow, VolumeRow } from '../resources.ts';
import { goingAway, refuseWithClones } from './clones.ts';
import { createResource, decideUserAction, fail, requireAction } from './kit.ts';
import type { DecideContext, Decision } from './kit.ts';

/**
 * POST /v1/snapshots {volumeId, name} or /v1/volumes/{id}?action=snapshot {name}: a new snapshot
 * resource of the volume, on the volume's storage node. Returns the snapshot's id. Refused while
 * the volume is going away with its VM (`vm`: the VM of a root volume, when there is one).
 */
export function decideSnapshotVolume(
  volume: VolumeRow,
  input: { readonly name: string },
  ctx: DecideContext,
  vm: VmRow | null = null,
): Decision {
  const away = goingAway(volume, vm);
  if (away !== null) return fail('InvalidState', away);
  const created = {
    accountId: volume.accountId,
    name: input.name,
    volumeId: volume.id,
    sizeGb: volume.sizeGb,
    storageNodeId: volume.storageNodeId,
  };
  return (
    requireAction('volume', volume.id, volume.state, 'snapshot') ??
    createResource(ID_PREFIX.snapshot, 'snapshot.created', created, ctx)
  );
}

/** The most recent live snapshot of a volume (newest `created`, ties by id), or null. */
export function latestSnapshot(
  volumeId: string,
  snapshots: readonly SnapshotRow[],
): SnapshotRow | null {
  let best: SnapshotRow | null = null;
  for (const s of snapshots) {
    if (s.volumeId !== volumeId || isRemoved(s) || s.desired !== 'present') continue;
    if (best === null || s.created > best.created || (s.created === best.created && s.id > best.id))
      best = s;
  }
  return best;
}

const DELETE_SNAPSHOT = {
  machine: 'snapshot',
  action: 'delete',
  type: 'snapshot.delete-requested',
} as const;

/**
 * DELETE /v1/snapshots/{id}: refused (InvalidState, naming them) while a live volume was cloned
 * from it. `volumes`: the account's volumes.
 */
export function decideDeleteSnapshot(
  snapshot: SnapshotRow,
  volumes: readonly VolumeRow[],
  ctx: DecideContext,
): Decision {
  const clones = { snapshotIds: [snapshot.id] };
  return decideUserAction(DELETE_SNAPSHOT, snapshot, ctx, () =>
    refuseWithClones(clones, { snapshots: [], volumes }, 'volumes were cloned from this snapshot'),
  );
}
