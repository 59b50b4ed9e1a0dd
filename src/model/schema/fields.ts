/**
 * What the per-resource schema files share: the product limits as field bounds, the fields every
 * resource has, and builders for the kinds of field (read-only, create-only, names, sizes) and of
 * type (a resource collection, an embedded input type) with GDAPI's defaults spelled once.
 *
 * Layout of src/model/schema: `types.ts` (the shapes), this file, one file per resource type
 * (its schema, its input types and its cross-field create rule), `registry.ts` (the list and the
 * lookups) and `validate.ts`. src/model/gdapi-schema.ts re-exports them: adding a resource type is
 * adding a file here and its entry in the registry.
 */
import { LIMITS } from '../resources.ts';
import type { ActionSchema, FieldSchema, TypeSchema } from './types.ts';

// ---------------------------------------------------------------------------------------------
// Limits (the product surface: servers up to 16 GB RAM, 40 GB root disk, up to 1.2 TB extra storage)

/** vCPUs of a virtual machine, with the default of a create that names none. */
export const VM_VCPUS = { min: LIMITS.vcpusMin, max: LIMITS.vcpusMax, default: 1 } as const;
/** Memory of a virtual machine in MiB (16 GB at most), with the create default. */
export const VM_MEMORY_MB = {
  min: LIMITS.memoryMbMin,
  max: LIMITS.memoryMbMax,
  default: 1024,
} as const;
/** Root disk of a virtual machine in GB, default 40. */
export const VM_ROOT_DISK_GB = {
  min: LIMITS.rootDiskGbMin,
  max: LIMITS.rootDiskGbMax,
  default: LIMITS.rootDiskGbDefault,
} as const;
/** Size of one data volume in GB (1.2 TB, also the cap on a VM's extra storage). */
export const VOLUME_SIZE_GB = { min: LIMITS.volumeSizeGbMin, max: LIMITS.volumeSizeGbMax } as const;
/** Extra volumes that may be created with a virtual machine. */
export const VM_EXTRA_VOLUMES_MAX = LIMITS.extraVolumesMaxPerVm;

/** Characters of resource names that may end up in host names and dataset names. */
export const NAME_CHARS = 'a-zA-Z0-9_.-';
/** Characters of human names (accounts, keys). */
export const LABEL_CHARS = 'a-zA-Z0-9 _.@-';

// ---------------------------------------------------------------------------------------------
// Field definitions

/** A field the control plane sets: never writable, never null unless `extra` says so. */
export const readOnly = (type: string, extra: Partial<FieldSchema> = {}): FieldSchema => ({
  type,
  required: false,
  create: false,
  update: false,
  nullable: false,
  ...extra,
});

/** A field set on create only (never with PUT): optional and not null unless `extra` says so. */
export const createOnly = (type: string, extra: Partial<FieldSchema> = {}): FieldSchema => ({
  type,
  required: false,
  create: true,
  update: false,
  nullable: false,
  ...extra,
});

/** Fields every resource has. */
export const COMMON_FIELDS: Readonly<Record<string, FieldSchema>> = {
  id: readOnly('string', { description: 'Opaque, URL-safe id.' }),
  type: readOnly('string'),
  state: readOnly('string', { description: 'The lifecycle state (see the schema lifecycle).' }),
  transitioning: readOnly('enum', { options: ['yes', 'no', 'error'] }),
  transitioningMessage: readOnly('string', { nullable: true }),
  transitioningProgress: readOnly('int', { nullable: true, min: 0, max: 100 }),
  created: readOnly('date'),
  removed: readOnly('date', { nullable: true }),
  accountId: readOnly('reference[account]', { nullable: true }),
  rev: readOnly('int', {
    description: 'The resource version; send it back with an update or action to get 409 if stale.',
  }),
};

/**
 * The name of a resource: settable on create (required or defaulted by the api) and with PUT, which
 * appends a `*.renamed` event (see decideRename). Never null: a resource always has a name, so null
 * is refused on create and update alike. Names are the only updatable fields.
 */
export const resourceName = (
  required: boolean,
  chars = NAME_CHARS,
  maxLength = 63,
): FieldSchema => ({
  type: 'string',
  required,
  create: true,
  update: true,
  nullable: false,
  minLength: 1,
  maxLength,
  validChars: chars,
});

/** The optional name inside an input type (extra volumes, snapshot action): null means "default". */
export const inputName = (): FieldSchema => ({
  ...resourceName(false),
  update: false,
  nullable: true,
});

/** The read-only `desired` of a resource, with the states a user may ask for. */
export const desired = (options: readonly string[]): FieldSchema =>
  readOnly('enum', { options, description: 'The state the control plane works towards.' });

/** The `desired` of every resource but a virtual machine. */
export const DESIRED_PRESENCE = desired(['present', 'deleted']);

/** A volume size in GB on create: required, or else nullable. */
export const volumeSize = (required: boolean, extra: Partial<FieldSchema> = {}): FieldSchema =>
  createOnly('int', {
    required,
    nullable: !required,
    min: VOLUME_SIZE_GB.min,
    max: VOLUME_SIZE_GB.max,
    ...extra,
  });

/** No actions. */
export const noActions: Readonly<Record<string, ActionSchema>> = {};

// ---------------------------------------------------------------------------------------------
// Type definitions

/**
 * A resource type with a collection. Unless given: GET, PUT and DELETE on a resource, GET and POST
 * on the collection, no actions, no links, readable and creatable by everyone, synchronous.
 */
export function resourceType(
  schema: Required<Pick<TypeSchema, 'id' | 'collection' | 'idPrefix' | 'resourceFields'>> &
    Partial<TypeSchema>,
): TypeSchema {
  return {
    id: schema.id,
    collection: schema.collection,
    idPrefix: schema.idPrefix,
    resourceFields: schema.resourceFields,
    resourceMethods: schema.resourceMethods ?? ['GET', 'PUT', 'DELETE'],
    collectionMethods: schema.collectionMethods ?? ['GET', 'POST'],
    resourceActions: schema.resourceActions ?? noActions,
    collectionActions: schema.collectionActions ?? noActions,
    collectionLinks: schema.collectionLinks ?? {},
    audience: schema.audience ?? 'everyone',
    createAudience: schema.createAudience ?? 'everyone',
    asynchronous: schema.asynchronous ?? false,
  };
}

/** An embedded input type (an action's input, an item of a create's array): fields only. */
export function embedded(id: string, resourceFields: Record<string, FieldSchema>): TypeSchema {
  return {
    id,
    resourceFields,
    resourceMethods: [],
    collectionMethods: [],
    resourceActions: noActions,
    collectionActions: noActions,
    collectionLinks: {},
    audience: 'everyone',
    createAudience: 'everyone',
    asynchronous: false,
  };
}
