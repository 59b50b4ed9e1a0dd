/**
 * The shapes of the GDAPI schemas and of validation results: field, action and type schemas, the
 * collection filters, the GDAPI error as data. Declared apart from the schemas themselves so the
 * per-resource schema files, the registry and the validation all import them without a cycle.
 */

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
