/**
 * Every event type of the control plane, with its data, its writer and its schema version.
 *
 * CONTRACT: the api (desired state), the main loop (placement, commands, failures, removal) and
 * the background service (observations, results, progress, host liveness, usage) append exactly
 * these events; the projector folds exactly these. Data is only ever extended; a change of meaning
 * gets a new schema version and an upcaster in {@link UPCASTERS}, never a rewrite of old events.
 *
 * Naming: `<prefix>.<past-tense>` where prefix is `vm`, `volume`, `snapshot`, `host`, `account`,
 * `apikey`, `accesskey`, `usage`. Every event lives in the stream of the resource it is about
 * (stream id = resource id; usage: `usage-<accountId>`; access key lookup: see accessKeyStreamId).
 */
import { assert } from '../lib/assert.ts';
import type {
  AccountKind,
  HostCapacity,
  HostCapacityObserved,
  HostKind,
  SecretKdf,
  SnapshotObserved,
  VmDesired,
  VmObserved,
  VmSpec,
  VolumeObserved,
  VolumeSpec,
} from './resources.ts';
import type { EventMeta, NewEvent, StoredEvent } from './stream.ts';

/** Bookkeeping events shared by the reconciled types (vm, volume, snapshot). */
type ReconcileEvents<P extends string> = {
  /** main loop: a command went to an agent. */
  [K in `${P}.command-sent`]: {
    readonly commandId: string;
    /** The command's type, e.g. `vm.ensure`. */
    readonly command: string;
    readonly hostId: string;
    /** 1-based attempt number within the current goal. */
    readonly attempt: number;
    /** When to try again if the effect is not observed by then, ms since the epoch. */
    readonly nextAttemptAtMs: number;
    readonly token: number;
    /** What was asked, in short (`running`, `absent`, `size=…`). */
    readonly goal: string;
  };
} & {
  /** main loop: an attempt that sent nothing failed (e.g. no capacity); retry later. */
  [K in `${P}.attempt-failed`]: {
    readonly reason: string;
    readonly attempt: number;
    readonly nextAttemptAtMs: number;
  };
} & {
  /** main loop: the resource waits on something else; written only when the message changes. */
  [K in `${P}.waiting`]: { readonly message: string };
} & {
  /** main loop: attempts exhausted or impossible: the error state, with a reason. */
  [K in `${P}.failed`]: { readonly reason: string };
} & {
  /** main loop: the resource is gone everywhere; the row stays as a tombstone. */
  [K in `${P}.removed`]: Record<string, never>;
} & {
  /** background: an agent's result for a command. */
  [K in `${P}.command-reported`]: {
    readonly commandId: string;
    readonly ok: boolean;
    readonly error: string | null;
  };
} & {
  /** background: progress of the work in flight (GDAPI transitioningMessage/Progress). */
  [K in `${P}.progress-reported`]: {
    readonly message: string | null;
    /** Percent in [0, 100], or null. */
    readonly progress: number | null;
  };
};

/** Data of every `*.renamed` event (api, PUT with a new `name`). */
type Renamed = {
  /** The new name, valid as on create (see the schemas' name fields). */
  readonly name: string;
};

/**
 * An observation as the background reports it: the row's `observed` facts but their time, which is
 * the event's `meta.atMs`. One declaration for both, so a new observed fact is added once.
 */
type Reported<O> = Omit<O, 'atMs'>;

/** Data of every event type. */
export type EventDataMap = {
  // --- accounts and api keys (api) ---
  'account.created': { readonly name: string; readonly kind: AccountKind };
  'account.renamed': Renamed;
  /**
   * api (admin), only when the account owns no live VM, volume or snapshot; appended in one batch
   * with `apikey.revoked` for each of its live keys. The row stays as a tombstone.
   */
  'account.removed': Record<string, never>;
  'apikey.created': {
    readonly accountId: string;
    readonly name: string;
    readonly publicValue: string;
    /** sha256 hex of `salt + secret`, or the output of `kdf` when there is one. */
    readonly secretHash: string;
    readonly salt: string;
    /** The slow hash that made `secretHash` (secrets a person chose); absent: sha256. */
    readonly kdf?: SecretKdf;
  };
  'apikey.revoked': Record<string, never>;
  'apikey.renamed': Renamed;
  /**
   * api, in the batch of `apikey.created`: the lookup stream `accesskey-<sha256(publicValue)>`
   * (see accessKeyStreamId) names the key that holds this access key. Never removed.
   */
  'accesskey.claimed': { readonly keyId: string };

  // --- hosts ---
  /** api (admin). State `registering` until the agent's first inventory. */
  'host.created': { readonly name: string; readonly kind: HostKind } & HostCapacity;
  /** api (admin): evacuate; no new placements. */
  'host.maintenance-requested': Record<string, never>;
  /** api (admin): leave maintenance. */
  'host.activate-requested': Record<string, never>;
  /** api (admin, PUT). */
  'host.renamed': Renamed;
  /** api (admin), only when nothing is placed on the host. */
  'host.removed': Record<string, never>;
  /** background: first report (registering → active) or reports resumed (down → active). */
  'host.up': Reported<HostCapacityObserved>;
  /** background: no report for hostDownAfterMs. */
  'host.down': { readonly lastSeenMs: number };
  /**
   * main loop: a VM (compute host) or volume (storage node) was placed here. Appended in the same
   * batch as `vm.placed`/`volume.placed` with the host's expected version, so two concurrent
   * placements on one host conflict and capacity can never be overcommitted.
   */
  'host.placement-recorded': { readonly resourceId: string };

  // --- virtual machines ---
  /** api; appended in one batch with the root volume's and the extra volumes' `volume.created`. */
  'vm.created': {
    readonly accountId: string;
    readonly name: string;
    /** `running` (start once created) or `stopped`. */
    readonly desired: Exclude<VmDesired, 'deleted'>;
  } & VmSpec;
  'vm.start-requested': Record<string, never>;
  'vm.stop-requested': Record<string, never>;
  'vm.restart-requested': Record<string, never>;
  'vm.delete-requested': Record<string, never>;
  /** api (PUT). Moves no state. */
  'vm.renamed': Renamed;
  /** api: an extra volume was attached (the volume's stream gets `volume.attached`). */
  'vm.volume-attached': { readonly volumeId: string };
  /** api or main loop: an extra volume was detached (the volume's stream gets `volume.detached`). */
  'vm.volume-detached': { readonly volumeId: string };
  /**
   * api, in the batch of `volume.grow-requested` of an attached extra volume, with the VM's
   * expected version: the 1229 GB rule counts the VM's other volumes, so two concurrent changes to
   * the VM's extra storage (grows, attaches) must conflict on its stream. Moves no state.
   */
  'vm.storage-changed': {
    readonly volumeId: string;
    /** The VM's extra storage once the change is done, GiB. */
    readonly extraGb: number;
  };
  /** main loop: placement on a compute host. */
  'vm.placed': { readonly hostId: string };
  /** main loop: evacuated from a host in maintenance (its domain was observed absent there). */
  'vm.unplaced': { readonly fromHostId: string; readonly reason: string };
  /** background, only on change: the domain on the VM's host. */
  'vm.observed': Reported<VmObserved>;

  // --- volumes ---
  /** api (also in the VM create batch for root and extra volumes). */
  'volume.created': { readonly accountId: string; readonly name: string } & VolumeSpec;
  /** api: attached to a (stopped) VM. */
  'volume.attached': { readonly virtualMachineId: string };
  /** api, or main loop when its VM was removed. */
  'volume.detached': { readonly virtualMachineId: string };
  'volume.grow-requested': { readonly sizeGb: number };
  /** api: roll back to the volume's most recent snapshot. */
  'volume.restore-requested': { readonly snapshotId: string };
  'volume.delete-requested': Record<string, never>;
  /** api (PUT). Moves no state. */
  'volume.renamed': Renamed;
  /** main loop. */
  'volume.placed': { readonly storageNodeId: string };
  /** background, only on change. */
  'volume.observed': Reported<VolumeObserved>;

  // --- snapshots ---
  /** api (POST /v1/snapshots or volume ?action=snapshot). */
  'snapshot.created': {
    readonly accountId: string;
    readonly name: string;
    readonly volumeId: string;
    readonly sizeGb: number;
    readonly storageNodeId: string | null;
  };
  'snapshot.delete-requested': Record<string, never>;
  /**
   * api, in the batch of a clone's `volume.created`, with the snapshot's expected version: a
   * concurrent `snapshot.delete-requested` (which checks for clones) then conflicts, so a snapshot
   * is never deleted while a clone of it is created. Moves no state.
   */
  'snapshot.clone-registered': { readonly volumeId: string };
  /** api (PUT). Moves no state. */
  'snapshot.renamed': Renamed;
  /** main loop: the snapshot's volume got placed after the snapshot was requested. */
  'snapshot.placed': { readonly storageNodeId: string };
  /** background, only on change. */
  'snapshot.observed': Reported<SnapshotObserved>;

  // --- usage (background), stream usage-<accountId> ---
  'usage.recorded': {
    readonly accountId: string;
    readonly resourceId: string;
    readonly resourceType: 'virtualMachine' | 'volume';
    /** `vm-hours` (while running) or `gb-hours` (per volume). */
    readonly metric: 'vm-hours' | 'gb-hours';
    readonly quantity: number;
    readonly fromMs: number;
    readonly toMs: number;
  };
} & ReconcileEvents<'vm'> &
  ReconcileEvents<'volume'> &
  ReconcileEvents<'snapshot'>;

export type EventType = keyof EventDataMap;

/** An event of a known type with typed data. */
export type TypedEvent<T extends EventType = EventType> = {
  [K in T]: Omit<NewEvent, 'type' | 'data'> & { readonly type: K; readonly data: EventDataMap[K] };
}[T];

/** Current schema version of every event type (1 unless an upcaster exists). */
export const SCHEMA_VERSION: { readonly [type: string]: number } = {};

/** The schema version new events of `type` are written with. */
export function schemaVersionOf(type: string): number {
  return SCHEMA_VERSION[type] ?? 1;
}

/**
 * Upcasters: `UPCASTERS[type][v]` turns data of schema version `v` into version `v + 1`. The
 * projector applies them in sequence, so old events are read in the current shape and never
 * rewritten. Empty today; add an entry (and bump {@link SCHEMA_VERSION}) when a data shape changes.
 */
export const UPCASTERS: {
  readonly [type: string]: {
    readonly [fromVersion: number]: (data: StoredEvent['data']) => StoredEvent['data'];
  };
} = {};

/** Upcasters and current versions, injectable so the mechanism can be tested without real history. */
export interface UpcastRegistry {
  readonly upcasters: typeof UPCASTERS;
  readonly versions: typeof SCHEMA_VERSION;
}

/**
 * `event` in the current schema version of its type (the same object when it already is). Also
 * usable as the stores' `upcast` option, so readers of the log see current shapes too.
 */
export function upcast(
  event: StoredEvent,
  registry: UpcastRegistry = { upcasters: UPCASTERS, versions: SCHEMA_VERSION },
): StoredEvent {
  const target = registry.versions[event.type] ?? 1;
  let data = event.data;
  let version = event.schemaVersion;
  assert(version <= target, `event ${event.type} v${version} is newer than this code (v${target})`);
  while (version < target) {
    const step = registry.upcasters[event.type]?.[version];
    assert(step !== undefined, `no upcaster for ${event.type} v${version}`);
    data = step(data);
    version++;
  }
  return version === event.schemaVersion ? event : { ...event, data, schemaVersion: version };
}

/** Builds an event to append, with the current schema version. */
export function newEvent<T extends EventType>(
  type: T,
  data: EventDataMap[T],
  meta: EventMeta,
): NewEvent {
  return {
    type,
    data: data as unknown as NewEvent['data'],
    schemaVersion: schemaVersionOf(type),
    meta,
  };
}

/** The typed data of a stored event whose type is `type`. */
export function dataOf<T extends EventType>(
  event: { readonly data: unknown },
  _type: T,
): EventDataMap[T] {
  return event.data as EventDataMap[T];
}

/** Every event type, for schema publication and exhaustiveness tests. */
export const EVENT_TYPES: readonly EventType[] = [
  'account.created',
  'account.renamed',
  'account.removed',
  'apikey.created',
  'apikey.revoked',
  'apikey.renamed',
  'accesskey.claimed',
  'host.created',
  'host.maintenance-requested',
  'host.activate-requested',
  'host.renamed',
  'host.removed',
  'host.up',
  'host.down',
  'host.placement-recorded',
  'vm.created',
  'vm.start-requested',
  'vm.stop-requested',
  'vm.restart-requested',
  'vm.delete-requested',
  'vm.renamed',
  'vm.volume-attached',
  'vm.volume-detached',
  'vm.storage-changed',
  'vm.placed',
  'vm.unplaced',
  'vm.observed',
  'volume.created',
  'volume.attached',
  'volume.detached',
  'volume.grow-requested',
  'volume.restore-requested',
  'volume.delete-requested',
  'volume.renamed',
  'volume.placed',
  'volume.observed',
  'snapshot.created',
  'snapshot.delete-requested',
  'snapshot.clone-registered',
  'snapshot.renamed',
  'snapshot.placed',
  'snapshot.observed',
  'usage.recorded',
  ...(['vm', 'volume', 'snapshot'] as const).flatMap((p) =>
    (
      [
        'command-sent',
        'attempt-failed',
        'waiting',
        'failed',
        'removed',
        'command-reported',
        'progress-reported',
      ] as const
    ).map((s) => `${p}.${s}` as const),
  ),
];
