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
    throw new UsageError(`cloudbed ${command}: ${message} (see cloudbed ${command} --help)`);
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
