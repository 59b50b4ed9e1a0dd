/** The GDAPI schema of volumes, the inputs of their actions, and their cross-field create rule. */
import {
  COMMON_FIELDS,
  createOnly,
  DESIRED_PRESENCE,
  embedded,
  inputName,
  readOnly,
  resourceName,
  resourceType,
  volumeSize,
} from './fields.ts';
import { invalid, type GdapiError, type JsonObject, type TypeSchema } from './types.ts';

/** `volume`: an empty volume or a clone of a snapshot; attached, grown, restored by actions. */
export const volumeSchema: TypeSchema = resourceType({
  id: 'volume',
  collection: 'volumes',
  idPrefix: 'vol',
  resourceFields: {
    ...COMMON_FIELDS,
    name: resourceName(false),
    sizeGb: volumeSize(false, {
      description: 'Required unless sourceSnapshotId is given (then the snapshot size).',
    }),
    sourceSnapshotId: createOnly('reference[snapshot]', {
      nullable: true,
      description: 'Create the volume as a clone of this snapshot.',
    }),
    virtualMachineId: readOnly('reference[virtualMachine]', {
      nullable: true,
      description: 'Attachment: change it with the attach and detach actions.',
    }),
    storageNodeId: readOnly('reference[host]', { nullable: true, description: 'Placement.' }),
    imageId: readOnly('reference[image]', { nullable: true }),
    root: readOnly('boolean', { description: 'True for the root volume of a virtual machine.' }),
    desired: DESIRED_PRESENCE,
  },
  resourceActions: {
    attach: { input: 'volumeAttachInput', output: 'volume' },
    detach: { output: 'volume' },
    grow: { input: 'volumeGrowInput', output: 'volume' },
    snapshot: { input: 'volumeSnapshotInput', output: 'snapshot' },
    restore: { input: 'volumeRestoreInput', output: 'volume' },
  },
  collectionLinks: { snapshots: { type: 'snapshot', field: 'volumeId' } },
  asynchronous: true,
});

/** The input types of the volume actions. */
export const volumeInputSchemas: readonly TypeSchema[] = [
  embedded('volumeAttachInput', {
    virtualMachineId: createOnly('reference[virtualMachine]', { required: true }),
  }),
  embedded('volumeGrowInput', {
    sizeGb: volumeSize(true, { description: 'The new size; volumes only grow.' }),
  }),
  embedded('volumeSnapshotInput', { name: inputName() }),
  embedded('volumeRestoreInput', {
    snapshotId: createOnly('reference[snapshot]', {
      required: true,
      description: "The volume's most recent snapshot (only that one can be restored).",
    }),
  }),
];

/** A volume needs a size unless it is a clone (then its snapshot's size is the default). */
export function checkVolumeCreate(value: JsonObject): GdapiError | null {
  const fromSnapshot =
    value['sourceSnapshotId'] !== undefined && value['sourceSnapshotId'] !== null;
  const sized = value['sizeGb'] !== undefined && value['sizeGb'] !== null;
  if (!fromSnapshot && !sized)
    return invalid(
      'MissingRequired',
      'sizeGb',
      'sizeGb is required unless sourceSnapshotId is given',
    );
  return null;
}
