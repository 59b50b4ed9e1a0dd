/**
 * Uniform one-way latency ranges, as the simulated bus and lock service model their networks:
 * checked once where a range is configured, sampled from the owner's own PRNG fork.
 */
import { assert } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';

/** A range of one-way latencies in virtual ms, drawn uniformly. */
export interface LatencyRange {
  readonly minMs: number;
  readonly maxMs: number;
}

/** Asserts that `range` is usable: a finite minimum >= 0 and a maximum >= it. `what` names it. */
export function assertLatencyRange(range: LatencyRange, what: string): void {
  assert(
    Number.isFinite(range.minMs) && range.minMs >= 0 && range.maxMs >= range.minMs,
    `bad ${what} latency range [${range.minMs}, ${range.maxMs}]`,
  );
}

/** One latency sample from `range`, in virtual ms; consumes exactly one draw of `random`. */
export function sampleLatency(range: LatencyRange, random: Prng): number {
  return range.minMs + random.float() * (range.maxMs - range.minMs);
}
