/**
 * How a volume's stream folds into its row: one reducer per `volume.*` event, then the volume
 * machine is fed and settles once the dataset is observed on the volume's node at its size.
 */
import type { MachineEventOf } from '../lifecycle.ts';
import { BYTES_PER_GB, type VolumeRow } from '../resources.ts';
import { renamed, requested, type ResourceFold } from './kit.ts';
import { bookkeepingReducers, finishReconciled, reconciledRow } from './reconciled.ts';
import { observedOnNode, placedOnNode } from './storage.ts';

type VolumeEvent = MachineEventOf['volume'];

/** True when the volume is observed on its node at (at least) its desired size. */
export function volumeObservedReady(r: VolumeRow): boolean {
  const o = r.observed;
  if (o === null || r.storageNodeId === null || o.storageNodeId !== r.storageNodeId) return false;
  return o.present && (o.sizeBytes === null || o.sizeBytes >= r.sizeGb * BYTES_PER_GB);
}

const bookkeeping = bookkeepingReducers<VolumeRow>('volume');
const deleteRequested = requested('deleted', { type: 'DELETE' } as const);

/** The fold of `volume` streams. */
export const volumeFold: ResourceFold<VolumeRow, VolumeEvent, 'volume.created'> = {
  creation: 'volume.created',
  create: (x, event) => ({
    ...reconciledRow(event, 'volume', x, 'present'),
    sizeGb: x.sizeGb,
    root: x.root,
    imageId: x.imageId,
    sourceSnapshotId: x.sourceSnapshotId,
    virtualMachineId: x.virtualMachineId,
    storageNodeId: x.storageNodeId,
    restoreSnapshotId: null,
    observed: null,
  }),
  noun: 'a volume',
  reducers: {
    ...bookkeeping,
    // A failure gives up any rollback in flight.
    'volume.failed': (r, x, event) => {
      const effect = bookkeeping['volume.failed']!(r, x, event);
      r.restoreSnapshotId = null;
      return effect;
    },
    // A rollback is only observable through its result.
    'volume.command-reported': (r, x, event) => {
      const effect = bookkeeping['volume.command-reported']!(r, x, event);
      const c = r.lastCommand;
      if (!x.ok || c === null || c.commandId !== x.commandId || c.command !== 'volume.restore')
        return effect;
      r.restoreSnapshotId = null;
      return { event: { type: 'RESTORED', attached: r.virtualMachineId !== null } };
    },
    'volume.attached': (r, x) => {
      r.virtualMachineId = x.virtualMachineId;
      return { event: { type: 'ATTACH' }, newGoal: true };
    },
    'volume.detached': (r) => {
      r.virtualMachineId = null;
      return { event: { type: 'DETACH' }, newGoal: true };
    },
    'volume.grow-requested': (r, x) => {
      r.sizeGb = x.sizeGb;
      return { event: { type: 'GROW' }, newGoal: true };
    },
    'volume.restore-requested': (r, x) => {
      r.restoreSnapshotId = x.snapshotId;
      return { event: { type: 'RESTORE' }, newGoal: true };
    },
    'volume.delete-requested': (r) => {
      r.restoreSnapshotId = null;
      return deleteRequested(r);
    },
    'volume.renamed': renamed,
    'volume.placed': placedOnNode,
    'volume.observed': (r, x, event) =>
      observedOnNode(r, x, event, 'dataset', { origin: x.origin }),
  },
  finish: finishReconciled('volume', (r) =>
    volumeObservedReady(r)
      ? { type: 'REACHED_PRESENT', attached: r.virtualMachineId !== null }
      : null,
  ),
};
