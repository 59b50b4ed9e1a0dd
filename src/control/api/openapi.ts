/**
 * `/v1/openapi.json`: the API as an OpenAPI 3.1 document, generated from the same schemas as
 * `/v1/schemas` (src/model/schema), so the two never disagree. Every resource type gets its
 * representation, its create and update bodies and its collection; every collection its list and
 * create operations; every resource its read, update, delete and `?action=` operations and its
 * linked collections. Field rules carry over: types, bounds, lengths, allowed characters, enums,
 * nullability. The whole API is described (an account sees in `/v1/schemas` what it may use).
 */
import {
  allSchemas,
  collectionFilters,
  representedFields,
  schemaOf,
  type FieldSchema,
  type JsonObject,
  type JsonValue,
  type TypeSchema,
} from '../../model/gdapi-schema.ts';
import { MAX_LIMIT } from './query.ts';

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });
const capitalized = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1);

/** The JSON Schema of one field's values (without its nullability). */
function valueSchema(type: string): JsonObject {
  const inner = /^(array|map|reference)\[(\w+)\]$/.exec(type);
  if (inner !== null) {
    const [, kind, of] = inner as unknown as [string, string, string];
    if (kind === 'reference') return { type: 'string', description: `the id of a ${of}` };
    if (kind === 'array') return { type: 'array', items: valueSchema(of) };
    return { type: 'object', additionalProperties: valueSchema(of) };
  }
  switch (type) {
    case 'string':
      return { type: 'string' };
    case 'password':
      return { type: 'string', writeOnly: true };
    case 'int':
      return { type: 'integer' };
    case 'float':
      return { type: 'number' };
    case 'boolean':
      return { type: 'boolean' };
    case 'date':
      return { type: 'string', format: 'date-time' };
    case 'json':
      return {};
    case 'enum':
      return { type: 'string' };
    default:
      return schemaOf(type) === undefined ? {} : ref(type);
  }
}

/** The JSON Schema of a field: its values, rules and nullability. */
function fieldSchema(field: FieldSchema): JsonObject {
  const out: Record<string, JsonValue> = { ...valueSchema(field.type) };
  if (field.type === 'enum' && field.options !== undefined) out['enum'] = [...field.options];
  if (field.min !== undefined) out['minimum'] = field.min;
  if (field.max !== undefined) out['maximum'] = field.max;
  const isArray = field.type.startsWith('array[');
  if (field.minLength !== undefined) out[isArray ? 'minItems' : 'minLength'] = field.minLength;
  if (field.maxLength !== undefined) out[isArray ? 'maxItems' : 'maxLength'] = field.maxLength;
  if (field.validChars !== undefined && !isArray) out['pattern'] = `^[${field.validChars}]*$`;
  if (field.default !== undefined) out['default'] = field.default;
  if (field.description !== undefined) out['description'] = field.description;
  if (field.nullable === true) {
    if (typeof out['type'] === 'string') {
      out['type'] = [out['type'], 'null'];
      if (Array.isArray(out['enum'])) out['enum'] = [...out['enum'], null];
      return out;
    }
    return { oneOf: [out, { type: 'null' }] };
  }
  return out;
}

/** An object schema of the fields of `schema` that `pick` selects. */
function objectOf(
  schema: TypeSchema,
  pick: (field: FieldSchema, name: string) => boolean,
  required: (field: FieldSchema) => boolean,
): JsonObject {
  const properties: Record<string, JsonValue> = {};
  const needed: string[] = [];
  for (const [name, field] of Object.entries(schema.resourceFields)) {
    if (!pick(field, name)) continue;
    properties[name] = fieldSchema(field);
    if (required(field)) needed.push(name);
  }
  return {
    type: 'object',
    properties,
    ...(needed.length > 0 ? { required: needed } : {}),
  };
}

const stringMap: JsonObject = { type: 'object', additionalProperties: { type: 'string' } };

/** The representation of a resource of `schema`: its fields, links and actions. */
function representation(schema: TypeSchema): JsonObject {
  const represented = new Set(representedFields(schema.id));
  const body = objectOf(
    schema,
    (_f, name) => represented.has(name),
    () => false,
  );
  return {
    ...body,
    properties: {
      ...(body['properties'] as JsonObject),
      links: stringMap,
      actions: stringMap,
    },
    required: ['id', 'type', 'links', 'actions'].filter(
      (name) => name === 'links' || name === 'actions' || represented.has(name),
    ),
  };
}

const json = (schema: JsonObject): JsonObject => ({ 'application/json': { schema } });
const response = (description: string, schema?: JsonObject): JsonObject =>
  schema === undefined ? { description } : { description, content: json(schema) };

/** The error answers every operation may give. */
const ERRORS: JsonObject = {
  '4XX': response('refused: the error body names the problem', ref('error')),
  '503': response('a service the API depends on is unavailable; retry', ref('error')),
};

/** Documents made, by base URL: the schemas never change, so neither does a base's document. */
const DOCUMENTS = new Map<string, JsonObject>();

/** The OpenAPI document of the whole API, served from `base`. */
export function openApiDocument(base: string): JsonObject {
  let document = DOCUMENTS.get(base);
  if (document === undefined) {
    document = buildDocument(base);
    // A few bases at most (a server answers under its own names); never an unbounded cache.
    if (DOCUMENTS.size < 8) DOCUMENTS.set(base, document);
  }
  return document;
}

function buildDocument(base: string): JsonObject {
  const schemas: Record<string, JsonValue> = {
    error: {
      type: 'object',
      properties: {
        type: { const: 'error' },
        status: { type: 'integer' },
        code: { type: 'string' },
        message: { type: 'string' },
        detail: { type: 'string' },
        fieldName: { type: 'string' },
      },
      required: ['type', 'status', 'code', 'message'],
    },
  };
  const paths: Record<string, JsonValue> = {
    '/healthz': {
      get: {
        operationId: 'health',
        summary: 'whether the API answers and reads its database',
        security: [],
        responses: {
          '200': response('healthy'),
          '503': response('the database does not answer'),
        },
      },
    },
    '/v1/schemas': {
      get: {
        operationId: 'listSchemas',
        summary: 'the GDAPI schemas this account may use',
        responses: { '200': response('the schemas'), ...ERRORS },
      },
    },
  };
  for (const schema of allSchemas()) {
    if (schema.collection === undefined) {
      schemas[schema.id] = objectOf(
        schema,
        () => true,
        (f) => f.required === true,
      );
      continue;
    }
    const id = schema.id;
    const Name = capitalized(id);
    schemas[id] = representation(schema);
    schemas[`${id}Collection`] = {
      type: 'object',
      properties: {
        type: { const: 'collection' },
        resourceType: { const: id },
        data: { type: 'array', items: ref(id) },
        pagination: { type: 'object' },
        links: stringMap,
      },
      required: ['type', 'data'],
    };
    const collectionPath = `/v1/${schema.collection}`;
    const created = schema.asynchronous ? '202' : '201';
    const filters = Object.keys(collectionFilters(id)).map((name) => ({
      name,
      in: 'query',
      required: false,
      description: `filter on ${name}; modifiers as \`${name}_<modifier>\` (see /v1/schemas)`,
      schema: { type: 'string' },
    }));
    const collectionOps: Record<string, JsonValue> = {
      get: {
        operationId: `list${Name}`,
        parameters: [
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
          },
          { name: 'marker', in: 'query', schema: { type: 'string' } },
          { name: 'sort', in: 'query', schema: { type: 'string' } },
          { name: 'order', in: 'query', schema: { type: 'string', enum: ['asc', 'desc'] } },
          ...filters,
        ],
        responses: {
          '200': response('a page of the collection', ref(`${id}Collection`)),
          ...ERRORS,
        },
      },
    };
    if (schema.collectionMethods.includes('POST')) {
      schemas[`${id}Create`] = objectOf(
        schema,
        (f) => f.create === true,
        (f) => f.required === true && f.default === undefined,
      );
      collectionOps['post'] = {
        operationId: `create${Name}`,
        requestBody: { required: true, content: json(ref(`${id}Create`)) },
        responses: { [created]: response('created', ref(id)), ...ERRORS },
      };
    }
    paths[collectionPath] = collectionOps;

    const idParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
    const resourceOps: Record<string, JsonValue> = {
      parameters: [idParameter],
      get: {
        operationId: `get${Name}`,
        responses: {
          '200': response('the resource', ref(id)),
          '304': response('not modified since the tag in If-None-Match'),
          ...ERRORS,
        },
      },
    };
    if (schema.resourceMethods.includes('PUT')) {
      const update = objectOf(
        schema,
        (f) => f.update === true,
        () => false,
      );
      schemas[`${id}Update`] = {
        ...update,
        properties: {
          ...(update['properties'] as JsonObject),
          rev: {
            type: 'integer',
            description: 'the rev the change is based on (409 when it is not the current one)',
          },
        },
      };
      resourceOps['put'] = {
        operationId: `update${Name}`,
        requestBody: { required: true, content: json(ref(`${id}Update`)) },
        responses: { '200': response('updated', ref(id)), ...ERRORS },
      };
    }
    if (schema.resourceMethods.includes('DELETE')) {
      resourceOps['delete'] = {
        operationId: `delete${Name}`,
        responses: {
          [schema.asynchronous ? '202' : '200']: response('deleted, or being deleted', ref(id)),
          ...ERRORS,
        },
      };
    }
    const actions = Object.keys(schema.resourceActions);
    if (actions.length > 0) {
      resourceOps['post'] = {
        operationId: `act${Name}`,
        summary: `an action: ${actions.join(', ')} (those the state allows are in \`actions\`)`,
        parameters: [
          {
            name: 'action',
            in: 'query',
            required: true,
            schema: { type: 'string', enum: actions },
          },
        ],
        requestBody: { required: false, content: json({ type: 'object' }) },
        responses: { '202': response('accepted', ref(id)), ...ERRORS },
      };
    }
    paths[`${collectionPath}/{id}`] = resourceOps;
    for (const [link, target] of Object.entries(schema.collectionLinks)) {
      paths[`${collectionPath}/{id}/${link}`] = {
        parameters: [idParameter],
        get: {
          operationId: `list${Name}${capitalized(link)}`,
          responses: {
            '200': response(`the ${link} of the resource`, ref(`${target.type}Collection`)),
            ...ERRORS,
          },
        },
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'cloudbed',
      version: 'v1',
      description:
        'The cloudbed API (GDAPI conventions): collections with pagination, sorting and filters, links, state-dependent actions, rev with 409 on conflicts, one error format.',
    },
    servers: [{ url: base }],
    security: [{ basic: [] }],
    components: {
      securitySchemes: { basic: { type: 'http', scheme: 'basic' } },
      schemas,
    },
    paths,
  };
}
