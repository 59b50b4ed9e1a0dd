/**
 * How an account's usage stream folds into its row: every `usage.recorded` (the first one starts
 * the row) adds to the totals and moves the per-resource high-water mark the background reads.
 */
import { assert } from '../../lib/assert.ts';
import { dataOf } from '../events.ts';
import type { UsageRow } from '../resources.ts';
import type { StoredEvent } from '../stream.ts';
import { activeRow } from './kit.ts';

/** Folds one `usage.recorded` into the account's usage row (null before the first). */
export function foldUsage(row: UsageRow | null, event: StoredEvent): UsageRow {
  assert(event.type === 'usage.recorded', `projector: unexpected ${event.type} on a usage stream`);
  const x = dataOf(event, 'usage.recorded');
  const base: UsageRow = row ?? {
    ...activeRow(event, 'usage', x.accountId, event.stream),
    totals: {},
    records: 0,
    recordedUntilMs: {},
    observed: null,
  };
  const previousUntil = base.recordedUntilMs[x.resourceId] ?? 0;
  return {
    ...base,
    rev: event.version,
    totals: { ...base.totals, [x.metric]: (base.totals[x.metric] ?? 0) + x.quantity },
    records: base.records + 1,
    recordedUntilMs: { ...base.recordedUntilMs, [x.resourceId]: Math.max(previousUntil, x.toMs) },
  };
}
