// Goal: every scenario shipped in scenarios/ keeps doing what it says — it ends with the verdict it
// expects, and it is deterministic (same seed, same trace hash).
// Method: parse each scenarios/*.yaml (regressions have their own suite), run its own seed twice
// in-process and compare the results; a divergence is reported with the first differing entry.
// The README shows the line the quickstart prints: it must be the line it does print.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../src/sim/scenario.ts';
import { runScenario, type RunProgress } from '../src/sim/run-scenario.ts';
import { findDivergence } from '../src/sim/determinism.ts';
import { verdictLine } from '../src/cli/run.ts';

const files = readdirSync('scenarios')
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('shipped scenarios', () => {
  it('exist', () => {
    expect(files).toContain('quickstart.yaml');
  });

  for (const file of files) {
    it(`${file} ends with its expected verdict, deterministically`, async () => {
      const path = join('scenarios', file);
      const scenario = parseScenario(readFileSync(path, 'utf8'), path);
      const seed = scenario.seed ?? 1;
      const store = scenario.store ?? 'memory';
      const first = await runScenario(scenario, { seed, store, keepTrace: true });
      const second = await runScenario(scenario, { seed, store, keepTrace: true });
      expect(first.result.verdict, `${first.result.verdict}: ${first.result.reason}`).toBe(
        scenario.expect.verdict,
      );
      const divergence = findDivergence(first.trace.lines, second.trace.lines);
      expect(divergence, JSON.stringify(divergence)).toBeUndefined();
      expect(second.result.traceHash).toBe(first.result.traceHash);
    });
  }
});

describe('the README', () => {
  it('shows the line the quickstart prints', async () => {
    const shown = /^# (seed=1 scenario=quickstart .*)$/m.exec(readFileSync('README.md', 'utf8'));
    expect(shown, 'README.md has no "# seed=1 scenario=quickstart …" line').not.toBeNull();
    const path = join('scenarios', 'quickstart.yaml');
    const scenario = parseScenario(readFileSync(path, 'utf8'), path);
    const { result } = await runScenario(scenario, { seed: 1, store: 'memory' });
    expect(shown?.[1]).toBe(verdictLine(1, scenario.name, result));
  });
});

describe('progress', () => {
  it('reports how far a run is, every so many steps, without changing the run', async () => {
    const path = join('scenarios', 'quickstart.yaml');
    const scenario = parseScenario(readFileSync(path, 'utf8'), path);
    const seen: RunProgress[] = [];
    const watched = await runScenario(scenario, {
      seed: 1,
      store: 'memory',
      progress: (p) => seen.push(p),
      progressEverySteps: 500,
    });
    const plain = await runScenario(scenario, { seed: 1, store: 'memory' });
    expect(watched.result).toEqual(plain.result);
    expect(seen.length).toBe(Math.floor(plain.result.steps / 500));
    seen.forEach((p, i) => expect(p.steps).toBe((i + 1) * 500));
    for (let i = 1; i < seen.length; i++)
      expect(seen[i]!.simTimeMs).toBeGreaterThanOrEqual(seen[i - 1]!.simTimeMs);
    // The quickstart creates its VMs early and settles them: something was unsettled on the way,
    // nothing at the end.
    expect(Math.max(...seen.map((p) => p.unsettled))).toBeGreaterThan(0);
    expect(seen.at(-1)!.unsettled).toBe(0);
  });
});
