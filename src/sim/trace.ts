/**
 * The trace: every observable step of a simulated run, in order, as canonical JSON. Its rolling
 * SHA-256 identifies the run — same seed, same scenario, same code ⇒ same hash. Entries are kept in
 * memory only when asked (replay files, determinism checks); the hash is always kept.
 */
import { toCanonicalJson } from '../lib/canonical-json.ts';
import { RollingHash } from '../lib/hash.ts';

/** One trace entry before serialisation. `kind` is dotted lowercase, e.g. `proc.crash`. */
export interface TraceRecord {
  readonly kind: string;
  readonly [field: string]: unknown;
}

/** Options for {@link Trace}. */
export interface TraceOptions {
  /** Keep every entry in memory (needed to write a trace file or find a divergence). Default false. */
  readonly keepEntries?: boolean;
  /** Keep at most this many entries; older ones are dropped (the hash still covers them). */
  readonly keepEntriesMax?: number;
}

/** Number of hex digits of the hash shown to users. 64 bits make accidental collisions negligible. */
export const TRACE_HASH_DIGITS = 16;

export class Trace {
  private readonly hash = new RollingHash();
  private readonly kept: string[] | null;
  private readonly keepMax: number;
  private dropped = 0;

  constructor(options: TraceOptions = {}) {
    this.kept = options.keepEntries === true ? [] : null;
    this.keepMax = options.keepEntriesMax ?? 1_000_000;
  }

  /** Appends an entry at sim time `timeMs` (relative to the run's start). */
  append(timeMs: number, record: TraceRecord): void {
    // Index and time come last: a record's own `i` or `t` field must not rewrite them.
    const line = toCanonicalJson({ ...record, i: this.hash.records, t: timeMs });
    this.hash.update(line);
    if (this.kept !== null) {
      this.kept.push(line);
      if (this.kept.length > this.keepMax) {
        this.kept.shift();
        this.dropped++;
      }
    }
  }

  /** Number of entries appended. */
  get length(): number {
    return this.hash.records;
  }

  /** The run's identity: the first {@link TRACE_HASH_DIGITS} hex digits of the rolling SHA-256. */
  digest(): string {
    return this.hash.digest().slice(0, TRACE_HASH_DIGITS);
  }

  /** Kept entries as canonical JSON lines, and how many earlier ones were dropped. */
  entries(): { readonly lines: readonly string[]; readonly dropped: number } {
    return { lines: this.kept ?? [], dropped: this.dropped };
  }
}
