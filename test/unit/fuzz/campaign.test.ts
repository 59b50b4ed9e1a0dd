// Goal: shards of a fuzz campaign cover its runs exactly once, and merging the shards' reports
// gives the report of the whole campaign — the runs up to the lowest failure and that failure —
// whatever the shard count and wherever the failures fall; reports read back as written; and merge
// refuses, with one line naming the problem, reports of another campaign, a shard given twice and
// a missing shard.
// Method: properties over synthetic campaigns (which runs fail is drawn; a run's record is a
// function of its number, as in the engine), so no simulation runs here; examples for the errors.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  formatCampaignReport,
  mergeCampaignReports,
  parseCampaignReport,
  ReportError,
  shardRange,
  toCampaignReport,
  type CampaignIdentity,
  type CampaignReport,
  type NamedReport,
  type Shard,
} from '../../../src/fuzz/campaign.ts';
import {
  isFailing,
  summarize,
  type FuzzFailure,
  type RunRecord,
} from '../../../src/fuzz/results.ts';

const COMMAND = 'npx cloudbed fuzz --runs R --seed 1 --swarm';

function identity(runs: number, changes: Partial<CampaignIdentity> = {}): CampaignIdentity {
  return {
    seed: 1,
    runs,
    swarm: true,
    store: 'memory',
    scenario: null,
    shrinkRuns: 300,
    ...changes,
  };
}

/** Run `run`'s record: a function of the run alone, as a run's case is in the engine. */
function record(run: number, failing: ReadonlySet<number>): RunRecord {
  return {
    run,
    seed: run * 7919,
    verdict: failing.has(run) ? 'correctness' : 'ok',
    expected: 'ok',
    reason: failing.has(run) ? `run ${run} broke` : '',
    steps: 100 + run,
    simTimeMs: 1000 * run + 0.25,
    traceHash: run.toString(16).padStart(16, '0'),
  };
}

/** The shrink of a failing run: also a function of the run alone. */
function shrunk(failing: RunRecord): FuzzFailure {
  const result = {
    verdict: failing.verdict,
    reason: failing.reason,
    steps: 10,
    simTimeMs: 5,
    traceHash: 'f'.repeat(16),
  };
  return {
    runIndex: failing.run,
    seed: failing.seed,
    store: 'memory',
    expected: 'ok',
    result,
    original: { result, size: { steps: 3, faults: 1, rates: ['bus'] } },
    data: { name: `fuzz-s1-r${failing.run}`, workload: [] },
    size: { steps: 1, faults: 0, rates: [] },
    shrinkRuns: 12,
    fastCheck: { seed: 1, path: `${failing.run - 1}:0` },
  };
}

/** What `cloudbed fuzz --shard K/N --report` writes for this synthetic campaign. */
function shardReport(
  runs: number,
  shard: Shard,
  failing: ReadonlySet<number>,
  campaign: CampaignIdentity = identity(runs),
): CampaignReport {
  const { first, last } = shardRange(runs, shard);
  const results: RunRecord[] = [];
  for (let run = first; run <= last; run++) {
    results.push(record(run, failing));
    if (failing.has(run)) break;
  }
  const failure = results.find(isFailing);
  const report = summarize(
    results,
    failure === undefined ? undefined : { failure: shrunk(failure), steps: 120, simTimeMs: 60.5 },
  );
  return toCampaignReport({
    command: COMMAND,
    campaign,
    shard,
    report,
    written:
      failure === undefined
        ? undefined
        : {
            file: `scenarios/regressions/fuzz-s1-r${failure.run}.yaml`,
            reproduce: `npx cloudbed run scenarios/regressions/fuzz-s1-r${failure.run}.yaml --seed ${failure.seed}`,
            rerun: `${COMMAND} --shard ${failure.run}/${runs}`,
          },
  });
}

function shards(
  runs: number,
  count: number,
  failing: ReadonlySet<number>,
  campaign?: CampaignIdentity,
): NamedReport[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `shard-${i + 1}.json`,
    report: shardReport(runs, { index: i + 1, count }, failing, campaign),
  }));
}

function mergeError(reports: readonly NamedReport[]): string {
  try {
    mergeCampaignReports(reports);
  } catch (error) {
    if (error instanceof ReportError) return error.message;
    throw error;
  }
  throw new Error('expected a ReportError');
}

const campaigns = fc.integer({ min: 1, max: 60 }).chain((runs) =>
  fc.record({
    runs: fc.constant(runs),
    count: fc.integer({ min: 1, max: runs }),
    failing: fc.uniqueArray(fc.integer({ min: 1, max: runs }), { maxLength: 4 }),
  }),
);

describe('shards', () => {
  test.prop([campaigns])('cover every run exactly once, in order, sizes within one', (c) => {
    const covered: number[] = [];
    const sizes: number[] = [];
    for (let index = 1; index <= c.count; index++) {
      const { first, last } = shardRange(c.runs, { index, count: c.count });
      sizes.push(last - first + 1);
      for (let run = first; run <= last; run++) covered.push(run);
    }
    expect(covered).toEqual(Array.from({ length: c.runs }, (_, i) => i + 1));
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
  });

  it('r/R is run r alone (the rerun command of a failure)', () => {
    for (let run = 1; run <= 17; run++)
      expect(shardRange(17, { index: run, count: 17 })).toEqual({ first: run, last: run });
  });
});

describe('merging shard reports', () => {
  test.prop([campaigns])(
    'gives the report of the whole campaign, whatever the shards and failures',
    (c) => {
      const failing = new Set(c.failing);
      const whole = shardReport(c.runs, { index: 1, count: 1 }, failing);
      // Any order of the files.
      const merged = mergeCampaignReports(shards(c.runs, c.count, failing).reverse());
      expect(merged.results).toEqual(whole.results);
      expect(merged.summary).toEqual(whole.summary);
      expect(merged.failure).toEqual(whole.failure);
      expect(merged.shards).toEqual({
        count: c.count,
        covered: Array.from({ length: c.count }, (_, i) => i + 1),
      });
    },
  );

  test.prop([campaigns])('reads back every report as written, merged ones too', (c) => {
    const failing = new Set(c.failing);
    const parts = shards(c.runs, c.count, failing);
    for (const { name, report } of [
      ...parts,
      { name: 'merged.json', report: mergeCampaignReports(parts) },
    ]) {
      const text = formatCampaignReport(report);
      expect(parseCampaignReport(text, name)).toEqual(report);
      expect(formatCampaignReport(parseCampaignReport(text, name))).toBe(text);
    }
  });

  it('takes a merged report for the whole campaign', () => {
    const merged = mergeCampaignReports(shards(12, 3, new Set([9])));
    expect(mergeCampaignReports([{ name: 'merged.json', report: merged }])).toEqual(merged);
  });

  it('writes one line per run', () => {
    const text = formatCampaignReport(shardReport(3, { index: 1, count: 1 }, new Set()));
    expect(text).toContain(`"results": [\n    {"run":1,`);
    expect(text.endsWith('}\n  ]\n}\n')).toBe(true);
  });
});

describe('merge refuses', () => {
  const failing = new Set<number>();

  it('reports of another campaign, naming the option', () => {
    const [a] = shards(20, 2, failing) as [NamedReport];
    const other = shards(20, 2, failing, identity(20, { seed: 2 }))[1] as NamedReport;
    expect(mergeError([a, other])).toBe(
      'shard-2.json is from another campaign than shard-1.json: --seed 2 there, 1 in shard-1.json',
    );
    const swarmless = shards(20, 2, failing, identity(20, { swarm: false }))[1] as NamedReport;
    expect(mergeError([a, swarmless])).toContain('--swarm off there, on in shard-1.json');
    const file = { file: 'scenarios/a.yaml', sha256: 'a'.repeat(64) };
    const [x] = shards(20, 2, failing, identity(20, { scenario: file })) as [NamedReport];
    const moved = { file: '/elsewhere/a.yaml', sha256: 'a'.repeat(64) };
    const y = shards(20, 2, failing, identity(20, { scenario: moved }))[1] as NamedReport;
    // The same file at another path is the same campaign; other bytes are not.
    expect(() => mergeCampaignReports([x, y])).not.toThrow();
    const edited = { file: 'scenarios/a.yaml', sha256: 'b'.repeat(64) };
    const z = shards(20, 2, failing, identity(20, { scenario: edited }))[1] as NamedReport;
    expect(mergeError([x, z])).toContain('--scenario scenarios/a.yaml (sha256 bbbbbbbbbbbb) there');
    const longer = shards(40, 2, failing)[1] as NamedReport;
    expect(mergeError([a, longer])).toContain('--runs 40 there, 20 in shard-1.json');
  });

  it('another shard count, a shard given twice, and missing shards, naming them', () => {
    const four = shards(20, 4, failing);
    const [a] = shards(20, 2, failing) as [NamedReport];
    expect(mergeError([a, four[1] as NamedReport])).toBe(
      'shard-2.json splits the campaign into 4 shards, shard-1.json into 2',
    );
    expect(
      mergeError([...four, { name: 'again.json', report: (four[2] as NamedReport).report }]),
    ).toBe('shard 3/4 is in both shard-3.json and again.json');
    expect(mergeError([four[0] as NamedReport, four[2] as NamedReport])).toBe(
      'shards 2/4, 4/4 are missing (2 reports given)',
    );
    expect(mergeError([])).toBe('no reports to merge');
  });

  it('a report that is not whole, or not a report', () => {
    const report = shardReport(20, { index: 2, count: 2 }, new Set([15]));
    const text = formatCampaignReport(report);
    const parse = (value: unknown): string => {
      try {
        parseCampaignReport(typeof value === 'string' ? value : JSON.stringify(value), 'r.json');
      } catch (error) {
        if (error instanceof ReportError) return error.message;
        throw error;
      }
      throw new Error('expected a ReportError');
    };
    expect(parse('{')).toMatch(/^r\.json: not JSON \(/);
    expect(parse({ format: 'other' })).toBe(
      'r.json: not a cloudbed fuzz report (format "other", expected "cloudbed-fuzz-report/1")',
    );
    const data = JSON.parse(text) as CampaignReport;
    expect(parse({ ...data, results: data.results.slice(1) })).toBe(
      'r.json: the results of shard 2/2 should be runs 11–15, but run 12 is where run 11 should be',
    );
    expect(parse({ ...data, results: data.results.slice(0, -1) })).toBe(
      'r.json: the results of shard 2/2 should be runs 11–15, but run 15 is missing',
    );
    expect(parse({ ...data, failure: null })).toBe(
      'r.json: the results of shard 2/2 should be runs 11–20, but run 16 is missing',
    );
    expect(parse({ ...data, campaign: { ...data.campaign, seed: -1 } })).toBe(
      'r.json: campaign.seed: must be at least 0, got -1',
    );
  });
});
