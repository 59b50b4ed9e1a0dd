/**
 * The checkers: the safety invariants, evaluated after every step, and the liveness goal,
 * evaluated once the faults have healed. They watch the world from outside the control plane — the
 * committed log (fed to them on every commit), the simulated hosts' real domains and datasets, the
 * commands on the bus and the operations agents issue to their hosts, and what the API
 * acknowledged to clients — so a bug in the control plane cannot hide from them by also being in
 * the checker's view.
 *
 * Safety (design.md, "What the checkers prove"):
 * - versions per stream are contiguous, and no append with a fencing token older than one already
 *   committed for its resource is applied (checked as each batch commits);
 * - every write the API acknowledged is in the log;
 * - a VM runs on at most one host, and the control plane never orders a start of a VM on one host
 *   while it runs on another host that is up (there is no fencing of a host but its power: a host
 *   that is down runs nothing);
 * - no host runs more memory or vCPUs than it has, and the log never places more on a compute host
 *   than its capacity;
 * - a volume is attached to at most one running VM;
 * - no agent applies a hypervisor or storage operation on behalf of a command whose token is older
 *   than that of a command already applied for the same resource ({@link AgentFencing}).
 *
 * Liveness ({@link Checkers.unconverged}): every resource settled — observed equals desired, or an
 * error state with a reason —, nothing transitioning, the planner has nothing left to do, and no
 * orphan domain or dataset on any host.
 */
import { computeCapacity, computeUsed } from '../model/placement.ts';
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
import type { BusMessage } from '../ports/bus.ts';
import type { AppendBatch, Projection, StoredEvent } from '../ports/event-store.ts';
import type { DomainInfo, HostCapacity } from '../ports/hypervisor.ts';

/** A compute host as the checkers see it (the simulated host offers this). */
export interface CheckedComputeHost {
  readonly capacity: HostCapacity;
  readonly status: 'up' | 'down';
  domains(): readonly DomainInfo[];
}

/** A storage node as the checkers see it. */
export interface CheckedStorageNode {
  datasets(): readonly { readonly name: string }[];
}

/** What the checkers observe, by host id. */
export interface CheckedWorld {
  readonly computeHosts: ReadonlyMap<string, CheckedComputeHost>;
  readonly storageNodes: ReadonlyMap<string, CheckedStorageNode>;
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
  /** Set by every commit: the log-level placement check runs only when the log changed. */
  private placementDirty = true;
  /** Attribution of agent operations to commands, for the agent-side fencing invariant. */
  readonly agents: AgentFencing;

  constructor(private readonly world: CheckedWorld) {
    this.agents = new AgentFencing((message) => this.fail(message));
  }

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
        // The projector asserts contiguity itself: report the gap as a violation, not a crash.
        continue;
      }
      const next = projector(current, event);
      if (next === null) this.projections.delete(event.stream);
      else this.projections.set(event.stream, next);
    }
    if (events.length > 0) this.placementDirty = true;
  }

  /** Records an API write acknowledged to a client. */
  acknowledge(write: AcknowledgedWrite): void {
    this.acknowledged.push(write);
  }

  /**
   * A command was published on agent channel `hostId` (called as the publisher makes the call).
   * Ordering a VM to run on one host while it runs on another host that is up is a violation:
   * whichever command the agents apply, the VM could end up running twice.
   */
  onCommand(hostId: string, message: BusMessage, publisher: string): void {
    if (message.type !== 'vm.ensure' || message['power'] !== 'running') return;
    const vmId = message['vmId'];
    if (typeof vmId !== 'string') return;
    for (const [otherId, host] of this.world.computeHosts) {
      if (otherId === hostId || host.status !== 'up') continue;
      const domain = host.domains().find((d) => d.name === vmId);
      if (domain !== undefined && (domain.state === 'running' || domain.state === 'paused')) {
        this.fail(
          `${publisher} ordered VM ${vmId} to start on host ${hostId} while it is ${domain.state} on host ${otherId}, which is up`,
        );
        return;
      }
    }
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
    // A VM runs on at most one host; no host runs more than it has; a volume is in one VM.
    const runningOn = new Map<string, string>();
    const diskUsers = new Map<string, string>();
    for (const [hostId, host] of this.world.computeHosts) {
      let memoryMb = 0;
      let vcpus = 0;
      for (const domain of host.domains()) {
        if (domain.state !== 'running' && domain.state !== 'paused') continue;
        memoryMb += domain.memoryMb;
        vcpus += domain.vcpus;
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
      if (vcpus > host.capacity.vcpus) {
        return `host ${hostId} runs ${vcpus} vCPUs of VMs, over its capacity of ${host.capacity.vcpus}`;
      }
    }
    if (this.placementDirty) {
      this.placementDirty = false;
      const overbooked = this.overbookedHost();
      if (overbooked !== undefined) return (this.violation = overbooked);
    }
    return undefined;
  }

  /** A compute host the log places more VMs on than its capacity, described; or undefined. */
  private overbookedHost(): string | undefined {
    const world = this.worldOfRows(this.rows());
    for (const host of world.hosts()) {
      if (host.kind !== 'compute' || isRemoved(host)) continue;
      const capacity = computeCapacity(host);
      const used = computeUsed(host.id, world);
      if (used.vcpus > capacity.vcpus || used.memoryMb > capacity.memoryMb) {
        return `the log places ${used.vcpus} vCPUs and ${used.memoryMb} MB on host ${host.id}, over its capacity of ${capacity.vcpus} vCPUs and ${capacity.memoryMb} MB`;
      }
    }
    return undefined;
  }

  private worldOfRows(rows: readonly Row[]): World {
    return new World({
      hosts: rows.filter((r): r is HostRow => r.type === 'host'),
      vms: rows.filter((r): r is VmRow => r.type === 'virtualMachine'),
      volumes: rows.filter((r): r is VolumeRow => r.type === 'volume'),
      snapshots: rows.filter((r): r is SnapshotRow => r.type === 'snapshot'),
    });
  }

  /**
   * The liveness goal: every resource settled (observed equals desired, or an error with a reason),
   * the planner has nothing left to do, and no host holds a domain or dataset without a live
   * resource. Returns a description of the first thing still open, or undefined when converged.
   */
  unconverged(nowMs: number): string | undefined {
    const rows = this.rows();
    const world = this.worldOfRows(rows);
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

/** A command as the agent-fencing checker tracks it. */
interface TrackedCommand {
  readonly commandId: string;
  readonly resource: string;
  readonly token: number;
}

/** What an agent incarnation is doing for one resource key. */
type Work = TrackedCommand | 'housekeeping';

/**
 * Agent-side fencing: no agent applies a hypervisor or storage operation on behalf of a command
 * whose token is older than that of a command already applied for the same resource (on any host).
 *
 * Operations carry no tokens, so they are attributed to commands by observing each agent
 * incarnation from outside, through its port handles:
 * - the messages its bus handler receives (`delivered`/`handled`); a command for which the agent
 *   published a result while still inside the handler was refused on arrival (stale or malformed);
 *   any other is queued, and the newest queued command per resource is the one the agent runs next
 *   (its queue keeps one pending item per resource and a newer one replaces it);
 * - its database calls (`storeCall`): an agent starts a command with `fenceOf(resource)` (the
 *   fencing check) and housekeeping on a resource with `get(resource)` (the orphan check), so the
 *   last of these per resource says on whose behalf the following operations are issued;
 * - its results (`published`), which end a command's run;
 * - the mutating operations it issues to its host (`operation`), with the resource keys they may
 *   belong to, most specific first.
 * The attribution errs on the side of silence: operations it cannot attribute (housekeeping,
 * image upkeep, a crashed incarnation's leftovers) are not checked, so it never fires on a run that
 * obeys the rule, and a run that breaks it — an agent that applies stale commands — is caught.
 */
export class AgentFencing {
  /** Per incarnation: the newest command queued per resource. */
  private readonly queued = new Map<string, Map<string, TrackedCommand>>();
  /** Per incarnation: what is running per resource key. */
  private readonly running = new Map<string, Map<string, Work>>();
  /** The newest token on whose behalf an operation was applied, per resource. */
  private readonly applied = new Map<string, { token: number; by: string }>();
  /** The command whose delivery is being handled, and whether the agent answered it at once. */
  private inHandler: { agent: string; command: TrackedCommand; answered: boolean } | null = null;

  constructor(private readonly fail: (message: string) => void) {}

  /** A message reached agent incarnation `agent`'s handler (call before the handler runs). */
  delivered(agent: string, message: BusMessage): void {
    const command = trackedCommand(message);
    this.inHandler = command === null ? null : { agent, command, answered: false };
  }

  /** The handler for `message` returned. */
  handled(agent: string, message: BusMessage): void {
    const command = trackedCommand(message);
    const handling = this.inHandler;
    this.inHandler = null;
    if (command === null || handling === null || handling.answered) return;
    mapOf(this.queued, agent).set(command.resource, command);
  }

  /** Agent incarnation `agent` published `message` (called as it makes the call). */
  published(agent: string, message: BusMessage): void {
    if (message.type !== 'result') return;
    const commandId = message['commandId'];
    const resource = message['resource'];
    if (typeof commandId !== 'string') return;
    if (this.inHandler?.agent === agent && this.inHandler.command.commandId === commandId) {
      this.inHandler.answered = true;
    }
    if (typeof resource !== 'string') return;
    const running = this.running.get(agent);
    const work = running?.get(resource);
    if (work !== undefined && work !== 'housekeeping' && work.commandId === commandId) {
      running?.delete(resource);
    }
  }

  /** Agent incarnation `agent` called the database: `fence` (fenceOf) or `get` on `key`. */
  storeCall(agent: string, op: 'fence' | 'get', key: string): void {
    const running = mapOf(this.running, agent);
    if (op === 'get') {
      running.set(key, 'housekeeping');
      return;
    }
    // An idle agent starts a command inside its handler, before the handler returns.
    const handling = this.inHandler;
    const command =
      handling !== null && handling.agent === agent && handling.command.resource === key
        ? handling.command
        : this.queued.get(agent)?.get(key);
    if (command === undefined) running.delete(key);
    else running.set(key, command);
  }

  /**
   * Agent incarnation `agent` issued mutating operation `op` to its host; `keys` are the resources
   * it may be on behalf of, most specific first (a snapshot's destroy: the snapshot, then its
   * volume).
   */
  operation(agent: string, op: string, keys: readonly string[]): void {
    const running = this.running.get(agent);
    let work: Work | undefined;
    for (const key of keys) {
      work = running?.get(key);
      if (work !== undefined) break;
    }
    if (work === undefined || work === 'housekeeping') return;
    const newest = this.applied.get(work.resource);
    if (newest !== undefined && work.token < newest.token) {
      this.fail(
        `${agent} applied ${op} on ${work.resource} for command ${work.commandId} with token ${work.token}, after an operation for token ${newest.token} (${newest.by}) was applied: a stale command took effect`,
      );
      return;
    }
    if (newest === undefined || work.token > newest.token) {
      this.applied.set(work.resource, {
        token: work.token,
        by: `${agent} command ${work.commandId}`,
      });
    }
  }
}

/** The command a bus message carries, if it is a well-formed agent command. */
function trackedCommand(message: BusMessage): TrackedCommand | null {
  const commandId = message['commandId'];
  const token = message['token'];
  if (typeof commandId !== 'string' || typeof token !== 'number') return null;
  let resource: unknown;
  switch (message.type) {
    case 'vm.ensure':
      resource = message['vmId'];
      break;
    case 'volume.ensure':
    case 'volume.restore':
      resource = message['volumeId'];
      break;
    case 'snapshot.ensure':
      resource = message['snapshotId'];
      break;
    default:
      return null;
  }
  return typeof resource === 'string' ? { commandId, resource, token } : null;
}

function mapOf<V>(maps: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let map = maps.get(key);
  if (map === undefined) {
    map = new Map<string, V>();
    maps.set(key, map);
  }
  return map;
}
