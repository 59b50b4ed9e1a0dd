/** The GDAPI schema of snapshots. */
import {
  COMMON_FIELDS,
  createOnly,
  DESIRED_PRESENCE,
  readOnly,
  resourceName,
  resourceType,
} from './fields.ts';
import type { TypeSchema } from './types.ts';

/** `snapshot`: a point-in-time copy of a volume, on the volume's storage node. */
export const snapshotSchema: TypeSchema = resourceType({
  id: 'snapshot',
  collection: 'snapshots',
  idPrefix: 'snap',
  resourceFields: {
    ...COMMON_FIELDS,
    name: resourceName(false),
    volumeId: createOnly('reference[volume]', { required: true }),
    sizeGb: readOnly('int', { nullable: true }),
    desired: DESIRED_PRESENCE,
  },
  collectionLinks: { volumes: { type: 'volume', field: 'sourceSnapshotId' } },
  // Snapshots are taken by the storage agent: the work continues after the response.
  asynchronous: true,
});
