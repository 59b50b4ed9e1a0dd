/**
 * The world the planner looks at: every host, VM, volume and snapshot row, indexed by id and by
 * the relations placement and cascades need (VMs per host, volumes per storage node, snapshots per
 * volume, clones per snapshot). Built by the main loop from one listing per wake and updated in
 * place as it writes, so planning stays pure and O(1) per lookup.
 *
 * Rows listed at different moments may disagree (a VM listed before its volumes were created):
 * planners treat a missing row as "not known yet", never as "gone" — rows are never deleted, a
 * removed resource stays as a tombstone with `removed` set.
 */
import type { HostRow, ReconciledRow, Row, SnapshotRow, VmRow, VolumeRow } from './resources.ts';

/** Rows to build a world from. */
export interface WorldRows {
  readonly hosts: readonly HostRow[];
  readonly vms: readonly VmRow[];
  readonly volumes: readonly VolumeRow[];
  readonly snapshots: readonly SnapshotRow[];
}

type Indexed = HostRow | VmRow | VolumeRow | SnapshotRow;

/** A multimap key → id → row, kept in step with the rows; each key's rows sorted once per change. */
class Index<R extends Indexed> {
  private readonly map = new Map<string, Map<string, R>>();
  /** Sorted rows per key, dropped when the key's rows change. */
  private readonly sorted = new Map<string, R[]>();
  constructor(private readonly keyOf: (row: R) => string | null) {}
  put(old: R | undefined, row: R): void {
    const oldKey = old === undefined ? null : this.keyOf(old);
    const newKey = this.keyOf(row);
    if (oldKey !== null) {
      this.map.get(oldKey)?.delete(row.id);
      this.sorted.delete(oldKey);
    }
    if (newKey !== null) {
      let bucket = this.map.get(newKey);
      if (bucket === undefined) {
        bucket = new Map<string, R>();
        this.map.set(newKey, bucket);
      }
      bucket.set(row.id, row);
      this.sorted.delete(newKey);
    }
  }
  /** Rows under `key`, sorted by id (a copy: the caller may keep it). */
  get(key: string): R[] {
    let rows = this.sorted.get(key);
    if (rows === undefined) {
      const bucket = this.map.get(key);
      if (bucket === undefined) return [];
      rows = [...bucket.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
      this.sorted.set(key, rows);
    }
    return [...rows];
  }
}

/**
 * A running total per key of what rows contribute (a host's reserved vCPUs and memory, a node's
 * reserved GiB), kept in step with the rows: placement reads a total in O(1) instead of adding up
 * a host's rows at every decision.
 */
/** Where {@link World.computeReservedTotals} keeps vCPUs and MiB. */
export const RESERVED_VCPUS = 0;
export const RESERVED_MEMORY_MB = 1;

/** The totals of a key nothing was added to: every amount 0 (read as `?? 0`). */
const NO_TOTALS: readonly number[] = Object.freeze([]);

class Totals<R extends Indexed> {
  private readonly totals = new Map<string, number[]>();
  /**
   * @param share what a row adds to which key, or null when it adds nothing (removed, unplaced)
   */
  constructor(private readonly share: (row: R) => { key: string; amounts: number[] } | null) {}
  put(old: R | undefined, row: R): void {
    if (old !== undefined) this.add(this.share(old), -1);
    this.add(this.share(row), 1);
  }
  private add(share: { key: string; amounts: number[] } | null, sign: 1 | -1): void {
    if (share === null) return;
    let total = this.totals.get(share.key);
    if (total === undefined) {
      total = share.amounts.map(() => 0);
      this.totals.set(share.key, total);
    }
    share.amounts.forEach((amount, i) => (total[i] = (total[i] ?? 0) + sign * amount));
  }
  /** The totals under `key` (the live array: read it, do not keep it); empty when nothing is there. */
  get(key: string): readonly number[] {
    return this.totals.get(key) ?? NO_TOTALS;
  }
}

/** Something kept in step with a table's rows: an index or a running total. */
interface Follower<R> {
  put(old: R | undefined, row: R): void;
}

/** The rows of one type by id, with the indexes over them kept in step. */
class Table<R extends Indexed> {
  private readonly rows = new Map<string, R>();
  /** Every row sorted by id; dropped when a row is added (a replaced row keeps its place). */
  private sorted: R[] | null = null;
  constructor(private readonly followers: readonly Follower<R>[] = []) {}
  put(row: R): void {
    const old = this.rows.get(row.id);
    // The very row again (a store that shares its rows lists the unchanged ones as they were):
    // nothing to do.
    if (old === row) return;
    this.rows.set(row.id, row);
    if (old === undefined) this.sorted = null;
    else if (this.sorted !== null) {
      // Same id, same place: swap the row in (binary search over the sorted ids).
      let lo = 0;
      let hi = this.sorted.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const id = (this.sorted[mid] as R).id;
        if (id === row.id) {
          this.sorted[mid] = row;
          break;
        }
        if (id < row.id) lo = mid + 1;
        else hi = mid - 1;
      }
    }
    for (const follower of this.followers) follower.put(old, row);
  }
  get(id: string): R | undefined {
    return this.rows.get(id);
  }
  /** Number of rows. */
  get size(): number {
    return this.rows.size;
  }
  /**
   * Every row, sorted by id: the table's own list, not a copy — read it before the next put (a
   * placement scans every host for each VM; copying the list each time cost more than the scan).
   */
  allSorted(): readonly R[] {
    this.sorted ??= [...this.rows.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    return this.sorted;
  }
}

/** Every host, VM, volume and snapshot row, with lookups by id and by relation (see the header). */
export class World {
  private readonly vmsByHost = new Index<VmRow>((v) => v.hostId);
  private readonly volumesByNode = new Index<VolumeRow>((v) => v.storageNodeId);
  private readonly snapshotsByVolume = new Index<SnapshotRow>((s) => s.volumeId);
  private readonly clonesBySnapshot = new Index<VolumeRow>((v) => v.sourceSnapshotId);
  /** vCPUs and MiB the live VMs placed on each compute host reserve. */
  private readonly computeTotals = new Totals<VmRow>((v) =>
    v.hostId === null || v.removed !== null
      ? null
      : { key: v.hostId, amounts: [v.vcpus, v.memoryMb] },
  );
  /** GiB the live volumes placed on each storage node reserve. */
  private readonly storageTotals = new Totals<VolumeRow>((v) =>
    v.storageNodeId === null || v.removed !== null
      ? null
      : { key: v.storageNodeId, amounts: [v.sizeGb] },
  );
  private readonly hostRows = new Table<HostRow>();
  private readonly vmRows = new Table<VmRow>([this.vmsByHost, this.computeTotals]);
  private readonly volumeRows = new Table<VolumeRow>([
    this.volumesByNode,
    this.clonesBySnapshot,
    this.storageTotals,
  ]);
  private readonly snapshotRows = new Table<SnapshotRow>([this.snapshotsByVolume]);

  constructor(rows?: WorldRows) {
    if (rows === undefined) return;
    for (const r of rows.hosts) this.put(r);
    for (const r of rows.vms) this.put(r);
    for (const r of rows.volumes) this.put(r);
    for (const r of rows.snapshots) this.put(r);
  }

  /** Adds or replaces a row (ignores rows of other types). */
  put(row: Row): void {
    if (row.type === 'host') this.hostRows.put(row);
    else if (row.type === 'virtualMachine') this.vmRows.put(row);
    else if (row.type === 'volume') this.volumeRows.put(row);
    else if (row.type === 'snapshot') this.snapshotRows.put(row);
  }

  host(id: string): HostRow | undefined {
    return this.hostRows.get(id);
  }
  vm(id: string): VmRow | undefined {
    return this.vmRows.get(id);
  }
  volume(id: string): VolumeRow | undefined {
    return this.volumeRows.get(id);
  }
  snapshot(id: string): SnapshotRow | undefined {
    return this.snapshotRows.get(id);
  }

  /** Number of rows of every type together. */
  get size(): number {
    return this.hostRows.size + this.vmRows.size + this.volumeRows.size + this.snapshotRows.size;
  }

  /** Every host, sorted by id (the world's own list: read it, do not keep it across puts). */
  hosts(): readonly HostRow[] {
    return this.hostRows.allSorted();
  }

  /** What the live VMs placed on compute host `hostId` reserve. */
  computeReserved(hostId: string): { readonly vcpus: number; readonly memoryMb: number } {
    const totals = this.computeReservedTotals(hostId);
    return { vcpus: totals[RESERVED_VCPUS] ?? 0, memoryMb: totals[RESERVED_MEMORY_MB] ?? 0 };
  }

  /**
   * The same as {@link computeReserved}, as the running totals themselves (indexes
   * {@link RESERVED_VCPUS} and {@link RESERVED_MEMORY_MB}; read them, do not keep them): for scans
   * over every host that must not allocate per host.
   */
  computeReservedTotals(hostId: string): readonly number[] {
    return this.computeTotals.get(hostId);
  }

  /** GiB the live volumes placed on storage node `nodeId` reserve. */
  storageReserved(nodeId: string): number {
    return this.storageTotals.get(nodeId)[0] ?? 0;
  }

  /** Every VM, volume and snapshot, sorted by id (a merge of the tables' sorted rows). */
  reconciled(): ReconciledRow[] {
    const lists: (readonly ReconciledRow[])[] = [
      this.vmRows.allSorted(),
      this.volumeRows.allSorted(),
      this.snapshotRows.allSorted(),
    ];
    const at = [0, 0, 0];
    const merged: ReconciledRow[] = [];
    for (;;) {
      let pick = -1;
      for (let i = 0; i < 3; i++) {
        const row = lists[i]?.[at[i] ?? 0];
        if (row === undefined) continue;
        const best = pick < 0 ? undefined : lists[pick]?.[at[pick] ?? 0];
        if (best === undefined || row.id < best.id) pick = i;
      }
      if (pick < 0) return merged;
      merged.push(lists[pick]?.[at[pick] ?? 0] as ReconciledRow);
      at[pick] = (at[pick] ?? 0) + 1;
    }
  }

  /** VMs placed on a host (removed ones included: filter with isRemoved), sorted by id. */
  vmsOn(hostId: string): VmRow[] {
    return this.vmsByHost.get(hostId);
  }
  /** Volumes placed on a storage node, sorted by id. */
  volumesOn(nodeId: string): VolumeRow[] {
    return this.volumesByNode.get(nodeId);
  }
  /** Snapshots of a volume, sorted by id. */
  snapshotsOf(volumeId: string): SnapshotRow[] {
    return this.snapshotsByVolume.get(volumeId);
  }
  /** Volumes cloned from a snapshot, sorted by id. */
  clonesOf(snapshotId: string): VolumeRow[] {
    return this.clonesBySnapshot.get(snapshotId);
  }
}
