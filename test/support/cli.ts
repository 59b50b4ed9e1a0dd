/**
 * Runs the CLI in this process, as a test would from a shell: `main(argv)` with stdout and stderr
 * captured. The exit code is -1 when the command returned none (a server left running).
 */
import { vi } from 'vitest';
import { main } from '../../src/cli/main.ts';

/** What one CLI command did. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with `argv`; resolves with its exit code and what it printed. */
export async function runCli(argv: readonly string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(argv);
    return { code: code ?? -1, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
