/**
 * A fuzz campaign spread over machines: shards of its run numbers, the JSON report a shard (or a
 * whole campaign) writes, and the merge of shard reports into the report one process running the
 * whole campaign would have written — the same runs, seeds, verdicts and trace hashes, and the same
 * first failure, shrunk the same way.
 *
 * Shard K of N is a contiguous range of run numbers (see {@link shardRange}): a run's case depends
 * only on the campaign and its number (src/fuzz/fuzz.ts), so a shard needs nothing from the others,
 * and a contiguous range costs one walk of fast-check's generator to reach, where an interleaved
 * slice would generate every case of the campaign to run a share of them.
 *
 * A shard stops at its own first failure, as a single process does at the campaign's. Merging
 * keeps the runs up to the lowest failing run of all shards: every shard ran all its runs below its
 * own first failure, so together they ran every run below the lowest one, which is what one
 * process would have run, and that failure's shrink is the one it would have done.
 *
 * Pure data in, data out: the CLI reads and writes the files.
 */
import { SEED_MAX } from '../lib/prng.ts';
import {
  bool,
  int,
  json,
  list,
  num,
  object,
  oneOf,
  optional,
  required,
  custom,
  ShapeError,
  str,
  formatPath,
  type Shape,
} from '../lib/shape.ts';
import { STORES, type StoreKind } from '../sim/scenario.ts';
import { VERDICTS } from '../sim/verdict.ts';
import {
  isFailing,
  summarize,
  type FuzzFailure,
  type FuzzReport,
  type RunRecord,
  type ShrinkOutcome,
} from './results.ts';

/** A contiguous range of a campaign's runs: `first` to `last`, 1-based, both included. */
export interface RunRange {
  readonly first: number;
  readonly last: number;
}

/**
 * The fewest consecutive runs worth planning at once from run `first`: reaching a run's case costs
 * a jump of fast-check's generator per run before it (about a microsecond each), so blocks grow
 * with their start to keep that near 1 % of running them (tens of milliseconds each at least).
 */
export function minBlockSize(first: number): number {
  return Math.max(1, Math.ceil(first / 1000));
}

/** Shard `index` of `count` (1-based: 1/8 … 8/8). */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/**
 * The runs of shard K/N of a campaign of R runs: ⌊(K−1)·R/N⌋ + 1 to ⌊K·R/N⌋. The shards cover
 * 1…R exactly once, their sizes differ by at most one, and shard r/R is run r alone. Needs
 * 1 <= K <= N <= R.
 */
export function shardRange(runs: number, shard: Shard): RunRange {
  const { index, count } = shard;
  if (!(Number.isInteger(index) && Number.isInteger(count) && index >= 1 && index <= count))
    throw new RangeError(`shard ${index}/${count}: K must be from 1 to N`);
  if (count > runs) throw new RangeError(`${count} shards of ${runs} runs would leave some empty`);
  return {
    first: Math.floor(((index - 1) * runs) / count) + 1,
    last: Math.floor((index * runs) / count),
  };
}

/** The `K/N` of a shard. */
export function formatShard(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

/**
 * What makes reports parts of one campaign: what decides every run's case and how a failure
 * shrinks. Shards of one campaign must agree on all of it.
 */
export interface CampaignIdentity {
  readonly seed: number;
  readonly runs: number;
  readonly swarm: boolean;
  readonly store: StoreKind;
  /** The fuzzed scenario file (`--scenario`), by path and SHA-256 of its bytes; null for generated cases. */
  readonly scenario: { readonly file: string; readonly sha256: string } | null;
  readonly shrinkRuns: number;
}

/** A campaign's identity with its fields in one order, so that equal reports are equal text. */
function identityOf(campaign: CampaignIdentity): CampaignIdentity {
  return {
    seed: campaign.seed,
    runs: campaign.runs,
    swarm: campaign.swarm,
    store: campaign.store,
    scenario:
      campaign.scenario === null
        ? null
        : { file: campaign.scenario.file, sha256: campaign.scenario.sha256 },
    shrinkRuns: campaign.shrinkRuns,
  };
}

/** The first failure of a report: the failing run, its shrunk scenario and how to get both back. */
export interface ReportedFailure {
  /** The failing run's number. */
  readonly run: number;
  /** The regression file the shrunk scenario was written to (on the machine that ran the shard). */
  readonly file: string;
  /** `npx cloudbed run <file> --seed N`: replays the shrunk scenario. */
  readonly reproduce: string;
  /** `npx cloudbed fuzz … --shard r/R`: runs the failing run alone, shrinks it and writes the file again. */
  readonly rerun: string;
  /** The shrunk failure, as the engine reports it (its `data` is the scenario). */
  readonly shrunk: FuzzFailure;
  /** Steps and virtual time spent shrinking. */
  readonly shrinkSteps: number;
  readonly shrinkSimTimeMs: number;
}

/** Identifies the report format; a reader refuses any other. */
export const REPORT_FORMAT = 'cloudbed-fuzz-report/1';

/** The JSON report of a shard, of a whole campaign (shard 1/1), or of merged shards. */
export interface CampaignReport {
  readonly format: typeof REPORT_FORMAT;
  /** The command of the whole campaign (no `--shard`), as a regression file's header names it. */
  readonly command: string;
  readonly campaign: CampaignIdentity;
  /** Into how many shards the campaign is split, and which of them this report covers. */
  readonly shards: { readonly count: number; readonly covered: readonly number[] };
  /** Totals, folded from `results` and the failure's shrink. */
  readonly summary: {
    readonly runs: number;
    readonly verdicts: FuzzReport['verdicts'];
    readonly shrinkRuns: number;
    readonly steps: number;
    readonly simTimeMs: number;
  };
  readonly failure: ReportedFailure | null;
  /** Every search run, in run order: the shards' runs up to the first failure. */
  readonly results: readonly RunRecord[];
}

/** How a report's failure was written out, as the CLI did it. */
export interface WrittenFailure {
  readonly file: string;
  readonly reproduce: string;
  readonly rerun: string;
}

/** The report of a fuzz session that ran shard `shard` (1/1: the whole campaign). */
export function toCampaignReport(options: {
  readonly command: string;
  readonly campaign: CampaignIdentity;
  readonly shard: Shard;
  readonly report: FuzzReport;
  readonly written: WrittenFailure | undefined;
}): CampaignReport {
  const { report } = options;
  let failure: ReportedFailure | null = null;
  if (report.failure !== undefined) {
    if (options.written === undefined) throw new RangeError('a failure needs its written file');
    failure = {
      run: report.failure.runIndex,
      ...options.written,
      shrunk: report.failure,
      shrinkSteps: report.shrinkSteps,
      shrinkSimTimeMs: report.shrinkSimTimeMs,
    };
  }
  return {
    format: REPORT_FORMAT,
    command: options.command,
    campaign: identityOf(options.campaign),
    shards: { count: options.shard.count, covered: [options.shard.index] },
    summary: summaryOf(report),
    failure,
    results: report.results,
  };
}

function summaryOf(report: FuzzReport): CampaignReport['summary'] {
  return {
    runs: report.runs,
    verdicts: report.verdicts,
    shrinkRuns: report.shrinkRuns,
    steps: report.steps,
    simTimeMs: report.simTimeMs,
  };
}

/** The engine's view of a report: its runs and the shrink of its failure. */
export function fuzzReportOf(report: CampaignReport): FuzzReport {
  const shrink: ShrinkOutcome | undefined =
    report.failure === null
      ? undefined
      : {
          failure: report.failure.shrunk,
          steps: report.failure.shrinkSteps,
          simTimeMs: report.failure.shrinkSimTimeMs,
        };
  return summarize(report.results, shrink);
}

/**
 * A report as JSON text: two-space indentation, one line per run so that reports diff and grep
 * well, and a final newline.
 */
export function formatCampaignReport(report: CampaignReport): string {
  const { results, ...rest } = report;
  const head = JSON.stringify({ ...rest, results: [] }, null, 2);
  const placeholder = '"results": []';
  if (!head.endsWith(`${placeholder}\n}`)) throw new RangeError('results must come last');
  const lines = results.map((record) => `    ${JSON.stringify(record)}`);
  const body = lines.length === 0 ? '[]' : `[\n${lines.join(',\n')}\n  ]`;
  return `${head.slice(0, -placeholder.length - 2)}"results": ${body}\n}\n`;
}

/** A report that cannot be used: one line naming the file and the problem. */
export class ReportError extends Error {
  override name = 'ReportError';
}

const verdictShape = oneOf(VERDICTS);
const runResultShape = object({
  verdict: required(verdictShape),
  reason: required(str()),
  steps: required(int({ min: 0 })),
  simTimeMs: required(num({ min: 0 })),
  traceHash: required(str()),
});
const sizeShape = object({
  steps: required(int({ min: 0 })),
  faults: required(int({ min: 0 })),
  rates: required(list(str())),
});
const mappingShape: Shape<Record<string, unknown>> = custom(
  (value, path) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new ShapeError(path, 'must be a mapping');
    return json()(value, path) as Record<string, unknown>;
  },
  { type: 'object' },
);
const shrunkFieldsShape = object({
  runIndex: required(int({ min: 1 })),
  seed: required(int({ min: 0, max: SEED_MAX })),
  store: required(oneOf(STORES)),
  expected: required(verdictShape),
  result: required(runResultShape),
  original: required(object({ result: required(runResultShape), size: required(sizeShape) })),
  data: required(mappingShape),
  size: required(sizeShape),
  shrinkRuns: required(int({ min: 0 })),
  fastCheck: optional(object({ seed: required(int({ min: 0 })), path: required(str()) })),
});
const shrunkShape: Shape<FuzzFailure> = custom(
  (value, path) => {
    const failure = shrunkFieldsShape(value, path);
    return { ...failure, fastCheck: failure.fastCheck };
  },
  () => shrunkFieldsShape.jsonSchema(),
);
const recordShape = object({
  run: required(int({ min: 1 })),
  seed: required(int({ min: 0, max: SEED_MAX })),
  verdict: required(verdictShape),
  expected: required(verdictShape),
  reason: required(str()),
  steps: required(int({ min: 0 })),
  simTimeMs: required(num({ min: 0 })),
  traceHash: required(str()),
});
const reportShape = object({
  format: required(str()),
  command: required(str()),
  campaign: required(
    object({
      seed: required(int({ min: 0, max: SEED_MAX })),
      runs: required(int({ min: 1 })),
      swarm: required(bool()),
      store: required(oneOf(STORES)),
      scenario: optional(object({ file: required(str()), sha256: required(str()) })),
      shrinkRuns: required(int({ min: 0 })),
    }),
  ),
  shards: required(
    object({ count: required(int({ min: 1 })), covered: required(list(int({ min: 1 }))) }),
  ),
  summary: required(json()),
  failure: optional(
    object({
      run: required(int({ min: 1 })),
      file: required(str()),
      reproduce: required(str()),
      rerun: required(str()),
      shrunk: required(shrunkShape),
      shrinkSteps: required(int({ min: 0 })),
      shrinkSimTimeMs: required(num({ min: 0 })),
    }),
  ),
  results: required(list(recordShape)),
});

/**
 * Parses the JSON text of a report named `name` (a file path, for messages) and checks it is whole:
 * the right format, shards within their count, and exactly the runs its shards hold up to its first
 * failure. Throws {@link ReportError} with one line otherwise.
 */
export function parseCampaignReport(text: string, name: string): CampaignReport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ReportError(
      `${name}: not JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const format = (data as { format?: unknown } | null)?.format;
  if (format !== REPORT_FORMAT) {
    throw new ReportError(
      `${name}: not a cloudbed fuzz report (format ${JSON.stringify(format ?? null)}, expected "${REPORT_FORMAT}")`,
    );
  }
  let parsed;
  try {
    parsed = reportShape(data, []);
  } catch (error) {
    if (error instanceof ShapeError)
      throw new ReportError(`${name}: ${formatPath(error.path)}: ${error.problem}`);
    throw error;
  }
  const { campaign, shards, failure, results } = parsed;
  const report: CampaignReport = {
    format: REPORT_FORMAT,
    command: parsed.command,
    campaign: identityOf({ ...campaign, scenario: campaign.scenario ?? null }),
    shards,
    summary: parsed.summary as CampaignReport['summary'],
    failure: failure ?? null,
    results,
  };
  checkWhole(report, name);
  return report;
}

/** Checks that a report holds exactly the runs of its shards up to its first failure. */
function checkWhole(report: CampaignReport, name: string): void {
  const { runs } = report.campaign;
  const { count, covered } = report.shards;
  if (count > runs)
    throw new ReportError(`${name}: ${count} shards of ${runs} runs would leave some empty`);
  const seen = new Set<number>();
  for (const index of covered) {
    if (index > count) throw new ReportError(`${name}: shard ${index}/${count} does not exist`);
    if (seen.has(index)) throw new ReportError(`${name}: shard ${index}/${count} is listed twice`);
    seen.add(index);
  }
  const end = report.failure?.run ?? Infinity;
  const expected = expectedRuns(runs, count, covered, end);
  const got = report.results.map((record) => record.run);
  const firstDifference = expected.findIndex((run, i) => got[i] !== run);
  if (firstDifference !== -1 || got.length !== expected.length) {
    const i = firstDifference === -1 ? expected.length : firstDifference;
    throw new ReportError(
      `${name}: the results of shard${covered.length === 1 ? '' : 's'} ${covered.map((k) => `${k}/${count}`).join(', ')} should be runs ${describeRuns(expected)}, but ${got[i] === undefined ? `run ${expected[i] ?? '?'} is missing` : `run ${got[i]} is where run ${expected[i] ?? '(none)'} should be`}`,
    );
  }
  for (const record of report.results) {
    if (isFailing(record) && record.run !== end) {
      throw new ReportError(
        `${name}: run ${record.run} failed, yet the report ${report.failure === null ? 'has no failure' : `names run ${end} as its first failure`}`,
      );
    }
  }
  if (report.failure !== null) {
    const last = report.results.at(-1);
    if (last === undefined || last.run !== end || !isFailing(last))
      throw new ReportError(
        `${name}: its first failure, run ${end}, is not a failing run of its results`,
      );
    if (report.failure.shrunk.runIndex !== end)
      throw new ReportError(
        `${name}: the shrunk failure is of run ${report.failure.shrunk.runIndex}, not ${end}`,
      );
  }
}

/** The runs of `covered` shards of `count`, up to run `end`, in order. */
function expectedRuns(
  runs: number,
  count: number,
  covered: readonly number[],
  end: number,
): number[] {
  const out: number[] = [];
  for (const index of [...covered].sort((a, b) => a - b)) {
    const { first, last } = shardRange(runs, { index, count });
    for (let run = first; run <= Math.min(last, end); run++) out.push(run);
  }
  return out;
}

/** "1–20, 31–40" */
function describeRuns(runs: readonly number[]): string {
  if (runs.length === 0) return '(none)';
  const parts: string[] = [];
  let start = runs[0] as number;
  let previous = start;
  for (const run of [...runs.slice(1), Infinity]) {
    if (run === previous + 1) {
      previous = run;
      continue;
    }
    parts.push(start === previous ? `${start}` : `${start}–${previous}`);
    start = run;
    previous = run;
  }
  return parts.join(', ');
}

/** A report and the name it is known by (its file). */
export interface NamedReport {
  readonly name: string;
  readonly report: CampaignReport;
}

/**
 * Merges the reports of the shards of one campaign into the report of the whole campaign: the runs
 * up to the lowest first failure of any shard, and that failure. Refuses, with one line, reports of
 * different campaigns or shard counts, a shard given twice, and a missing shard.
 */
export function mergeCampaignReports(reports: readonly NamedReport[]): CampaignReport {
  const [head, ...rest] = reports;
  if (head === undefined) throw new ReportError('no reports to merge');
  const { campaign, shards } = head.report;
  for (const { name, report } of rest) {
    const mismatch = campaignMismatch(campaign, report.campaign);
    if (mismatch !== undefined)
      throw new ReportError(
        `${name} is from another campaign than ${head.name}: ${mismatch.field} ${mismatch.theirs} there, ${mismatch.ours} in ${head.name}`,
      );
    if (report.shards.count !== shards.count)
      throw new ReportError(
        `${name} splits the campaign into ${report.shards.count} shards, ${head.name} into ${shards.count}`,
      );
  }
  const holder = new Map<number, string>();
  for (const { name, report } of reports) {
    for (const index of report.shards.covered) {
      const other = holder.get(index);
      if (other !== undefined)
        throw new ReportError(`shard ${index}/${shards.count} is in both ${other} and ${name}`);
      holder.set(index, name);
    }
  }
  const missing = Array.from({ length: shards.count }, (_, i) => i + 1).filter(
    (index) => !holder.has(index),
  );
  if (missing.length > 0) {
    const named = missing.map((index) => `${index}/${shards.count}`).join(', ');
    throw new ReportError(
      `${missing.length === 1 ? `shard ${named} is` : `shards ${named} are`} missing (${reports.length} report${reports.length === 1 ? '' : 's'} given)`,
    );
  }
  let failure: ReportedFailure | null = null;
  for (const { report } of reports) {
    if (report.failure !== null && (failure === null || report.failure.run < failure.run))
      failure = report.failure;
  }
  const end = failure?.run ?? Infinity;
  const results = reports
    .flatMap(({ report }) => report.results)
    .filter((record) => record.run <= end)
    .sort((a, b) => a.run - b.run);
  const merged = summarize(
    results,
    failure === null
      ? undefined
      : { failure: failure.shrunk, steps: failure.shrinkSteps, simTimeMs: failure.shrinkSimTimeMs },
  );
  return {
    format: REPORT_FORMAT,
    command: head.report.command,
    campaign,
    shards: { count: shards.count, covered: Array.from({ length: shards.count }, (_, i) => i + 1) },
    summary: summaryOf(merged),
    failure,
    results: merged.results,
  };
}

/** The first field in which two campaigns differ, as options read: `--seed`, `2`, `1`. */
function campaignMismatch(
  ours: CampaignIdentity,
  theirs: CampaignIdentity,
): { field: string; ours: string; theirs: string } | undefined {
  const fields: [string, string, string][] = [
    ['--seed', String(ours.seed), String(theirs.seed)],
    ['--runs', String(ours.runs), String(theirs.runs)],
    ['--swarm', ours.swarm ? 'on' : 'off', theirs.swarm ? 'on' : 'off'],
    ['--store', ours.store, theirs.store],
    [
      '--scenario',
      ours.scenario === null
        ? 'none'
        : `${ours.scenario.file} (sha256 ${ours.scenario.sha256.slice(0, 12)})`,
      theirs.scenario === null
        ? 'none'
        : `${theirs.scenario.file} (sha256 ${theirs.scenario.sha256.slice(0, 12)})`,
    ],
    ['--shrink-runs', String(ours.shrinkRuns), String(theirs.shrinkRuns)],
  ];
  for (const [field, a, b] of fields) {
    if (field === '--scenario') {
      // The same file may sit at another path on another machine: its bytes decide.
      if ((ours.scenario?.sha256 ?? null) !== (theirs.scenario?.sha256 ?? null))
        return { field, ours: a, theirs: b };
      continue;
    }
    if (a !== b) return { field, ours: a, theirs: b };
  }
  return undefined;
}
