/**
 * Plays a scenario's workload against the API as clients would: plain calls at their times (after
 * polling a resource until it reaches a state, for a `waitFor` step), and generators — `repeat`
 * and Poisson `arrivals` with a weighted mix — that schedule one call after another as world
 * events, with pools of the resources they created to draw targets from.
 *
 * Every draw comes from the PRNG handed in (the run's `workload` fork), forked again per generator
 * entry and per purpose (arrival times, mix choices, pool picks), so adding a generator or changing
 * a mix leaves the other draws as they were, and scenarios without generators draw nothing. The
 * driver reaches the world through {@link ClientWorld} only: the run wires it onto the simulated
 * cloud, and tests onto a fake API.
 */
import type { ApiResponse } from '../control/api/types.ts';
import { COLLECTION, resourceTypeOfId } from '../model/resources.ts';
import { assert } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import type { TraceRecord } from './trace.ts';
import {
  substitute,
  type ArrivalsGenerator,
  type CallTemplate,
  type GeneratedCall,
  type RepeatGenerator,
  type WorkloadEntry,
  type WorkloadStep,
} from './scenario.ts';

/** One request as a client sends it. */
export interface ClientRequest {
  readonly as: string;
  readonly method: CallTemplate['method'];
  readonly path: string;
  /** The request body, undefined for none. */
  readonly body: unknown;
}

/** What the driver needs of the world. */
export interface ClientWorld {
  /** Runs `run` as a world event `delayMs` from now. */
  schedule(delayMs: number, label: string, run: () => void): void;
  /** Virtual time now, in ms. */
  nowMs(): number;
  /** Sends a request; null when no answer came (the client gave up). */
  send(request: ClientRequest): Promise<ApiResponse | null>;
  /** Adds an entry to the run's trace. */
  record(entry: TraceRecord): void;
  /** Tells the checkers that the API acknowledged a write. */
  acknowledge(ack: { stream: string; version: number; what: string }): void;
}

/** Counts of what the workload did, for the run's summary. */
export interface WorkloadStats {
  /** Calls made by generators. */
  readonly generated: number;
  /** Calls not made because a placeholder's request had failed. */
  readonly skipped: number;
  /** Generated calls not made because the pool they draw from was empty. */
  readonly poolEmpty: number;
  /** `waitFor` steps whose resource did not reach its state in time. */
  readonly waitTimeouts: number;
}

/** The workload as the run sees it. */
export interface WorkloadProgress {
  /** True once every call has been answered (or timed out, or skipped). */
  done(): boolean;
  /** A broken expectation of the workload (`expectStatus`, a required `waitFor`), if any. */
  violation(): string | undefined;
  stats(): WorkloadStats;
}

/** A named pool of resource ids, in the order they joined (draws index into it). */
class Pool {
  private readonly ids: string[] = [];

  get size(): number {
    return this.ids.length;
  }

  add(id: string): void {
    this.ids.push(id);
  }

  /** A member drawn uniformly; with `remove`, it leaves the pool (the last member takes its slot). */
  draw(random: Prng, remove: boolean): string {
    const at = random.int(0, this.ids.length - 1);
    const id = this.ids[at] as string;
    if (remove) {
      const last = this.ids.pop() as string;
      if (at < this.ids.length) this.ids[at] = last;
    }
    return id;
  }
}

/** Schedules every workload entry; `random` is the run's `workload` fork. */
export function scheduleWorkload(
  world: ClientWorld,
  entries: readonly WorkloadEntry[],
  random: Prng,
): WorkloadProgress {
  const saved = new Map<string, string>();
  const pools = new Map<string, Pool>();
  const poolNamed = (name: string): Pool => {
    let pool = pools.get(name);
    if (pool === undefined) pools.set(name, (pool = new Pool()));
    return pool;
  };
  let pending = 0;
  let broken: string | undefined;
  const counts = { generated: 0, skipped: 0, poolEmpty: 0, waitTimeouts: 0 };

  /**
   * Makes one call, counted in `pending` by the caller, and settles it: expectations,
   * acknowledgement, saved names, pools. `locals`
   * are the generator's own placeholders (`{i}`, the pool's member); `tag` adds the call's index to trace
   * records of generated calls (plain calls' records are as they always were).
   */
  const call = (
    template: CallTemplate,
    index: number,
    locals: ReadonlyMap<string, string> | undefined,
    tag: { readonly call: number } | undefined,
    onAnswer?: (id: string) => void,
  ): void => {
    const label = tag === undefined ? `workload[${index}]` : `workload[${index}]#${tag.call}`;
    void send(template, index, locals, tag).then((outcome) => {
      pending--;
      if (outcome.response === null) return;
      const { response } = outcome;
      if (template.expectStatus !== undefined && response.status !== template.expectStatus) {
        broken ??= `${label} ${template.method} ${outcome.path}: expected status ${template.expectStatus}, got ${response.status}: ${response.body.slice(0, 300)}`;
      }
      if (response.status >= 200 && response.status < 300 && template.method !== 'GET') {
        const body = parseJson(response.body);
        const id = typeof body?.['id'] === 'string' ? body['id'] : undefined;
        const rev = typeof body?.['rev'] === 'number' ? body['rev'] : undefined;
        if (id !== undefined && rev !== undefined) {
          world.acknowledge({
            stream: id,
            version: rev,
            what: `${label} ${template.method} ${outcome.path}`,
          });
        }
        if (id !== undefined) {
          if (template.save !== undefined) saved.set(resolve(template.save, locals), id);
          onAnswer?.(id);
        }
      }
    });
  };

  async function send(
    template: CallTemplate,
    index: number,
    locals: ReadonlyMap<string, string> | undefined,
    tag: { readonly call: number } | undefined,
  ): Promise<{ path: string; response: ApiResponse | null }> {
    const missing: string[] = [];
    const lookup = locals === undefined ? saved : withLocals(locals);
    const path = substitute(template.path, lookup, missing) as string;
    const body = substitute(template.body, lookup, missing);
    if (missing.length > 0) {
      counts.skipped++;
      world.record({
        kind: 'client.skip',
        step: index,
        ...tag,
        reason: `{${missing[0]}} was never saved (its request failed)`,
      });
      return { path, response: null };
    }
    const response = await world.send({ as: template.as, method: template.method, path, body });
    world.record({
      kind: 'client.response',
      step: index,
      ...tag,
      request: `${template.method} ${path}`,
      status: response?.status ?? 'no-answer',
    });
    return { path, response };
  }

  const withLocals = (locals: ReadonlyMap<string, string>) => ({
    get: (name: string) => locals.get(name) ?? saved.get(name),
  });
  const resolve = (name: string, locals: ReadonlyMap<string, string> | undefined): string =>
    locals === undefined ? name : (substitute(name, withLocals(locals), []) as string);

  /** One generated call: draws its pool member, if it targets one, then calls. */
  const generate = (
    generated: GeneratedCall,
    index: number,
    i: number,
    picks: Prng | undefined,
  ): void => {
    const locals = new Map([['i', String(i)]]);
    const { pool } = generated;
    if (pool !== undefined && pool.use !== 'add') {
      const members = poolNamed(pool.name);
      if (members.size === 0) {
        counts.poolEmpty++;
        world.record({
          kind: 'client.skip',
          step: index,
          call: i,
          reason: `pool ${pool.name} is empty`,
        });
        return;
      }
      assert(picks !== undefined, 'a generator that draws from a pool has a pick stream');
      locals.set(pool.name, members.draw(picks, pool.use === 'take'));
    }
    counts.generated++;
    pending++;
    call(
      generated,
      index,
      locals,
      { call: i },
      pool?.use === 'add' ? (id) => poolNamed(pool.name).add(id) : undefined,
    );
  };

  const repeat = (entry: RepeatGenerator, fork: Prng): void => {
    pending++; // until the last call is made
    const picks = fork.fork('pick');
    const runWith = (i: number): void => {
      if (i + 1 < entry.count) {
        world.schedule(entry.everyMs, 'client.generate', () => runWith(i + 1));
      } else {
        pending--;
      }
      generate(entry.call, entry.index, i, picks);
    };
    world.schedule(entry.atMs - world.nowMs(), 'client.generate', () => runWith(0));
  };

  const arrivals = (entry: ArrivalsGenerator, fork: Prng): void => {
    pending++; // until the arrivals stop
    const gaps = fork.fork('arrivals');
    const choices = fork.fork('mix');
    const picks = fork.fork('pick');
    const meanGapMs = 60_000 / entry.ratePerMinute;
    const endMs = entry.atMs + entry.forMs;
    const totalWeight = entry.mix.reduce((sum, op) => sum + op.weight, 0);
    // Arrival times accumulate unrounded; each is scheduled at its whole millisecond.
    let arrivalMs = entry.atMs + gaps.exponential(meanGapMs);
    const scheduleNext = (i: number): void => {
      if (arrivalMs >= endMs) {
        pending--;
        return;
      }
      world.schedule(Math.round(arrivalMs) - world.nowMs(), 'client.generate', () => {
        arrivalMs += gaps.exponential(meanGapMs);
        scheduleNext(i + 1);
        generate(chooseOperation(entry, totalWeight, choices), entry.index, i, picks);
      });
    };
    scheduleNext(0);
  };

  const step = (entry: WorkloadStep): void => {
    if (entry.waitFor === undefined) {
      pending++;
      world.schedule(entry.atMs, 'client.request', () =>
        call(entry, entry.index, undefined, undefined),
      );
      return;
    }
    pending++; // until the call is made or the wait times out
    const { waitFor } = entry;
    const deadlineMs = entry.atMs + waitFor.withinMs;
    const poll = (): void => {
      const missing: string[] = [];
      const target = substitute(waitFor.resource, saved, missing) as string;
      if (missing.length > 0) {
        pending--;
        counts.skipped++;
        world.record({
          kind: 'client.skip',
          step: entry.index,
          reason: `{${missing[0]}} was never saved (its request failed)`,
        });
        return;
      }
      const path = resourcePath(target);
      void world.send({ as: entry.as, method: 'GET', path, body: undefined }).then((response) => {
        const body = response?.status === 200 ? parseJson(response.body) : undefined;
        const state = typeof body?.['state'] === 'string' ? body['state'] : undefined;
        if (state === waitFor.state) {
          // Still pending: the call's answer settles it.
          world.record({ kind: 'client.waited', step: entry.index, state });
          call(entry, entry.index, undefined, undefined);
          return;
        }
        if (world.nowMs() + waitFor.everyMs > deadlineMs) {
          pending--;
          counts.waitTimeouts++;
          const reason = `timeout: ${path} not ${waitFor.state} within ${waitFor.withinMs} ms (last: ${state ?? response?.status ?? 'no answer'})`;
          world.record({ kind: 'client.skip', step: entry.index, reason });
          if (waitFor.required)
            broken ??= `workload[${entry.index}] ${entry.method} ${entry.path}: waitFor ${reason}`;
          return;
        }
        world.schedule(waitFor.everyMs, 'client.poll', poll);
      });
    };
    world.schedule(entry.atMs, 'client.poll', poll);
  };

  for (const entry of entries) {
    switch (entry.kind) {
      case 'call':
        step(entry);
        break;
      case 'repeat':
        repeat(entry, random.fork(`entry-${entry.index}`));
        break;
      case 'arrivals':
        arrivals(entry, random.fork(`entry-${entry.index}`));
        break;
      default: {
        const never: never = entry;
        throw new Error(`unknown workload entry ${String(never)}`);
      }
    }
  }
  return {
    done: () => pending === 0,
    violation: () => broken,
    stats: () => ({ ...counts }),
  };
}

/** One operation of a mix, drawn by weight: an integer in [1, total] falls in one weight's span. */
export function chooseOperation(
  entry: Pick<ArrivalsGenerator, 'mix'>,
  totalWeight: number,
  random: Prng,
): GeneratedCall {
  let ticket = random.int(1, totalWeight);
  for (const op of entry.mix) {
    ticket -= op.weight;
    if (ticket <= 0) return op.call;
  }
  throw new Error('a mix draw fell past the last weight');
}

/** The GET path of `resource`: a `/v1/…` path as it is, an id through its collection. */
function resourcePath(resource: string): string {
  if (resource.startsWith('/')) return resource;
  const type = resourceTypeOfId(resource);
  return type === null ? `/v1/unknown/${resource}` : `/v1/${COLLECTION[type]}/${resource}`;
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object'
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
