/**
 * The OS processes of a staging deployment: each control-plane process runs as a detached
 * `cloudbed process <role> --config FILE [--host NAME | --instance N]` with its pid in
 * `<state>/<name>.pid` and its output appended to `<state>/<name>.log`. A pid counts as ours only
 * while /proc shows it running exactly those arguments, so a stale pid file whose number the kernel
 * gave to someone else is never signalled. Stopping removes the pid file, then sends SIGTERM, then
 * SIGKILL after a bounded wait; a process whose pid file is there but whose process is gone died.
 *
 * The supervisor (`cloudbed staging supervise`, detached too, `<state>/supervisor.pid`) watches
 * the others and restarts the ones that died, as restart-policy.ts decides; it keeps its counts in
 * `<state>/supervisor.json`, which status reads. Whoever starts a process — `up`, `restart`, the
 * supervisor — does so under a per-process start lock (`<state>/<name>.starting`), so two of them
 * never start the same process twice.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProcessRole } from './roles.ts';
import type { StagingConfig } from './config.ts';
import { RestartTracker, type RestartPolicy, type RestartRecord } from './restart-policy.ts';

/** A service a process needs (the names of services.ts). */
export type ServiceName = 'postgres' | 'redis' | 'zookeeper' | 'libvirt' | 'zfs';

/** How a named process is started. */
export interface ProcessSpec {
  /** `api`, `mainloop-<n>`, `background`, `agent-<host>`, or `supervisor`. */
  readonly name: string;
  /** The arguments of `bin/cloudbed.js` that run it; also how /proc tells it is ours. */
  readonly args: readonly string[];
  /** Whether the supervisor restarts it when it dies (the supervisor itself: never). */
  readonly restart: RestartPolicy;
  /** The services it cannot work without. */
  readonly needs: readonly ServiceName[];
}

/** What every process needs: the event store and the bus. */
const BASE: readonly ServiceName[] = ['postgres', 'redis'];

function roleSpec(
  config: StagingConfig,
  name: string,
  role: ProcessRole,
  extra: { restart: RestartPolicy; needs?: readonly ServiceName[]; flags?: readonly string[] },
): ProcessSpec {
  return {
    name,
    args: ['process', role, '--config', config.file, ...(extra.flags ?? [])],
    restart: extra.restart,
    needs: [...BASE, ...(extra.needs ?? [])],
  };
}

/**
 * Every control-plane process of the deployment, in start order; with `mutant`, each runs that
 * known-broken variant (`--mutant NAME`, mutants.ts).
 */
export function processSpecs(config: StagingConfig, mutant?: string): ProcessSpec[] {
  const specs = normalSpecs(config);
  if (mutant === undefined) return specs;
  return specs.map((s) => ({ ...s, args: [...s.args, '--mutant', mutant] }));
}

function normalSpecs(config: StagingConfig): ProcessSpec[] {
  const mainLoops = Array.from({ length: config.mainLoop.instances }, (_, i) =>
    // Only the main loops take locks, so only they need ZooKeeper.
    roleSpec(config, `mainloop-${i + 1}`, 'mainloop', {
      restart: config.mainLoop.restart,
      needs: ['zookeeper'],
      flags: ['--instance', String(i + 1)],
    }),
  );
  return [
    roleSpec(config, 'api', 'api', { restart: config.api.restart }),
    ...mainLoops,
    roleSpec(config, 'background', 'background', { restart: config.background.restart }),
    ...config.hosts.map((h) =>
      roleSpec(
        config,
        `agent-${h.name}`,
        h.kind === 'compute' ? 'compute-agent' : 'storage-agent',
        {
          restart: h.restart,
          needs: [h.kind === 'compute' ? 'libvirt' : 'zfs'],
          flags: ['--host', h.name],
        },
      ),
    ),
  ];
}

/** The supervisor process of the deployment. */
export function supervisorSpec(config: StagingConfig): ProcessSpec {
  return {
    name: 'supervisor',
    args: ['staging', 'supervise', '--config', config.file],
    restart: 'never',
    needs: [],
  };
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

/** True while `pid` runs `spec`'s arguments (not a recycled pid, not another process of ours). */
export function isOurs(pid: number, spec: Pick<ProcessSpec, 'args'>): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped) has an empty command line: it is not running. The arguments
  // end the command line, so `--instance 1` does not match `--instance 12`.
  return cmdline.endsWith(`\0${spec.args.join('\0')}\0`);
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
  return { spec, pid, state: isOurs(pid, spec) ? 'running' : 'dead' };
}

/** The `bin/cloudbed.js` of this checkout. */
function cloudbedBin(): string {
  return fileURLToPath(new URL('../../bin/cloudbed.js', import.meta.url));
}

/** Starts `spec` detached, its output appended to its log file. Returns its pid. */
function spawnProcess(config: StagingConfig, spec: ProcessSpec): number {
  mkdirSync(config.stateDir, { recursive: true });
  const log = openSync(logFile(config, spec.name), 'a');
  try {
    const child = spawn(process.execPath, [cloudbedBin(), ...spec.args], {
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

/** Attempts, 20 ms apart, at taking a start lock held by a live process (5 s). */
const START_LOCK_ATTEMPTS = 250;

function holderAlive(file: string): boolean {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isSafeInteger(pid) || pid <= 1) return false;
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive but not ours to signal; anything else (ENOENT, ESRCH): not held.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Starts `spec` if `when` holds for its state, checked under its start lock, so that `up`, the
 * supervisor and `restart` racing each other start it once. Resolves to the new pid, or null when
 * `when` did not hold. A lock left by a holder that died is broken.
 */
export async function startProcess(
  config: StagingConfig,
  spec: ProcessSpec,
  when: (state: ProcessState['state']) => boolean = (state) => state !== 'running',
): Promise<number | null> {
  mkdirSync(config.stateDir, { recursive: true });
  const lock = join(config.stateDir, `${spec.name}.starting`);
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (!holderAlive(lock)) rmSync(lock, { force: true });
      else if (attempt >= START_LOCK_ATTEMPTS)
        throw new Error(`${lock} is held by a live process; could not start ${spec.name}`, {
          cause: error,
        });
      else await pause(20);
    }
  }
  try {
    if (!when(processState(config, spec).state)) return null;
    return spawnProcess(config, spec);
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Resolves after `ms`. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls every 100 ms, at most `attempts` times, until none of `pids` is ours any more. */
async function waitGone(
  entries: readonly { pid: number; spec: ProcessSpec }[],
  attempts: number,
): Promise<{ pid: number; spec: ProcessSpec }[]> {
  let left = [...entries];
  for (let i = 0; i < attempts && left.length > 0; i++) {
    await pause(100);
    left = left.filter((e) => isOurs(e.pid, e.spec));
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
 * Stops the given processes: removes each one's pid file (so the supervisor sees it stopped, not
 * dead), SIGTERM to each that is ours, a bounded wait, SIGKILL to survivors, another bounded wait.
 * A process still there after that gets its pid file back. Safe to repeat.
 */
export async function stopProcesses(
  config: StagingConfig,
  specs: readonly ProcessSpec[],
): Promise<StopOutcome[]> {
  const running: { pid: number; spec: ProcessSpec }[] = [];
  const outcomes = new Map<string, StopOutcome>();
  for (const spec of specs) {
    const pid = readPid(config, spec.name);
    rmSync(pidFile(config, spec.name), { force: true });
    if (pid !== null && isOurs(pid, spec)) {
      signal(pid, 'SIGTERM');
      running.push({ pid, spec });
    } else {
      outcomes.set(spec.name, { name: spec.name, pid, how: 'not-running' });
    }
  }
  const stubborn = await waitGone(running, TERM_POLLS);
  for (const { pid } of stubborn) signal(pid, 'SIGKILL');
  const stuck = await waitGone(stubborn, KILL_POLLS);
  for (const { pid, spec } of running) {
    const how = stuck.some((s) => s.pid === pid)
      ? 'stuck'
      : stubborn.some((s) => s.pid === pid)
        ? 'killed'
        : 'stopped';
    if (how === 'stuck') writeFileSync(pidFile(config, spec.name), `${pid}\n`);
    outcomes.set(spec.name, { name: spec.name, pid, how });
  }
  return specs.map((spec) => outcomes.get(spec.name) as StopOutcome);
}

/**
 * Sends SIGKILL to a process of ours at once (a crash, for chaos experiments). Its pid file stays,
 * so it counts as dead: the supervisor restarts it unless its policy is `never`.
 */
export async function killProcess(
  config: StagingConfig,
  spec: ProcessSpec,
): Promise<number | null> {
  const pid = readPid(config, spec.name);
  if (pid === null || !isOurs(pid, spec)) return null;
  signal(pid, 'SIGKILL');
  await waitGone([{ pid, spec }], KILL_POLLS);
  return pid;
}

/** Sends `which` to `pid`; false when the process is gone (for a kill, what was wanted anyway). */
export function signal(pid: number, which: NodeJS.Signals): boolean {
  try {
    process.kill(pid, which);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    return false;
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

// ---- the supervisor ----

/** Where the supervisor keeps its restart counts (read by status). */
export function restartsFile(config: StagingConfig): string {
  return join(config.stateDir, 'supervisor.json');
}

function isRecord(value: unknown): value is RestartRecord {
  const r = value as Partial<RestartRecord> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.restarts === 'number' &&
    typeof r.gaveUp === 'boolean' &&
    (r.lastRestartAtMs === null || typeof r.lastRestartAtMs === 'number')
  );
}

/** The supervisor's restart counts by process name; empty when it never ran (or the file is bad). */
export function readRestartRecords(config: StagingConfig): Record<string, RestartRecord> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(restartsFile(config), 'utf8'));
  } catch {
    return {};
  }
  const out: Record<string, RestartRecord> = {};
  if (typeof parsed === 'object' && parsed !== null)
    for (const [name, record] of Object.entries(parsed)) if (isRecord(record)) out[name] = record;
  return out;
}

/** How often the supervisor looks at the processes, ms. */
const SUPERVISE_POLL_MS = 250;

/** Where the supervisor reports what it does. */
export interface SupervisorLog {
  info(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
}

/**
 * Runs the supervisor until `signal` aborts: every {@link SUPERVISE_POLL_MS} it looks at every
 * process and restarts the dead ones its restart policy says to (restart-policy.ts), logging each
 * restart and each give-up with the end of the dead process's log, and keeps the counts in
 * {@link restartsFile} (written whole, then renamed into place).
 */
export async function supervise(
  config: StagingConfig,
  options: { readonly signal: AbortSignal; readonly log: SupervisorLog },
): Promise<void> {
  const { signal, log } = options;
  const tracker = new RestartTracker(config.supervisor, readRestartRecords(config));
  const specs = processSpecs(config);
  log.info('supervisor.watching', {
    processes: specs.map((s) => `${s.name} (restart: ${s.restart})`),
    restartsPerMinuteMax: config.supervisor.restartsPerMinuteMax,
    backoffMs: config.supervisor.backoffMs,
  });
  let written = '';
  // One listener for the whole run: the wait between looks ends early on abort.
  let wake: () => void = () => undefined;
  signal.addEventListener('abort', () => wake(), { once: true });
  while (!signal.aborted) {
    for (const spec of specs) {
      const decision = tracker.observe(
        spec.name,
        processState(config, spec).state,
        spec.restart,
        Date.now(),
      );
      if (decision.kind === 'give-up') {
        log.warn('supervisor.gave-up', {
          process: spec.name,
          restartsInWindow: decision.restartsInWindow,
          lastLog: logTail(config, spec.name, 1),
        });
      } else if (decision.kind === 'restart') {
        const lastLog = logTail(config, spec.name, 1);
        // Only if still dead: `up` or `restart` may have started it meanwhile.
        const pid = await startProcess(config, spec, (state) => state === 'dead');
        if (pid !== null) {
          tracker.restarted(spec.name, Date.now());
          log.warn('supervisor.restarted', { process: spec.name, pid, lastLog });
        }
      }
    }
    const text = `${JSON.stringify(tracker.records(), null, 2)}\n`;
    if (text !== written) {
      const file = restartsFile(config);
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
      written = text;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SUPERVISE_POLL_MS);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  log.info('supervisor.stopped', {});
}
