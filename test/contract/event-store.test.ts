// Goal: the EventStore contract holds for the in-memory store and for the SQL store on pg-mem, and
// the pg-mem driver gives the SQL store what PostgreSQL would: atomic, serialised transactions,
// doomed transactions after a failed statement, independent databases, a virtual now().
// Method: run the shared contract suite on both stores; exercise the driver directly; log the
// append throughput of both stores (printed, never asserted).
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../src/adapters/memory-event-store.ts';
import { createSqlEventStore } from '../../src/adapters/sql-event-store.ts';
import { SqlError } from '../../src/adapters/sql.ts';
import { createPgMemDriver } from '../../src/sim/pgmem-driver.ts';
import { ConcurrencyError, type EventStore } from '../../src/ports/event-store.ts';
import { contractProjector, eventStoreContract, newEvent } from './event-store.contract.ts';

eventStoreContract('memory', (options) => {
  const store = createMemoryEventStore(options);
  return Promise.resolve({ store, cleanup: () => store.close() });
});

eventStoreContract('sql on pg-mem', async (options) => {
  const store = await createSqlEventStore({
    ...options,
    driver: createPgMemDriver(),
    schema: 'cloudbed',
  });
  return { store, cleanup: () => store.close() };
});

describe('pg-mem driver', () => {
  it('rolls a failed transaction back completely, sequences included', async () => {
    const driver = createPgMemDriver();
    await driver.query('CREATE TABLE t (id bigserial PRIMARY KEY, v text NOT NULL)');
    await driver.query('INSERT INTO t (v) VALUES ($1)', ['kept']);
    await expect(
      driver.transaction(async (q) => {
        await q.query('INSERT INTO t (v) VALUES ($1)', ['lost']);
        await q.query('UPDATE t SET v = $1', ['changed']);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const after = await driver.query<{ id: number; v: string }>('SELECT id, v FROM t ORDER BY id');
    expect(after.rows).toEqual([{ id: 1, v: 'kept' }]);
    await driver.transaction((q) => q.query('INSERT INTO t (v) VALUES ($1)', ['next']));
    expect((await driver.query('SELECT id FROM t ORDER BY id')).rows).toEqual([
      { id: 1 },
      { id: 2 },
    ]);
    await driver.close();
  });

  it('dooms a transaction after a failed statement, even if the caller caught the error', async () => {
    const driver = createPgMemDriver();
    await driver.query('CREATE TABLE t (k text PRIMARY KEY)');
    const error = await driver
      .transaction(async (q) => {
        await q.query('INSERT INTO t (k) VALUES ($1)', ['a']);
        await q.query('INSERT INTO t (k) VALUES ($1)', ['a']).catch(() => undefined);
        await expect(q.query('SELECT k FROM t')).rejects.toMatchObject({ sqlState: '25P02' });
        return 'committed?';
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SqlError);
    expect(error).toMatchObject({ sqlState: '23505', retryable: false });
    expect((await driver.query('SELECT k FROM t')).rows).toEqual([]);
    await driver.close();
  });

  it('serialises transactions first come, first served, standalone queries included', async () => {
    const driver = createPgMemDriver();
    await driver.query('CREATE TABLE log (n integer)');
    const seen: string[] = [];
    const first = driver.transaction(async (q) => {
      seen.push('t1 begin');
      for (let i = 0; i < 3; i++) await q.query('INSERT INTO log (n) VALUES ($1)', [i]);
      seen.push('t1 end');
    });
    // Queued behind t1 and ahead of t2: sees all of t1 and nothing of t2.
    const read = driver.query<{ n: number }>('SELECT n FROM log');
    const second = driver.transaction(async (q) => {
      seen.push('t2 begin');
      await q.query('INSERT INTO log (n) VALUES ($1)', [9]);
      seen.push('t2 end');
    });
    await Promise.all([first, read, second]);
    expect(seen).toEqual(['t1 begin', 't1 end', 't2 begin', 't2 end']);
    expect((await read).rows.map((r) => r.n).sort()).toEqual([0, 1, 2]);
    await driver.close();
  });

  it('gives every driver its own database and follows the given clock in now()', async () => {
    let now = 1_767_225_600_000;
    const a = createPgMemDriver({ nowMs: () => now });
    const b = createPgMemDriver();
    await a.query('CREATE TABLE only_a (x integer)');
    await expect(b.query('SELECT x FROM only_a')).rejects.toBeInstanceOf(SqlError);
    const first = await a.query<{ t: Date }>('SELECT now() AS t');
    now += 90_000;
    const second = await a.query<{ t: Date }>('SELECT now() AS t');
    expect(new Date(first.rows[0]!.t).getTime()).toBe(1_767_225_600_000);
    expect(new Date(second.rows[0]!.t).getTime()).toBe(1_767_225_690_000);
    await Promise.all([a.close(), b.close()]);
  });

  it('maps a clash on unique (stream, version) to ConcurrencyError, keeping the cause', async () => {
    const driver = createPgMemDriver();
    const store = await createSqlEventStore({
      driver,
      schema: 'es',
      projector: contractProjector,
      closeDriver: false,
    });
    await store.append({
      appends: [{ stream: 'vm, 1', expectedVersion: 0, events: [newEvent('thing.created')] }],
    });
    // Bypass the store's own version check, as a concurrent writer on PostgreSQL would.
    const error = await driver
      .query(
        `INSERT INTO es.events (stream, version, type, schema_version, data, meta)
          VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)`,
        ['vm, 1', 1, 'thing.created', 1, '{}', '{"atMs":0}'],
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toMatchObject({ stream: 'vm, 1', expectedVersion: 0, actualVersion: 1 });
    expect((error as Error).cause).toMatchObject({ code: '23505' });
    await store.close();
    await driver.close();
  });

  it('migrates idempotently: a second store on the same schema sees the first one’s data', async () => {
    const driver = createPgMemDriver();
    const first = await createSqlEventStore({
      driver,
      schema: 'cloudbed',
      projector: contractProjector,
      closeDriver: false,
    });
    await first.append({
      appends: [{ stream: 's', expectedVersion: 0, events: [newEvent('thing.created')] }],
    });
    const second = await createSqlEventStore({
      driver,
      schema: 'cloudbed',
      projector: contractProjector,
    });
    expect(await second.readStream('s')).toHaveLength(1);
    expect(
      (await driver.query('SELECT version FROM cloudbed.event_store_migrations')).rows,
    ).toEqual([{ version: 1 }, { version: 2 }]);
    await second.close();
  });

  it('migrates a store from before lists by host: every projection gets its hosts from the log', async () => {
    // A database as the first migration left it: its tables, one event and its projection.
    const driver = createPgMemDriver();
    const meta = JSON.stringify({
      atMs: 1_767_225_600_000,
      correlationId: 'c-1',
      actor: 'mainloop',
    });
    for (const statement of [
      'CREATE SCHEMA cloudbed',
      'CREATE TABLE cloudbed.event_store_migrations (version integer)',
      'INSERT INTO cloudbed.event_store_migrations (version) VALUES (1)',
      `CREATE TABLE cloudbed.events (position bigserial PRIMARY KEY, stream text NOT NULL,
        version integer NOT NULL, type text NOT NULL, schema_version integer NOT NULL,
        data jsonb NOT NULL, meta jsonb NOT NULL,
        CONSTRAINT events_stream_version_key UNIQUE (stream, version))`,
      `CREATE TABLE cloudbed.projections (stream text PRIMARY KEY, type text NOT NULL,
        account_id text NULL, version integer NOT NULL, data jsonb NOT NULL)`,
      'CREATE INDEX projections_type_account_idx ON cloudbed.projections (type, account_id)',
      'CREATE TABLE cloudbed.fences (resource text PRIMARY KEY, token bigint NOT NULL)',
    ])
      await driver.query(statement);
    await driver.query(
      `INSERT INTO cloudbed.events (stream, version, type, schema_version, data, meta)
        VALUES ('vm-1', 1, 'thing.created', 1, $1::jsonb, $2::jsonb),
               ('vm-2', 1, 'thing.created', 1, '{"kind":"vm"}', $2::jsonb)`,
      [JSON.stringify({ kind: 'vm', hosts: ['host-a'] }), meta],
    );
    await driver.query(
      `INSERT INTO cloudbed.projections (stream, type, account_id, version, data)
        VALUES ('vm-1', 'vm', NULL, 1, '{}'), ('vm-2', 'vm', NULL, 1, '{}')`,
    );
    const store = await createSqlEventStore({
      driver,
      schema: 'cloudbed',
      projector: contractProjector,
    });
    expect((await store.list({ type: 'vm', host: 'host-a' })).map((p) => p.stream)).toEqual([
      'vm-1',
    ]);
    expect((await store.get('vm-1'))?.hosts).toEqual(['host-a']);
    expect((await store.get('vm-2'))?.hosts).toBeUndefined();
    await store.close();
  });
});

/** Appends `count` single-event batches over 100 streams: appends per wall second and per CPU second. */
async function measure(store: EventStore, count: number): Promise<{ wall: number; cpu: number }> {
  const versions = new Map<string, number>();
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const stream = `vm-${i % 100}`;
    const expectedVersion = versions.get(stream) ?? 0;
    await store.append({
      fence: { resource: stream, token: 1 },
      appends: [{ stream, expectedVersion, events: [newEvent('thing.updated', { i })] }],
    });
    versions.set(stream, expectedVersion + 1);
  }
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuStarted);
  const cpuMs = (cpu.user + cpu.system) / 1_000;
  expect(await store.readAll(0, count + 1)).toHaveLength(count);
  expect(await store.list({ type: 'thing' })).toHaveLength(Math.min(count, 100));
  return { wall: (count / wallMs) * 1_000, cpu: (count / cpuMs) * 1_000 };
}

describe('throughput (logged, never asserted)', () => {
  it('measures single-event appends with a fence on both stores', async () => {
    const memory = createMemoryEventStore({ projector: contractProjector });
    const m = await measure(memory, 10_000);
    const sql = await createSqlEventStore({
      driver: createPgMemDriver(),
      schema: 'cloudbed',
      projector: contractProjector,
    });
    const s = await measure(sql, 200);
    // CPU-time rates are steadier than wall-clock rates on a shared machine.
    console.log(
      `event store throughput (appends/s, wall | cpu): memory ${Math.round(m.wall)} | ` +
        `${Math.round(m.cpu)}; sql on pg-mem ${Math.round(s.wall)} | ${Math.round(s.cpu)}; ` +
        `ratio ${Math.round(m.cpu / s.cpu)}x`,
    );
    await Promise.all([memory.close(), sql.close()]);
  });
});
