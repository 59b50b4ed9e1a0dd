/**
 * Benchmark of the simulation kernel against a bare seeded event loop, on the same workload:
 * `ACTORS` actors, each rescheduling itself after a delay drawn from its own PRNG fork in
 * [1, 100] ms. Three loops run it:
 *   - bare: a heap of (time, seq) callbacks run synchronously — Node's ceiling for this workload;
 *   - kernel, world events: `Simulation.schedule` callbacks — the scheduler, a quiescence wait per
 *     step and the trace, with the very same delays (the schedules' checksums must agree); once
 *     more with `traceEvents: false`, to tell the trace's share (the field digest of each
 *     step) from the quiescence wait's;
 *   - kernel, processes: simulated processes looping on `Incarnation.sleep` — adds promises,
 *     incarnation gating and one more PRNG fork per process.
 * Reports events/s of each (median of `ROUNDS` rounds, after a warm-up); `npm run bench` prints
 * them with their ratios to bare. Not part of `npm test`, and no test asserts on time.
 */
import { performance } from 'node:perf_hooks';
import { MinHeap } from '../src/lib/heap.ts';
import { Prng } from '../src/lib/prng.ts';
import { Simulation } from '../src/sim/simulation.ts';

const SEED = 42;
const ACTORS = 100;
const ROUNDS = 5;
/** Events per round: the bare loop is several times faster, so it gets more to measure over. */
const BARE_EVENTS = 2_000_000;
const KERNEL_EVENTS = 200_000;

interface Measurement {
  readonly events: number;
  readonly seconds: number;
  /** Sum of the times of all executed events: equal schedules give equal checksums. */
  readonly checksum: number;
}

function actorForks(): Prng[] {
  const root = new Prng(SEED);
  return Array.from({ length: ACTORS }, (_, k) => root.fork(`actor-${k}`));
}

interface BareEvent {
  readonly time: number;
  readonly seq: number;
  readonly run: () => void;
}

function bare(events: number): Measurement {
  const queue = new MinHeap<BareEvent>((a, b) => a.time - b.time || a.seq - b.seq);
  let now = 0;
  let seq = 0;
  let executed = 0;
  let checksum = 0;
  const forks = actorForks();
  const act = (random: Prng): void => {
    queue.push({ time: now + random.int(1, 100), seq: seq++, run: () => act(random) });
  };
  const start = performance.now();
  for (const random of forks) act(random);
  while (executed < events) {
    const event = queue.pop()!;
    now = event.time;
    executed++;
    checksum += now;
    event.run();
  }
  return { events: executed, seconds: (performance.now() - start) / 1000, checksum };
}

async function kernelWorldEvents(events: number, traceEvents = true): Promise<Measurement> {
  const sim = new Simulation({ seed: SEED, traceEvents });
  let checksum = 0;
  const act = (random: Prng): void => {
    sim.schedule({
      delayMs: random.int(1, 100),
      label: 'actor',
      run: () => {
        checksum += sim.scheduler.now;
        act(random);
      },
    });
  };
  const start = performance.now();
  for (const random of actorForks()) act(random);
  const result = await sim.run({ budget: { maxSteps: events, maxSimTimeMs: Number.MAX_VALUE } });
  return { events: result.steps, seconds: (performance.now() - start) / 1000, checksum };
}

async function kernelProcesses(events: number): Promise<Measurement> {
  const sim = new Simulation({ seed: SEED });
  let checksum = 0;
  for (let k = 0; k < ACTORS; k++) {
    sim.spawn(`actor-${k}`, async (incarnation) => {
      for (;;) {
        await incarnation.sleep(incarnation.runtime.random.int(1, 100));
        checksum += sim.scheduler.now;
      }
    });
  }
  const start = performance.now();
  for (const process of sim.allProcesses()) process.start();
  const result = await sim.run({ budget: { maxSteps: events, maxSimTimeMs: Number.MAX_VALUE } });
  return { events: result.steps, seconds: (performance.now() - start) / 1000, checksum };
}

async function measure(
  name: string,
  loop: (events: number) => Measurement | Promise<Measurement>,
  events: number,
): Promise<{ name: string; rate: number; checksum: number }> {
  await loop(Math.ceil(events / 10)); // warm-up: let the JIT settle
  const rates: number[] = [];
  let checksum = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const m = await loop(events);
    rates.push(m.events / m.seconds);
    checksum = m.checksum;
  }
  rates.sort((a, b) => a - b);
  return { name, rate: rates[Math.floor(ROUNDS / 2)]!, checksum };
}

/** Events per second of each loop, and the ratio to the bare loop. */
export interface KernelFigures {
  readonly bare: number;
  readonly world: number;
  readonly worldUntraced: number;
  readonly processes: number;
}

/** Runs the kernel benchmark; throws if the kernel's schedule differs from the bare loop's. */
export async function kernelBench(): Promise<KernelFigures> {
  const bareResult = await measure('bare seeded event loop', bare, BARE_EVENTS);
  const worldResult = await measure('kernel, world events', kernelWorldEvents, KERNEL_EVENTS);
  const untracedResult = await measure(
    'kernel, world, no trace',
    (events) => kernelWorldEvents(events, false),
    KERNEL_EVENTS,
  );
  const processResult = await measure('kernel, processes', kernelProcesses, KERNEL_EVENTS);
  // Same seed, same forks, same delays: the first KERNEL_EVENTS events of the bare loop are the
  // kernel's world events, so their checksums must agree.
  const bareCheck = bare(KERNEL_EVENTS).checksum;
  if (bareCheck !== worldResult.checksum)
    throw new Error(`schedules differ: bare ${bareCheck}, kernel ${worldResult.checksum}`);
  return {
    bare: bareResult.rate,
    world: worldResult.rate,
    worldUntraced: untracedResult.rate,
    processes: processResult.rate,
  };
}
