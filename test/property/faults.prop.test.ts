// Goal: end to end, with the real control plane — swarm runs (every seed draws its own mix of bus,
// process, lock, host, adapter and database faults) of a small cloud end `ok`: safe throughout and
// converged after the heal; a faulted run is deterministic (same seed, same trace hash); and the
// checkers catch a broken variant: an agent that does not refuse stale fencing tokens, exercised by
// the stale-holder scenario. Method: `runScenario` on scenario data built with `toScenario` (the
// same entry point files use), a handful of seeds drawn by fast-check; the broken agent is a port
// decorator that raises the token of every command older than one it has seen, so the agent's own
// fencing check lets it through while the checkers still see the original token.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Bus } from '../../src/ports/bus.ts';
import { parseScenario, toScenario } from '../../src/sim/scenario.ts';
import { runScenario } from '../../src/sim/run-scenario.ts';

const swarm = toScenario({
  name: 'swarm-prop',
  topology: {
    compute: { count: 2, vcpus: 8, memoryMb: 16384 },
    storage: { count: 1, poolSizeGb: 1024 },
    mainLoops: 2,
    accounts: ['alice'],
  },
  workload: [
    {
      at: '1s',
      request: 'POST /v1/virtualmachines',
      body: {
        name: 'web-1',
        imageId: 'img-00000001',
        vcpus: 1,
        memoryMb: 1024,
        volumes: [{ name: 'd', sizeGb: 5 }],
      },
      save: 'web',
    },
    { at: '30s', request: 'POST /v1/virtualmachines/{web}?action=stop' },
    { request: 'POST /v1/volumes', body: { name: 'data-1', sizeGb: 10 }, save: 'data' },
    {
      at: '60s',
      request: 'POST /v1/volumes/{data}?action=snapshot',
      body: { name: 's' },
      save: 'snap',
    },
    { at: '90s', request: 'POST /v1/virtualmachines/{web}?action=start' },
    { at: '100s', request: 'DELETE /v1/snapshots/{snap}' },
  ],
  faults: { swarm: { kindProbability: 0.6, eventsMax: 3, rateMax: 0.25 }, healAt: '2m' },
  budgets: { settleWithin: '20m' },
});

/** An agent without fencing: it never sees a token older than the newest it was sent. */
function withoutAgentFencing(process: string, bus: Bus): Bus {
  if (!process.startsWith('agent-')) return bus;
  const newest = new Map<string, number>();
  return {
    publish: (channel, message) => bus.publish(channel, message),
    close: () => bus.close(),
    subscribe: (channel, handler) =>
      bus.subscribe(channel, (message, wire) => {
        const id = message['vmId'] ?? message['volumeId'];
        const resource = typeof id === 'string' ? id : '';
        const token = message['token'];
        if (typeof token !== 'number') return handler(message, wire);
        const seen = newest.get(resource) ?? 0;
        if (token < seen) return handler({ ...message, token: seen }, wire);
        newest.set(resource, token);
        return handler(message, wire);
      }),
  };
}

describe('fault injection end to end', () => {
  it('swarm runs of a small cloud end ok', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 1_000_000 }), async (seed) => {
        const { result } = await runScenario(swarm, { seed, store: 'memory' });
        expect(result.verdict, `seed=${seed}: ${result.reason}`).toBe('ok');
      }),
      { numRuns: 4 },
    );
  });

  it('a faulted run is deterministic', async () => {
    const a = await runScenario(swarm, { seed: 11, store: 'memory' });
    const b = await runScenario(swarm, { seed: 11, store: 'memory' });
    expect(b.result.traceHash).toBe(a.result.traceHash);
    expect(b.plan).toEqual(a.plan);
    expect(a.plan.schedule.length + (a.plan.bus === undefined ? 0 : 1)).toBeGreaterThan(0);
  });

  it('catches an agent that applies a stale command', async () => {
    const file = new URL('../../scenarios/faults-stale-holder.yaml', import.meta.url);
    const scenario = parseScenario(readFileSync(file, 'utf8'), 'faults-stale-holder.yaml');
    const healthy = await runScenario(scenario, { seed: 1, store: 'memory', keepTrace: true });
    expect(healthy.result.verdict).toBe('ok');
    // Fencing at work: the agent refused the old holder's command.
    expect(healthy.trace.lines.some((line) => line.includes('"check.stale-refused"'))).toBe(true);
    const broken = await runScenario(scenario, {
      seed: 1,
      store: 'memory',
      decorate: { bus: (process, _incarnation, bus) => withoutAgentFencing(process, bus) },
    });
    expect(broken.result.verdict).toBe('correctness');
    expect(broken.result.reason).toMatch(/stale command took effect/);
  });
});
