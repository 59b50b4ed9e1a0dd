/**
 * Faults on a real staging deployment, behind the simulator's {@link FaultWorld}: the same
 * {@link FaultInjector} that schedules a scenario's faults on virtual time schedules an
 * experiment's on the wall clock, and this world carries them out on the deployment's own OS
 * processes and prefixed objects — nothing else is ever signalled or destroyed.
 *
 * - crash: SIGKILL (pid file checked against /proc, as `staging kill` does), restart after
 *   `restartAfterMs` or at the heal;
 * - pause: SIGSTOP, SIGCONT after `forMs` or at the heal;
 * - pause-holder: the main loop is armed (holder-pause.ts) and stops itself at its next lock hold
 *   at the point given; SIGCONT after `forMs` or at the heal;
 * - host-crash: SIGKILL the host's agent and destroy its running domains (a compute host losing
 *   power; a storage node's datasets survive, as disks do), the agent restarted after `forMs`.
 * - session-expire: the main loop's ZooKeeper session (recorded by the process, lock-sessions.ts)
 *   joined from here and closed, which ends it on the server: its locks are released at once and
 *   it learns that the session expired when it next hears from ZooKeeper;
 * - db-disconnect: `pg_terminate_backend` of every PostgreSQL connection of the process (by the
 *   application_name it connects with, wiring.ts), repeated every {@link CUT_POLL_MS} while the
 *   fault lasts, so the pool's new connections die too;
 * - bus-disconnect: `CLIENT KILL` of the process's Redis subscriber connection (found by the name
 *   it gives itself, wiring.ts), repeated every {@link CUT_POLL_MS} while the fault lasts, so
 *   each reconnect of ioredis is cut again: what is published meanwhile never reaches it.
 *
 * The kill switch ({@link RealFaults.undo}) continues every paused process and starts every
 * process that is not running; the runner calls it at the heal, on Ctrl-C and when it fails.
 * Paused pids are also written to `<state>/chaos-paused.json` while paused, so a runner that was
 * itself killed leaves a record the next run (or {@link continueLeftovers}) acts on.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FaultWorld } from '../faults/injector.ts';
import type { FaultRecord, HolderPoint } from '../faults/plan.ts';
import { holderPauseFile } from '../staging/holder-pause.ts';
import type { StagingConfig } from '../staging/config.ts';
import {
  isOurs,
  killProcess,
  processSpecs,
  processState,
  signal,
  startProcess,
  type ProcessSpec,
} from '../staging/supervisor.ts';
import {
  applicationNameOf,
  openDriver,
  openHypervisor,
  redisClientName,
} from '../staging/wiring.ts';
import { lockSessionFile, recordedSession } from '../staging/lock-sessions.ts';
import { expireSession } from '../adapters/zookeeper-locks.ts';
import { Redis } from 'ioredis';

/** A fault record with its wall-clock offset, as the run directory keeps it. */
export type TimedRecord = FaultRecord & { readonly t: number };

/** Counts of what was done, for the verdict line. */
export interface FaultCounts {
  kills: number;
  pauses: number;
  hostCrashes: number;
  /** Bus subscriptions cut (`bus-disconnect`). */
  busCuts: number;
  /** Lock sessions ended on the server (`session-expire`). */
  sessionsExpired: number;
  /** Database connections cut (`db-disconnect`). */
  dbCuts: number;
  restarts: number;
  /** Faults that could not be carried out (the process was not running, say). */
  missed: number;
}

function pausedFile(config: StagingConfig): string {
  return join(config.stateDir, 'chaos-paused.json');
}

/** Continues processes a killed runner left paused; returns how many. */
export function continueLeftovers(config: StagingConfig): number {
  const file = pausedFile(config);
  if (!existsSync(file)) return 0;
  let continued = 0;
  try {
    const entries = JSON.parse(readFileSync(file, 'utf8')) as {
      name: string;
      pid: number;
      args: string[];
    }[];
    const names = new Set(processSpecs(config).map((s) => s.name));
    for (const { name, pid, args } of entries)
      if (names.has(name) && isOurs(pid, { args }) && signal(pid, 'SIGCONT')) continued++;
  } catch {
    // A torn file: nothing to trust in it.
  }
  rmSync(file, { force: true });
  return continued;
}

/**
 * How long `session-expire` waits for ZooKeeper to say a session it closed is gone (ZooKeeper's
 * least session timeout with its default tick): the record of the expiry follows by that much.
 */
const SESSION_CHECK_MS = 4_000;

/** How often a cut bus subscription or database connection is looked for (and cut again), ms. */
const CUT_POLL_MS = 100;

/** The ids of the clients named `name` in a `CLIENT LIST` reply. */
export function redisClientIds(list: string, name: string): string[] {
  const ids: string[] = [];
  for (const line of list.split('\n')) {
    const fields = new Map(
      line
        .trim()
        .split(' ')
        .map((field) => {
          const at = field.indexOf('=');
          return [field.slice(0, at), field.slice(at + 1)] as const;
        }),
    );
    const id = fields.get('id');
    if (id !== undefined && fields.get('name') === name) ids.push(id);
  }
  return ids;
}

/** How often an armed main loop is looked at, ms. */
const HOLDER_WATCH_MS = 50;

/** The state letter of a process in /proc (`T`: stopped), or null when it is gone. */
function processStateLetter(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state …: comm may hold spaces, so read after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

export class RealFaults implements FaultWorld {
  readonly counts: FaultCounts = {
    kills: 0,
    pauses: 0,
    hostCrashes: 0,
    busCuts: 0,
    sessionsExpired: 0,
    dbCuts: 0,
    restarts: 0,
    missed: 0,
  };
  private readonly specs: ReadonlyMap<string, ProcessSpec>;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Paused processes: name → pid. */
  private readonly paused = new Map<string, number>();
  /** Work started by faults (kills, restarts), awaited by {@link settle}. */
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;
  /** Main loops armed to stop themselves at their next hold, not stopped yet: name → pid. */
  private readonly armed = new Map<string, number>();

  constructor(
    private readonly config: StagingConfig,
    /** The deployment's processes as this run starts them (a mutant's, say). */
    specs: readonly ProcessSpec[],
    /** Wall-clock ms of the experiment's time 0. */
    private readonly startMs: number,
    private readonly onRecord: (record: TimedRecord) => void,
    private readonly onHostStatus: (host: string, status: 'up' | 'down') => void,
  ) {
    this.specs = new Map(specs.map((s) => [s.name, s]));
  }

  /** Milliseconds since the experiment started. */
  nowMs(): number {
    return Date.now() - this.startMs;
  }

  readonly record = (record: FaultRecord): void => {
    this.onRecord({ ...record, t: this.nowMs() });
  };

  at(atMs: number, _label: string, run: () => void): void {
    if (this.stopped) return;
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (!this.stopped) run();
      },
      Math.max(0, atMs - this.nowMs()),
    );
    this.timers.add(timer);
  }

  crashProcess(name: string, restartAfterMs: number | undefined): void {
    const spec = this.spec(name);
    this.track(
      killProcess(this.config, spec).then((pid) => {
        if (this.paused.delete(name)) this.savePaused();
        if (pid === null) {
          this.miss(name, 'not running');
          return;
        }
        this.counts.kills++;
        this.record({ kind: 'fault.killed', target: name, pid });
        if (restartAfterMs !== undefined)
          this.at(this.nowMs() + restartAfterMs, `restart ${name}`, () => this.restart(name));
      }),
    );
  }

  pauseProcess(name: string, forMs: number | undefined): void {
    const pid = this.paused.has(name) ? null : this.runningPid(name);
    if (pid === null || !signal(pid, 'SIGSTOP')) {
      this.miss(name, 'not running or already paused');
      return;
    }
    this.stoppedFor(name, pid, forMs, { kind: 'fault.stopped', target: name, pid });
  }

  armHolder(name: string, point: HolderPoint, forMs: number | undefined): void {
    const spec = this.spec(name);
    const pid = this.runningPid(name);
    if (pid === null) {
      this.miss(name, 'not running');
      return;
    }
    writeFileSync(holderPauseFile(this.config.stateDir, name), `${point}\n`);
    signal(pid, 'SIGUSR2');
    this.armed.set(name, pid);
    // The process stops itself when it next holds a lock there: watch for it.
    const watch = (): void => {
      if (this.stopped || this.armed.get(name) !== pid) return;
      const state = processStateLetter(pid);
      if (state === null || !isOurs(pid, spec)) {
        this.armed.delete(name);
        return;
      }
      if (state !== 'T') {
        this.at(this.nowMs() + HOLDER_WATCH_MS, `watch ${name}`, watch);
        return;
      }
      this.armed.delete(name);
      this.stoppedFor(name, pid, forMs, {
        kind: 'fault.pause-holder',
        target: name,
        pid,
        point,
        forMs,
      });
    };
    watch();
  }

  expireSessions(name: string): number {
    this.spec(name);
    const credentials = recordedSession(lockSessionFile(this.config.stateDir, name));
    if (credentials === null || this.runningPid(name) === null) {
      this.miss(name, credentials === null ? 'no lock session recorded' : 'not running');
      return 0;
    }
    this.track(
      expireSession(this.config.zookeeper.address, credentials, SESSION_CHECK_MS).then(
        () => {
          this.counts.sessionsExpired++;
          this.record({
            kind: 'fault.session-expired',
            target: name,
            session: `0x${credentials.id}`,
          });
        },
        (error: unknown) => this.miss(name, error instanceof Error ? error.message : String(error)),
      ),
    );
    return 1;
  }

  crashHost(name: string, forMs: number | undefined): void {
    const host = this.config.hosts.find((h) => h.name === name);
    if (host === undefined) throw new Error(`no host ${name}`);
    const agent = this.agentOf(name);
    this.counts.hostCrashes++;
    this.onHostStatus(name, 'down');
    this.crashProcess(agent, undefined);
    if (host.kind === 'compute') {
      this.track(
        (async () => {
          const hypervisor = openHypervisor(this.config, host);
          try {
            for (const domain of await hypervisor.listDomains()) {
              if (domain.state !== 'running' && domain.state !== 'paused') continue;
              await hypervisor.destroy(domain.name).catch(() => undefined);
              this.record({ kind: 'fault.domain-destroyed', target: name, domain: domain.name });
            }
          } finally {
            await hypervisor.close();
          }
        })(),
      );
    }
    if (forMs !== undefined)
      this.at(this.nowMs() + forMs, `boot ${name}`, () => {
        this.onHostStatus(name, 'up');
        this.restart(agent);
      });
  }

  disconnectBus(name: string, forMs: number | undefined): void {
    this.spec(name);
    const subscriber = redisClientName(this.config, name, 'subscriber');
    const client = new Redis(this.config.redis.url, {
      maxRetriesPerRequest: 1,
      connectTimeout: 5_000,
    });
    client.on('error', () => undefined);
    this.cutWhile(name, forMs, {
      cut: async () => {
        const ids = redisClientIds(String(await client.call('CLIENT', 'LIST')), subscriber);
        for (const id of ids) await client.call('CLIENT', 'KILL', 'ID', id);
        return ids.length;
      },
      close: () => {
        client.disconnect();
        return Promise.resolve();
      },
      missing: 'no subscriber connection on Redis',
      struck: 'fault.bus-killed',
      ended: 'fault.bus-cut-ended',
      counted: 'busCuts',
    });
  }

  disconnectDatabase(name: string, forMs: number | undefined): void {
    this.spec(name);
    const driver = openDriver(this.config, 'chaos');
    this.cutWhile(name, forMs, {
      cut: async () => {
        const { rows } = await driver.query<{ terminated: unknown }>(
          `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
            WHERE application_name = $1 AND pid <> pg_backend_pid()`,
          [applicationNameOf(this.config, name)],
        );
        return rows.filter((row) => row.terminated === true).length;
      },
      close: () => driver.close(),
      missing: 'no database connection',
      struck: 'fault.db-terminated',
      ended: 'fault.db-cut-ended',
      counted: 'dbCuts',
    });
  }

  /**
   * Cuts `name`'s connections now and again every {@link CUT_POLL_MS} until `forMs` has passed (or
   * the heal): `cut` cuts what it finds and says how many. A process with nothing to cut at the
   * start is a miss.
   */
  private cutWhile(
    name: string,
    forMs: number | undefined,
    how: {
      readonly cut: () => Promise<number>;
      readonly close: () => Promise<void>;
      readonly missing: string;
      readonly struck: `fault.${string}`;
      readonly ended: `fault.${string}`;
      readonly counted: 'busCuts' | 'dbCuts';
    },
  ): void {
    const untilMs = forMs === undefined ? Number.POSITIVE_INFINITY : this.nowMs() + forMs;
    this.track(
      (async () => {
        try {
          const first = await how.cut();
          if (first === 0) {
            this.miss(name, how.missing);
            return;
          }
          this.counts[how.counted]++;
          this.record({ kind: how.struck, target: name, connections: first });
          let again = 0;
          while (!this.stopped && this.nowMs() < untilMs) {
            await new Promise((resolve) => setTimeout(resolve, CUT_POLL_MS));
            again += await how.cut();
          }
          this.record({ kind: how.ended, target: name, reconnectsCut: again });
        } finally {
          await how.close();
        }
      })(),
    );
  }

  hangHost(name: string): void {
    throw new Error(`host-hang of ${name}: not available in staging (refused by validation)`);
  }

  agentOf(host: string): string {
    return `agent-${host}`;
  }

  healWorld(): void {
    for (const host of this.config.hosts) this.onHostStatus(host.name, 'up');
    this.track(this.undo());
  }

  /**
   * The kill switch: no more scheduled faults, every paused process continued, every process that
   * is not running started. Safe to call more than once.
   */
  async undo(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // Disarm main loops that never held a lock at their point, and continue any that just did.
    for (const [name, pid] of this.armed) {
      writeFileSync(holderPauseFile(this.config.stateDir, name), 'none\n');
      signal(pid, 'SIGUSR2');
      if (processStateLetter(pid) === 'T') this.paused.set(name, pid);
    }
    this.armed.clear();
    for (const name of [...this.paused.keys()]) this.resume(name);
    await this.settle();
    for (const spec of this.specs.values()) {
      if (processState(this.config, spec).state === 'running') continue;
      const pid = await startProcess(this.config, spec);
      if (pid !== null) {
        this.counts.restarts++;
        this.record({ kind: 'fault.heal-restart', target: spec.name, pid });
      }
    }
  }

  /** Waits for the kills and restarts in flight. */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private restart(name: string): void {
    this.track(
      startProcess(this.config, this.spec(name)).then((pid) => {
        if (pid === null) return;
        this.counts.restarts++;
        this.record({ kind: 'fault.restarted', target: name, pid });
      }),
    );
  }

  private resume(name: string): void {
    const pid = this.paused.get(name);
    if (pid === undefined) return;
    this.paused.delete(name);
    this.savePaused();
    if (isOurs(pid, this.spec(name)) && signal(pid, 'SIGCONT'))
      this.record({ kind: 'fault.continued', target: name, pid });
  }

  /** The pid of `name` while it runs (the pid file checked against /proc), else null. */
  private runningPid(name: string): number | null {
    const { pid, state } = processState(this.config, this.spec(name));
    return state === 'running' ? pid : null;
  }

  private miss(name: string, why: string): void {
    this.counts.missed++;
    this.record({ kind: 'fault.missed', target: name, why });
  }

  /** `name` (pid) is stopped: recorded, kept for the kill switch, continued after `forMs`. */
  private stoppedFor(name: string, pid: number, forMs: number | undefined, record: FaultRecord) {
    this.paused.set(name, pid);
    this.savePaused();
    this.counts.pauses++;
    this.record(record);
    if (forMs !== undefined)
      this.at(this.nowMs() + forMs, `continue ${name}`, () => this.resume(name));
  }

  private spec(name: string): ProcessSpec {
    const spec = this.specs.get(name);
    if (spec === undefined) throw new Error(`no process ${name}`);
    return spec;
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => {
      this.record({ kind: 'fault.error', message: String(error) });
    });
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  private savePaused(): void {
    const entries = [...this.paused].map(([name, pid]) => ({
      name,
      pid,
      args: this.spec(name).args,
    }));
    if (entries.length === 0) rmSync(pausedFile(this.config), { force: true });
    else writeFileSync(pausedFile(this.config), `${JSON.stringify(entries)}\n`);
  }
}
