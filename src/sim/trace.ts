/**
 * The trace: every observable step of a simulated run, in order. Its rolling digest identifies the
 * run — same seed, same scenario, same code ⇒ same hash. The digest is taken over each entry's
 * fields (src/lib/digest.ts), not over text: an entry is serialised to canonical JSON only when
 * entries are kept (replay files, determinism checks). The bare step records that make up most of
 * a trace take a path that allocates nothing: their labels go into the digest as dictionary codes.
 * An entry's index is its place in the stream, so only the kept text spells it out.
 */
import { toCanonicalJson } from '../lib/canonical-json.ts';
import { AssertionError } from '../lib/assert.ts';
import { Digest128 } from '../lib/digest.ts';

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

/** Tags that frame each entry in the digest stream (src/lib/digest.ts tags values inside them). */
const TAG_RECORD = 0x52454331;
const TAG_LABEL = 0x4c41424c;
/**
 * A step record is one block of four words: this tag plus its event label's code (codes stay below
 * 2^24, so the sum never meets another tag), the time's IEEE-754 words, and the owner's code.
 */
const TAG_STEP = 0x53000000;
const CODE_MAX = 0xffffff;

const timeView = new Float64Array(1);
const timeWords = new Uint32Array(timeView.buffer);

/** Number of hex digits of the hash shown to users. 64 bits make accidental collisions negligible. */
export const TRACE_HASH_DIGITS = 16;

export class Trace {
  private readonly hash = new Digest128();
  private readonly kept: string[] | null;
  private readonly keepMax: number;
  private readonly codes = new Map<string, number>();
  private count = 0;
  private dropped = 0;

  constructor(options: TraceOptions = {}) {
    this.kept = options.keepEntries === true ? [] : null;
    this.keepMax = options.keepEntriesMax ?? 1_000_000;
  }

  /** Appends an entry at sim time `timeMs` (relative to the run's start). */
  append(timeMs: number, record: TraceRecord): void {
    const hash = this.hash;
    hash.word(TAG_RECORD);
    hash.number(timeMs);
    hash.value(record);
    const i = this.count++;
    // Index and time come last: a record's own `i` or `t` field must not rewrite them.
    if (this.kept !== null) this.keep(toCanonicalJson({ ...record, i, t: timeMs }));
  }

  /**
   * Appends the record `{ kind: 'step', ev, proc }`, the kernel's entry for every executed event,
   * without building it: its own tag, the time, and the two labels as dictionary codes.
   */
  appendStep(timeMs: number, ev: string, proc: string | undefined): void {
    timeView[0] = timeMs;
    this.hash.words4(
      TAG_STEP + this.code(ev),
      timeWords[0] as number,
      timeWords[1] as number,
      proc === undefined ? -1 : this.code(proc),
    );
    const i = this.count++;
    if (this.kept !== null) this.keep(toCanonicalJson({ kind: 'step', ev, proc, i, t: timeMs }));
  }

  /**
   * A label's code in this trace's dictionary. A label's first use feeds its text (and its new
   * code) to the digest, so the codes stand for the labels exactly: two traces whose labels differ
   * anywhere digest differently, whatever order the labels first appeared in.
   */
  private code(label: string): number {
    let code = this.codes.get(label);
    if (code === undefined) {
      code = this.codes.size;
      if (code > CODE_MAX) throw new AssertionError(`trace: more than ${CODE_MAX} distinct labels`);
      this.codes.set(label, code);
      this.hash.word(TAG_LABEL);
      this.hash.word(code);
      this.hash.string(label);
    }
    return code;
  }

  private keep(line: string): void {
    const kept = this.kept as string[];
    kept.push(line);
    if (kept.length > this.keepMax) {
      kept.shift();
      this.dropped++;
    }
  }

  /** Number of entries appended. */
  get length(): number {
    return this.count;
  }

  /** The run's identity: the first {@link TRACE_HASH_DIGITS} hex digits of the rolling digest. */
  digest(): string {
    return this.hash.hex().slice(0, TRACE_HASH_DIGITS);
  }

  /** Kept entries as canonical JSON lines, and how many earlier ones were dropped. */
  entries(): { readonly lines: readonly string[]; readonly dropped: number } {
    return { lines: this.kept ?? [], dropped: this.dropped };
  }
}
