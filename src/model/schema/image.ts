/** The GDAPI schema of the image catalogue: read-only, for everyone. */
import { COMMON_FIELDS, readOnly, resourceType } from './fields.ts';
import type { TypeSchema } from './types.ts';

/** `image`: a catalogue image, only ever read. */
export const imageSchema: TypeSchema = resourceType({
  id: 'image',
  collection: 'images',
  idPrefix: 'img',
  resourceFields: {
    ...COMMON_FIELDS,
    name: readOnly('string'),
    os: readOnly('enum', { options: ['linux', 'windows'] }),
    sizeGb: readOnly('int', {
      description: 'Size of the image disk in GB: the smallest root disk.',
    }),
  },
  resourceMethods: ['GET'],
  collectionMethods: ['GET'],
  createAudience: 'admin',
});
