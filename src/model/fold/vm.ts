/**
 * How a virtual machine's stream folds into its row: one reducer per `vm.*` event, then the VM
 * machine is fed and settles on the domain observed on the VM's host.
 */
import { assertNever } from '../../lib/assert.ts';
import type { MachineEventOf } from '../lifecycle.ts';
import type { VmDesired, VmRow } from '../resources.ts';
import { NEW_GOAL, NO_EFFECT, renamed, requested, VERSION_ONLY, type ResourceFold } from './kit.ts';
import { bookkeepingReducers, finishReconciled, reconciledRow } from './reconciled.ts';

type VmEvent = MachineEventOf['virtualMachine'];

/** The machine event the VM's current observation implies, or null (no observation of its host). */
function observationEvent(r: VmRow): VmEvent | null {
  const o = r.observed;
  if (o === null || r.hostId === null || o.hostId !== r.hostId) return null;
  const desired: VmDesired = r.desired;
  switch (o.domain) {
    case 'running':
    case 'paused':
      return { type: 'REACHED_RUNNING', desired };
    case 'shutoff':
    case 'crashed':
      return { type: 'REACHED_STOPPED', desired };
    case 'absent':
      return { type: 'REACHED_ABSENT', desired };
    default:
      return assertNever(o.domain, 'domain state');
  }
}

/** The fold of `virtualMachine` streams. */
export const vmFold: ResourceFold<VmRow, VmEvent, 'vm.created'> = {
  creation: 'vm.created',
  create: (x, event) => ({
    ...reconciledRow(event, 'virtualMachine', x, x.desired),
    imageId: x.imageId,
    vcpus: x.vcpus,
    memoryMb: x.memoryMb,
    rootDiskGb: x.rootDiskGb,
    rootVolumeId: x.rootVolumeId,
    volumeIds: [...x.volumeIds],
    hostId: null,
    observed: null,
  }),
  noun: 'a virtual machine',
  reducers: {
    ...bookkeepingReducers<VmRow>('vm'),
    'vm.start-requested': requested('running', { type: 'START' }),
    'vm.stop-requested': requested('stopped', { type: 'STOP' }),
    'vm.restart-requested': requested('running', { type: 'RESTART' }),
    'vm.delete-requested': requested('deleted', { type: 'DELETE' }),
    'vm.renamed': renamed,
    'vm.volume-attached': (r, x) => {
      if (!r.volumeIds.includes(x.volumeId)) r.volumeIds = [...r.volumeIds, x.volumeId];
      return NEW_GOAL;
    },
    'vm.volume-detached': (r, x) => {
      r.volumeIds = r.volumeIds.filter((v) => v !== x.volumeId);
      return NEW_GOAL;
    },
    // Only the version matters: it serialises changes to the VM's extra storage.
    'vm.storage-changed': () => VERSION_ONLY,
    // A new host is a new goal: the attempts toward the old one do not count.
    'vm.placed': (r, x) => {
      r.hostId = x.hostId;
      return NEW_GOAL;
    },
    'vm.unplaced': (r) => {
      r.hostId = null;
      return NEW_GOAL;
    },
    'vm.observed': (r, x, event) => {
      // "Absent" from a host that is neither the VM's nor the one it was last seen on says
      // nothing new (a late inventory after an evacuation): keep the observation that matters.
      const current = r.observed;
      if (
        x.domain === 'absent' &&
        x.hostId !== r.hostId &&
        current !== null &&
        current.hostId !== x.hostId
      )
        return NO_EFFECT;
      r.observed = {
        hostId: x.hostId,
        domain: x.domain,
        disks: x.disks === null ? null : [...x.disks],
        atMs: event.meta.atMs,
      };
      return NO_EFFECT;
    },
  },
  finish: finishReconciled('virtualMachine', observationEvent),
};
