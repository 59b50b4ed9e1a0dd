/**
 * Command-line parsing helpers: strict option parsing with one-line errors (exit code 2) that name
 * the command, the option and the problem.
 */
import { parseArgs } from 'node:util';
import { SEED_MAX } from '../lib/prng.ts';

/** Bad command-line input: printed as one line, exit code 2, no stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Options that take a value (`--seed 7`), repeatable ones (`multiple`) and flags (`--swarm`). */
export type OptionSpec = Record<
  string,
  { type: 'string' | 'boolean'; short?: string; multiple?: boolean }
>;

/** Parsed options: strings for value options (lists when repeatable), booleans for flags. */
export type ParsedOptions<O extends OptionSpec> = {
  [K in keyof O]?: O[K]['type'] extends 'boolean'
    ? boolean
    : O[K]['multiple'] extends true
      ? string[]
      : string;
};

/**
 * The candidate closest to `word` by edit distance, when it is close enough to be a likely typo
 * (at most a third of its length, and at least one edit away from nothing), else null.
 */
export function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.slice(0, 64), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Edit distance: insertions, deletions, substitutions and swaps of neighbours, one each. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    const up = rows[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(
        (up[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (up[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = d;
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** Parses `argv` against `options`; unknown options and missing values become {@link UsageError}s. */
export function parse<O extends OptionSpec>(
  command: string,
  argv: readonly string[],
  options: O,
): { values: ParsedOptions<O>; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    const values: ParsedOptions<O> = parsed.values;
    return { values, positionals: parsed.positionals };
  } catch (error) {
    const message =
      error instanceof Error
        ? error.message.replace(/\. To specify a positional.*$/s, '')
        : String(error);
    const unknown = /^Unknown option '(-{1,2}[^']*)'/.exec(message)?.[1];
    const guess =
      unknown === undefined
        ? null
        : closest(
            unknown,
            Object.keys(options).map((name) => `--${name}`),
          );
    const hint = guess === null ? '' : ` (did you mean ${guess}?)`;
    throw new UsageError(`cloudbed ${command}: ${message}${hint} (see cloudbed ${command} --help)`);
  }
}

/** Parses a non-negative integer option such as `--seed` or `--runs`. */
export function intOption(
  command: string,
  name: string,
  value: string | undefined,
  options: { min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const min = options.min ?? 0;
  const max = options.max ?? SEED_MAX;
  if (
    !/^\d+$/.test(value) ||
    !Number.isSafeInteger(Number(value)) ||
    Number(value) < min ||
    Number(value) > max
  ) {
    throw new UsageError(
      `cloudbed ${command}: --${name} must be a whole number from ${min} to ${max}, got '${value}'`,
    );
  }
  return Number(value);
}

/** Exactly one positional argument named `what`. */
export function onePositional(
  command: string,
  positionals: readonly string[],
  what: string,
): string {
  if (positionals.length === 0)
    throw new UsageError(`cloudbed ${command}: missing ${what} (see cloudbed ${command} --help)`);
  if (positionals.length > 1) {
    throw new UsageError(
      `cloudbed ${command}: expected one ${what}, got ${positionals.length}: ${positionals.join(' ')}`,
    );
  }
  return positionals[0] as string;
}
