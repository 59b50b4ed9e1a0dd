// Goal: no malformed request — bad JSON, wrong types, unknown fields, out-of-range numbers, huge
// strings, invalid characters, missing fields, wrong media types, random or other accounts' ids,
// unknown or unavailable actions, stale revs, odd methods, junk query strings, missing, wrong or
// other accounts' credentials — ever gets a 5xx or changes any state: the event log (read from
// position 0), the projections and the bus stay exactly as they were.
// Method: one world with three accounts and resources in known states; fast-check generates
// requests that are invalid by construction (each is a valid request plus one defect, or a request
// on something the caller may not touch). Every request is checked for status < 500 and an
// unchanged log and bus; the whole store is compared at the end. A control test shows that the
// checker sees a valid write, so the property can fail.
// The same property is the API's slow-lane fuzz: `npm run fuzz:api` runs it for 100,000 requests
// (CLOUDBED_API_FUZZ_RUNS), adds hostile browsers and LIKE patterns to the mix, and prints what it
// saw (statuses, slowest answer); there, and only there, an answer slower than 5 s is a failure.

import { fc } from '@fast-check/vitest';
import { beforeAll, describe, expect, it } from 'vitest';
import { fieldOf, schemaOf, type FieldSchema } from '../../src/model/gdapi-schema.ts';
import type { Credentials, World } from '../unit/api/harness.ts';
import { basic, createWorld } from '../unit/api/harness.ts';

let w: World;
let alice: Credentials;
let bob: Credentials;
/** Alice's resources: a running VM with its root volume, a detached volume, a snapshot of it. */
const own = { vm: '', rootVolume: '', volume: '', snapshot: '' };
/** Bob's resources. */
const theirs = { vm: '', volume: '' };

interface Req {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | Uint8Array;
  readonly as: Credentials | null;
  /** What the request is, for failure messages. */
  readonly label: string;
}

beforeAll(async () => {
  w = await createWorld({ seed: 11 });
  alice = await w.newUser('alice');
  bob = await w.newUser('bob');
  const vm = await w.call('POST', '/v1/virtualmachines', {
    as: alice,
    body: { name: 'a', imageId: 'img-00000001' },
  });
  own.vm = vm.json.id;
  own.rootVolume = vm.json.rootVolumeId;
  await w.settleVm(own.vm, 'running');
  own.volume = (
    await w.call('POST', '/v1/volumes', { as: alice, body: { name: 'data', sizeGb: 10 } })
  ).json.id;
  await w.settleVolume(own.volume);
  own.snapshot = (
    await w.call('POST', '/v1/snapshots', { as: alice, body: { volumeId: own.volume } })
  ).json.id;
  await w.settleSnapshot(own.snapshot);
  const bvm = await w.call('POST', '/v1/virtualmachines', {
    as: bob,
    body: { name: 'b', imageId: 'img-00000002' },
  });
  theirs.vm = bvm.json.id;
  await w.settleVm(theirs.vm, 'shutoff');
  theirs.volume = (await w.call('POST', '/v1/volumes', { as: bob, body: { sizeGb: 5 } })).json.id;
  await w.settleVolume(theirs.volume);
});

// ---------------------------------------------------------------------------------------------
// Generators

const JSON_TYPE = { 'content-type': 'application/json' };

/** Valid create bodies, per collection, and who may create there. */
const creates = (): {
  path: string;
  type: string;
  body: Record<string, unknown>;
  as: Credentials;
}[] => [
  {
    path: '/v1/virtualmachines',
    type: 'virtualMachine',
    body: { name: 'p', imageId: 'img-00000001' },
    as: alice,
  },
  { path: '/v1/volumes', type: 'volume', body: { name: 'p', sizeGb: 1 }, as: alice },
  { path: '/v1/snapshots', type: 'snapshot', body: { volumeId: own.volume, name: 'p' }, as: alice },
  { path: '/v1/apikeys', type: 'apiKey', body: { name: 'p' }, as: alice },
  { path: '/v1/accounts', type: 'account', body: { name: 'p', kind: 'user' }, as: w.admin },
  {
    path: '/v1/hosts',
    type: 'host',
    body: { name: 'p', kind: 'storage', poolSizeGb: 10 },
    as: w.admin,
  },
];

/** A value of a different JSON type than `field` accepts (never null for nullable fields). */
function wrongType(field: FieldSchema): fc.Arbitrary<unknown> {
  const pool: fc.Arbitrary<unknown>[] = [
    // Not empty: an empty array is a right value for an array field (no extra volumes).
    fc.array(fc.integer(), { minLength: field.type.startsWith('array[') ? 1 : 0, maxLength: 3 }),
    fc.dictionary(fc.string(), fc.integer(), { maxKeys: 2 }),
  ];
  if (field.nullable !== true) pool.push(fc.constant(null));
  switch (field.type) {
    case 'int':
      pool.push(
        fc.string(),
        fc.boolean(),
        fc.double({ noInteger: true, noNaN: true }),
        fc.constant(1e308),
      );
      break;
    case 'boolean':
      pool.push(fc.string(), fc.integer());
      break;
    case 'enum':
      pool.push(
        fc.integer(),
        fc.string().filter((s) => !(field.options ?? []).includes(s)),
      );
      break;
    default:
      if (field.type.startsWith('array['))
        pool.push(
          fc.string(),
          fc.integer(),
          fc.array(fc.oneof(fc.integer(), fc.string()), { minLength: 1, maxLength: 3 }),
        );
      else if (field.type.startsWith('reference['))
        pool.push(
          fc.integer(),
          fc.boolean(),
          fc.string().map((s) => `zz${s}`),
        );
      else pool.push(fc.integer(), fc.boolean());
  }
  return fc.oneof(...pool);
}

/**
 * The request generators. Built once the world exists: they close over its ids and credentials.
 */
function arbitraries() {
  /** A create body with exactly one defect. */
  const malformedCreate: fc.Arbitrary<Req> = fc.constantFrom(...[0, 1, 2, 3, 4, 5]).chain((i) => {
    const c = creates()[i]!;
    const schema = schemaOf(c.type)!;
    const createFields = Object.entries(schema.resourceFields).filter(([, f]) => f.create === true);
    const ints = createFields.filter(
      ([, f]) => f.type === 'int' && (f.min !== undefined || f.max !== undefined),
    );
    const strings = createFields.filter(([, f]) => f.type === 'string');
    const required = Object.keys(c.body).filter((k) => schema.resourceFields[k]?.required === true);
    const defects: fc.Arbitrary<{
      label: string;
      body: string | Uint8Array;
      headers?: Record<string, string>;
    }>[] = [
      fc
        .tuple(
          fc
            .string({ minLength: 1, maxLength: 20 })
            .filter((k) => fieldOf(c.type, k) === undefined),
          fc.jsonValue({ maxDepth: 2 }),
        )
        .map(([k, v]) => ({
          label: `unknown field ${k}`,
          body: JSON.stringify({ ...c.body, [k]: v }),
        })),
      fc.constantFrom(...createFields).chain(([name, f]) =>
        wrongType(f).map((v) => ({
          label: `wrong type ${name}`,
          body: JSON.stringify({ ...c.body, [name]: v }),
        })),
      ),
      fc
        .oneof(
          fc.array(fc.jsonValue({ maxDepth: 1 })),
          fc.integer(),
          fc.string(),
          fc.boolean(),
          fc.constant(null),
        )
        .map((v) => ({
          label: 'not an object',
          body: JSON.stringify(v),
        })),
      fc
        .integer({ min: 1, max: 8 })
        .map((cut) => ({ label: 'truncated JSON', body: JSON.stringify(c.body).slice(0, -cut) })),
      fc
        .constantFrom('text/plain', 'application/xml', 'image/png', 'application/octet-stream')
        .map((t) => ({
          label: `media type ${t}`,
          body: JSON.stringify(c.body),
          headers: { 'content-type': t },
        })),
      fc.constant({
        label: 'invalid utf-8',
        body: new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
      }),
    ];
    if (ints.length > 0)
      defects.push(
        fc.constantFrom(...ints).chain(([name, f]) =>
          fc
            .oneof(
              ...(f.min === undefined ? [] : [fc.integer({ min: -1e9, max: f.min - 1 })]),
              ...(f.max === undefined ? [] : [fc.integer({ min: f.max + 1, max: 1e12 })]),
            )
            .map((v) => ({
              label: `out of range ${name}=${v}`,
              body: JSON.stringify({ ...c.body, [name]: v }),
            })),
        ),
      );
    if (strings.length > 0)
      defects.push(
        fc.constantFrom(...strings).chain(([name, f]) =>
          fc
            .oneof(
              fc.integer({ min: 1, max: 100_000 }).map((n) => 'a'.repeat((f.maxLength ?? 0) + n)),
              fc
                .tuple(
                  fc.constantFrom(' ', '/', '<', 'é', '\u0000', '😀', '"', '\n', '#', '%'),
                  fc.nat(3),
                )
                .map(([ch, at]) => `ab${ch}`.slice(0, at + 1) + ch),
              ...(f.minLength !== undefined && f.minLength > 0 ? [fc.constant('')] : []),
            )
            .filter(
              (v) =>
                !(
                  v.length <= (f.maxLength ?? Infinity) &&
                  new RegExp(`^[${f.validChars ?? '\\s\\S'}]*$`, 'u').test(v) &&
                  v.length >= (f.minLength ?? 0)
                ),
            )
            .map((v) => ({
              label: `bad string ${name}`,
              body: JSON.stringify({ ...c.body, [name]: v }),
            })),
        ),
      );
    if (required.length > 0)
      defects.push(
        fc.constantFrom(...required).map((name) => {
          const body: Record<string, unknown> = { ...c.body };
          delete body[name];
          return { label: `missing ${name}`, body: JSON.stringify(body) };
        }),
      );
    return fc.oneof(...defects).map((d) => ({
      method: 'POST',
      path: c.path,
      headers: { ...JSON_TYPE, ...d.headers },
      body: d.body,
      as: c.as,
      label: `create ${c.type}: ${d.label}`,
    }));
  });

  const ACTION_NAMES = [
    'start',
    'stop',
    'restart',
    'attach',
    'detach',
    'grow',
    'snapshot',
    'restore',
    'maintenance',
    'activate',
    'remove',
    'delete',
  ];

  /** Actions, updates and deletes on Alice's own resources that must be refused. */
  const refusedWrite: fc.Arbitrary<Req> = fc
    .oneof(
      fc
        .string({ maxLength: 12 })
        .filter((a) => !ACTION_NAMES.includes(a))
        .map((a) => ({
          method: 'POST',
          path: `/v1/virtualmachines/${own.vm}?action=${encodeURIComponent(a)}`,
          label: `unknown action ${a}`,
        })),
      fc.constantFrom('start', 'attach', 'grow').map((a) => ({
        method: 'POST',
        path: `/v1/virtualmachines/${own.vm}?action=${a}`,
        label: `unavailable action ${a}`,
      })),
      fc
        .oneof(fc.integer({ max: 10 }), fc.integer({ min: 1230 }), fc.string(), fc.constant(null))
        .map((v) => ({
          method: 'POST',
          path: `/v1/volumes/${own.volume}?action=grow`,
          body: JSON.stringify({ sizeGb: v }),
          label: `grow to ${String(v)}`,
        })),
      fc
        .oneof(
          fc.constant(theirs.vm),
          fc.constant(own.vm),
          fc.string().map((s) => `vm-${s}`),
        )
        .map((id) => ({
          method: 'POST',
          path: `/v1/volumes/${own.volume}?action=attach`,
          body: JSON.stringify({ virtualMachineId: id }),
          // Alice's VM is running: attach needs it stopped; Bob's is not hers; others do not exist.
          label: `attach to ${id}`,
        })),
      fc.string().map((s) => ({
        method: 'POST',
        path: `/v1/volumes/${own.volume}?action=restore`,
        body: JSON.stringify({ snapshotId: `snap-${s}x` }),
        label: 'restore a snapshot that is not the latest',
      })),
      fc.integer({ min: 1, max: 5 }).map((d) => ({
        method: 'POST',
        path: `/v1/virtualmachines/${own.vm}?action=stop`,
        body: JSON.stringify({ rev: -d }),
        label: 'negative rev',
      })),
      fc.integer({ min: 1, max: 1000 }).map((d) => ({
        method: 'POST',
        path: `/v1/virtualmachines/${own.vm}?action=stop`,
        headers: { 'if-match': `"${1000 + d}"` },
        label: 'stale If-Match',
      })),
      fc.integer({ min: 100, max: 1000 }).map((rev) => ({
        method: 'DELETE',
        path: `/v1/virtualmachines/${own.vm}`,
        body: JSON.stringify({ rev }),
        label: 'delete with stale rev',
      })),
      fc.constant({
        method: 'DELETE',
        path: `/v1/volumes/${own.rootVolume}`,
        label: 'delete a root volume',
      }),
      fc
        .constantFrom<[string, unknown]>(
          ['vcpus', 7],
          ['id', 'vm-00000000'],
          ['state', 'stopped'],
          ['imageId', 'img-00000002'],
          ['hostId', null],
          ['links', {}],
          ['rev', 'x'],
        )
        .map(([k, v]) => ({
          method: 'PUT',
          path: `/v1/virtualmachines/${own.vm}`,
          body: JSON.stringify({ [k]: v }),
          label: `PUT ${k}`,
        })),
      fc
        .string({ minLength: 1, maxLength: 8 })
        .filter((m) => !['GET', 'HEAD', 'POST', 'PUT', 'DELETE'].includes(m.toUpperCase()))
        .map((m) => ({
          method: 'POST',
          path: `/v1/virtualmachines/${own.vm}?_method=${encodeURIComponent(m)}`,
          label: `_method=${m}`,
        })),
    )
    .map((r) => ({
      method: r.method,
      path: r.path,
      headers: { ...JSON_TYPE, ...('headers' in r ? r.headers : {}) },
      body: 'body' in r && typeof r.body === 'string' ? r.body : '',
      as: alice,
      label: r.label,
    }));

  /** Requests on Bob's resources by Alice, and on ids that do not exist. */
  const foreignOrMissing: fc.Arbitrary<Req> = fc
    .tuple(
      fc.oneof(
        fc.constantFrom(
          `/v1/virtualmachines/${theirs.vm}`,
          `/v1/volumes/${theirs.volume}`,
          `/v1/accounts/${w.admin.accountId}`,
        ),
        fc
          .string({ minLength: 1, maxLength: 40 })
          .map((s) => `/v1/virtualmachines/${encodeURIComponent(s)}`),
        fc
          .string({ minLength: 1, maxLength: 40 })
          .map((s) => `/v1/volumes/vol-${encodeURIComponent(s)}`),
      ),
      fc.constantFrom('GET', 'PUT', 'DELETE', 'POST'),
      fc.constantFrom('', '?action=stop', '?action=attach', '?action=start'),
      fc.constantFrom(
        '',
        '{}',
        JSON.stringify({ virtualMachineId: 'vm-1' }),
        JSON.stringify({ name: 'x' }),
      ),
    )
    .map(([path, method, query, body]) => ({
      method,
      path: `${path}${query}`,
      headers: JSON_TYPE,
      body,
      as: alice,
      label: `${method} ${path}${query} as alice`,
    }));

  /** Any request — even a valid one — with missing, malformed or wrong credentials. */
  const badCredentials: fc.Arbitrary<Req> = fc
    .tuple(
      fc.oneof(
        fc.constant<string | undefined>(undefined),
        fc.string({ maxLength: 40 }),
        fc
          .tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }))
          .map(([a, s]) => basic(a, s)),
        fc
          .tuple(fc.constantFrom(0, 1, 2), fc.string({ minLength: 1, maxLength: 5 }))
          .map(([i, extra]) => {
            const c = [w.admin, alice, bob][i]!;
            return basic(c.accessKey, c.secretKey + extra);
          }),
        fc.constantFrom(0, 1, 2).map((i) => {
          const c = [w.admin, alice, bob][i]!;
          return basic(
            c.accessKey,
            bob.secretKey === c.secretKey ? alice.secretKey : bob.secretKey,
          );
        }),
      ),
      fc.constantFrom(...[0, 1, 2, 3, 4, 5]),
    )
    .map(([authorization, i]) => {
      const c = creates()[i]!;
      return {
        method: 'POST',
        path: c.path,
        headers: { ...JSON_TYPE, ...(authorization === undefined ? {} : { authorization }) },
        body: JSON.stringify(c.body),
        as: null,
        label: `valid create of ${c.type} with credentials ${String(authorization)}`,
      };
    });

  /** Odd methods and junk query strings and paths, with valid credentials. */
  const oddRequests: fc.Arbitrary<Req> = fc
    .oneof(
      fc
        .tuple(
          fc.oneof(
            fc.constantFrom('PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'get', 'head', 'Get'),
            fc
              .string({ minLength: 1, maxLength: 10 })
              .filter((m) => !['POST', 'PUT', 'DELETE'].includes(m.toUpperCase())),
          ),
          fc.constantFrom(
            '/v1',
            '/v1/volumes',
            `/v1/volumes/${own.volume}`,
            '/v1/schemas',
            `/v1/virtualmachines/${own.vm}/volumes`,
          ),
        )
        .map(([method, path]) => ({ method, path, label: `${method} ${path}` })),
      fc
        .array(fc.tuple(fc.string({ maxLength: 15 }), fc.string({ maxLength: 15 })), {
          maxLength: 5,
        })
        .chain((pairs) =>
          fc
            .constantFrom(
              '/v1/volumes',
              '/v1/virtualmachines',
              `/v1/virtualmachines/${own.vm}/volumes`,
              '/v1/images',
            )
            .map((path) => ({
              method: 'GET',
              path: `${path}?${new URLSearchParams(pairs).toString()}`,
              label: `GET ${path} with junk query`,
            })),
        ),
      fc
        .webPath()
        .map((p) => ({ method: 'GET', path: p.startsWith('/') ? p : `/${p}`, label: `GET ${p}` })),
    )
    .chain((r) =>
      fc
        .constantFrom<Record<string, string>>(
          {},
          { accept: '*/*', 'user-agent': 'Mozilla/5.0' },
          { accept: 'application/json' },
        )
        .map((headers) => ({ ...r, headers, body: '', as: alice })),
    );

  /** Valid writes sent by a browser on another site, or with a method override from one. */
  const hostileBrowser: fc.Arbitrary<Req> = fc
    .tuple(
      fc.constantFrom(...creates().slice(0, 4)),
      fc.constantFrom<Record<string, string>>(
        { origin: 'https://evil.example' },
        { origin: 'null' },
        { origin: 'http://api.test.evil.example' },
        { referer: 'https://evil.example/page' },
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
      ),
      fc.boolean(),
    )
    .chain(([c, browser, asForm]) =>
      fc.oneof(
        fc.constant({
          method: 'POST',
          path: c.path,
          headers: asForm
            ? { ...browser, 'content-type': 'application/x-www-form-urlencoded' }
            : { ...browser, ...JSON_TYPE },
          body: asForm
            ? new URLSearchParams(c.body as Record<string, string>).toString()
            : JSON.stringify(c.body),
          as: c.as,
          label: `cross-site POST ${c.path} ${JSON.stringify(browser)}`,
        }),
        fc.constantFrom('DELETE', 'PUT', 'delete').map((m) => ({
          method: 'POST',
          path: `/v1/virtualmachines/${own.vm}?_method=${m}`,
          headers: { ...browser, 'content-type': 'application/x-www-form-urlencoded' },
          body: 'name=x',
          as: alice,
          label: `_method=${m} from ${JSON.stringify(browser)}`,
        })),
        fc.constant({
          method: 'DELETE',
          path: `/v1/volumes/${own.volume}`,
          headers: browser,
          body: '',
          as: alice,
          label: `cross-site DELETE ${JSON.stringify(browser)}`,
        }),
      ),
    );

  /** LIKE patterns of every shape up to past the length bound: answered, and quickly. */
  const likeFilters: fc.Arbitrary<Req> = fc
    .tuple(
      fc.string({ unit: fc.constantFrom('%', '_', '\\', 'a', '-', 'v'), maxLength: 1100 }),
      fc.constantFrom('name_like', 'name_notlike', 'id_like'),
      fc.constantFrom('/v1/volumes', '/v1/virtualmachines', '/v1/snapshots'),
    )
    .map(([pattern, param, path]) => ({
      method: 'GET',
      path: `${path}?${param}=${encodeURIComponent(pattern)}`,
      headers: {},
      body: '',
      as: alice,
      label: `GET ${path} ${param} of ${pattern.length} characters`,
    }));

  return {
    malformedCreate,
    refusedWrite,
    foreignOrMissing,
    badCredentials,
    oddRequests,
    hostileBrowser,
    likeFilters,
  };
}

/** Requests of the main property; 100,000 in the slow lane (`npm run fuzz:api`). */
const RUNS = Number(process.env['CLOUDBED_API_FUZZ_RUNS'] ?? 400);
const SLOW_LANE = RUNS > 400;
/** What the requests got: statuses, and the slowest answer (reported, checked in the slow lane). */
const seen = { statuses: new Map<number, number>(), slowestMs: 0, slowest: '', requests: 0 };

// ---------------------------------------------------------------------------------------------
// The property

async function snapshotOfStore(): Promise<string> {
  const events = await w.store.readAll(0, 1_000_000);
  const rows = [];
  for (const type of ['account', 'apiKey', 'host', 'virtualMachine', 'volume', 'snapshot', 'usage'])
    rows.push(...(await w.store.list({ type })));
  return JSON.stringify({ events, rows });
}

async function send(r: Req) {
  const headers: Record<string, string> = { ...r.headers };
  if (r.as !== null) headers['authorization'] = basic(r.as.accessKey, r.as.secretKey);
  const started = performance.now();
  const response = await w.api.handle({
    method: r.method,
    url: `http://api.test${r.path}`,
    headers,
    body: r.body,
  });
  const ms = performance.now() - started;
  seen.requests++;
  seen.statuses.set(response.status, (seen.statuses.get(response.status) ?? 0) + 1);
  if (ms > seen.slowestMs) {
    seen.slowestMs = ms;
    seen.slowest = r.label;
  }
  return response;
}

async function checkRefused(r: Req, expectStatus?: (status: number) => boolean): Promise<void> {
  const events = (await w.store.readAll(0, 1_000_000)).length;
  const published = w.bus.published.length;
  const response = await send(r);
  expect(response.status, `${r.label}: ${response.body.slice(0, 300)}`).toBeLessThan(500);
  expect(response.status, `${r.label}: ${response.body.slice(0, 300)}`).toBeGreaterThanOrEqual(
    ['GET', 'HEAD', 'OPTIONS'].includes(r.method.toUpperCase()) ? 200 : 400,
  );
  if (expectStatus !== undefined)
    expect(expectStatus(response.status), `${r.label}: ${response.status}`).toBe(true);
  expect((await w.store.readAll(0, 1_000_000)).length, r.label).toBe(events);
  expect(w.bus.published.length, r.label).toBe(published);
}

describe('malformed requests', () => {
  it('the checker sees a valid write (control)', async () => {
    const before = await snapshotOfStore();
    const w2 = await createWorld({ seed: 12 });
    const n = (await w2.store.readAll(0, 1000)).length;
    const r = await w2.call('POST', '/v1/volumes', { body: { sizeGb: 1 } });
    expect(r.status).toBe(202);
    expect((await w2.store.readAll(0, 1000)).length).toBeGreaterThan(n);
    expect(await snapshotOfStore()).toBe(before);
  });

  it('never answer 5xx and never change state', { timeout: 120_000 + RUNS * 10 }, async () => {
    const a = arbitraries();
    const before = await snapshotOfStore();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          a.malformedCreate,
          a.refusedWrite,
          a.foreignOrMissing,
          a.oddRequests,
          a.hostileBrowser,
          a.likeFilters,
        ),
        (r) => checkRefused(r),
      ),
      { numRuns: RUNS },
    );
    await fc.assert(
      fc.asyncProperty(a.badCredentials, (r) => checkRefused(r, (s) => s === 401)),
      { numRuns: Math.ceil(RUNS / 4) },
    );
    expect(await snapshotOfStore()).toBe(before);
    if (SLOW_LANE) {
      const statuses = [...seen.statuses].sort(([x], [y]) => x - y);
      process.stdout.write(
        `api fuzz: ${seen.requests} requests, 0 answered 5xx, no state changed; statuses ${statuses
          .map(([status, n]) => `${status}×${n}`)
          .join(' ')}; slowest ${seen.slowestMs.toFixed(1)} ms (${seen.slowest})\n`,
      );
      // Wall time is judged here only, in the slow lane: a hang is a failure of its own.
      expect(seen.slowestMs, seen.slowest).toBeLessThan(5_000);
    }
  });

  it('refuse malformed creates with a 4xx error body naming the problem', async () => {
    const { malformedCreate } = arbitraries();
    await fc.assert(
      fc.asyncProperty(malformedCreate, async (r) => {
        const response = await send(r);
        expect([403, 413, 415, 422], `${r.label}: ${response.body.slice(0, 200)}`).toContain(
          response.status,
        );
        const body = JSON.parse(response.body) as { type: string; code: string; status: number };
        expect(body.type).toBe('error');
        expect(body.status).toBe(response.status);
      }),
      { numRuns: 200 },
    );
  });
});
