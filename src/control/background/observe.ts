/**
 * From an agent's inventory and the current rows to the observations worth recording: pure
 * functions, so the rules are tested without a store, and so a retry after a concurrency conflict
 * re-applies the same rule to the re-read row.
 *
 * An observation is recorded only when it differs from the row's last one (ignoring its time), so
 * the log grows with changes, not with inventories. Which rows an inventory speaks for:
 * - the resources placed on the reporting host (their facts: present or absent there);
 * - resources last observed present on that host but placed elsewhere or nowhere, until they are
 *   seen gone from it (an evacuated VM must be seen absent on its old host).
 * A domain or dataset on a host that no row places there is an orphan: the agent destroys it;
 * recording it would only make a row's observation flip between hosts.
 */
import type { InventoryDataset, InventoryDomain } from '../../model/commands.ts';
import type { EventDataMap } from '../../model/events.ts';
import {
  datasetName,
  snapshotDatasetName,
  volumeIdOfDiskSource,
  type HostRow,
  type SnapshotRow,
  type VmRow,
  type VolumeRow,
} from '../../model/resources.ts';

type VmObservedData = EventDataMap['vm.observed'];
type VolumeObservedData = EventDataMap['volume.observed'];
type SnapshotObservedData = EventDataMap['snapshot.observed'];
type HostUpData = EventDataMap['host.up'];

/** Volume ids of a domain's disks in target order, or null if a source is not a cloudbed volume. */
export function diskVolumeIds(domain: InventoryDomain): string[] | null {
  const disks = [...domain.disks].sort((a, b) =>
    a.target !== b.target ? (a.target < b.target ? -1 : 1) : a.source.localeCompare(b.source),
  );
  const ids: string[] = [];
  for (const disk of disks) {
    const id = volumeIdOfDiskSource(disk.source);
    if (id === null) return null;
    ids.push(id);
  }
  return ids;
}

function sameList(a: readonly string[] | null, b: readonly string[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Whether an inventory speaks for a row: it is placed on the reporting host, or last seen there. */
interface SpeaksFor<T> {
  readonly placedHere: boolean;
  readonly lastSeenHere: (previous: T) => boolean;
}

/**
 * The rule every observation follows: a row that is removed, or that the inventory does not speak
 * for (neither placed on the reporting host nor last seen there), gets none; otherwise `next`, the
 * inventory's facts, unless they equal the row's `previous` observation.
 */
function observation<T>(
  row: { readonly removed: unknown; readonly observed: T | null },
  speaksFor: SpeaksFor<T>,
  next: () => T,
  same: (previous: T, next: T) => boolean,
): T | null {
  if (row.removed !== null) return null;
  const previous = row.observed;
  const lastSeenHere = previous !== null && speaksFor.lastSeenHere(previous);
  if (!speaksFor.placedHere && !lastSeenHere) return null;
  const facts = next();
  return previous !== null && same(previous, facts) ? null : facts;
}

/**
 * The `vm.observed` data a compute inventory of `hostId` implies for `vm`, or null when the
 * inventory does not speak for it or nothing changed.
 */
export function observeVm(
  vm: VmRow,
  hostId: string,
  domains: ReadonlyMap<string, InventoryDomain>,
): VmObservedData | null {
  return observation<VmObservedData>(
    vm,
    {
      placedHere: vm.hostId === hostId,
      lastSeenHere: (previous) => previous.hostId === hostId && previous.domain !== 'absent',
    },
    () => {
      const domain = domains.get(vm.id);
      return domain === undefined
        ? { hostId, domain: 'absent', disks: null }
        : { hostId, domain: domain.state, disks: diskVolumeIds(domain) };
    },
    (previous, next) =>
      previous.hostId === next.hostId &&
      previous.domain === next.domain &&
      sameList(previous.disks, next.disks),
  );
}

/** The facts every observation of a volume or snapshot holds. */
interface OnNode {
  readonly storageNodeId: string;
  readonly present: boolean;
}

/** What sets the observations of one kind of storage row (volumes, snapshots) apart. */
interface StorageRule<R, F> {
  /** The kind of the row's dataset; a dataset of the other kind under its name is no match. */
  readonly kind: InventoryDataset['kind'];
  /** The full name of the row's dataset. */
  readonly datasetName: (row: R) => string;
  /** The facts a present dataset shows, beyond {@link OnNode}'s. */
  readonly facts: (dataset: InventoryDataset) => F;
  /** Those facts when the dataset is absent. */
  readonly absent: F;
}

/**
 * The observation function for storage rows of one kind: what a storage inventory of `nodeId`
 * implies for a row, or null. Their facts are plain values, compared field by field.
 */
function storageObserver<
  R extends {
    readonly removed: unknown;
    readonly storageNodeId: string | null;
    readonly observed: (OnNode & F) | null;
  },
  F,
>(
  rule: StorageRule<R, F>,
): (
  row: R,
  nodeId: string,
  datasets: ReadonlyMap<string, InventoryDataset>,
) => (OnNode & F) | null {
  return (row, nodeId, datasets) =>
    observation<OnNode & F>(
      row,
      {
        placedHere: row.storageNodeId === nodeId,
        lastSeenHere: (previous) => previous.storageNodeId === nodeId && previous.present,
      },
      () => {
        const dataset = datasets.get(rule.datasetName(row));
        return dataset === undefined || dataset.kind !== rule.kind
          ? { storageNodeId: nodeId, present: false, ...rule.absent }
          : { storageNodeId: nodeId, present: true, ...rule.facts(dataset) };
      },
      (previous, next) =>
        (Object.keys(next) as (keyof (OnNode & F))[]).every((key) => previous[key] === next[key]),
    );
}

/**
 * The `volume.observed` data a storage inventory of `nodeId` implies for `volume`, or null. The
 * volume's dataset is `cloudbed/<volumeId>`.
 */
export const observeVolume = storageObserver<VolumeRow, Omit<VolumeObservedData, keyof OnNode>>({
  kind: 'volume',
  datasetName: (volume) => datasetName(volume.id),
  facts: (dataset) => ({ sizeBytes: dataset.sizeBytes, origin: dataset.origin }),
  absent: { sizeBytes: null, origin: null },
});

/**
 * The `snapshot.observed` data a storage inventory of `nodeId` implies for `snapshot`, or null.
 * The snapshot's dataset is `cloudbed/<volumeId>@<snapshotId>`.
 */
export const observeSnapshot = storageObserver<
  SnapshotRow,
  Omit<SnapshotObservedData, keyof OnNode>
>({
  kind: 'snapshot',
  datasetName: (snapshot) => snapshotDatasetName(snapshot.volumeId, snapshot.id),
  facts: (dataset) => ({ sizeBytes: dataset.sizeBytes }),
  absent: { sizeBytes: null },
});

/**
 * The `host.up` data an inventory implies for `host`, or null: on the first report (registering),
 * when reports resume (offline), and when the reported capacity changed. A removed host's agent
 * may still report; that is ignored.
 */
export function observeHostUp(host: HostRow, capacity: HostUpData): HostUpData | null {
  if (host.removed !== null) return null;
  const previous = host.observed;
  const changed =
    previous === null ||
    previous.vcpus !== capacity.vcpus ||
    previous.memoryMb !== capacity.memoryMb ||
    previous.poolSizeBytes !== capacity.poolSizeBytes;
  if (host.state === 'registering' || !host.online || changed) return capacity;
  return null;
}

/**
 * The `host.down` data for `host` at `nowMs`, or null: an online, live host whose last report
 * (`lastSeenMs`) is at least `hostDownAfterMs` old.
 */
export function observeHostDown(
  host: HostRow,
  lastSeenMs: number,
  nowMs: number,
  hostDownAfterMs: number,
): EventDataMap['host.down'] | null {
  if (host.removed !== null || !host.online) return null;
  return nowMs - lastSeenMs >= hostDownAfterMs ? { lastSeenMs } : null;
}
