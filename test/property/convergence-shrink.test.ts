// Goal: a failure of the convergence properties becomes a small scenario file that replays
// exactly: fast-check shrinks a generated case to a minimal workload and fault schedule, delta
// debugging shrinks a scenario file used as the base, and the written YAML — seed stored in the
// file — replays with the recorded verdict and trace hash (what `npx cloudbed run <file>` does).
// Method: failures are forced without breaking the control plane: generated creates expect a
// status the API never gives (201: creates answer 202), so any case with a create fails and the
// minimum is one create and no fault; a base scenario expects such a status of one of its calls;
// a base fuzzed under drawn faults expects `crash` of a cloud that works. Files go to a temporary
// directory.
// Budget: a few seconds.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fuzzWithRegression } from '../../src/cli/fuzz.ts';
import { recordedRunOf } from '../../src/fuzz/fuzz.ts';
import { parseScenario } from '../../src/sim/scenario.ts';
import { runScenario } from '../../src/sim/run-scenario.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** The one file written to `dir`, and its replay. */
async function replayWritten(dir: string) {
  const files = await readdir(dir);
  expect(files).toHaveLength(1);
  const path = join(dir, files[0]!);
  const text = await readFile(path, 'utf8');
  const scenario = parseScenario(text, path);
  const recorded = recordedRunOf(text);
  expect(recorded, 'the file records its failing run').toBeDefined();
  expect(scenario.seed, 'the file stores the seed').toBe(recorded!.seed);
  const run = await runScenario(scenario, { seed: scenario.seed!, store: recorded!.store });
  return { text, scenario, recorded: recorded!, result: run.result };
}

describe('shrinking a failure to a scenario file', () => {
  it('shrinks a generated case to one call and no fault, and the file replays exactly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cloudbed-shrink-'));
    dirs.push(dir);
    const { report, explanation } = await fuzzWithRegression({
      runs: 20,
      seed: 7,
      swarm: true,
      generator: { createStatus: 201 },
      foundBy: 'convergence-shrink.test.ts',
      outDir: dir,
    });
    expect(explanation).toContain('reproduce: npx cloudbed run');
    const failure = report.failure!;
    expect(failure.result.verdict).toBe('correctness');
    expect(failure.size.steps).toBe(1);
    expect(failure.size.faults).toBe(0);
    expect(failure.fastCheck?.path).toMatch(/^\d+(:\d+)*$/);
    const { text, scenario, recorded, result } = await replayWritten(dir);
    expect(text).toMatch(/^# Goal: /);
    expect(text).toContain('# Verdict: correctness (expected ok)');
    expect(scenario.expect.verdict).toBe('ok');
    expect(recorded.traceHash).toBe(failure.result.traceHash);
    expect(result.verdict).toBe('correctness');
    expect(result.traceHash).toBe(recorded.traceHash);
  });

  it('delta-debugs a base scenario to the steps the failure needs, and the file replays exactly', async () => {
    const base = {
      name: 'base-with-a-wrong-expectation',
      topology: { compute: { count: 1 }, storage: { count: 1 }, mainLoops: 1 },
      workload: [
        { at: '1s', request: 'POST /v1/volumes', body: { name: 'a', sizeGb: 5 }, save: 'a' },
        { at: '2s', request: 'POST /v1/volumes', body: { name: 'b', sizeGb: 5 } },
        { at: '3s', request: 'POST /v1/volumes/{a}?action=snapshot', body: { name: 's' } },
        // A create answers 202, never 200: every seed fails here, with verdict correctness.
        {
          at: '4s',
          request: 'POST /v1/volumes',
          body: { name: 'c', sizeGb: 5 },
          expectStatus: 200,
        },
        { at: '5s', request: 'GET /v1/volumes/{a}' },
      ],
      faults: { bus: { dropProbability: 0.1 } },
    };
    const dir = await mkdtemp(join(tmpdir(), 'cloudbed-shrink-'));
    dirs.push(dir);
    // The file runs as it is under seeds 11, 12, …; the first fails and is delta-debugged.
    const { report } = await fuzzWithRegression({
      runs: 3,
      seed: 11,
      base,
      foundBy: 'convergence-shrink.test.ts',
      outDir: dir,
    });
    const failure = report.failure!;
    expect(report.runs).toBe(1);
    expect(failure.result.verdict).toBe('correctness');
    expect(failure.size).toEqual({ steps: 1, faults: 0, rates: [] });
    expect(failure.fastCheck).toBeUndefined();
    const { scenario, result, recorded } = await replayWritten(dir);
    const step = scenario.workload[0];
    expect(step?.kind === 'call' ? step.expectStatus : undefined).toBe(200);
    expect(result.verdict).toBe('correctness');
    expect(result.traceHash).toBe(recorded.traceHash);
  });

  it('shrinks drawn faults with fast-check, then the base workload, for a base under --swarm', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cloudbed-shrink-'));
    dirs.push(dir);
    // Expecting `crash` of a cloud that works: every run "fails" with verdict ok, whatever the
    // drawn faults, so fast-check drops every fault and delta debugging every call.
    const base = {
      name: 'base-expecting-a-crash',
      topology: { compute: { count: 1 }, storage: { count: 1 }, mainLoops: 2 },
      workload: [
        { at: '1s', request: 'POST /v1/volumes', body: { name: 'a', sizeGb: 5 }, save: 'a' },
        { at: '3s', request: 'POST /v1/volumes/{a}?action=snapshot', body: { name: 's' } },
      ],
      expect: { verdict: 'crash' },
    };
    const { report } = await fuzzWithRegression({
      runs: 3,
      seed: 11,
      swarm: true,
      base,
      foundBy: 'convergence-shrink.test.ts',
      outDir: dir,
    });
    const failure = report.failure!;
    expect(report.runs).toBe(1);
    expect(failure.result.verdict).toBe('ok');
    expect(failure.expected).toBe('crash');
    expect(failure.size).toEqual({ steps: 0, faults: 0, rates: [] });
    expect(failure.fastCheck?.path).toMatch(/^\d+(:\d+)*$/);
    const { result, recorded } = await replayWritten(dir);
    expect(result.verdict).toBe('ok');
    expect(result.traceHash).toBe(recorded.traceHash);
  });
});
