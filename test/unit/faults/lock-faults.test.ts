// Goal: the expiry-notice filter loses and delays notices at its rates, never makes a notice
// early, is deterministic, and lets every notice through on time once healed. Method: the filter
// is a pure function of its PRNG fork; it is called many times and its outputs counted.
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../src/lib/prng.ts';
import { createNoticeFaults } from '../../../src/faults/lock-faults.ts';
import { FaultPhase, type FaultRecord } from '../../../src/faults/plan.ts';

function sample(loss: number, delay: number, seed = 1) {
  const records: FaultRecord[] = [];
  const phase = new FaultPhase();
  const filter = createNoticeFaults(
    {
      expiryNoticeLossProbability: loss,
      expiryNoticeDelayProbability: delay,
      expiryNoticeDelayMsMax: 1000,
    },
    phase,
    new Prng(seed).fork('faults-locks'),
    (r) => records.push(r),
  );
  const notice = { sessionId: 'session-0001', owner: 'mainloop-1#1', delayMs: 2 };
  const outcomes = Array.from({ length: 2000 }, () => filter(notice));
  return { outcomes, records, phase, filter, notice };
}

describe('createNoticeFaults', () => {
  it('loses and delays notices at about their rates, never early', () => {
    const { outcomes, records } = sample(0.3, 0.5);
    const lost = outcomes.filter((o) => o.length === 0).length / outcomes.length;
    expect(lost).toBeGreaterThan(0.26);
    expect(lost).toBeLessThan(0.34);
    const late = outcomes.filter((o) => o.length === 1 && (o[0] ?? 0) > 2);
    expect(late.length / outcomes.length).toBeGreaterThan(0.3);
    const delays = outcomes.flat();
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1002);
    expect(records.filter((r) => r['fault'] === 'notice-lost').length).toBe(
      outcomes.filter((o) => o.length === 0).length,
    );
  });

  it('is deterministic per seed', () => {
    expect(sample(0.3, 0.5, 9).outcomes).toEqual(sample(0.3, 0.5, 9).outcomes);
    expect(sample(0.3, 0.5, 9).outcomes).not.toEqual(sample(0.3, 0.5, 10).outcomes);
  });

  it('lets every notice through on time once healed', () => {
    const { phase, filter, notice } = sample(1, 1);
    phase.heal();
    expect(filter(notice)).toEqual([2]);
  });
});
