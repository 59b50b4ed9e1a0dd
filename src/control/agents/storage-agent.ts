/**
 * The storage agent: one per storage node, the only process that drives the node's pool. At start
 * (and again every round, which costs one listing) it makes sure the pool holds every catalogue
 * image as volume `<imageId>` with snapshot `<imageId>@base`, the origin of root volumes. It
 * applies `volume.ensure`, `snapshot.ensure` and `volume.restore` idempotently, rejects stale
 * fencing tokens, reports a result per command and the inventory after commands, periodically and
 * at start, and destroys datasets no live row accounts for (orphans). As for the compute agent,
 * the commands, fences, results and inventories are the agent loop's (agent-service.ts).
 *
 * Names: the Storage port takes names relative to the pool (`vol-1a2b3c4d`,
 * `vol-1a2b3c4d@snap-5e6f7a8b`) and reports full ones (`cloudbed/vol-1a2b3c4d`); commands carry
 * ids and full snapshot names, which {@link relativeName} maps back.
 *
 * Crash-only, as the compute agent: the queue, fencing memory and the memory of applied restores
 * are caches. A restore re-sent after a crash rolls back again, which is harmless because the main
 * loop only restores the volume of a stopped VM and nothing writes to it in between.
 */
import { assert } from '../../lib/assert.ts';
import {
  type SnapshotEnsureCommand,
  type VolumeEnsureCommand,
  type VolumeRestoreCommand,
} from '../../model/commands.ts';
import { BYTES_PER_GB, IMAGES, type SnapshotRow, type VolumeRow } from '../../model/resources.ts';
import type { Projection } from '../../ports/event-store.ts';
import type { DatasetInfo, PoolInfo, Storage } from '../../ports/storage.ts';
import { describe, hasReason, RecentCommands, rethrowBug, tolerating } from './agent-kit.ts';
import {
  AGENT_DEFAULTS,
  AgentService,
  type AgentDeps,
  type AgentOptions,
} from './agent-service.ts';

/** Tunables of the storage agent. */
export interface StorageAgentOptions extends AgentOptions {
  /** Only volumes named with this prefix may be collected as orphans. Default `vol-`. */
  readonly volumePrefix: string;
  /** Only snapshots named with this prefix may be collected as orphans. Default `snap-`. */
  readonly snapshotPrefix: string;
  /** How many applied `volume.restore` command ids to remember against duplicates. Default 1 000. */
  readonly recentCommandsMax: number;
}

/** Defaults of {@link StorageAgentOptions}. */
export const STORAGE_AGENT_DEFAULTS: StorageAgentOptions = {
  ...AGENT_DEFAULTS,
  volumePrefix: 'vol-',
  snapshotPrefix: 'snap-',
  recentCommandsMax: 1_000,
};

/** What the storage agent needs. */
export interface StorageAgentDeps extends AgentDeps<StorageAgentOptions> {
  readonly storage: Storage;
}

/** Runs the storage agent until `deps.signal` aborts (forever without one). Rejects only on a bug. */
export function runStorageAgent(deps: StorageAgentDeps): Promise<void> {
  return new StorageAgent(deps).service.start();
}

type StorageCommand = SnapshotEnsureCommand | VolumeEnsureCommand | VolumeRestoreCommand;

class StorageAgent {
  readonly service: AgentService<
    StorageCommand['type'],
    StorageAgentOptions,
    PoolInfo,
    readonly DatasetInfo[]
  >;
  private readonly options: StorageAgentOptions;
  private readonly restores: RecentCommands;

  constructor(private readonly deps: StorageAgentDeps) {
    const { storage } = deps;
    this.service = new AgentService(deps, STORAGE_AGENT_DEFAULTS, {
      commands: ['volume.ensure', 'snapshot.ensure', 'volume.restore'],
      place: 'a storage node',
      port: 'storage',
      apply: (command) => this.apply(command),
      housekeeping: () => this.housekeeping(),
      capacity: () => this.service.call('pool', storage.pool()),
      contents: () => this.service.call('list', storage.list()),
      inventory: (pool, datasets) => ({
        kind: 'storage',
        datasets: datasets.map((d) => ({
          name: d.name,
          kind: d.kind,
          sizeBytes: d.sizeBytes,
          origin: d.origin,
        })),
        capacity: { poolSizeBytes: pool.sizeBytes, poolFreeBytes: pool.freeBytes },
      }),
    });
    this.options = this.service.options;
    this.restores = new RecentCommands(this.options.recentCommandsMax);
  }

  // ---- commands ----

  private apply(command: StorageCommand): Promise<void> {
    switch (command.type) {
      case 'volume.ensure':
        return command.present ? this.ensureVolume(command) : this.removeVolume(command.volumeId);
      case 'snapshot.ensure':
        return this.ensureSnapshot(command);
      case 'volume.restore':
        return this.restore(command);
    }
  }

  /** Create (empty, or cloned from the origin snapshot) if absent; grow if smaller; never shrink. */
  private async ensureVolume(command: VolumeEnsureCommand): Promise<void> {
    const { storage } = this.deps;
    const name = command.volumeId;
    let info = await this.get(name);
    if (info === null) {
      try {
        info =
          command.origin === null
            ? await this.service.call('createVolume', storage.createVolume(name, command.sizeBytes))
            : await this.service.call('clone', storage.clone(relativeName(command.origin), name));
      } catch (error) {
        // A previous attempt whose reply was lost created it: carry on with what is there.
        if (!hasReason(error, 'exists')) throw error;
        info = await this.get(name);
        if (info === null) throw error;
      }
    }
    if (info.sizeBytes < command.sizeBytes) {
      await this.service.call('resizeVolume', storage.resizeVolume(name, command.sizeBytes));
    }
  }

  /**
   * Destroys a volume. Its snapshots that no live snapshot row accounts for are destroyed first
   * (they are orphans anyway); a live snapshot or a dependent clone makes the destroy fail with
   * `has-snapshots` or `busy`, reported as is: the main loop deletes dependents first.
   */
  private async removeVolume(volumeId: string): Promise<void> {
    try {
      await this.destroy(volumeId);
      return;
    } catch (error) {
      if (!hasReason(error, 'has-snapshots')) throw error;
    }
    const datasets = await this.service.call('list', this.deps.storage.list());
    for (const dataset of datasets) {
      if (dataset.kind !== 'snapshot') continue;
      const [volume, snapshot] = splitSnapshot(relativeName(dataset.name));
      if (volume !== volumeId) continue;
      const row = await this.row(snapshot);
      if (snapshotOrphanReason(row, volume, this.deps.hostId) !== null) {
        await this.destroy(`${volume}@${snapshot}`);
      }
    }
    await this.destroy(volumeId);
  }

  private async ensureSnapshot(command: SnapshotEnsureCommand): Promise<void> {
    const name = `${command.volumeId}@${command.snapshotId}`;
    if (!command.present) {
      await this.destroy(name);
      return;
    }
    if ((await this.get(name)) !== null) return;
    try {
      await this.service.call(
        'snapshot',
        this.deps.storage.snapshot(command.volumeId, command.snapshotId),
      );
    } catch (error) {
      if (!hasReason(error, 'exists')) throw error;
    }
  }

  /** Rolls back once per command id; a duplicate delivery only re-reports. */
  private async restore(command: VolumeRestoreCommand): Promise<void> {
    if (this.restores.get(command.commandId)?.ok === true) return;
    await this.service.call('rollback', this.deps.storage.rollback(relativeName(command.snapshot)));
    this.restores.remember(command.commandId, { ok: true, error: null });
  }

  /** Destroys a volume or snapshot; one that is already gone is fine. */
  private destroy(name: string): Promise<void> {
    return tolerating(this.service.call('destroy', this.deps.storage.destroy(name)), 'no-dataset');
  }

  private get(name: string): Promise<DatasetInfo | null> {
    return this.service.call('get', this.deps.storage.get(name));
  }

  private row(id: string): Promise<Projection | null> {
    return this.service.projection(id);
  }

  // ---- housekeeping: images and orphans ----

  /**
   * One listing, then: every catalogue image and its `@base` snapshot created where missing, and
   * orphan snapshots, then orphan volumes, destroyed. A clone of an orphan
   * snapshot is itself an orphan: the volume goes this round and the snapshot the next. Errors skip
   * the item until the next round; housekeeping never destroys on a guess.
   */
  private async housekeeping(): Promise<void> {
    const { runtime } = this.deps;
    let datasets: readonly DatasetInfo[];
    try {
      datasets = await this.service.call('list', this.deps.storage.list());
    } catch (error) {
      runtime.log.warn('agent.housekeeping-failed', { error: describe(error) });
      return;
    }
    // One read of the volumes and snapshots on this node spares a read per dataset: a dataset
    // whose row places it here is no orphan. Every other one is read fresh before it is destroyed.
    const hostId = this.deps.hostId;
    let placedHere: Set<string>;
    try {
      const volumes = await this.service.rowsOn('volume', hostId);
      const snapshots = await this.service.rowsOn('snapshot', hostId);
      placedHere = new Set([
        ...volumes.filter((r) => volumeOrphanReason(r, hostId) === null).map((r) => r.stream),
        ...snapshots.flatMap((r) => {
          const volumeId = (r.data as unknown as SnapshotRow).volumeId;
          return snapshotOrphanReason(r, volumeId, hostId) === null
            ? [`${volumeId}@${r.stream}`]
            : [];
        }),
      ]);
    } catch (error) {
      runtime.log.warn('agent.housekeeping-failed', { error: describe(error) });
      return;
    }
    const present = new Set(datasets.map((d) => relativeName(d.name)));
    for (const image of IMAGES) {
      if (present.has(image.id) && present.has(`${image.id}@base`)) continue;
      await this.service.housekeep(image.id, () =>
        this.guarded('agent.image-failed', image.id, () =>
          this.ensureImage(image.id, image.sizeGb * BYTES_PER_GB),
        ),
      );
    }
    for (const dataset of datasets) {
      if (dataset.kind !== 'snapshot') continue;
      const [volume, snapshot] = splitSnapshot(relativeName(dataset.name));
      if (!snapshot.startsWith(this.options.snapshotPrefix) || this.service.queue.busy(snapshot))
        continue;
      if (placedHere.has(`${volume}@${snapshot}`)) continue;
      await this.service.housekeep(snapshot, () =>
        this.guarded('agent.orphan-collect-failed', snapshot, async () => {
          const why = snapshotOrphanReason(await this.row(snapshot), volume, this.deps.hostId);
          if (why === null) return;
          runtime.log.info('agent.orphan', { name: `${volume}@${snapshot}`, why });
          await this.destroy(`${volume}@${snapshot}`);
        }),
      );
    }
    for (const dataset of datasets) {
      if (dataset.kind !== 'volume') continue;
      const volume = relativeName(dataset.name);
      if (!volume.startsWith(this.options.volumePrefix) || this.service.queue.busy(volume))
        continue;
      if (placedHere.has(volume)) continue;
      await this.service.housekeep(volume, () =>
        this.guarded('agent.orphan-collect-failed', volume, async () => {
          const why = volumeOrphanReason(await this.row(volume), this.deps.hostId);
          if (why === null) return;
          runtime.log.info('agent.orphan', { name: volume, why });
          await this.destroy(volume);
        }),
      );
    }
  }

  /** Creates image volume `imageId` and snapshot `imageId@base` where missing. */
  private async ensureImage(imageId: string, sizeBytes: number): Promise<void> {
    const { storage } = this.deps;
    if ((await this.get(imageId)) === null) {
      try {
        await this.service.call('createVolume', storage.createVolume(imageId, sizeBytes));
      } catch (error) {
        if (!hasReason(error, 'exists')) throw error;
      }
    }
    if ((await this.get(`${imageId}@base`)) === null) {
      try {
        await this.service.call('snapshot', storage.snapshot(imageId, 'base'));
      } catch (error) {
        if (!hasReason(error, 'exists')) throw error;
      }
    }
  }

  /** Runs `fn`, logging port errors (retried next round) and letting bugs through. */
  private async guarded(event: string, name: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      rethrowBug(error);
      this.deps.runtime.log.warn(event, { name, error: describe(error) });
    }
  }
}

/** A dataset name relative to its pool: `cloudbed/vol-1@snap-2` → `vol-1@snap-2`; relative names pass. */
export function relativeName(name: string): string {
  const at = name.indexOf('@');
  const slash = name.indexOf('/');
  return slash >= 0 && (at < 0 || slash < at) ? name.slice(slash + 1) : name;
}

/** `vol@snap` → [`vol`, `snap`]. */
function splitSnapshot(relative: string): [string, string] {
  const at = relative.indexOf('@');
  assert(at > 0, `not a snapshot name: ${relative}`);
  return [relative.slice(0, at), relative.slice(at + 1)];
}

/**
 * Why a volume dataset on `hostId` is an orphan given its row, or null if it belongs here. A row
 * without placement is not an orphan (a dataset only exists after a placed command; be safe).
 */
export function volumeOrphanReason(row: Projection | null, hostId: string): string | null {
  if (row === null) return 'no-row';
  if (row.type !== 'volume') return 'not-a-volume';
  const volume = row.data as unknown as VolumeRow;
  if (volume.removed !== null && volume.removed !== undefined) return 'removed';
  if (volume.storageNodeId !== null && volume.storageNodeId !== hostId) return 'placed-elsewhere';
  return null;
}

/** Why snapshot `<volumeId>@<row id>` on `hostId` is an orphan given its row, or null. */
export function snapshotOrphanReason(
  row: Projection | null,
  volumeId: string,
  hostId: string,
): string | null {
  if (row === null) return 'no-row';
  if (row.type !== 'snapshot') return 'not-a-snapshot';
  const snapshot = row.data as unknown as SnapshotRow;
  if (snapshot.removed !== null && snapshot.removed !== undefined) return 'removed';
  if (snapshot.volumeId !== volumeId) return 'other-volume';
  if (snapshot.storageNodeId !== null && snapshot.storageNodeId !== hostId)
    return 'placed-elsewhere';
  return null;
}
