/**
 * The clone rule that spans volumes and snapshots: ZFS refuses to destroy a snapshot that has
 * clones, so a snapshot (and a volume or VM whose snapshots it is) cannot be deleted while a live
 * volume was cloned from it.
 */
import { isRemoved, type SnapshotRow, type VmRow, type VolumeRow } from '../resources.ts';
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

/**
 * Why a volume's data is on its way out, or null: the volume is deleted or being deleted, or it is
 * the root volume of a VM being deleted (the main loop deletes it, and its snapshots, once the
 * domain is gone). A snapshot taken or a clone made then would block that cascade, so both are
 * refused. `vm`: the volume's VM when it has one (null otherwise, or when not read).
 */
export function goingAway(volume: VolumeRow, vm: VmRow | null): string | null {
  if (isRemoved(volume) || volume.desired === 'deleted')
    return `volume ${volume.id} is being deleted`;
  if (volume.root && vm !== null && vm.id === volume.virtualMachineId && vm.desired === 'deleted')
    return `volume ${volume.id} is the root volume of ${vm.id}, which is being deleted`;
  return null;
}
