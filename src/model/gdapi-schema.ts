/**
 * The GDAPI schemas of cloudbed's public API: one schema per resource type (account, apiKey, host,
 * image, virtualMachine, volume, snapshot) and per embedded input type, with the field definitions
 * GDAPI clients read (type, required, create, update, nullable, default, min/max, length limits,
 * options, validChars), the resource actions and their input types, and the collection filters.
 *
 * It also holds the pure validation of request bodies against those definitions. Validation is the
 * only gate between untrusted input and the domain: it returns GDAPI errors as data (422 with a code
 * and the offending field) and never throws on any input, whatever its shape.
 */
import { LIMITS } from './resources.ts';

/** JSON values, as request bodies and projections carry them. */
export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Filter modifiers of GDAPI collections (`name_prefix=web`). `eq` is the default. */
export type FilterModifier =
  'eq' | 'ne' | 'lt' | 'lte' | 'gt' | 'gte' | 'prefix' | 'like' | 'notlike' | 'null' | 'notnull';

/** Every modifier, in the order GDAPI lists them. */
export const FILTER_MODIFIERS: readonly FilterModifier[] = [
  'eq',
  'ne',
  'lt',
  'lte',
  'gt',
  'gte',
  'prefix',
  'like',
  'notlike',
  'null',
  'notnull',
];

/** Error codes of the GDAPI error format that cloudbed uses. */
export type GdapiErrorCode =
  | 'Unauthorized'
  | 'PermissionDenied'
  | 'NotFound'
  | 'ActionNotAvailable'
  | 'MethodNotAllowed'
  | 'Conflict'
  | 'RequestTooLarge'
  | 'UriTooLong'
  | 'UnsupportedMediaType'
  | 'MissingRequired'
  | 'InvalidFormat'
  | 'InvalidOption'
  | 'InvalidReference'
  | 'NotUnique'
  | 'MinLimitExceeded'
  | 'MaxLimitExceeded'
  | 'MinLengthExceeded'
  | 'MaxLengthExceeded'
  | 'InvalidCharacters'
  | 'InvalidState'
  | 'InvalidBodyContent'
  | 'ServerError'
  | 'ServiceUnavailable';

/** A GDAPI error, as data. Rendered as `{type:'error', status, code, message, detail, fieldName}`. */
export interface GdapiError {
  /** HTTP status, 4xx or 5xx. */
  readonly status: number;
  readonly code: GdapiErrorCode;
  readonly message: string;
  readonly detail?: string;
  /** The field the error is about; nested fields are written `volumes[0].sizeGb`. */
  readonly fieldName?: string;
}

/** Builds a 422 validation error about `fieldName`. */
export function invalid(code: GdapiErrorCode, fieldName: string, message: string): GdapiError {
  return { status: 422, code, message, fieldName };
}

/** The result of a validation: the cleaned value, or the first error found. */
export type Validated<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: GdapiError };

/** One field of a schema, in GDAPI's `resourceFields` format plus two internal flags. */
export interface FieldSchema {
  /**
   * `string int float boolean date json password enum reference[type] array[type] map[type]` or the
   * id of an embedded schema.
   */
  readonly type: string;
  readonly required?: boolean;
  /** Settable on create. */
  readonly create?: boolean;
  /** Settable with PUT. */
  readonly update?: boolean;
  readonly nullable?: boolean;
  readonly default?: JsonValue;
  /** Inclusive numeric bounds (int and float). */
  readonly min?: number;
  readonly max?: number;
  /** Inclusive length bounds: characters for strings, items for arrays. */
  readonly minLength?: number;
  readonly maxLength?: number;
  /** Allowed values of an enum. */
  readonly options?: readonly string[];
  /** Allowed characters, as the body of a regular-expression character class (`a-z0-9_.-`). */
  readonly validChars?: string;
  readonly description?: string;
  /** Accepted as input (create or action) but not part of the resource's representation. */
  readonly inputOnly?: boolean;
  /** Shown only once, in the create response (an api key's secret). */
  readonly createResponseOnly?: boolean;
}

/** One action of a resource type. */
export interface ActionSchema {
  /** The id of the input schema, when the action takes input. */
  readonly input?: string;
  /** The id of the output schema. */
  readonly output?: string;
}

/**
 * A collection reachable from a resource: `/v1/virtualmachines/{id}/volumes`. The link's name is
 * the listed type's collection name.
 */
export interface CollectionLink {
  /** The resource type listed. */
  readonly type: string;
  /** The field of the listed type that must equal the parent's id. */
  readonly field: string;
}

/** Who may use a collection. */
export type Audience = 'everyone' | 'admin';

/** The schema of one type. */
export interface TypeSchema {
  /** The type name, singular camelCase (`virtualMachine`). */
  readonly id: string;
  /** The collection name, plural lowercase (`virtualmachines`); absent for embedded types. */
  readonly collection?: string;
  /** The prefix of this type's ids (`vm`), for resource types. */
  readonly idPrefix?: string;
  readonly resourceFields: Readonly<Record<string, FieldSchema>>;
  readonly resourceMethods: readonly ('GET' | 'PUT' | 'DELETE')[];
  readonly collectionMethods: readonly ('GET' | 'POST')[];
  readonly resourceActions: Readonly<Record<string, ActionSchema>>;
  readonly collectionActions: Readonly<Record<string, ActionSchema>>;
  /** Collections reachable from each resource of this type, by link name. */
  readonly collectionLinks: Readonly<Record<string, CollectionLink>>;
  /** Who may read the collection. Writes of admin types are admin-only too. */
  readonly audience: Audience;
  /** Who may create resources of this type. */
  readonly createAudience: Audience;
  /** True when creating or deleting leaves work to the control plane (answered 202, not 201/200). */
  readonly asynchronous: boolean;
}

/** The schema's published `collectionFilters`: every filterable field and its modifiers. */
export type CollectionFilters = Readonly<
  Record<string, { readonly modifiers: readonly FilterModifier[] }>
>;

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
const NAME_CHARS = 'a-zA-Z0-9_.-';
/** Characters of human names (accounts, keys). */
const LABEL_CHARS = 'a-zA-Z0-9 _.@-';
/** Characters of opaque ids. */
const ID_PATTERN = /^[a-z][a-z0-9]*-[a-zA-Z0-9_-]{1,64}$/;

// ---------------------------------------------------------------------------------------------
// Field definitions

const readOnly = (type: string, extra: Partial<FieldSchema> = {}): FieldSchema => ({
  type,
  required: false,
  create: false,
  update: false,
  nullable: false,
  ...extra,
});

/** Fields every resource has. */
const COMMON_FIELDS: Readonly<Record<string, FieldSchema>> = {
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
const resourceName = (required: boolean, chars = NAME_CHARS, maxLength = 63): FieldSchema => ({
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
const inputName = (): FieldSchema => ({ ...resourceName(false), update: false, nullable: true });

const desired = (options: readonly string[]): FieldSchema =>
  readOnly('enum', { options, description: 'The state the control plane works towards.' });

const volumeSize = (required: boolean, extra: Partial<FieldSchema> = {}): FieldSchema => ({
  type: 'int',
  required,
  create: true,
  update: false,
  nullable: !required,
  min: VOLUME_SIZE_GB.min,
  max: VOLUME_SIZE_GB.max,
  ...extra,
});

const noActions: Readonly<Record<string, ActionSchema>> = {};

/** Every schema, resource types first, then embedded input types. */
const SCHEMAS: readonly TypeSchema[] = [
  {
    id: 'account',
    collection: 'accounts',
    idPrefix: 'acct',
    resourceFields: {
      ...COMMON_FIELDS,
      name: resourceName(true, LABEL_CHARS, 128),
      kind: {
        type: 'enum',
        options: ['admin', 'user'],
        default: 'user',
        create: true,
        update: false,
        required: false,
        nullable: false,
      },
      desired: desired(['present', 'deleted']),
    },
    // DELETE (admin) removes an account that owns no live VM, volume or snapshot and is not the
    // last admin, revoking its keys in the same write; the row stays as a tombstone.
    resourceMethods: ['GET', 'PUT', 'DELETE'],
    collectionMethods: ['GET', 'POST'],
    resourceActions: noActions,
    collectionActions: noActions,
    collectionLinks: {
      apikeys: { type: 'apiKey', field: 'accountId' },
      virtualmachines: { type: 'virtualMachine', field: 'accountId' },
      volumes: { type: 'volume', field: 'accountId' },
      snapshots: { type: 'snapshot', field: 'accountId' },
    },
    audience: 'everyone',
    createAudience: 'admin',
    asynchronous: false,
  },
  {
    id: 'apiKey',
    collection: 'apikeys',
    idPrefix: 'key',
    resourceFields: {
      ...COMMON_FIELDS,
      accountId: {
        type: 'reference[account]',
        create: true,
        update: false,
        required: false,
        nullable: true,
        description: 'The owning account; only an admin may name another account than its own.',
      },
      name: resourceName(false, LABEL_CHARS, 128),
      publicValue: readOnly('string', { description: 'The access key.' }),
      secretValue: readOnly('password', {
        nullable: true,
        createResponseOnly: true,
        description: 'The secret key: shown once, in the create response; stored only hashed.',
      }),
      desired: desired(['present', 'deleted']),
    },
    resourceMethods: ['GET', 'PUT', 'DELETE'],
    collectionMethods: ['GET', 'POST'],
    resourceActions: noActions,
    collectionActions: noActions,
    collectionLinks: {},
    audience: 'everyone',
    createAudience: 'everyone',
    asynchronous: false,
  },
  {
    id: 'host',
    collection: 'hosts',
    idPrefix: 'host',
    resourceFields: {
      ...COMMON_FIELDS,
      name: resourceName(true),
      kind: {
        type: 'enum',
        options: ['compute', 'storage'],
        required: true,
        create: true,
        update: false,
        nullable: false,
      },
      vcpus: {
        type: 'int',
        create: true,
        update: false,
        required: false,
        nullable: true,
        min: 1,
        max: 4096,
        description: 'Compute hosts: vCPUs offered to virtual machines (required for compute).',
      },
      memoryMb: {
        type: 'int',
        create: true,
        update: false,
        required: false,
        nullable: true,
        min: 256,
        max: 16_777_216,
        description:
          'Compute hosts: memory offered to virtual machines in MiB (required for compute).',
      },
      poolSizeGb: {
        type: 'int',
        create: true,
        update: false,
        required: false,
        nullable: true,
        min: 1,
        max: 1_048_576,
        description: 'Storage nodes: size of the pool `cloudbed` in GB (required for storage).',
      },
      desired: desired(['present', 'deleted']),
    },
    // A host leaves with the `remove` action (only when empty), not with DELETE.
    resourceMethods: ['GET', 'PUT'],
    collectionMethods: ['GET', 'POST'],
    resourceActions: {
      maintenance: { output: 'host' },
      activate: { output: 'host' },
      remove: { output: 'host' },
    },
    collectionActions: noActions,
    collectionLinks: {
      virtualmachines: { type: 'virtualMachine', field: 'hostId' },
      volumes: { type: 'volume', field: 'storageNodeId' },
    },
    audience: 'admin',
    createAudience: 'admin',
    asynchronous: false,
  },
  {
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
    resourceActions: noActions,
    collectionActions: noActions,
    collectionLinks: {},
    audience: 'everyone',
    createAudience: 'admin',
    asynchronous: false,
  },
  {
    id: 'virtualMachine',
    collection: 'virtualmachines',
    idPrefix: 'vm',
    resourceFields: {
      ...COMMON_FIELDS,
      name: resourceName(true),
      imageId: {
        type: 'reference[image]',
        required: true,
        create: true,
        update: false,
        nullable: false,
      },
      vcpus: {
        type: 'int',
        required: false,
        create: true,
        update: false,
        nullable: false,
        min: VM_VCPUS.min,
        max: VM_VCPUS.max,
        default: VM_VCPUS.default,
      },
      memoryMb: {
        type: 'int',
        required: false,
        create: true,
        update: false,
        nullable: false,
        min: VM_MEMORY_MB.min,
        max: VM_MEMORY_MB.max,
        default: VM_MEMORY_MB.default,
      },
      rootDiskGb: {
        type: 'int',
        required: false,
        create: true,
        update: false,
        nullable: false,
        min: VM_ROOT_DISK_GB.min,
        max: VM_ROOT_DISK_GB.max,
        default: VM_ROOT_DISK_GB.default,
      },
      volumes: {
        type: 'array[volumeSpec]',
        required: false,
        create: true,
        update: false,
        nullable: true,
        maxLength: VM_EXTRA_VOLUMES_MAX,
        inputOnly: true,
        description: 'Extra data volumes created attached to the new machine.',
      },
      startOnCreate: {
        type: 'boolean',
        required: false,
        create: true,
        update: false,
        nullable: false,
        default: true,
        inputOnly: true,
        description: 'Start the machine once it is created (false: leave it stopped).',
      },
      hostId: readOnly('reference[host]', { nullable: true, description: 'Placement.' }),
      rootVolumeId: readOnly('reference[volume]', { nullable: true }),
      desired: desired(['running', 'stopped', 'deleted']),
    },
    resourceMethods: ['GET', 'PUT', 'DELETE'],
    collectionMethods: ['GET', 'POST'],
    resourceActions: {
      start: { output: 'virtualMachine' },
      stop: { output: 'virtualMachine' },
      restart: { output: 'virtualMachine' },
    },
    collectionActions: noActions,
    collectionLinks: { volumes: { type: 'volume', field: 'virtualMachineId' } },
    audience: 'everyone',
    createAudience: 'everyone',
    asynchronous: true,
  },
  {
    id: 'volume',
    collection: 'volumes',
    idPrefix: 'vol',
    resourceFields: {
      ...COMMON_FIELDS,
      name: resourceName(false),
      sizeGb: volumeSize(false, {
        description: 'Required unless sourceSnapshotId is given (then the snapshot size).',
      }),
      sourceSnapshotId: {
        type: 'reference[snapshot]',
        required: false,
        create: true,
        update: false,
        nullable: true,
        description: 'Create the volume as a clone of this snapshot.',
      },
      virtualMachineId: readOnly('reference[virtualMachine]', {
        nullable: true,
        description: 'Attachment: change it with the attach and detach actions.',
      }),
      storageNodeId: readOnly('reference[host]', { nullable: true, description: 'Placement.' }),
      imageId: readOnly('reference[image]', { nullable: true }),
      root: readOnly('boolean', { description: 'True for the root volume of a virtual machine.' }),
      desired: desired(['present', 'deleted']),
    },
    resourceMethods: ['GET', 'PUT', 'DELETE'],
    collectionMethods: ['GET', 'POST'],
    resourceActions: {
      attach: { input: 'volumeAttachInput', output: 'volume' },
      detach: { output: 'volume' },
      grow: { input: 'volumeGrowInput', output: 'volume' },
      snapshot: { input: 'volumeSnapshotInput', output: 'snapshot' },
      restore: { input: 'volumeRestoreInput', output: 'volume' },
    },
    collectionActions: noActions,
    collectionLinks: { snapshots: { type: 'snapshot', field: 'volumeId' } },
    audience: 'everyone',
    createAudience: 'everyone',
    asynchronous: true,
  },
  {
    id: 'snapshot',
    collection: 'snapshots',
    idPrefix: 'snap',
    resourceFields: {
      ...COMMON_FIELDS,
      name: resourceName(false),
      volumeId: {
        type: 'reference[volume]',
        required: true,
        create: true,
        update: false,
        nullable: false,
      },
      sizeGb: readOnly('int', { nullable: true }),
      desired: desired(['present', 'deleted']),
    },
    resourceMethods: ['GET', 'PUT', 'DELETE'],
    collectionMethods: ['GET', 'POST'],
    resourceActions: noActions,
    collectionActions: noActions,
    collectionLinks: { volumes: { type: 'volume', field: 'sourceSnapshotId' } },
    audience: 'everyone',
    createAudience: 'everyone',
    // Snapshots are taken by the storage agent: the work continues after the response.
    asynchronous: true,
  },
  embedded('volumeSpec', {
    name: inputName(),
    sizeGb: volumeSize(true),
  }),
  embedded('volumeAttachInput', {
    virtualMachineId: {
      type: 'reference[virtualMachine]',
      required: true,
      create: true,
      update: false,
      nullable: false,
    },
  }),
  embedded('volumeGrowInput', {
    sizeGb: volumeSize(true, { description: 'The new size; volumes only grow.' }),
  }),
  embedded('volumeSnapshotInput', { name: inputName() }),
  embedded('volumeRestoreInput', {
    snapshotId: {
      type: 'reference[snapshot]',
      required: true,
      create: true,
      update: false,
      nullable: false,
      description: "The volume's most recent snapshot (only that one can be restored).",
    },
  }),
];

function embedded(id: string, resourceFields: Record<string, FieldSchema>): TypeSchema {
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

// Maps, not plain objects, so that names such as `constructor` or `__proto__` in untrusted input
// never resolve to Object.prototype members.
const BY_ID = new Map<string, TypeSchema>(SCHEMAS.map((s) => [s.id, s]));
const BY_COLLECTION = new Map<string, TypeSchema>(
  SCHEMAS.flatMap((s) => (s.collection === undefined ? [] : [[s.collection, s] as const])),
);
const BY_PREFIX = new Map<string, TypeSchema>(
  SCHEMAS.flatMap((s) => (s.idPrefix === undefined ? [] : [[s.idPrefix, s] as const])),
);
const FIELD_MAPS = new Map<string, ReadonlyMap<string, FieldSchema>>(
  SCHEMAS.map((s) => [s.id, new Map(Object.entries(s.resourceFields))]),
);

/** Every schema: resource types first (in a stable order), then embedded types. */
export function allSchemas(): readonly TypeSchema[] {
  return SCHEMAS;
}

/** The resource types, those with a collection. */
export function resourceSchemas(): readonly TypeSchema[] {
  return SCHEMAS.filter((s) => s.collection !== undefined);
}

/** The schema with id `type`, or undefined. */
export function schemaOf(type: string): TypeSchema | undefined {
  return BY_ID.get(type);
}

/** The resource schema whose collection is `collection` (`virtualmachines`), or undefined. */
export function schemaOfCollection(collection: string): TypeSchema | undefined {
  return BY_COLLECTION.get(collection);
}

/** The resource type of an id or stream name (`vm-7f3a2c01` → `virtualMachine`), or undefined. */
export function typeOfId(id: string): string | undefined {
  const dash = id.indexOf('-');
  if (dash <= 0) return undefined;
  return BY_PREFIX.get(id.slice(0, dash))?.id;
}

/** True when `id` has the syntax of a cloudbed id (prefix, dash, URL-safe tail). */
export function isIdSyntax(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** The field `name` of type `type`, or undefined (never an Object.prototype member). */
export function fieldOf(type: string, name: string): FieldSchema | undefined {
  return FIELD_MAPS.get(type)?.get(name);
}

/** The fields of a resource's representation: every field except input-only ones. */
export function representedFields(type: string): readonly string[] {
  const schema = BY_ID.get(type);
  if (schema === undefined) return [];
  return Object.entries(schema.resourceFields)
    .filter(([, f]) => f.inputOnly !== true && f.createResponseOnly !== true)
    .map(([name]) => name);
}

/** The type a `reference[x]` field points to, or undefined for other types. */
export function referenceTarget(fieldType: string): string | undefined {
  const m = /^reference\[(\w+)\]$/.exec(fieldType);
  return m?.[1];
}

/** Scalar field types: those that can be filtered and sorted. */
function isScalar(field: FieldSchema): boolean {
  return (
    field.inputOnly !== true &&
    field.createResponseOnly !== true &&
    field.type !== 'password' &&
    (['string', 'int', 'float', 'boolean', 'date', 'enum'].includes(field.type) ||
      referenceTarget(field.type) !== undefined)
  );
}

/** The modifiers that make sense for a field's type. */
function modifiersFor(field: FieldSchema): readonly FilterModifier[] {
  switch (field.type) {
    case 'int':
    case 'float':
    case 'date':
      return ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'null', 'notnull'];
    case 'boolean':
      return ['eq', 'ne', 'null', 'notnull'];
    default:
      return FILTER_MODIFIERS;
  }
}

/** The published `collectionFilters` of a type: every scalar field with its modifiers. */
export function collectionFilters(type: string): CollectionFilters {
  const schema = BY_ID.get(type);
  if (schema?.collection === undefined) return {};
  const out: Record<string, { modifiers: readonly FilterModifier[] }> = {};
  for (const [name, field] of Object.entries(schema.resourceFields)) {
    if (isScalar(field)) out[name] = { modifiers: modifiersFor(field) };
  }
  return out;
}

/** The fields a collection of `type` can be sorted by (the filterable ones). */
export function sortableFields(type: string): readonly string[] {
  return Object.keys(collectionFilters(type));
}

// ---------------------------------------------------------------------------------------------
// Validation

/** Which kind of write a body is validated for. */
type Mode = 'create' | 'update' | 'input';

/**
 * Sets an own enumerable member, even one named `__proto__` (plain assignment would change the
 * object's prototype instead, and the member would silently vanish from validation).
 */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Caps how much of a bad value an error message quotes. */
function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

const charClassCache = new Map<string, RegExp>();
function validCharsRegExp(validChars: string): RegExp {
  let re = charClassCache.get(validChars);
  if (re === undefined) {
    re = new RegExp(`^[${validChars}]*$`, 'u');
    charClassCache.set(validChars, re);
  }
  return re;
}

const ARRAY_TYPE = /^array\[(\w+(?:\[\w+\])?)\]$/;
const MAP_TYPE = /^map\[(\w+(?:\[\w+\])?)\]$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Nesting depth bound for values checked recursively (embedded objects in arrays in …). */
const MAX_DEPTH = 8;

/**
 * Checks one value against a field type. `path` names the field in errors. Returns the cleaned value
 * (embedded objects get their defaults) or the error.
 */
function checkValue(
  field: FieldSchema,
  value: unknown,
  path: string,
  depth: number,
): Validated<JsonValue> {
  if (value === null) {
    if (field.nullable === true) return { ok: true, value: null };
    if (field.required === true)
      return { ok: false, error: invalid('MissingRequired', path, `${path} is required`) };
    return { ok: false, error: invalid('InvalidFormat', path, `${path} may not be null`) };
  }
  const type = field.type;
  switch (type) {
    case 'string':
    case 'password': {
      if (typeof value !== 'string')
        return bad('InvalidFormat', path, `${path} must be a string, not ${describe(value)}`);
      if (field.minLength !== undefined && value.length < field.minLength)
        return bad(
          'MinLengthExceeded',
          path,
          `${path} must be at least ${field.minLength} characters long`,
        );
      if (field.maxLength !== undefined && value.length > field.maxLength)
        return bad(
          'MaxLengthExceeded',
          path,
          `${path} must be at most ${field.maxLength} characters long`,
        );
      if (field.validChars !== undefined && !validCharsRegExp(field.validChars).test(value))
        return bad(
          'InvalidCharacters',
          path,
          `${path} may contain only the characters [${field.validChars}]`,
        );
      return { ok: true, value };
    }
    case 'int':
    case 'float': {
      if (typeof value !== 'number' || !Number.isFinite(value))
        return bad('InvalidFormat', path, `${path} must be a number, not ${describe(value)}`);
      if (type === 'int' && !Number.isSafeInteger(value))
        return bad('InvalidFormat', path, `${path} must be an integer`);
      if (field.min !== undefined && value < field.min)
        return bad('MinLimitExceeded', path, `${path} must be at least ${field.min}`);
      if (field.max !== undefined && value > field.max)
        return bad('MaxLimitExceeded', path, `${path} must be at most ${field.max}`);
      return { ok: true, value };
    }
    case 'boolean':
      if (typeof value !== 'boolean')
        return bad('InvalidFormat', path, `${path} must be true or false, not ${describe(value)}`);
      return { ok: true, value };
    case 'date':
      if (typeof value !== 'string' || !ISO_DATE.test(value) || Number.isNaN(Date.parse(value)))
        return bad('InvalidFormat', path, `${path} must be an ISO-8601 date`);
      return { ok: true, value };
    case 'enum':
      if (typeof value !== 'string')
        return bad('InvalidFormat', path, `${path} must be a string, not ${describe(value)}`);
      if (!(field.options ?? []).includes(value))
        return bad(
          'InvalidOption',
          path,
          `${path} must be one of ${(field.options ?? []).join(', ')}, not ${quote(value)}`,
        );
      return { ok: true, value };
    case 'json':
      return { ok: true, value: value as JsonValue };
    default:
      break;
  }
  const target = referenceTarget(type);
  if (target !== undefined) {
    if (typeof value !== 'string')
      return bad('InvalidFormat', path, `${path} must be an id, not ${describe(value)}`);
    // A well-formed id of the wrong type, or a malformed one, can never resolve.
    const schema = BY_ID.get(target);
    if (!isIdSyntax(value) || (schema?.idPrefix !== undefined && typeOfId(value) !== target))
      return bad('InvalidReference', path, `${path} must be the id of a ${target}`);
    return { ok: true, value };
  }
  if (depth >= MAX_DEPTH) return bad('InvalidBodyContent', path, `${path} is nested too deeply`);
  const arrayOf = ARRAY_TYPE.exec(type)?.[1];
  if (arrayOf !== undefined) {
    if (!Array.isArray(value))
      return bad('InvalidFormat', path, `${path} must be an array, not ${describe(value)}`);
    if (field.minLength !== undefined && value.length < field.minLength)
      return bad('MinLengthExceeded', path, `${path} must have at least ${field.minLength} items`);
    if (field.maxLength !== undefined && value.length > field.maxLength)
      return bad('MaxLengthExceeded', path, `${path} may have at most ${field.maxLength} items`);
    const items: JsonValue[] = [];
    const itemField: FieldSchema = { type: arrayOf, nullable: false, required: true };
    for (let i = 0; i < value.length; i++) {
      const checked = checkValue(itemField, value[i], `${path}[${i}]`, depth + 1);
      if (!checked.ok) return checked;
      items.push(checked.value);
    }
    return { ok: true, value: items };
  }
  const mapOf = MAP_TYPE.exec(type)?.[1];
  if (mapOf !== undefined) {
    if (!isObject(value))
      return bad('InvalidFormat', path, `${path} must be an object, not ${describe(value)}`);
    const out: JsonObject = {};
    const itemField: FieldSchema = { type: mapOf, nullable: false, required: true };
    for (const [key, item] of Object.entries(value)) {
      const checked = checkValue(itemField, item, `${path}.${key}`, depth + 1);
      if (!checked.ok) return checked;
      setOwn(out, key, checked.value);
    }
    return { ok: true, value: out };
  }
  const embeddedSchema = BY_ID.get(type);
  if (embeddedSchema !== undefined && embeddedSchema.collection === undefined) {
    if (!isObject(value))
      return bad('InvalidFormat', path, `${path} must be an object, not ${describe(value)}`);
    return checkObject(embeddedSchema.id, value, 'create', path, depth + 1);
  }
  // A schema that names a type this module does not know is a bug in the schema table.
  return bad('InvalidFormat', path, `${path} has an unsupported type ${type}`);
}

function bad(code: GdapiErrorCode, path: string, message: string): Validated<never> {
  return { ok: false, error: invalid(code, path, message) };
}

/**
 * Checks an object against a schema's fields for `mode`: unknown fields and fields not writable in
 * this mode are refused (naming the field), required fields must be present, defaults are applied
 * on create. Fields are checked in the schema's order, so the first error is deterministic.
 */
function checkObject(
  type: string,
  body: Record<string, unknown>,
  mode: Mode,
  prefix: string,
  depth: number,
): Validated<JsonObject> {
  const fields = FIELD_MAPS.get(type);
  if (fields === undefined) return bad('InvalidBodyContent', prefix, `unknown type ${type}`);
  const name = (field: string): string => (prefix === '' ? field : `${prefix}.${field}`);
  for (const key of Object.keys(body).sort()) {
    const field = fields.get(key);
    if (field === undefined)
      return bad('InvalidBodyContent', name(key), `unknown field ${quote(name(key))}`);
    const writable = mode === 'update' ? field.update === true : field.create === true;
    if (!writable)
      return bad(
        'InvalidBodyContent',
        name(key),
        `field ${name(key)} cannot be set ${mode === 'update' ? 'by an update' : 'here'}`,
      );
  }
  const out: JsonObject = {};
  for (const [key, field] of fields) {
    const writable = mode === 'update' ? field.update === true : field.create === true;
    if (!writable) continue;
    const present = Object.hasOwn(body, key) && body[key] !== undefined;
    if (!present) {
      if (mode === 'update') continue;
      if (field.default !== undefined) {
        out[key] = field.default;
        continue;
      }
      if (field.required === true)
        return bad('MissingRequired', name(key), `${name(key)} is required`);
      continue;
    }
    const checked = checkValue(field, body[key], name(key), depth);
    if (!checked.ok) return checked;
    out[key] = checked.value;
  }
  return { ok: true, value: out };
}

/** Cross-field rules of create bodies that a field-by-field schema cannot express. */
function checkCreateRules(type: string, value: JsonObject): GdapiError | null {
  if (type === 'host') {
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
  }
  if (type === 'volume') {
    const fromSnapshot =
      value['sourceSnapshotId'] !== undefined && value['sourceSnapshotId'] !== null;
    const sized = value['sizeGb'] !== undefined && value['sizeGb'] !== null;
    if (!fromSnapshot && !sized)
      return invalid(
        'MissingRequired',
        'sizeGb',
        'sizeGb is required unless sourceSnapshotId is given',
      );
  }
  return null;
}

/**
 * Validates a create body for resource type `type`. The body is the parsed JSON (or the typed form
 * fields). `type` and `rev` members are not allowed here except `type` equal to the type's id (some
 * generic clients send it). Returns the cleaned input with defaults applied.
 */
export function validateCreate(type: string, body: unknown): Validated<JsonObject> {
  const schema = BY_ID.get(type);
  if (schema?.collection === undefined)
    return bad('InvalidBodyContent', '', `cannot create resources of type ${type}`);
  if (!isObject(body))
    return {
      ok: false,
      error: {
        status: 422,
        code: 'InvalidBodyContent',
        message: `the body must be a JSON object, not ${describe(body)}`,
      },
    };
  const rest = withoutEcho(body, { type });
  if (!rest.ok) return rest;
  const checked = checkObject(type, rest.value, 'create', '', 0);
  if (!checked.ok) return checked;
  const rule = checkCreateRules(type, checked.value);
  return rule === null ? checked : { ok: false, error: rule };
}

/** Removes members that merely repeat known values (`type`), refusing them when they differ. */
function withoutEcho(
  body: Record<string, unknown>,
  expected: Readonly<Record<string, JsonValue>>,
): Validated<Record<string, unknown>> {
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (Object.hasOwn(expected, key)) {
      if (!sameJson(value, expected[key]))
        return bad('InvalidBodyContent', key, `${key} cannot be changed`);
      continue;
    }
    setOwn(rest, key, value);
  }
  return { ok: true, value: rest };
}

/** Structural equality of JSON values (key order ignored). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
  }
  return false;
}

/**
 * Validates a PUT body (partial) for resource type `type`. `current` is the resource as the API
 * renders it: members that are not updatable are accepted only when equal to their current value,
 * so a generic client may PUT back a resource it read, while any attempt to change a read-only or
 * create-only field is refused naming the field. `rev` is not handled here (the caller checks it).
 * Returns only the updatable fields present.
 */
export function validateUpdate(
  type: string,
  body: unknown,
  current: Readonly<Record<string, JsonValue>>,
): Validated<JsonObject> {
  const fields = FIELD_MAPS.get(type);
  const schema = BY_ID.get(type);
  if (fields === undefined || schema?.collection === undefined)
    return bad('InvalidBodyContent', '', `cannot update resources of type ${type}`);
  if (!isObject(body))
    return {
      ok: false,
      error: {
        status: 422,
        code: 'InvalidBodyContent',
        message: `the body must be a JSON object, not ${describe(body)}`,
      },
    };
  const echoes: Record<string, JsonValue> = {};
  for (const key of Object.keys(body)) {
    const field = fields.get(key);
    const echoed =
      field === undefined ? key === 'links' || key === 'actions' : field.update !== true;
    if (echoed && Object.hasOwn(current, key)) echoes[key] = current[key] ?? null;
  }
  const rest = withoutEcho(body, echoes);
  if (!rest.ok) return rest;
  return checkObject(type, rest.value, 'update', '', 0);
}

/**
 * Checks one value against field `name` of type `type` as a create would (type, length, characters,
 * bounds). Returns null when it passes, the 422 error (naming the field) when not. For rules the
 * model re-checks outside the api, such as a new name in decideRename.
 */
export function validateField(type: string, name: string, value: unknown): GdapiError | null {
  const field = FIELD_MAPS.get(type)?.get(name);
  if (field === undefined)
    return invalid('InvalidBodyContent', name, `unknown field ${quote(name)}`);
  const checked = checkValue(field, value, name, 0);
  return checked.ok ? null : checked.error;
}

/**
 * Validates the input of action `action` on resource type `type`. Actions without an input schema
 * take an empty body (`{}`, or nothing). Returns the cleaned input (defaults applied).
 */
export function validateActionInput(
  type: string,
  action: string,
  body: unknown,
): Validated<JsonObject> {
  const schema = BY_ID.get(type);
  const spec =
    schema === undefined ? undefined : new Map(Object.entries(schema.resourceActions)).get(action);
  if (spec === undefined) return bad('InvalidBodyContent', '', `unknown action ${quote(action)}`);
  const input = body === undefined || body === null ? {} : body;
  if (!isObject(input))
    return {
      ok: false,
      error: {
        status: 422,
        code: 'InvalidBodyContent',
        message: `the body must be a JSON object, not ${describe(input)}`,
      },
    };
  if (spec.input === undefined) {
    const first = Object.keys(input).sort()[0];
    if (first !== undefined)
      return bad(
        'InvalidBodyContent',
        first,
        `action ${action} takes no input (unknown field ${quote(first)})`,
      );
    return { ok: true, value: {} };
  }
  return checkObject(spec.input, input, 'input', '', 0);
}
