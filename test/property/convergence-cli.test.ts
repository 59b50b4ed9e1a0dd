// Goal: `cloudbed fuzz` does what its help says: runs seeds and summarises them (runs, verdicts,
// steps per second, simulated hours per wall-clock second), stops at the first failure, writes
// the shrunk scenario and prints the command that replays it, and exits like `cloudbed run` —
// and that command replays the same run (same verdict line, same trace hash).
// Method: the CLI's `main` in-process with stdout and stderr captured (by default its runs go to
// worker processes, one per core; --workers 1 keeps them in this process); a base scenario that
// cannot pass (it expects a status a create never gets) stands in for a bug; files go to a
// temporary directory. Budget: a few seconds.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('cloudbed fuzz', () => {
  it('runs generated scenarios and prints the summary', async () => {
    const { code, stdout, stderr } = await runCli([
      'fuzz',
      '--runs',
      '4',
      '--seed',
      '1',
      '--swarm',
    ]);
    expect(code, stdout + stderr).toBe(0);
    expect(stdout).toContain('fuzz: npx cloudbed fuzz --runs 4 --seed 1 --swarm');
    expect(stdout).toMatch(/^runs: 4 in [\d.]+ s \([\d.]+ runs\/s\)$/m);
    expect(stdout).toMatch(/^workers: (1 \(in process\)|\d+ processes)$/m);
    expect(stdout).toContain('verdicts: ok=4 correctness=0 liveness=0 crash=0');
    expect(stdout).toMatch(
      /^throughput: \d+ steps\/s, [\d.]+ simulated hours per wall-clock second$/m,
    );
    // stderr is not a terminal here: plain progress lines, no bar.
    expect(stderr).toContain('4/4 runs, 0 failed');
    expect(stderr).not.toContain('\r');
  });

  it('shrinks the first failure, writes it, and its replay command reproduces the run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cloudbed-fuzz-cli-'));
    dirs.push(dir);
    const base = join(dir, 'base.yaml');
    await writeFile(
      base,
      [
        '# Goal: a scenario that cannot pass. Method: a create expecting 200 (creates answer 202).',
        'name: cannot-pass',
        'topology: { compute: { count: 1 }, storage: { count: 1 }, mainLoops: 1 }',
        'workload:',
        '  - { at: 1s, request: POST /v1/volumes, body: { name: a, sizeGb: 5 } }',
        '  - { at: 2s, request: POST /v1/volumes, body: { name: b, sizeGb: 5 }, expectStatus: 200 }',
        '',
      ].join('\n'),
    );
    const out = join(dir, 'regressions');
    const fuzzed = await runCli([
      'fuzz',
      '--scenario',
      base,
      '--runs',
      '5',
      '--seed',
      '3',
      '--out',
      out,
      '--workers',
      '1',
    ]);
    expect(fuzzed.code, fuzzed.stdout + fuzzed.stderr).toBe(3);
    expect(fuzzed.stdout).toContain('first failure: run 1: verdict=correctness (expected ok)');
    const written = await readdir(out);
    expect(written).toEqual(['cannot-pass.yaml']);
    const file = join(out, 'cannot-pass.yaml');
    expect(fuzzed.stdout).toContain(`reproduce: npx cloudbed run ${file} --seed 3`);
    const line = fuzzed.stdout.split('\n').find((l) => l.startsWith('seed=3 scenario=cannot-pass'));
    expect(line).toMatch(/verdict=correctness trace-hash=[0-9a-f]+/);
    const replayed = await runCli(['run', file, '--seed', '3']);
    expect(replayed.code).toBe(3);
    // The same verdict line: same seed, verdict, trace hash, steps and virtual time.
    expect(replayed.stdout.trim()).toBe(line);
  });

  it('refuses bad input with exit code 2', async () => {
    for (const argv of [
      ['fuzz', 'extra.yaml'],
      ['fuzz', '--runs', '0'],
      ['fuzz', '--store', 'postgres'],
      ['fuzz', '--scenario', '/nonexistent/scenario.yaml'],
      ['fuzz', '--shard', '0/2'],
      ['fuzz', '--shard', '3/2'],
      ['fuzz', '--shard', '2'],
      ['fuzz', '--shard', '1/two'],
      ['fuzz', '--runs', '4', '--shard', '1/8'],
      ['fuzz', '--workers', '0'],
      ['fuzz', '--worker'],
      ['fuzz', 'merge'],
      ['fuzz', 'merge', '/nonexistent/shard-1.json'],
    ]) {
      const { code, stderr } = await runCli(argv);
      expect(code, argv.join(' ')).toBe(2);
      expect(stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
