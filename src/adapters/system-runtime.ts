/**
 * The real Runtime: what a control-plane process gets from the world when it runs for real
 * (staging) instead of inside the simulator. Time is the system clock with `setTimeout`-based
 * sleeps, randomness and ids come from `crypto`, and the log writes one JSON object per line to a
 * stream (stderr by default, which `cloudbed staging up` redirects into each process's log file).
 * The simulator gives the same interfaces a virtual clock, seeded PRNG forks and the trace.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { assert } from '../lib/assert.ts';
import type { Clock, Ids, Log, Random, Runtime } from '../ports/runtime.ts';

/** Where log lines go: anything with `write(string)`, e.g. `process.stderr` or a file stream. */
export interface LogSink {
  write(line: string): unknown;
}

/** Options of {@link createSystemRuntime}. */
export interface SystemRuntimeOptions {
  /** Process name put in every log line as `proc` (`api`, `mainloop`, `agent-compute-1`). */
  readonly process: string;
  /** Where log lines go. Default `process.stderr`. */
  readonly sink?: LogSink;
  /** Also write `info` lines; false keeps only warnings. Default true. */
  readonly verbose?: boolean;
}

/** The system clock. Sleeps reject nothing and never resolve early; a cancelled timer never settles. */
export function systemClock(): Clock {
  return {
    nowMs: () => Date.now(),
    sleep: (delayMs) => {
      assert(Number.isFinite(delayMs) && delayMs >= 0, `sleep: bad delay ${delayMs}`);
      return new Promise((resolve) => setTimeout(resolve, delayMs));
    },
    timer: (delayMs) => {
      assert(Number.isFinite(delayMs) && delayMs >= 0, `timer: bad delay ${delayMs}`);
      let timeout: ReturnType<typeof setTimeout> | undefined;
      const fired = new Promise<void>((resolve) => {
        timeout = setTimeout(resolve, delayMs);
      });
      return { fired, cancel: () => clearTimeout(timeout) };
    },
  };
}

/** 2^-53: turns 53 random bits into a float in [0, 1). */
const FLOAT_SCALE = 1 / 9007199254740992;

/** Randomness from the operating system's CSPRNG (`crypto.randomBytes`), same semantics as the PRNG. */
export function cryptoRandom(): Random {
  const float = (): number => {
    const bytes = randomBytes(8);
    // 53 bits: the high 21 bits of the first word and all 32 of the second.
    const hi = bytes.readUInt32BE(0) >>> 11;
    const lo = bytes.readUInt32BE(4);
    return (hi * 4294967296 + lo) * FLOAT_SCALE;
  };
  return {
    float,
    int: (min, max) => {
      assert(
        Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max,
        `bad int range [${min}, ${max}]`,
      );
      // crypto.randomInt is unbiased but limited to spans below 2^48.
      if (max - min < 2 ** 48 - 1) return randomInt(min, max + 1);
      return min + Math.floor(float() * (max - min + 1));
    },
    chance: (p) => {
      assert(p >= 0 && p <= 1, `probability must be in [0, 1], got ${p}`);
      if (p === 0) return false;
      if (p === 1) return true;
      return float() < p;
    },
    exponential: (mean) => {
      assert(mean >= 0, `mean must be >= 0, got ${mean}`);
      return -Math.log(1 - float()) * mean;
    },
    logNormal: (median, sigma) => {
      assert(median > 0 && sigma >= 0, `bad log-normal median=${median} sigma=${sigma}`);
      const u1 = 1 - float();
      const u2 = float();
      return median * Math.exp(sigma * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    },
  };
}

/** Hex digits of a real id: 48 random bits, so collisions within one deployment are negligible. */
const ID_HEX_DIGITS = 12;

/** Ids such as `vm-3f9c0a1b2c4d`: the prefix, a dash, 12 random hex digits. */
export function cryptoIds(): Ids {
  return {
    next: (prefix) => {
      assert(/^[a-z][a-z0-9]*$/.test(prefix), `bad id prefix ${JSON.stringify(prefix)}`);
      return `${prefix}-${randomBytes(ID_HEX_DIGITS / 2).toString('hex')}`;
    },
  };
}

/** Turns values JSON cannot carry (errors, bigints) into something readable. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * A structured log: one JSON object per line, `{at, level, proc, message, ...fields}` with `at` in
 * ISO-8601 UTC. Fields never overwrite `at`, `level`, `proc` or `message`.
 */
export function jsonLog(options: SystemRuntimeOptions): Log {
  const sink = options.sink ?? process.stderr;
  const verbose = options.verbose ?? true;
  const write = (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => {
    const line = {
      ...fields,
      at: new Date().toISOString(),
      level,
      proc: options.process,
      message,
    };
    let text: string;
    try {
      text = JSON.stringify(line, replacer);
    } catch {
      // A cyclic field: keep the line, lose the fields.
      text = JSON.stringify({ at: line.at, level, proc: options.process, message });
    }
    sink.write(`${text}\n`);
  };
  return {
    info: (message, fields) => {
      if (verbose) write('info', message, fields);
    },
    warn: (message, fields) => write('warn', message, fields),
  };
}

/** The Runtime of a real process: system clock, crypto randomness and ids, a JSON-lines log. */
export function createSystemRuntime(options: SystemRuntimeOptions): Runtime {
  return {
    clock: systemClock(),
    random: cryptoRandom(),
    ids: cryptoIds(),
    log: jsonLog(options),
  };
}
