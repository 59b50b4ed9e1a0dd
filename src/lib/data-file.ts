/**
 * YAML data files (scenario files, the staging file): parsing and validating their text with errors
 * that name the file, the line and the field, one line each. The kinds of file differ only in their
 * shape and their error class, so both share this one path from text to a validated value.
 */
import { LineCounter, parseDocument } from 'yaml';
import { formatPath, ShapeError } from './shape.ts';
import { lineOf } from './yaml-lines.ts';

/** A data file that cannot be used: one line, `file:line: field: problem`. */
export class DataFileError extends Error {
  override name = 'DataFileError';
  constructor(
    readonly file: string,
    readonly field: string | undefined,
    readonly line: number | undefined,
    readonly problem: string,
  ) {
    super(
      `${file}${line === undefined ? '' : `:${line}`}: ${field === undefined ? '' : `${field}: `}${problem}`,
    );
  }
}

/** A subclass of {@link DataFileError} for one kind of file, built as the base class is. */
export type DataFileErrorClass = new (
  file: string,
  field: string | undefined,
  line: number | undefined,
  problem: string,
) => DataFileError;

/**
 * Parses YAML `text` and hands the data to `validate`. Bad YAML, an empty file and every
 * {@link ShapeError} that `validate` throws become an `ErrorClass` naming `file` (used in messages
 * only), the field and its line; other errors pass through unchanged.
 */
export function parseDataFile<T>(
  text: string,
  file: string,
  validate: (data: unknown) => T,
  ErrorClass: DataFileErrorClass,
): T {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const yamlError = document.errors[0];
  if (yamlError !== undefined) {
    throw new ErrorClass(
      file,
      undefined,
      yamlError.linePos?.[0].line,
      `invalid YAML: ${(yamlError.message.split('\n')[0] ?? 'syntax error').replace(/ at line \d+, column \d+:?$/, '')}`,
    );
  }
  const data: unknown = document.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined)
    throw new ErrorClass(file, undefined, undefined, 'the file is empty');
  try {
    return validate(data);
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    throw new ErrorClass(
      file,
      formatPath(error.path),
      lineOf(document.contents, error.path, lineCounter),
      error.problem,
    );
  }
}
