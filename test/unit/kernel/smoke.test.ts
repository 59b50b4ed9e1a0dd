// Goal: a first end-to-end check of the kernel — processes, timers, crashes, quiescence across
// pg-mem style setImmediate resolution — and that the same seed gives the same trace hash.
import { describe, expect, it } from 'vitest';
import { Simulation } from '../../../src/sim/simulation.ts';

async function world(seed: number): Promise<{ hash: string; log: string[] }> {
  const sim = new Simulation({ seed, trace: { keepEntries: true } });
  const log: string[] = [];
  const worker = sim.spawn('worker', async (inc) => {
    for (let i = 0; i < 5; i++) {
      await inc.sleep(inc.runtime.random.int(1, 100));
      // A library that resolves via setImmediate must finish inside the step.
      const v = await inc.guard(new Promise<number>((r) => setImmediate(() => r(i))));
      inc.record({ kind: 'tick', v });
      log.push(`${inc.label}:${v}`);
    }
  });
  worker.start();
  sim.schedule({ delayMs: 150, label: 'fault', run: () => worker.crash({ restartAfterMs: 10 }) });
  const result = await sim.run({ budget: { maxSteps: 1000, maxSimTimeMs: 10_000 } });
  expect(result.verdict).toBe('ok');
  return { hash: result.traceHash, log };
}

describe('kernel smoke', () => {
  it('is deterministic per seed and a crash stops the old incarnation', async () => {
    const a = await world(1);
    const b = await world(1);
    const c = await world(2);
    expect(a.hash).toBe(b.hash);
    expect(a.log).toEqual(b.log);
    expect(c.hash).not.toBe(a.hash);
    expect(a.log.some((l) => l.startsWith('worker#2'))).toBe(true);
  });
});
