/**
 * The pure validation of request bodies against the schemas. Validation is the only gate between
 * untrusted input and the domain: it returns GDAPI errors as data (422 with a code and the
 * offending field) and never throws on any input, whatever its shape.
 */
import {
  checkCreateRules,
  fieldsOf,
  isIdSyntax,
  referenceTarget,
  schemaOf,
  typeOfId,
} from './registry.ts';
import {
  invalid,
  type FieldSchema,
  type GdapiError,
  type GdapiErrorCode,
  type JsonObject,
  type JsonValue,
  type Validated,
} from './types.ts';

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
    const schema = schemaOf(target);
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
  const embeddedSchema = schemaOf(type);
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

/** The error of a whole body that is not a JSON object (it names no field). */
function notAnObject(body: unknown): Validated<never> {
  const message = `the body must be a JSON object, not ${describe(body)}`;
  return { ok: false, error: { status: 422, code: 'InvalidBodyContent', message } };
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
  const fields = fieldsOf(type);
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

/**
 * Validates a create body for resource type `type`. The body is the parsed JSON (or the typed form
 * fields). `type` and `rev` members are not allowed here except `type` equal to the type's id (some
 * generic clients send it). Returns the cleaned input with defaults applied.
 */
export function validateCreate(type: string, body: unknown): Validated<JsonObject> {
  const schema = schemaOf(type);
  if (schema?.collection === undefined)
    return bad('InvalidBodyContent', '', `cannot create resources of type ${type}`);
  if (!isObject(body)) return notAnObject(body);
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
  const fields = fieldsOf(type);
  const schema = schemaOf(type);
  if (fields === undefined || schema?.collection === undefined)
    return bad('InvalidBodyContent', '', `cannot update resources of type ${type}`);
  if (!isObject(body)) return notAnObject(body);
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
  const field = fieldsOf(type)?.get(name);
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
  const schema = schemaOf(type);
  const spec =
    schema === undefined ? undefined : new Map(Object.entries(schema.resourceActions)).get(action);
  if (spec === undefined) return bad('InvalidBodyContent', '', `unknown action ${quote(action)}`);
  const input = body === undefined || body === null ? {} : body;
  if (!isObject(input)) return notAnObject(input);
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
