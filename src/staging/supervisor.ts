/**
 * The OS processes of a staging deployment: each control-plane process runs as a detached
 * `cloudbed process <role> --config FILE [--host NAME]` with its pid in `<state>/<name>.pid` and
 * its output appended to `<state>/<name>.log`. A pid counts as ours only while /proc shows it
 * running `cloudbed process` with this staging file, so a stale pid file whose number the kernel
 * gave to someone else is never signalled. Stopping is SIGTERM, then SIGKILL after a bounded wait.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProcessRole } from './roles.ts';
import type { StagingConfig } from './config.ts';

/** How a named process is started. */
export interface ProcessSpec {
  /** `api`, `mainloop`, `background`, `agent-<host>`. */
  readonly name: string;
  readonly role: ProcessRole;
  readonly host?: string;
}

/** Every process of the deployment, in start order. */
export function processSpecs(config: StagingConfig): ProcessSpec[] {
  return [
    { name: 'api', role: 'api' },
    { name: 'mainloop', role: 'mainloop' },
    { name: 'background', role: 'background' },
    ...config.hosts.map((h): ProcessSpec => ({
      name: `agent-${h.name}`,
      role: h.kind === 'compute' ? 'compute-agent' : 'storage-agent',
      host: h.name,
    })),
  ];
}

export function pidFile(config: StagingConfig, name: string): string {
  return join(config.stateDir, `${name}.pid`);
}

export function logFile(config: StagingConfig, name: string): string {
  return join(config.stateDir, `${name}.log`);
}

/** The pid in a process's pid file, or null. */
export function readPid(config: StagingConfig, name: string): number | null {
  const file = pidFile(config, name);
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : null;
}

/** True while `pid` runs `cloudbed process` for this staging file (not a recycled pid). */
export function isOurs(config: StagingConfig, pid: number, name: string): boolean {
  let cmdline: string[];
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped) has an empty command line: it is not running.
  if (!cmdline.includes('process') || !cmdline.includes(config.file)) return false;
  const host = name.startsWith('agent-') ? name.slice('agent-'.length) : null;
  return host === null ? cmdline.includes(name) : cmdline.includes(host);
}

/** What `status` reports for one process. */
export interface ProcessState {
  readonly spec: ProcessSpec;
  readonly pid: number | null;
  /** `running`; `stopped` (no pid file); `dead` (a pid file whose process is gone). */
  readonly state: 'running' | 'stopped' | 'dead';
}

export function processState(config: StagingConfig, spec: ProcessSpec): ProcessState {
  const pid = readPid(config, spec.name);
  if (pid === null) return { spec, pid, state: 'stopped' };
  return { spec, pid, state: isOurs(config, pid, spec.name) ? 'running' : 'dead' };
}

/** The `bin/cloudbed.js` of this checkout. */
function cloudbedBin(): string {
  return fileURLToPath(new URL('../../bin/cloudbed.js', import.meta.url));
}

/** Starts `spec` detached, its output appended to its log file. Resolves to its pid. */
export function startProcess(config: StagingConfig, spec: ProcessSpec): number {
  mkdirSync(config.stateDir, { recursive: true });
  const log = openSync(logFile(config, spec.name), 'a');
  try {
    const args = [
      cloudbedBin(),
      'process',
      spec.role,
      '--config',
      config.file,
      ...(spec.host === undefined ? [] : ['--host', spec.host]),
    ];
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: process.cwd(),
      env: process.env,
    });
    if (child.pid === undefined) throw new Error(`could not start ${spec.name}`);
    writeFileSync(pidFile(config, spec.name), `${child.pid}\n`);
    // The deployment outlives this command: do not wait for it.
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/** Resolves after `ms`. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls every 100 ms, at most `attempts` times, until none of `pids` is ours any more. */
async function waitGone(
  config: StagingConfig,
  entries: readonly { pid: number; name: string }[],
  attempts: number,
): Promise<{ pid: number; name: string }[]> {
  let left = [...entries];
  for (let i = 0; i < attempts && left.length > 0; i++) {
    await pause(100);
    left = left.filter((e) => isOurs(config, e.pid, e.name));
  }
  return left;
}

/** Outcome of stopping one process. */
export interface StopOutcome {
  readonly name: string;
  readonly pid: number | null;
  /** `stopped` (SIGTERM sufficed), `killed` (needed SIGKILL), `not-running`, `stuck`. */
  readonly how: 'stopped' | 'killed' | 'not-running' | 'stuck';
}

/** SIGTERM waits this long for a graceful exit before SIGKILL, in 100 ms polls (15 s). */
const TERM_POLLS = 150;
/** After SIGKILL, polls until the process is gone (5 s). */
const KILL_POLLS = 50;

/**
 * Stops the named processes: SIGTERM to each that is ours, a bounded wait, SIGKILL to survivors,
 * another bounded wait; pid files are removed. Safe to repeat.
 */
export async function stopProcesses(
  config: StagingConfig,
  names: readonly string[],
): Promise<StopOutcome[]> {
  const running: { pid: number; name: string }[] = [];
  const outcomes = new Map<string, StopOutcome>();
  for (const name of names) {
    const pid = readPid(config, name);
    if (pid !== null && isOurs(config, pid, name)) {
      signal(pid, 'SIGTERM');
      running.push({ pid, name });
    } else {
      outcomes.set(name, { name, pid, how: 'not-running' });
    }
  }
  const stubborn = await waitGone(config, running, TERM_POLLS);
  for (const { pid } of stubborn) signal(pid, 'SIGKILL');
  const stuck = await waitGone(config, stubborn, KILL_POLLS);
  for (const { pid, name } of running) {
    const how = stuck.some((s) => s.pid === pid)
      ? 'stuck'
      : stubborn.some((s) => s.pid === pid)
        ? 'killed'
        : 'stopped';
    outcomes.set(name, { name, pid, how });
  }
  for (const name of names) {
    if (outcomes.get(name)?.how !== 'stuck') rmSync(pidFile(config, name), { force: true });
  }
  return names.map((name) => outcomes.get(name) as StopOutcome);
}

/** Sends SIGKILL to a process of ours at once (a crash, for chaos experiments). Its pid file stays. */
export async function killProcess(config: StagingConfig, name: string): Promise<number | null> {
  const pid = readPid(config, name);
  if (pid === null || !isOurs(config, pid, name)) return null;
  signal(pid, 'SIGKILL');
  await waitGone(config, [{ pid, name }], KILL_POLLS);
  return pid;
}

function signal(pid: number, which: NodeJS.Signals): void {
  try {
    process.kill(pid, which);
  } catch (error) {
    // Gone in between: that is what we wanted.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** The last `lines` lines of a process's log, for error messages. */
export function logTail(config: StagingConfig, name: string, lines = 5): string {
  try {
    const text = readFileSync(logFile(config, name), 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
