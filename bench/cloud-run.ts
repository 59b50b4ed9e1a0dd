/**
 * One benchmark cloud run in a process of its own (so its peak memory and JIT state are its own):
 * `node --expose-gc --import ./bin/ts-register.mjs bench/cloud-run.ts HOSTS [MAX_SIM_MS]`. Prints
 * one JSON line with the verdict, steps, simulated and wall time, the process's peak resident
 * memory, and the live heap when the run ended (after a full collection, with the whole cloud and
 * its log still in memory: what the cloud itself takes).
 */
import { performance } from 'node:perf_hooks';
import { runScenario } from '../src/sim/run-scenario.ts';
import { Simulation } from '../src/sim/simulation.ts';
import { cloudScenario } from './cloud.ts';

// The live heap at the end of the run, measured before the scenario runner lets the cloud go.
let liveHeapBytes = 0;
const run = Simulation.prototype.run;
Simulation.prototype.run = async function measured(this: Simulation, options) {
  const result = await run.call(this, options);
  (globalThis as { gc?: () => void }).gc?.();
  liveHeapBytes = process.memoryUsage().heapUsed;
  return result;
};

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
    liveHeapBytes,
  })}\n`,
);
