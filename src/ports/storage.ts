/**
 * The storage of one storage node, ZFS semantics: a pool of datasets, each volume a dataset that
 * holds a raw disk image; snapshots are read-only and instant; clones are writable datasets that
 * depend on their origin snapshot, which cannot be destroyed while a clone depends on it ("dataset
 * is busy"). Implementations: the simulated ZFS pool and the `zfs`/`zpool` adapter.
 */
import { hostErrorOf } from './host-error.ts';

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

/** A ZFS condition; the code is `storage.<reason>`. */
export class StorageError extends hostErrorOf<StorageErrorCode>('storage', 'StorageError') {}

/** ZFS's longest dataset name is 255 bytes (ZFS_MAX_DATASET_NAME_LEN = 256 with the NUL). */
export const DATASET_NAME_LENGTH_MAX = 255;

/** ZFS's characters of one name component. */
const COMPONENT = /^[A-Za-z0-9_.:-]+$/;

/**
 * ZFS's naming rules for the names the port takes (relative to the pool), as both implementations
 * enforce them before anything happens: each component uses `[A-Za-z0-9_.:-]` and is not `.` or
 * `..`, and the full name ZFS sees — `full(relative)` — stays under its length limit. A name that
 * breaks them is `invalid-name`.
 */
export class DatasetNames {
  constructor(private readonly full: (relative: string) => string) {}

  /** Checks one name component (a volume, a snapshot's name). */
  checkComponent(component: string): void {
    if (
      typeof component !== 'string' ||
      !COMPONENT.test(component) ||
      component === '.' ||
      component === '..'
    ) {
      throw new StorageError('invalid-name', `invalid dataset name '${component}'`);
    }
    this.checkLength(component);
  }

  /** Checks the length of the full name of `relative`. */
  checkLength(relative: string): void {
    if (this.full(relative).length > DATASET_NAME_LENGTH_MAX) {
      throw new StorageError('invalid-name', `dataset name '${this.full(relative)}' is too long`);
    }
  }

  /** Checks snapshot `snapshot` of `volume` and returns its name, `<volume>@<snapshot>`. */
  snapshotName(volume: string, snapshot: string): string {
    this.checkComponent(volume);
    this.checkComponent(snapshot);
    const name = `${volume}@${snapshot}`;
    this.checkLength(name);
    return name;
  }

  /** Splits and checks a snapshot name `<volume>@<snapshot>`. */
  parseSnapshot(name: string): { volume: string; snapshot: string } {
    const at = name.indexOf('@');
    if (at < 0)
      throw new StorageError('invalid-name', `'${name}' is not a snapshot name (volume@snapshot)`);
    const volume = name.slice(0, at);
    const snapshot = name.slice(at + 1);
    this.checkComponent(volume);
    this.checkComponent(snapshot);
    this.checkLength(name);
    return { volume, snapshot };
  }
}

/** Checks a volume size: a positive integer of bytes, else `invalid-size`. */
export function checkSizeBytes(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
    throw new StorageError(
      'invalid-size',
      `size must be a positive integer of bytes, got ${sizeBytes}`,
    );
  }
}
