/**
 * Resource and collection representations: the JSON a GDAPI client reads. A resource shows the
 * fields its schema publishes (never internal bookkeeping such as secret hashes), ISO-8601 UTC
 * dates, absolute `links` (self, one per non-null `xxxId` field, one per reachable collection)
 * and the `actions` its lifecycle machine accepts in its current state.
 */
import { availableActions } from '../../model/lifecycle.ts';
import {
  fieldOf,
  referenceTarget,
  representedFields,
  schemaOf,
  type JsonObject,
  type JsonValue,
} from '../../model/gdapi-schema.ts';
import type { ResourceType } from '../../model/resources.ts';
import { assert } from '../../lib/assert.ts';

/** The URL of a collection: `<base>/v1/<collection>`. */
export function collectionUrl(base: string, type: string): string {
  const collection = schemaOf(type)?.collection;
  assert(collection !== undefined, `type ${type} has no collection`);
  return `${base}/v1/${collection}`;
}

/** The URL of a resource: `<base>/v1/<collection>/<id>`. */
export function resourceUrl(base: string, type: string, id: string): string {
  return `${collectionUrl(base, type)}/${encodeURIComponent(id)}`;
}

/** {@link resourceUrl} for a collection known already (the render plans know theirs). */
function resourceUrlIn(base: string, collection: string, id: string): string {
  return `${base}/v1/${collection}/${encodeURIComponent(id)}`;
}

/** An ISO-8601 UTC date for ms since the epoch. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** How a type's rows are rendered, worked out once from its schema (which never changes). */
interface RenderPlan {
  readonly collection: string;
  readonly fields: readonly { readonly name: string; readonly date: boolean }[];
  /** `xxxId` fields that link to a resource with a collection: link name and target collection. */
  readonly links: readonly {
    readonly field: string;
    readonly name: string;
    readonly collection: string;
  }[];
  readonly collectionLinks: readonly string[];
}

const PLANS = new Map<string, RenderPlan>();

function planOf(type: string): RenderPlan {
  const known = PLANS.get(type);
  if (known !== undefined) return known;
  const schema = schemaOf(type);
  assert(schema?.collection !== undefined, `no schema with a collection for ${type}`);
  const fields = representedFields(type).map((name) => ({
    name,
    date: fieldOf(type, name)!.type === 'date',
  }));
  const links = representedFields(type).flatMap((name) => {
    const target = referenceTarget(fieldOf(type, name)!.type);
    const collection = target === undefined ? undefined : schemaOf(target)?.collection;
    return collection === undefined || !name.endsWith('Id')
      ? []
      : [{ field: name, name: name.slice(0, -2), collection }];
  });
  const plan: RenderPlan = {
    collection: schema.collection,
    fields,
    links,
    collectionLinks: Object.keys(schema.collectionLinks),
  };
  PLANS.set(type, plan);
  return plan;
}

/**
 * The representation of one resource of `type` from its row `data`. Missing fields are null.
 * `extra` adds members shown once (the secret of a new api key).
 */
export function renderResource(
  base: string,
  type: string,
  data: Readonly<Record<string, JsonValue>>,
  extra?: Readonly<Record<string, JsonValue>>,
): JsonObject {
  if (extra !== undefined && Object.keys(extra).length > 0) return render(base, type, data, extra);
  // A row's data is a new object for every version (the projector never changes one in place), so
  // a representation is worked out once per version and base, however often it is read.
  let byBase = RENDERED.get(data);
  if (byBase === undefined) {
    byBase = new Map();
    RENDERED.set(data, byBase);
  }
  let rendered = byBase.get(base);
  if (rendered === undefined) {
    rendered = render(base, type, data, {});
    if (byBase.size < 4) byBase.set(base, rendered);
  }
  return rendered;
}

/** Representations by row data and base URL (see renderResource). Read-only once made. */
const RENDERED = new WeakMap<object, Map<string, JsonObject>>();

function render(
  base: string,
  type: string,
  data: Readonly<Record<string, JsonValue>>,
  extra: Readonly<Record<string, JsonValue>>,
): JsonObject {
  const plan = planOf(type);
  const id = data['id'];
  assert(typeof id === 'string', `${type} row without an id`);
  const self = resourceUrlIn(base, plan.collection, id);
  const out: JsonObject = {};
  for (const { name, date } of plan.fields) {
    let value = data[name] ?? null;
    if (name === 'type') value = type;
    if (date && typeof value === 'number') value = isoDate(value);
    out[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) out[name] = value;

  const links: Record<string, string> = { self };
  for (const link of plan.links) {
    const value = data[link.field];
    if (typeof value === 'string') links[link.name] = resourceUrlIn(base, link.collection, value);
  }
  for (const linkName of plan.collectionLinks) links[linkName] = `${self}/${linkName}`;
  out['links'] = links;

  const actions: Record<string, string> = {};
  const state = data['state'];
  if (typeof state === 'string' && data['removed'] === null) {
    for (const action of availableActions(type as ResourceType, state))
      actions[action] = `${self}?action=${encodeURIComponent(action)}`;
  }
  out['actions'] = actions;
  return out;
}
