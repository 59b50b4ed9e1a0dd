/**
 * The event store: an append-only log of `(stream, version, type, data, meta)` with
 * `unique(stream, version)`, projections folded from it in the same transaction, optimistic
 * concurrency (expected version) and fencing (a write whose token is older than the newest token
 * seen for its resource is rejected). Implementations: the in-memory store and the SQL store (on
 * pg-mem in the simulator, PostgreSQL in staging). One contract suite runs against both.
 */
import { PortError } from './errors.ts';

/** JSON values as stored. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Metadata carried by every event. */
export interface EventMeta {
  /** Virtual or wall time of the append, in ms since the epoch. */
  readonly atMs: number;
  /** The id of the command or request that caused this event. */
  readonly causationId?: string;
  /** The id shared by every event of one user-visible operation. */
  readonly correlationId?: string;
  /** The fencing token the writer held, when it held a lock. */
  readonly fencingToken?: number;
  /** Who wrote it: `api:<accountId>`, `mainloop`, `background`. */
  readonly actor?: string;
}

/** An event to append. */
export interface NewEvent {
  /** Dotted lowercase, past tense: `vm.created`, `vm.desired-state-set`. */
  readonly type: string;
  readonly data: { readonly [key: string]: Json };
  /** Schema version of `data` for this type; old versions are upcast on read, never rewritten. */
  readonly schemaVersion?: number;
  readonly meta: EventMeta;
}

/** An event as stored. */
export interface StoredEvent extends NewEvent {
  readonly stream: string;
  /** 1-based, contiguous per stream. */
  readonly version: number;
  /** Global append order, strictly increasing across all streams (gaps allowed). */
  readonly position: number;
  readonly schemaVersion: number;
}

/** Appends to one stream. */
export interface StreamAppend {
  readonly stream: string;
  /** The stream's current version; 0 for a stream that must not exist yet. */
  readonly expectedVersion: number;
  readonly events: readonly NewEvent[];
}

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

/** A projection row: the fold of one stream. */
export interface Projection {
  readonly stream: string;
  /** Resource type, e.g. `virtualMachine`. */
  readonly type: string;
  /** Owning account, or null for system resources. */
  readonly accountId: string | null;
  /** Version of the last event folded in. */
  readonly version: number;
  readonly data: { readonly [key: string]: Json };
}

/** Folds an event into a projection. Pure and deterministic; returns null to delete the row. */
export type Projector = (current: Projection | null, event: StoredEvent) => Projection | null;

/** Query for {@link EventStore.list}. */
export interface ProjectionQuery {
  readonly type: string;
  /** Only rows of this account (null: system rows; undefined: all). */
  readonly accountId?: string | null;
}

export interface EventStore {
  /** Appends atomically. Rejects with {@link ConcurrencyError} or {@link StaleTokenError}; nothing is written then. */
  append(batch: AppendBatch): Promise<readonly StoredEvent[]>;
  /** A stream's events from `fromVersion` (1-based, inclusive; default 1). */
  readStream(stream: string, fromVersion?: number): Promise<readonly StoredEvent[]>;
  /** Events across all streams after `afterPosition`, in position order, at most `limit`. */
  readAll(afterPosition: number, limit: number): Promise<readonly StoredEvent[]>;
  /** The projection of one stream, or null. */
  get(stream: string): Promise<Projection | null>;
  /** Projections of one type, ordered by stream. */
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
