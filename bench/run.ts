/**
 * `npm run bench`: every speed figure of the simulator in one run, each beside its reference, as
 * ratios measured on this machine at the same moment (a shared machine is noisy; ratios within one
 * run are what compare). Not part of `npm test`; no test asserts on time.
 *
 *   - the kernel against a bare seeded event loop: world events and process events;
 *   - the same cloud shape (bench/cloud.ts) at growing sizes: steps per wall second, simulated time
 *     per wall second and VM-seconds simulated per wall second — the cost of a step must not grow
 *     with the cloud;
 *   - memory per VM, from the peak resident memory of the sizes' runs;
 *   - fuzzing throughput (`cloudbed fuzz --swarm`) on one core, on the memory store and on pg-mem,
 *     and on every core (`--workers` = the cores);
 *   - the API's list page of 100 VMs over HTTP from `cloudbed serve` (bench/api.ts), on memory and
 *     pg-mem: requests per second, and latency p99 at 100 requests per second offered.
 *
 *   - the shipped benchmark scenario scenarios/bench/scale-1k.yaml (1,000 hosts, 10,000 VMs, swarm
 *     faults, about a simulated hour): its speed against real time and its peak memory; with
 *     `--scale-10k`, scale-10k.yaml as well (100,000 VMs: half an hour or more, several GB).
 *
 * Options: `--sizes 10,100,1000` (compute hosts; ten VMs each), `--fuzz-runs N`, `--json FILE`
 * (the figures as JSON), `--quick` (small sizes and counts and no scale scenario, to try the
 * command out), `--scale-10k`.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { apiBench, type ApiFigures } from './api.ts';
import { kernelBench } from './kernel.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    sizes: { type: 'string' },
    'fuzz-runs': { type: 'string' },
    json: { type: 'string' },
    quick: { type: 'boolean' },
    'scale-10k': { type: 'boolean' },
  },
});
const quick = values.quick === true;
const sizes = (values.sizes ?? (quick ? '10,30' : '10,100,1000')).split(',').map(Number);
const fuzzRuns = Number(values['fuzz-runs'] ?? (quick ? 60 : 400));

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const fixed = (x: number, digits = 1): string =>
  x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const whole = (x: number): string => Math.round(x).toLocaleString('en-US');

/** Runs a TypeScript entry point of this repository in a fresh node; returns its stdout. */
function node(args: readonly string[]): string {
  return execFileSync(
    process.execPath,
    ['--expose-gc', '--import', './bin/ts-register.mjs', ...args],
    {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
}

const figures: Record<string, unknown> = { date: new Date().toISOString(), node: process.version };

// ---- kernel ----
out('== kernel: a seeded event loop of 100 actors (bench/kernel.ts)');
const kernel = await kernelBench();
figures['kernel'] = kernel;
const ratio = (rate: number): number => kernel.bare / rate;
out(`bare seeded event loop    ${whole(kernel.bare).padStart(12)} events/s`);
out(
  `kernel, world events      ${whole(kernel.world).padStart(12)} events/s   bare/kernel = ${fixed(ratio(kernel.world))}x   (target: within 3x)`,
);
out(
  `kernel, world, no trace   ${whole(kernel.worldUntraced).padStart(12)} events/s   bare/kernel = ${fixed(ratio(kernel.worldUntraced))}x`,
);
out(
  `kernel, process events    ${whole(kernel.processes).padStart(12)} events/s   bare/kernel = ${fixed(ratio(kernel.processes))}x   (target: within 6x)`,
);

// ---- cloud sizes ----
/** What bench/cloud-run.ts prints for one run. */
interface BenchRun {
  readonly scenario: string;
  readonly hosts: number;
  /** VMs the run creates: known for the benchmark clouds. */
  readonly vms?: number;
  readonly verdict: string;
  readonly reason: string;
  readonly steps: number;
  readonly simTimeMs: number;
  readonly wallMs: number;
  readonly maxRssBytes: number;
  readonly liveHeapBytes: number;
}
type CloudRun = BenchRun & { readonly vms: number };

/** One run of bench/cloud-run.ts (`HOSTS` or a scenario file) in a fresh node. */
function benchRun(arg: string): BenchRun {
  return JSON.parse(node(['bench/cloud-run.ts', arg]).trim().split('\n').at(-1)!) as BenchRun;
}

out('');
out('== the same cloud at growing sizes: 10 VMs per host created over 30 simulated minutes,');
out('   10% stopped, 5% deleted, no faults, memory store (bench/cloud.ts); one process each');
const runs: CloudRun[] = [];
for (const hosts of sizes) {
  const run = benchRun(String(hosts)) as CloudRun;
  runs.push(run);
  const wallS = run.wallMs / 1000;
  out(
    `${String(hosts).padStart(6)} hosts ${String(run.vms).padStart(7)} VMs  ${run.verdict.padEnd(9)} ${whole(run.steps).padStart(11)} steps in ${fixed(wallS).padStart(7)} s  ${whole(run.steps / wallS).padStart(8)} steps/s  ${fixed(run.simTimeMs / run.wallMs).padStart(7)}x real time  ${whole((run.vms * run.simTimeMs) / run.wallMs).padStart(9)} VM-s/s  live ${whole(run.liveHeapBytes / 2 ** 20)} MiB, peak RSS ${whole(run.maxRssBytes / 2 ** 20)} MiB`,
  );
}
figures['clouds'] = runs;
if (runs.length >= 2) {
  const first = runs[0]!;
  const last = runs.at(-1)!;
  const stepRate = (r: CloudRun): number => r.steps / r.wallMs;
  const vmRate = (r: CloudRun): number => (r.vms * r.simTimeMs) / r.wallMs;
  out(
    `growth ${first.hosts} → ${last.hosts} hosts: steps/s ×${fixed(stepRate(last) / stepRate(first), 2)}, VM-seconds/s ×${fixed(vmRate(last) / vmRate(first), 2)}   (target: both ≥ 0.5 — linear total cost)`,
  );
  const perVm = (last.liveHeapBytes - first.liveHeapBytes) / (last.vms - first.vms);
  figures['memoryPerVmBytes'] = perVm;
  out(
    `memory per VM (live heap at the end, ${first.hosts} → ${last.hosts} hosts): ${whole(perVm / 1024)} KiB   (peak RSS includes the collector's headroom)`,
  );
}

// ---- the shipped scale scenarios ----
const scales = quick ? [] : ['scale-1k', ...(values['scale-10k'] === true ? ['scale-10k'] : [])];
if (scales.length > 0) {
  out('');
  out('== the shipped scale scenarios (scenarios/bench/), one process each');
  const scaleRuns: BenchRun[] = [];
  for (const name of scales) {
    const run = benchRun(`scenarios/bench/${name}.yaml`);
    scaleRuns.push(run);
    const wallS = run.wallMs / 1000;
    out(
      `${name.padEnd(10)} ${whole(run.hosts).padStart(6)} hosts  ${run.verdict.padEnd(9)} ${whole(run.steps).padStart(11)} steps in ${fixed(wallS).padStart(7)} s  ${whole(run.steps / wallS).padStart(8)} steps/s  ${fixed(run.simTimeMs / run.wallMs).padStart(6)}x real time  peak RSS ${whole(run.maxRssBytes / 2 ** 20)} MiB${name === 'scale-1k' ? '   (target: >= 10x, verdict ok)' : '   (target: ok under 6 GB)'}`,
    );
  }
  figures['scaleScenarios'] = scaleRuns;
}

// ---- fuzzing ----
out('');
out('== fuzzing: cloudbed fuzz --swarm on one core (small generated topologies)');
/** Runs `cloudbed fuzz --swarm` and returns its runs per wall second (progress lines dropped). */
function fuzzRate(store: 'memory' | 'pgmem', runs: number, workers: number): number {
  const text = execFileSync(
    process.execPath,
    [
      'bin/cloudbed.js',
      'fuzz',
      '--runs',
      String(runs),
      '--swarm',
      '--seed',
      '1',
      '--store',
      store,
      '--workers',
      String(workers),
      '--out',
      '/tmp/cloudbed-bench-regressions',
    ],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return Number(/\(([\d.]+) runs\/s\)/.exec(text)?.[1] ?? NaN);
}

const fuzzFigures: Record<string, number> = {};
for (const [store, count] of [
  ['memory', fuzzRuns],
  ['pgmem', Math.max(10, Math.floor(fuzzRuns / 10))],
] as const) {
  const rate = fuzzRate(store, count, 1);
  fuzzFigures[store] = rate;
  out(
    `${store.padEnd(7)} ${String(count).padStart(5)} runs   ${fixed(rate).padStart(7)} runs/s per core`,
  );
}
figures['fuzzRunsPerSecondPerCore'] = fuzzFigures;
const cores = availableParallelism();
const everyCore = fuzzRate('memory', fuzzRuns * 2.5, cores);
figures['fuzzRunsPerSecondEveryCore'] = { cores, runs: fuzzRuns * 2.5, rate: everyCore };
out(
  `memory ${String(fuzzRuns * 2.5).padStart(6)} runs   ${fixed(everyCore).padStart(7)} runs/s with --workers ${cores}   (target: ≥ 100 runs/s with --workers 2 on 2 cores)`,
);

// ---- the API over HTTP ----
out('');
out(
  '== API: the list page of 100 VMs over HTTP from cloudbed serve (bench/api.ts; autocannon, 8 connections)',
);
const apiFigures: ApiFigures[] = [];
for (const store of ['memory', 'pgmem']) {
  const a = await apiBench(store, quick ? 2 : 5);
  apiFigures.push(a);
  out(
    `${store.padEnd(7)} ${whole(a.maxRequestsPerSecond).padStart(7)} req/s (p99 ${fixed(a.maxP99Ms)} ms)   at 100 req/s offered: p99 ${fixed(a.p99MsAt100)} ms   non-200: ${a.non200}   (target: ≥ 1,000 req/s on memory)`,
  );
}
figures['apiListPage'] = apiFigures;

out('');
out(
  'references: TigerBeetle VOPR ~700-1000x real time; FoundationDB 100k+ seeds per change; CloudStack simulator 2k hosts / 12k VMs; kwok 5,000 nodes in under a minute',
);
if (values.json !== undefined) {
  writeFileSync(values.json, `${JSON.stringify(figures, null, 2)}\n`);
  out(`figures written to ${values.json}`);
}
