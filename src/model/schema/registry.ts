/**
 * The registry of every schema: the list /v1/schemas publishes (resource types first, in a stable
 * order, then embedded input types), the lookups by id, collection and id prefix, and what follows
 * from the field definitions (represented, filterable and sortable fields). A new resource type is
 * one more entry in {@link SCHEMAS} (and, with cross-field create rules, in {@link CREATE_RULES}).
 */
import { accountSchema, apiKeySchema } from './account.ts';
import { checkHostCreate, hostSchema } from './host.ts';
import { imageSchema } from './image.ts';
import { snapshotSchema } from './snapshot.ts';
import {
  FILTER_MODIFIERS,
  type CollectionFilters,
  type FieldSchema,
  type FilterModifier,
  type GdapiError,
  type JsonObject,
  type TypeSchema,
} from './types.ts';
import { vmInputSchemas, vmSchema } from './vm.ts';
import { checkVolumeCreate, volumeInputSchemas, volumeSchema } from './volume.ts';

/** Every schema, resource types first, then embedded input types. */
const SCHEMAS: readonly TypeSchema[] = [
  accountSchema,
  apiKeySchema,
  hostSchema,
  imageSchema,
  vmSchema,
  volumeSchema,
  snapshotSchema,
  ...vmInputSchemas,
  ...volumeInputSchemas,
];

/** Cross-field rules of create bodies that a field-by-field schema cannot express, by type. */
const CREATE_RULES = new Map<string, (value: JsonObject) => GdapiError | null>([
  ['host', checkHostCreate],
  ['volume', checkVolumeCreate],
]);

/** Characters of opaque ids. */
const ID_PATTERN = /^[a-z][a-z0-9]*-[a-zA-Z0-9_-]{1,64}$/;

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

/** The fields of type `type` in schema order, or undefined for an unknown type. */
export function fieldsOf(type: string): ReadonlyMap<string, FieldSchema> | undefined {
  return FIELD_MAPS.get(type);
}

/** The cross-field create rule of resource type `type`: the first error, or null. */
export function checkCreateRules(type: string, value: JsonObject): GdapiError | null {
  return CREATE_RULES.get(type)?.(value) ?? null;
}
