/**
 * How a snapshot's stream folds into its row: one reducer per `snapshot.*` event, then the
 * snapshot machine is fed and settles once the snapshot is observed on its node.
 */
import type { MachineEventOf } from '../lifecycle.ts';
import type { SnapshotRow } from '../resources.ts';
import { renamed, requested, VERSION_ONLY, type ResourceFold } from './kit.ts';
import { bookkeepingReducers, finishReconciled, reconciledRow } from './reconciled.ts';
import { observedOnNode, placedOnNode } from './storage.ts';

/** The fold of `snapshot` streams. */
export const snapshotFold: ResourceFold<
  SnapshotRow,
  MachineEventOf['snapshot'],
  'snapshot.created'
> = {
  creation: 'snapshot.created',
  create: ({ volumeId, sizeGb, storageNodeId, ...x }, event) => ({
    ...reconciledRow(event, 'snapshot', x, 'present'),
    volumeId,
    sizeGb,
    storageNodeId,
    observed: null,
  }),
  noun: 'a snapshot',
  reducers: {
    ...bookkeepingReducers<SnapshotRow>('snapshot'),
    'snapshot.delete-requested': requested('deleted', { type: 'DELETE' }),
    // Only the version matters: it serialises clones against the snapshot's deletion.
    'snapshot.clone-registered': () => VERSION_ONLY,
    'snapshot.renamed': renamed,
    'snapshot.placed': placedOnNode,
    'snapshot.observed': (r, x, event) => observedOnNode(r, x, event, 'snapshot', {}),
  },
  finish: finishReconciled('snapshot', (r) => {
    const o = r.observed;
    const ready =
      o !== null && o.present && r.storageNodeId !== null && o.storageNodeId === r.storageNodeId;
    return ready ? { type: 'REACHED_PRESENT' } : null;
  }),
};
