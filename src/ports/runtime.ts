/**
 * The ports every process gets from its environment: time, randomness, ids and a log. In the
 * simulator they come from the virtual clock, named PRNG forks and the trace; in staging from the
 * system clock and `crypto`. Control-plane code reaches nondeterminism only through these.
 */

/** Wall or virtual time. */
export interface Clock {
  /** Milliseconds since the Unix epoch (virtual in the simulator). */
  nowMs(): number;
  /** Resolves after `delayMs` (>= 0) milliseconds of this clock's time. */
  sleep(delayMs: number): Promise<void>;
  /**
   * A sleep that can be called off: `fired` resolves after `delayMs` unless `cancel()` came first,
   * and then never settles, leaving no timer behind — a timeout that lost its race costs nothing.
   */
  timer(delayMs: number): Timer;
}

/** A cancellable sleep (see {@link Clock.timer}). */
export interface Timer {
  readonly fired: Promise<void>;
  cancel(): void;
}

/** A stream of random numbers. In the simulator, a named fork of the run's root seed. */
export interface Random {
  /** A float in [0, 1). */
  float(): number;
  /** An integer in [min, max], inclusive. */
  int(min: number, max: number): number;
  /** True with probability `p` in [0, 1]. */
  chance(p: number): boolean;
  /** An exponentially distributed value with mean `mean`. */
  exponential(mean: number): number;
  /** A log-normally distributed value with median `median` and log-space spread `sigma`. */
  logNormal(median: number, sigma: number): number;
}

/** Opaque, URL-safe identifiers such as `vm-7f3a2c`. */
export interface Ids {
  /** A new id that starts with `prefix-`. Unique within a deployment. */
  next(prefix: string): string;
}

/** Structured log lines; the simulator appends them to the trace. */
export interface Log {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Everything a process receives from the world besides its service ports. */
export interface Runtime {
  readonly clock: Clock;
  readonly random: Random;
  readonly ids: Ids;
  readonly log: Log;
}
