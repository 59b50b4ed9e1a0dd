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

describe('the environment of a command', () => {
  it('passes what tools need and none of our secrets, in the C locale', async () => {
    const saved = { ...process.env };
    process.env['CLOUDBED_ADMIN_SECRET_KEY'] = 'do-not-leak';
    process.env['PGPASSWORD'] = 'do-not-leak-either';
    process.env['LIBVIRT_DEFAULT_URI'] = 'qemu:///system';
    process.env['LANG'] = 'de_DE.UTF-8';
    try {
      const { stdout } = await runCommand('env', [], { timeoutMs: 5_000 });
      const names = new Set(stdout.split('\n').map((line) => line.split('=')[0]));
      expect(stdout).not.toContain('do-not-leak');
      expect(names.has('PATH')).toBe(true);
      expect(stdout).toContain('LIBVIRT_DEFAULT_URI=qemu:///system');
      expect(stdout).toContain('LC_ALL=C');
      expect(stdout).toContain('LANG=C\n');
    } finally {
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });
});
