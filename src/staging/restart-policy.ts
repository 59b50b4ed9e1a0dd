/**
 * When the staging supervisor restarts a process that died. Pure bookkeeping over observations
 * (`running`, `stopped`, `dead`) and the time, so it is tested without processes or clocks:
 *
 * - Only a process that *died* is restarted: its pid file is there but its process is gone (a
 *   crash, or SIGKILL from `cloudbed staging kill`). A process stopped on purpose has no pid file.
 * - `restart: never` leaves it dead.
 * - Each restart waits a backoff after the death is seen: the first `backoffMs`, doubling with
 *   every restart that did not stay up for {@link STABLE_MS}, at most {@link BACKOFF_MS_MAX}.
 * - At most `restartsPerMinuteMax` restarts of one process in any {@link WINDOW_MS}: one more death
 *   and the supervisor gives up on it — it stays dead, and status says so — until someone starts
 *   it again (`up`, `restart`).
 */
import { assert } from '../lib/assert.ts';

/** Whether the supervisor restarts a process that dies. */
export type RestartPolicy = 'always' | 'never';

/** What a supervisor sees of a process. */
export type ObservedState = 'running' | 'stopped' | 'dead';

/** The window over which restarts are counted, ms. */
export const WINDOW_MS = 60_000;
/** Longest wait before a restart, ms. */
export const BACKOFF_MS_MAX = 30_000;
/** A process up this long after a restart is well again: the backoff starts over. */
export const STABLE_MS = 60_000;

/** Limits of the supervisor. */
export interface RestartLimits {
  /** Restarts of one process allowed in any {@link WINDOW_MS}; ≥ 1. */
  readonly restartsPerMinuteMax: number;
  /** Wait before the first restart, ms; doubles per restart; > 0. */
  readonly backoffMs: number;
}

/** What the supervisor knows of one process, as status shows it. */
export interface RestartRecord {
  /** Restarts by the supervisor since the deployment's state directory was made. */
  readonly restarts: number;
  /** Wall-clock time of the last restart, ms since the epoch; null before the first. */
  readonly lastRestartAtMs: number | null;
  /** True when it died too often and stays down. */
  readonly gaveUp: boolean;
}

/** What to do about one process now. */
export type RestartDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'wait'; readonly untilMs: number }
  | { readonly kind: 'restart' }
  | { readonly kind: 'give-up'; readonly restartsInWindow: number };

interface Entry {
  restarts: number;
  lastRestartAtMs: number | null;
  gaveUp: boolean;
  /** Times of restarts within the window. */
  recent: number[];
  /** Restarts since the process was last stable; the backoff's exponent. */
  consecutive: number;
  /** When the death now being handled may be restarted; null when none is pending. */
  dueAtMs: number | null;
}

/** Restart bookkeeping for every process of one deployment. */
export class RestartTracker {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly limits: RestartLimits,
    /** Records kept from an earlier supervisor (its state file), by process name. */
    previous: Readonly<Record<string, RestartRecord>> = {},
  ) {
    assert(
      Number.isInteger(limits.restartsPerMinuteMax) && limits.restartsPerMinuteMax >= 1,
      `restartsPerMinuteMax must be a positive integer, got ${limits.restartsPerMinuteMax}`,
    );
    assert(limits.backoffMs > 0, `backoffMs must be positive, got ${limits.backoffMs}`);
    for (const [name, record] of Object.entries(previous))
      this.entries.set(name, { ...record, recent: [], consecutive: 0, dueAtMs: null });
  }

  private entry(name: string): Entry {
    let entry = this.entries.get(name);
    if (entry === undefined) {
      entry = {
        restarts: 0,
        lastRestartAtMs: null,
        gaveUp: false,
        recent: [],
        consecutive: 0,
        dueAtMs: null,
      };
      this.entries.set(name, entry);
    }
    return entry;
  }

  /** The wait before the next restart of a process restarted `consecutive` times in a row. */
  backoffMs(consecutive: number): number {
    return Math.min(this.limits.backoffMs * 2 ** Math.min(consecutive, 30), BACKOFF_MS_MAX);
  }

  /** Decides what to do about process `name` seen in `state` at `nowMs`. */
  observe(
    name: string,
    state: ObservedState,
    policy: RestartPolicy,
    nowMs: number,
  ): RestartDecision {
    const e = this.entry(name);
    if (state !== 'dead') {
      e.dueAtMs = null;
      if (state === 'running') {
        // Started again by someone (up, restart): the supervisor looks after it again.
        e.gaveUp = false;
        if (e.lastRestartAtMs !== null && nowMs - e.lastRestartAtMs >= STABLE_MS) e.consecutive = 0;
      }
      return { kind: 'none' };
    }
    if (policy === 'never' || e.gaveUp) return { kind: 'none' };
    if (e.dueAtMs === null) {
      e.recent = e.recent.filter((t) => nowMs - t < WINDOW_MS);
      if (e.recent.length >= this.limits.restartsPerMinuteMax) {
        e.gaveUp = true;
        return { kind: 'give-up', restartsInWindow: e.recent.length };
      }
      e.dueAtMs = nowMs + this.backoffMs(e.consecutive);
    }
    return nowMs >= e.dueAtMs ? { kind: 'restart' } : { kind: 'wait', untilMs: e.dueAtMs };
  }

  /** Notes that process `name` was restarted at `nowMs`. */
  restarted(name: string, nowMs: number): void {
    const e = this.entry(name);
    e.restarts++;
    e.lastRestartAtMs = nowMs;
    e.recent.push(nowMs);
    e.consecutive++;
    e.dueAtMs = null;
  }

  /** What status shows, by process name. */
  records(): Record<string, RestartRecord> {
    const out: Record<string, RestartRecord> = {};
    for (const [name, e] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      out[name] = { restarts: e.restarts, lastRestartAtMs: e.lastRestartAtMs, gaveUp: e.gaveUp };
    return out;
  }
}
