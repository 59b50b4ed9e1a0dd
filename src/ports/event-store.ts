/**
 * The event store: an append-only log of `(stream, version, type, data, meta)` with
 * `unique(stream, version)`, projections folded from it in the same transaction, optimistic
 * concurrency (expected version) and fencing (a write whose token is older than the newest token
 * seen for its resource is rejected). Implementations: the in-memory store and the SQL store (on
 * pg-mem in the simulator, PostgreSQL in staging). One contract suite runs against both.
 */
import type { Projection, StoredEvent, StreamAppend } from '../model/stream.ts';
import { PortError } from './errors.ts';

// The record shapes are the model's (it folds and decides over them and may not import ports).
export type {
  EventMeta,
  Json,
  NewEvent,
  Projection,
  Projector,
  StoredEvent,
  StreamAppend,
} from '../model/stream.ts';

/** A fencing check applied atomically with an append. */
export interface Fence {
  /** The locked resource's name, usually the stream. */
  readonly resource: string;
  /** The writer's token: rejected if older than the newest seen for `resource`. */
  readonly token: number;
}

/** One atomic write: all appends and the fence succeed together or not at all. */
export interface AppendBatch {
  readonly appends: readonly StreamAppend[];
  readonly fence?: Fence;
}

/** Query for {@link EventStore.list}. */
export interface ProjectionQuery {
  /**
   * The type, or several types: then one read returns them type by type in the order given (one
   * statement on SQL, so one consistent snapshot, and one round trip instead of several).
   */
  readonly type: string | readonly string[];
  /** Only rows of this account (null: system rows; undefined: all). */
  readonly accountId?: string | null;
  /** Only rows whose projection lists this host in `hosts` (placed or last observed there). */
  readonly host?: string;
}

/** The event store port (see the header): atomic batched appends, reads, projections, fences. */
export interface EventStore {
  /** Appends atomically. Rejects with {@link ConcurrencyError} or {@link StaleTokenError}; nothing is written then. */
  append(batch: AppendBatch): Promise<readonly StoredEvent[]>;
  /** A stream's events from `fromVersion` (1-based, inclusive; default 1). */
  readStream(stream: string, fromVersion?: number): Promise<readonly StoredEvent[]>;
  /** Events across all streams after `afterPosition`, in position order, at most `limit`. */
  readAll(afterPosition: number, limit: number): Promise<readonly StoredEvent[]>;
  /** The projection of one stream, or null. */
  get(stream: string): Promise<Projection | null>;
  /** Projections of the query's type (or types, in their order), each type ordered by stream. */
  list(query: ProjectionQuery): Promise<readonly Projection[]>;
  /** The newest fencing token seen for a resource, or 0. */
  fenceOf(resource: string): Promise<number>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** The expected version did not match: someone else wrote first. Retry after re-reading. */
export class ConcurrencyError extends PortError {
  override name = 'ConcurrencyError';
  constructor(
    readonly stream: string,
    readonly expectedVersion: number,
    readonly actualVersion: number,
  ) {
    super(
      'store.conflict',
      `stream ${stream}: expected version ${expectedVersion}, found ${actualVersion}`,
    );
  }
}

/** The writer's fencing token is older than one already seen: it lost its lock. */
export class StaleTokenError extends PortError {
  override name = 'StaleTokenError';
  constructor(
    readonly resource: string,
    readonly token: number,
    readonly newest: number,
  ) {
    super('store.stale-token', `resource ${resource}: token ${token} is older than ${newest}`);
  }
}
