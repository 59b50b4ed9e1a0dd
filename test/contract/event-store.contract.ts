// The EventStore contract: what every implementation (in-memory, SQL on pg-mem, SQL on PostgreSQL)
// must do, written once and registered per implementation by `eventStoreContract(name, makeStore)`.
// Method: each test opens a fresh, empty store through the factory, drives it through the port only
// and checks results, errors and that rejected batches leave no trace (events, projections, fences).
import { afterEach, describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/lib/assert.ts';
import {
  ConcurrencyError,
  StaleTokenError,
  type EventStore,
  type Json,
  type NewEvent,
  type Projection,
  type Projector,
  type StoredEvent,
} from '../../src/ports/event-store.ts';
import type { EventStoreOptions, Upcaster } from '../../src/adapters/memory-event-store.ts';

/** A store under test and how to dispose of it (close it, drop its database). */
export interface EventStoreFixture {
  readonly store: EventStore;
  readonly cleanup: () => Promise<void>;
}

/** Opens a new, empty store with the given projector and upcaster. */
export type MakeEventStore = (options: EventStoreOptions) => Promise<EventStoreFixture>;

/**
 * The projector the contract uses: one row per stream, deleted by `thing.deleted`; the row's type
 * comes from `data.kind` (default `thing`), its account from `data.accountId` (kept when absent),
 * and its data merges every event's data with a running `count` and the last `position`.
 */
export const contractProjector: Projector = (current, event) => {
  if (event.type === 'thing.deleted') return null;
  const kind = event.data.kind;
  const account = event.data.accountId;
  const count = current?.data.count;
  // `hosts` in an event's data sets the projection's hosts (the list-by-host index); `[]` clears.
  const hosts = Array.isArray(event.data.hosts)
    ? event.data.hosts.filter((h): h is string => typeof h === 'string')
    : current?.hosts;
  return {
    ...(hosts === undefined || hosts.length === 0 ? {} : { hosts }),
    stream: event.stream,
    type: typeof kind === 'string' ? kind : (current?.type ?? 'thing'),
    accountId:
      account === undefined
        ? (current?.accountId ?? null)
        : typeof account === 'string'
          ? account
          : null,
    version: event.version,
    data: {
      ...(current?.data ?? {}),
      ...event.data,
      count: (typeof count === 'number' ? count : 0) + 1,
      lastPosition: event.position,
    },
  };
};

/** A new event with fixed metadata. */
export function newEvent(
  type: string,
  data: { readonly [key: string]: Json } = {},
  schemaVersion?: number,
): NewEvent {
  const meta = { atMs: 1_767_225_600_000, correlationId: 'c-1', actor: 'mainloop' };
  return schemaVersion === undefined ? { type, data, meta } : { type, data, meta, schemaVersion };
}

/** Resolves to the rejection reason of `promise`, failing the test if it fulfils. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  expect.fail('expected the call to reject');
}

/** Everything observable about `streams`, `types` and `resources`: equal before and after a no-op. */
async function snapshot(
  store: EventStore,
  streams: readonly string[],
  types: readonly string[] = ['thing'],
  resources: readonly string[] = [],
): Promise<unknown> {
  return {
    all: await store.readAll(0, 1_000),
    streams: await Promise.all(streams.map((s) => store.readStream(s))),
    rows: await Promise.all(streams.map((s) => store.get(s))),
    lists: await Promise.all(types.map((type) => store.list({ type }))),
    fences: await Promise.all(resources.map((r) => store.fenceOf(r))),
  };
}

function positions(events: readonly StoredEvent[]): number[] {
  return events.map((e) => e.position);
}

function expectIncreasing(values: readonly number[]): void {
  for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]!);
}

/** Registers the contract's tests for one implementation. */
export function eventStoreContract(name: string, makeStore: MakeEventStore): void {
  describe(`EventStore contract: ${name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0)) await cleanup();
    });

    async function open(options: Partial<EventStoreOptions> = {}): Promise<EventStore> {
      const fixture = await makeStore({ projector: contractProjector, ...options });
      cleanups.push(fixture.cleanup);
      return fixture.store;
    }

    it('appends to a new stream with expected version 0', async () => {
      const store = await open();
      const stored = await store.append({
        appends: [
          {
            stream: 'vm-1',
            expectedVersion: 0,
            events: [
              newEvent('thing.created', { size: 2, tags: ['a', 'b'], nested: { x: null } }),
              newEvent('thing.updated', { size: 3 }, 4),
            ],
          },
        ],
      });
      expect(stored).toEqual([
        {
          stream: 'vm-1',
          version: 1,
          position: stored[0]!.position,
          type: 'thing.created',
          schemaVersion: 1,
          data: { size: 2, tags: ['a', 'b'], nested: { x: null } },
          meta: { atMs: 1_767_225_600_000, correlationId: 'c-1', actor: 'mainloop' },
        },
        {
          stream: 'vm-1',
          version: 2,
          position: stored[1]!.position,
          type: 'thing.updated',
          schemaVersion: 4,
          data: { size: 3 },
          meta: { atMs: 1_767_225_600_000, correlationId: 'c-1', actor: 'mainloop' },
        },
      ]);
      expect(stored[0]!.position).toBeGreaterThan(0);
      expectIncreasing(positions(stored));
      expect(await store.readStream('vm-1')).toEqual(stored);
      expect(await store.readStream('vm-2')).toEqual([]);
    });

    it('keeps versions contiguous and positions increasing across appends and streams', async () => {
      const store = await open();
      const a = await store.append({
        appends: [{ stream: 'a', expectedVersion: 0, events: [newEvent('thing.created')] }],
      });
      const b = await store.append({
        appends: [
          { stream: 'b', expectedVersion: 0, events: [newEvent('thing.created')] },
          {
            stream: 'a',
            expectedVersion: 1,
            events: [newEvent('thing.updated'), newEvent('thing.updated')],
          },
        ],
      });
      const c = await store.append({
        appends: [{ stream: 'a', expectedVersion: 3, events: [newEvent('thing.updated')] }],
      });
      expect(b.map((e) => `${e.stream}@${e.version}`)).toEqual(['b@1', 'a@2', 'a@3']);
      const all = [...a, ...b, ...c];
      expectIncreasing(positions(all));
      expect((await store.readStream('a')).map((e) => e.version)).toEqual([1, 2, 3, 4]);
      expect(await store.readAll(0, 100)).toEqual(all);
    });

    it('rejects a wrong expected version with ConcurrencyError and writes nothing', async () => {
      const store = await open();
      await store.append({
        appends: [
          {
            stream: 's',
            expectedVersion: 0,
            events: [newEvent('thing.created'), newEvent('thing.updated')],
          },
        ],
      });
      const before = await snapshot(store, ['s']);
      for (const expectedVersion of [0, 1, 3]) {
        const error = await rejection(
          store.append({
            appends: [{ stream: 's', expectedVersion, events: [newEvent('thing.updated')] }],
          }),
        );
        expect(error).toBeInstanceOf(ConcurrencyError);
        expect(error).toMatchObject({
          name: 'ConcurrencyError',
          code: 'store.conflict',
          stream: 's',
          expectedVersion,
          actualVersion: 2,
        });
      }
      expect(await snapshot(store, ['s'])).toEqual(before);
      // A stream that does not exist has version 0.
      expect(
        await rejection(
          store.append({
            appends: [{ stream: 'new', expectedVersion: 1, events: [newEvent('thing.created')] }],
          }),
        ),
      ).toMatchObject({ stream: 'new', expectedVersion: 1, actualVersion: 0 });
      expect(await store.readStream('new')).toEqual([]);
    });

    it('is atomic across streams: a conflict in the last append writes none of the batch', async () => {
      const store = await open();
      await store.append({
        appends: [{ stream: 'c', expectedVersion: 0, events: [newEvent('thing.created')] }],
      });
      const streams = ['a', 'b', 'c'];
      const before = await snapshot(store, streams, ['thing'], ['r']);
      const error = await rejection(
        store.append({
          fence: { resource: 'r', token: 9 },
          appends: [
            { stream: 'a', expectedVersion: 0, events: [newEvent('thing.created')] },
            { stream: 'b', expectedVersion: 0, events: [newEvent('thing.created')] },
            { stream: 'c', expectedVersion: 0, events: [newEvent('thing.updated')] },
          ],
        }),
      );
      expect(error).toMatchObject({ name: 'ConcurrencyError', stream: 'c', actualVersion: 1 });
      // Nothing written: no events, no projections, and the fence did not move either.
      expect(await snapshot(store, streams, ['thing'], ['r'])).toEqual(before);
      expect(await store.fenceOf('r')).toBe(0);
      // The batch succeeds once corrected, and positions keep increasing.
      const stored = await store.append({
        appends: [
          { stream: 'a', expectedVersion: 0, events: [newEvent('thing.created')] },
          { stream: 'c', expectedVersion: 1, events: [newEvent('thing.updated')] },
        ],
      });
      expectIncreasing(positions(await store.readAll(0, 100)));
      expect(await store.readAll(0, 100)).toEqual([
        ...(await store.readStream('c', 1)).slice(0, 1),
        ...stored,
      ]);
    });

    it('reports the first conflicting append in batch order', async () => {
      const store = await open();
      await store.append({
        appends: [
          { stream: 'x', expectedVersion: 0, events: [newEvent('thing.created')] },
          { stream: 'y', expectedVersion: 0, events: [newEvent('thing.created')] },
        ],
      });
      const error = await rejection(
        store.append({
          appends: [
            { stream: 'z', expectedVersion: 0, events: [newEvent('thing.created')] },
            { stream: 'y', expectedVersion: 5, events: [newEvent('thing.updated')] },
            { stream: 'x', expectedVersion: 0, events: [newEvent('thing.updated')] },
          ],
        }),
      );
      expect(error).toMatchObject({ stream: 'y', expectedVersion: 5, actualVersion: 1 });
    });

    it('lets exactly one of two concurrent appends with the same expected version win', async () => {
      const store = await open();
      const attempt = (n: number): Promise<readonly StoredEvent[]> =>
        store.append({
          appends: [
            { stream: 'race', expectedVersion: 0, events: [newEvent('thing.created', { n })] },
          ],
        });
      const results = await Promise.allSettled([attempt(1), attempt(2)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toMatchObject({
        name: 'ConcurrencyError',
        stream: 'race',
        expectedVersion: 0,
        actualVersion: 1,
      });
      expect(await store.readStream('race')).toEqual(won[0]!.value);
    });

    it('fences: a newer token raises the fence, an older one is rejected, an equal one accepted', async () => {
      const store = await open();
      const write = (stream: string, token: number, expectedVersion = 0): Promise<unknown> =>
        store.append({
          fence: { resource: 'lock/vm-1', token },
          appends: [{ stream, expectedVersion, events: [newEvent('thing.created')] }],
        });
      expect(await store.fenceOf('lock/vm-1')).toBe(0);
      await write('s1', 5);
      expect(await store.fenceOf('lock/vm-1')).toBe(5);
      await write('s2', 7);
      expect(await store.fenceOf('lock/vm-1')).toBe(7);

      const before = await snapshot(store, ['s1', 's2', 's3'], ['thing'], ['lock/vm-1']);
      const stale = await rejection(write('s3', 6));
      expect(stale).toBeInstanceOf(StaleTokenError);
      expect(stale).toMatchObject({
        name: 'StaleTokenError',
        code: 'store.stale-token',
        resource: 'lock/vm-1',
        token: 6,
        newest: 7,
      });
      expect(await snapshot(store, ['s1', 's2', 's3'], ['thing'], ['lock/vm-1'])).toEqual(before);

      // The fence is checked before versions: stale and conflicting reports the stale token.
      expect(await rejection(write('s1', 1))).toBeInstanceOf(StaleTokenError);
      // An equal token is accepted and leaves the fence where it was.
      await write('s3', 7);
      expect(await store.fenceOf('lock/vm-1')).toBe(7);
      expect(await store.readStream('s3')).toHaveLength(1);
      // A fence-only batch raises the fence; other resources are independent.
      expect(
        await store.append({ appends: [], fence: { resource: 'lock/vm-1', token: 12 } }),
      ).toEqual([]);
      expect(await store.fenceOf('lock/vm-1')).toBe(12);
      expect(await store.fenceOf('lock/vm-2')).toBe(0);
      await store.append({ appends: [], fence: { resource: 'lock/vm-2', token: 3 } });
      expect(await store.fenceOf('lock/vm-2')).toBe(3);
      expect(await store.fenceOf('lock/vm-1')).toBe(12);
      // A batch without a fence ignores fences entirely.
      await store.append({
        appends: [{ stream: 's4', expectedVersion: 0, events: [newEvent('thing.created')] }],
      });
      expect(await store.fenceOf('lock/vm-1')).toBe(12);
    });

    it('takes large fencing tokens (beyond 32 bits) and compares them as numbers', async () => {
      const store = await open();
      const big = 2 ** 40 + 3;
      await store.append({ appends: [], fence: { resource: 'r', token: big } });
      expect(await store.fenceOf('r')).toBe(big);
      expect(
        await rejection(store.append({ appends: [], fence: { resource: 'r', token: 2 ** 40 } })),
      ).toMatchObject({ newest: big, token: 2 ** 40 });
    });

    it('reads a stream from a version', async () => {
      const store = await open();
      const events = [1, 2, 3, 4, 5].map((i) => newEvent('thing.updated', { i }));
      const stored = await store.append({ appends: [{ stream: 's', expectedVersion: 0, events }] });
      expect(await store.readStream('s', 3)).toEqual(stored.slice(2));
      expect(await store.readStream('s', 5)).toEqual(stored.slice(4));
      expect(await store.readStream('s', 6)).toEqual([]);
      expect(await store.readStream('s', 1)).toEqual(stored);
      expect((await store.readStream('s', 2)).map((e) => e.data.i)).toEqual([2, 3, 4, 5]);
    });

    it('reads all events after a position, in order, at most limit', async () => {
      const store = await open();
      const stored: StoredEvent[] = [];
      for (let i = 0; i < 7; i++) {
        const stream = `s${i % 3}`;
        const version = Math.floor(i / 3);
        stored.push(
          ...(await store.append({
            appends: [
              { stream, expectedVersion: version, events: [newEvent('thing.updated', { i })] },
            ],
          })),
        );
      }
      expect(await store.readAll(0, 100)).toEqual(stored);
      expect(await store.readAll(0, 3)).toEqual(stored.slice(0, 3));
      expect(await store.readAll(stored[2]!.position, 2)).toEqual(stored.slice(3, 5));
      expect(await store.readAll(stored[6]!.position, 10)).toEqual([]);
      expect(await store.readAll(0, 0)).toEqual([]);
      // Paging by the last position seen visits every event exactly once.
      const paged: StoredEvent[] = [];
      let after = 0;
      for (;;) {
        const page = await store.readAll(after, 2);
        if (page.length === 0) break;
        paged.push(...page);
        after = page[page.length - 1]!.position;
      }
      expect(paged).toEqual(stored);
    });

    it('folds projections in the same transaction: get, list by type and account', async () => {
      const store = await open();
      const stored = await store.append({
        appends: [
          {
            stream: 'vm-b',
            expectedVersion: 0,
            events: [newEvent('thing.created', { kind: 'vm', accountId: 'acc-1', size: 1 })],
          },
          {
            stream: 'vm-a',
            expectedVersion: 0,
            events: [
              newEvent('thing.created', { kind: 'vm', accountId: 'acc-2', size: 1 }),
              newEvent('thing.updated', { size: 4 }),
            ],
          },
          {
            stream: 'host-1',
            expectedVersion: 0,
            events: [newEvent('thing.created', { kind: 'host', accountId: null })],
          },
          {
            stream: 'vm-c',
            expectedVersion: 0,
            events: [newEvent('thing.created', { kind: 'vm', accountId: null })],
          },
        ],
      });
      const vmA: Projection = {
        stream: 'vm-a',
        type: 'vm',
        accountId: 'acc-2',
        version: 2,
        data: {
          kind: 'vm',
          accountId: 'acc-2',
          size: 4,
          count: 2,
          lastPosition: stored[2]!.position,
        },
      };
      expect(await store.get('vm-a')).toEqual(vmA);
      expect(await store.get('nothing')).toBeNull();
      const vms = await store.list({ type: 'vm' });
      expect(vms.map((p) => p.stream)).toEqual(['vm-a', 'vm-b', 'vm-c']);
      expect(vms[0]).toEqual(vmA);
      expect((await store.list({ type: 'vm', accountId: 'acc-1' })).map((p) => p.stream)).toEqual([
        'vm-b',
      ]);
      expect((await store.list({ type: 'vm', accountId: null })).map((p) => p.stream)).toEqual([
        'vm-c',
      ]);
      expect(await store.list({ type: 'vm', accountId: 'acc-9' })).toEqual([]);
      expect((await store.list({ type: 'host' })).map((p) => p.stream)).toEqual(['host-1']);
      expect(await store.list({ type: 'disk' })).toEqual([]);
      // Several types in one read: type by type in the order asked, each by stream.
      const streams = async (query: Parameters<typeof store.list>[0]) =>
        (await store.list(query)).map((p) => p.stream);
      expect(await streams({ type: ['host', 'disk', 'vm'] })).toEqual([
        'host-1',
        'vm-a',
        'vm-b',
        'vm-c',
      ]);
      expect(await streams({ type: ['vm', 'host'] })).toEqual(['vm-a', 'vm-b', 'vm-c', 'host-1']);
      expect(await streams({ type: ['vm', 'host'], accountId: null })).toEqual(['vm-c', 'host-1']);
      expect(await streams({ type: ['host', 'vm'], accountId: 'acc-1' })).toEqual(['vm-b']);
      await expect(store.list({ type: [] })).rejects.toThrow(/types must not be empty/);
      await expect(store.list({ type: ['vm', 'vm'] })).rejects.toThrow(/distinct/);

      // A row can change type and account; lists follow.
      await store.append({
        appends: [
          {
            stream: 'vm-c',
            expectedVersion: 1,
            events: [newEvent('thing.updated', { kind: 'host', accountId: 'acc-1' })],
          },
        ],
      });
      expect((await store.list({ type: 'vm' })).map((p) => p.stream)).toEqual(['vm-a', 'vm-b']);
      expect((await store.list({ type: 'host', accountId: 'acc-1' })).map((p) => p.stream)).toEqual(
        ['vm-c'],
      );
    });

    it('lists rows by host: a row is under each of its hosts, follows a move, leaves on delete', async () => {
      const store = await open();
      const created = (kind: string, hosts: string[]) =>
        newEvent('thing.created', { kind, accountId: 'acc-1', hosts });
      await store.append({
        appends: [
          { stream: 'vm-2', expectedVersion: 0, events: [created('vm', ['host-a'])] },
          // Placed on one host, last seen on another: under both, sorted and once each.
          {
            stream: 'vm-1',
            expectedVersion: 0,
            events: [created('vm', ['host-b', 'host-a', 'host-b'])],
          },
          { stream: 'vm-3', expectedVersion: 0, events: [created('vm', [])] },
          { stream: 'disk-1', expectedVersion: 0, events: [created('disk', ['host-a'])] },
        ],
      });
      const streamsOn = async (type: string, host: string, accountId?: string) =>
        (await store.list({ type, host, ...(accountId === undefined ? {} : { accountId }) })).map(
          (p) => p.stream,
        );
      expect(await streamsOn('vm', 'host-a')).toEqual(['vm-1', 'vm-2']);
      expect(await streamsOn('vm', 'host-b')).toEqual(['vm-1']);
      expect(await streamsOn('disk', 'host-a')).toEqual(['disk-1']);
      expect(await streamsOn('vm', 'host-a', 'acc-9')).toEqual([]);
      expect(await streamsOn('vm', 'host-z')).toEqual([]);
      const both = await store.list({ type: ['disk', 'vm'], host: 'host-a', accountId: 'acc-1' });
      expect(both.map((p) => p.stream)).toEqual(['disk-1', 'vm-1', 'vm-2']);
      expect((await store.get('vm-1'))?.hosts).toEqual(['host-a', 'host-b']);
      expect((await store.get('vm-3'))?.hosts).toBeUndefined();
      // A listed row is the row get returns.
      expect((await store.list({ type: 'vm', host: 'host-b' }))[0]).toEqual(
        await store.get('vm-1'),
      );
      await store.append({
        appends: [
          {
            stream: 'vm-1',
            expectedVersion: 1,
            events: [newEvent('thing.updated', { hosts: ['host-c'] })],
          },
          { stream: 'vm-2', expectedVersion: 1, events: [newEvent('thing.deleted')] },
          {
            stream: 'vm-3',
            expectedVersion: 1,
            events: [newEvent('thing.updated', { hosts: ['host-a'] })],
          },
        ],
      });
      expect(await streamsOn('vm', 'host-a')).toEqual(['vm-3']);
      expect(await streamsOn('vm', 'host-b')).toEqual([]);
      expect(await streamsOn('vm', 'host-c')).toEqual(['vm-1']);
      // An update that keeps the hosts keeps the row listed, with its new data.
      await store.append({
        appends: [
          { stream: 'vm-1', expectedVersion: 2, events: [newEvent('thing.updated', { size: 7 })] },
        ],
      });
      expect((await store.list({ type: 'vm', host: 'host-c' }))[0]?.data.size).toBe(7);
    });

    it('orders lists by stream in code-unit order, whatever the database collation', async () => {
      const store = await open();
      const streams = ['b', 'B', 'a-2', 'a_1', 'a10', 'a9', 'Z', 'é', 'e'];
      await store.append({
        appends: streams.map((stream) => ({
          stream,
          expectedVersion: 0,
          events: [newEvent('thing.created')],
        })),
      });
      const listed = (await store.list({ type: 'thing' })).map((p) => p.stream);
      expect(listed).toEqual([...streams].sort());
    });

    it('deletes the row when the projector returns null, and a later event recreates it', async () => {
      const store = await open();
      await store.append({
        appends: [
          {
            stream: 'gone',
            expectedVersion: 0,
            events: [newEvent('thing.created', { kind: 'vm' })],
          },
          {
            stream: 'kept',
            expectedVersion: 0,
            events: [newEvent('thing.created', { kind: 'vm' })],
          },
        ],
      });
      await store.append({
        appends: [{ stream: 'gone', expectedVersion: 1, events: [newEvent('thing.deleted')] }],
      });
      expect(await store.get('gone')).toBeNull();
      expect((await store.list({ type: 'vm' })).map((p) => p.stream)).toEqual(['kept']);
      // Created and deleted in one batch: never visible.
      await store.append({
        appends: [
          {
            stream: 'flash',
            expectedVersion: 0,
            events: [newEvent('thing.created', { kind: 'vm' }), newEvent('thing.deleted')],
          },
        ],
      });
      expect(await store.get('flash')).toBeNull();
      // Deleted then recreated in one batch: the fold starts again from nothing.
      await store.append({
        appends: [
          {
            stream: 'gone',
            expectedVersion: 2,
            events: [newEvent('thing.created', { kind: 'vm' })],
          },
        ],
      });
      expect(await store.get('gone')).toMatchObject({ version: 3, data: { count: 1 } });
    });

    it('does not fold a rejected batch into projections', async () => {
      const store = await open();
      await store.append({
        appends: [
          { stream: 'p', expectedVersion: 0, events: [newEvent('thing.created', { v: 1 })] },
        ],
      });
      const before = await store.get('p');
      await rejection(
        store.append({
          appends: [
            { stream: 'p', expectedVersion: 1, events: [newEvent('thing.updated', { v: 2 })] },
            { stream: 'q', expectedVersion: 3, events: [newEvent('thing.created')] },
          ],
        }),
      );
      expect(await store.get('p')).toEqual(before);
      expect(await store.get('q')).toBeNull();
    });

    it('rolls back everything when the projector throws', async () => {
      const boom: Projector = (current, event) => {
        if (event.data.explode === true) throw new Error('projector failed');
        return contractProjector(current, event);
      };
      const store = await open({ projector: boom });
      await store.append({
        appends: [{ stream: 'a', expectedVersion: 0, events: [newEvent('thing.created')] }],
      });
      const before = await snapshot(store, ['a', 'b'], ['thing'], ['r']);
      const error = await rejection(
        store.append({
          fence: { resource: 'r', token: 4 },
          appends: [
            { stream: 'a', expectedVersion: 1, events: [newEvent('thing.updated')] },
            {
              stream: 'b',
              expectedVersion: 0,
              events: [newEvent('thing.created', { explode: true })],
            },
          ],
        }),
      );
      expect(error).toMatchObject({ message: 'projector failed' });
      expect(await snapshot(store, ['a', 'b'], ['thing'], ['r'])).toEqual(before);
    });

    it('applies the upcaster on read and before folding, never rewriting what is stored', async () => {
      // Schema 1 of thing.named had `name`; schema 2 has `displayName`.
      const upcast: Upcaster = (event) =>
        event.type === 'thing.named' && event.schemaVersion === 1
          ? { ...event, schemaVersion: 2, data: { displayName: event.data.name ?? null } }
          : event;
      const store = await open({ upcast });
      const stored = await store.append({
        appends: [
          {
            stream: 'u',
            expectedVersion: 0,
            events: [
              newEvent('thing.named', { name: 'old' }, 1),
              newEvent('thing.named', { displayName: 'new' }, 2),
            ],
          },
        ],
      });
      const expected = [
        { schemaVersion: 2, data: { displayName: 'old' } },
        { schemaVersion: 2, data: { displayName: 'new' } },
      ];
      expect(stored).toMatchObject(expected);
      expect(await store.readStream('u')).toMatchObject(expected);
      expect(await store.readAll(0, 10)).toMatchObject(expected);
      const row = await store.get('u');
      expect(row?.data).toMatchObject({ displayName: 'new', count: 2 });
      expect(row?.data.name).toBeUndefined();
    });

    it('stores a copy: changing an event after appending it changes nothing', async () => {
      const store = await open();
      const data: { [key: string]: Json } = { list: [1, 2], inner: { a: 1 } };
      await store.append({
        appends: [
          { stream: 'copy', expectedVersion: 0, events: [newEvent('thing.created', data)] },
        ],
      });
      data.list = [9];
      data.inner = { a: 9 };
      expect((await store.readStream('copy'))[0]!.data).toEqual({ list: [1, 2], inner: { a: 1 } });
      expect((await store.get('copy'))?.data).toMatchObject({ list: [1, 2], inner: { a: 1 } });
    });

    it('normalises data as JSON does: undefined members dropped, non-finite numbers null', async () => {
      const store = await open();
      const data = { keep: 1, drop: undefined, nan: Number.NaN, negZero: -0 } as unknown as {
        [key: string]: Json;
      };
      const [stored] = await store.append({
        appends: [
          { stream: 'json', expectedVersion: 0, events: [newEvent('thing.created', data)] },
        ],
      });
      const read = (await store.readStream('json'))[0]!;
      expect(read.data).toEqual({ keep: 1, nan: null, negZero: 0 });
      expect(Object.is(read.data.negZero, 0)).toBe(true);
      expect(stored!.data).toEqual(read.data);
    });

    it('rejects programmer errors and writes nothing', async () => {
      const store = await open();
      const bad = [
        { appends: [{ stream: 's', expectedVersion: -1, events: [newEvent('thing.created')] }] },
        { appends: [{ stream: '', expectedVersion: 0, events: [newEvent('thing.created')] }] },
        { appends: [{ stream: 's', expectedVersion: 0, events: [] }] },
        {
          appends: [
            { stream: 's', expectedVersion: 0, events: [newEvent('thing.created')] },
            { stream: 's', expectedVersion: 1, events: [newEvent('thing.updated')] },
          ],
        },
        { appends: [], fence: { resource: 'r', token: 1.5 } },
      ];
      for (const batch of bad)
        expect(await rejection(store.append(batch))).toBeInstanceOf(AssertionError);
      expect(await rejection(store.readStream('s', 0))).toBeInstanceOf(AssertionError);
      expect(await rejection(store.readAll(-1, 1))).toBeInstanceOf(AssertionError);
      expect(await store.readAll(0, 10)).toEqual([]);
      expect(await store.fenceOf('r')).toBe(0);
    });

    it('closes: close is idempotent and the store is unusable afterwards', async () => {
      const store = await open();
      await store.append({
        appends: [{ stream: 's', expectedVersion: 0, events: [newEvent('thing.created')] }],
      });
      await store.close();
      await store.close();
      expect(await rejection(store.readStream('s'))).toBeInstanceOf(AssertionError);
      expect(
        await rejection(
          store.append({
            appends: [{ stream: 's', expectedVersion: 1, events: [newEvent('thing.updated')] }],
          }),
        ),
      ).toBeInstanceOf(AssertionError);
    });
  });
}
