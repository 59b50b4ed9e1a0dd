/**
 * The database as the simulator's processes see it. One event store is world state (it outlives
 * every process); each incarnation gets a handle whose operations travel to the database after a
 * network latency and whose replies travel back after another. A crash before the request arrives
 * means the operation never happens; a crash after it means it happened but the caller never
 * learns of it — the two cases a crash-only control plane must survive.
 */
import type { Prng } from '../lib/prng.ts';
import type { EventStore, Projection, StoredEvent } from '../ports/event-store.ts';
import type { Incarnation } from './process.ts';
import type { Simulation } from './simulation.ts';

/** Median one-way latency to the database, in virtual ms. */
export const DB_LATENCY_MEDIAN_MS = 0.5;

/** Options for {@link bindStore}. */
export interface BindStoreOptions {
  readonly sim: Simulation;
  readonly store: EventStore;
  /** The PRNG fork latencies are drawn from (world-level, so draws follow the global step order). */
  readonly random: Prng;
  /** One-way latency median in ms; default {@link DB_LATENCY_MEDIAN_MS}. */
  readonly latencyMedianMs?: number;
}

/** An EventStore handle for `incarnation`: inert once it dies, delayed while it is paused. */
export function bindStore(incarnation: Incarnation, options: BindStoreOptions): EventStore {
  const { store, random } = options;
  const median = options.latencyMedianMs ?? DB_LATENCY_MEDIAN_MS;
  const draw = (): number =>
    Math.max(0.001, Math.round(Math.min(median * 20, random.logNormal(median, 0.5)) * 1000) / 1000);

  function call<T>(op: string, run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      incarnation.schedule(draw(), `db.${op}`, () => {
        run().then(
          (value) => incarnation.schedule(draw(), `db.${op}.reply`, () => resolve(value)),
          (error: unknown) => incarnation.schedule(draw(), `db.${op}.reply`, () => reject(error)),
        );
      });
    });
  }

  return {
    append: (batch) => call<readonly StoredEvent[]>('append', () => store.append(batch)),
    readStream: (stream, fromVersion) =>
      call<readonly StoredEvent[]>('read', () => store.readStream(stream, fromVersion)),
    readAll: (after, limit) =>
      call<readonly StoredEvent[]>('read', () => store.readAll(after, limit)),
    get: (stream) => call<Projection | null>('get', () => store.get(stream)),
    list: (query) => call<readonly Projection[]>('list', () => store.list(query)),
    fenceOf: (resource) => call<number>('fence', () => store.fenceOf(resource)),
    // A process closing its connection does not close the shared database.
    close: () => Promise.resolve(),
  };
}
