/**
 * Agent commands and agent reports: the messages on the bus between the main loop, the agents and
 * the background service. They travel as `BusMessage` JSON (`type` plus JSON fields).
 *
 * CONTRACT: the main loop publishes commands on `CHANNELS.agent(hostId)`; compute agents handle
 * `vm.ensure`, storage agents `volume.ensure`, `snapshot.ensure` and `volume.restore`. Agents publish
 * `result` and `inventory` on `CHANNELS.reports`; the background turns them into events.
 *
 * Every command is an idempotent "ensure": applying it twice has the effect of applying it once.
 * Every command carries the fencing `token` of the main loop's lock on the resource; an agent
 * rejects (result `ok: false`, error `stale-token`) a command whose token is older than the newest
 * it has seen for that resource (`resource` = the vm, volume or snapshot id). Agents should also
 * remember recently applied `commandId`s and not re-apply a duplicate of a non-idempotent
 * operation (`volume.restore`), only re-report its result.
 */
import type { ObservedDomain } from './resources.ts';

/** One disk of a VM's domain. */
export type CommandDisk = {
  /** `vda` (root), `vdb`, … */
  readonly target: string;
  readonly volumeId: string;
  /**
   * Disk image path for the hypervisor: diskSource(volumeId) = `/cloudbed/<vol>/disk.raw`, the
   * storage node's `diskPath(volumeId)`.
   */
  readonly source: string;
  /** The storage node that holds the volume. */
  readonly storageNodeId: string;
};

/** Power state a compute agent must reach for a VM. */
export type Power = 'running' | 'stopped' | 'absent';

/**
 * Compute agent: make the domain `vmId` match. `running`: define (or redefine if the spec
 * differs and the domain is shut off) and start; `stopped`: define/redefine, shut down (destroy
 * if it does not stop); `absent`: destroy if active, then undefine.
 */
export type VmEnsureCommand = {
  readonly type: 'vm.ensure';
  readonly commandId: string;
  readonly token: number;
  readonly vmId: string;
  readonly spec: {
    readonly vcpus: number;
    readonly memoryMb: number;
    readonly disks: readonly CommandDisk[];
  };
  readonly power: Power;
};

/**
 * Storage agent: make dataset `cloudbed/<volumeId>` match. `present`: create it — as a clone of
 * `origin` (`<dataset>@<snapshot>`) when given, else empty — with a disk image of `sizeBytes`, and
 * grow it if smaller; never shrink. `present: false`: destroy it (`busy`/`has-snapshots` are
 * reported as errors; the main loop deletes dependents first).
 */
export type VolumeEnsureCommand = {
  readonly type: 'volume.ensure';
  readonly commandId: string;
  readonly token: number;
  readonly volumeId: string;
  readonly present: boolean;
  readonly sizeBytes: number;
  readonly origin: string | null;
};

/** Storage agent: make ZFS snapshot `cloudbed/<volumeId>@<snapshotId>` exist or not. */
export type SnapshotEnsureCommand = {
  readonly type: 'snapshot.ensure';
  readonly commandId: string;
  readonly token: number;
  readonly snapshotId: string;
  readonly volumeId: string;
  readonly present: boolean;
};

/**
 * Storage agent: roll volume `cloudbed/<volumeId>` back to `snapshot`
 * (`cloudbed/<volumeId>@<snapshotId>`, its most recent snapshot). Not idempotent in effect: an
 * agent applies one `commandId` at most once.
 */
export type VolumeRestoreCommand = {
  readonly type: 'volume.restore';
  readonly commandId: string;
  readonly token: number;
  readonly volumeId: string;
  readonly snapshotId: string;
  /** Full snapshot name, `cloudbed/<volumeId>@<snapshotId>`. */
  readonly snapshot: string;
};

export type AgentCommand =
  VmEnsureCommand | VolumeEnsureCommand | SnapshotEnsureCommand | VolumeRestoreCommand;
export type AgentCommandType = AgentCommand['type'];

/** The resource (lock and fence name) a command is about. */
export function commandResource(command: AgentCommand): string {
  switch (command.type) {
    case 'vm.ensure':
      return command.vmId;
    case 'volume.ensure':
    case 'volume.restore':
      return command.volumeId;
    case 'snapshot.ensure':
      return command.snapshotId;
  }
}

/** True for a bus message that is one of the agent commands. */
export function isAgentCommand(message: { readonly type: string }): message is AgentCommand {
  return (
    message.type === 'vm.ensure' ||
    message.type === 'volume.ensure' ||
    message.type === 'snapshot.ensure' ||
    message.type === 'volume.restore'
  );
}

/** An agent's outcome for one command. `error` is a short stable reason (`stale-token`, `busy`, …). */
export type ResultReport = {
  readonly type: 'result';
  readonly commandId: string;
  /** The vm, volume or snapshot id the command was about. */
  readonly resource: string;
  readonly ok: boolean;
  readonly error?: string;
  /** The reporting agent's host. */
  readonly hostId?: string;
};

/** One domain in a compute inventory. */
export type InventoryDomain = {
  /** The domain name = the VM id. */
  readonly name: string;
  readonly state: Exclude<ObservedDomain, 'absent'>;
  readonly vcpus: number;
  readonly memoryMb: number;
  readonly disks: readonly { readonly target: string; readonly source: string }[];
};

/** One dataset or snapshot in a storage inventory (the Storage port's DatasetInfo). */
export type InventoryDataset = {
  /** `cloudbed/<volume>` or `cloudbed/<volume>@<snapshot>`. */
  readonly name: string;
  readonly kind: 'volume' | 'snapshot';
  readonly sizeBytes: number;
  readonly origin: string | null;
};

/** Capacity in an inventory; compute agents fill vcpus/memoryMb, storage agents the pool. */
export type InventoryCapacity = {
  readonly vcpus?: number;
  readonly memoryMb?: number;
  readonly poolSizeBytes?: number;
  readonly poolFreeBytes?: number;
};

/**
 * Full state of one agent's host, after every command, periodically and at start. `atMs` is the
 * agent's clock (ms since the epoch) when it began taking the inventory; the background drops an
 * inventory older than one it already applied from the same host (the bus may reorder or delay).
 * Optional so that a report without it (an older agent) is still used, just not ordered.
 */
export type InventoryReport =
  | {
      readonly type: 'inventory';
      readonly hostId: string;
      readonly kind: 'compute';
      readonly domains: readonly InventoryDomain[];
      readonly capacity: InventoryCapacity;
      readonly atMs?: number;
    }
  | {
      readonly type: 'inventory';
      readonly hostId: string;
      readonly kind: 'storage';
      readonly datasets: readonly InventoryDataset[];
      readonly capacity: InventoryCapacity;
      readonly atMs?: number;
    };

export type AgentReport = ResultReport | InventoryReport;

/** A change notice on `CHANNELS.changes` (api, main loop and background publish it after commits). */
export type ChangedNotice = {
  readonly type: 'changed';
  readonly stream: string;
  readonly resourceType: string;
};
