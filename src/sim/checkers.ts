/**
 * The checkers: the safety invariants, evaluated after every step, and the liveness goal,
 * evaluated once the faults have healed. They watch the world from outside the control plane — the
 * committed log (fed to them on every commit), the simulated hosts' real domains and datasets, and
 * what the API acknowledged to clients — so a bug in the control plane cannot hide from them by
 * also being in the checker's view.
 */
import { projector } from '../model/projector.ts';
import { isConvergedIn, isSettled } from '../model/convergence.ts';
import {
  anyRowOf,
  isRemoved,
  type HostRow,
  type Row,
  type SnapshotRow,
  type VmRow,
  type VolumeRow,
} from '../model/resources.ts';
import { World } from '../model/world.ts';
import type { AppendBatch, Projection, StoredEvent } from '../ports/event-store.ts';
import type { SimComputeHost } from './hosts/compute-host.ts';
import type { SimStorageNode } from './hosts/storage-node.ts';

/** What the checkers observe. */
export interface CheckedWorld {
  readonly computeHosts: ReadonlyMap<string, SimComputeHost>;
  readonly storageNodes: ReadonlyMap<string, SimStorageNode>;
}

/** An API write the client saw succeed: the stream must hold at least `version` events. */
export interface AcknowledgedWrite {
  readonly stream: string;
  readonly version: number;
  readonly what: string;
}

/** Datasets every storage node keeps for the image catalogue; never orphans. */
const IMAGE_DATASET = /^[^/]+\/img-/;

export class Checkers {
  private readonly projections = new Map<string, Projection>();
  private readonly fences = new Map<string, number>();
  private readonly acknowledged: AcknowledgedWrite[] = [];
  private violation: string | undefined;

  constructor(private readonly world: CheckedWorld) {}

  /** Feeds one committed batch; checks contiguity and fencing as the write lands. */
  onCommit(batch: AppendBatch, events: readonly StoredEvent[]): void {
    if (batch.fence !== undefined) {
      const newest = this.fences.get(batch.fence.resource) ?? 0;
      if (batch.fence.token < newest) {
        this.fail(
          `a write with stale fencing token ${batch.fence.token} (newest ${newest}) was applied to ${batch.fence.resource}`,
        );
      }
      this.fences.set(batch.fence.resource, Math.max(newest, batch.fence.token));
    }
    for (const event of events) {
      const current = this.projections.get(event.stream) ?? null;
      const expected = (current?.version ?? 0) + 1;
      if (event.version !== expected) {
        this.fail(
          `stream ${event.stream}: version ${event.version} follows ${expected - 1} (versions must be contiguous)`,
        );
      }
      const next = projector(current, event);
      if (next === null) this.projections.delete(event.stream);
      else this.projections.set(event.stream, next);
    }
  }

  /** Records an API write acknowledged to a client. */
  acknowledge(write: AcknowledgedWrite): void {
    this.acknowledged.push(write);
  }

  private fail(message: string): void {
    this.violation ??= message;
  }

  /** The rows as the log says, by id. */
  rows(): Row[] {
    return [...this.projections.values()].map(anyRowOf);
  }

  /** The first broken safety invariant, or undefined. Cheap enough to run after every step. */
  checkSafety(): string | undefined {
    if (this.violation !== undefined) return this.violation;
    // Every acknowledged write is in the log.
    for (const write of this.acknowledged) {
      const version = this.projections.get(write.stream)?.version ?? 0;
      if (version < write.version) {
        return `acknowledged write lost: ${write.what} (${write.stream} has version ${version}, the client saw ${write.version})`;
      }
    }
    this.acknowledged.length = 0;
    // A VM runs on at most one host; no host runs more than its memory; a volume is in one VM.
    const runningOn = new Map<string, string>();
    const diskUsers = new Map<string, string>();
    for (const [hostId, host] of this.world.computeHosts) {
      let memoryMb = 0;
      for (const domain of host.domains()) {
        if (domain.state !== 'running' && domain.state !== 'paused') continue;
        memoryMb += domain.memoryMb;
        const other = runningOn.get(domain.name);
        if (other !== undefined)
          return `VM ${domain.name} runs on two hosts: ${other} and ${hostId}`;
        runningOn.set(domain.name, hostId);
        for (const disk of domain.disks) {
          const user = diskUsers.get(disk.source);
          if (user !== undefined && user !== domain.name) {
            return `disk ${disk.source} is attached to two running VMs: ${user} and ${domain.name}`;
          }
          diskUsers.set(disk.source, domain.name);
        }
      }
      if (memoryMb > host.capacity.memoryMb) {
        return `host ${hostId} runs ${memoryMb} MB of VMs, over its capacity of ${host.capacity.memoryMb} MB`;
      }
    }
    return undefined;
  }

  /**
   * The liveness goal: every resource settled (observed equals desired, or an error with a reason),
   * the planner has nothing left to do, and no host holds a domain or dataset without a live
   * resource. Returns a description of the first thing still open, or undefined when converged.
   */
  unconverged(nowMs: number): string | undefined {
    const rows = this.rows();
    const world = new World({
      hosts: rows.filter((r): r is HostRow => r.type === 'host'),
      vms: rows.filter((r): r is VmRow => r.type === 'virtualMachine'),
      volumes: rows.filter((r): r is VolumeRow => r.type === 'volume'),
      snapshots: rows.filter((r): r is SnapshotRow => r.type === 'snapshot'),
    });
    const live = new Set<string>();
    for (const row of rows.sort((a, b) => (a.id < b.id ? -1 : 1))) {
      if (!isSettled(row)) return `${row.type} ${row.id} is ${row.state}, not settled`;
      if (row.state !== 'error' && !isConvergedIn(row, world, nowMs))
        return `${row.type} ${row.id} still has work planned`;
      if (!isRemoved(row)) live.add(row.id);
    }
    for (const [hostId, host] of this.world.computeHosts) {
      for (const domain of host.domains()) {
        const vm = world.vm(domain.name);
        if (vm === undefined || isRemoved(vm) || vm.hostId !== hostId) {
          return `orphan domain ${domain.name} (${domain.state}) on host ${hostId}`;
        }
      }
    }
    for (const [nodeId, node] of this.world.storageNodes) {
      for (const dataset of node.datasets()) {
        if (IMAGE_DATASET.test(dataset.name)) continue;
        const id = dataset.name.split('/')[1]?.split('@').at(-1) ?? '';
        if (!live.has(id)) return `orphan dataset ${dataset.name} on storage node ${nodeId}`;
      }
    }
    return undefined;
  }
}
