// Goal: runCommand runs a command without a shell, bounds it in time and output, and keeps what a
// failure needs (exit code, stderr) on the CommandError. Method: real child processes — node
// itself (process.execPath) with small scripts — so no external tool is needed.
import { describe, expect, it } from 'vitest';
import { CommandError, runCommand } from '../../../src/adapters/exec.ts';

const node = process.execPath;

async function failure(promise: Promise<unknown>): Promise<CommandError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CommandError);
  return error as CommandError;
}

describe('runCommand', () => {
  it('returns stdout and stderr of a successful run', async () => {
    const result = await runCommand(
      node,
      ['-e', 'process.stdout.write("out"); process.stderr.write("err")'],
      { timeoutMs: 20_000 },
    );
    expect(result).toEqual({ stdout: 'out', stderr: 'err' });
  });

  it('passes arguments verbatim: no shell interprets them', async () => {
    const arg = `$(echo no) ; 'quoted' "x" | & *`;
    const { stdout } = await runCommand(
      node,
      ['-e', 'process.stdout.write(process.argv[1])', arg],
      {
        timeoutMs: 20_000,
      },
    );
    expect(stdout).toBe(arg);
  });

  it('writes input to stdin', async () => {
    const { stdout } = await runCommand(node, ['-e', 'process.stdin.pipe(process.stdout)'], {
      timeoutMs: 20_000,
      input: '<domain/>',
    });
    expect(stdout).toBe('<domain/>');
  });

  it('keeps exit code and stderr of a failure', async () => {
    const error = await failure(
      runCommand(node, ['-e', 'process.stderr.write("error: no domain\\n"); process.exit(3)'], {
        timeoutMs: 20_000,
      }),
    );
    expect(error.exitCode).toBe(3);
    expect(error.stderr).toBe('error: no domain');
    expect(error.timedOut).toBe(false);
    expect(error.message).toContain('exit 3: error: no domain');
  });

  it('kills a command that outlives its timeout', async () => {
    const error = await failure(
      runCommand(node, ['-e', 'setInterval(() => {}, 1000)'], { timeoutMs: 300 }),
    );
    expect(error.timedOut).toBe(true);
    expect(error.details.signal).toBe('SIGKILL');
    expect(error.message).toContain('timed out after 300 ms');
  });

  it('kills a command whose output exceeds the cap, and says so', async () => {
    const error = await failure(
      runCommand(node, ['-e', 'process.stdout.write("x".repeat(100000))'], {
        timeoutMs: 20_000,
        outputBytesMax: 1000,
      }),
    );
    expect(error.timedOut).toBe(false);
    expect(error.message).toContain('output exceeded 1000 bytes');
  });

  it('reports a missing command as notFound', async () => {
    const error = await failure(runCommand('/nonexistent/virsh', ['list'], { timeoutMs: 1000 }));
    expect(error.details.notFound).toBe(true);
    expect(error.exitCode).toBeNull();
  });
});
