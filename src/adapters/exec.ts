/**
 * Runs one external command for the host adapters (`virsh`, `zfs`, `zpool`): `execFile`, never a
 * shell, so names and paths reach the command as single arguments and cannot inject anything. Every
 * run is bounded — a timeout that kills the child, and a cap on the output kept — and a failure is a
 * {@link CommandError} that keeps the exit code, the signal and stderr, which the adapters then map
 * to their port's error codes (passing the CommandError on as `cause`).
 */
import { execFile } from 'node:child_process';

/** Options for {@link runCommand}. */
export interface RunOptions {
  /** The child is killed (SIGKILL) after this many ms; positive. */
  readonly timeoutMs: number;
  /** Written to the child's stdin, which is then closed. Default: nothing (stdin closed at once). */
  readonly input?: string;
  /** Bytes of stdout and of stderr kept each; beyond this the child is killed. Default 4 MiB. */
  readonly outputBytesMax?: number;
}

/** What a successful run printed. */
export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Default cap on the output kept from one run, per stream. */
export const OUTPUT_BYTES_MAX = 4 * 1024 * 1024;

/** A command that could not run, exited non-zero, was killed, or timed out. */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    message: string,
    readonly details: {
      /** The command line, for messages: `zfs destroy cloudbed/x`. */
      readonly commandLine: string;
      /** Exit status, or null when the child was killed or never ran. */
      readonly exitCode: number | null;
      readonly signal: string | null;
      /** The child's stderr (trimmed), often the only explanation there is. */
      readonly stderr: string;
      readonly stdout: string;
      /** True when the child was killed by the timeout. */
      readonly timedOut: boolean;
      /** True when the command does not exist (ENOENT): the tool is not installed. */
      readonly notFound: boolean;
    },
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }

  get exitCode(): number | null {
    return this.details.exitCode;
  }

  get stderr(): string {
    return this.details.stderr;
  }

  get timedOut(): boolean {
    return this.details.timedOut;
  }
}

/** Quotes an argument for messages only (nothing is ever run through a shell). */
function quoteForMessage(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** Variables a command inherits (beside those starting with {@link PASSED_PREFIXES}). */
const PASSED = ['PATH', 'HOME', 'USER', 'LOGNAME', 'TMPDIR', 'XDG_RUNTIME_DIR'];
const PASSED_PREFIXES = ['LIBVIRT_', 'VIRSH_', 'ZFS_'];

/**
 * The environment of a command: what it needs to find its tools and its service, and nothing else
 * of ours (no admin keys, no database passwords), in the C locale so its messages parse the same
 * whatever the caller's.
 */
export function commandEnvironment(from: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(from)) {
    if (value === undefined) continue;
    if (PASSED.includes(name) || PASSED_PREFIXES.some((prefix) => name.startsWith(prefix)))
      env[name] = value;
  }
  return { ...env, LC_ALL: 'C', LANG: 'C' };
}

/**
 * Runs `command` with `args` and resolves with its output when it exits 0; rejects with a
 * {@link CommandError} otherwise. Never rejects with anything else.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunOptions,
): Promise<RunResult> {
  const commandLine = [command, ...args].map(quoteForMessage).join(' ');
  const outputBytesMax = options.outputBytesMax ?? OUTPUT_BYTES_MAX;
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      [...args],
      {
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: outputBytesMax,
        encoding: 'utf8',
        env: commandEnvironment(process.env),
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        const errno = (error as NodeJS.ErrnoException).code;
        const notFound = errno === 'ENOENT';
        const overflow = errno === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER';
        // `killed` means Node killed the child: by the timeout unless the output overflowed.
        const timedOut = error.killed === true && !overflow && !notFound;
        const exitCode = typeof error.code === 'number' ? error.code : null;
        const signal = error.signal ?? null;
        const trimmed = stderr.trim();
        const why = notFound
          ? `${command}: command not found`
          : timedOut
            ? `timed out after ${options.timeoutMs} ms`
            : overflow
              ? `output exceeded ${outputBytesMax} bytes`
              : exitCode !== null
                ? `exit ${exitCode}${trimmed === '' ? '' : `: ${trimmed}`}`
                : `killed by ${signal ?? 'a signal'}`;
        reject(
          new CommandError(
            `${commandLine}: ${why}`,
            { commandLine, exitCode, signal, stderr: trimmed, stdout, timedOut, notFound },
            { cause: error },
          ),
        );
      },
    );
    // Input (or EOF at once): commands that read stdin must not wait for a terminal.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}
