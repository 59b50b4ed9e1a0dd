/**
 * The event-store shapes the model speaks, declared here because the model sits below the ports
 * layer (lib <- model <- ports) and may not import them. They are structurally identical to the
 * types in src/ports/event-store.ts, so a model `StreamAppend` is an `AppendBatch` entry, a model
 * `projector` is a port `Projector`, and the main loop passes values across without conversion.
 */

/** JSON values as stored (same as the port's `Json`). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON object. */
export type JsonObject = { readonly [key: string]: Json };

/** Metadata of an event (same as the port's `EventMeta`). */
export interface EventMeta {
  /** Virtual or wall time of the append, ms since the epoch. */
  readonly atMs: number;
  readonly causationId?: string;
  readonly correlationId?: string;
  readonly fencingToken?: number;
  /** `api:<accountId>`, `mainloop`, `background`. */
  readonly actor?: string;
}

/** An event to append (same as the port's `NewEvent`). */
export interface NewEvent {
  readonly type: string;
  readonly data: JsonObject;
  readonly schemaVersion?: number;
  readonly meta: EventMeta;
}

/** An event as stored (same as the port's `StoredEvent`). */
export interface StoredEvent extends NewEvent {
  readonly stream: string;
  readonly version: number;
  readonly position: number;
  readonly schemaVersion: number;
}

/** Appends to one stream (same as the port's `StreamAppend`). */
export interface StreamAppend {
  readonly stream: string;
  /** The stream's current version; 0 for a stream that must not exist yet. */
  readonly expectedVersion: number;
  readonly events: readonly NewEvent[];
}

/** A projection row (same as the port's `Projection`). */
export interface Projection {
  readonly stream: string;
  readonly type: string;
  readonly accountId: string | null;
  readonly version: number;
  readonly data: JsonObject;
}

/** A source of ids (the shape of the `Ids` port): `next('vm')` gives `vm-1a2b3c4d`. */
export interface IdSource {
  next(prefix: string): string;
}
