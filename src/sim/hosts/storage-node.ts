/**
 * The simulated storage node: a ZFS-like pool whose datasets are world state that outlives the
 * agent processes using it (and the node's own crashes: it is a disk). Agents get port handles
 * bound to their incarnation ({@link SimStorageNode.storageFor}). The semantics follow ZFS as the
 * `zfs` adapter uses it (zfs-fuse has no zvols, so a volume is a dataset holding a raw image file at
 * `/<pool>/<volume>/disk.raw`), so one contract suite passes here and against zfs-fuse:
 *
 * - Names passed in are relative to the pool: a volume is one ZFS name component (volumes are
 *   direct children of the pool), a snapshot is `<volume>@<snapshot>`. Components use ZFS's
 *   characters `[A-Za-z0-9_.:-]`, are not `.` or `..`, and the full name stays under ZFS's 256-byte
 *   limit; anything else is `invalid-name`. Names reported back (`DatasetInfo.name`, `origin`) are
 *   full: `<pool>/<volume>[@<snapshot>]`.
 * - A volume reserves its image size in the pool (a `refreservation`); `freeBytes` is the pool size
 *   minus every volume's reservation, clones included. Snapshots reserve nothing (no data is
 *   written in the simulation, so they never diverge from their volume). Not enough free space:
 *   `no-space`.
 * - `createVolume` of a taken name: `exists`. Sizes must be positive integers: `invalid-size`.
 * - `resizeVolume` grows the image; the same size is accepted (retries are idempotent), smaller is
 *   `invalid-size`. It sets the reservation to the new size.
 * - `snapshot` captures the volume's current size; a taken snapshot name is `exists`.
 * - `clone(snapshot, target)` creates a volume with `origin` set, of the snapshot's size.
 * - `destroy` of a snapshot with dependent clones: `busy` ("snapshot has dependent clones"); of a
 *   volume with snapshots: `has-snapshots` ("filesystem has children"); of a volume whose image is
 *   open ({@link SimStorageNode.holdImage}, a running domain's disk): `busy` (its file system
 *   cannot be unmounted: "target is busy").
 * - `rollback` only to the volume's most recent snapshot. ZFS refuses an older one without `-r`
 *   ("more recent snapshots or bookmarks exist"); the port has no dedicated code, and the closest
 *   existing one is `has-snapshots` — the refusal is precisely that later snapshots exist. Rollback
 *   restores the image (and so its size) but not the reservation: ZFS properties are not part of
 *   a snapshot.
 * - Unknown names: `no-dataset` (`get` returns null).
 *
 * Node faults are those of the compute host: crash (down: every operation, in flight or new, fails
 * with a retryable `unavailable` and has no effect — ZFS changes are transactional), reboot, hang.
 * Datasets survive all of them.
 */
import { deepFreeze } from '../../lib/freeze.ts';
import { assert } from '../../lib/assert.ts';
import {
  checkSizeBytes,
  DatasetNames,
  StorageError,
  type DatasetInfo,
  type PoolInfo,
  type Storage,
} from '../../ports/storage.ts';
import type { Incarnation } from '../process.ts';
import type { Simulation } from '../simulation.ts';
import { HostHandle, SimHost } from './host-core.ts';
import { STORAGE_LATENCY, type LatencyTable, type StorageOperation } from './latency.ts';

/** Options for {@link SimStorageNode}. */
export interface SimStorageNodeOptions {
  readonly sim: Simulation;
  /** The node's id: non-empty, no `/`. Names its PRNG fork `storage-<id>`. */
  readonly id: string;
  /** The pool's name: a letter, then `[A-Za-z0-9_.:-]`. */
  readonly pool: string;
  /** The pool's allocatable size in bytes, a positive integer. */
  readonly sizeBytes: number;
  /** Per-operation latencies replacing {@link STORAGE_LATENCY}'s. */
  readonly latency?: Partial<LatencyTable<StorageOperation>>;
}

/** A dataset as checkers see it: the port's view plus the space it reserves. */
export interface SimDatasetInfo extends DatasetInfo {
  /** Bytes reserved in the pool: a volume's refreservation; 0 for snapshots. */
  readonly reservedBytes: number;
}

interface Volume {
  readonly name: string;
  sizeBytes: number;
  reservedBytes: number;
  /** Full name of the origin snapshot, for clones. */
  readonly origin: string | null;
}

interface Snapshot {
  readonly volume: string;
  readonly snapshot: string;
  readonly sizeBytes: number;
  /** Creation order within the node, ZFS's `createtxg`: decides "most recent". */
  readonly createdSeq: number;
}

/**
 * One simulated storage node: a pool of volumes and snapshots, its power state and latencies.
 * World state: it outlives every process that holds one of its port handles.
 */
export class SimStorageNode extends SimHost<StorageOperation> {
  readonly poolName: string;
  readonly sizeBytes: number;
  /** The port's naming rules, on full names `<pool>/<relative>`. */
  private readonly names = new DatasetNames((relative) => this.full(relative));
  private readonly volumes = new Map<string, Volume>();
  /** Keyed by `<volume>@<snapshot>`. */
  private readonly snapshots = new Map<string, Snapshot>();
  private snapshotSeq = 0;
  /** Open handles on volume images, by volume: a running domain holds its disks open. */
  private readonly holds = new Map<string, number>();
  private readonly watchers: ((name: string, present: boolean) => void)[] = [];
  /** The listing {@link listNow} hands out, until the pool changes. */
  private listed: readonly DatasetInfo[] | null = null;

  constructor(options: SimStorageNodeOptions) {
    super(options, {
      forkPrefix: 'storage',
      labelPrefix: 'storage',
      latency: STORAGE_LATENCY,
      error: StorageError,
    });
    assert(
      /^[A-Za-z][A-Za-z0-9_.:-]*$/.test(options.pool),
      `pool name must be a letter then [A-Za-z0-9_.:-], got '${options.pool}'`,
    );
    assert(
      Number.isSafeInteger(options.sizeBytes) && options.sizeBytes > 0,
      `pool size must be a positive integer, got ${options.sizeBytes}`,
    );
    this.poolName = options.pool;
    this.sizeBytes = options.sizeBytes;
  }

  /** Bytes not reserved by any volume. */
  get freeBytes(): number {
    let reserved = 0;
    for (const v of this.volumes.values()) reserved += v.reservedBytes;
    return this.sizeBytes - reserved;
  }

  /**
   * A `Storage` port handle for one incarnation of an agent; inert once it dies. Every call but
   * `diskPath` (a pure function of the name, as in the adapter) goes through the node's latency
   * and delivery, and its effect runs when it completes.
   */
  storageFor(incarnation: Incarnation): Storage {
    const handle = new HostHandle(incarnation, this.core, 'storage');
    return {
      pool: () => handle.call('pool', '', () => this.poolNow()),
      list: () => handle.call('list', '', () => this.listNow()),
      get: (name) => handle.call('get', name, () => this.getNow(name)),
      createVolume: (name, sizeBytes) =>
        handle.call('create', name, () => this.createNow(name, sizeBytes)),
      resizeVolume: (name, sizeBytes) =>
        handle.call('resize', name, () => this.resizeNow(name, sizeBytes)),
      snapshot: (volume, snapshot) =>
        handle.call('snapshot', `${volume}@${snapshot}`, () => this.snapshotNow(volume, snapshot)),
      clone: (snapshot, target) =>
        handle.call('clone', target, () => this.cloneNow(snapshot, target)),
      rollback: (snapshot) => handle.call('rollback', snapshot, () => this.rollbackNow(snapshot)),
      destroy: (name) => handle.call('destroy', name, () => this.destroyNow(name)),
      diskPath: (volume) => this.diskPath(volume),
      close: () => handle.close(),
    };
  }

  /** The image path of `volume` (relative to the pool). Throws `invalid-name`. */
  diskPath(volume: string): string {
    this.names.checkComponent(volume);
    return `/${this.poolName}/${volume}/disk.raw`;
  }

  // ---- inspection for checkers: synchronous, not part of the port ----

  /** Every volume and snapshot, sorted by full name, with reservations. */
  datasets(): readonly SimDatasetInfo[] {
    const all: SimDatasetInfo[] = [
      ...[...this.volumes.values()].map((v) => ({
        ...this.volumeInfo(v),
        reservedBytes: v.reservedBytes,
      })),
      ...[...this.snapshots.values()].map((s) => ({ ...this.snapshotInfo(s), reservedBytes: 0 })),
    ];
    // Full names are unique, so the comparator never sees two equal names.
    return all.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /**
   * Calls `onChange` with a dataset's full name whenever one is created or destroyed: the checkers
   * keep their indexes from these instead of listing the pool after every step.
   */
  watch(onChange: (name: string, present: boolean) => void): void {
    this.watchers.push(onChange);
  }

  /**
   * Opens the image of `volume` as a running domain does; until the returned release is called
   * (once; later calls do nothing), destroying the volume is `busy` — its file system cannot be
   * unmounted. World state, like the faults: not part of the port.
   */
  holdImage(volume: string): () => void {
    this.holds.set(volume, (this.holds.get(volume) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.holds.get(volume) ?? 1) - 1;
      if (left > 0) this.holds.set(volume, left);
      else this.holds.delete(volume);
    };
  }

  // ---- faults: SimHost's; datasets survive them ----

  /** The pool is on disk: nothing is lost, and in-flight operations are simply void. */
  protected override onCrash(): void {}

  // ---- operations: effects run inside the node's world events (see HostCore.request) ----

  private poolNow(): PoolInfo {
    return { name: this.poolName, sizeBytes: this.sizeBytes, freeBytes: this.freeBytes };
  }

  /**
   * What `zfs list` shows, sorted by name: built once per change of the pool and handed out frozen
   * (callers only read it), so a node's periodic listings cost nothing while nothing changes.
   */
  private listNow(): readonly DatasetInfo[] {
    this.listed ??= deepFreeze(
      this.datasets().map(({ name, kind, sizeBytes, origin }) => ({
        name,
        kind,
        sizeBytes,
        origin,
      })),
    );
    return this.listed;
  }

  private getNow(name: string): DatasetInfo | null {
    if (name.includes('@')) {
      const key = this.snapshotKey(name);
      const s = this.snapshots.get(key);
      return s === undefined ? null : this.snapshotInfo(s);
    }
    this.names.checkComponent(name);
    const v = this.volumes.get(name);
    return v === undefined ? null : this.volumeInfo(v);
  }

  private createNow(name: string, sizeBytes: number): DatasetInfo {
    this.names.checkComponent(name);
    checkSizeBytes(sizeBytes);
    if (this.volumes.has(name))
      throw new StorageError('exists', `dataset '${this.full(name)}' already exists`);
    this.reserve(sizeBytes, name);
    const v: Volume = { name, sizeBytes, reservedBytes: sizeBytes, origin: null };
    this.volumes.set(name, v);
    this.changed(name, true);
    return this.volumeInfo(v);
  }

  private resizeNow(name: string, sizeBytes: number): DatasetInfo {
    this.names.checkComponent(name);
    checkSizeBytes(sizeBytes);
    const v = this.volume(name);
    if (sizeBytes < v.sizeBytes) {
      throw new StorageError(
        'invalid-size',
        `cannot shrink '${this.full(name)}' from ${v.sizeBytes} to ${sizeBytes} bytes`,
      );
    }
    this.reserve(sizeBytes - v.reservedBytes, name);
    v.sizeBytes = sizeBytes;
    v.reservedBytes = sizeBytes;
    this.listed = null;
    return this.volumeInfo(v);
  }

  private snapshotNow(volume: string, snapshot: string): DatasetInfo {
    const key = this.names.snapshotName(volume, snapshot);
    const v = this.volume(volume);
    if (this.snapshots.has(key))
      throw new StorageError('exists', `snapshot '${this.full(key)}' already exists`);
    const s: Snapshot = {
      volume,
      snapshot,
      sizeBytes: v.sizeBytes,
      createdSeq: ++this.snapshotSeq,
    };
    this.snapshots.set(key, s);
    this.changed(key, true);
    return this.snapshotInfo(s);
  }

  private cloneNow(snapshot: string, target: string): DatasetInfo {
    const key = this.snapshotKey(snapshot);
    this.names.checkComponent(target);
    const s = this.snapshots.get(key);
    if (s === undefined) throw new StorageError('no-dataset', `no snapshot '${this.full(key)}'`);
    if (this.volumes.has(target))
      throw new StorageError('exists', `dataset '${this.full(target)}' already exists`);
    this.reserve(s.sizeBytes, target);
    const v: Volume = {
      name: target,
      sizeBytes: s.sizeBytes,
      reservedBytes: s.sizeBytes,
      origin: this.full(key),
    };
    this.volumes.set(target, v);
    this.changed(target, true);
    return this.volumeInfo(v);
  }

  private rollbackNow(snapshot: string): void {
    const key = this.snapshotKey(snapshot);
    const s = this.snapshots.get(key);
    if (s === undefined) throw new StorageError('no-dataset', `no snapshot '${this.full(key)}'`);
    const later = this.snapshotsOf(s.volume).filter((o) => o.createdSeq > s.createdSeq);
    if (later.length > 0) {
      throw new StorageError(
        'has-snapshots',
        `cannot rollback to '${this.full(key)}': more recent snapshots exist (${later.map((o) => o.snapshot).join(', ')})`,
      );
    }
    const v = this.volume(s.volume);
    v.sizeBytes = s.sizeBytes;
    this.listed = null;
  }

  private destroyNow(name: string): void {
    if (name.includes('@')) {
      const key = this.snapshotKey(name);
      if (!this.snapshots.has(key))
        throw new StorageError('no-dataset', `no snapshot '${this.full(key)}'`);
      const origin = this.full(key);
      const clones = [...this.volumes.values()].filter((v) => v.origin === origin);
      if (clones.length > 0) {
        throw new StorageError('busy', `snapshot '${origin}' has dependent clones`);
      }
      this.snapshots.delete(key);
      this.changed(key, false);
      return;
    }
    this.names.checkComponent(name);
    this.volume(name);
    if (this.snapshotsOf(name).length > 0) {
      throw new StorageError('has-snapshots', `dataset '${this.full(name)}' has snapshots`);
    }
    if (this.holds.has(name)) {
      throw new StorageError('busy', `dataset '${this.full(name)}' is busy: its image is open`);
    }
    this.volumes.delete(name);
    this.changed(name, false);
  }

  // ---- internals ----

  /** Tells the watchers that dataset `relative` (a volume or `volume@snapshot`) came or went. */
  private changed(relative: string, present: boolean): void {
    this.listed = null;
    for (const watcher of this.watchers) watcher(this.full(relative), present);
  }

  private full(relative: string): string {
    return `${this.poolName}/${relative}`;
  }

  private volume(name: string): Volume {
    const v = this.volumes.get(name);
    if (v === undefined)
      throw new StorageError('no-dataset', `dataset '${this.full(name)}' does not exist`);
    return v;
  }

  private snapshotsOf(volume: string): Snapshot[] {
    return [...this.snapshots.values()].filter((s) => s.volume === volume);
  }

  private reserve(bytes: number, name: string): void {
    const free = this.freeBytes;
    if (bytes > free) {
      throw new StorageError(
        'no-space',
        `out of space for '${this.full(name)}': needs ${bytes} bytes, ${free} free`,
      );
    }
  }

  private volumeInfo(v: Volume): DatasetInfo {
    return { name: this.full(v.name), kind: 'volume', sizeBytes: v.sizeBytes, origin: v.origin };
  }

  private snapshotInfo(s: Snapshot): DatasetInfo {
    return {
      name: this.full(`${s.volume}@${s.snapshot}`),
      kind: 'snapshot',
      sizeBytes: s.sizeBytes,
      origin: null,
    };
  }

  /** A snapshot name `<volume>@<snapshot>`, checked: the key of {@link snapshots}. */
  private snapshotKey(name: string): string {
    this.names.parseSnapshot(name);
    return name;
  }
}
