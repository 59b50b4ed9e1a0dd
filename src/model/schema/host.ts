/** The GDAPI schema of hosts (admin only): compute hosts and storage nodes. */
import {
  COMMON_FIELDS,
  createOnly,
  DESIRED_PRESENCE,
  resourceName,
  resourceType,
} from './fields.ts';
import { invalid, type GdapiError, type JsonObject, type TypeSchema } from './types.ts';

/** `host`: registered by admins with its capacity, left with the `remove` action. */
export const hostSchema: TypeSchema = resourceType({
  id: 'host',
  collection: 'hosts',
  idPrefix: 'host',
  resourceFields: {
    ...COMMON_FIELDS,
    name: resourceName(true),
    kind: createOnly('enum', { options: ['compute', 'storage'], required: true }),
    vcpus: createOnly('int', {
      nullable: true,
      min: 1,
      max: 4096,
      description: 'Compute hosts: vCPUs offered to virtual machines (required for compute).',
    }),
    memoryMb: createOnly('int', {
      nullable: true,
      min: 256,
      max: 16_777_216,
      description:
        'Compute hosts: memory offered to virtual machines in MiB (required for compute).',
    }),
    poolSizeGb: createOnly('int', {
      nullable: true,
      min: 1,
      max: 1_048_576,
      description: 'Storage nodes: size of the pool `cloudbed` in GB (required for storage).',
    }),
    desired: DESIRED_PRESENCE,
  },
  // A host leaves with the `remove` action (only when empty), not with DELETE.
  resourceMethods: ['GET', 'PUT'],
  resourceActions: {
    maintenance: { output: 'host' },
    activate: { output: 'host' },
    remove: { output: 'host' },
  },
  collectionLinks: {
    virtualmachines: { type: 'virtualMachine', field: 'hostId' },
    volumes: { type: 'volume', field: 'storageNodeId' },
  },
  audience: 'admin',
  createAudience: 'admin',
});

/** A compute host needs its vCPUs and memory, a storage node its pool size, and neither the other's. */
export function checkHostCreate(value: JsonObject): GdapiError | null {
  const compute = value['kind'] === 'compute';
  const needed = compute ? ['vcpus', 'memoryMb'] : ['poolSizeGb'];
  const foreign = compute ? ['poolSizeGb'] : ['vcpus', 'memoryMb'];
  for (const f of needed)
    if (value[f] === undefined || value[f] === null)
      return invalid(
        'MissingRequired',
        f,
        `${f} is required for a ${value['kind'] === 'compute' ? 'compute' : 'storage'} host`,
      );
  for (const f of foreign)
    if (value[f] !== undefined && value[f] !== null)
      return invalid(
        'InvalidBodyContent',
        f,
        `${f} does not apply to a ${value['kind'] === 'compute' ? 'compute' : 'storage'} host`,
      );
  return null;
}
