/**
 * The per-request context of the API and the helpers every handler shares: loading a resource the
 * caller may see (404 when it does not exist or belongs to another account), loading a
 * resource named in a body (422 InvalidReference), listing rows in the caller's scope, and the
 * optimistic-concurrency checks of `rev` and `If-Match`.
 */
import type { EventStore, Projection } from '../../ports/event-store.ts';
import type { Bus } from '../../ports/bus.ts';
import type { Random, Runtime } from '../../ports/runtime.ts';
import { isIdSyntax, schemaOf, typeOfId, type JsonValue } from '../../model/gdapi-schema.ts';
import { findImage, IMAGES } from '../../model/resources.ts';
import type { ApiLimits } from './types.ts';
import type { Caller } from './auth.ts';
import { fail, notFound } from './errors.ts';

/** Everything a handler needs about the request and the world. */
export interface RequestContext {
  readonly runtime: Runtime;
  /** Where secrets, salts and access keys are drawn from (see ApiDeps.secrets). */
  readonly secrets: Random;
  readonly store: EventStore;
  readonly bus: Bus;
  readonly limits: ApiLimits;
  /** The request URL. */
  readonly url: URL;
  /** `scheme://host[:port]`: the base of every link. */
  readonly base: string;
  /** The effective method (after `?_method=`), upper case. */
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly caller: Caller;
  /** Time of the request, ms since the epoch. */
  readonly nowMs: number;
  /** The request id (drawn on first use): the correlation id of every event the request writes. */
  readonly requestId: () => string;
}

/** A row as handlers see it: its id, type, account and data. */
export interface Row {
  readonly id: string;
  readonly type: string;
  readonly accountId: string | null;
  /** Stream version (GDAPI `rev`). */
  readonly version: number;
  readonly data: Readonly<Record<string, JsonValue>>;
}

function fromProjection(p: Projection): Row {
  return { id: p.stream, type: p.type, accountId: p.accountId, version: p.version, data: p.data };
}

function imageRow(id: string): Row | null {
  const image = findImage(id);
  return image === null
    ? null
    : { id: image.id, type: 'image', accountId: null, version: image.rev, data: { ...image } };
}

/** True when `caller` may see `row`: admins see everything, users their own account's rows and images. */
export function isVisible(caller: Caller, row: Row): boolean {
  if (caller.admin || row.type === 'image') return true;
  if (row.type === 'account') return row.id === caller.accountId;
  return row.accountId === caller.accountId;
}

/** Reads any row by id (images from the catalogue), or null. */
export async function readRow(ctx: RequestContext, id: string): Promise<Row | null> {
  if (typeOfId(id) === 'image') return imageRow(id);
  const projection = await ctx.store.get(id);
  return projection === null ? null : fromProjection(projection);
}

/**
 * The resource `id` of `type` as the caller may see it: 404 NotFound when there is none, when the
 * id is of another type, and when it belongs to another account — the same answer word for word,
 * so a tenant cannot learn which ids exist elsewhere.
 */
export async function loadResource(ctx: RequestContext, type: string, id: string): Promise<Row> {
  if (!isIdSyntax(id) || typeOfId(id) !== type)
    throw notFound(`${type} ${JSON.stringify(id.slice(0, 80))}`);
  const row = await readRow(ctx, id);
  if (row === null || row.type !== type || !isVisible(ctx.caller, row))
    throw notFound(`${type} ${id}`);
  return row;
}

/**
 * The live resource named by body field `fieldName`: 422 InvalidReference when it does not exist,
 * is of another type, belongs to an account the caller may not use, or is removed.
 */
export async function loadReference(
  ctx: RequestContext,
  type: string,
  id: string,
  fieldName: string,
): Promise<Row> {
  const invalid = (why: string) =>
    fail(422, 'InvalidReference', `${fieldName}: ${why}`, { fieldName });
  if (!isIdSyntax(id) || typeOfId(id) !== type) throw invalid(`not the id of a ${type}`);
  const row = await readRow(ctx, id);
  if (row === null || row.type !== type || !isVisible(ctx.caller, row))
    throw invalid(`no ${type} ${id}`);
  if (row.data['removed'] !== null && row.data['removed'] !== undefined)
    throw invalid(`${type} ${id} is removed`);
  return row;
}

/**
 * Every row of `type` in the caller's scope (admins: all accounts), in id order. Images come from
 * the catalogue.
 */
export async function listRows(ctx: RequestContext, type: string): Promise<Row[]> {
  if (type === 'image')
    return IMAGES.map((i) => ({
      id: i.id,
      type: 'image',
      accountId: null,
      version: i.rev,
      data: { ...i },
    }));
  const caller = ctx.caller;
  if (type === 'account' && !caller.admin) {
    const own = await readRow(ctx, caller.accountId);
    return own === null ? [] : [own];
  }
  const projections = await ctx.store.list(
    caller.admin ? { type } : { type, accountId: caller.accountId },
  );
  return projections.map(fromProjection).filter((r) => isVisible(caller, r));
}

/** Every row of `type` of one account (for rules that span resources), in id order. */
export async function listAccountRows(
  ctx: RequestContext,
  type: string,
  accountId: string,
): Promise<Row[]> {
  return (await ctx.store.list({ type, accountId })).map(fromProjection);
}

/** Every row of `type` of every account. */
export async function listAllRows(ctx: RequestContext, type: string): Promise<Row[]> {
  return (await ctx.store.list({ type })).map(fromProjection);
}

/**
 * The revision the client expects, from `rev` in the body or an `If-Match` header (`"4"`, `W/"4"`,
 * `4`; `*` matches anything), or null when it states none. 422 when malformed.
 */
export function expectedRev(ctx: RequestContext, bodyRev: unknown): number | null {
  if (bodyRev !== undefined && bodyRev !== null) {
    if (typeof bodyRev !== 'number' || !Number.isSafeInteger(bodyRev) || bodyRev < 0)
      throw fail(422, 'InvalidFormat', 'rev must be a non-negative integer', { fieldName: 'rev' });
    return bodyRev;
  }
  const header = ctx.headers['if-match'];
  if (header === undefined || header.trim() === '*') return null;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (m === null)
    throw fail(422, 'InvalidFormat', 'If-Match must be a rev such as "4"', {
      fieldName: 'If-Match',
    });
  return Number(m[1]);
}

/** 409 Conflict unless `row` is at revision `expected` (when one is given). */
export function checkRev(row: Row, expected: number | null): void {
  if (expected !== null && expected !== row.version)
    throw fail(409, 'Conflict', `${row.type} ${row.id} is at rev ${row.version}, not ${expected}`, {
      detail: 'read the resource again and retry with its current rev',
    });
}

/** The schema of a resource type; asserts it exists. */
export function resourceSchema(type: string) {
  const schema = schemaOf(type);
  if (schema?.collection === undefined) throw notFound(`collection of ${type}`);
  return schema;
}
