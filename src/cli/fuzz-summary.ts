/**
 * What `cloudbed fuzz` and `cloudbed fuzz merge` both print: the verdict counts and the
 * explanation of a shrunk failure with the commands that reproduce it.
 */
import type { FuzzFailure, FuzzReport } from '../fuzz/results.ts';
import { describeShrink } from '../fuzz/results.ts';
import { VERDICTS } from '../sim/verdict.ts';
import { verdictLine } from './run.ts';

/** `verdicts: ok=… correctness=… liveness=… crash=…` */
export function verdictsLine(verdicts: FuzzReport['verdicts']): string {
  return `verdicts: ${VERDICTS.map((v) => `${v}=${verdicts[v]}`).join(' ')}`;
}

/** `npx cloudbed run <file> --seed N [--store KIND]`: replays a written failure. */
export function reproduceCommand(failure: FuzzFailure, file: string): string {
  return `npx cloudbed run ${file} --seed ${failure.seed}${failure.store === 'memory' ? '' : ` --store ${failure.store}`}`;
}

/**
 * The lines explaining a shrunk failure: the first failing run, the shrinking, fast-check's seed
 * and path, the file, the commands that reproduce it and the replay's verdict line.
 */
export function failureReport(
  failure: FuzzFailure,
  where: { readonly file: string; readonly rerun?: string; readonly wrote?: string },
): string {
  const original = failure.original.result;
  const lines = [
    `first failure: run ${failure.runIndex}: verdict=${original.verdict} (expected ${failure.expected}): ${original.reason}`,
    describeShrink(failure),
    ...(failure.fastCheck === undefined
      ? []
      : [`fast-check: seed=${failure.fastCheck.seed} path="${failure.fastCheck.path}"`]),
    `shrunk: ${failure.result.verdict}: ${failure.result.reason}`,
    where.wrote ?? `wrote ${where.file}`,
    `reproduce: ${reproduceCommand(failure, where.file)}`,
    ...(where.rerun === undefined ? [] : [`rerun: ${where.rerun}`]),
    verdictLine(failure.seed, String(failure.data['name']), failure.result),
    '',
  ];
  return lines.join('\n');
}
