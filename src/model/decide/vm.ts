/**
 * Decisions about virtual machines: create (with the root and extra volumes, in one batch), the
 * power actions, delete.
 */
import { findImage, ID_PREFIX, LIMITS } from '../resources.ts';
import type { SnapshotRow, VmRow, VolumeRow } from '../resources.ts';
import { refuseWithClones } from './clones.ts';
import { decideUserAction, fail, ok, requireBetween, startStream, userAction } from './kit.ts';
import type { DecideContext, Decision } from './kit.ts';
import { startVolume } from './volume.ts';

/** Input of {@link decideCreateVm}. */
export interface CreateVmInput {
  readonly accountId: string;
  readonly name: string;
  readonly imageId: string;
  /** 1..8. */
  readonly vcpus: number;
  /** 256..16384. */
  readonly memoryMb: number;
  /** 10..100, default 40. */
  readonly rootDiskGb?: number;
  /** Extra volumes, created attached: total at most 1229 GiB. */
  readonly volumes?: readonly { readonly name?: string; readonly sizeGb: number }[];
  /** Start once created (default true). */
  readonly start?: boolean;
}

/** Bounds whose message, either way, is `<what> must be in <min>..<max><unit>`. */
function inRange(min: number, max: number, what: string, unit = '') {
  const message = `${what} must be in ${min}..${max}${unit}`;
  return { min, max, tooSmall: message, tooLarge: message };
}

/**
 * POST /v1/virtualmachines: the VM, its root volume (a clone of the image) and its extra volumes,
 * in one atomic batch. The main loop places them and brings the VM up.
 */
export function decideCreateVm(input: CreateVmInput, ctx: DecideContext): Decision {
  const image = findImage(input.imageId);
  if (image === null) return fail('InvalidReference', `no image ${input.imageId}`, 'imageId');
  const rootDiskGb = input.rootDiskGb ?? LIMITS.rootDiskGbDefault;
  const rootDisk = {
    min: image.sizeGb,
    max: LIMITS.rootDiskGbMax,
    tooSmall: `${image.name} needs a root disk of at least ${image.sizeGb} GB`,
    tooLarge: `root disk is at most ${LIMITS.rootDiskGbMax} GB`,
  };
  const refused =
    requireBetween(rootDiskGb, rootDisk, 'rootDiskGb') ??
    requireBetween(input.vcpus, inRange(LIMITS.vcpusMin, LIMITS.vcpusMax, 'vcpus'), 'vcpus') ??
    requireBetween(
      input.memoryMb,
      inRange(LIMITS.memoryMbMin, LIMITS.memoryMbMax, 'memoryMb'),
      'memoryMb',
    );
  if (refused !== null) return refused;
  const extras = input.volumes ?? [];
  if (extras.length > LIMITS.extraVolumesMaxPerVm)
    return fail(
      'MaxLimitExceeded',
      `at most ${LIMITS.extraVolumesMaxPerVm} extra volumes per VM`,
      'volumes',
    );
  const volumeSize = inRange(LIMITS.volumeSizeGbMin, LIMITS.volumeSizeGbMax, 'volume size', ' GB');
  for (const v of extras) {
    const badSize = requireBetween(v.sizeGb, volumeSize, 'volumes');
    if (badSize !== null) return badSize;
  }
  const total = extras.reduce((s, v) => s + v.sizeGb, 0);
  if (total > LIMITS.extraStorageGbMaxPerVm)
    return fail(
      'MaxLimitExceeded',
      `extra storage per VM is at most ${LIMITS.extraStorageGbMaxPerVm} GB (asked ${total})`,
      'volumes',
    );

  const vmId = ctx.ids.next(ID_PREFIX.virtualMachine);
  const rootVolumeId = ctx.ids.next(ID_PREFIX.volume);
  const extraIds = extras.map(() => ctx.ids.next(ID_PREFIX.volume));
  const created = {
    accountId: input.accountId,
    name: input.name,
    imageId: image.id,
    vcpus: input.vcpus,
    memoryMb: input.memoryMb,
    rootDiskGb,
    rootVolumeId,
    volumeIds: extraIds,
    desired: input.start === false ? ('stopped' as const) : ('running' as const),
  };
  const attached = { accountId: input.accountId, virtualMachineId: vmId };
  return ok(vmId, [
    startStream(vmId, 'vm.created', created, ctx),
    startVolume(
      rootVolumeId,
      {
        ...attached,
        name: `${input.name}-root`,
        sizeGb: rootDiskGb,
        root: true,
        imageId: image.id,
      },
      ctx,
    ),
    ...extras.map((v, i) =>
      startVolume(
        extraIds[i] as string,
        { ...attached, name: v.name ?? `${input.name}-vol${i + 1}`, sizeGb: v.sizeGb },
        ctx,
      ),
    ),
  ]);
}

/** A decision on a VM that needs nothing but its machine's consent. */
type VmAction = (vm: VmRow, ctx: DecideContext) => Decision;

/** POST /v1/virtualmachines/{id}?action=start. */
export const decideStartVm: VmAction = userAction('virtualMachine', 'start', 'vm.start-requested');

/** POST /v1/virtualmachines/{id}?action=stop. */
export const decideStopVm: VmAction = userAction('virtualMachine', 'stop', 'vm.stop-requested');

/** POST /v1/virtualmachines/{id}?action=restart (stop, then start). */
export const decideRestartVm: VmAction = userAction(
  'virtualMachine',
  'restart',
  'vm.restart-requested',
);

/**
 * DELETE /v1/virtualmachines/{id}. The main loop cascades: once the domain is gone it deletes the
 * root volume (and the root volume's snapshots) and detaches the extra volumes (they are kept).
 * Refused while a live volume was cloned from a snapshot of the root volume, because that
 * snapshot could never be destroyed. `snapshots`/`volumes`: the account's rows.
 */
export function decideDeleteVm(
  vm: VmRow,
  related: { readonly snapshots: readonly SnapshotRow[]; readonly volumes: readonly VolumeRow[] },
  ctx: DecideContext,
): Decision {
  const why = 'volumes cloned from snapshots of the root volume depend on it';
  return decideUserAction(
    { machine: 'virtualMachine', action: 'delete', type: 'vm.delete-requested' },
    vm,
    ctx,
    () => refuseWithClones({ volumeIds: [vm.rootVolumeId] }, related, why),
  );
}
