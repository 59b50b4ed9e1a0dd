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

/**
 * The `vm.observed` data a compute inventory of `hostId` implies for `vm`, or null when the
 * inventory does not speak for it or nothing changed.
 */
export function observeVm(
  vm: VmRow,
  hostId: string,
  domains: ReadonlyMap<string, InventoryDomain>,
): VmObservedData | null {
  if (vm.removed !== null) return null;
  const previous = vm.observed;
  const placedHere = vm.hostId === hostId;
  const lastSeenHere =
    previous !== null && previous.hostId === hostId && previous.domain !== 'absent';
  if (!placedHere && !lastSeenHere) return null;
  const domain = domains.get(vm.id);
  const next: VmObservedData =
    domain === undefined
      ? { hostId, domain: 'absent', disks: null }
      : { hostId, domain: domain.state, disks: diskVolumeIds(domain) };
  if (
    previous !== null &&
    previous.hostId === next.hostId &&
    previous.domain === next.domain &&
    sameList(previous.disks, next.disks)
  )
    return null;
  return next;
}

/**
 * The `volume.observed` data a storage inventory of `nodeId` implies for `volume`, or null. The
 * volume's dataset is `cloudbed/<volumeId>`.
 */
export function observeVolume(
  volume: VolumeRow,
  nodeId: string,
  datasets: ReadonlyMap<string, InventoryDataset>,
): VolumeObservedData | null {
  if (volume.removed !== null) return null;
  const previous = volume.observed;
  const placedHere = volume.storageNodeId === nodeId;
  const lastSeenHere = previous !== null && previous.storageNodeId === nodeId && previous.present;
  if (!placedHere && !lastSeenHere) return null;
  const dataset = datasets.get(datasetName(volume.id));
  const next: VolumeObservedData =
    dataset === undefined || dataset.kind !== 'volume'
      ? { storageNodeId: nodeId, present: false, sizeBytes: null, origin: null }
      : {
          storageNodeId: nodeId,
          present: true,
          sizeBytes: dataset.sizeBytes,
          origin: dataset.origin,
        };
  if (
    previous !== null &&
    previous.storageNodeId === next.storageNodeId &&
    previous.present === next.present &&
    previous.sizeBytes === next.sizeBytes &&
    previous.origin === next.origin
  )
    return null;
  return next;
}

/**
 * The `snapshot.observed` data a storage inventory of `nodeId` implies for `snapshot`, or null.
 * The snapshot's dataset is `cloudbed/<volumeId>@<snapshotId>`.
 */
export function observeSnapshot(
  snapshot: SnapshotRow,
  nodeId: string,
  datasets: ReadonlyMap<string, InventoryDataset>,
): SnapshotObservedData | null {
  if (snapshot.removed !== null) return null;
  const previous = snapshot.observed;
  const placedHere = snapshot.storageNodeId === nodeId;
  const lastSeenHere = previous !== null && previous.storageNodeId === nodeId && previous.present;
  if (!placedHere && !lastSeenHere) return null;
  const dataset = datasets.get(snapshotDatasetName(snapshot.volumeId, snapshot.id));
  const next: SnapshotObservedData =
    dataset === undefined || dataset.kind !== 'snapshot'
      ? { storageNodeId: nodeId, present: false, sizeBytes: null }
      : { storageNodeId: nodeId, present: true, sizeBytes: dataset.sizeBytes };
  if (
    previous !== null &&
    previous.storageNodeId === next.storageNodeId &&
    previous.present === next.present &&
    previous.sizeBytes === next.sizeBytes
  )
    return null;
  return next;
}

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
