/**
 * Runs one property against the src/ next to it and prints one JSON line: whether it failed, after
 * how many cases, and how small the shrunk counterexample is. scripts/mutants.ts copies this file
 * into each mutant's copy of the tree (scripts/mutants/probe.ts there), so the relative imports
 * below load the mutated control plane.
 *
 * Usage: `node --import bin/ts-register.mjs probe.ts '<probe JSON>' [world.json]` — the world file (race probes)
 * holds the settled world the real control plane built, so a mutant cannot spoil the setup.
 *
 * For a fuzz failure it also checks the promise of shrinking: the written scenario, parsed back
 * from its YAML, replays with the same verdict and trace hash.
 */
import { readFile } from 'node:fs/promises';
import { fuzz, regressionYaml } from '../../src/fuzz/fuzz.ts';
import { FUZZ_PROPERTIES } from '../../src/fuzz/cases.ts';
import { checkModel, LOSSY_BUS } from '../../src/fuzz/model-based.ts';
import { checkRaces, type SettledWorld } from '../../src/fuzz/races.ts';
import { parseScenario } from '../../src/sim/scenario.ts';
import { runScenario } from '../../src/sim/run-scenario.ts';
import type { Probe } from './catalog.ts';

/** What a probe prints (the last line of its stdout). */
export interface ProbeOutcome {
  readonly caught: boolean;
  /** Cases until the first failure (or all of them when nothing failed). */
  readonly runs: number;
  readonly shrinkRuns: number;
  /** The verdict (fuzz), `model` or `race`. */
  readonly verdict: string | null;
  readonly reason: string | null;
  readonly shrunkSize: number | null;
  /** Fuzz only: the written scenario replayed with the same verdict and trace hash. */
  readonly replayed: boolean | null;
  /** The shrunk counterexample: scenario YAML, command listing or fast-check seed and path. */
  readonly counterexample: string | null;
  readonly seconds: number;
}

type Outcome = Omit<ProbeOutcome, 'seconds'>;

async function probeFuzz(probe: Extract<Probe, { kind: 'fuzz' }>): Promise<Outcome> {
  const property = FUZZ_PROPERTIES[probe.property];
  const report = await fuzz({
    runs: probe.runs,
    seed: probe.seed,
    swarm: property.swarm,
    generator: property.generator,
    shrinkRuns: probe.shrinkRuns,
    namePrefix: `mutant-${probe.property}`,
  });
  const failure = report.failure;
  if (failure === undefined) {
    return {
      caught: false,
      runs: report.runs,
      shrinkRuns: 0,
      verdict: null,
      reason: null,
      shrunkSize: null,
      replayed: null,
      counterexample: null,
    };
  }
  const file = `scenarios/regressions/${String(failure.data['name'])}.yaml`;
  const yaml = regressionYaml(failure, { command: 'npm run test:mutants', file });
  const replay = await runScenario(parseScenario(yaml, file), {
    seed: failure.seed,
    store: failure.store,
  });
  return {
    caught: true,
    runs: report.runs,
    shrinkRuns: report.shrinkRuns,
    verdict: failure.result.verdict,
    reason: failure.result.reason,
    shrunkSize: failure.size.steps + failure.size.faults,
    replayed:
      replay.result.verdict === failure.result.verdict &&
      replay.result.traceHash === failure.result.traceHash,
    counterexample: yaml,
  };
}

async function probeModel(probe: Extract<Probe, { kind: 'model' }>): Promise<Outcome> {
  const report = await checkModel({
    runs: probe.runs,
    seed: probe.seed,
    shrinkRuns: 60,
    ...(probe.lossyBus ? { bus: LOSSY_BUS } : {}),
  });
  const failure = report.failure;
  return {
    caught: failure !== undefined,
    runs: report.runs,
    shrinkRuns: report.shrinkRuns,
    verdict: failure === undefined ? null : 'model',
    reason: failure?.reason ?? null,
    shrunkSize: failure?.commands ?? null,
    replayed: null,
    counterexample:
      failure === undefined
        ? null
        : `fast-check seed=${failure.seed} path="${failure.path}"\n  ${failure.listing.join('\n  ')}`,
  };
}

async function probeRace(
  probe: Extract<Probe, { kind: 'race' }>,
  worldFile: string | undefined,
): Promise<Outcome> {
  let world: SettledWorld | undefined;
  if (worldFile !== undefined) {
    const raw = JSON.parse(await readFile(worldFile, 'utf8')) as Omit<SettledWorld, 'ids'> & {
      ids: [string, string][];
    };
    world = { ...raw, ids: new Map(raw.ids) };
  }
  const report = await checkRaces(probe.race, {
    runs: probe.runs,
    seed: probe.seed,
    ...(world === undefined ? {} : { world }),
  });
  const failure = report.failure;
  return {
    caught: failure !== undefined,
    runs: report.runs,
    shrinkRuns: 0,
    verdict: failure === undefined ? null : 'race',
    reason: failure?.reason ?? null,
    shrunkSize: failure?.size ?? null,
    replayed: null,
    counterexample:
      failure === undefined ? null : `fast-check seed=${failure.seed} path="${failure.path}"`,
  };
}

async function main(): Promise<void> {
  const probe = JSON.parse(process.argv[2] ?? '{}') as Probe;
  const started = performance.now();
  let outcome: Outcome;
  switch (probe.kind) {
    case 'fuzz':
      outcome = await probeFuzz(probe);
      break;
    case 'model':
      outcome = await probeModel(probe);
      break;
    case 'race':
      outcome = await probeRace(probe, process.argv[3]);
      break;
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ ...outcome, seconds })}\n`);
}

await main();
