/**
 * Paces a simulation to the wall clock. The simulated cloud normally runs as fast as it can on
 * virtual time; `cloudbed serve` instead runs it in step with real time, so a person can curl the
 * API and watch VMs boot in seconds, with every component still the simulator's. The driver runs
 * each event when its virtual time has come, moves the virtual clock forward while idle, and wakes
 * at once when work is injected from outside (an HTTP request).
 */
import type { Simulation } from '../sim/simulation.ts';

/** Longest idle sleep before the driver re-checks the queue, ms. */
const IDLE_SLEEP_MS_MAX = 50;

/** A running driver. */
export interface RealtimeDriver {
  /** Moves the virtual clock up to the wall clock (if idle) and wakes the loop; call before injecting work. */
  sync(): void;
  /** Resolves when the loop ends: after {@link RealtimeDriver.stop}, or with the first failure of the simulation. */
  readonly done: Promise<void>;
  stop(): void;
}

/** Starts pacing `sim`: virtual time 0 is `sim.scheduler.epochMs` on the wall clock. */
export function startRealtime(
  sim: Simulation,
  onFailure: (reason: string) => void,
): RealtimeDriver {
  const { scheduler } = sim;
  const wallNow = (): number => Date.now() - scheduler.epochMs;
  let stopped = false;
  let wake: (() => void) | null = null;
  let timer: NodeJS.Timeout | null = null;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });

  const loop = async (): Promise<void> => {
    while (!stopped) {
      const failure = sim.failureReason();
      if (failure !== undefined) {
        onFailure(failure);
        return;
      }
      const next = scheduler.peekTime();
      const now = wallNow();
      if (next !== undefined && next <= now) {
        await scheduler.step();
        continue;
      }
      scheduler.advanceTo(now);
      await sleep(next === undefined ? IDLE_SLEEP_MS_MAX : Math.min(IDLE_SLEEP_MS_MAX, next - now));
      if (timer !== null) clearTimeout(timer);
      wake = null;
    }
  };

  return {
    sync() {
      if (scheduler.peekTime() === undefined || (scheduler.peekTime() ?? 0) > wallNow())
        scheduler.advanceTo(wallNow());
      wake?.();
    },
    done: loop(),
    stop() {
      stopped = true;
      wake?.();
    },
  };
}
