/**
 * The SQL event store: one implementation for pg-mem in the simulator and PostgreSQL in staging,
 * over the minimal {@link SqlDriver}. Tables live in one schema: `events` (the log, unique per
 * stream and version), `projections` (one row per stream, folded in the append's transaction),
 * `projection_hosts` (which host each projection is on, for lists by host, kept in the same
 * transaction) and `fences` (the newest fencing token per resource).
 *
 * The SQL is written to mean the same on both engines. pg-mem's traps it avoids: `CREATE TABLE IF
 * NOT EXISTS` fails there when the table has constraints (so migrations are tracked in a table of
 * their own), `= ANY($1)` finds nothing through a primary-key index (so lists of keys are bound as
 * `IN ($1, $2, …)`), `ON CONFLICT DO NOTHING RETURNING`, `UPDATE … IN (SELECT … LIMIT)` and
 * `FOR UPDATE` diverge (none is used). Concurrency on PostgreSQL (READ COMMITTED) rests on two
 * locks the statements take by themselves: the fence upsert locks the fence row until commit, and
 * inserting `(stream, version)` waits for, then clashes with (23505 → ConcurrencyError), any other
 * transaction appending the same version — which also serialises the read-modify-write of that
 * stream's projection, because projections are read only after the events are inserted.
 */
import { assert } from '../lib/assert.ts';
import {
  ConcurrencyError,
  StaleTokenError,
  type AppendBatch,
  type EventStore,
  type Json,
  type Projection,
  type ProjectionQuery,
  type StoredEvent,
} from '../ports/event-store.ts';
import {
  applyUpcast,
  assertFromVersion,
  assertReadAll,
  assertStream,
  assertValidBatch,
  assertValidQuery,
  byStream,
  matchesAccount,
  typesOf,
  foldEvent,
  toProjection,
  toStoredEvent,
  type EventStoreOptions,
} from './memory-event-store.ts';
import type { SqlDriver, SqlQuery } from './sql.ts';
import type { Projector } from '../model/stream.ts';

export type { Upcaster, EventStoreOptions } from './memory-event-store.ts';

/** Options for {@link createSqlEventStore}. */
export interface SqlEventStoreOptions extends EventStoreOptions {
  readonly driver: SqlDriver;
  /** The schema holding the tables: lowercase letters, digits and `_`, starting with a letter or `_`. */
  readonly schema: string;
  /** Whether `close()` also closes the driver. Default true. */
  readonly closeDriver?: boolean;
}

/** A migration step: a statement, or code run in the migration's transaction. */
type MigrationStep = string | ((q: SqlQuery) => Promise<void>);

/** The migrations, in order; the table `event_store_migrations` records which ones ran. */
function migrations(s: string, projector: Projector): readonly (readonly MigrationStep[])[] {
  return [
    [
      `CREATE TABLE ${s}.events (
        position bigserial PRIMARY KEY,
        stream text NOT NULL,
        version integer NOT NULL,
        type text NOT NULL,
        schema_version integer NOT NULL,
        data jsonb NOT NULL,
        meta jsonb NOT NULL,
        CONSTRAINT events_stream_version_key UNIQUE (stream, version)
      )`,
      `CREATE TABLE ${s}.projections (
        stream text PRIMARY KEY,
        type text NOT NULL,
        account_id text NULL,
        version integer NOT NULL,
        data jsonb NOT NULL
      )`,
      `CREATE INDEX projections_type_account_idx ON ${s}.projections (type, account_id)`,
      `CREATE TABLE ${s}.fences (resource text PRIMARY KEY, token bigint NOT NULL)`,
    ],
    [
      `ALTER TABLE ${s}.projections ADD COLUMN hosts jsonb NULL`,
      `CREATE TABLE ${s}.projection_hosts (
        host text NOT NULL,
        type text NOT NULL,
        stream text NOT NULL,
        PRIMARY KEY (host, type, stream)
      )`,
      `CREATE INDEX projection_hosts_stream_idx ON ${s}.projection_hosts (stream)`,
      // Projections written before hosts existed: refold each stream from the log for its hosts.
      (q) => backfillHosts(q, s, projector),
    ],
  ];
}

/** Sets `hosts` of every projection by folding its stream's events again (the log is the truth). */
async function backfillHosts(q: SqlQuery, s: string, projector: Projector): Promise<void> {
  const { rows } = await q.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM ${s}.events ORDER BY stream, version`,
  );
  const folded = new Map<string, Projection | null>();
  for (const row of rows) {
    const event = fromEventRow(row);
    folded.set(event.stream, foldEvent(projector, folded.get(event.stream) ?? null, event));
  }
  for (const [stream, projection] of folded) {
    const hosts = projection?.hosts ?? [];
    if (projection === null || hosts.length === 0) continue;
    await q.query(`UPDATE ${s}.projections SET hosts = $2::jsonb WHERE stream = $1`, [
      stream,
      JSON.stringify(hosts),
    ]);
    for (const host of hosts)
      await q.query(`INSERT INTO ${s}.projection_hosts (host, type, stream) VALUES ($1, $2, $3)`, [
        host,
        projection.type,
        stream,
      ]);
  }
}

/** Asserts a schema name that is safe to write into SQL text unquoted. */
function assertSchemaName(schema: string): void {
  assert(/^[a-z_][a-z0-9_]{0,62}$/.test(schema), `invalid schema name ${JSON.stringify(schema)}`);
}

/**
 * Creates the schema and tables if they do not exist yet; safe to run at every start. Run it from
 * one process at a time: on PostgreSQL two concurrent first runs may clash, and the loser should
 * simply retry.
 */
export async function migrateSqlEventStore(options: {
  readonly driver: SqlDriver;
  readonly schema: string;
  /** Folds the log again where a migration derives new columns from it. */
  readonly projector: Projector;
}): Promise<void> {
  const { driver, schema, projector } = options;
  assertSchemaName(schema);
  // No constraints on this table: pg-mem rejects a repeated CREATE TABLE IF NOT EXISTS with any.
  await driver.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await driver.query(
    `CREATE TABLE IF NOT EXISTS ${schema}.event_store_migrations (version integer)`,
  );
  const all = migrations(schema, projector);
  await driver.transaction(async (q) => {
    const { rows } = await q.query<{ version: unknown }>(
      `SELECT version FROM ${schema}.event_store_migrations`,
    );
    const done = new Set(rows.map((row) => toInt(row.version, 'migration version')));
    for (const [index, statements] of all.entries()) {
      const version = index + 1;
      if (done.has(version)) continue;
      for (const step of statements) {
        if (typeof step === 'string') await q.query(step);
        else await step(q);
      }
      await q.query(`INSERT INTO ${schema}.event_store_migrations (version) VALUES ($1)`, [
        version,
      ]);
    }
  });
}

/** Converts an integer column to a number: pg returns int8 as a string, pg-mem as a number. */
function toInt(value: unknown, what: string): number {
  const result = typeof value === 'string' || typeof value === 'bigint' ? Number(value) : value;
  assert(
    typeof result === 'number' && Number.isSafeInteger(result),
    `${what}: expected a safe integer, got ${String(value)}`,
  );
  return result;
}

/** A jsonb column as parsed by the driver; text is parsed too, for drivers that leave it raw. */
function toJsonObject(value: unknown, what: string): { readonly [key: string]: Json } {
  const result: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  assert(
    typeof result === 'object' && result !== null && !Array.isArray(result),
    `${what}: expected a JSON object`,
  );
  return result as { readonly [key: string]: Json };
}

interface EventRow {
  readonly position: unknown;
  readonly stream: string;
  readonly version: unknown;
  readonly type: string;
  readonly schema_version: unknown;
  readonly data: unknown;
  readonly meta: unknown;
}

interface ProjectionRow {
  readonly stream: string;
  readonly type: string;
  readonly account_id: string | null;
  readonly version: unknown;
  readonly data: unknown;
  readonly hosts: unknown;
}

function fromEventRow(row: EventRow): StoredEvent {
  return toStoredEvent({
    stream: row.stream,
    version: toInt(row.version, 'events.version'),
    position: toInt(row.position, 'events.position'),
    type: row.type,
    schemaVersion: toInt(row.schema_version, 'events.schema_version'),
    data: toJsonObject(row.data, 'events.data'),
    meta: toJsonObject(row.meta, 'events.meta') as unknown as StoredEvent['meta'],
  });
}

function fromProjectionRow(row: ProjectionRow): Projection {
  const hosts = row.hosts === null || row.hosts === undefined ? [] : toHosts(row.hosts);
  return toProjection({
    stream: row.stream,
    type: row.type,
    accountId: row.account_id,
    version: toInt(row.version, 'projections.version'),
    data: toJsonObject(row.data, 'projections.data'),
    ...(hosts.length === 0 ? {} : { hosts }),
  });
}

/** The `hosts` column: a JSON array of host ids (text is parsed, for drivers that leave it raw). */
function toHosts(value: unknown): string[] {
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  assert(
    Array.isArray(parsed) && parsed.every((h) => typeof h === 'string'),
    `projections.hosts: expected an array of strings, got ${String(value)}`,
  );
  return parsed;
}

/** The `hosts` column's value for a projection: JSON, or null when it is on no host. */
function hostsColumn(row: Projection): string | null {
  return row.hosts === undefined || row.hosts.length === 0 ? null : JSON.stringify(row.hosts);
}

/** `$from, $from+1, …` for `count` values: how lists of keys are bound (see the header on ANY). */
function placeholders(count: number, from = 1): string {
  return Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ');
}

/** Rows per multi-row INSERT: 1,000 events × 6 parameters stays far below PostgreSQL's 65,535. */
const INSERT_CHUNK = 1_000;

const EVENT_COLUMNS = 'position, stream, version, type, schema_version, data, meta';
const PROJECTION_COLUMNS = 'stream, type, account_id, version, data, hosts';
/** The same columns, of the projections table aliased `p`. */
const P_COLUMNS = PROJECTION_COLUMNS.split(', ')
  .map((column) => `p.${column}`)
  .join(', ');

/**
 * Creates the SQL event store, running {@link migrateSqlEventStore} first.
 *
 * Every method is one statement or one transaction. Append checks, in this order and all in one
 * transaction: the fence (StaleTokenError), then each append's expected version in batch order
 * (ConcurrencyError for the first that differs), then inserts the events, folds them into the
 * projections and commits. A ConcurrencyError raised by the database itself (another writer won
 * the race for a version on PostgreSQL) is refined by re-reading the streams' versions.
 */
export async function createSqlEventStore(options: SqlEventStoreOptions): Promise<EventStore> {
  const { driver, schema, projector, upcast } = options;
  const closeDriver = options.closeDriver ?? true;
  assertSchemaName(schema);
  await migrateSqlEventStore({ driver, schema, projector });
  const t = {
    events: `${schema}.events`,
    projections: `${schema}.projections`,
    hosts: `${schema}.projection_hosts`,
    fences: `${schema}.fences`,
  };
  let closed = false;
  const assertOpen = (): void => assert(!closed, 'event store used after close');
  const out = (event: StoredEvent): StoredEvent => applyUpcast(upcast, event);

  /** The current version of each stream (0 when absent): max over the whole stream. */
  async function versionsOf(q: SqlQuery, streams: readonly string[]): Promise<Map<string, number>> {
    const { rows } = await q.query<{ stream: string; version: unknown }>(
      `SELECT stream, max(version) AS version FROM ${t.events}
        WHERE stream IN (${placeholders(streams.length)}) GROUP BY stream`,
      streams,
    );
    return new Map(rows.map((row) => [row.stream, toInt(row.version, 'max(version)')]));
  }

  /**
   * Throws a ConcurrencyError for the first append, in batch order, whose stream is not at its
   * expected version. Reads only `version >= expectedVersion` (an index range: pg-mem scans the
   * whole stream for a plain max); a stream found below that range needs one more read, and only
   * when the batch fails anyway. An expected version of 0 on an existing stream reads the whole
   * stream, again only when the batch fails.
   */
  async function checkVersions(q: SqlQuery, batch: AppendBatch): Promise<void> {
    const conditions = batch.appends
      .map((_, i) => `(stream = $${2 * i + 1} AND version >= $${2 * i + 2})`)
      .join(' OR ');
    // Rows rather than max(): cheaper on pg-mem, and in the common case one row per stream.
    const { rows } = await q.query<{ stream: string; version: unknown }>(
      `SELECT stream, version FROM ${t.events} WHERE ${conditions}`,
      batch.appends.flatMap((append) => [append.stream, append.expectedVersion]),
    );
    const atLeast = new Map<string, number>();
    for (const row of rows) {
      const version = toInt(row.version, 'events.version');
      atLeast.set(row.stream, Math.max(version, atLeast.get(row.stream) ?? 0));
    }
    const below = batch.appends
      .filter((append) => append.expectedVersion > 0 && !atLeast.has(append.stream))
      .map((append) => append.stream);
    const exact = below.length === 0 ? new Map<string, number>() : await versionsOf(q, below);
    for (const append of batch.appends) {
      const actual = atLeast.get(append.stream) ?? exact.get(append.stream) ?? 0;
      if (actual !== append.expectedVersion)
        throw new ConcurrencyError(append.stream, append.expectedVersion, actual);
    }
  }

  async function checkFence(q: SqlQuery, resource: string, token: number): Promise<void> {
    // One statement that both locks the fence row (until commit, on PostgreSQL) and raises it:
    // the row ends up holding the greater token, and a result above ours means we are stale.
    const { rows } = await q.query<{ token: unknown }>(
      `INSERT INTO ${t.fences} AS f (resource, token) VALUES ($1, $2)
        ON CONFLICT (resource) DO UPDATE SET token = GREATEST(f.token, EXCLUDED.token)
        RETURNING token`,
      [resource, token],
    );
    assert(rows.length === 1, 'fence upsert must return one row');
    const newest = toInt(rows[0]?.token, 'fences.token');
    if (newest > token) throw new StaleTokenError(resource, token, newest);
    assert(newest === token, 'fence upsert must keep the greater token');
  }

  async function insertEvents(q: SqlQuery, batch: AppendBatch): Promise<StoredEvent[]> {
    const pending = batch.appends.flatMap((append) =>
      append.events.map((event, index) => ({
        stream: append.stream,
        version: append.expectedVersion + index + 1,
        type: event.type,
        schemaVersion: event.schemaVersion ?? 1,
        data: JSON.stringify(event.data),
        meta: JSON.stringify(event.meta),
      })),
    );
    const stored: StoredEvent[] = [];
    for (let start = 0; start < pending.length; start += INSERT_CHUNK) {
      const chunk = pending.slice(start, start + INSERT_CHUNK);
      const values = chunk
        .map((_, i) => {
          const p = i * 6;
          return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}, $${p + 5}::jsonb, $${p + 6}::jsonb)`;
        })
        .join(', ');
      const params = chunk.flatMap((e) => [
        e.stream,
        e.version,
        e.type,
        e.schemaVersion,
        e.data,
        e.meta,
      ]);
      // A multi-row VALUES list draws the bigserial in row order, so positions follow the batch.
      // Only the keys come back: the rest is what was sent, parsed as the JSON columns would
      // parse it (returning the jsonb columns too doubles the statement's cost on pg-mem).
      const { rows } = await q.query<{ position: unknown; stream: string; version: unknown }>(
        `INSERT INTO ${t.events} (stream, version, type, schema_version, data, meta)
          VALUES ${values} RETURNING position, stream, version`,
        params,
      );
      assert(rows.length === chunk.length, 'insert must return one row per event');
      const positions = new Map(
        rows.map((row) => [
          `${toInt(row.version, 'events.version')}:${row.stream}`,
          toInt(row.position, 'events.position'),
        ]),
      );
      for (const e of chunk) {
        const position = positions.get(`${e.version}:${e.stream}`);
        assert(position !== undefined, `insert returned no row for ${e.stream}@${e.version}`);
        stored.push(
          toStoredEvent({
            stream: e.stream,
            version: e.version,
            position,
            type: e.type,
            schemaVersion: e.schemaVersion,
            data: JSON.parse(e.data) as StoredEvent['data'],
            meta: JSON.parse(e.meta) as StoredEvent['meta'],
          }),
        );
      }
    }
    for (let i = 1; i < stored.length; i++)
      assert(
        (stored[i]?.position ?? 0) > (stored[i - 1]?.position ?? 0),
        'positions must increase in append order',
      );
    return stored;
  }

  async function foldProjections(
    q: SqlQuery,
    batch: AppendBatch,
    stored: readonly StoredEvent[],
  ): Promise<void> {
    const streams = batch.appends.map((append) => append.stream);
    const { rows } = await q.query<ProjectionRow>(
      `SELECT ${PROJECTION_COLUMNS} FROM ${t.projections} WHERE stream IN (${placeholders(streams.length)})`,
      streams,
    );
    const current = new Map<string, Projection | null>(
      rows.map((row) => [row.stream, fromProjectionRow(row)]),
    );
    const existed = new Set(current.keys());
    for (const event of stored)
      current.set(
        event.stream,
        foldEvent(projector, current.get(event.stream) ?? null, out(event)),
      );
    // The rows were read after this transaction inserted the streams' next versions, which no
    // other transaction can do at the same time, so plain INSERT and UPDATE are safe (and cheaper
    // than ON CONFLICT on pg-mem).
    const inserts: Projection[] = [];
    const deletes: string[] = [];
    /** Streams whose hosts changed: their projection_hosts rows are rewritten. */
    const moved: { stream: string; type: string; hosts: readonly string[] }[] = [];
    const before = new Map(rows.map((row) => [row.stream, fromProjectionRow(row)]));
    for (const stream of streams) {
      const row = current.get(stream) ?? null;
      const old = before.get(stream);
      const oldHosts = old?.hosts ?? [];
      const newHosts = row?.hosts ?? [];
      if (
        oldHosts.join('\0') !== newHosts.join('\0') ||
        (row !== null && old !== undefined && row.type !== old.type)
      )
        moved.push({ stream, type: row?.type ?? '', hosts: row === null ? [] : newHosts });
      if (row === null) {
        if (existed.has(stream)) deletes.push(stream);
      } else if (existed.has(stream)) {
        await q.query(
          `UPDATE ${t.projections} SET type = $2, account_id = $3, version = $4, data = $5::jsonb,
            hosts = $6::jsonb WHERE stream = $1`,
          [
            row.stream,
            row.type,
            row.accountId,
            row.version,
            JSON.stringify(row.data),
            hostsColumn(row),
          ],
        );
      } else {
        inserts.push(row);
      }
    }
    if (inserts.length > 0) {
      const values = inserts
        .map(
          (_, i) =>
            `($${i * 6 + 1}, $${i * 6 + 2}, $${i * 6 + 3}, $${i * 6 + 4}, $${i * 6 + 5}::jsonb, $${i * 6 + 6}::jsonb)`,
        )
        .join(', ');
      await q.query(
        `INSERT INTO ${t.projections} (${PROJECTION_COLUMNS}) VALUES ${values}`,
        inserts.flatMap((row) => [
          row.stream,
          row.type,
          row.accountId,
          row.version,
          JSON.stringify(row.data),
          hostsColumn(row),
        ]),
      );
    }
    if (deletes.length > 0)
      await q.query(
        `DELETE FROM ${t.projections} WHERE stream IN (${placeholders(deletes.length)})`,
        deletes,
      );
    if (moved.length > 0) {
      await q.query(
        `DELETE FROM ${t.hosts} WHERE stream IN (${placeholders(moved.length)})`,
        moved.map((m) => m.stream),
      );
      const pairs = moved.flatMap((m) => m.hosts.map((host) => [host, m.type, m.stream]));
      if (pairs.length > 0)
        await q.query(
          `INSERT INTO ${t.hosts} (host, type, stream) VALUES ${pairs
            .map((_, i) => `($${i * 3 + 1}, $${i * 3 + 2}, $${i * 3 + 3})`)
            .join(', ')}`,
          pairs.flat(),
        );
    }
  }

  /** Turns a ConcurrencyError raised by the database into one naming the batch's first stale append. */
  async function refineConflict(batch: AppendBatch, error: ConcurrencyError): Promise<never> {
    const versions = await versionsOf(
      driver,
      batch.appends.map((append) => append.stream),
    );
    for (const append of batch.appends) {
      const actual = versions.get(append.stream) ?? 0;
      if (actual !== append.expectedVersion) {
        const refined = new ConcurrencyError(append.stream, append.expectedVersion, actual);
        refined.cause = error;
        throw refined;
      }
    }
    // The other writer rolled back after all: the conflict stands as the database reported it.
    throw error;
  }

  async function append(batch: AppendBatch): Promise<readonly StoredEvent[]> {
    assertOpen();
    assertValidBatch(batch);
    if (batch.appends.length === 0 && batch.fence === undefined) return [];
    // Conflicts this code found itself are exact; only the database's own need refining.
    const ours = new Set<unknown>();
    try {
      const stored = await driver.transaction(async (q) => {
        if (batch.fence !== undefined) await checkFence(q, batch.fence.resource, batch.fence.token);
        if (batch.appends.length === 0) return [];
        try {
          await checkVersions(q, batch);
        } catch (error) {
          ours.add(error);
          throw error;
        }
        const inserted = await insertEvents(q, batch);
        await foldProjections(q, batch, inserted);
        return inserted;
      });
      return stored.map(out);
    } catch (error) {
      if (error instanceof ConcurrencyError && !ours.has(error)) await refineConflict(batch, error);
      throw error;
    }
  }

  return {
    append,
    async readStream(stream, fromVersion = 1) {
      assertOpen();
      assertStream(stream);
      assertFromVersion(fromVersion);
      const { rows } = await driver.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM ${t.events} WHERE stream = $1 AND version >= $2 ORDER BY version`,
        [stream, fromVersion],
      );
      return rows.map((row) => out(fromEventRow(row)));
    },
    async readAll(afterPosition, limit) {
      assertOpen();
      assertReadAll(afterPosition, limit);
      if (limit === 0) return [];
      const { rows } = await driver.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM ${t.events} WHERE position > $1 ORDER BY position LIMIT $2`,
        [afterPosition, limit],
      );
      return rows.map((row) => out(fromEventRow(row)));
    },
    async get(stream) {
      assertOpen();
      assertStream(stream);
      const { rows } = await driver.query<ProjectionRow>(
        `SELECT ${PROJECTION_COLUMNS} FROM ${t.projections} WHERE stream = $1`,
        [stream],
      );
      assert(rows.length <= 1, 'one projection per stream');
      return rows[0] === undefined ? null : fromProjectionRow(rows[0]);
    },
    async list(query: ProjectionQuery) {
      assertOpen();
      assertValidQuery(query);
      const types = typesOf(query);
      // Several types are one statement (one snapshot), grouped back into the order asked.
      const params: unknown[] = [...types];
      const typeIn = types.map((_, i) => `$${i + 1}`).join(', ');
      let sql: string;
      if (query.host !== undefined) {
        params.push(query.host);
        sql = `SELECT ${P_COLUMNS} FROM ${t.hosts} h JOIN ${t.projections} p ON p.stream = h.stream
          WHERE h.type IN (${typeIn}) AND h.host = $${params.length}`;
      } else {
        sql = `SELECT ${PROJECTION_COLUMNS} FROM ${t.projections} WHERE type IN (${typeIn})`;
        if (query.accountId === null) sql += ' AND account_id IS NULL';
        else if (query.accountId !== undefined) {
          params.push(query.accountId);
          sql += ` AND account_id = $${params.length}`;
        }
      }
      const { rows } = await driver.query<ProjectionRow>(sql, params);
      // Sorted here, not by ORDER BY: PostgreSQL collations order text differently from JavaScript.
      const rank = new Map(types.map((type, i) => [type, i]));
      return rows
        .map(fromProjectionRow)
        .filter((row) => query.host === undefined || matchesAccount(row, query.accountId))
        .sort((a, b) => (rank.get(a.type) ?? 0) - (rank.get(b.type) ?? 0) || byStream(a, b));
    },
    async fenceOf(resource) {
      assertOpen();
      assertStream(resource);
      const { rows } = await driver.query<{ token: unknown }>(
        `SELECT token FROM ${t.fences} WHERE resource = $1`,
        [resource],
      );
      return rows[0] === undefined ? 0 : toInt(rows[0].token, 'fences.token');
    },
    async close() {
      if (closed) return;
      closed = true;
      if (closeDriver) await driver.close();
    },
  };
}
