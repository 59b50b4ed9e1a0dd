/**
 * One benchmark cloud run in a process of its own (so its peak memory and JIT state are its own):
 * `node --import ./bin/ts-register.mjs bench/cloud-run.ts HOSTS [MAX_SIM_MS]`. Prints one JSON line
 * with the verdict, steps, simulated and wall time, and the process's peak resident memory.
 */
import { performance } from 'node:perf_hooks';
import { runScenario } from '../src/sim/run-scenario.ts';
import { cloudScenario } from './cloud.ts';

const hosts = Number(process.argv[2]);
const maxSimMs = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
if (!Number.isSafeInteger(hosts) || hosts < 1) throw new Error(`hosts must be a positive integer`);
const base = cloudScenario(hosts);
const scenario =
  maxSimMs === undefined ? base : { ...base, budgets: { ...base.budgets, maxSimTimeMs: maxSimMs } };
const start = performance.now();
const { result } = await runScenario(scenario, { seed: 1, store: 'memory' });
const wallMs = performance.now() - start;
process.stdout.write(
  `${JSON.stringify({
    hosts,
    vms: hosts * 10,
    verdict: result.verdict,
    reason: result.reason,
    steps: result.steps,
    simTimeMs: result.simTimeMs,
    wallMs,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  })}\n`,
);
