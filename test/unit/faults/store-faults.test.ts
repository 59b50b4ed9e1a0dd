// Goal: the database fault decorator keeps its promises about what was written — an aborted append
// writes nothing; a lost connection during an append leaves it committed in some cases and not in
// others (both must occur), and the caller gets a retryable error either way; slow queries only
// wait; a cut link fails every call; a healed phase passes everything through. Method: the
// decorator wraps a real in-memory event store; after each call the log itself shows whether the
// append landed, independently of what the caller was told.
import { timerFromSleep } from '../../../src/lib/timer.ts';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../src/lib/prng.ts';
import { createMemoryEventStore } from '../../../src/adapters/memory-event-store.ts';
import { PortError, isRetryable } from '../../../src/ports/errors.ts';
import type { EventStore, Projector } from '../../../src/ports/event-store.ts';
import { faultyStore, STORE_ABORTED } from '../../../src/faults/store-faults.ts';
import { FaultPhase, type DatabaseFaults, type FaultRecord } from '../../../src/faults/plan.ts';

const NONE: DatabaseFaults = {
  abortProbability: 0,
  connectionLossProbability: 0,
  slowProbability: 0,
  slowMsMax: 100,
};

/** A projection that only counts events: the test looks at the log, not at rows. */
const projector: Projector = (_current, event) => ({
  stream: event.stream,
  type: 'test',
  accountId: null,
  version: event.version,
  data: {},
});

function world(options: DatabaseFaults | undefined, seed = 1, isCut?: () => boolean) {
  const inner = createMemoryEventStore({ projector });
  const slept: number[] = [];
  const records: FaultRecord[] = [];
  const phase = new FaultPhase();
  const store = faultyStore(inner, {
    options,
    phase,
    random: new Prng(seed).fork('faults-db'),
    clock: {
      nowMs: () => 0,
      sleep: (ms) => (slept.push(ms), Promise.resolve()),
      timer: (ms) => timerFromSleep(() => Promise.resolve(), ms),
    },
    record: (r) => records.push(r),
    who: 'api#1',
    ...(isCut === undefined ? {} : { isCut }),
  });
  return { inner, store, slept, records, phase };
}

/** Appends event `n` to stream `s`, at the version the real store has. */
async function append(store: EventStore, inner: EventStore, s: string, n: number) {
  const version = (await inner.readStream(s)).length;
  return store.append({
    appends: [
      {
        stream: s,
        expectedVersion: version,
        events: [{ type: 'test.happened', data: { n }, meta: { atMs: n } }],
      },
    ],
  });
}

describe('faultyStore', () => {
  it('an aborted append writes nothing and is retryable', async () => {
    const w = world({ ...NONE, abortProbability: 1 });
    const error = await append(w.store, w.inner, 's-1', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PortError);
    expect((error as PortError).code).toBe(STORE_ABORTED);
    expect(isRetryable(error)).toBe(true);
    expect(await w.inner.readStream('s-1')).toEqual([]);
    // Reads never abort.
    await expect(w.store.readStream('s-1')).resolves.toEqual([]);
  });

  it('a lost connection fails the caller; the append landed in some cases and not in others', async () => {
    const w = world({ ...NONE, connectionLossProbability: 1 });
    let landed = 0;
    let lost = 0;
    for (let n = 1; n <= 40; n++) {
      const before = (await w.inner.readStream('s-1')).length;
      const error = await append(w.store, w.inner, 's-1', n).catch((e: unknown) => e);
      expect(isRetryable(error)).toBe(true);
      expect((error as PortError).code).toBe('store.unavailable');
      const after = (await w.inner.readStream('s-1')).length;
      if (after === before + 1) landed++;
      else if (after === before) lost++;
      else throw new Error('an append landed twice');
    }
    expect(landed).toBeGreaterThan(5);
    expect(lost).toBeGreaterThan(5);
    const faults = w.records.map((r) => r['fault']);
    expect(faults.filter((f) => f === 'connection-lost-after')).toHaveLength(landed);
    expect(faults.filter((f) => f === 'connection-lost-before')).toHaveLength(lost);
  });

  it('a slow query only waits', async () => {
    const w = world({ ...NONE, slowProbability: 1 });
    await append(w.store, w.inner, 's-1', 1);
    expect(w.slept).toHaveLength(1);
    expect(await w.inner.readStream('s-1')).toHaveLength(1);
  });

  it('a cut link fails every operation without touching the database, faults on or not', async () => {
    let cut = true;
    const w = world(undefined, 1, () => cut);
    await expect(append(w.store, w.inner, 's-1', 1)).rejects.toThrow(/unreachable/);
    await expect(w.store.fenceOf('s-1')).rejects.toThrow(/unreachable/);
    expect(await w.inner.readStream('s-1')).toEqual([]);
    w.phase.heal();
    await expect(w.store.get('s-1')).rejects.toThrow(/unreachable/);
    cut = false;
    await append(w.store, w.inner, 's-1', 1);
    expect(await w.inner.readStream('s-1')).toHaveLength(1);
  });

  it('passes everything through once healed', async () => {
    const w = world({ ...NONE, abortProbability: 1, connectionLossProbability: 1 });
    w.phase.heal();
    await append(w.store, w.inner, 's-1', 1);
    expect(await w.store.readStream('s-1')).toHaveLength(1);
    expect(w.records).toEqual([]);
  });
});
