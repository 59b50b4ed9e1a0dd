/**
 * A small declarative validator for data files (scenarios, trace headers): each field has a type,
 * bounds and a default, unknown fields are errors with a "did you mean" hint, and every error names
 * the path of the offending field. Kept dependency-free so the messages are exactly ours.
 *
 * Every shape also describes itself as JSON Schema (`shape.jsonSchema()`, draft 2020-12), so a file
 * format's published schema comes from the very validators that check it and cannot drift from them.
 * What a schema cannot say (one field excluding another, names saved by earlier steps) stays in the
 * code that builds on the shapes.
 */

/** A path into a document: object keys and array indices. */
export type FieldPath = readonly (string | number)[];

/** A validation failure at `path`. */
export class ShapeError extends Error {
  override name = 'ShapeError';
  constructor(
    readonly path: FieldPath,
    readonly problem: string,
  ) {
    super(`${formatPath(path)}: ${problem}`);
  }
}

/** `a.b[2].c`, or `(top level)` for the empty path. */
export function formatPath(path: FieldPath): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const part of path)
    out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

/** A JSON Schema fragment (draft 2020-12): plain JSON data. */
export type JsonSchema = { readonly [keyword: string]: unknown };

/**
 * A validator: returns the checked (and defaulted) value or throws {@link ShapeError}; its
 * `jsonSchema()` describes the values it accepts.
 */
export interface Shape<T> {
  (value: unknown, path: FieldPath): T;
  /** The values this shape accepts, as JSON Schema (as far as JSON Schema can say it). */
  jsonSchema(): JsonSchema;
}

/** A shape from a validating function and the JSON Schema that describes what it accepts. */
export function custom<T>(
  check: (value: unknown, path: FieldPath) => T,
  schema: JsonSchema | (() => JsonSchema),
): Shape<T> {
  const jsonSchema = typeof schema === 'function' ? schema : () => schema;
  return Object.assign((value: unknown, path: FieldPath) => check(value, path), { jsonSchema });
}

/** `shape` with a description in its JSON Schema (validation unchanged). */
export function doc<T>(shape: Shape<T>, description: string): Shape<T> {
  return custom(shape, () => ({ ...shape.jsonSchema(), description }));
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string')
    return `the text ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`;
  }
  return typeof value;
}

/** Options for number shapes. */
export interface NumberOptions {
  readonly min?: number;
  readonly max?: number;
  /** An exclusive lower bound: the value must be more than this. */
  readonly above?: number;
}

function boundsSchema(options: NumberOptions): JsonSchema {
  return {
    ...(options.min === undefined ? {} : { minimum: options.min }),
    ...(options.above === undefined ? {} : { exclusiveMinimum: options.above }),
    ...(options.max === undefined ? {} : { maximum: options.max }),
  };
}

/** An integer within optional bounds. */
export function int(options: NumberOptions = {}): Shape<number> {
  return custom(
    (value, path) => {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        throw new ShapeError(path, `must be a whole number, got ${describe(value)}`);
      }
      checkBounds(value, options, path);
      return value;
    },
    { type: 'integer', ...boundsSchema(options) },
  );
}

/** A finite number within optional bounds. */
export function num(options: NumberOptions = {}): Shape<number> {
  return custom(
    (value, path) => {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new ShapeError(path, `must be a number, got ${describe(value)}`);
      }
      checkBounds(value, options, path);
      return value;
    },
    { type: 'number', ...boundsSchema(options) },
  );
}

/** A probability: a number in [0, 1]. */
export function probability(): Shape<number> {
  const number = num();
  return custom(
    (value, path) => {
      const p = number(value, path);
      if (p < 0) throw new ShapeError(path, `is a probability and must be at least 0, got ${p}`);
      if (p > 1) throw new ShapeError(path, `is a probability and must be at most 1, got ${p}`);
      return p;
    },
    { type: 'number', minimum: 0, maximum: 1 },
  );
}

function checkBounds(value: number, options: NumberOptions, path: FieldPath): void {
  if (options.min !== undefined && value < options.min) {
    throw new ShapeError(path, `must be at least ${options.min}, got ${value}`);
  }
  if (options.above !== undefined && !(value > options.above)) {
    throw new ShapeError(path, `must be more than ${options.above}, got ${value}`);
  }
  if (options.max !== undefined && value > options.max) {
    throw new ShapeError(path, `must be at most ${options.max}, got ${value}`);
  }
}

/** A string, optionally matching a pattern (described in words for the error). */
export function str(
  options: {
    readonly pattern?: RegExp;
    readonly patternHint?: string;
    readonly maxLength?: number;
  } = {},
): Shape<string> {
  return custom(
    (value, path) => {
      if (typeof value !== 'string')
        throw new ShapeError(path, `must be text, got ${describe(value)}`);
      if (options.maxLength !== undefined && value.length > options.maxLength) {
        throw new ShapeError(path, `must be at most ${options.maxLength} characters long`);
      }
      if (options.pattern !== undefined && !options.pattern.test(value)) {
        throw new ShapeError(
          path,
          `must be ${options.patternHint ?? `text matching ${String(options.pattern)}`}, got ${describe(value)}`,
        );
      }
      return value;
    },
    {
      type: 'string',
      ...(options.maxLength === undefined ? {} : { maxLength: options.maxLength }),
      ...(options.pattern === undefined ? {} : { pattern: patternSource(options.pattern) }),
    },
  );
}

/** A RegExp as a JSON Schema pattern (ECMA-262 syntax); flags cannot be carried, so none may be set. */
function patternSource(pattern: RegExp): string {
  if (pattern.flags !== '') throw new Error(`a shape's pattern takes no flags: ${String(pattern)}`);
  return pattern.source;
}

export function bool(): Shape<boolean> {
  return custom(
    (value, path) => {
      if (typeof value !== 'boolean')
        throw new ShapeError(path, `must be true or false, got ${describe(value)}`);
      return value;
    },
    { type: 'boolean' },
  );
}

/** One of a fixed set of strings. */
export function oneOf<const T extends string>(options: readonly T[]): Shape<T> {
  return custom(
    (value, path) => {
      if (typeof value !== 'string' || !(options as readonly string[]).includes(value)) {
        const hint = typeof value === 'string' ? suggest(value, options) : undefined;
        throw new ShapeError(
          path,
          `must be one of ${options.join(', ')}, got ${describe(value)}${hint === undefined ? '' : ` (did you mean '${hint}'?)`}`,
        );
      }
      return value as T;
    },
    { enum: [...options] },
  );
}

/** A list whose items all match `item`. */
export function list<T>(
  item: Shape<T>,
  options: { readonly maxLength?: number; readonly minLength?: number } = {},
): Shape<T[]> {
  return custom(
    (value, path) => {
      if (!Array.isArray(value))
        throw new ShapeError(path, `must be a list, got ${describe(value)}`);
      if (options.minLength !== undefined && value.length < options.minLength) {
        throw new ShapeError(
          path,
          `must have at least ${options.minLength} items, got ${value.length}`,
        );
      }
      if (options.maxLength !== undefined && value.length > options.maxLength) {
        throw new ShapeError(
          path,
          `must have at most ${options.maxLength} items, got ${value.length}`,
        );
      }
      return value.map((v, i) => item(v, [...path, i]));
    },
    () => ({
      type: 'array',
      items: item.jsonSchema(),
      ...(options.minLength === undefined ? {} : { minItems: options.minLength }),
      ...(options.maxLength === undefined ? {} : { maxItems: options.maxLength }),
    }),
  );
}

/** Any JSON value (used for request bodies the API validates itself). */
export function json(): Shape<unknown> {
  return custom((value) => value, {});
}

/** Accepts the first alternative that validates; reports the error of the last one. */
export function either<A, B>(a: Shape<A>, b: Shape<B>): Shape<A | B> {
  return custom(
    (value, path) => {
      try {
        return a(value, path);
      } catch (error) {
        if (!(error instanceof ShapeError)) throw error;
        return b(value, path);
      }
    },
    () => ({ anyOf: [a.jsonSchema(), b.jsonSchema()] }),
  );
}

/** A field of an object shape. */
export interface Field<T> {
  readonly shape: Shape<T>;
  readonly required?: boolean;
  readonly default?: T;
}

type FieldsOf<F> = { [K in keyof F]: F[K] extends Field<infer T> ? T : never };

/** Field helpers. */
export function required<T>(shape: Shape<T>): Field<T> {
  return { shape, required: true };
}
export function optional<T>(shape: Shape<T>, defaultValue?: T): Field<T | undefined> {
  return defaultValue === undefined ? { shape } : { shape, default: defaultValue };
}

/** A mapping with known fields; unknown fields are errors with a spelling hint. */
export function object<F extends Record<string, Field<unknown>>>(fields: F): Shape<FieldsOf<F>> {
  const known = Object.keys(fields);
  return custom(
    (value, path) => {
      const record = mapping(value, path);
      for (const key of Object.keys(record)) {
        if (!known.includes(key)) throw unknownField([...path, key], known);
      }
      const out: Record<string, unknown> = {};
      for (const key of known) {
        const field = fields[key] as Field<unknown>;
        const member = record[key];
        if (member === undefined || member === null) {
          if (field.required === true) throw new ShapeError([...path, key], 'is required');
          if (field.default !== undefined) out[key] = field.default;
          continue;
        }
        out[key] = field.shape(member, [...path, key]);
      }
      return out as FieldsOf<F>;
    },
    () => {
      const properties: Record<string, JsonSchema> = {};
      for (const key of known) {
        const field = fields[key] as Field<unknown>;
        properties[key] = {
          ...field.shape.jsonSchema(),
          ...(field.default === undefined ? {} : { default: field.default }),
        };
      }
      const requiredKeys = known.filter((key) => (fields[key] as Field<unknown>).required === true);
      return {
        type: 'object',
        properties,
        ...(requiredKeys.length === 0 ? {} : { required: requiredKeys }),
        additionalProperties: false,
      };
    },
  );
}

function mapping(value: unknown, path: FieldPath): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ShapeError(path, `must be a mapping, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function unknownField(path: FieldPath, known: readonly string[]): ShapeError {
  const key = String(path.at(-1));
  const hint = suggest(key, known);
  return new ShapeError(
    path,
    `unknown field${hint === undefined ? '' : ` (did you mean '${hint}'?)`}; known fields: ${known.join(', ')}`,
  );
}

/**
 * A mapping of one of several kinds, told apart by a key only one kind has: the first of
 * `variants`' keys present in the mapping picks its shape; a mapping with none of them is
 * `otherwise`. A key that is no field of the kind picked is reported with hints from every kind
 * (a misspelt `repet:` suggests `repeat`). Each shape must be an {@link object} shape.
 */
export function variant<V, O>(
  variants: Readonly<Record<string, Shape<V>>>,
  otherwise: Shape<O>,
): Shape<V | O> {
  const keysOf = (shape: Shape<unknown>): string[] =>
    Object.keys(shape.jsonSchema()['properties'] ?? {});
  const discriminators = Object.keys(variants);
  return custom(
    (value, path) => {
      const record = mapping(value, path);
      const key = discriminators.find((k) => record[k] !== undefined && record[k] !== null);
      const shape = key === undefined ? otherwise : (variants[key] as Shape<V>);
      const known = keysOf(shape);
      for (const field of Object.keys(record)) {
        if (!known.includes(field)) {
          const hint = suggest(field, known) ?? suggest(field, discriminators);
          throw new ShapeError(
            [...path, field],
            `unknown field${hint === undefined ? '' : ` (did you mean '${hint}'?)`}; known fields: ${known.join(', ')}${key === undefined ? ` (or one of ${discriminators.join(', ')} for a generator)` : ''}`,
          );
        }
      }
      return shape(value, path);
    },
    () => ({
      anyOf: [
        ...discriminators.map((k) => (variants[k] as Shape<V>).jsonSchema()),
        otherwise.jsonSchema(),
      ],
    }),
  );
}

/** The closest candidate by edit distance, if it is close enough to be a likely misspelling. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance || (d === bestDistance && best !== undefined && candidate < best)) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3))
    ? best
    : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(
        Math.min(
          (previous[j] as number) + 1,
          (current[j - 1] as number) + 1,
          (previous[j - 1] as number) + cost,
        ),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** A duration: a number of milliseconds, or text like `250ms`, `1.5s`, `2m`, `1h`. */
export function duration(options: { readonly min?: number } = {}): Shape<number> {
  return custom(checkDuration(options), {
    anyOf: [
      { type: 'number', minimum: options.min ?? 0, description: 'milliseconds' },
      { type: 'string', pattern: DURATION_PATTERN },
    ],
  });
}

/** Text durations, as JSON Schema sees them (surrounding blanks are trimmed before matching). */
const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)\\s*$';

function checkDuration(options: { readonly min?: number }) {
  return (value: unknown, path: FieldPath): number => {
    let ms: number;
    if (typeof value === 'number') {
      ms = value;
    } else if (typeof value === 'string') {
      const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(value.trim());
      if (match === null) {
        throw new ShapeError(
          path,
          `must be a duration such as 500ms, 2s, 5m or 1h (or a number of ms), got ${describe(value)}`,
        );
      }
      const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
      ms = Number(match[1]) * unit;
    } else {
      throw new ShapeError(
        path,
        `must be a duration such as 500ms, 2s, 5m or 1h, got ${describe(value)}`,
      );
    }
    if (!Number.isFinite(ms) || ms < 0)
      throw new ShapeError(path, `must be a non-negative duration, got ${describe(value)}`);
    if (options.min !== undefined && ms < options.min)
      throw new ShapeError(path, `must be at least ${options.min} ms`);
    return Math.round(ms);
  };
}
