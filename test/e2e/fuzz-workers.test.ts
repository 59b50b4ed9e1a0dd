// Goal: splitting a fuzz campaign changes nothing in its outcome. `cloudbed fuzz --workers 2`
// gives the runs, verdicts, trace hashes and shrunk first failure of `--workers 1`; the reports of
// `--shard K/N` merged by `cloudbed fuzz merge` are the report of the whole campaign; and a worker
// that dies, or Ctrl-C, ends the session with one clear line, a non-zero code and no worker left.
// Method: the CLI's `main` in-process (its workers are real child processes of bin/cloudbed.js),
// and bin/cloudbed.js itself as a child process where the parent must be one. A scenario file
// with a settle budget too tight for some drawn fault plans stands in for a bug: under --swarm
// some runs fail (liveness) and others pass, so the first failure is not the first run, and it
// shrinks with fast-check and delta debugging. Reports are compared as data; timings never.
// Budget: about 30 s on two idle cores, most of it starting worker processes (four sets of two).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from '../support/cli.ts';
import type { CampaignReport } from '../../src/fuzz/campaign.ts';

const dir = mkdtempSync(join(tmpdir(), 'cloudbed-fuzz-workers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI with `args`. */
const cloudbed = (...args: string[]): Promise<CliRun> => runCli(args);

function readReport(file: string): CampaignReport {
  return JSON.parse(readFileSync(file, 'utf8')) as CampaignReport;
}

/** A report without what depends on where files went: the regression file's path. */
function outcome(report: CampaignReport) {
  const { failure, results, summary, campaign, command } = report;
  return {
    command,
    campaign,
    summary,
    results,
    failure: failure === null ? null : { ...failure, file: '', reproduce: '' },
  };
}

const TIGHT = join(dir, 'tight.yaml');
writeFileSync(
  TIGHT,
  `# Goal: a scenario some drawn fault plans cannot settle in time. Method: a 20 s settle budget.
name: tight-budget
topology: { compute: { count: 1 }, storage: { count: 1 }, mainLoops: 1 }
workload:
  - { at: 1s, request: POST /v1/volumes, body: { name: a, sizeGb: 5 }, save: a }
  - { at: 2s, request: 'POST /v1/volumes/{a}?action=snapshot', body: { name: s } }
  - { at: 3s, request: POST /v1/volumes, body: { name: b, sizeGb: 5 } }
budgets:
  settleWithin: 20s
`,
);
// If the simulator changes so that no run of this campaign fails any more, pick another --seed.
const FAILING = [
  '--scenario',
  TIGHT,
  '--swarm',
  '--runs',
  '30',
  '--seed',
  '1',
  '--shrink-runs',
  '20',
];

describe('cloudbed fuzz --workers', () => {
  it('gives the report and the shrunk first failure of --workers 1', async () => {
    const runs = [];
    for (const workers of [1, 2]) {
      const out = join(dir, `out-w${workers}`);
      const report = join(dir, `w${workers}.json`);
      const run = await cloudbed(
        'fuzz',
        ...FAILING,
        '--workers',
        String(workers),
        '--out',
        out,
        '--report',
        report,
      );
      runs.push({ ...run, out, report: readReport(report) });
    }
    const [one, two] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(one.code, one.stderr).toBe(4);
    expect(two.code, two.stderr).toBe(4);
    expect(one.stdout).toContain('workers: 1 (in process)');
    expect(two.stdout).toContain('workers: 2 processes');
    const failure = one.report.failure!;
    expect(failure.shrunk.fastCheck?.path).toMatch(new RegExp(`^${failure.run - 1}(:\\d+)*$`));
    expect(outcome(two.report)).toEqual(outcome(one.report));
    // The same lines, but for timings and where the file went.
    const lines = (run: { stdout: string; out: string }) =>
      run.stdout
        .split('\n')
        .filter((line) => !/^(runs|workers|throughput|report): /.test(line))
        .map((line) => line.replaceAll(run.out, 'OUT'));
    expect(lines(two)).toEqual(lines(one));
    // The regression files replay the same way.
    for (const run of runs) expect(readdirSync(run.out)).toEqual(['tight-budget.yaml']);
    expect(
      readFileSync(join(two.out, 'tight-budget.yaml'), 'utf8').replaceAll(two.out, 'OUT'),
    ).toBe(readFileSync(join(one.out, 'tight-budget.yaml'), 'utf8').replaceAll(one.out, 'OUT'));
  });

  it('stops every worker and says why when a worker dies or the session is interrupted', async () => {
    for (const how of ['worker', 'interrupt'] as const) {
      const child = spawn(
        process.execPath,
        ['bin/cloudbed.js', 'fuzz', '--runs', '200', '--swarm', '--workers', '2'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      const running = new Promise<void>((resolve) =>
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString('utf8');
          // A progress line: the workers are up and running runs.
          if (/\/200 runs/.test(stderr)) resolve();
        }),
      );
      // 'close': the process has exited and everything it wrote has been read.
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      await Promise.race([
        running,
        exited.then((code) => {
          throw new Error(`cloudbed fuzz ended (${code}) before running: ${stderr}`);
        }),
      ]);
      const workers = childrenOf(child.pid!);
      expect(workers).toHaveLength(2);
      if (how === 'worker') process.kill(workers[0]!, 'SIGKILL');
      else child.kill('SIGINT');
      const code = await exited;
      const last = stderr.trim().split('\n').at(-1);
      if (how === 'worker') {
        expect(code).toBe(8);
        expect(last).toMatch(
          /^cloudbed fuzz: worker \d \(pid \d+\) was killed by SIGKILL while running runs \d+–\d+; stopped 1 worker$/,
        );
      } else {
        expect(code).toBe(130);
        expect(last).toBe('cloudbed fuzz: interrupted by SIGINT; stopped 2 workers');
      }
      for (const pid of workers) expect(existsSync(`/proc/${pid}`), `worker ${pid}`).toBe(false);
    }
  });
});

describe('cloudbed fuzz --shard and merge', () => {
  it('two shard halves merged report exactly the runs of one full run', async () => {
    const args = ['--runs', '20', '--swarm', '--seed', '1'];
    const full = await cloudbed(
      'fuzz',
      ...args,
      '--workers',
      '1',
      '--report',
      join(dir, 'full.json'),
    );
    expect(full.code, full.stderr).toBe(0);
    const halves: string[] = [];
    for (const k of [1, 2]) {
      const file = join(dir, `half-${k}.json`);
      // A shard composes with workers: the first half on two, the second in process.
      const run = await cloudbed(
        'fuzz',
        ...args,
        '--workers',
        k === 1 ? '2' : '1',
        '--shard',
        `${k}/2`,
        '--report',
        file,
      );
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(`shard ${k}/2: runs ${k === 1 ? '1–10' : '11–20'}`);
      halves.push(file);
    }
    const merged = await cloudbed(
      'fuzz',
      'merge',
      ...halves.reverse(),
      '--report',
      join(dir, 'merged.json'),
    );
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stdout).toContain('shards: 2 from 2 reports');
    expect(merged.stdout).toContain('runs: 20\n');
    const whole = readReport(join(dir, 'full.json'));
    expect(whole.results.map((r) => r.run)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(outcome(readReport(join(dir, 'merged.json')))).toEqual(outcome(whole));
  });

  it('merged shards give the first failure of the whole campaign, shrunk the same way', async () => {
    const whole = readReport(join(dir, 'w1.json'));
    const files: string[] = [];
    for (const k of [1, 2, 3]) {
      const file = join(dir, `third-${k}.json`);
      const out = join(dir, `out-third-${k}`);
      await cloudbed(
        'fuzz',
        ...FAILING,
        '--workers',
        '1',
        '--shard',
        `${k}/3`,
        '--out',
        out,
        '--report',
        file,
      );
      files.push(file);
    }
    const merged = await cloudbed(
      'fuzz',
      'merge',
      ...files,
      '--report',
      join(dir, 'merged-3.json'),
    );
    // Exits as `cloudbed fuzz` does for the first failure; names its rerun command.
    expect(merged.code, merged.stderr).toBe(4);
    expect(merged.stdout).toContain(
      `rerun: npx cloudbed fuzz --runs 30 --seed 1 --swarm --scenario ${TIGHT} --shrink-runs 20 --shard ${whole.failure!.run}/30`,
    );
    expect(outcome(readReport(join(dir, 'merged-3.json')))).toEqual(outcome(whole));

    // Refusals: one line, exit 2, naming the problem.
    for (const [argv, message] of [
      [[files[0]!, files[1]!], 'shard 3/3 is missing (2 reports given)'],
      [[...files, files[1]!], `shard 2/3 is in both ${files[1]} and ${files[1]}`],
      [[files[0]!, join(dir, 'half-2.json')], 'is from another campaign than'],
      [[join(dir, 'nothing.json')], 'no such file'],
    ] as const) {
      const refused = await cloudbed('fuzz', 'merge', ...argv);
      expect(refused.code, refused.stdout).toBe(2);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toContain(message);
    }
  });
});

/** The pids whose parent is `pid` (Linux: read from /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}
