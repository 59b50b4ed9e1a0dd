/**
 * The public API (GDAPI) as one transport-independent function: `createApi(deps).handle(request)`
 * → response. The same router serves the simulator (requests handed in-process) and the HTTP
 * server adapter. Order of checks: URL length (414), body size (413), URL syntax, method override,
 * authentication (401), route (404), visibility (403), method (405), body media type and syntax
 * (415, 422), validation (422), existence (404, and the same 404 for another account's resource),
 * rev (409), the domain decision (4xx), and only then one atomic append and the change notices. An
 * exception that escapes all of that is a bug: it is logged and answered 500, never used for input
 * errors; dependency failures answer 503.
 */
import { assertNever } from '../../lib/assert.ts';
import {
  resourceSchemas,
  schemaOf,
  schemaOfCollection,
  sameJson,
  validateActionInput,
  validateCreate,
  validateUpdate,
  type GdapiError,
  type JsonObject,
  type JsonValue,
  type TypeSchema,
  type Validated,
} from '../../model/gdapi-schema.ts';
import { authenticate, VerifiedSecrets, type Caller } from './auth.ts';
import { openApiDocument } from './openapi.ts';
import {
  corsHeaders,
  effectiveMethod,
  optionsHeaders,
  refuseCrossSite,
  requestSource,
  securityHeaders,
} from './browser.ts';
import { formToObject, parseBody, type ParsedBody } from './body.ts';
import {
  checkRev,
  expectedRev,
  listRows,
  loadResource,
  type RequestContext,
  type Row,
} from './context.ts';
import { ApiError, classify, errorBody, fail, notFound } from './errors.ts';
import { renderHtml } from './html.ts';
import { applyQuery, describeQuery, parseCollectionQuery } from './query.ts';
import { collectionUrl, renderResource, resourceUrl } from './render.ts';
import {
  canSee,
  canWrite,
  findSchema,
  renderSchema,
  renderSchemaCollection,
  schemasUrl,
} from './schemas.ts';
import {
  DEFAULT_LIMITS,
  type Api,
  type ApiDeps,
  type ApiLimits,
  type ApiRequest,
  type ApiResponse,
} from './types.ts';
import { createResource, deleteResource, runAction, updateResource } from './writes.ts';

/** How a response is rendered. */
interface Presentation {
  readonly base: string;
  readonly url: string;
  readonly method: string;
  readonly html: boolean;
  /** CORS headers for an allowed origin. */
  readonly cors: Readonly<Record<string, string>>;
}

/** A handler's answer before rendering. */
interface Answer {
  readonly status: number;
  readonly value: JsonValue;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Creates the API over its ports. */
export function createApi(deps: ApiDeps): Api {
  const limits: ApiLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const verified = new VerifiedSecrets();
  const corsOrigins = deps.corsOrigins ?? [];
  return {
    async handle(request: ApiRequest): Promise<ApiResponse> {
      let presentation: Presentation = {
        base: '',
        url: '',
        method: 'GET',
        html: false,
        cors: {},
      };
      try {
        const url = parseUrl(request.url);
        // Links and X-API-Schemas need the base even when the URL is then refused as too long.
        presentation = { ...presentation, base: url.origin };
        if (request.url.length > limits.maxUrlLength)
          throw fail(414, 'UriTooLong', `the URL exceeds ${limits.maxUrlLength} characters`);
        const source = requestSource(request, url.origin, corsOrigins);
        presentation = {
          base: url.origin,
          url: url.href,
          method: 'GET',
          html: wantsHtml(request, url),
          cors: corsHeaders(request, source),
        };
        refuseCrossSite(request.method, source, request);
        const method = effectiveMethod(request.method, url, source);
        presentation = { ...presentation, method };
        if (url.pathname === '/healthz') return respond(presentation, await health(deps, method));
        if (method === 'OPTIONS')
          return respond(
            { ...presentation, html: false },
            { status: 204, value: null, headers: optionsHeaders(request, source) },
          );
        const seen: { account?: string } = {};
        const answer = await route(deps, limits, verified, request, url, method, seen);
        const response = notModified(request, method, respond(presentation, answer));
        return seen.account === undefined ? response : { ...response, account: seen.account };
      } catch (error) {
        const { error: apiError, bug } = classify(error);
        if (bug)
          deps.runtime.log.warn('api: unexpected error (bug)', {
            method: request.method,
            url: request.url.slice(0, 200),
            error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
            stack:
              error instanceof Error ? (error.stack ?? '').split('\n').slice(0, 6).join('\n') : '',
          });
        return respond(presentation, {
          status: apiError.error.status,
          value: errorBody(apiError.error),
          headers: apiError.headers,
        });
      }
    },
  };
}

/**
 * `GET /healthz`, without credentials: 200 when the API answers and reads its database (one read
 * by id of a stream that never exists), 503 when the database does not answer.
 */
async function health(deps: ApiDeps, method: string): Promise<Answer> {
  requireMethod(method, ['GET', 'HEAD']);
  try {
    await deps.store.get('healthz');
    return { status: 200, value: { type: 'health', status: 'ok' } };
  } catch (error) {
    const { error: apiError, bug } = classify(error);
    if (bug) throw error;
    return {
      status: 503,
      value: { type: 'health', status: 'unavailable', detail: apiError.error.message },
      // Retry-After, as for any request the store cannot answer.
      headers: apiError.headers,
    };
  }
}

/** A function that computes its value on the first call and returns the same value after. */
function lazy<T>(compute: () => T): () => T {
  let value: { readonly v: T } | undefined;
  return () => (value ??= { v: compute() }).v;
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw fail(400, 'InvalidFormat', 'the request URL is not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw fail(400, 'InvalidFormat', 'the request URL must be http or https');
  return url;
}

/** HTML for browsers: Accept has `*\/*` and User-Agent has `mozilla`, unless `?_format=json`. */
function wantsHtml(request: ApiRequest, url: URL): boolean {
  const format = url.searchParams.get('_format')?.toLowerCase();
  if (format === 'json') return false;
  if (format === 'html') return true;
  const accept = request.headers['accept'] ?? '';
  const agent = request.headers['user-agent'] ?? '';
  return accept.includes('*/*') && agent.toLowerCase().includes('mozilla');
}

function respond(presentation: Presentation, answer: Answer): ApiResponse {
  const html = presentation.html && presentation.url !== '';
  const headers: Record<string, string> = {
    'x-api-schemas': schemasUrl(presentation.base),
    'cache-control': 'no-store',
    ...securityHeaders(html),
    ...presentation.cors,
    ...answer.headers,
  };
  // The HTML page of a resource is another representation than its JSON: another tag.
  if (html && headers['etag'] !== undefined)
    headers['etag'] = headers['etag'].replace(/"$/, '-html"');
  let body: string;
  if (answer.status === 204) {
    body = '';
  } else if (html) {
    headers['content-type'] = 'text/html; charset=utf-8';
    body = renderHtml(answer.value, presentation.url, presentation.method, answer.status);
  } else {
    headers['content-type'] = 'application/json; charset=utf-8';
    body = JSON.stringify(answer.value);
  }
  return { status: answer.status, headers, body: presentation.method === 'HEAD' ? '' : body };
}

/**
 * A 200 answer to a GET or HEAD whose `If-None-Match` names its current tag (or `*`) becomes 304
 * Not Modified: the same headers, no body.
 */
function notModified(request: ApiRequest, method: string, response: ApiResponse): ApiResponse {
  const tag = response.headers['etag'];
  const condition = request.headers['if-none-match'];
  if (response.status !== 200 || tag === undefined || condition === undefined) return response;
  if (method !== 'GET' && method !== 'HEAD') return response;
  const tags = condition.split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (!tags.includes('*') && !tags.includes(tag)) return response;
  const headers = { ...response.headers };
  delete headers['content-type'];
  return { status: 304, headers, body: '' };
}

function methodNotAllowed(method: string, allowed: readonly string[]): ApiError {
  return fail(405, 'MethodNotAllowed', `${method.slice(0, 20)} is not allowed here`, {
    headers: { allow: allowed.join(', ') },
  });
}

function requireMethod(method: string, allowed: readonly string[]): void {
  if (!allowed.includes(method)) throw methodNotAllowed(method, allowed);
}

function segments(url: URL): string[] {
  const parts = url.pathname.split('/').filter((p) => p !== '');
  try {
    return parts.map((p) => decodeURIComponent(p));
  } catch {
    throw notFound('path');
  }
}

async function route(
  deps: ApiDeps,
  limits: ApiLimits,
  verified: VerifiedSecrets,
  request: ApiRequest,
  url: URL,
  method: string,
  seen: { account?: string },
): Promise<Answer> {
  // A cheap rejection before any store access: an oversized body. A method the URL does not take
  // gets its 405 from the route, whose Allow names what that URL takes (whatever the method was).
  const size = typeof request.body === 'string' ? request.body.length : request.body.byteLength;
  if (size > limits.maxBodyBytes)
    throw fail(413, 'RequestTooLarge', `the body exceeds ${limits.maxBodyBytes} bytes`);

  const caller = await authenticate(deps.store, request.headers['authorization'], verified);
  seen.account = caller.accountId;
  const ctx: RequestContext = {
    runtime: deps.runtime,
    secrets: deps.secrets ?? deps.runtime.random,
    store: deps.store,
    bus: deps.bus,
    limits,
    url,
    base: url.origin,
    method,
    headers: request.headers,
    caller,
    nowMs: deps.runtime.clock.nowMs(),
    // Drawn only by writes, so reads leave the id stream alone.
    requestId: lazy(() => deps.runtime.ids.next('req')),
  };
  const parts = segments(url);
  const readOnly = ['GET', 'HEAD'];

  if (parts.length === 0) {
    requireMethod(method, readOnly);
    return { status: 200, value: rootCollection(ctx) };
  }
  if (parts[0] !== 'v1') throw notFound(`path ${url.pathname.slice(0, 100)}`);
  if (parts.length === 1) {
    requireMethod(method, readOnly);
    return { status: 200, value: versionRoot(ctx) };
  }
  const collection = parts[1]!;
  if (collection === 'openapi.json' && parts.length === 2) {
    requireMethod(method, readOnly);
    return { status: 200, value: openApiDocument(ctx.base) };
  }
  if (collection === 'schemas') {
    if (parts.length > 3) throw notFound('path');
    requireMethod(method, readOnly);
    if (parts.length === 2) return { status: 200, value: renderSchemaCollection(ctx.base, caller) };
    const schema = findSchema(parts[2]!, caller);
    if (schema === undefined) throw notFound(`schema ${parts[2]!.slice(0, 60)}`);
    return { status: 200, value: renderSchema(ctx.base, schema, caller) };
  }
  const schema = schemaOfCollection(collection);
  if (schema === undefined) throw notFound(`collection ${collection.slice(0, 60)}`);
  if (!canSee(schema, caller))
    throw fail(403, 'PermissionDenied', `${collection} are visible to administrators only`);

  switch (parts.length) {
    case 2:
      return collectionRoute(ctx, request, schema);
    case 3:
      return resourceRoute(ctx, request, schema, parts[2]!);
    case 4:
      return linkRoute(ctx, schema, parts[2]!, parts[3]!);
    default:
      throw notFound('path');
  }
}

function rootCollection(ctx: RequestContext): JsonObject {
  return {
    type: 'collection',
    resourceType: 'apiVersion',
    links: { self: `${ctx.base}/` },
    createTypes: {},
    actions: {},
    data: [versionRoot(ctx)],
  };
}

function versionRoot(ctx: RequestContext): JsonObject {
  const links: Record<string, string> = { self: `${ctx.base}/v1`, schemas: schemasUrl(ctx.base) };
  for (const schema of resourceSchemas())
    if (canSee(schema, ctx.caller)) links[schema.collection!] = collectionUrl(ctx.base, schema.id);
  return { id: 'v1', type: 'apiVersion', links, actions: {} };
}

// ---------------------------------------------------------------------------------------------
// Collections

function canCreate(schema: TypeSchema, caller: Caller): boolean {
  return (
    schema.collectionMethods.includes('POST') &&
    (caller.admin || schema.createAudience === 'everyone')
  );
}

async function collectionRoute(
  ctx: RequestContext,
  request: ApiRequest,
  schema: TypeSchema,
): Promise<Answer> {
  const allowed = ['GET', 'HEAD', ...(canCreate(schema, ctx.caller) ? ['POST'] : [])];
  if (ctx.method === 'POST' && !canCreate(schema, ctx.caller)) {
    if (schema.collectionMethods.includes('POST'))
      throw fail(403, 'PermissionDenied', `only administrators create ${schema.collection}`);
  }
  requireMethod(ctx.method, allowed);
  if (ctx.method === 'POST') {
    const action = ctx.url.searchParams.get('action');
    if (action !== null)
      throw fail(404, 'ActionNotAvailable', `${schema.collection} have no collection actions`);
    return createRoute(ctx, request, schema);
  }
  const rows = await listRows(ctx, schema.id);
  return { status: 200, value: renderCollection(ctx, schema, rows, true) };
}

function renderCollection(
  ctx: RequestContext,
  schema: TypeSchema,
  rows: readonly Row[],
  top: boolean,
): JsonObject {
  const query = parseCollectionQuery(schema.id, ctx.url.searchParams);
  const page = applyQuery(rows, query);
  return {
    type: 'collection',
    resourceType: schema.id,
    links: { self: ctx.url.href },
    createTypes:
      top && canCreate(schema, ctx.caller)
        ? { [schema.id]: collectionUrl(ctx.base, schema.id) }
        : {},
    actions: {},
    ...describeQuery(schema.id, ctx.url, query, page),
    data: page.data.map((row) => renderResource(ctx.base, schema.id, row.data)),
  };
}

async function linkRoute(
  ctx: RequestContext,
  schema: TypeSchema,
  id: string,
  linkName: string,
): Promise<Answer> {
  requireMethod(ctx.method, ['GET', 'HEAD']);
  const parent = await loadResource(ctx, schema.id, id);
  const link = new Map(Object.entries(schema.collectionLinks)).get(linkName);
  if (link === undefined) throw notFound(`link ${linkName.slice(0, 60)} of ${schema.id}`);
  const target = schemaOf(link.type)!;
  if (!canSee(target, ctx.caller))
    throw fail(403, 'PermissionDenied', `${target.collection} are visible to administrators only`);
  const rows = (await listRows(ctx, link.type)).filter((r) => r.data[link.field] === parent.id);
  return { status: 200, value: renderCollection(ctx, target, rows, false) };
}

// ---------------------------------------------------------------------------------------------
// Bodies

/** The body as a JSON-like value for schema `schemaType` (forms converted), or undefined when empty. */
function bodyValue(ctx: RequestContext, request: ApiRequest, schemaType: string): unknown {
  const parsed: ParsedBody = parseBody(
    request.body,
    request.headers['content-type'],
    ctx.limits.maxBodyBytes,
  );
  switch (parsed.kind) {
    case 'none':
      return undefined;
    case 'json':
      return parsed.value;
    case 'form':
      return formToObject(schemaType, parsed.fields);
    default:
      return assertNever(parsed, 'body');
  }
}

function unwrap<T>(result: Validated<T>): T {
  if (result.ok) return result.value;
  throw new ApiError(result.error satisfies GdapiError);
}

/** Splits `rev` off a body object (it is a precondition, not input). Non-objects pass unchanged. */
function splitRev(body: unknown): { rev: unknown; rest: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { rev: undefined, rest: body };
  const record = body as Record<string, unknown>;
  if (!Object.hasOwn(record, 'rev')) return { rev: undefined, rest: body };
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(record))
    if (key !== 'rev')
      Object.defineProperty(rest, key, {
        value: record[key],
        enumerable: true,
        writable: true,
        configurable: true,
      });
  return { rev: record['rev'], rest };
}

// ---------------------------------------------------------------------------------------------
// Writes

async function answerWith(
  ctx: RequestContext,
  id: string,
  status: number,
  extra: Readonly<Record<string, JsonValue>> = {},
): Promise<Answer> {
  const row = await ctx.store.get(id);
  // The write was committed a moment ago: its projection must exist.
  if (row === null) throw new Error(`projection ${id} missing after a committed write`);
  const type = row.type;
  return {
    status,
    value: renderResource(ctx.base, type, row.data, extra),
    headers: { location: resourceUrl(ctx.base, type, id), etag: `"${row.version}"` },
  };
}

async function createRoute(
  ctx: RequestContext,
  request: ApiRequest,
  schema: TypeSchema,
): Promise<Answer> {
  const body = bodyValue(ctx, request, schema.id);
  const input = unwrap(validateCreate(schema.id, body === undefined ? {} : body));
  const result = await createResource(ctx, schema.id, input);
  return answerWith(ctx, result.id, schema.asynchronous ? 202 : 201, result.extra);
}

async function resourceRoute(
  ctx: RequestContext,
  request: ApiRequest,
  schema: TypeSchema,
  id: string,
): Promise<Answer> {
  const writable = canWrite(schema, ctx.caller);
  // POST is allowed for `?action=`; an action the type does not have is a 404 ActionNotAvailable.
  const allowed = [
    'GET',
    'HEAD',
    ...(writable ? ['POST', ...schema.resourceMethods.filter((m) => m !== 'GET')] : []),
  ];
  if (
    !writable &&
    ['POST', 'PUT', 'DELETE'].includes(ctx.method) &&
    schema.resourceMethods.length > 1
  )
    throw fail(403, 'PermissionDenied', `only administrators change ${schema.collection}`);
  requireMethod(ctx.method, allowed);
  const row = await loadResource(ctx, schema.id, id);
  switch (ctx.method) {
    case 'GET':
    case 'HEAD':
      return {
        status: 200,
        value: renderResource(ctx.base, schema.id, row.data),
        headers: { etag: `"${row.version}"` },
      };
    case 'POST':
      return actionRoute(ctx, request, schema, row);
    case 'PUT':
      return updateRoute(ctx, request, schema, row);
    case 'DELETE': {
      const { rev, rest } = splitRev(bodyValue(ctx, request, schema.id));
      if (rest !== undefined && !sameJson(rest, {}))
        throw fail(422, 'InvalidBodyContent', 'DELETE takes no body other than {"rev": n}');
      const expected = expectedRev(ctx, rev);
      checkRev(row, expected);
      const alreadyGone = (row.data['removed'] ?? null) !== null;
      const result = await deleteResource(ctx, row, expected);
      return answerWith(ctx, result.id, schema.asynchronous && !alreadyGone ? 202 : 200);
    }
    default:
      throw methodNotAllowed(ctx.method, allowed);
  }
}

async function actionRoute(
  ctx: RequestContext,
  request: ApiRequest,
  schema: TypeSchema,
  row: Row,
): Promise<Answer> {
  const action = ctx.url.searchParams.get('action');
  if (action === null || action === '')
    throw methodNotAllowed('POST', [
      'GET',
      'HEAD',
      ...schema.resourceMethods.filter((m) => m !== 'GET'),
    ]);
  const spec = new Map(Object.entries(schema.resourceActions)).get(action);
  const { rev, rest } = splitRev(bodyValue(ctx, request, spec?.input ?? schema.id));
  const expected = expectedRev(ctx, rev);
  checkRev(row, expected);
  const rendered = renderResource(ctx.base, schema.id, row.data);
  const available = Object.keys(rendered['actions'] as JsonObject);
  if (spec === undefined || !available.includes(action))
    throw fail(
      404,
      'ActionNotAvailable',
      `action ${JSON.stringify(action.slice(0, 40))} is not available for ${schema.id} ${row.id} in state ${JSON.stringify(row.data['state'] ?? null)}`,
      {
        detail:
          available.length > 0
            ? `available: ${available.join(', ')}`
            : 'no actions are available in this state',
      },
    );
  const input = unwrap(validateActionInput(schema.id, action, rest));
  const result = await runAction(ctx, row, action, input, expected);
  const outputType = schemaOf(spec.output ?? schema.id);
  return answerWith(ctx, result.id, outputType?.asynchronous === true ? 202 : 200);
}

/**
 * PUT: a partial body of updatable fields (today names), optionally with `rev`. Members that are
 * not updatable may be sent back unchanged (a client PUTs what it read); changing one, or naming an
 * unknown field, is a 422 naming it. A stale `rev` is a 409. Fields equal to their current value
 * are no change: a PUT that changes nothing answers 200 without writing.
 */
async function updateRoute(
  ctx: RequestContext,
  request: ApiRequest,
  schema: TypeSchema,
  row: Row,
): Promise<Answer> {
  const { rev, rest } = splitRev(bodyValue(ctx, request, schema.id));
  const expected = expectedRev(ctx, rev);
  const current = renderResource(ctx.base, schema.id, row.data);
  const changes = unwrap(validateUpdate(schema.id, rest === undefined ? {} : rest, current));
  checkRev(row, expected);
  const effective: JsonObject = {};
  for (const [name, value] of Object.entries(changes))
    if (!sameJson(value, current[name] ?? null)) effective[name] = value;
  if (Object.keys(effective).length === 0)
    return { status: 200, value: current, headers: { etag: `"${row.version}"` } };
  const result = await updateResource(ctx, row, effective, expected);
  return answerWith(ctx, result.id, 200);
}
