/**
 * One benchmark run in a process of its own (so its peak memory and JIT state are its own):
 * `node --expose-gc --import ./bin/ts-register.mjs bench/cloud-run.ts HOSTS [MAX_SIM_MS]` runs the
 * benchmark cloud of HOSTS compute hosts (bench/cloud.ts); `… bench/cloud-run.ts FILE.yaml` runs
 * a shipped scenario (its own seed and store). Prints one JSON line with the verdict, steps,
 * simulated and wall time, the process's peak resident memory, and the live heap when the run
 * ended (after a full collection, with the whole cloud and its log still in memory: what the
 * cloud itself takes).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { runScenario } from '../src/sim/run-scenario.ts';
import { parseScenario, type Scenario } from '../src/sim/scenario.ts';
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

/** The scenario the arguments name, and the VMs it creates when that is known. */
function chosen(arg: string | undefined, maxSimArg: string | undefined): [Scenario, number?] {
  if (arg?.endsWith('.yaml') === true) return [parseScenario(readFileSync(arg, 'utf8'), arg)];
  const hosts = Number(arg);
  if (!Number.isSafeInteger(hosts) || hosts < 1)
    throw new Error(`usage: bench/cloud-run.ts HOSTS [MAX_SIM_MS] | FILE.yaml`);
  const base = cloudScenario(hosts);
  if (maxSimArg === undefined) return [base, hosts * 10];
  return [{ ...base, budgets: { ...base.budgets, maxSimTimeMs: Number(maxSimArg) } }, hosts * 10];
}

const [scenario, vms] = chosen(process.argv[2], process.argv[3]);
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
    ...(vms === undefined ? {} : { vms }),
    verdict: result.verdict,
    reason: result.reason,
    steps: result.steps,
    simTimeMs: result.simTimeMs,
    wallMs,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    liveHeapBytes,
  })}\n`,
);
