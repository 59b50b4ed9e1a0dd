/**
 * The clone rule that spans volumes and snapshots: ZFS refuses to destroy a snapshot that has
 * clones, so a snapshot (and a volume or VM whose snapshots it is) cannot be deleted while a live
 * volume was cloned from it.
 */
import { isRemoved, type SnapshotRow, type VolumeRow } from '../resources.ts';
import { fail, type Decision } from './kit.ts';

/**
 * Live volumes cloned from a snapshot of any of `volumeIds` (or from one of `snapshotIds`): the
 * dependents that block deleting those snapshots, as ZFS refuses to destroy a snapshot with
 * clones. The api passes every snapshot and volume of the account.
 */
export function dependentClones(
  of: { readonly volumeIds?: readonly string[]; readonly snapshotIds?: readonly string[] },
  snapshots: readonly SnapshotRow[],
  volumes: readonly VolumeRow[],
): VolumeRow[] {
  const snapIds = new Set(of.snapshotIds ?? []);
  for (const s of snapshots)
    if ((of.volumeIds ?? []).includes(s.volumeId) && !isRemoved(s)) snapIds.add(s.id);
  return volumes
    .filter((v) => !isRemoved(v) && v.sourceSnapshotId !== null && snapIds.has(v.sourceSnapshotId))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

/**
 * InvalidState when live volumes were cloned from the snapshots `of` names, the message saying
 * `why` they block and naming them; null when there are none.
 */
export function refuseWithClones(
  of: { readonly volumeIds?: readonly string[]; readonly snapshotIds?: readonly string[] },
  related: { readonly snapshots: readonly SnapshotRow[]; readonly volumes: readonly VolumeRow[] },
  why: string,
): Decision | null {
  const clones = dependentClones(of, related.snapshots, related.volumes);
  if (clones.length === 0) return null;
  return fail('InvalidState', `${why}: ${clones.map((v) => `${v.name} (${v.id})`).join(', ')}`);
}
