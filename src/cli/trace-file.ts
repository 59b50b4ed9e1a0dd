/**
 * Trace files (JSON Lines): a header that embeds the scenario text, the seed and the store; every
 * trace entry; and a footer with the verdict and hash. A trace file is self-contained: `cloudbed
 * replay` needs nothing else, even if the scenario file has changed since.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { STORES, type StoreKind } from '../sim/scenario.ts';
import type { RunResult } from '../sim/simulation.ts';

export const TRACE_FORMAT = 'cloudbed-trace';
export const TRACE_FORMAT_VERSION = 1;

export interface TraceHeader {
  readonly format: typeof TRACE_FORMAT;
  readonly version: number;
  readonly scenarioFile: string;
  readonly scenarioText: string;
  readonly seed: number;
  readonly store: StoreKind;
}

export interface TraceFile {
  readonly header: TraceHeader;
  readonly lines: readonly string[];
  readonly end: RunResult;
}

/** A trace file that cannot be read: names the file and the problem. */
export class TraceFileError extends Error {
  override name = 'TraceFileError';
}

export async function writeTraceFile(
  path: string,
  header: Omit<TraceHeader, 'format' | 'version'>,
  lines: readonly string[],
  end: RunResult,
): Promise<void> {
  const head = JSON.stringify({ format: TRACE_FORMAT, version: TRACE_FORMAT_VERSION, ...header });
  await writeFile(
    path,
    `${head}\n${lines.join('\n')}${lines.length > 0 ? '\n' : ''}${JSON.stringify({ end })}\n`,
  );
}

export async function readTraceFile(path: string): Promise<TraceFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new TraceFileError(
      `${path}: cannot read the trace file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  const lines = text.split('\n').filter((line) => line !== '');
  const parseLine = (line: string | undefined, where: string): unknown => {
    try {
      return JSON.parse(line ?? '');
    } catch {
      throw new TraceFileError(`${path}: ${where} is not JSON; is this a cloudbed trace file?`);
    }
  };
  const header = parseLine(lines[0], 'line 1') as Partial<TraceHeader> | null;
  if (header === null || typeof header !== 'object' || header.format !== TRACE_FORMAT) {
    throw new TraceFileError(
      `${path}: line 1 is not a ${TRACE_FORMAT} header; is this a cloudbed trace file?`,
    );
  }
  if (header.version !== TRACE_FORMAT_VERSION) {
    throw new TraceFileError(
      `${path}: trace format version ${String(header.version)} is not supported (expected ${TRACE_FORMAT_VERSION})`,
    );
  }
  if (typeof header.scenarioText !== 'string' || typeof header.scenarioFile !== 'string') {
    throw new TraceFileError(`${path}: the header lacks the scenario`);
  }
  if (typeof header.seed !== 'number' || !Number.isSafeInteger(header.seed) || header.seed < 0) {
    throw new TraceFileError(`${path}: the header's seed is not a non-negative integer`);
  }
  if (!(STORES as readonly unknown[]).includes(header.store)) {
    throw new TraceFileError(`${path}: the header's store must be one of ${STORES.join(', ')}`);
  }
  const footer = parseLine(lines.at(-1), `line ${lines.length}`) as { end?: RunResult } | null;
  if (
    lines.length < 2 ||
    footer === null ||
    typeof footer !== 'object' ||
    footer.end === undefined
  ) {
    throw new TraceFileError(
      `${path}: the trace has no end record; the run that wrote it did not finish`,
    );
  }
  return { header: header as TraceHeader, lines: lines.slice(1, -1), end: footer.end };
}
