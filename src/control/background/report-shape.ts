/**
 * Checks the shape of agent reports as they arrive from the bus. Anyone may publish on the reports
 * channel (an older agent, a corrupt payload), and a report the background misreads could record a
 * false observation, so a report is used only if every field it relies on has the right type;
 * anything else is dropped and logged.
 *
 * Reports may carry `atMs`, the agent's clock when it took the inventory: the background uses it to
 * drop an inventory that arrives after a newer one from the same host (bus delay and reordering).
 */
import type {
  InventoryDataset,
  InventoryDomain,
  InventoryReport,
  ResultReport,
} from '../../model/commands.ts';
import type { BusMessage } from '../../ports/bus.ts';

/** A checked report, with the agent's `atMs` when it sent one. */
export type CheckedReport =
  | { readonly report: ResultReport; readonly atMs: number | null }
  | { readonly report: InventoryReport; readonly atMs: number | null };

type Fields = { readonly [key: string]: unknown };

const isObject = (v: unknown): v is Fields =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const optionalCount = (v: unknown): boolean => v === undefined || v === null || isCount(v);
const DOMAIN_STATES = new Set(['shutoff', 'running', 'paused', 'crashed']);

function domainOf(v: unknown): InventoryDomain | null {
  if (!isObject(v) || !isName(v['name']) || typeof v['state'] !== 'string') return null;
  if (!DOMAIN_STATES.has(v['state'])) return null;
  if (!isCount(v['vcpus']) || !isCount(v['memoryMb']) || !Array.isArray(v['disks'])) return null;
  const disks: { target: string; source: string }[] = [];
  for (const d of v['disks'] as unknown[]) {
    if (!isObject(d) || typeof d['target'] !== 'string' || typeof d['source'] !== 'string')
      return null;
    disks.push({ target: d['target'], source: d['source'] });
  }
  return {
    name: v['name'],
    state: v['state'] as InventoryDomain['state'],
    vcpus: v['vcpus'],
    memoryMb: v['memoryMb'],
    disks,
  };
}

function datasetOf(v: unknown): InventoryDataset | null {
  if (!isObject(v) || !isName(v['name'])) return null;
  if (v['kind'] !== 'volume' && v['kind'] !== 'snapshot') return null;
  if (!isCount(v['sizeBytes'])) return null;
  const origin = v['origin'];
  if (origin !== null && typeof origin !== 'string') return null;
  return { name: v['name'], kind: v['kind'], sizeBytes: v['sizeBytes'], origin };
}

/** The report in `message`, or why it is unusable. */
export function checkReport(message: BusMessage): CheckedReport | string {
  const m = message as Fields;
  const atMs = typeof m['atMs'] === 'number' && Number.isFinite(m['atMs']) ? m['atMs'] : null;
  if (message.type === 'result') {
    if (!isName(m['commandId'])) return 'result without commandId';
    if (!isName(m['resource'])) return 'result without resource';
    if (typeof m['ok'] !== 'boolean') return 'result without ok';
    const error = m['error'];
    if (error !== undefined && error !== null && typeof error !== 'string')
      return 'result error is not text';
    const hostId = m['hostId'];
    if (hostId !== undefined && !isName(hostId)) return 'result hostId is not text';
    const report: ResultReport = {
      type: 'result',
      commandId: m['commandId'],
      resource: m['resource'],
      ok: m['ok'],
      ...(typeof error === 'string' ? { error } : {}),
      ...(typeof hostId === 'string' ? { hostId } : {}),
    };
    return { report, atMs };
  }
  if (message.type !== 'inventory') return `not a report: ${message.type}`;
  if (!isName(m['hostId'])) return 'inventory without hostId';
  const capacity = m['capacity'];
  if (!isObject(capacity)) return 'inventory without capacity';
  for (const key of ['vcpus', 'memoryMb', 'poolSizeBytes', 'poolFreeBytes']) {
    if (!optionalCount(capacity[key])) return `inventory capacity.${key} is not a count`;
  }
  const cap = {
    ...(isCount(capacity['vcpus']) ? { vcpus: capacity['vcpus'] } : {}),
    ...(isCount(capacity['memoryMb']) ? { memoryMb: capacity['memoryMb'] } : {}),
    ...(isCount(capacity['poolSizeBytes']) ? { poolSizeBytes: capacity['poolSizeBytes'] } : {}),
    ...(isCount(capacity['poolFreeBytes']) ? { poolFreeBytes: capacity['poolFreeBytes'] } : {}),
  };
  const report = inventoryOf(m, m['hostId'], cap);
  return typeof report === 'string' ? report : { report, atMs };
}

/** The compute or storage inventory in `m`, or why it is unusable. */
function inventoryOf(
  m: Fields,
  hostId: string,
  capacity: InventoryReport['capacity'],
): InventoryReport | string {
  switch (m['kind']) {
    case 'compute': {
      const domains = listOf(m['domains'], domainOf, 'compute inventory', 'domain');
      return typeof domains === 'string'
        ? domains
        : { type: 'inventory', hostId, kind: 'compute', domains, capacity };
    }
    case 'storage': {
      const datasets = listOf(m['datasets'], datasetOf, 'storage inventory', 'dataset');
      return typeof datasets === 'string'
        ? datasets
        : { type: 'inventory', hostId, kind: 'storage', datasets, capacity };
    }
    default:
      return 'inventory of unknown kind';
  }
}

/**
 * The items of an inventory's list `value` as `itemOf` reads them, or why the list is unusable
 * (`compute inventory without domains`, `… with a malformed domain`): one bad item spoils it all.
 */
function listOf<T>(
  value: unknown,
  itemOf: (v: unknown) => T | null,
  what: string,
  item: string,
): T[] | string {
  if (!Array.isArray(value)) return `${what} without ${item}s`;
  const items: T[] = [];
  for (const raw of value as unknown[]) {
    const read = itemOf(raw);
    if (read === null) return `${what} with a malformed ${item}`;
    items.push(read);
  }
  return items;
}
