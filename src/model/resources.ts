/**
 * Resource rows: the data of every projection row, per resource type, plus the static image
 * catalogue and the naming rules that tie resources to hosts, datasets and disks.
 *
 * CONTRACT: the api, the agents and the background service rely on these names and shapes. Fields
 * are only ever added (with a default in the projector), never renamed or removed.
 *
 * A row is the fold of one stream (see projector.ts). Every row carries the common fields of
 * {@link RowCommon}: identity, `state` (the lifecycle machine's state), the GDAPI `transitioning*`
 * fields, what the user asked for (`desired`), the last observed facts (`observed`) and the
 * reconciliation bookkeeping (`attempts`, `nextAttemptAtMs`, `lastError`, `lastCommand`).
 */
import { assert } from '../lib/assert.ts';
import { sha256Hex } from '../lib/hash.ts';
import type { Projection } from './stream.ts';

/**
 * GDAPI resource types (singular camelCase). Two are internal, never served by the api: `usage`
 * (one stream per account) and `accessKey` (one lookup stream per api key access key).
 */
export const RESOURCE_TYPES = [
  'account',
  'apiKey',
  'host',
  'image',
  'virtualMachine',
  'volume',
  'snapshot',
  'usage',
  'accessKey',
] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** Resource types whose rows come from streams (images are a static catalogue). */
export type StreamResourceType = Exclude<ResourceType, 'image'>;

/** Types reconciled by the main loop and driven by a lifecycle machine. */
export const RECONCILED_TYPES = ['virtualMachine', 'volume', 'snapshot'] as const;
export type ReconciledType = (typeof RECONCILED_TYPES)[number];

/** Types with a lifecycle machine (src/model/*.machine.ts). */
export const MACHINE_TYPES = ['virtualMachine', 'volume', 'snapshot', 'host'] as const;
export type MachineType = (typeof MACHINE_TYPES)[number];

/** Id prefix per resource type: ids are `<prefix>-<8 hex>` from the Ids port. */
export const ID_PREFIX = {
  account: 'acct',
  apiKey: 'key',
  host: 'host',
  image: 'img',
  virtualMachine: 'vm',
  volume: 'vol',
  snapshot: 'snap',
  usage: 'usage',
  accessKey: 'accesskey',
} as const satisfies Record<ResourceType, string>;

/** GDAPI collection names (plural lowercase). */
export const COLLECTION = {
  account: 'accounts',
  apiKey: 'apikeys',
  host: 'hosts',
  image: 'images',
  virtualMachine: 'virtualmachines',
  volume: 'volumes',
  snapshot: 'snapshots',
  usage: 'usages',
  accessKey: 'accesskeys',
} as const satisfies Record<ResourceType, string>;

/** The resource type an id belongs to, from its prefix; null for an unknown prefix. */
export function resourceTypeOfId(id: string): ResourceType | null {
  const dash = id.indexOf('-');
  if (dash <= 0) return null;
  const prefix = id.slice(0, dash);
  for (const type of RESOURCE_TYPES) if (ID_PREFIX[type] === prefix) return type;
  return null;
}

/** The usage stream of an account: `usage-<accountId>`. */
export function usageStreamId(accountId: string): string {
  return `usage-${accountId}`;
}

/**
 * The lookup stream of an api key's access key: `accesskey-<sha256 hex of the access key>`. Its
 * single `accesskey.claimed` event names the key, so authentication reads one row by id instead of
 * listing every key, and creating two keys with one access key conflicts in the store (both append
 * at expected version 0). Hashed because access keys given at bootstrap may hold any character but
 * `:` and be up to 128 long; stream names stay short and uniform.
 */
export function accessKeyStreamId(accessKey: string): string {
  return `${ID_PREFIX.accessKey}-${sha256Hex(accessKey)}`;
}

// ---------------------------------------------------------------------------------------------
// Limits (the product surface: 16 GB RAM, 40 GB root disk, up to 1.2 TB extra storage).

/** Limits the api validates and the model re-checks where a rule spans resources. */
export const LIMITS = {
  vcpusMin: 1,
  vcpusMax: 8,
  memoryMbMin: 256,
  /** 16 GB. */
  memoryMbMax: 16384,
  rootDiskGbMin: 10,
  rootDiskGbMax: 100,
  rootDiskGbDefault: 40,
  volumeSizeGbMin: 1,
  volumeSizeGbMax: 1229,
  /** Extra storage per VM: the sum of non-root attached volumes, 1.2 TB. */
  extraStorageGbMaxPerVm: 1229,
  /** Most extra volumes one VM may have (disk targets vdb..vdz). */
  extraVolumesMaxPerVm: 25,
} as const;

/** Bytes per GiB; sizes in the model are whole GiB, on the wire bytes. */
export const BYTES_PER_GB = 1024 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Storage naming: the storage pool, datasets, snapshots and disk images.

/** The ZFS pool every storage node uses. */
export const POOL_NAME = 'cloudbed';

/** The dataset of a volume (or of an image): `cloudbed/<id>`. */
export function datasetName(volumeOrImageId: string): string {
  return `${POOL_NAME}/${volumeOrImageId}`;
}

/** The ZFS snapshot of a snapshot resource: `cloudbed/<volumeId>@<snapshotId>`. */
export function snapshotDatasetName(volumeId: string, snapshotId: string): string {
  return `${datasetName(volumeId)}@${snapshotId}`;
}

/** The base snapshot every storage node holds for an image: `cloudbed/<imageId>@base`. */
export function imageBaseSnapshot(imageId: string): string {
  return `${datasetName(imageId)}@base`;
}

/**
 * The disk image path a hypervisor attaches for a volume: `/cloudbed/<volumeId>/disk.raw`, the raw
 * file in the volume's dataset under the pool's default mountpoint `/cloudbed` (see
 * docs/infrastructure.md). It equals the storage adapters' `diskPath(volumeId)` (the simulated
 * node's, and the ZFS adapter's mountpoint + `/disk.raw` with default mountpoints).
 */
export function diskSource(volumeId: string): string {
  return `/${datasetName(volumeId)}/disk.raw`;
}

/**
 * The volume id of a disk source made by {@link diskSource}, or null if it is not one. Accepts the
 * absolute form `/cloudbed/<vol>/disk.raw` and the relative form `cloudbed/<vol>/disk.raw` that
 * domains defined by earlier versions carry.
 */
export function volumeIdOfDiskSource(source: string): string | null {
  const prefix = `${POOL_NAME}/`;
  const suffix = '/disk.raw';
  const relative = source.startsWith('/') ? source.slice(1) : source;
  if (!relative.startsWith(prefix) || !relative.endsWith(suffix)) return null;
  const id = relative.slice(prefix.length, relative.length - suffix.length);
  return id.length > 0 && !id.includes('/') ? id : null;
}

/** Disk target of the n-th disk of a VM (0: root `vda`, 1: `vdb`, …). */
export function diskTarget(index: number): string {
  assert(Number.isInteger(index) && index >= 0 && index < 26, `disk index ${index} out of range`);
  return `vd${String.fromCharCode(97 + index)}`;
}

// ---------------------------------------------------------------------------------------------
// The image catalogue.

/** A catalogue image; read-only. */
export type ImageRow = {
  readonly id: string;
  readonly type: 'image';
  readonly name: string;
  /** Operating system family: `linux` or `windows`. */
  readonly os: 'linux' | 'windows';
  /** Size of the image's disk in GiB; a root disk is at least this big. */
  readonly sizeGb: number;
  readonly accountId: null;
  readonly state: 'active';
  readonly created: number;
  readonly removed: null;
  readonly rev: 1;
};

function image(id: string, name: string, os: 'linux' | 'windows', sizeGb: number): ImageRow {
  return {
    id,
    type: 'image',
    name,
    os,
    sizeGb,
    accountId: null,
    state: 'active',
    created: 0,
    removed: null,
    rev: 1,
  };
}

/**
 * The static image catalogue, sorted by id. Each storage node holds every image as the dataset
 * `cloudbed/<imageId>` with the snapshot `cloudbed/<imageId>@base` (see {@link imageBaseSnapshot}),
 * ensured by the storage agent at start.
 */
export const IMAGES: readonly ImageRow[] = [
  image('img-00000001', 'Ubuntu 12.04', 'linux', 2),
  image('img-00000002', 'Fedora 16', 'linux', 3),
  image('img-00000003', 'CentOS 5.8', 'linux', 2),
  image('img-00000004', 'CentOS 6.2', 'linux', 2),
  image('img-00000005', 'Windows Server 2008 R2', 'windows', 20),
];

/** The catalogue image with `id`, or null. */
export function findImage(id: string): ImageRow | null {
  return IMAGES.find((i) => i.id === id) ?? null;
}

/** GiB every storage pool keeps for the image catalogue. */
export const IMAGES_TOTAL_GB = IMAGES.reduce((sum, i) => sum + i.sizeGb, 0);

// ---------------------------------------------------------------------------------------------
// Rows.

/** GDAPI `transitioning`: `yes` while work is in progress, `error` in the error state. */
export type Transitioning = 'yes' | 'no' | 'error';

/** The command most recently sent for a resource (reconciliation bookkeeping). */
export type CommandRecord = {
  readonly commandId: string;
  /** The command's `type`, e.g. `vm.ensure`. */
  readonly command: string;
  /** The agent's host (compute host or storage node). */
  readonly hostId: string;
  /** 1-based attempt number within the current goal. */
  readonly attempt: number;
  readonly token: number;
  readonly sentAtMs: number;
  /** A short digest of what was asked (`running`, `absent`, `size=42949672960`, …). */
  readonly goal: string;
};

/** The outcome an agent reported for a command. */
export type CommandResult = {
  readonly commandId: string;
  readonly ok: boolean;
  readonly error: string | null;
  readonly atMs: number;
};

/** Fields every row has. */
export type RowCommon = {
  readonly id: string;
  readonly type: StreamResourceType;
  readonly accountId: string | null;
  readonly name: string;
  /** Creation time, ms since the epoch. */
  readonly created: number;
  /** Removal time, ms since the epoch, or null while the resource lives. */
  readonly removed: number | null;
  /** Stream version of the last event folded in (GDAPI `rev`). */
  readonly rev: number;
  /** The lifecycle machine's state (for types without a machine: `active` or `removed`). */
  readonly state: string;
  readonly transitioning: Transitioning;
  readonly transitioningMessage: string | null;
  /** Percent in [0, 100], or null when unknown. */
  readonly transitioningProgress: number | null;
  /** Attempts made toward the current goal; reset by a new request or by progress. */
  readonly attempts: number;
  /** When the main loop may try again (ms since the epoch), or null: now. */
  readonly nextAttemptAtMs: number | null;
  readonly lastError: string | null;
  readonly lastCommand: CommandRecord | null;
  readonly lastResult: CommandResult | null;
};

/** What the user wants of a VM. */
export type VmDesired = 'running' | 'stopped' | 'deleted';
/** What the user wants of every other resource. */
export type Desired = 'present' | 'deleted';

/** libvirt domain state as observed, `absent` when the host has no such domain. */
export type ObservedDomain = 'absent' | 'shutoff' | 'running' | 'paused' | 'crashed';

/** A VM's observed facts, from its host's inventory. */
export type VmObserved = {
  /** The host the observation came from. */
  readonly hostId: string;
  readonly domain: ObservedDomain;
  /** Volume ids of the domain's disks in target order (see volumeIdOfDiskSource), or null. */
  readonly disks: readonly string[] | null;
  readonly atMs: number;
};

/** What a VM is made of: fixed at creation (`vm.created` carries it), but for its extra volumes. */
export type VmSpec = {
  readonly imageId: string;
  readonly vcpus: number;
  readonly memoryMb: number;
  readonly rootDiskGb: number;
  readonly rootVolumeId: string;
  /** Extra (non-root) attached volumes in attach order: disks vdb, vdc, … */
  readonly volumeIds: readonly string[];
};

export type VmRow = RowCommon &
  VmSpec & {
    readonly type: 'virtualMachine';
    readonly accountId: string;
    readonly desired: VmDesired;
    /** Placement: the compute host, or null while unplaced. */
    readonly hostId: string | null;
    readonly observed: VmObserved | null;
  };

/** A volume's observed facts, from its storage node's inventory. */
export type VolumeObserved = {
  readonly storageNodeId: string;
  readonly present: boolean;
  readonly sizeBytes: number | null;
  readonly origin: string | null;
  readonly atMs: number;
};

/** A volume's size, origin, attachment and placement, as `volume.created` starts them. */
export type VolumeSpec = {
  /** Desired size in GiB (grows with `grow`). */
  readonly sizeGb: number;
  readonly root: boolean;
  /** Origin: the image of a root volume, or null. */
  readonly imageId: string | null;
  /** Origin: the snapshot this volume was cloned from, or null. */
  readonly sourceSnapshotId: string | null;
  /** Attachment, or null. */
  readonly virtualMachineId: string | null;
  /**
   * Placement: the storage node, or null while unplaced. At creation: a required placement (a
   * clone lives on its snapshot's node), or null: the main loop places it.
   */
  readonly storageNodeId: string | null;
};

export type VolumeRow = RowCommon &
  VolumeSpec & {
    readonly type: 'volume';
    readonly accountId: string;
    readonly desired: Desired;
    /** A requested rollback not yet done, or null. */
    readonly restoreSnapshotId: string | null;
    readonly observed: VolumeObserved | null;
  };

export type SnapshotObserved = {
  readonly storageNodeId: string;
  readonly present: boolean;
  readonly sizeBytes: number | null;
  readonly atMs: number;
};

export type SnapshotRow = RowCommon & {
  readonly type: 'snapshot';
  readonly accountId: string;
  readonly desired: Desired;
  readonly volumeId: string;
  /** Size of the volume when the snapshot was taken, GiB. */
  readonly sizeGb: number;
  /** The storage node of the volume (a snapshot lives where its volume lives). */
  readonly storageNodeId: string | null;
  readonly observed: SnapshotObserved | null;
};

export type HostKind = 'compute' | 'storage';

/** Capacity an agent reported; null members are unknown. */
export type HostCapacityObserved = {
  readonly vcpus: number | null;
  readonly memoryMb: number | null;
  readonly poolSizeBytes: number | null;
  readonly atMs: number;
};

/** The capacity a host is registered with (`host.created` carries it). */
export type HostCapacity = {
  /** Declared capacity (compute hosts), or null. */
  readonly vcpus: number | null;
  readonly memoryMb: number | null;
  /** Declared pool size (storage nodes), GiB, or null. */
  readonly poolSizeGb: number | null;
};

export type HostRow = RowCommon &
  HostCapacity & {
    readonly type: 'host';
    readonly accountId: null;
    readonly desired: Desired;
    readonly kind: HostKind;
    /** False after `host.down` until `host.up`. */
    readonly online: boolean;
    /** Capacity from the last `host.up`, or null. */
    readonly observed: HostCapacityObserved | null;
  };

export type AccountKind = 'admin' | 'user';

export type AccountRow = RowCommon & {
  readonly type: 'account';
  readonly accountId: string;
  readonly desired: Desired;
  readonly kind: AccountKind;
  readonly observed: null;
};

export type ApiKeyRow = RowCommon & {
  readonly type: 'apiKey';
  readonly accountId: string;
  readonly desired: Desired;
  /** The access key, shown always. */
  readonly publicValue: string;
  /**
   * The secret's hash, never the secret: sha256 hex of `salt + secret`, or with {@link kdf} the
   * output of that slow function (secrets a person chose).
   */
  readonly secretHash: string;
  readonly salt: string;
  /** The slow hash and its parameters, or null for sha256 (secrets drawn by the API). */
  readonly kdf: SecretKdf | null;
  readonly observed: null;
};

/**
 * A slow key derivation function and its cost, stored with the hash it made so the cost can be
 * raised for new keys while old ones still verify.
 */
export interface SecretKdf {
  readonly name: 'scrypt';
  /** CPU/memory cost, a power of two. */
  readonly n: number;
  /** Block size. */
  readonly r: number;
  /** Parallelism. */
  readonly p: number;
}

/**
 * The cost for secrets a person supplies (an admin secret from the environment): scrypt at
 * n = 2^15, r = 8, p = 1 — 32 MiB and tens of milliseconds per hash.
 */
export const PERSON_SECRET_KDF: SecretKdf = { name: 'scrypt', n: 2 ** 15, r: 8, p: 1 };

/** Usage totals of one account (stream `usage-<accountId>`), written by the background. */
export type UsageRow = RowCommon & {
  readonly type: 'usage';
  readonly accountId: string;
  readonly desired: Desired;
  /** Totals per metric (`vm-hours`, `gb-hours`). */
  readonly totals: { readonly [metric: string]: number };
  /** Number of usage records folded in. */
  readonly records: number;
  /** End of the newest record per resource id (so the background never counts twice), ms. */
  readonly recordedUntilMs: { readonly [resourceId: string]: number };
  readonly observed: null;
};

/**
 * The lookup row of an access key (stream {@link accessKeyStreamId}), written with the key. It is
 * never removed: an access key is never reused, and authentication checks the key row itself for
 * revocation.
 */
export type AccessKeyRow = RowCommon & {
  readonly type: 'accessKey';
  readonly accountId: null;
  readonly desired: Desired;
  /** The api key holding this access key. */
  readonly keyId: string;
  readonly observed: null;
};

export type ReconciledRow = VmRow | VolumeRow | SnapshotRow;
export type Row =
  VmRow | VolumeRow | SnapshotRow | HostRow | AccountRow | ApiKeyRow | UsageRow | AccessKeyRow;

/** Maps a stream resource type to its row type. */
export type RowOf<T extends StreamResourceType> = Extract<Row, { type: T }>;

/** The row inside a projection, typed by the projection's `type`. Asserts the type matches. */
export function rowOf<T extends StreamResourceType>(projection: Projection, type: T): RowOf<T> {
  assert(
    projection.type === type,
    `projection ${projection.stream} is a ${projection.type}, not a ${type}`,
  );
  return projection.data as unknown as RowOf<T>;
}

/** The row inside any projection. */
export function anyRowOf(projection: Projection): Row {
  return projection.data as unknown as Row;
}

/** True once a resource is gone (removed rows stay in the projection as tombstones). */
export function isRemoved(row: { readonly removed: number | null }): boolean {
  return row.removed !== null;
}
