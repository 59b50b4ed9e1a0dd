/**
 * Usage records: VM-hours while a VM's domain is observed running, GB-hours while a volume's
 * dataset is observed present. Pure functions over rows, so the rule is tested on its own.
 *
 * A resource's billable span starts at the later of its observation's time (the observation
 * changed then, and it is recorded only on change) and the end of its last usage record (the usage
 * row's `recordedUntilMs`), and ends now. The background records a span when an observation stops
 * being billable or changes (in the same atomic batch as the new observation, so a crash cannot
 * lose or double it) and, for steady resources, once it is at least the usage interval long. Each
 * span ends where the next one starts: nothing is counted twice, nothing is skipped.
 */
import type { EventDataMap } from '../../model/events.ts';
import { BYTES_PER_GB, type VmRow, type VolumeRow } from '../../model/resources.ts';

type UsageData = EventDataMap['usage.recorded'];

/** Milliseconds per hour. */
export const MS_PER_HOUR = 3_600_000;

/** What is billed of one resource: its observation's time and rate, in units per hour. */
interface Billable {
  readonly sinceMs: number;
  /** VM-hours or GB-hours per hour. */
  readonly rate: number;
}

/** The billable state of a VM's current observation, or null while it is not running. */
function billableVm(vm: VmRow): Billable | null {
  const o = vm.observed;
  return o !== null && o.domain === 'running' ? { sinceMs: o.atMs, rate: 1 } : null;
}

/** The billable state of a volume's current observation, or null while it is absent. */
function billableVolume(volume: VolumeRow): Billable | null {
  const o = volume.observed;
  if (o === null || !o.present) return null;
  const bytes = o.sizeBytes ?? volume.sizeGb * BYTES_PER_GB;
  return { sinceMs: o.atMs, rate: bytes / BYTES_PER_GB };
}

/**
 * The usage record of `row` from its last record (or observation) until `nowMs`, or null when
 * nothing is billable or the span is shorter than `minSpanMs` (0: any positive span).
 * `recordedUntilMs` is the account usage row's map (empty when the account has none yet).
 */
export function usageRecord(
  row: VmRow | VolumeRow,
  recordedUntilMs: { readonly [resourceId: string]: number },
  nowMs: number,
  minSpanMs: number,
): UsageData | null {
  const billable = row.type === 'virtualMachine' ? billableVm(row) : billableVolume(row);
  if (billable === null) return null;
  const fromMs = Math.max(billable.sinceMs, recordedUntilMs[row.id] ?? Number.NEGATIVE_INFINITY);
  const spanMs = nowMs - fromMs;
  if (spanMs <= 0 || spanMs < minSpanMs) return null;
  // Rounded to micro-units: totals stay readable and identical across platforms.
  const quantity = Math.round((billable.rate * spanMs * 1e6) / MS_PER_HOUR) / 1e6;
  return {
    accountId: row.accountId,
    resourceId: row.id,
    resourceType: row.type,
    metric: row.type === 'virtualMachine' ? 'vm-hours' : 'gb-hours',
    quantity,
    fromMs,
    toMs: nowMs,
  };
}
