/**
 * The `workload` section of a scenario: plain API calls at given times, and generators that
 * describe load instead of listing calls — `repeat` (a call N times at a fixed interval, `{i}` its
 * index) and `arrivals` (calls at the times of a Poisson process, one template or a weighted `mix`
 * of them). Calls made by generators can fill and draw from named pools of resources they created.
 * A plain call may `waitFor` a resource to reach a state first, as a polling client would.
 *
 * Validated here with the shapes of src/lib/shape.ts (errors name the field; the file and line are
 * added by the parser) and compiled to {@link WorkloadEntry} values with absolute times. Nothing
 * random happens here: a generator's draws are made when the run plays it
 * (src/sim/workload-driver.ts), from a fork of the run's own seed.
 */
import {
  bool,
  doc,
  duration,
  int,
  json,
  list,
  num,
  object,
  optional,
  required,
  ShapeError,
  str,
  variant,
  type FieldPath,
} from '../lib/shape.ts';

/** HTTP methods a workload call may use. */
export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** One API call as written: made once by a plain step, many times by a generator. */
export interface CallTemplate {
  /** The account that makes the call: one of topology.accounts, or `admin`. */
  readonly as: string;
  readonly method: Method;
  /** Path with `{name}` placeholders (saved ids; in generators also `{i}` and the pool's name). */
  readonly path: string;
  readonly body: unknown;
  /** Saves the `id` of a successful answer under this name (with `{i}` in generators). */
  readonly save: string | undefined;
  readonly expectStatus: number | undefined;
}

/**
 * How a generated call uses a pool of resource ids: `add` puts the id its answer creates in the
 * pool; `pick` targets a member drawn at random; `take` draws one and removes it (a delete).
 */
export type PoolUse = 'add' | 'pick' | 'take';

/** A call a generator makes. */
export interface GeneratedCall extends CallTemplate {
  readonly pool: { readonly name: string; readonly use: PoolUse } | undefined;
}

/** What a plain call waits for before it is made. */
export interface WaitFor {
  /** `{name}` (a saved id; its collection follows from the id's prefix) or a `/v1/…` path. */
  readonly resource: string;
  /** The `state` the resource's GET must show. */
  readonly state: string;
  /** Give up this long after the step's time. */
  readonly withinMs: number;
  /** Poll interval: the next GET is sent this long after the previous one answered. */
  readonly everyMs: number;
  /** A timeout breaks the run (`correctness`, like an `expectStatus` mismatch) instead of skipping the call. */
  readonly required: boolean;
}

/** One API call of the workload, at an absolute virtual time. */
export interface WorkloadStep extends CallTemplate {
  readonly kind: 'call';
  /** Position in the scenario's workload list. */
  readonly index: number;
  readonly atMs: number;
  readonly waitFor: WaitFor | undefined;
}

/** `count` calls, `everyMs` apart, the first at `atMs`; `{i}` runs from 0 to count − 1. */
export interface RepeatGenerator {
  readonly kind: 'repeat';
  readonly index: number;
  readonly atMs: number;
  readonly count: number;
  readonly everyMs: number;
  readonly call: GeneratedCall;
}

/**
 * Calls at the arrival times of a Poisson process of `ratePerMinute` from `atMs` for `forMs`; each
 * arrival makes one call of `mix`, drawn by weight; `{i}` counts the arrivals from 0.
 */
export interface ArrivalsGenerator {
  readonly kind: 'arrivals';
  readonly index: number;
  readonly atMs: number;
  readonly forMs: number;
  readonly ratePerMinute: number;
  readonly mix: readonly { readonly weight: number; readonly call: GeneratedCall }[];
}

/** One entry of the workload: a plain call or a generator. */
export type WorkloadEntry = WorkloadStep | RepeatGenerator | ArrivalsGenerator;

/** Most calls one generator may make (a `repeat`'s count; an `arrivals`' expected count). */
export const GENERATED_CALLS_MAX = 1_000_000;

/** The virtual time by which an entry has made its last call (or given up waiting). */
export function entryEndMs(entry: WorkloadEntry): number {
  switch (entry.kind) {
    case 'call':
      return entry.atMs + (entry.waitFor?.withinMs ?? 0);
    case 'repeat':
      return entry.atMs + (entry.count - 1) * entry.everyMs;
    case 'arrivals':
      return entry.atMs + entry.forMs;
    default: {
      const never: never = entry;
      return never;
    }
  }
}

/** Names of accounts. */
export const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const NAME_HINT =
  'lowercase letters, digits and dashes (at most 63), starting with a letter or digit';

const REQUEST = /^(GET|POST|PUT|DELETE) \/\S*$/;
const SAVE = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const GENERATED_SAVE = /^[A-Za-z](?:[A-Za-z0-9_-]|\{i\}){0,62}$/;
const POOL = SAVE;
const PLACEHOLDER = /\{([^}]*)\}/g;

/** The fields every call has, plain or generated. */
const callFields = {
  as: optional(
    doc(
      str({ pattern: NAME, patternHint: NAME_HINT }),
      'The account that calls: one of topology.accounts, or admin. Default: the first account.',
    ),
  ),
  request: required(
    doc(
      str({
        pattern: REQUEST,
        patternHint: "'METHOD /path' with METHOD one of GET, POST, PUT, DELETE",
      }),
      "'METHOD /path'; the path may use {name} placeholders.",
    ),
  ),
  body: optional(doc(json(), 'The JSON request body; its strings may use {name} placeholders.')),
  expectStatus: optional(
    doc(
      int({ min: 100, max: 599 }),
      'The status the call must get; another status is a correctness failure.',
    ),
  ),
};

/** When an entry starts. */
const timeFields = {
  at: optional(doc(duration(), "Absolute time of the call (or of a generator's first one).")),
  after: optional(
    doc(duration(), "Time after the previous entry's time (give at or after, not both)."),
  ),
};

/** The fields of a call a generator makes. */
const generatedCallFields = {
  ...callFields,
  save: optional(
    doc(
      str({
        pattern: GENERATED_SAVE,
        patternHint: 'a name of letters, digits, _ and - containing {i}',
      }),
      "Saves each call's new id under this name; must contain {i} (vm{i} saves vm0, vm1, …).",
    ),
  ),
  pool: optional(
    doc(
      str({ pattern: POOL, patternHint: 'a name of letters, digits, _ and -' }),
      'A pool of ids: a POST that does not use {pool} adds the id it creates; a call that uses {pool} targets a member drawn at random (a DELETE removes it).',
    ),
  ),
};

const waitForShape = object({
  resource: required(
    doc(
      str({
        pattern: /^(?:\{[A-Za-z][A-Za-z0-9_-]{0,62}\}|\/v1\/\S+)$/,
        patternHint: 'a saved id such as {web}, or a path such as /v1/virtualmachines/{web}',
      }),
      'The resource to poll: a saved id ({web}) or a /v1/… path.',
    ),
  ),
  state: required(
    doc(
      str({ pattern: /^[a-z][A-Za-z-]{0,62}$/, patternHint: 'a state name such as running' }),
      'The state the resource must reach.',
    ),
  ),
  within: optional(doc(duration({ min: 1 }), 'Give up this long after the step time.'), 300_000),
  every: optional(doc(duration({ min: 1 }), 'Poll interval.'), 1_000),
  required: optional(
    doc(bool(), 'A timeout is a correctness failure of the run instead of a skipped call.'),
    false,
  ),
});

const stepShape = object({
  ...timeFields,
  ...callFields,
  save: optional(
    doc(
      str({ pattern: SAVE, patternHint: 'a name of letters, digits, _ and -' }),
      'Saves the id of a successful answer under this name for later {name} placeholders.',
    ),
  ),
  waitFor: optional(
    doc(waitForShape, 'Make the call only once a resource reaches a state (polling it).'),
  ),
});

const repeatShape = object({
  repeat: required(
    doc(
      object({
        count: required(
          doc(int({ min: 1, max: GENERATED_CALLS_MAX }), 'How many calls; {i} runs from 0.'),
        ),
        every: required(doc(duration({ min: 1 }), 'Time between two calls.')),
      }),
      'Make the call count times, every apart.',
    ),
  ),
  ...timeFields,
  ...generatedCallFields,
});

const mixOperationShape = object({
  weight: required(
    doc(int({ min: 1, max: GENERATED_CALLS_MAX }), 'Relative frequency of this operation.'),
  ),
  ...generatedCallFields,
});

const arrivalsShape = object({
  arrivals: required(
    doc(
      object({
        poisson: required(
          object({
            ratePerMinute: required(
              doc(num({ above: 0, max: 6_000_000 }), 'Mean arrivals per minute.'),
            ),
          }),
        ),
        for: required(doc(duration({ min: 1 }), 'How long arrivals keep coming.')),
      }),
      'Calls at the arrival times of a Poisson process (exponential gaps).',
    ),
  ),
  ...timeFields,
  as: callFields.as,
  request: optional(callFields.request.shape),
  body: callFields.body,
  expectStatus: callFields.expectStatus,
  save: generatedCallFields.save,
  pool: generatedCallFields.pool,
  mix: optional(
    doc(
      list(mixOperationShape, { minLength: 1, maxLength: 100 }),
      'Operations drawn by weight at each arrival (instead of one request).',
    ),
  ),
});

/** One workload entry: a plain step, or a generator told apart by its `repeat` / `arrivals` key. */
export const workloadEntryShape = variant<
  ReturnType<typeof repeatShape> | ReturnType<typeof arrivalsShape>,
  ReturnType<typeof stepShape>
>({ repeat: repeatShape, arrivals: arrivalsShape }, stepShape);

type RawEntry = ReturnType<typeof workloadEntryShape>;
type RawCall = {
  as?: string | undefined;
  request: string;
  body?: unknown;
  save?: string | undefined;
  expectStatus?: number | undefined;
  pool?: string | undefined;
};

/** Names saved so far: plain names, and the families a generator's `save: vm{i}` makes. */
class SavedNames {
  private readonly names = new Set<string>();
  private readonly families: { readonly pattern: RegExp; readonly count: number }[] = [];

  add(name: string): void {
    this.names.add(name);
  }

  /** `template` with `{i}` saves one name per call; `count` calls at most (Infinity: unbounded). */
  addFamily(template: string, count: number): void {
    let first = true;
    const source = template
      .split('{i}')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&'))
      .reduce(
        (out, part) => {
          if (out === undefined) return part;
          const index = first ? '(0|[1-9][0-9]*)' : '\\1';
          first = false;
          return `${out}${index}${part}`;
        },
        undefined as string | undefined,
      );
    this.families.push({ pattern: new RegExp(`^${source ?? ''}$`), count });
  }

  has(name: string): boolean {
    if (this.names.has(name)) return true;
    return this.families.some((family) => {
      const match = family.pattern.exec(name);
      return match !== null && Number(match[1]) < family.count;
    });
  }
}

/** The validated workload: entries with absolute times, and when the last of them ends. */
export interface CompiledWorkload {
  readonly entries: WorkloadEntry[];
  readonly endMs: number;
}

/** Checks what the shapes cannot (times, accounts, placeholders, pools) and sets absolute times. */
export function toWorkload(
  raw: readonly RawEntry[],
  accounts: readonly string[],
): CompiledWorkload {
  const entries: WorkloadEntry[] = [];
  let clock = 0;
  let endMs = 0;
  const saved = new SavedNames();
  const filledPools = new Set<string>();
  raw.forEach((entry, index) => {
    const path: FieldPath = ['workload', index];
    if (entry.at !== undefined && entry.after !== undefined) {
      throw new ShapeError([...path, 'after'], "give either 'at' or 'after', not both");
    }
    const atMs = entry.at ?? clock + (entry.after ?? 0);
    if (atMs < clock)
      throw new ShapeError(
        [...path, 'at'],
        `goes back in time: ${atMs} ms is before the previous step (${clock} ms)`,
      );
    // A generator's time is its start: it runs in the background beside the entries after it.
    clock = atMs;
    const account = (as: string | undefined, where: FieldPath): string => {
      const name = as ?? accounts[0] ?? 'admin';
      if (name !== 'admin' && !accounts.includes(name)) {
        throw new ShapeError(
          [...where, 'as'],
          `names no account of topology.accounts (${accounts.join(', ')}) nor admin`,
        );
      }
      return name;
    };
    let compiled: WorkloadEntry;
    if ('repeat' in entry && entry.repeat !== undefined) {
      const call = generatedCall(entry, path, account(entry.as, path), saved, filledPools);
      if (call.save !== undefined) saved.addFamily(call.save, entry.repeat.count);
      compiled = {
        kind: 'repeat',
        index,
        atMs,
        count: entry.repeat.count,
        everyMs: entry.repeat.every,
        call,
      };
    } else if ('arrivals' in entry && entry.arrivals !== undefined) {
      compiled = arrivals(entry, index, atMs, path, account, saved, filledPools);
    } else {
      const step = entry as ReturnType<typeof stepShape>;
      const call = callTemplate(step, account(step.as, path));
      checkPlaceholders(call, path, (name) => saved.has(name));
      let waitFor: WaitFor | undefined;
      if (step.waitFor !== undefined) {
        const { resource, state, within, every } = step.waitFor;
        checkText(resource, [...path, 'waitFor', 'resource'], (name) => saved.has(name));
        waitFor = {
          resource,
          state,
          withinMs: within ?? 300_000,
          everyMs: every ?? 1_000,
          required: step.waitFor.required === true,
        };
      }
      if (call.save !== undefined) saved.add(call.save);
      compiled = { kind: 'call', index, atMs, ...call, waitFor };
    }
    entries.push(compiled);
    endMs = Math.max(endMs, entryEndMs(compiled));
  });
  return { entries, endMs };
}

function callTemplate(raw: RawCall, as = ''): CallTemplate {
  const [method, target] = raw.request.split(' ') as [Method, string];
  return {
    as,
    method,
    path: target,
    body: raw.body,
    save: raw.save,
    expectStatus: raw.expectStatus,
  };
}

/** A generator's call: placeholders, `{i}` in `save`, and its use of a pool. */
function generatedCall(
  raw: RawCall,
  path: FieldPath,
  as: string,
  saved: SavedNames,
  filledPools: Set<string>,
): GeneratedCall {
  const call = callTemplate(raw, as);
  if (call.save !== undefined && !call.save.includes('{i}')) {
    throw new ShapeError(
      [...path, 'save'],
      `must contain {i} in a generator, so that each call saves its own name (${call.save}{i})`,
    );
  }
  let pool: GeneratedCall['pool'];
  if (raw.pool !== undefined) {
    const name = raw.pool;
    const targets = usesPlaceholder(call, name);
    if (!targets && call.method !== 'POST') {
      throw new ShapeError(
        [...path, 'pool'],
        `a ${call.method} that does not use {${name}} would add what it creates to pool '${name}', but only a POST creates; use {${name}} in the request to target a member`,
      );
    }
    if (targets && !filledPools.has(name)) {
      throw new ShapeError(
        [...path, 'pool'],
        `pool '${name}' is never filled: no generator before this one (or in this mix) adds to it with a POST that does not use {${name}}`,
      );
    }
    pool = { name, use: !targets ? 'add' : call.method === 'DELETE' ? 'take' : 'pick' };
    if (pool.use === 'add') filledPools.add(name);
  }
  checkPlaceholders(call, path, (name) => name === 'i' || name === raw.pool || saved.has(name));
  return { ...call, pool };
}

type ArrivalsRaw = Extract<RawEntry, { arrivals: unknown }>;

function arrivals(
  entry: ArrivalsRaw,
  index: number,
  atMs: number,
  path: FieldPath,
  account: (as: string | undefined, where: FieldPath) => string,
  saved: SavedNames,
  filledPools: Set<string>,
): ArrivalsGenerator {
  const { ratePerMinute } = entry.arrivals.poisson;
  const forMs = entry.arrivals.for;
  const expected = (ratePerMinute * forMs) / 60_000;
  if (expected > GENERATED_CALLS_MAX) {
    throw new ShapeError(
      [...path, 'arrivals', 'poisson', 'ratePerMinute'],
      `makes about ${Math.round(expected)} calls over arrivals.for, more than ${GENERATED_CALLS_MAX}`,
    );
  }
  let raws: { weight: number; call: RawCall; path: FieldPath }[];
  if (entry.mix !== undefined) {
    if (entry.request !== undefined) {
      throw new ShapeError([...path, 'mix'], "give either 'request' or 'mix', not both");
    }
    for (const field of ['body', 'save', 'pool', 'expectStatus'] as const) {
      if (entry[field] !== undefined) {
        throw new ShapeError(
          [...path, field],
          "belongs to each operation of 'mix', not to the arrivals entry",
        );
      }
    }
    raws = entry.mix.map((op, i) => ({
      weight: op.weight,
      call: { ...op, as: op.as ?? entry.as },
      path: [...path, 'mix', i],
    }));
  } else if (entry.request !== undefined) {
    raws = [{ weight: 1, call: { ...entry, request: entry.request }, path }];
  } else {
    throw new ShapeError([...path, 'request'], "is required (or give 'mix')");
  }
  // A mix may fill a pool and draw from it: the pool is filled as the run goes.
  for (const { call } of raws) {
    if (call.pool !== undefined && !usesPlaceholder(callTemplate(call), call.pool))
      filledPools.add(call.pool);
  }
  const mix = raws.map(({ weight, call, path: where }) => ({
    weight,
    call: generatedCall(call, where, account(call.as, where), saved, filledPools),
  }));
  for (const { call } of mix) {
    if (call.save !== undefined) saved.addFamily(call.save, Infinity);
  }
  return { kind: 'arrivals', index, atMs, forMs, ratePerMinute, mix };
}

/** Whether the call's path or body uses `{name}`. */
function usesPlaceholder(call: CallTemplate, name: string): boolean {
  const token = `{${name}}`;
  return (
    call.path.includes(token) || stringsIn(call.body, []).some(([, text]) => text.includes(token))
  );
}

/** Every placeholder of the call's path and body must be known. */
function checkPlaceholders(
  call: CallTemplate,
  path: FieldPath,
  known: (name: string) => boolean,
): void {
  checkText(call.path, [...path, 'request'], known);
  for (const [where, text] of stringsIn(call.body, [...path, 'body']))
    checkText(text, where, known);
}

function checkText(text: string, where: FieldPath, known: (name: string) => boolean): void {
  for (const match of text.matchAll(PLACEHOLDER)) {
    const name = match[1] ?? '';
    if (!known(name)) {
      const hint = name === 'i' ? ' ({i} is defined only in repeat and arrivals generators)' : '';
      throw new ShapeError(where, `uses {${name}} before any earlier step saved it${hint}`);
    }
  }
}

/** Every string inside a JSON value, with its path. */
export function stringsIn(value: unknown, path: FieldPath): [FieldPath, string][] {
  if (typeof value === 'string') return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringsIn(v, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => stringsIn(v, [...path, k]));
  }
  return [];
}
