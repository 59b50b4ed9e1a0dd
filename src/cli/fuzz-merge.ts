/**
 * `cloudbed fuzz merge A.json B.json …`: combines the reports of the shards of one campaign
 * (`cloudbed fuzz --shard K/N --report FILE` on many machines) into the summary and first failure
 * one process running the whole campaign would have given, and optionally its report. The checks
 * and the merge are src/fuzz/campaign.ts; this file reads, prints and writes.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  formatCampaignReport,
  mergeCampaignReports,
  parseCampaignReport,
  ReportError,
  type CampaignReport,
  type NamedReport,
} from '../fuzz/campaign.ts';
import { exitCodeFor } from '../sim/verdict.ts';
import { parse, UsageError } from './args.ts';
import { failureReport, verdictsLine } from './fuzz-summary.ts';

/**
 * Runs `cloudbed fuzz merge` with `argv` (after `merge`). Resolves to the exit code: 0 when no shard
 * failed, otherwise the code of the first failure's shrunk verdict, as `cloudbed fuzz` gives it.
 */
export async function fuzzMergeCommand(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parse('fuzz merge', argv, { report: { type: 'string' } });
  if (positionals.length === 0)
    throw new UsageError(
      'cloudbed fuzz merge: missing report files (the --report files of the shards: cloudbed fuzz merge A.json B.json …)',
    );
  const reports: NamedReport[] = [];
  for (const name of positionals) reports.push({ name, report: await readReport(name) });
  let merged: CampaignReport;
  try {
    merged = mergeCampaignReports(reports);
  } catch (error) {
    if (error instanceof ReportError) throw new UsageError(`cloudbed fuzz merge: ${error.message}`);
    throw error;
  }
  process.stdout.write(mergeSummary(merged, reports.length));
  if (values.report !== undefined) {
    await mkdir(dirname(values.report), { recursive: true });
    await writeFile(values.report, formatCampaignReport(merged), 'utf8');
    process.stdout.write(`report: ${values.report}\n`);
  }
  const shrunk = merged.failure?.shrunk;
  return shrunk === undefined ? 0 : exitCodeFor(shrunk.result.verdict, shrunk.expected);
}

/** Reads and checks one report; every problem is one line naming the file. */
async function readReport(name: string): Promise<CampaignReport> {
  let text: string;
  try {
    text = await readFile(name, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cloudbed fuzz merge: ${name}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a report' : `cannot read (${code ?? String(error)})`}`,
    );
  }
  try {
    return parseCampaignReport(text, name);
  } catch (error) {
    if (error instanceof ReportError) throw new UsageError(`cloudbed fuzz merge: ${error.message}`);
    throw error;
  }
}

/** The merged summary: the campaign, runs, verdicts, work done and the first failure. */
function mergeSummary(report: CampaignReport, files: number): string {
  const { summary, shards, failure } = report;
  const shrink = summary.shrinkRuns > 0 ? ` + ${summary.shrinkRuns} shrink runs` : '';
  const lines = [
    `fuzz merge: ${report.command}`,
    `shards: ${shards.count} from ${files} report${files === 1 ? '' : 's'}`,
    `runs: ${summary.runs}${shrink}`,
    verdictsLine(summary.verdicts),
    `work: ${summary.steps} steps, ${(summary.simTimeMs / 3_600_000).toFixed(2)} simulated hours`,
    '',
  ];
  if (failure !== null) {
    lines.pop();
    lines.push(
      failureReport(failure.shrunk, {
        file: failure.file,
        rerun: failure.rerun,
        wrote: `written by its shard to ${failure.file}`,
      }),
    );
  }
  return lines.join('\n');
}
