/**
 * A cancellable timer made from any plain sleep, for clocks that cannot drop a pending sleep (test
 * clocks, setup code): once cancelled, the timer never fires, though the sleep under it still runs
 * out. Real clocks and the simulator's drop the sleep itself (see the Clock port's `timer`).
 */

/** A cancellable sleep: `fired` resolves after the sleep unless `cancel()` came first. */
export interface SleepTimer {
  readonly fired: Promise<void>;
  cancel(): void;
}

/** A timer over `sleep(delayMs)` that never fires once cancelled. */
export function timerFromSleep(
  sleep: (delayMs: number) => Promise<void>,
  delayMs: number,
): SleepTimer {
  let cancelled = false;
  const fired = new Promise<void>((resolve, reject) => {
    sleep(delayMs).then(() => {
      if (!cancelled) resolve();
    }, reject);
  });
  return {
    fired,
    cancel: () => {
      cancelled = true;
    },
  };
}
