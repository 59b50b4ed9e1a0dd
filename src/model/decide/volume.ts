/**
 * Decisions about volumes: create (empty or a clone of a snapshot), attach, detach, grow, restore,
 * delete. Taking a snapshot of a volume is in snapshot.ts.
 */
import { ID_PREFIX, isRemoved, LIMITS } from '../resources.ts';
import type { SnapshotRow, VmRow, VolumeRow } from '../resources.ts';
import type { StreamAppend } from '../stream.ts';
import { goingAway, refuseWithClones } from './clones.ts';
import {
  appendTo,
  decideUserAction,
  fail,
  ok,
  requireAction,
  requireBetween,
  startStream,
} from './kit.ts';
import type { DecideContext, Decision } from './kit.ts';
import { latestSnapshot } from './snapshot.ts';

/** Input of {@link decideCreateVolume}. */
export interface CreateVolumeInput {
  readonly accountId: string;
  readonly name: string;
  /** Required without a source snapshot; with one, at least the snapshot's size (default it). */
  readonly sizeGb?: number;
  readonly sourceSnapshotId?: string;
}

/**
 * The `volume.created` stream of a new volume. Unless given: not a root volume, no image, no
 * source snapshot, detached, and placed by the main loop.
 */
export function startVolume(
  id: string,
  v: {
    readonly accountId: string;
    readonly name: string;
    readonly sizeGb: number;
    readonly root?: boolean;
    readonly imageId?: string;
    readonly sourceSnapshotId?: string | null;
    readonly virtualMachineId?: string;
    readonly storageNodeId?: string | null;
  },
  ctx: DecideContext,
): StreamAppend {
  const created = {
    accountId: v.accountId,
    name: v.name,
    sizeGb: v.sizeGb,
    root: v.root ?? false,
    imageId: v.imageId ?? null,
    sourceSnapshotId: v.sourceSnapshotId ?? null,
    virtualMachineId: v.virtualMachineId ?? null,
    storageNodeId: v.storageNodeId ?? null,
  };
  return startStream(id, 'volume.created', created, ctx);
}

/** The size limits of a new volume. */
const VOLUME_SIZE = {
  min: LIMITS.volumeSizeGbMin,
  max: LIMITS.volumeSizeGbMax,
  tooSmall: `volume size is at least ${LIMITS.volumeSizeGbMin} GB`,
  tooLarge: `volume size is at most ${LIMITS.volumeSizeGbMax} GB`,
};

/**
 * POST /v1/volumes: an empty volume, or a clone of a snapshot (`source`, on its node; the batch
 * also appends `snapshot.clone-registered` at the snapshot's version). Refused when the snapshot's
 * volume is going away (`sourceOwner`: that volume and, for a root volume, its VM), since the clone
 * would keep its snapshot, and so the volume, from ever being destroyed.
 */
export function decideCreateVolume(
  input: CreateVolumeInput,
  source: SnapshotRow | null,
  ctx: DecideContext,
  sourceOwner: { readonly volume: VolumeRow; readonly vm: VmRow | null } | null = null,
): Decision {
  let sizeGb = input.sizeGb;
  let storageNodeId: string | null = null;
  if (input.sourceSnapshotId !== undefined) {
    if (source === null || source.id !== input.sourceSnapshotId)
      return fail('InvalidReference', `no snapshot ${input.sourceSnapshotId}`, 'sourceSnapshotId');
    if (source.accountId !== input.accountId)
      return fail(
        'InvalidReference',
        `${source.id} belongs to another account`,
        'sourceSnapshotId',
      );
    if (source.state !== 'available')
      return fail(
        'InvalidState',
        `snapshot ${source.id} is ${source.state}, not available`,
        'sourceSnapshotId',
      );
    const away = sourceOwner === null ? null : goingAway(sourceOwner.volume, sourceOwner.vm);
    if (away !== null)
      return fail('InvalidState', `snapshot ${source.id}: ${away}`, 'sourceSnapshotId');
    sizeGb ??= source.sizeGb;
    if (sizeGb < source.sizeGb)
      return fail(
        'MinLimitExceeded',
        `a volume from snapshot ${source.id} needs at least ${source.sizeGb} GB`,
        'sizeGb',
      );
    storageNodeId = source.storageNodeId;
  }
  if (sizeGb === undefined) return fail('MissingRequired', 'sizeGb is required', 'sizeGb');
  const refused = requireBetween(sizeGb, VOLUME_SIZE, 'sizeGb');
  if (refused !== null) return refused;
  const id = ctx.ids.next(ID_PREFIX.volume);
  const appends: StreamAppend[] = [
    startVolume(
      id,
      {
        accountId: input.accountId,
        name: input.name,
        sizeGb,
        sourceSnapshotId: source?.id ?? null,
        storageNodeId,
      },
      ctx,
    ),
  ];
  // A clone writes its snapshot's stream at the version read: a concurrent delete of the
  // snapshot (which checks for clones on rows that cannot show this one yet) then conflicts.
  if (source !== null)
    appends.push(appendTo(source, 'snapshot.clone-registered', { volumeId: id }, ctx));
  return ok(id, appends);
}

/** Sum of the sizes of a VM's extra (non-root) volumes. */
function extraGb(volumes: readonly VolumeRow[]): number {
  return volumes.filter((v) => !v.root && !isRemoved(v)).reduce((s, v) => s + v.sizeGb, 0);
}

/** MaxLimitExceeded when a VM's extra storage would exceed the limit, naming `fieldName`. */
function checkExtraStorage(totalGb: number, fieldName: string): Decision | null {
  if (totalGb <= LIMITS.extraStorageGbMaxPerVm) return null;
  return fail(
    'MaxLimitExceeded',
    `extra storage per VM is at most ${LIMITS.extraStorageGbMaxPerVm} GB (would be ${totalGb})`,
    fieldName,
  );
}

/**
 * POST /v1/volumes/{id}?action=attach {virtualMachineId}. The VM must be stopped; its extra
 * storage stays within 1229 GB. `vmVolumes`: the rows of the VM's current extra volumes.
 */
export function decideAttachVolume(
  volume: VolumeRow,
  vm: VmRow,
  vmVolumes: readonly VolumeRow[],
  ctx: DecideContext,
): Decision {
  const refused =
    requireAction('volume', volume.id, volume.state, 'attach') ??
    (volume.accountId === vm.accountId
      ? null
      : fail('InvalidReference', `${vm.id} belongs to another account`, 'virtualMachineId'));
  if (refused !== null) return refused;
  if (volume.root) return fail('InvalidState', 'a root volume cannot be attached elsewhere');
  if (vm.state !== 'stopped')
    return fail(
      'InvalidState',
      `VM ${vm.id} must be stopped to attach a volume (it is ${vm.state})`,
      'virtualMachineId',
    );
  const current = vmVolumes.filter((v) => vm.volumeIds.includes(v.id) && v.id !== volume.id);
  if (vm.volumeIds.length + 1 > LIMITS.extraVolumesMaxPerVm)
    return fail(
      'MaxLimitExceeded',
      `a VM has at most ${LIMITS.extraVolumesMaxPerVm} extra volumes`,
      'virtualMachineId',
    );
  return (
    checkExtraStorage(extraGb(current) + volume.sizeGb, 'virtualMachineId') ??
    ok(volume.id, [
      appendTo(volume, 'volume.attached', { virtualMachineId: vm.id }, ctx),
      appendTo(vm, 'vm.volume-attached', { volumeId: volume.id }, ctx),
    ])
  );
}

/** POST /v1/volumes/{id}?action=detach. The VM must be stopped (or gone); root volumes stay. */
export function decideDetachVolume(
  volume: VolumeRow,
  vm: VmRow | null,
  ctx: DecideContext,
): Decision {
  const refused = requireAction('volume', volume.id, volume.state, 'detach');
  if (refused !== null) return refused;
  if (volume.root) return fail('InvalidState', 'a root volume cannot be detached');
  const vmId = volume.virtualMachineId;
  if (vmId === null) return fail('InvalidState', `volume ${volume.id} is not attached`);
  const appends = [appendTo(volume, 'volume.detached', { virtualMachineId: vmId }, ctx)];
  if (vm !== null && !isRemoved(vm)) {
    if (vm.id !== vmId)
      return fail('InvalidReference', `volume ${volume.id} is not attached to ${vm.id}`);
    if (vm.state !== 'stopped')
      return fail(
        'InvalidState',
        `VM ${vm.id} must be stopped to detach a volume (it is ${vm.state})`,
      );
    appends.push(appendTo(vm, 'vm.volume-detached', { volumeId: volume.id }, ctx));
  }
  return ok(volume.id, appends);
}

/** ActionNotAvailable or InvalidState unless the volume is live and accepts `action`. */
function requireLiveAction(volume: VolumeRow, action: string): Decision | null {
  const refused = requireAction('volume', volume.id, volume.state, action);
  if (refused !== null) return refused;
  if (volume.desired === 'deleted')
    return fail('InvalidState', `volume ${volume.id} is being deleted`);
  return null;
}

/**
 * POST /v1/volumes/{id}?action=grow {sizeGb}: larger only. `vm`/`vmVolumes`: the VM it is attached
 * to and that VM's extra volumes, for the 1229 GB rule (null/[] when detached). Growing an attached
 * extra volume also appends `vm.storage-changed` at the VM's version.
 */
export function decideGrowVolume(
  volume: VolumeRow,
  sizeGb: number,
  attachment: { readonly vm: VmRow | null; readonly vmVolumes: readonly VolumeRow[] },
  ctx: DecideContext,
): Decision {
  const refused = requireLiveAction(volume, 'grow');
  if (refused !== null) return refused;
  if (sizeGb <= volume.sizeGb)
    return fail('MinLimitExceeded', `a volume only grows: it has ${volume.sizeGb} GB`, 'sizeGb');
  const max = volume.root ? LIMITS.rootDiskGbMax : LIMITS.volumeSizeGbMax;
  if (sizeGb > max) return fail('MaxLimitExceeded', `size is at most ${max} GB`, 'sizeGb');
  const appends = [appendTo(volume, 'volume.grow-requested', { sizeGb }, ctx)];
  const vm = attachment.vm;
  if (!volume.root && vm !== null) {
    const others = attachment.vmVolumes.filter(
      (v) => vm.volumeIds.includes(v.id) && v.id !== volume.id,
    );
    const total = extraGb(others) + sizeGb;
    const tooMuch = checkExtraStorage(total, 'sizeGb');
    if (tooMuch !== null) return tooMuch;
    // The rule read the VM's other volumes: write the VM's stream at the version read, so a
    // concurrent grow or attach on the same VM conflicts (and is decided again) instead of
    // passing the same check on the same stale rows.
    appends.push(appendTo(vm, 'vm.storage-changed', { volumeId: volume.id, extraGb: total }, ctx));
  }
  return ok(volume.id, appends);
}

/**
 * POST /v1/volumes/{id}?action=restore {snapshotId}: roll back to the volume's most recent
 * snapshot only (ZFS rollback without -r). The VM it is attached to, if any, must be stopped.
 * `snapshots`: every snapshot of the volume.
 */
export function decideRestoreVolume(
  volume: VolumeRow,
  snapshotId: string,
  related: { readonly snapshots: readonly SnapshotRow[]; readonly vm: VmRow | null },
  ctx: DecideContext,
): Decision {
  const refused = requireLiveAction(volume, 'restore');
  if (refused !== null) return refused;
  const snapshot = related.snapshots.find((s) => s.id === snapshotId);
  if (snapshot === undefined || snapshot.volumeId !== volume.id || isRemoved(snapshot))
    return fail(
      'InvalidReference',
      `${snapshotId} is not a snapshot of ${volume.id}`,
      'snapshotId',
    );
  const latest = latestSnapshot(volume.id, related.snapshots);
  if (latest?.id !== snapshot.id)
    return fail(
      'InvalidState',
      `only the most recent snapshot (${latest?.id ?? 'none'}) can be restored`,
      'snapshotId',
    );
  if (snapshot.state !== 'available')
    return fail('InvalidState', `snapshot ${snapshot.id} is ${snapshot.state}`, 'snapshotId');
  const vm = related.vm;
  if (volume.virtualMachineId !== null && vm !== null && !isRemoved(vm) && vm.state !== 'stopped')
    return fail(
      'InvalidState',
      `VM ${vm.id} must be stopped to restore its volume (it is ${vm.state})`,
    );
  return ok(volume.id, [appendTo(volume, 'volume.restore-requested', { snapshotId }, ctx)]);
}

/**
 * DELETE /v1/volumes/{id}: not a root volume (deleted with its VM), not attached (detach first).
 * Its snapshots are deleted with it by the main loop; refused while a live volume was cloned from
 * one of them. `snapshots`/`volumes`: the account's rows.
 */
export function decideDeleteVolume(
  volume: VolumeRow,
  related: { readonly snapshots: readonly SnapshotRow[]; readonly volumes: readonly VolumeRow[] },
  ctx: DecideContext,
): Decision {
  if (volume.root) return fail('InvalidState', `root volume ${volume.id} is deleted with its VM`);
  if (volume.virtualMachineId !== null)
    return fail(
      'InvalidState',
      `volume ${volume.id} is attached to ${volume.virtualMachineId}: detach it first`,
    );
  const deleting = {
    machine: 'volume',
    action: 'delete',
    type: 'volume.delete-requested',
  } as const;
  const why = 'volumes cloned from its snapshots depend on it';
  return decideUserAction(deleting, volume, ctx, () =>
    refuseWithClones({ volumeIds: [volume.id] }, related, why),
  );
}
