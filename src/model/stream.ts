/**
 * The event store's record shapes — events, appends, projection rows — declared once, here. The
 * model folds and decides over these shapes and sits below the ports layer (lib <- model <- ports),
 * so it may not import them from src/ports; the port (src/ports/event-store.ts) imports and
 * re-exports them instead, and a model `StreamAppend` is the port's `AppendBatch` entry, the model's
 * `projector` the port's `Projector`, with no conversion between layers.
 */

/** JSON values as stored. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON object, as an event's data or a projection row. */
export type JsonObject = { readonly [key: string]: Json };

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
  readonly data: JsonObject;
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

/** A projection row: the fold of one stream. */
export interface Projection {
  readonly stream: string;
  /** Resource type, e.g. `virtualMachine`. */
  readonly type: string;
  /** Owning account, or null for system resources. */
  readonly accountId: string | null;
  /** Version of the last event folded in. */
  readonly version: number;
  readonly data: JsonObject;
  /**
   * The hosts the resource is on — placed there, or last observed there — sorted, for lists by
   * host (`ProjectionQuery.host`): what a host's agent reports is matched against these rows only,
   * not against every row. Absent when the resource is on no host.
   */
  readonly hosts?: readonly string[];
}

/** Folds an event into a projection. Pure and deterministic; returns null to delete the row. */
export type Projector = (current: Projection | null, event: StoredEvent) => Projection | null;

/** A source of ids (the shape of the `Ids` port): `next('vm')` gives `vm-1a2b3c4d`. */
export interface IdSource {
  next(prefix: string): string;
}
