/**
 * The storage of one storage node, ZFS semantics: a pool of datasets, each volume a dataset that
 * holds a raw disk image; snapshots are read-only and instant; clones are writable datasets that
 * depend on their origin snapshot, which cannot be destroyed while a clone depends on it ("dataset
 * is busy"). Implementations: the simulated ZFS pool and the `zfs`/`zpool` adapter.
 */
import { PortError } from './errors.ts';

/** A filesystem dataset (a volume) or a snapshot. */
export interface DatasetInfo {
  /** Full name: `<pool>/<volume>` or `<pool>/<volume>@<snapshot>`. */
  readonly name: string;
  readonly kind: 'volume' | 'snapshot';
  /** Logical size of the disk image in bytes (volumes) or of the data it captured (snapshots). */
  readonly sizeBytes: number;
  /** For clones: the snapshot they were cloned from; otherwise null. */
  readonly origin: string | null;
}

export interface PoolInfo {
  readonly name: string;
  readonly sizeBytes: number;
  /** Bytes still allocatable: size minus the reservations of every volume. */
  readonly freeBytes: number;
}

export interface Storage {
  pool(): Promise<PoolInfo>;
  /** Every dataset and snapshot of the pool, sorted by name. */
  list(): Promise<readonly DatasetInfo[]>;
  /** The named dataset or snapshot, or null. */
  get(name: string): Promise<DatasetInfo | null>;
  /** Creates volume `name` (relative to the pool) with a disk image of `sizeBytes`. `exists` if taken. */
  createVolume(name: string, sizeBytes: number): Promise<DatasetInfo>;
  /** Grows a volume's disk image. Shrinking is refused (`invalid-size`). */
  resizeVolume(name: string, sizeBytes: number): Promise<DatasetInfo>;
  /** Snapshots volume `volume` as `volume@snapshot`. */
  snapshot(volume: string, snapshot: string): Promise<DatasetInfo>;
  /** Clones snapshot `volume@snapshot` into a new volume `target`. */
  clone(snapshot: string, target: string): Promise<DatasetInfo>;
  /** Rolls a volume back to `snapshot`, which must be its most recent one (`has-snapshots` otherwise, as ZFS without -r). */
  rollback(snapshot: string): Promise<void>;
  /**
   * Destroys a volume or a snapshot. A volume that still has snapshots gets `has-snapshots`; a
   * snapshot that clones depend on gets `busy` (ZFS: "dataset is busy").
   */
  destroy(name: string): Promise<void>;
  /** The path a hypervisor uses to attach the volume's disk image. */
  diskPath(volume: string): string;
  close(): Promise<void>;
}

export type StorageErrorCode =
  | 'no-dataset'
  | 'exists'
  | 'busy'
  | 'has-snapshots'
  | 'no-space'
  | 'invalid-size'
  | 'invalid-name'
  | 'unavailable';

export class StorageError extends PortError {
  override name = 'StorageError';
  constructor(
    readonly reason: StorageErrorCode,
    message: string,
    options: { retryable?: boolean; cause?: unknown } = {},
  ) {
    super(`storage.${reason}`, message, options);
  }
}
