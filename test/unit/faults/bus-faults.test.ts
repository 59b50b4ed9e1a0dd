// Goal: the bus fault decorators do what their names say and nothing else — the per-delivery filter
// drops, duplicates, delays and reorders at its configured rates and deterministically per seed;
// cut windows lose every delivery to (and every publish from) the cut process until they end or
// the run heals; a healed phase is the healthy network. Method: the filters are pure functions of a
// PRNG fork and their inputs, so they are called directly many times and their outputs counted;
// the cuttable bus wraps a recording fake bus.
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../src/lib/prng.ts';
import type { Bus, BusMessage } from '../../../src/ports/bus.ts';
import { UnavailableError } from '../../../src/ports/errors.ts';
import {
  LinkCuts,
  createBusFaults,
  createDeliveryFaults,
  cuttableBus,
  processOf,
} from '../../../src/faults/bus-faults.ts';
import { FaultPhase, type FaultRecord } from '../../../src/faults/plan.ts';

const NONE = {
  dropProbability: 0,
  duplicateProbability: 0,
  delayProbability: 0,
  delayMsMax: 0,
  reorderProbability: 0,
};

function sample(options: typeof NONE, seed = 1, n = 4000) {
  const records: FaultRecord[] = [];
  const filter = createBusFaults(options, new Prng(seed).fork('faults-bus'), (r) =>
    records.push(r),
  );
  const outcomes = Array.from({ length: n }, (_, i) =>
    filter({ delayMs: 1 + (i % 5), subscriber: 'mainloop-1#1', channel: 'c' }),
  );
  return { outcomes, records };
}

describe('createBusFaults', () => {
  it('without faults delivers every message once at its healthy delay', () => {
    const { outcomes, records } = sample(NONE);
    outcomes.forEach((delays, i) => expect(delays).toEqual([1 + (i % 5)]));
    expect(records).toEqual([]);
  });

  it('drops, duplicates, delays and reorders at about the configured rates', () => {
    const { outcomes, records } = sample({
      dropProbability: 0.2,
      duplicateProbability: 0.1,
      delayProbability: 0.3,
      delayMsMax: 1000,
      reorderProbability: 0.1,
    });
    const n = outcomes.length;
    const dropped = outcomes.filter((d) => d.length === 0).length;
    const duplicated = outcomes.filter((d) => d.length === 2).length;
    expect(dropped / n).toBeGreaterThan(0.17);
    expect(dropped / n).toBeLessThan(0.23);
    // Duplicates are counted among the messages that were not dropped.
    expect(duplicated / (n - dropped)).toBeGreaterThan(0.08);
    expect(duplicated / (n - dropped)).toBeLessThan(0.12);
    const count = (fault: string): number => records.filter((r) => r['fault'] === fault).length;
    expect(count('drop')).toBe(dropped);
    expect(count('duplicate')).toBe(duplicated);
    expect(count('delay')).toBeGreaterThan(0);
    expect(count('reorder')).toBeGreaterThan(0);
    const delays = outcomes.flat();
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThanOrEqual(5 + 1000);
  });

  it('a reordered copy leaves no later than its FIFO slot, so it overtakes what is in flight', () => {
    const { outcomes } = sample({ ...NONE, reorderProbability: 1 }, 3, 500);
    outcomes.forEach((delays, i) => {
      expect(delays).toHaveLength(1);
      expect(delays[0]).toBeLessThanOrEqual(1 + (i % 5));
    });
    // Not all equal to the FIFO slot: the overtaking delay is drawn.
    expect(outcomes.some((delays, i) => (delays[0] ?? 0) < 1 + (i % 5))).toBe(true);
  });

  it('is deterministic per seed and differs between seeds', () => {
    const options = { ...NONE, dropProbability: 0.3, delayProbability: 0.3, delayMsMax: 50 };
    expect(sample(options, 7).outcomes).toEqual(sample(options, 7).outcomes);
    expect(sample(options, 7).outcomes).not.toEqual(sample(options, 8).outcomes);
  });

  it('changing one probability does not shift the draws of another', () => {
    const base = { ...NONE, dropProbability: 0.3 };
    const dropsOf = (o: typeof NONE): boolean[] =>
      sample(o, 5, 300).outcomes.map((d) => d.length === 0);
    expect(dropsOf({ ...base, delayProbability: 0.9, delayMsMax: 10 })).toEqual(dropsOf(base));
  });

  it('rejects probabilities outside [0, 1]', () => {
    expect(() => createBusFaults({ ...NONE, dropProbability: 1.5 }, new Prng(1))).toThrow(
      /dropProbability/,
    );
  });
});

describe('link cuts and the delivery filter', () => {
  it('names the process of an incarnation label', () => {
    expect(processOf('agent-compute-1#3')).toBe('agent-compute-1');
    expect(processOf('api')).toBe('api');
  });

  it('a cut subscriber loses everything until its last window ends', () => {
    const phase = new FaultPhase();
    const cuts = new LinkCuts();
    const records: FaultRecord[] = [];
    const filter = createDeliveryFaults({ phase, cuts: [cuts], record: (r) => records.push(r) });
    const to = (subscriber: string) => filter({ delayMs: 2, subscriber, channel: 'c' });
    expect(to('background#1')).toEqual([2]);
    cuts.begin('background');
    cuts.begin('background');
    expect(to('background#1')).toEqual([]);
    expect(to('background#2')).toEqual([]);
    expect(to('mainloop-1#1')).toEqual([2]);
    cuts.end('background');
    expect(to('background#2')).toEqual([]);
    cuts.end('background');
    expect(to('background#2')).toEqual([2]);
    expect(records.filter((r) => r['fault'] === 'disconnected')).toHaveLength(3);
  });

  it('applies per-delivery faults only while the phase is active', () => {
    const phase = new FaultPhase();
    const filter = createDeliveryFaults({
      phase,
      random: () => [],
      cuts: [],
      record: () => undefined,
    });
    expect(filter({ delayMs: 1, subscriber: 'api#1' })).toEqual([]);
    phase.heal();
    expect(filter({ delayMs: 1, subscriber: 'api#1' })).toEqual([1]);
  });

  it('a cut bus refuses publishes and subscribes with a retryable error, then recovers', async () => {
    const published: string[] = [];
    const inner: Bus = {
      publish: (channel) => (published.push(channel), Promise.resolve(1)),
      subscribe: () => Promise.resolve({ unsubscribe: () => Promise.resolve() }),
      close: () => Promise.resolve(),
    };
    let cut = true;
    const slept: number[] = [];
    const bus = cuttableBus(inner, {
      isCut: () => cut,
      sleep: (ms) => (slept.push(ms), Promise.resolve()),
      record: () => undefined,
      who: 'agent-compute-1#1',
    });
    const message: BusMessage = { type: 'inventory' };
    const refused = await bus.publish('reports', message).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UnavailableError);
    expect((refused as UnavailableError).retryable).toBe(true);
    await expect(bus.subscribe('c', () => undefined)).rejects.toBeInstanceOf(UnavailableError);
    expect(published).toEqual([]);
    expect(slept.length).toBe(2);
    cut = false;
    await expect(bus.publish('reports', message)).resolves.toBe(1);
    expect(published).toEqual(['reports']);
  });
});
