/**
 * Collection queries: GDAPI filters (`field=value`, `field_<modifier>=value`, repeatable, ANDed),
 * sorting (`sort=<field>&order=asc|desc`, stable: ties broken by id in the same direction) and
 * keyset pagination (`limit`, default 100, max 1000, and an opaque `marker` that encodes the sort
 * key of the last item of the previous page, so pages stay consistent while rows come and go).
 * Also builds the collection's `pagination`, `sort`, `sortLinks` and `filters` members.
 */
import {
  collectionFilters,
  fieldOf,
  FILTER_MODIFIERS,
  type FilterModifier,
  type JsonValue,
} from '../../model/gdapi-schema.ts';
import { LikePattern } from '../../lib/like.ts';
import { fail } from './errors.ts';

/** Default page size. */
export const DEFAULT_LIMIT = 100;
/** Largest page size. */
export const MAX_LIMIT = 1000;
/** Most filter conditions one query may carry. */
const MAX_CONDITIONS = 64;
/** Longest value of one filter condition, in characters (no field holds more). */
export const MAX_FILTER_VALUE_LENGTH = 1024;

/** An item of a collection: its id and the row data its fields are read from. */
export interface ListItem {
  readonly id: string;
  readonly data: Readonly<Record<string, JsonValue>>;
}

/** One filter condition. */
export interface Condition {
  readonly modifier: FilterModifier;
  /** The value as given (echoed back), null for `null`/`notnull`. */
  readonly value: string | null;
  /** The value converted to the field's type. */
  readonly typed: string | number | boolean | null;
  /** For `like` and `notlike`: the value compiled, once per query. */
  readonly like?: LikePattern;
}

export type Order = 'asc' | 'desc';

/** A parsed collection query. */
export interface CollectionQuery {
  readonly filters: ReadonlyMap<string, readonly Condition[]>;
  readonly sort: string;
  readonly order: Order;
  readonly limit: number;
  /** The marker as given, or null on the first page. */
  readonly marker: string | null;
  /** The sort key after which the page starts, or null on the first page. */
  readonly after: readonly [JsonValue, string] | null;
}

/** The sort of a collection when the query names none. */
export const DEFAULT_SORT = 'created';

/** Query parameters that are not filters. Parameters starting with `_` are ignored too. */
const RESERVED = new Set(['limit', 'marker', 'sort', 'order']);

function parseTyped(fieldType: string, raw: string, param: string): string | number | boolean {
  switch (fieldType) {
    case 'int':
    case 'float': {
      const n = Number(raw);
      if (
        raw.trim() === '' ||
        !Number.isFinite(n) ||
        (fieldType === 'int' && !Number.isSafeInteger(n))
      )
        throw fail(422, 'InvalidFormat', `filter ${param} needs a number`, { fieldName: param });
      return n;
    }
    case 'date': {
      if (/^-?\d+$/.test(raw)) {
        const n = Number(raw);
        if (Number.isSafeInteger(n)) return n;
      }
      const ms = Date.parse(raw);
      if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(ms))
        throw fail(
          422,
          'InvalidFormat',
          `filter ${param} needs an ISO-8601 date or ms since the epoch`,
          {
            fieldName: param,
          },
        );
      return ms;
    }
    case 'boolean':
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      throw fail(422, 'InvalidFormat', `filter ${param} needs true or false`, { fieldName: param });
    default:
      return raw;
  }
}

function decodeMarker(marker: string, sort: string, order: Order): readonly [JsonValue, string] {
  const bad = () => fail(422, 'InvalidFormat', 'invalid marker', { fieldName: 'marker' });
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(marker)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(marker, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 4 ||
    parsed[0] !== sort ||
    parsed[1] !== order ||
    typeof parsed[3] !== 'string'
  )
    throw bad();
  const value = parsed[2] as unknown;
  if (
    value !== null &&
    typeof value !== 'string' &&
    typeof value !== 'number' &&
    typeof value !== 'boolean'
  )
    throw bad();
  return [value, parsed[3]];
}

function encodeMarker(sort: string, order: Order, value: JsonValue, id: string): string {
  return Buffer.from(JSON.stringify([sort, order, value, id]), 'utf8').toString('base64url');
}

/**
 * Parses the query string of a collection request of `type`. Unknown parameters, unknown fields,
 * modifiers a field does not support and malformed values get 422 naming the parameter.
 */
export function parseCollectionQuery(type: string, params: URLSearchParams): CollectionQuery {
  const filterable = new Map(Object.entries(collectionFilters(type)));
  const filters = new Map<string, Condition[]>();
  let conditions = 0;
  for (const [param, raw] of params) {
    if (RESERVED.has(param) || param.startsWith('_')) continue;
    const underscore = param.lastIndexOf('_');
    const suffix = underscore > 0 ? param.slice(underscore + 1) : '';
    const isModifier = (FILTER_MODIFIERS as readonly string[]).includes(suffix);
    const field = isModifier ? param.slice(0, underscore) : param;
    const modifier = (isModifier ? suffix : 'eq') as FilterModifier;
    // An empty value is "no condition" (what an HTML filter form sends for an empty input).
    if (raw === '' && modifier !== 'null' && modifier !== 'notnull') continue;
    const spec = filterable.get(field);
    if (spec === undefined)
      throw fail(422, 'InvalidFormat', `unknown filter ${JSON.stringify(param.slice(0, 60))}`, {
        fieldName: param,
        detail: `filterable fields: ${[...filterable.keys()].join(', ')}`,
      });
    if (!spec.modifiers.includes(modifier))
      throw fail(422, 'InvalidOption', `field ${field} does not support the modifier ${modifier}`, {
        fieldName: param,
      });
    if (++conditions > MAX_CONDITIONS)
      throw fail(422, 'InvalidFormat', `at most ${MAX_CONDITIONS} filter conditions`, {
        fieldName: param,
      });
    if (raw.length > MAX_FILTER_VALUE_LENGTH)
      throw fail(
        422,
        'MaxLimitExceeded',
        `filter ${param} is longer than ${MAX_FILTER_VALUE_LENGTH} characters`,
        { fieldName: param },
      );
    const fieldType = fieldOf(type, field)?.type ?? 'string';
    const condition: Condition =
      modifier === 'null' || modifier === 'notnull'
        ? { modifier, value: null, typed: null }
        : modifier === 'like' || modifier === 'notlike'
          ? { modifier, value: raw, typed: raw, like: new LikePattern(raw) }
          : { modifier, value: raw, typed: parseTyped(fieldType, raw, param) };
    const list = filters.get(field);
    if (list === undefined) filters.set(field, [condition]);
    else list.push(condition);
  }

  const sortParam = params.get('sort');
  const sort = sortParam === null || sortParam === '' ? DEFAULT_SORT : sortParam;
  if (!filterable.has(sort))
    throw fail(422, 'InvalidOption', `cannot sort by ${JSON.stringify(sort.slice(0, 60))}`, {
      fieldName: 'sort',
      detail: `sortable fields: ${[...filterable.keys()].join(', ')}`,
    });
  const orderParam = params.get('order');
  if (orderParam !== null && orderParam !== '' && orderParam !== 'asc' && orderParam !== 'desc')
    throw fail(422, 'InvalidOption', 'order must be asc or desc', { fieldName: 'order' });
  const order: Order = orderParam === 'desc' ? 'desc' : 'asc';

  const limitParam = params.get('limit');
  let limit = DEFAULT_LIMIT;
  if (limitParam !== null && limitParam !== '') {
    if (!/^-?\d{1,12}$/.test(limitParam))
      throw fail(422, 'InvalidFormat', 'limit must be an integer', { fieldName: 'limit' });
    limit = Number(limitParam);
    if (limit < 1)
      throw fail(422, 'MinLimitExceeded', 'limit must be at least 1', { fieldName: 'limit' });
    if (limit > MAX_LIMIT)
      throw fail(422, 'MaxLimitExceeded', `limit must be at most ${MAX_LIMIT}`, {
        fieldName: 'limit',
      });
  }
  const markerParam = params.get('marker');
  const marker = markerParam === null || markerParam === '' ? null : markerParam;
  const after = marker === null ? null : decodeMarker(marker, sort, order);
  return { filters, sort, order, limit, marker, after };
}

/** Orders two field values: numbers numerically, strings by code unit, false < true, null last. */
function compareValues(a: JsonValue | undefined, b: JsonValue | undefined): number {
  const an = a === undefined || a === null;
  const bn = b === undefined || b === null;
  if (an || bn) return an && bn ? 0 : an ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return a === b ? 0 : a ? 1 : -1;
  const sa = typeof a === 'string' ? a : JSON.stringify(a);
  const sb = typeof b === 'string' ? b : JSON.stringify(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function matches(value: JsonValue | undefined, condition: Condition): boolean {
  const isNull = value === undefined || value === null;
  const typed = condition.typed;
  switch (condition.modifier) {
    case 'null':
      return isNull;
    case 'notnull':
      return !isNull;
    case 'eq':
      return !isNull && value === typed;
    case 'ne':
      return isNull || value !== typed;
    case 'lt':
      return !isNull && compareValues(value, typed) < 0;
    case 'lte':
      return !isNull && compareValues(value, typed) <= 0;
    case 'gt':
      return !isNull && compareValues(value, typed) > 0;
    case 'gte':
      return !isNull && compareValues(value, typed) >= 0;
    case 'prefix':
      return typeof value === 'string' && typeof typed === 'string' && value.startsWith(typed);
    case 'like':
      return typeof value === 'string' && (condition.like as LikePattern).test(value);
    case 'notlike':
      return typeof value === 'string' && !(condition.like as LikePattern).test(value);
  }
}

/** One page of a collection. */
export interface Page<T extends ListItem> {
  readonly data: readonly T[];
  /** Items matching the filters, over all pages. */
  readonly total: number;
  /** True when more items follow this page. */
  readonly partial: boolean;
  /** The marker of the next page, or null on the last one. */
  readonly nextMarker: string | null;
}

/** Filters, sorts and pages `items` by `query`. */
export function applyQuery<T extends ListItem>(
  items: readonly T[],
  query: CollectionQuery,
): Page<T> {
  const filtered = items.filter((item) => {
    for (const [field, conditions] of query.filters) {
      const value = item.data[field];
      for (const condition of conditions) if (!matches(value, condition)) return false;
    }
    return true;
  });
  const sign = query.order === 'asc' ? 1 : -1;
  const compareKeys = (
    av: JsonValue | undefined,
    aid: string,
    bv: JsonValue | undefined,
    bid: string,
  ): number => {
    const byValue = compareValues(av, bv);
    if (byValue !== 0) return sign * byValue;
    // Ids are unique: the order is total and the same on every call (stable pagination).
    return sign * (aid < bid ? -1 : aid > bid ? 1 : 0);
  };
  const sorted = filtered
    .slice()
    .sort((a, b) => compareKeys(a.data[query.sort], a.id, b.data[query.sort], b.id));
  let start = 0;
  if (query.after !== null) {
    const [value, id] = query.after;
    while (
      start < sorted.length &&
      compareKeys(sorted[start]!.data[query.sort], sorted[start]!.id, value, id) <= 0
    )
      start++;
  }
  const data = sorted.slice(start, start + query.limit);
  const partial = start + query.limit < sorted.length;
  const last = data[data.length - 1];
  const nextMarker =
    partial && last !== undefined
      ? encodeMarker(query.sort, query.order, last.data[query.sort] ?? null, last.id)
      : null;
  return { data, total: sorted.length, partial, nextMarker };
}

/** `url` with `changes` applied to its query (null removes a parameter). */
export function withParams(url: URL, changes: Readonly<Record<string, string | null>>): string {
  const next = new URL(url.href);
  for (const [name, value] of Object.entries(changes)) {
    if (value === null) next.searchParams.delete(name);
    else next.searchParams.set(name, value);
  }
  return next.href;
}

/** The collection members that describe the query: `pagination`, `sort`, `sortLinks`, `filters`. */
export function describeQuery(
  type: string,
  url: URL,
  query: CollectionQuery,
  page: Page<ListItem>,
): Record<string, JsonValue> {
  const filters: Record<string, JsonValue> = {};
  for (const field of Object.keys(collectionFilters(type))) {
    const conditions = query.filters.get(field);
    filters[field] =
      conditions === undefined
        ? null
        : conditions.map((c) => ({ modifier: c.modifier, value: c.value }));
  }
  const sortLinks: Record<string, JsonValue> = {};
  for (const field of Object.keys(collectionFilters(type)))
    sortLinks[field] = withParams(url, { sort: field, order: null, marker: null });
  return {
    pagination: {
      limit: query.limit,
      marker: query.marker,
      partial: page.partial,
      next: page.nextMarker === null ? null : withParams(url, { marker: page.nextMarker }),
      first: withParams(url, { marker: null }),
      total: page.total,
    },
    sort: {
      name: query.sort,
      order: query.order,
      reverse: withParams(url, {
        sort: query.sort,
        order: query.order === 'asc' ? 'desc' : 'asc',
        marker: null,
      }),
    },
    sortLinks,
    filters,
  };
}
