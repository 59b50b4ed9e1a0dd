// Goal: swarm draws are per-seed data with the properties the liveness phase relies on — the same
// seed always draws the same plan, different seeds draw different kinds, every explicit fault
// targets an existing process or host and ends by the heal, only allowed kinds are drawn, and
// allowing fewer kinds does not change what the remaining kinds draw. Method: properties over
// random seeds (fast-check) against `drawSwarm` directly.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../src/lib/prng.ts';
import { drawSwarm, mergePlans } from '../../../src/faults/swarm.ts';
import {
  SWARM_DEFAULTS,
  SWARM_KINDS,
  emptyPlan,
  isProcessFault,
  type SwarmKind,
} from '../../../src/faults/plan.ts';

const TARGETS = {
  processes: [
    'api',
    'mainloop-1',
    'mainloop-2',
    'background',
    'agent-compute-1',
    'agent-storage-1',
  ],
  mainLoops: ['mainloop-1', 'mainloop-2'],
  hosts: ['compute-1', 'storage-1'],
};
const HEAL_MS = 180_000;

const draw = (seed: number, kinds: readonly SwarmKind[] = SWARM_KINDS) =>
  drawSwarm({ ...SWARM_DEFAULTS, kinds }, TARGETS, HEAL_MS, new Prng(seed).fork('faults-swarm'));

describe('drawSwarm', () => {
  it('draws the same plan for the same seed', () => {
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        expect(draw(seed)).toEqual(draw(seed));
      }),
      { numRuns: 25 },
    );
  });

  it('varies the kinds between seeds', () => {
    const combinations = new Set(Array.from({ length: 40 }, (_, seed) => draw(seed).on.join(',')));
    expect(combinations.size).toBeGreaterThan(30);
  });

  it('draws valid, time-ordered faults that end by the heal', () => {
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        const { plan } = draw(seed);
        let previous = 0;
        for (const fault of plan.schedule) {
          expect(fault.atMs).toBeGreaterThanOrEqual(previous);
          previous = fault.atMs;
          expect(fault.atMs).toBeLessThan(HEAL_MS);
          expect(fault.atMs + (fault.forMs ?? 0)).toBeLessThanOrEqual(HEAL_MS);
          const pool =
            fault.kind === 'pause-holder' || fault.kind === 'session-expire'
              ? TARGETS.mainLoops
              : isProcessFault(fault.kind)
                ? TARGETS.processes
                : TARGETS.hosts;
          expect(pool).toContain(fault.target);
          if (fault.kind === 'host-hang') expect(fault.forMs).toBeDefined();
        }
        for (const rates of [plan.bus, plan.adapters, plan.database]) {
          for (const [field, value] of Object.entries(rates ?? {})) {
            if (field.endsWith('Probability')) {
              expect(value).toBeGreaterThanOrEqual(0);
              expect(value).toBeLessThanOrEqual(SWARM_DEFAULTS.rateMax);
            }
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  it('draws only allowed kinds, and the others draw the same with or without them', () => {
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        const full = draw(seed);
        const some = draw(seed, ['crash', 'bus']);
        expect(some.on.every((k) => k === 'crash' || k === 'bus')).toBe(true);
        expect(some.on).toEqual(full.on.filter((k) => k === 'crash' || k === 'bus'));
        expect(some.plan.bus).toEqual(full.plan.bus);
        expect(some.plan.schedule).toEqual(full.plan.schedule.filter((f) => f.kind === 'crash'));
        expect(some.plan.adapters).toBeUndefined();
      }),
      { numRuns: 25 },
    );
  });

  it('draws nothing for kind probability 0 and everything for 1', () => {
    const none = drawSwarm(
      { ...SWARM_DEFAULTS, kindProbability: 0 },
      TARGETS,
      HEAL_MS,
      new Prng(1),
    );
    expect(none.on).toEqual([]);
    expect(none.plan).toEqual(emptyPlan(HEAL_MS));
    const all = drawSwarm({ ...SWARM_DEFAULTS, kindProbability: 1 }, TARGETS, HEAL_MS, new Prng(1));
    expect(all.on).toEqual(SWARM_KINDS);
  });

  it('merges a draw into an explicit plan: schedules add up, explicit rates win', () => {
    const explicit = {
      ...emptyPlan(HEAL_MS),
      schedule: [
        { atMs: 5, kind: 'crash' as const, target: 'api', restartAfterMs: 1, forMs: undefined },
      ],
      bus: {
        dropProbability: 1,
        duplicateProbability: 0,
        delayProbability: 0,
        delayMsMax: 0,
        reorderProbability: 0,
      },
    };
    const drawn = drawSwarm(
      { ...SWARM_DEFAULTS, kindProbability: 1 },
      TARGETS,
      HEAL_MS,
      new Prng(2),
    ).plan;
    const merged = mergePlans(explicit, drawn);
    expect(merged.schedule).toHaveLength(1 + drawn.schedule.length);
    expect(merged.bus).toEqual(explicit.bus);
    expect(merged.adapters).toEqual(drawn.adapters);
  });
});
