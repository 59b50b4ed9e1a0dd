/**
 * Request bodies: size limit, media type, decoding and parsing of JSON, URL-encoded forms and
 * multipart forms. Forms carry only strings, so form fields are converted to the types the target
 * schema declares (ints, booleans, JSON for arrays and embedded objects) before the same validation
 * JSON bodies go through. Every failure is a 413, 415 or 422 — never an exception that escapes.
 */
import { fieldOf, referenceTarget, setOwn, type JsonValue } from '../../model/gdapi-schema.ts';
import { fail } from './errors.ts';

/** A parsed body. */
export type ParsedBody =
  | { readonly kind: 'none' }
  | { readonly kind: 'json'; readonly value: unknown }
  | { readonly kind: 'form'; readonly fields: ReadonlyMap<string, readonly string[]> };

/** Most fields a form may carry (bounds the work of hostile multipart bodies). */
const MAX_FORM_FIELDS = 256;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** The body's size in bytes. */
export function bodyBytes(body: Uint8Array | string): number {
  if (typeof body !== 'string') return body.byteLength;
  // Cheap bounds first: every UTF-16 unit is 1 to 3 UTF-8 bytes.
  return encoder.encode(body).byteLength;
}

/** The media type of a Content-Type header, lower case, without parameters (`application/json`). */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** One parameter of a Content-Type header (`boundary`), or undefined. */
function mediaParameter(contentType: string, name: string): string | undefined {
  for (const part of contentType.split(';').slice(1)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim().toLowerCase() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2)
      value = value.slice(1, -1);
    return value;
  }
  return undefined;
}

function decode(body: Uint8Array | string): string {
  if (typeof body === 'string') return body;
  try {
    return utf8.decode(body);
  } catch {
    throw fail(422, 'InvalidBodyContent', 'the body is not valid UTF-8');
  }
}

/**
 * Parses a request body. An empty body is `none`. `application/json` (and `+json` types) is parsed
 * as JSON, as is a body without a Content-Type; forms are parsed into fields. Other media types get
 * 415, bodies over `maxBodyBytes` 413, malformed content 422 InvalidBodyContent.
 */
export function parseBody(
  body: Uint8Array | string,
  contentType: string | undefined,
  maxBodyBytes: number,
): ParsedBody {
  const size = typeof body === 'string' ? body.length : body.byteLength;
  // A string's UTF-8 size is at least its length: reject early without encoding huge strings.
  if (size > maxBodyBytes || bodyBytes(body) > maxBodyBytes)
    throw fail(413, 'RequestTooLarge', `the body exceeds ${maxBodyBytes} bytes`);
  const text = decode(body);
  if (text.trim() === '') return { kind: 'none' };
  const type = mediaType(contentType);
  if (
    type === '' ||
    type === 'application/json' ||
    (type.startsWith('application/') && type.endsWith('+json'))
  ) {
    try {
      return { kind: 'json', value: JSON.parse(text) as unknown };
    } catch {
      throw fail(422, 'InvalidBodyContent', 'the body is not valid JSON');
    }
  }
  if (type === 'application/x-www-form-urlencoded') {
    // `curl -d '{"name":…}'` sends JSON labelled as a form: say so rather than read one odd field.
    if (looksLikeJson(text))
      throw fail(
        422,
        'InvalidBodyContent',
        'the body is JSON but its Content-Type is application/x-www-form-urlencoded',
        {
          detail:
            "send it with Content-Type: application/json (curl: -H 'Content-Type: application/json')",
        },
      );
    return { kind: 'form', fields: parseUrlEncoded(text) };
  }
  if (type === 'multipart/form-data') {
    const boundary = mediaParameter(contentType ?? '', 'boundary');
    if (boundary === undefined || boundary === '' || boundary.length > 70)
      throw fail(422, 'InvalidBodyContent', 'multipart/form-data without a valid boundary');
    return { kind: 'form', fields: parseMultipart(text, boundary) };
  }
  throw fail(
    415,
    'UnsupportedMediaType',
    `unsupported media type ${JSON.stringify(type.slice(0, 60))}`,
    {
      detail: 'send application/json, application/x-www-form-urlencoded or multipart/form-data',
    },
  );
}

/** True when `text` is a JSON object or array (what a form body never is). */
function looksLikeJson(text: string): boolean {
  const start = text.trimStart()[0];
  if (start !== '{' && start !== '[') return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function addField(fields: Map<string, string[]>, name: string, value: string): void {
  const values = fields.get(name);
  if (values !== undefined) values.push(value);
  else {
    if (fields.size >= MAX_FORM_FIELDS)
      throw fail(422, 'InvalidBodyContent', `a form may carry at most ${MAX_FORM_FIELDS} fields`);
    fields.set(name, [value]);
  }
}

/** Parses `a=1&b=x+y` (the query-string syntax). */
export function parseUrlEncoded(text: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  // URLSearchParams never throws on malformed percent escapes; it keeps them literally.
  for (const [name, value] of new URLSearchParams(text)) addField(fields, name, value);
  return fields;
}

/** Parses a multipart/form-data body: each part's `name` and text content. Files are refused. */
export function parseMultipart(text: string, boundary: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  const delimiter = `--${boundary}`;
  const parts = text.split(delimiter);
  // parts[0] is the preamble; the part after the closing delimiter starts with `--`.
  let closed = false;
  for (let i = 1; i < parts.length; i++) {
    let part = parts[i]!;
    if (part.startsWith('--')) {
      closed = true;
      break;
    }
    if (part.startsWith('\r\n')) part = part.slice(2);
    else if (part.startsWith('\n')) part = part.slice(1);
    else throw fail(422, 'InvalidBodyContent', 'malformed multipart body');
    const split = /\r?\n\r?\n/.exec(part);
    if (split === null) throw fail(422, 'InvalidBodyContent', 'malformed multipart part');
    const head = part.slice(0, split.index);
    let value = part.slice(split.index + split[0].length);
    if (value.endsWith('\r\n')) value = value.slice(0, -2);
    else if (value.endsWith('\n')) value = value.slice(0, -1);
    let name: string | undefined;
    for (const line of head.split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon < 0) throw fail(422, 'InvalidBodyContent', 'malformed multipart header');
      if (line.slice(0, colon).trim().toLowerCase() !== 'content-disposition') continue;
      const disposition = line.slice(colon + 1);
      if (/;\s*filename\*?=/i.test(disposition))
        throw fail(422, 'InvalidBodyContent', 'file uploads are not accepted');
      name =
        /;\s*name="([^"]*)"/i.exec(disposition)?.[1] ??
        /;\s*name=([^;\s]+)/i.exec(disposition)?.[1];
    }
    if (name === undefined) throw fail(422, 'InvalidBodyContent', 'multipart part without a name');
    addField(fields, name, value);
  }
  if (!closed) throw fail(422, 'InvalidBodyContent', 'multipart body without its closing boundary');
  return fields;
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** Converts one form string to the JSON value a field of `fieldType` expects, where it can. */
function fromFormString(fieldType: string, text: string): JsonValue {
  switch (fieldType) {
    case 'int':
    case 'float':
      return NUMBER.test(text) ? Number(text) : text;
    case 'boolean': {
      const lower = text.toLowerCase();
      if (lower === 'true' || lower === 'on' || lower === '1') return true;
      if (lower === 'false' || lower === 'off' || lower === '0') return false;
      return text;
    }
    case 'string':
    case 'password':
    case 'enum':
    case 'date':
      return text;
    default:
      if (referenceTarget(fieldType) !== undefined) return text;
      // Arrays, maps, embedded objects and json fields travel as JSON text in a form.
      try {
        return JSON.parse(text) as JsonValue;
      } catch {
        return text;
      }
  }
}

/**
 * Turns form fields into a body object for schema `schemaType`: empty values are dropped (an
 * empty HTML input means "not given"), known fields are converted to their declared types, unknown
 * fields are kept as strings (validation then refuses them by name). `rev` is converted to a number.
 */
export function formToObject(
  schemaType: string,
  fields: ReadonlyMap<string, readonly string[]>,
): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [name, values] of fields) {
    const given = values.filter((v) => v !== '');
    if (given.length === 0) continue;
    const fieldType = name === 'rev' ? 'int' : fieldOf(schemaType, name)?.type;
    const convert = (v: string): JsonValue =>
      fieldType === undefined ? v : fromFormString(fieldType, v);
    const isArray = fieldType?.startsWith('array[') === true;
    if (given.length === 1) {
      const value = convert(given[0]!);
      setOwn(out, name, isArray && !Array.isArray(value) ? [value] : value);
    } else {
      setOwn(out, name, given.map(convert));
    }
  }
  return out;
}
