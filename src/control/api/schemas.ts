/**
 * `/v1/schemas`: the schema resources generic GDAPI clients build themselves from. Each schema
 * publishes its fields, methods, actions with input types, collection filters and, for resource
 * types, the lifecycle (states, initial, final, transitioning and error states, transitions with
 * the action that triggers each), so tools can enumerate what a resource can go through. Methods
 * are those the caller may use: a user account sees no host schema and a read-only account schema.
 */
import { describeLifecycle, hasMachine } from '../../model/lifecycle.ts';
import {
  allSchemas,
  collectionFilters,
  schemaOf,
  type FieldSchema,
  type JsonObject,
  type TypeSchema,
} from '../../model/gdapi-schema.ts';
import type { Caller } from './auth.ts';
import { collectionUrl } from './render.ts';

/** The URL of the schema collection. */
export function schemasUrl(base: string): string {
  return `${base}/v1/schemas`;
}

/** The URL of one schema. */
export function schemaUrl(base: string, id: string): string {
  return `${schemasUrl(base)}/${id}`;
}

/** True when `caller` may see the collection of `schema` at all. */
export function canSee(schema: TypeSchema, caller: Caller): boolean {
  return schema.audience === 'everyone' || caller.admin;
}

/** True when `caller` may create, update, delete or act on resources of `schema`. */
export function canWrite(schema: TypeSchema, caller: Caller): boolean {
  return caller.admin || (schema.audience === 'everyone' && schema.createAudience === 'everyone');
}

function renderField(field: FieldSchema): JsonObject {
  const out: JsonObject = {
    type: field.type,
    required: field.required ?? false,
    create: field.create ?? false,
    update: field.update ?? false,
    nullable: field.nullable ?? false,
  };
  if (field.default !== undefined) out['default'] = field.default;
  if (field.min !== undefined) out['min'] = field.min;
  if (field.max !== undefined) out['max'] = field.max;
  if (field.minLength !== undefined) out['minLength'] = field.minLength;
  if (field.maxLength !== undefined) out['maxLength'] = field.maxLength;
  if (field.options !== undefined) out['options'] = [...field.options];
  if (field.validChars !== undefined) out['validChars'] = field.validChars;
  if (field.description !== undefined) out['description'] = field.description;
  return out;
}

/** The lifecycle of resources without a machine: alive until deleted. */
function simpleLifecycle(type: string): JsonObject {
  return {
    type,
    initial: 'active',
    states: ['active', 'removed'],
    finalStates: ['removed'],
    transitioningStates: [],
    errorStates: [],
    transitions: [
      { from: 'active', event: 'DELETE', action: 'delete', to: 'removed', guard: null },
    ],
  };
}

/** The schema resource of `schema` as `caller` sees it. */
export function renderSchema(base: string, schema: TypeSchema, caller: Caller): JsonObject {
  const writable = canWrite(schema, caller);
  const out: JsonObject = {
    id: schema.id,
    type: 'schema',
    links: {
      self: schemaUrl(base, schema.id),
      ...(schema.collection === undefined ? {} : { collection: collectionUrl(base, schema.id) }),
    },
    pluralName: schema.collection ?? `${schema.id}s`,
    resourceFields: Object.fromEntries(
      Object.entries(schema.resourceFields).map(([name, field]) => [name, renderField(field)]),
    ),
    resourceMethods: writable
      ? [...schema.resourceMethods]
      : schema.resourceMethods.filter((m) => m === 'GET'),
    resourceActions: writable
      ? Object.fromEntries(
          Object.entries(schema.resourceActions).map(([name, a]) => [
            name,
            { input: a.input ?? null, output: a.output ?? null },
          ]),
        )
      : {},
    collectionMethods:
      schema.collection === undefined
        ? []
        : caller.admin || schema.createAudience === 'everyone'
          ? [...schema.collectionMethods]
          : schema.collectionMethods.filter((m) => m === 'GET'),
    collectionActions: {},
    collectionFilters: Object.fromEntries(
      Object.entries(collectionFilters(schema.id)).map(([name, f]) => [
        name,
        { modifiers: [...f.modifiers] },
      ]),
    ),
  };
  if (schema.collection !== undefined && schema.id !== 'image')
    out['lifecycle'] = hasMachine(schema.id)
      ? (describeLifecycle(schema.id) as unknown as JsonObject)
      : simpleLifecycle(schema.id);
  return out;
}

/** Every schema `caller` may see. */
export function visibleSchemas(caller: Caller): readonly TypeSchema[] {
  return allSchemas().filter((s) => canSee(s, caller));
}

/** The schema collection as `caller` sees it. */
export function renderSchemaCollection(base: string, caller: Caller): JsonObject {
  return {
    type: 'collection',
    resourceType: 'schema',
    links: { self: schemasUrl(base) },
    createTypes: {},
    actions: {},
    data: visibleSchemas(caller).map((s) => renderSchema(base, s, caller)),
  };
}

/** The schema named `id` (case-insensitive, as clients lower-case ids), if `caller` may see it. */
export function findSchema(id: string, caller: Caller): TypeSchema | undefined {
  const exact = schemaOf(id);
  const schema = exact ?? allSchemas().find((s) => s.id.toLowerCase() === id.toLowerCase());
  return schema !== undefined && canSee(schema, caller) ? schema : undefined;
}
