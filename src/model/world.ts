/**
 * The world the planner looks at: every host, VM, volume and snapshot row, indexed by id and by
 * the relations placement and cascades need (VMs per host, volumes per storage node, snapshots per
 * volume, clones per snapshot). Built by the main loop from one listing per wake and updated in
 * place as it writes, so planning stays pure and O(1) per lookup.
 *
 * The world also ranks the hosts that take new work by their free room (compute hosts by free
 * memory, then free vCPUs; storage nodes by free pool space; then by id), kept in step with every
 * put, so a placement looks at the best hosts first instead of scanning them all.
 *
 * Rows listed at different moments may disagree (a VM listed before its volumes were created):
 * planners treat a missing row as "not known yet", never as "gone" — rows are never deleted, a
 * removed resource stays as a tombstone with `removed` set.
 */
import { mergeSorted } from '../lib/sorted.ts';
import { computeCapacity, isSchedulable, storageCapacityGb } from './capacity.ts';
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

/** The totals of a key nothing was added to: every amount 0 (read as `?? 0`). */
const NO_TOTALS: readonly number[] = Object.freeze([]);

/**
 * A running total per key of what rows contribute (a host's reserved vCPUs and memory, a node's
 * reserved GiB), kept in step with the rows: placement reads a total in O(1) instead of adding up
 * a host's rows at every decision.
 */

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

/** A host's place in a {@link Ranking}: the two amounts it is ranked by, most first. */
export interface HostRank {
  readonly host: HostRow;
  readonly first: number;
  readonly second: number;
}

/**
 * Best first: more of `first`, then more of `second`, then the smaller name, then the smaller id.
 * Ties go by name, not by the generated id, so a cloud fills its hosts in the same order wherever
 * it runs: the simulator and a staging deployment with the same host names place alike.
 */
function compareRanks(a: HostRank, b: HostRank): number {
  if (a.first !== b.first) return a.first > b.first ? -1 : 1;
  if (a.second !== b.second) return a.second > b.second ? -1 : 1;
  if (a.host.name !== b.host.name) return a.host.name < b.host.name ? -1 : 1;
  return a.host.id < b.host.id ? -1 : a.host.id > b.host.id ? 1 : 0;
}

/**
 * Hosts ranked best first, kept sorted as they change: a changed host is taken out and put back by
 * binary search, so a change costs a search and a move, and the best host is always at the front.
 */
class Ranking {
  private readonly ranks = new Map<string, HostRank>();
  /** Sorted best first; built on first use, then kept in step. */
  private sorted: HostRank[] | null = null;
  /** @param rankOf the host's rank now, or null when it is no candidate */
  constructor(private readonly rankOf: (hostId: string) => HostRank | null) {}

  /** Ranks host `hostId` again (after its row or what is placed on it changed). */
  touch(hostId: string): void {
    const old = this.ranks.get(hostId);
    const next = this.rankOf(hostId);
    if (
      old !== undefined &&
      next !== null &&
      old.host === next.host &&
      old.first === next.first &&
      old.second === next.second
    )
      return;
    if (old !== undefined) {
      this.ranks.delete(hostId);
      if (this.sorted !== null) this.sorted.splice(this.indexOf(old), 1);
    }
    if (next !== null) {
      this.ranks.set(hostId, next);
      if (this.sorted !== null) this.sorted.splice(this.indexOf(next), 0, next);
    }
  }

  /** The candidates, best first (the ranking's own list: read it, do not keep it across puts). */
  ordered(): readonly HostRank[] {
    this.sorted ??= [...this.ranks.values()].sort(compareRanks);
    return this.sorted;
  }

  /** Where `rank` is, or would go, in the sorted list. */
  private indexOf(rank: HostRank): number {
    const sorted = this.sorted as HostRank[];
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareRanks(sorted[mid] as HostRank, rank) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Something kept in step with a table's rows: an index or a running total. */
interface Follower<R> {
  put(old: R | undefined, row: R): void;
}

/** The rows of one type by id, with the indexes over them kept in step. */
class Table<R extends Indexed> {
  private readonly rows = new Map<string, R>();
  /**
   * Every row sorted by id, built on first use; a replaced row keeps its place, and the ids of rows
   * added since wait in {@link added} to be merged in (sorting the whole table again for every new
   * row made each sweep of a growing cloud cost n log n).
   */
  private sorted: R[] | null = null;
  private added: string[] = [];
  constructor(private readonly followers: readonly Follower<R>[] = []) {}
  put(row: R): void {
    const old = this.rows.get(row.id);
    // The very row again (a store that shares its rows lists the unchanged ones as they were):
    // nothing to do.
    if (old === row) return;
    this.rows.set(row.id, row);
    if (old === undefined) {
      if (this.sorted !== null) this.added.push(row.id);
    } else if (this.sorted !== null) {
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
    if (this.sorted === null) {
      this.sorted = [...this.rows.values()].sort(byId);
      this.added = [];
    } else if (this.added.length > 0) {
      // Each added row in its latest version (it may have been replaced since).
      const added = this.added.map((id) => this.rows.get(id) as R).sort(byId);
      this.sorted = mergeSorted(this.sorted, added, idOf);
      this.added = [];
    }
    return this.sorted;
  }
}

function byId(a: Indexed, b: Indexed): number {
  return a.id < b.id ? -1 : 1;
}

function idOf(row: Indexed): string {
  return row.id;
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
  /** Schedulable compute hosts by free memory, then free vCPUs. */
  private readonly computeRanks = new Ranking((id) => {
    const host = this.hostRows.get(id);
    if (host === undefined || host.kind !== 'compute' || !isSchedulable(host)) return null;
    const capacity = computeCapacity(host);
    const used = this.computeReserved(id);
    return {
      host,
      first: capacity.memoryMb - used.memoryMb,
      second: capacity.vcpus - used.vcpus,
    };
  });
  /** Schedulable storage nodes by free pool space. */
  private readonly storageRanks = new Ranking((id) => {
    const host = this.hostRows.get(id);
    if (host === undefined || host.kind !== 'storage' || !isSchedulable(host)) return null;
    return {
      host,
      first: storageCapacityGb(host) - (this.storageTotals.get(id)[0] ?? 0),
      second: 0,
    };
  });
  private readonly hostRows = new Table<HostRow>([
    {
      put: (_old, row) => {
        this.computeRanks.touch(row.id);
        this.storageRanks.touch(row.id);
      },
    },
  ]);
  // Rankings follow the totals: they read them.
  private readonly vmRows = new Table<VmRow>([
    this.vmsByHost,
    this.computeTotals,
    {
      put: (old, row) => {
        if (old !== undefined && old.hostId !== null) this.computeRanks.touch(old.hostId);
        if (row.hostId !== null && row.hostId !== old?.hostId) this.computeRanks.touch(row.hostId);
      },
    },
  ]);
  private readonly volumeRows = new Table<VolumeRow>([
    this.volumesByNode,
    this.clonesBySnapshot,
    this.storageTotals,
    {
      put: (old, row) => {
        if (old !== undefined && old.storageNodeId !== null)
          this.storageRanks.touch(old.storageNodeId);
        if (row.storageNodeId !== null && row.storageNodeId !== old?.storageNodeId)
          this.storageRanks.touch(row.storageNodeId);
      },
    },
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

  /**
   * Compute hosts that take new work, best first: most free memory (`first`, MiB), then most free
   * vCPUs (`second`), then the smallest id. The world's own list: read it, do not keep it.
   */
  computeRanking(): readonly HostRank[] {
    return this.computeRanks.ordered();
  }

  /** Storage nodes that take new work, most free pool space (`first`, GiB) first, then by id. */
  storageRanking(): readonly HostRank[] {
    return this.storageRanks.ordered();
  }

  /** Every host, sorted by id (the world's own list: read it, do not keep it across puts). */
  hosts(): readonly HostRow[] {
    return this.hostRows.allSorted();
  }

  /** What the live VMs placed on compute host `hostId` reserve. */
  computeReserved(hostId: string): { readonly vcpus: number; readonly memoryMb: number } {
    const [vcpus = 0, memoryMb = 0] = this.computeTotals.get(hostId);
    return { vcpus, memoryMb };
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
