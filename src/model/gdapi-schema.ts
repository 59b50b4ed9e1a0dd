/**
 * The GDAPI schemas of cloudbed's public API: one schema per resource type (account, apiKey, host,
 * image, virtualMachine, volume, snapshot) and per embedded input type, with the field definitions
 * GDAPI clients read (type, required, create, update, nullable, default, min/max, length limits,
 * options, validChars), the resource actions and their input types, and the collection filters.
 *
 * It also holds the pure validation of request bodies against those definitions. Validation is the
 * only gate between untrusted input and the domain: it returns GDAPI errors as data (422 with a code
 * and the offending field) and never throws on any input, whatever its shape.
 *
 * The schemas live in src/model/schema/, one file per resource type beside the shared field
 * builders, the registry and the validation; this module is their one import path.
 */
export {
  FILTER_MODIFIERS,
  invalid,
  type ActionSchema,
  type Audience,
  type CollectionFilters,
  type CollectionLink,
  type FieldSchema,
  type FilterModifier,
  type GdapiError,
  type GdapiErrorCode,
  type JsonObject,
  type JsonValue,
  type TypeSchema,
  type Validated,
} from './schema/types.ts';
export {
  VM_EXTRA_VOLUMES_MAX,
  VM_MEMORY_MB,
  VM_ROOT_DISK_GB,
  VM_VCPUS,
  VOLUME_SIZE_GB,
} from './schema/fields.ts';
export {
  allSchemas,
  collectionFilters,
  fieldOf,
  isIdSyntax,
  referenceTarget,
  representedFields,
  resourceSchemas,
  schemaOf,
  schemaOfCollection,
  sortableFields,
  typeOfId,
} from './schema/registry.ts';
export {
  sameJson,
  setOwn,
  validateActionInput,
  validateCreate,
  validateField,
  validateUpdate,
} from './schema/validate.ts';
