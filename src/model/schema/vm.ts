/** The GDAPI schema of virtual machines, and the spec of the extra volumes created with one. */
import {
  COMMON_FIELDS,
  createOnly,
  desired,
  embedded,
  inputName,
  readOnly,
  resourceName,
  resourceType,
  VM_EXTRA_VOLUMES_MAX,
  VM_MEMORY_MB,
  VM_ROOT_DISK_GB,
  VM_VCPUS,
  volumeSize,
} from './fields.ts';
import type { TypeSchema } from './types.ts';

/** `virtualMachine`: created with its root and extra volumes, then powered by actions. */
export const vmSchema: TypeSchema = resourceType({
  id: 'virtualMachine',
  collection: 'virtualmachines',
  idPrefix: 'vm',
  resourceFields: {
    ...COMMON_FIELDS,
    name: resourceName(true),
    imageId: createOnly('reference[image]', { required: true }),
    vcpus: createOnly('int', VM_VCPUS),
    memoryMb: createOnly('int', VM_MEMORY_MB),
    rootDiskGb: createOnly('int', VM_ROOT_DISK_GB),
    volumes: createOnly('array[volumeSpec]', {
      nullable: true,
      maxLength: VM_EXTRA_VOLUMES_MAX,
      inputOnly: true,
      description: 'Extra data volumes created attached to the new machine.',
    }),
    startOnCreate: createOnly('boolean', {
      default: true,
      inputOnly: true,
      description: 'Start the machine once it is created (false: leave it stopped).',
    }),
    hostId: readOnly('reference[host]', { nullable: true, description: 'Placement.' }),
    rootVolumeId: readOnly('reference[volume]', { nullable: true }),
    desired: desired(['running', 'stopped', 'deleted']),
  },
  resourceActions: {
    start: { output: 'virtualMachine' },
    stop: { output: 'virtualMachine' },
    restart: { output: 'virtualMachine' },
  },
  collectionLinks: { volumes: { type: 'volume', field: 'virtualMachineId' } },
  asynchronous: true,
});

/** The input types of virtual machines: `volumeSpec`, an extra volume of a create. */
export const vmInputSchemas: readonly TypeSchema[] = [
  embedded('volumeSpec', {
    name: inputName(),
    sizeGb: volumeSize(true),
  }),
];
