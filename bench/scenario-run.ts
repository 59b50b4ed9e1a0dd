/**
 * One shipped benchmark scenario run in a process of its own (its peak memory is its own):
 * `node --import ./bin/ts-register.mjs bench/scenario-run.ts FILE`. Prints one JSON line with the
 * verdict, steps, simulated and wall time and the process's peak resident memory.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseScenario } from '../src/sim/scenario.ts';
import { runScenario } from '../src/sim/run-scenario.ts';

const file = process.argv[2];
if (file === undefined) throw new Error('usage: bench/scenario-run.ts FILE');
const scenario = parseScenario(readFileSync(file, 'utf8'), file);
const start = performance.now();
const { result } = await runScenario(scenario, {
  seed: scenario.seed ?? 1,
  store: scenario.store ?? 'memory',
});
const wallMs = performance.now() - start;
process.stdout.write(
  `${JSON.stringify({
    scenario: scenario.name,
    hosts: scenario.topology.compute.count,
    verdict: result.verdict,
    reason: result.reason,
    steps: result.steps,
    simTimeMs: result.simTimeMs,
    wallMs,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  })}\n`,
);
