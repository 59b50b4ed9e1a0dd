/**
 * Reading a data file (a scenario file, the staging file) from disk, with the one-line errors of
 * {@link DataFileError} when it cannot be read. Apart from data-file.ts so that parsing, which the
 * simulator does, never loads the file system.
 */
import { readFile } from 'node:fs/promises';
import type { DataFileErrorClass } from './data-file.ts';

/** How {@link readDataFile} names a file it cannot read. */
export interface ReadDataFileOptions {
  /** What the file should be, for the error when it is a directory: `a scenario file`. */
  readonly what: string;
  /** Said after `no such file` in parentheses, e.g. how to make one. Default: nothing. */
  readonly missingHint?: string;
  /** The error to throw. */
  readonly ErrorClass: DataFileErrorClass;
}

/** The UTF-8 text of `file`; a missing or unreadable file throws `options.ErrorClass`. */
export async function readDataFile(file: string, options: ReadDataFileOptions): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT'
        ? `no such file${options.missingHint === undefined ? '' : ` (${options.missingHint})`}`
        : code === 'EISDIR'
          ? `is a directory, not ${options.what}`
          : `cannot read (${code ?? String(error)})`;
    throw new options.ErrorClass(file, undefined, undefined, problem);
  }
}
