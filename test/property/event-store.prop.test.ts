// Goal: the in-memory store and the SQL store on pg-mem are indistinguishable through the port —
// same results, same errors (class, fields, message), same positions, streams, projections and
// fences — for any sequence of batches, including conflicting, stale and fence-only ones.
// Method: fast-check generates batch sequences over a few streams and fencing resources; expected
// versions are usually right and sometimes off, tokens go up and down. Each batch is applied to
// both stores and the outcomes compared, then everything readable is compared. To show the
// property has teeth, two known-broken variants of the memory store (one ignores fences, one
// applies a batch stream by stream) must be caught.
import { fc } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore, type Upcaster } from '../../src/adapters/memory-event-store.ts';
import { createSqlEventStore } from '../../src/adapters/sql-event-store.ts';
import { createPgMemDriver } from '../../src/sim/pgmem-driver.ts';
import type {
  AppendBatch,
  EventStore,
  Json,
  NewEvent,
  Projector,
  StoredEvent,
} from '../../src/ports/event-store.ts';
import { PortError } from '../../src/ports/errors.ts';

const STREAMS = ['vm-1', 'vm-2', 'host-1', 'disk-1'];
const RESOURCES = ['lock/a', 'lock/b'];
const TYPES = ['vm', 'host', 'disk'];
const ACCOUNTS = [null, 'acc-1', 'acc-2'] as const;

/** Projector with type changes, account changes and deletions, so lists move between queries. */
const projector: Projector = (current, event) => {
  if (event.type === 'thing.deleted') return null;
  const n = typeof event.data.n === 'number' ? event.data.n : 0;
  const sum = typeof current?.data.sum === 'number' ? current.data.sum : 0;
  const kind = event.data.kind;
  const account = event.data.accountId;
  return {
    stream: event.stream,
    type: typeof kind === 'string' ? kind : (current?.type ?? 'vm'),
    accountId:
      account === undefined
        ? (current?.accountId ?? null)
        : typeof account === 'string'
          ? account
          : null,
    version: event.version,
    data: {
      sum: sum + n,
      last: event.type,
      at: event.position,
      upcast: event.data.fromV1 ?? false,
    },
  };
};

/** Schema 1 stored the amount as `value`; schema 2 calls it `n`. */
const upcast: Upcaster = (event) =>
  event.schemaVersion === 1 && 'value' in event.data
    ? {
        ...event,
        schemaVersion: 2,
        data: { ...event.data, n: event.data.value ?? 0, value: null, fromV1: true },
      }
    : event;

interface EventSpec {
  readonly type: string;
  readonly n: number;
  readonly v1: boolean;
  readonly kind: string | undefined;
  readonly accountId: string | null | undefined;
}

interface AppendSpec {
  readonly stream: string;
  /** Added to the stream's current version: usually 0 (right), sometimes off. */
  readonly versionDelta: number;
  readonly events: readonly EventSpec[];
}

interface BatchSpec {
  readonly appends: readonly AppendSpec[];
  readonly fence: { readonly resource: string; readonly token: number } | undefined;
}

const eventSpec: fc.Arbitrary<EventSpec> = fc.record({
  type: fc.constantFrom('thing.created', 'thing.updated', 'thing.updated', 'thing.deleted'),
  n: fc.integer({ min: -3, max: 3 }),
  v1: fc.boolean(),
  kind: fc.option(fc.constantFrom(...TYPES), { nil: undefined }),
  accountId: fc.option(fc.constantFrom(...ACCOUNTS), { nil: undefined }),
});

const batchSpec: fc.Arbitrary<BatchSpec> = fc.record({
  appends: fc.uniqueArray(
    fc.record({
      stream: fc.constantFrom(...STREAMS),
      versionDelta: fc.oneof(
        { weight: 5, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) },
      ),
      events: fc.array(eventSpec, { minLength: 1, maxLength: 3 }),
    }),
    { selector: (a) => a.stream, maxLength: 3 },
  ),
  fence: fc.option(
    fc.record({ resource: fc.constantFrom(...RESOURCES), token: fc.integer({ min: 0, max: 8 }) }),
    { nil: undefined },
  ),
});

const scenario = fc.array(batchSpec, { minLength: 1, maxLength: 14 });

function toNewEvent(spec: EventSpec, atMs: number): NewEvent {
  const data: { [key: string]: Json } = spec.v1 ? { value: spec.n } : { n: spec.n };
  if (spec.kind !== undefined) data.kind = spec.kind;
  if (spec.accountId !== undefined) data.accountId = spec.accountId;
  return { type: spec.type, data, schemaVersion: spec.v1 ? 1 : 2, meta: { atMs, actor: 'prop' } };
}

/** Resolves version deltas against `reference`'s current versions. */
async function toBatch(spec: BatchSpec, reference: EventStore, atMs: number): Promise<AppendBatch> {
  const appends = await Promise.all(
    spec.appends.map(async (append) => ({
      stream: append.stream,
      expectedVersion: Math.max(
        0,
        (await reference.readStream(append.stream)).length + append.versionDelta,
      ),
      events: append.events.map((e) => toNewEvent(e, atMs)),
    })),
  );
  return spec.fence === undefined ? { appends } : { appends, fence: spec.fence };
}

/** An outcome as data: the events, or the error's class, message and fields. */
async function outcome(run: () => Promise<readonly StoredEvent[]>): Promise<unknown> {
  try {
    return { ok: await run() };
  } catch (error) {
    if (!(error instanceof PortError)) throw error;
    return { error: { ...error, name: error.name, message: error.message } };
  }
}

/** Everything readable through the port, in one comparable value. */
async function observe(store: EventStore): Promise<unknown> {
  const all = await store.readAll(0, 10_000);
  const pages: StoredEvent[][] = [];
  for (let after = 0; ;) {
    const page = await store.readAll(after, 3);
    if (page.length === 0) break;
    pages.push([...page]);
    after = page[page.length - 1]!.position;
  }
  const streams = await Promise.all(
    STREAMS.map(async (s) => ({
      all: await store.readStream(s),
      from2: await store.readStream(s, 2),
    })),
  );
  const rows = await Promise.all(STREAMS.map((s) => store.get(s)));
  const lists = [];
  for (const type of TYPES)
    for (const accountId of [undefined, ...ACCOUNTS])
      lists.push(await store.list(accountId === undefined ? { type } : { type, accountId }));
  const fences = await Promise.all(RESOURCES.map((r) => store.fenceOf(r)));
  return { all, pages, streams, rows, lists, fences };
}

type Variant = (store: EventStore) => EventStore;

/** Runs one scenario on `reference` (memory, possibly broken) and on pg-mem, comparing as it goes. */
async function differential(batches: readonly BatchSpec[], variant: Variant): Promise<void> {
  const memory = variant(createMemoryEventStore({ projector, upcast }));
  const sql = await createSqlEventStore({
    driver: createPgMemDriver(),
    schema: 'cloudbed',
    projector,
    upcast,
  });
  try {
    for (const [index, spec] of batches.entries()) {
      const batch = await toBatch(spec, memory, 1_767_225_600_000 + index * 1_000);
      const [left, right] = [
        await outcome(() => memory.append(batch)),
        await outcome(() => sql.append(batch)),
      ];
      expect(right, `batch ${index}: ${JSON.stringify(batch)}`).toEqual(left);
    }
    expect(await observe(sql)).toEqual(await observe(memory));
  } finally {
    await Promise.all([memory.close(), sql.close()]);
  }
}

const faithful: Variant = (store) => store;

/** Broken on purpose: drops the fence, so stale writers get through. */
const ignoresFences: Variant = (store) => ({
  ...store,
  append: (batch) => store.append({ appends: batch.appends }),
});

/** Broken on purpose: applies a batch one stream at a time, so a late conflict leaves earlier writes. */
const notAtomic: Variant = (store) => ({
  ...store,
  append: async (batch) => {
    const stored: StoredEvent[] = [];
    if (batch.fence !== undefined) await store.append({ appends: [], fence: batch.fence });
    for (const append of batch.appends) stored.push(...(await store.append({ appends: [append] })));
    return stored;
  },
});

describe('event store: memory and SQL on pg-mem agree', () => {
  it('gives identical results, errors, events, projections and fences', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, (batches) => differential(batches, faithful)),
      { numRuns: 30 },
    );
  });

  it.each([
    ['ignores fences', ignoresFences],
    ['applies batches stream by stream', notAtomic],
  ] as const)('catches a memory store that %s', async (_, variant) => {
    // A fixed seed keeps this deterministic; no shrinking, only detection matters here.
    const result = await fc.check(
      fc.asyncProperty(scenario, (batches) => differential(batches, variant)),
      { numRuns: 100, seed: 20_260_101, endOnFailure: true },
    );
    expect(result.failed).toBe(true);
  });
});
