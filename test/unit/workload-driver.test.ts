// Goal: the workload generators make the calls the scenario describes, deterministically — `repeat`
// at its interval with `{i}` substituted, Poisson `arrivals` drawn from the seed (same seed, same
// calls; another seed, other calls), a mix drawn by weight, pools filled by creates, drawn from by
// the other operations and emptied by deletes, and `waitFor` steps that poll until a state or time
// out (a skip, or a broken expectation when required).
// Method: the driver (src/sim/workload-driver.ts) runs against a fake world — a (time, seq) event
// queue and an API that answers at once, creating ids in order and reporting states from a script —
// so each call it makes can be read back; tolerances on counts are a few standard deviations of
// the draw, computed from the count.
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/lib/prng.ts';
import { toScenario, type WorkloadEntry } from '../../src/sim/scenario.ts';
import {
  chooseOperation,
  scheduleWorkload,
  type ClientRequest,
  type ClientWorld,
  type WorkloadProgress,
} from '../../src/sim/workload-driver.ts';
import type { TraceRecord } from '../../src/sim/trace.ts';

interface Sent extends ClientRequest {
  readonly atMs: number;
}

/** A fake world: events by (time, seq); the API creates `vm-<n>` ids and answers GETs from `state`. */
class FakeWorld implements ClientWorld {
  nowMsValue = 0;
  readonly sent: Sent[] = [];
  readonly records: TraceRecord[] = [];
  private readonly queue: { atMs: number; seq: number; run: () => void }[] = [];
  private seq = 0;
  private nextId = 0;
  /** The state a GET reports for a path, by time. */
  state: (path: string, atMs: number) => string = () => 'creating';

  schedule(delayMs: number, _label: string, run: () => void): void {
    expect(delayMs).toBeGreaterThanOrEqual(0);
    this.queue.push({ atMs: this.nowMsValue + delayMs, seq: this.seq++, run });
  }

  nowMs(): number {
    return this.nowMsValue;
  }

  send(request: ClientRequest) {
    this.sent.push({ ...request, atMs: this.nowMsValue });
    if (request.method === 'GET') {
      const state = this.state(request.path, this.nowMsValue);
      return Promise.resolve({ status: 200, headers: {}, body: JSON.stringify({ state }) });
    }
    const id =
      request.method === 'POST' && !request.path.includes('?')
        ? `vm-${this.nextId++}`
        : request.path.split('/')[3];
    return Promise.resolve({ status: 202, headers: {}, body: JSON.stringify({ id, rev: 1 }) });
  }

  record(entry: TraceRecord): void {
    this.records.push(entry);
  }

  acknowledge(): void {}

  /** Runs every event in (time, seq) order, letting the answers settle after each. */
  async run(): Promise<void> {
    for (;;) {
      this.queue.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
      const next = this.queue.shift();
      if (next === undefined) return;
      this.nowMsValue = next.atMs;
      next.run();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
  }
}

function workloadOf(workload: unknown[]): readonly WorkloadEntry[] {
  return toScenario({ name: 't', topology: { accounts: ['alice'] }, workload }).workload;
}

async function play(
  workload: unknown[],
  seed = 1,
  setup?: (world: FakeWorld) => void,
): Promise<{ world: FakeWorld; progress: WorkloadProgress }> {
  const world = new FakeWorld();
  setup?.(world);
  const progress = scheduleWorkload(world, workloadOf(workload), new Prng(seed).fork('workload'));
  await world.run();
  expect(progress.done()).toBe(true);
  return { world, progress };
}

const createVm = {
  request: 'POST /v1/virtualmachines',
  body: { name: 'vm-{i}', imageId: 'img-00000001' },
};

const loadMix = (rate: number, forTime: string) => ({
  at: '1s',
  arrivals: { poisson: { ratePerMinute: rate }, for: forTime },
  mix: [
    { weight: 60, ...createVm, pool: 'vms' },
    { weight: 20, request: 'POST /v1/virtualmachines/{vms}?action=stop', pool: 'vms' },
    { weight: 10, request: 'DELETE /v1/virtualmachines/{vms}', pool: 'vms' },
    { weight: 10, request: 'GET /v1/virtualmachines/{vms}', pool: 'vms' },
  ],
});

describe('repeat', () => {
  it('makes count calls every interval from its start, {i} in path, body and save', async () => {
    const { world, progress } = await play([
      {
        at: '1s',
        repeat: { count: 5, every: '200ms' },
        request: 'POST /v1/virtualmachines',
        body: { name: 'vm-{i}', tags: ['n{i}'] },
        save: 'vm{i}',
      },
      { at: '3s', request: 'POST /v1/virtualmachines/{vm3}?action=stop' },
    ]);
    expect(world.sent.map((s) => s.atMs)).toEqual([1000, 1200, 1400, 1600, 1800, 3000]);
    expect(world.sent.slice(0, 5).map((s) => s.body)).toEqual(
      [0, 1, 2, 3, 4].map((i) => ({ name: `vm-${i}`, tags: [`n${i}`] })),
    );
    // vm3 saved the id of the fourth create.
    expect(world.sent[5]?.path).toBe('/v1/virtualmachines/vm-3?action=stop');
    expect(progress.stats().generated).toBe(5);
    expect(world.records.filter((r) => r.kind === 'client.response').map((r) => r['call'])).toEqual(
      [0, 1, 2, 3, 4, undefined],
    );
  });
});

describe('arrivals', () => {
  const single = [
    {
      at: '1m',
      arrivals: { poisson: { ratePerMinute: 60 }, for: '100m' },
      request: 'GET /v1/virtualmachines?name=x{i}',
    },
  ];

  it('draws the same calls from the same seed, and other calls from another', async () => {
    const a = (await play(single, 7)).world.sent;
    const b = (await play(single, 7)).world.sent;
    const c = (await play(single, 8)).world.sent;
    expect(b).toEqual(a);
    expect(c.map((s) => s.atMs)).not.toEqual(a.map((s) => s.atMs));
    expect(a.map((s) => s.path).slice(0, 3)).toEqual([
      '/v1/virtualmachines?name=x0',
      '/v1/virtualmachines?name=x1',
      '/v1/virtualmachines?name=x2',
    ]);
  });

  it('arrive at the rate asked, within the window, with exponential gaps', async () => {
    const { world } = await play(single, 3);
    const times = world.sent.map((s) => s.atMs);
    const expected = 6000; // 60 a minute for 100 minutes
    expect(Math.abs(times.length - expected)).toBeLessThan(5 * Math.sqrt(expected));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(60_000);
    expect(Math.max(...times)).toBeLessThan(60_000 + 100 * 60_000);
    // Exponential gaps: about e^-1 of them are longer than the mean (1 s).
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    const long = gaps.filter((g) => g > 1000).length / gaps.length;
    const sd = Math.sqrt((Math.exp(-1) * (1 - Math.exp(-1))) / gaps.length);
    expect(Math.abs(long - Math.exp(-1))).toBeLessThan(5 * sd + 0.01);
  });

  it('respects the weights of a mix over many draws', () => {
    const [entry] = workloadOf([loadMix(60, '1m')]);
    if (entry?.kind !== 'arrivals') throw new Error('expected an arrivals entry');
    const random = new Prng(11).fork('mix');
    const n = 20_000;
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const op = chooseOperation(entry, 100, random);
      counts.set(`${op.method} ${op.path}`, (counts.get(`${op.method} ${op.path}`) ?? 0) + 1);
    }
    const weights = [60, 20, 10, 10];
    entry.mix.forEach(({ call }, i) => {
      const p = (weights[i] as number) / 100;
      const seen = (counts.get(`${call.method} ${call.path}`) ?? 0) / n;
      expect(Math.abs(seen - p), call.path).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    });
  });
});

describe('pools', () => {
  it('creates fill the pool, others draw from it, deletes take what they draw', async () => {
    const { world, progress } = await play([loadMix(120, '30m')], 5);
    const created = new Set<string>();
    const deleted = new Set<string>();
    for (const call of world.sent) {
      const id = call.path.split('/')[3]?.split('?')[0];
      if (call.method === 'POST' && id === undefined) {
        created.add(`vm-${created.size}`);
        continue;
      }
      expect(id, 'a pool member was created before it is drawn').toBeDefined();
      expect(created.has(id as string), `${id} drawn before it was created`).toBe(true);
      expect(deleted.has(id as string), `${id} used after it was deleted`).toBe(false);
      if (call.method === 'DELETE') deleted.add(id as string);
    }
    expect(deleted.size).toBeGreaterThan(100);
    expect(progress.stats().generated).toBe(world.sent.length);
  });

  it('skips a draw from an empty pool, deterministically, and counts it', async () => {
    const workload = [
      { at: '1m', repeat: { count: 2, every: '1s' }, ...createVm, pool: 'vms' },
      {
        at: '1m',
        arrivals: { poisson: { ratePerMinute: 60 }, for: '10m' },
        request: 'DELETE /v1/virtualmachines/{vms}',
        pool: 'vms',
      },
    ];
    const first = await play(workload, 2);
    const again = await play(workload, 2);
    const deletes = first.world.sent.filter((s) => s.method === 'DELETE');
    expect(deletes.map((d) => d.path).sort()).toEqual([
      '/v1/virtualmachines/vm-0',
      '/v1/virtualmachines/vm-1',
    ]);
    const skips = first.world.records.filter((r) => r.reason === 'pool vms is empty');
    expect(first.progress.stats().poolEmpty).toBe(skips.length);
    expect(skips.length).toBeGreaterThan(400);
    expect(again.world.records).toEqual(first.world.records);
  });
});

describe('waitFor', () => {
  const steps = (within: string, required = false) => [
    { at: '1s', request: 'POST /v1/virtualmachines', body: { name: 'web' }, save: 'web' },
    {
      at: '2s',
      waitFor: { resource: '{web}', state: 'running', within, every: '1s', required },
      request: 'POST /v1/virtualmachines/{web}?action=stop',
    },
  ];
  const runningAfter = (ms: number) => (world: FakeWorld) => {
    world.state = (_path, atMs) => (atMs >= ms ? 'running' : 'creating');
  };

  it('polls the resource every interval and makes the call once it reaches the state', async () => {
    const { world, progress } = await play(steps('1m'), 1, runningAfter(5_500));
    const polls = world.sent.filter((s) => s.method === 'GET');
    expect(polls.map((p) => [p.atMs, p.path])).toEqual(
      [2000, 3000, 4000, 5000, 6000].map((t) => [t, '/v1/virtualmachines/vm-0']),
    );
    expect(world.sent.at(-1)).toMatchObject({
      atMs: 6000,
      method: 'POST',
      path: '/v1/virtualmachines/vm-0?action=stop',
    });
    expect(progress.violation()).toBeUndefined();
    expect(progress.stats().waitTimeouts).toBe(0);
  });

  it('skips the call when the state does not come within the time, and counts it', async () => {
    const { world, progress } = await play(steps('5s'), 1, runningAfter(60_000));
    expect(world.sent.some((s) => s.path.endsWith('?action=stop'))).toBe(false);
    expect(world.sent.filter((s) => s.method === 'GET').length).toBe(6); // 2 s … 7 s
    expect(world.records.at(-1)).toMatchObject({
      kind: 'client.skip',
      step: 1,
      reason: expect.stringMatching(/^timeout: .* not running within 5000 ms \(last: creating\)/),
    });
    expect(progress.stats().waitTimeouts).toBe(1);
    expect(progress.violation()).toBeUndefined();
  });

  it('breaks the run when a required wait times out', async () => {
    const { progress } = await play(steps('5s', true), 1, runningAfter(60_000));
    expect(progress.violation()).toMatch(/workload\[1\] POST .*: waitFor timeout/);
  });
});
