// Goal: the real Runtime that staging processes run on keeps the Runtime port's promises — ids of
// the shape the API accepts and never repeated, random draws inside their documented ranges, a
// log of one parseable JSON object per line whose fields cannot overwrite its own, a clock whose
// sleeps resolve and refuse nonsense.
// Method: draw many values and check ranges and uniqueness; log into an array sink and parse it.
// No wall-clock durations are asserted.
import { describe, expect, it } from 'vitest';
import {
  createSystemRuntime,
  cryptoIds,
  cryptoRandom,
  jsonLog,
  systemClock,
} from '../../src/adapters/system-runtime.ts';

describe('system runtime', () => {
  it('issues distinct ids of the form prefix-<12 hex>, and rejects a malformed prefix', () => {
    const ids = cryptoIds();
    const drawn = Array.from({ length: 2_000 }, () => ids.next('vm'));
    expect(new Set(drawn).size).toBe(drawn.length);
    for (const id of drawn) expect(id).toMatch(/^vm-[0-9a-f]{12}$/);
    expect(() => ids.next('Bad-Prefix')).toThrow();
  });

  it('draws within the documented ranges', () => {
    const random = cryptoRandom();
    for (let i = 0; i < 2_000; i++) {
      const f = random.float();
      expect(f >= 0 && f < 1).toBe(true);
      const n = random.int(-3, 3);
      expect(Number.isInteger(n) && n >= -3 && n <= 3).toBe(true);
      expect(random.exponential(5)).toBeGreaterThanOrEqual(0);
      expect(random.logNormal(10, 0.5)).toBeGreaterThan(0);
    }
    expect(random.chance(0)).toBe(false);
    expect(random.chance(1)).toBe(true);
    // Every value of a small range shows up: the draw is not stuck.
    expect(new Set(Array.from({ length: 500 }, () => random.int(1, 4)))).toEqual(
      new Set([1, 2, 3, 4]),
    );
    // Spans beyond crypto.randomInt's 2^48 limit still work.
    const big = random.int(0, 2 ** 52);
    expect(Number.isSafeInteger(big) && big >= 0 && big <= 2 ** 52).toBe(true);
    expect(() => random.int(3, 1)).toThrow();
    expect(() => random.chance(1.5)).toThrow();
  });

  it('logs one JSON object per line; fields never overwrite level, proc, message or at', () => {
    const lines: string[] = [];
    const log = jsonLog({ process: 'agent-c1', sink: { write: (l: string) => lines.push(l) } });
    log.info('agent.started', { hostId: 'host-1', level: 'forged', error: new Error('boom') });
    log.warn('agent.slow', { ms: 12 });
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    log.warn('agent.cyclic', cyclic);
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({
      level: 'info',
      proc: 'agent-c1',
      message: 'agent.started',
      hostId: 'host-1',
      error: { name: 'Error', message: 'boom' },
    });
    expect(typeof parsed[0]!['at']).toBe('string');
    expect(parsed[1]).toMatchObject({ level: 'warn', ms: 12 });
    expect(parsed[2]).toMatchObject({ level: 'warn', message: 'agent.cyclic' });
    const quiet: string[] = [];
    const warnOnly = jsonLog({
      process: 'p',
      verbose: false,
      sink: { write: (l: string) => quiet.push(l) },
    });
    warnOnly.info('hidden');
    warnOnly.warn('shown');
    expect(quiet).toHaveLength(1);
  });

  it('has a clock whose sleep resolves and whose time moves forward', async () => {
    const clock = systemClock();
    const before = clock.nowMs();
    await clock.sleep(5);
    expect(clock.nowMs()).toBeGreaterThanOrEqual(before);
    expect(() => clock.sleep(-1)).toThrow();
    const runtime = createSystemRuntime({ process: 'api', sink: { write: () => true } });
    expect(runtime.ids.next('req')).toMatch(/^req-/);
  });
});
