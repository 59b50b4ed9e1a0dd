/**
 * The in-memory event store: the reference semantics of the EventStore port, and the store the
 * simulator uses at scale (pg-mem manages about a thousand statements per second; this store
 * manages tens of thousands of appends). It must be indistinguishable from the SQL store through
 * the port: same errors in the same order of checks, same positions (1, 2, 3… in append order,
 * never consumed by a rejected batch), same JSON normalisation of data, same upcasting and the
 * same ordering of lists. The validation and the pure pieces both stores share live here, and
 * src/adapters/sql-event-store.ts imports them, so the two cannot drift apart; a differential
 * property test (test/property/event-store.prop.test.ts) checks the rest.
 */
import { assert, assertInt } from '../lib/assert.ts';
import { deepFreeze } from '../lib/freeze.ts';
import { mergeSorted } from '../lib/sorted.ts';
import {
  ConcurrencyError,
  StaleTokenError,
  type AppendBatch,
  type EventStore,
  type Json,
  type NewEvent,
  type Projection,
  type ProjectionQuery,
  type Projector,
  type StoredEvent,
} from '../ports/event-store.ts';

/**
 * Rewrites an old event into the current schema of its type (for example schema 1 → 2). Applied
 * to every event a store hands out — `append`'s result, `readStream`, `readAll` — and to the event
 * given to the projector, so code only ever sees current schemas. Stored rows are never rewritten.
 * Must be pure and keep `stream`, `version` and `position`.
 */
export type Upcaster = (event: StoredEvent) => StoredEvent;

/** What both store implementations are built from. */
export interface EventStoreOptions {
  /** Folds each appended event into its stream's projection, in the append's transaction. */
  readonly projector: Projector;
  /** Default: events are handed out as stored. */
  readonly upcast?: Upcaster;
}

/** Largest number of events one batch may carry (keeps SQL statements within parameter limits). */
export const MAX_EVENTS_PER_BATCH = 10_000;

/**
 * Checks a batch for programmer errors, identically in both stores: non-empty stream and resource
 * names, integer versions and tokens, at least one event per append, and each stream at most once
 * per batch (put all of a stream's events into one append).
 */
export function assertValidBatch(batch: AppendBatch): void {
  const streams = new Set<string>();
  let events = 0;
  for (const append of batch.appends) {
    assertStream(append.stream);
    assert(!streams.has(append.stream), `stream ${append.stream} appears twice in one batch`);
    streams.add(append.stream);
    assertInt(append.expectedVersion, 0, 2 ** 31 - 1, 'expectedVersion');
    assert(append.events.length > 0, `append to ${append.stream} has no events`);
    assert(
      append.expectedVersion + append.events.length <= 2 ** 31 - 1,
      `stream ${append.stream} would exceed the largest version`,
    );
    for (const event of append.events) assertValidEvent(event);
    events += append.events.length;
  }
  assert(events <= MAX_EVENTS_PER_BATCH, `a batch carries at most ${MAX_EVENTS_PER_BATCH} events`);
  if (batch.fence !== undefined) {
    assert(
      typeof batch.fence.resource === 'string' && batch.fence.resource.length > 0,
      'fence resource must be a non-empty string',
    );
    assertInt(batch.fence.token, 0, Number.MAX_SAFE_INTEGER, 'fencing token');
  }
}

function assertValidEvent(event: NewEvent): void {
  assert(typeof event.type === 'string' && event.type.length > 0, 'event type must be non-empty');
  assert(
    typeof event.data === 'object' && event.data !== null && !Array.isArray(event.data),
    'event data must be an object',
  );
  assert(typeof event.meta === 'object' && event.meta !== null, 'event meta must be an object');
  assert(Number.isFinite(event.meta.atMs), 'event meta.atMs must be a finite number');
  if (event.schemaVersion !== undefined)
    assertInt(event.schemaVersion, 1, 2 ** 31 - 1, 'schemaVersion');
}

/** Asserts a stream (or resource) name: a non-empty string. */
export function assertStream(stream: string): void {
  assert(typeof stream === 'string' && stream.length > 0, 'stream must be a non-empty string');
}

/** Asserts `readStream`'s `fromVersion`: an integer >= 1. */
export function assertFromVersion(fromVersion: number): void {
  assertInt(fromVersion, 1, 2 ** 31 - 1, 'fromVersion');
}

/** Asserts `readAll`'s arguments: a position >= 0 and a limit >= 0. */
export function assertReadAll(afterPosition: number, limit: number): void {
  assertInt(afterPosition, 0, Number.MAX_SAFE_INTEGER, 'afterPosition');
  assertInt(limit, 0, Number.MAX_SAFE_INTEGER, 'limit');
}

/**
 * The value a JSON column gives back: what `JSON.stringify` then `JSON.parse` make of it (undefined
 * members dropped, NaN and infinities become null, -0 becomes 0). The SQL store sends exactly
 * `JSON.stringify(value)` to the database, so both stores normalise alike.
 */
export function toStoredJson<T>(value: T): T {
  // Plain data (what events and rows carry) is copied by a walk that keeps the strings it meets
  // (a JSON round trip would allocate every string again, and the log keeps them all); anything
  // the walk does not handle exactly as JSON does goes through the round trip itself.
  const copy = jsonCopy(value, 0);
  return (copy === NOT_PLAIN ? JSON.parse(JSON.stringify(value)) : copy) as T;
}

/** What {@link jsonCopy} answers for a value it leaves to the JSON round trip. */
const NOT_PLAIN: unique symbol = Symbol('not plain');

/** Nesting beyond which the walk gives up (a cycle, or data no event carries). */
const MAX_COPY_DEPTH = 64;

/**
 * The value `JSON.parse(JSON.stringify(value))` gives, for plain objects, arrays, strings, finite
 * numbers, booleans and null (and the undefined members JSON drops or nulls); `NOT_PLAIN` for
 * anything else — objects with a prototype of their own or `toJSON`, a `__proto__` key, non-finite
 * numbers, -0, bigints, cycles — which the caller sends through JSON itself.
 */
function jsonCopy(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? value : NOT_PLAIN;
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_COPY_DEPTH) return NOT_PLAIN;
      if (Array.isArray(value)) {
        const out: unknown[] = new Array<unknown>(value.length);
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (item === undefined || typeof item === 'function' || typeof item === 'symbol') {
            out[i] = null;
            continue;
          }
          const copied = jsonCopy(item, depth + 1);
          if (copied === NOT_PLAIN) return NOT_PLAIN;
          out[i] = copied;
        }
        return out;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        if (key === '__proto__' || key === 'toJSON') return NOT_PLAIN;
        const member: unknown = (value as Record<string, unknown>)[key];
        if (member === undefined || typeof member === 'function' || typeof member === 'symbol')
          continue;
        const copied = jsonCopy(member, depth + 1);
        if (copied === NOT_PLAIN) return NOT_PLAIN;
        out[key] = copied;
      }
      return out;
    }
    default:
      return NOT_PLAIN;
  }
}

/** Builds a stored event with the same own keys, in the same order, in both stores. */
export function toStoredEvent(fields: {
  readonly stream: string;
  readonly version: number;
  readonly position: number;
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: { readonly [key: string]: Json };
  readonly meta: StoredEvent['meta'];
}): StoredEvent {
  return {
    stream: fields.stream,
    version: fields.version,
    position: fields.position,
    type: fields.type,
    schemaVersion: fields.schemaVersion,
    data: fields.data,
    meta: fields.meta,
  };
}

/** Builds a projection row with the same own keys, in the same order, in both stores. */
export function toProjection(fields: Projection): Projection {
  return {
    stream: fields.stream,
    type: fields.type,
    accountId: fields.accountId,
    version: fields.version,
    data: fields.data,
    ...(fields.hosts === undefined || fields.hosts.length === 0
      ? {}
      : { hosts: [...fields.hosts] }),
  };
}

/** Applies the upcaster, checking that it kept the event's identity. */
export function applyUpcast(upcast: Upcaster | undefined, event: StoredEvent): StoredEvent {
  if (upcast === undefined) return event;
  const result = upcast(event);
  assert(
    result.stream === event.stream &&
      result.version === event.version &&
      result.position === event.position,
    `upcast changed the identity of ${event.stream}@${event.version}`,
  );
  return result;
}

/**
 * Runs the projector for one event and checks its result: a row for the event's own stream at the
 * event's version, with a non-empty type and a string or null account. Returns it JSON-normalised
 * (what the projections table would give back), or null to delete the row.
 */
export function foldEvent(
  projector: Projector,
  current: Projection | null,
  event: StoredEvent,
): Projection | null {
  const next = projector(current, event);
  if (next === null) return null;
  assert(
    next.stream === event.stream,
    `projector returned stream ${next.stream} for an event of ${event.stream}`,
  );
  assert(
    next.version === event.version,
    `projector returned version ${next.version} for ${event.stream}@${event.version}`,
  );
  assert(
    typeof next.type === 'string' && next.type.length > 0,
    'projection type must be non-empty',
  );
  assert(
    next.accountId === null || typeof next.accountId === 'string',
    'projection accountId must be a string or null',
  );
  assert(
    next.hosts === undefined ||
      (Array.isArray(next.hosts) && next.hosts.every((h) => typeof h === 'string' && h !== '')),
    'projection hosts must be non-empty strings',
  );
  return toProjection({
    stream: next.stream,
    type: next.type,
    accountId: next.accountId,
    version: next.version,
    data: toStoredJson(next.data),
    ...(next.hosts === undefined ? {} : { hosts: [...new Set(next.hosts)].sort() }),
  });
}

/** Orders projections by stream, by UTF-16 code units in both stores (not by SQL collation). */
export function byStream(a: Projection, b: Projection): number {
  if (a.stream === b.stream) return 0;
  return a.stream < b.stream ? -1 : 1;
}

function streamOf(row: Projection): string {
  return row.stream;
}

/** The key of the by-host index: a type and a host. */
function hostKey(type: string, host: string): string {
  return `${type}\0${host}`;
}

/** The map under `key` in a map of maps, created when missing. */
function mapIn<K, V>(maps: Map<K, Map<string, V>>, key: K): Map<string, V> {
  let map = maps.get(key);
  if (map === undefined) {
    map = new Map<string, V>();
    maps.set(key, map);
  }
  return map;
}

/** True when a projection matches a list query's account filter. */
export function matchesAccount(row: Projection, accountId: string | null | undefined): boolean {
  return accountId === undefined || row.accountId === accountId;
}

/** Asserts a list query. */
export function assertValidQuery(query: ProjectionQuery): void {
  const types = typesOf(query);
  assert(types.length > 0, 'list types must not be empty');
  for (const type of types)
    assert(typeof type === 'string' && type.length > 0, 'list type must be non-empty');
  assert(new Set(types).size === types.length, 'list types must be distinct');
  assert(
    query.accountId === undefined ||
      query.accountId === null ||
      typeof query.accountId === 'string',
    'list accountId must be a string, null or undefined',
  );
  assert(
    query.host === undefined || (typeof query.host === 'string' && query.host.length > 0),
    'list host must be a non-empty string or undefined',
  );
}

/** The types a query lists, in its order. */
export function typesOf(query: ProjectionQuery): readonly string[] {
  return typeof query.type === 'string' ? [query.type] : query.type;
}

/** Options for {@link createMemoryEventStore}. */
export type MemoryEventStoreOptions = EventStoreOptions;

/**
 * Creates an empty in-memory event store.
 *
 * Every call completes synchronously before its promise resolves, so batches are trivially atomic
 * and serialised. Stored events and projections are deep-frozen and shared with callers (the SQL
 * store returns fresh copies instead; a caller that mutates what it read is wrong with either, and
 * here it fails loudly).
 */
export function createMemoryEventStore(options: MemoryEventStoreOptions): EventStore {
  const { projector, upcast } = options;
  /** Every event, at index `position - 1`. */
  const log: StoredEvent[] = [];
  const streams = new Map<string, StoredEvent[]>();
  const projections = new Map<string, Projection>();
  /** Rows by type and host (`hostKey`), for lists by host. */
  const byHost = new Map<string, Map<string, Projection>>();
  /**
   * Per type, the rows sorted by stream, kept in step with every change: a changed row is swapped in
   * at its place (binary search); rows of new streams wait in `added` until the type is next listed,
   * then are merged in at once — an insertion into a long array, one row at a time, moved half of it
   * for every new resource. Lists copy it; nothing sorts a whole type.
   */
  const sorted = new Map<string, { rows: Projection[]; added: Map<string, Projection> }>();
  const fences = new Map<string, number>();
  let closed = false;

  const assertOpen = (): void => assert(!closed, 'event store used after close');
  const out = (event: StoredEvent): StoredEvent => applyUpcast(upcast, event);

  function putProjection(stream: string, row: Projection | null): void {
    const previous = projections.get(stream);
    if (previous !== undefined) {
      if (row === null || row.type !== previous.type) sortedRemove(previous);
      for (const host of previous.hosts ?? [])
        byHost.get(hostKey(previous.type, host))?.delete(stream);
      projections.delete(stream);
    }
    if (row === null) return;
    projections.set(stream, row);
    sortedPut(row);
    for (const host of row.hosts ?? []) mapIn(byHost, hostKey(row.type, host)).set(stream, row);
  }

  /** Where `stream` is, or would go, in its type's sorted rows (code-unit order, as byStream). */
  function sortedIndex(rows: readonly Projection[], stream: string): number {
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((rows[mid] as Projection).stream < stream) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function sortedPut(row: Projection): void {
    let kept = sorted.get(row.type);
    if (kept === undefined) {
      kept = { rows: [], added: new Map() };
      sorted.set(row.type, kept);
    }
    if (kept.added.has(row.stream)) {
      kept.added.set(row.stream, row);
      return;
    }
    const at = sortedIndex(kept.rows, row.stream);
    if (kept.rows[at]?.stream === row.stream) kept.rows[at] = row;
    else kept.added.set(row.stream, row);
  }

  function sortedRemove(row: Projection): void {
    const kept = sorted.get(row.type);
    if (kept === undefined || kept.added.delete(row.stream)) return;
    const at = sortedIndex(kept.rows, row.stream);
    if (kept.rows[at]?.stream === row.stream) kept.rows.splice(at, 1);
  }

  /** A type's rows sorted by stream, with the rows added since the last call merged in. */
  function sortedRows(type: string): readonly Projection[] {
    const kept = sorted.get(type);
    if (kept === undefined) return [];
    if (kept.added.size > 0) {
      kept.rows = mergeSorted(kept.rows, [...kept.added.values()].sort(byStream), streamOf);
      kept.added.clear();
    }
    return kept.rows;
  }

  function append(batch: AppendBatch): readonly StoredEvent[] {
    assertOpen();
    assertValidBatch(batch);
    // The same order of checks as the SQL store: the fence first, then each append in batch order.
    const fence = batch.fence;
    if (fence !== undefined) {
      const newest = fences.get(fence.resource) ?? 0;
      if (fence.token < newest) throw new StaleTokenError(fence.resource, fence.token, newest);
    }
    for (const append of batch.appends) {
      const actual = streams.get(append.stream)?.length ?? 0;
      if (actual !== append.expectedVersion)
        throw new ConcurrencyError(append.stream, append.expectedVersion, actual);
    }
    // Stage everything (the projector may throw), then commit with no way to fail half-way.
    const stored: StoredEvent[] = [];
    const staged = new Map<string, Projection | null>();
    let position = log.length;
    for (const append of batch.appends) {
      let current = projections.get(append.stream) ?? null;
      append.events.forEach((event, index) => {
        position += 1;
        const record = deepFreeze(
          toStoredEvent({
            stream: append.stream,
            version: append.expectedVersion + index + 1,
            position,
            type: event.type,
            schemaVersion: event.schemaVersion ?? 1,
            data: toStoredJson(event.data),
            meta: toStoredJson(event.meta),
          }),
        );
        stored.push(record);
        current = foldEvent(projector, current, out(record));
      });
      staged.set(append.stream, current === null ? null : deepFreeze(current));
    }
    for (const record of stored) {
      log.push(record);
      let events = streams.get(record.stream);
      if (events === undefined) {
        events = [];
        streams.set(record.stream, events);
      }
      events.push(record);
      assert(events.length === record.version, 'stream versions must stay contiguous');
      assert(log.length === record.position, 'positions must follow the log');
    }
    for (const [stream, row] of staged) putProjection(stream, row);
    if (fence !== undefined)
      fences.set(fence.resource, Math.max(fences.get(fence.resource) ?? 0, fence.token));
    return stored.map(out);
  }

  function list(query: ProjectionQuery): readonly Projection[] {
    assertOpen();
    assertValidQuery(query);
    const types = typesOf(query);
    // One type, the common case, without the copy flatMap makes.
    if (types.length === 1) return listType(types[0]!, query);
    return types.flatMap((type) => listType(type, query));
  }

  function listType(type: string, query: ProjectionQuery): Projection[] {
    if (query.host !== undefined) {
      // A host's rows are few: collect and sort them, never the whole type.
      const rows = [...(byHost.get(hostKey(type, query.host))?.values() ?? [])];
      return rows.filter((row) => matchesAccount(row, query.accountId)).sort(byStream);
    }
    const rows = sortedRows(type);
    if (query.accountId === undefined) return rows.slice();
    return rows.filter((row) => matchesAccount(row, query.accountId));
  }

  // Each method is synchronous inside: an exception becomes a rejection, never a half-applied batch.
  return {
    append: (batch) => Promise.resolve().then(() => append(batch)),
    readStream: (stream, fromVersion = 1) =>
      Promise.resolve().then(() => {
        assertOpen();
        assertStream(stream);
        assertFromVersion(fromVersion);
        return (streams.get(stream) ?? []).slice(fromVersion - 1).map(out);
      }),
    readAll: (afterPosition, limit) =>
      Promise.resolve().then(() => {
        assertOpen();
        assertReadAll(afterPosition, limit);
        // Positions here have no gaps: the event at position p sits at index p - 1.
        return log.slice(afterPosition, afterPosition + limit).map(out);
      }),
    get: (stream) =>
      Promise.resolve().then(() => {
        assertOpen();
        assertStream(stream);
        return projections.get(stream) ?? null;
      }),
    list: (query) => Promise.resolve().then(() => list(query)),
    fenceOf: (resource) =>
      Promise.resolve().then(() => {
        assertOpen();
        assertStream(resource);
        return fences.get(resource) ?? 0;
      }),
    close: () => {
      closed = true;
      return Promise.resolve();
    },
  };
}
