/**
 * Lock-service faults on session-expiry notices: a notice may be lost (ZooKeeper watches are
 * one-shot and a client that reconnects late misses them; it learns of the expiry only at its next
 * request or heartbeat) or arrive late. Meanwhile the client believes it still holds its locks —
 * only fencing keeps its writes and commands from taking effect.
 */
import { assert, assertProbability } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';
import { flip, type FaultPhase, type LockFaults, type RecordFault } from './plan.ts';

/** An expiry notice on its way to a client (a structural subset of the simulated lock service's). */
export interface Notice {
  readonly sessionId: string;
  readonly owner: string;
  readonly delayMs: number;
}

/** The delays of a notice's copies; `[]` loses it. */
export type NoticeFaults = (notice: Notice) => readonly number[];

/** An expiry-notice filter drawing from `random` while `phase` is active. */
export function createNoticeFaults(
  options: LockFaults,
  phase: FaultPhase,
  random: Prng,
  record: RecordFault,
): NoticeFaults {
  assertProbability(options.expiryNoticeLossProbability, 'expiryNoticeLossProbability');
  assertProbability(options.expiryNoticeDelayProbability, 'expiryNoticeDelayProbability');
  assert(options.expiryNoticeDelayMsMax >= 0, 'expiryNoticeDelayMsMax must be >= 0');
  return (notice) => {
    if (!phase.active) return [notice.delayMs];
    const lose = flip(random, options.expiryNoticeLossProbability);
    const delay = flip(random, options.expiryNoticeDelayProbability);
    const extra = Math.round(random.float() * options.expiryNoticeDelayMsMax * 1000) / 1000;
    const where = { session: notice.sessionId, owner: notice.owner };
    if (lose) {
      record({ kind: 'fault.locks', fault: 'notice-lost', ...where });
      return [];
    }
    if (!delay) return [notice.delayMs];
    record({
      kind: 'fault.locks',
      fault: 'notice-late',
      ...where,
      delayMs: notice.delayMs + extra,
    });
    return [notice.delayMs + extra];
  };
}
