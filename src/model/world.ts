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

/** A multimap key → id → row, kept in step with the rows. */
class Index<R extends Indexed> {
  private readonly map = new Map<string, Map<string, R>>();
  constructor(private readonly keyOf: (row: R) => string | null) {}
  put(old: R | undefined, row: R): void {
    const oldKey = old === undefined ? null : this.keyOf(old);
    const newKey = this.keyOf(row);
    if (oldKey !== null) this.map.get(oldKey)?.delete(row.id);
    if (newKey !== null) {
      let bucket = this.map.get(newKey);
      if (bucket === undefined) {
        bucket = new Map<string, R>();
        this.map.set(newKey, bucket);
      }
      bucket.set(row.id, row);
    }
  }
  /** Rows under `key`, sorted by id. */
  get(key: string): R[] {
    const bucket = this.map.get(key);
    if (bucket === undefined) return [];
    return [...bucket.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }
}

/** The rows of one type by id, with the indexes over them kept in step. */
class Table<R extends Indexed> {
  private readonly rows = new Map<string, R>();
  constructor(private readonly indexes: readonly Index<R>[] = []) {}
  put(row: R): void {
    const old = this.rows.get(row.id);
    this.rows.set(row.id, row);
    for (const index of this.indexes) index.put(old, row);
  }
  get(id: string): R | undefined {
    return this.rows.get(id);
  }
  /** Every row, in insertion order. */
  all(): R[] {
    return [...this.rows.values()];
  }
}

/** Every host, VM, volume and snapshot row, with lookups by id and by relation (see the header). */
export class World {
  private readonly vmsByHost = new Index<VmRow>((v) => v.hostId);
  private readonly volumesByNode = new Index<VolumeRow>((v) => v.storageNodeId);
  private readonly snapshotsByVolume = new Index<SnapshotRow>((s) => s.volumeId);
  private readonly clonesBySnapshot = new Index<VolumeRow>((v) => v.sourceSnapshotId);
  private readonly hostRows = new Table<HostRow>();
  private readonly vmRows = new Table<VmRow>([this.vmsByHost]);
  private readonly volumeRows = new Table<VolumeRow>([this.volumesByNode, this.clonesBySnapshot]);
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

  /** Every host, sorted by id. */
  hosts(): HostRow[] {
    return this.hostRows.all().sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Every VM, volume and snapshot, sorted by id. */
  reconciled(): ReconciledRow[] {
    return [...this.vmRows.all(), ...this.volumeRows.all(), ...this.snapshotRows.all()].sort(
      (a, b) => (a.id < b.id ? -1 : 1),
    );
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
