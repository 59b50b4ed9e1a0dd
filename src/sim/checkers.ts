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
 * Liveness ({@link Checkers.converged}): every resource settled — observed equals desired, or an
 * error state with a reason —, nothing transitioning, the planner has nothing left to do, and no
 * orphan domain or dataset on any host.
 *
 * Cost: a step costs O(what it touched), never O(world). The checkers keep indexes — what runs
 * where, each host's running and placed capacity, each disk's users, the unsettled rows, the orphan
 * domains and datasets — up to date from the commits and from the hosts' change notices
 * ({@link CheckedComputeHost.watch}), and after a step re-examine only what it touched. When that
 * finds a broken invariant, the full recomputation over the world names it, so the message is the
 * one it always was. The liveness goal asks the full recomputation only once every row is settled
 * and nothing is orphaned, and then only when something changed. In mode `full` (`--check full`)
 * both run after every step and must agree; a disagreement ends the run as a crash.
 */
import { assert } from '../lib/assert.ts';
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
import type { DomainInfo, DomainSpec, DomainState, HostCapacity } from '../ports/hypervisor.ts';

/** One domain as the incremental checkers read it: a view, never a copy. */
export interface DomainView {
  readonly state: DomainState;
  /** The definition an active domain runs with; null while inactive. */
  readonly live: DomainSpec | null;
}

/** A compute host as the checkers see it (the simulated host offers this). */
export interface CheckedComputeHost {
  readonly capacity: HostCapacity;
  readonly status: 'up' | 'down';
  /** Every domain, sorted by name (the full recomputation). */
  domains(): readonly DomainInfo[];
  /** One domain, or undefined when the host has none of that name. */
  domain(name: string): DomainView | undefined;
  /** Calls `onChange` with a domain's name after every change of that domain (state, definition, existence). */
  watch(onChange: (name: string) => void): void;
}

/** A storage node as the checkers see it. */
export interface CheckedStorageNode {
  /** Every dataset, sorted by name (the full recomputation). */
  datasets(): readonly { readonly name: string }[];
  /** Calls `onChange` with a dataset's full name after it is created or destroyed. */
  watch(onChange: (name: string, present: boolean) => void): void;
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

/**
 * How the invariants are evaluated: `incremental` from what each step touched (the default), or
 * `full` — both the incremental checks and the full recomputation over the world after every step,
 * which must agree (a debugging mode, and what the agreement property runs).
 */
export type CheckMode = 'incremental' | 'full';

/** The check modes, for validation. */
export const CHECK_MODES: readonly CheckMode[] = ['incremental', 'full'];

/** Options for {@link Checkers}. */
export interface CheckersOptions {
  /** Default `incremental`. */
  readonly mode?: CheckMode;
}

/** Datasets every storage node keeps for the image catalogue; never orphans. */
const IMAGE_DATASET = /^[^/]+\/img-/;

/** The resource id a dataset's name stands for: `pool/vol-1` → vol-1, `pool/vol-1@snap-2` → snap-2. */
function datasetResource(name: string): string {
  return name.split('/')[1]?.split('@').at(-1) ?? '';
}

/** vCPUs and memory, added up. */
interface Amount {
  vcpus: number;
  memoryMb: number;
}

function add(totals: Map<string, Amount>, key: string, vcpus: number, memoryMb: number): void {
  const total = totals.get(key);
  if (total === undefined) totals.set(key, { vcpus, memoryMb });
  else {
    total.vcpus += vcpus;
    total.memoryMb += memoryMb;
  }
}

/** Adds `delta` to a counter in a map of counters, dropping it at zero. */
function count<K>(counts: Map<K, number>, key: K, delta: number): void {
  const next = (counts.get(key) ?? 0) + delta;
  if (next === 0) counts.delete(key);
  else counts.set(key, next);
}

function isActive(state: DomainState): boolean {
  return state === 'running' || state === 'paused';
}

export class Checkers {
  private readonly mode: CheckMode;
  private readonly projections = new Map<string, Projection>();
  private readonly fences = new Map<string, number>();
  private readonly acknowledged: AcknowledgedWrite[] = [];
  private violation: string | undefined;
  /** Set by every commit: the full log-level placement check runs only when the log changed. */
  private placementDirty = true;
  /** Attribution of agent operations to commands, for the agent-side fencing invariant. */
  readonly agents: AgentFencing;

  // ---- incremental indexes: what runs where ----
  /** Per host, per domain name: the definition an active domain is counted with. */
  private readonly counted = new Map<string, Map<string, DomainSpec>>();
  /** Per VM name, the hosts it is active on. */
  private readonly activeOn = new Map<string, Set<string>>();
  /** Per host, what its active domains use. */
  private readonly running = new Map<string, Amount>();
  /** Per disk source, how many active domains of each name use it. */
  private readonly diskUsers = new Map<string, Map<string, number>>();
  /** Per domain name, the hosts that have it in any state (the orphan check). */
  private readonly definedOn = new Map<string, Set<string>>();
  /** `host\0name` of every orphan domain. */
  private readonly orphanDomains = new Set<string>();
  /** Per resource id, the datasets (full names, with their node) standing for it. */
  private readonly datasetsOf = new Map<string, Set<string>>();
  /** `node\0name` of every orphan dataset. */
  private readonly orphanDatasets = new Set<string>();

  // ---- incremental indexes: what the log says ----
  /** Per compute host, what the log places on it, and what each VM row contributes. */
  private readonly placed = new Map<string, Amount>();
  private readonly placedBy = new Map<
    string,
    { hostId: string; vcpus: number; memoryMb: number }
  >();
  /** Rows that are not settled. */
  private readonly unsettled = new Set<string>();

  // ---- what the current step touched ----
  private readonly dirtyVms = new Set<string>();
  private readonly dirtyHosts = new Set<string>();
  private readonly dirtyDisks = new Set<string>();
  private readonly dirtyPlacements = new Set<string>();
  /** Counts changes of rows, domains and datasets: the liveness goal's cache key. */
  private changes = 0;
  private goalCache: {
    readonly changes: number;
    readonly atMs: number;
    readonly converged: boolean;
  } | null = null;

  constructor(
    private readonly world: CheckedWorld,
    options: CheckersOptions = {},
  ) {
    this.mode = options.mode ?? 'incremental';
    this.agents = new AgentFencing((message) => this.fail(message));
    for (const [hostId, host] of world.computeHosts) {
      for (const domain of host.domains()) this.onDomain(hostId, domain.name);
      host.watch((name) => this.onDomain(hostId, name));
    }
    for (const [nodeId, node] of world.storageNodes) {
      for (const dataset of node.datasets()) this.onDataset(nodeId, dataset.name, true);
      node.watch((name, present) => this.onDataset(nodeId, name, present));
    }
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
      this.onRow(
        event.stream,
        current === null ? null : anyRowOf(current),
        next === null ? null : anyRowOf(next),
      );
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
    let found = false;
    for (const otherId of this.activeOn.get(vmId) ?? []) {
      if (otherId !== hostId && this.world.computeHosts.get(otherId)?.status === 'up') found = true;
    }
    if (this.mode === 'full' || found) {
      const message = this.commandViolation(hostId, vmId, publisher);
      this.agree('a start ordered while the VM runs elsewhere', found, message);
      if (message !== undefined) this.fail(message);
    }
  }

  /** The full recomputation of {@link onCommand}'s check: the message, or undefined. */
  private commandViolation(hostId: string, vmId: string, publisher: string): string | undefined {
    for (const [otherId, host] of this.world.computeHosts) {
      if (otherId === hostId || host.status !== 'up') continue;
      const domain = host.domains().find((d) => d.name === vmId);
      if (domain !== undefined && (domain.state === 'running' || domain.state === 'paused')) {
        return `${publisher} ordered VM ${vmId} to start on host ${hostId} while it is ${domain.state} on host ${otherId}, which is up`;
      }
    }
    return undefined;
  }

  private fail(message: string): void {
    this.violation ??= message;
  }

  /** In mode `full`: the incremental verdict must be the full one's. */
  private agree(what: string, incremental: boolean, full: string | undefined): void {
    assert(
      incremental === (full !== undefined),
      `checkers disagree on ${what}: the incremental check says ${incremental ? 'broken' : 'fine'}, the full recomputation says ${full ?? 'fine'}`,
    );
  }

  /** The rows as the log says, by id. */
  rows(): Row[] {
    return [...this.projections.values()].map(anyRowOf);
  }

  /**
   * The first broken safety invariant, or undefined. Runs after every step: it re-examines what
   * the step touched.
   */
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
    const found = this.touchedBroken();
    if (this.mode === 'incremental' && !found) return undefined;
    const message = this.fullSafety();
    this.agree('safety', found, message);
    return message;
  }

  /** Whether anything the step touched breaks an invariant; clears what the step touched. */
  private touchedBroken(): boolean {
    // Most steps touch nothing checked here: answer without making an iterator per set.
    if (
      this.dirtyVms.size === 0 &&
      this.dirtyHosts.size === 0 &&
      this.dirtyDisks.size === 0 &&
      this.dirtyPlacements.size === 0
    )
      return false;
    let found = false;
    for (const vm of this.dirtyVms) if ((this.activeOn.get(vm)?.size ?? 0) > 1) found = true;
    for (const hostId of this.dirtyHosts) {
      const use = this.running.get(hostId);
      const capacity = this.world.computeHosts.get(hostId)?.capacity;
      if (use !== undefined && capacity !== undefined)
        if (use.memoryMb > capacity.memoryMb || use.vcpus > capacity.vcpus) found = true;
    }
    for (const disk of this.dirtyDisks) if ((this.diskUsers.get(disk)?.size ?? 0) > 1) found = true;
    for (const hostId of this.dirtyPlacements) if (this.overbooked(hostId)) found = true;
    this.dirtyVms.clear();
    this.dirtyHosts.clear();
    this.dirtyDisks.clear();
    this.dirtyPlacements.clear();
    return found;
  }

  /** True when the log places more on compute host `hostId` than its capacity. */
  private overbooked(hostId: string): boolean {
    const projection = this.projections.get(hostId);
    if (projection === undefined) return false;
    const host = anyRowOf(projection);
    if (host.type !== 'host' || host.kind !== 'compute' || isRemoved(host)) return false;
    const used = this.placed.get(hostId);
    if (used === undefined) return false;
    const capacity = computeCapacity(host);
    return used.vcpus > capacity.vcpus || used.memoryMb > capacity.memoryMb;
  }

  /** The full recomputation of the safety invariants over the world: a message, or undefined. */
  private fullSafety(): string | undefined {
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
   * The liveness goal: true when every resource is settled, the planner has nothing left to do and
   * no host holds a domain or dataset without a live resource ({@link unconverged} says what is
   * still open). Cheap while anything is unsettled or orphaned; otherwise the full recomputation
   * decides, once per change (and at most a simulated second stale, as plans may look at the time).
   */
  converged(nowMs: number): boolean {
    const open =
      this.unsettled.size > 0 || this.orphanDomains.size > 0 || this.orphanDatasets.size > 0;
    let incremental: boolean;
    if (open) incremental = false;
    else {
      const cache = this.goalCache;
      if (
        cache !== null &&
        cache.changes === this.changes &&
        nowMs - cache.atMs < GOAL_RECHECK_MS
      ) {
        incremental = cache.converged;
      } else {
        incremental = this.unconverged(nowMs) === undefined;
        this.goalCache = { changes: this.changes, atMs: nowMs, converged: incremental };
      }
    }
    if (this.mode === 'full') this.agree('convergence', !incremental, this.unconverged(nowMs));
    return incremental;
  }

  /** How many VMs, volumes and snapshots are not settled now (kept incrementally). */
  get unsettledCount(): number {
    return this.unsettled.size;
  }

  /**
   * The full recomputation of the liveness goal: every resource settled (observed equals desired,
   * or an error with a reason), the planner has nothing left to do, and no host holds a domain or
   * dataset without a live resource. Returns a description of the first thing still open, or
   * undefined when converged.
   */
  unconverged(nowMs: number): string | undefined {
    const rows = this.rows();
    const world = this.worldOfRows(rows);
    const live = new Set<string>();
    rows.sort((a, b) => (a.id < b.id ? -1 : 1));
    const unsettled = rows.filter((row) => !isSettled(row));
    const first = unsettled[0];
    if (first !== undefined) {
      const why = first.transitioningMessage === null ? '' : ` (${first.transitioningMessage})`;
      const more = unsettled.length > 1 ? `; ${unsettled.length - 1} more not settled` : '';
      return `${first.type} ${first.id} is ${first.state}, not settled${why}${more}`;
    }
    for (const row of rows) {
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
        if (!live.has(datasetResource(dataset.name)))
          return `orphan dataset ${dataset.name} on storage node ${nodeId}`;
      }
    }
    return undefined;
  }

  // ---- keeping the indexes ----

  /** A row changed in the log (null: no row). */
  private onRow(id: string, before: Row | null, after: Row | null): void {
    this.changes++;
    if (after === null || isSettled(after)) this.unsettled.delete(id);
    else this.unsettled.add(id);
    if (before?.type === 'virtualMachine' || after?.type === 'virtualMachine') {
      const old = this.placedBy.get(id);
      if (old !== undefined) {
        add(this.placed, old.hostId, -old.vcpus, -old.memoryMb);
        this.placedBy.delete(id);
        this.dirtyPlacements.add(old.hostId);
      }
      if (after?.type === 'virtualMachine' && after.hostId !== null && !isRemoved(after)) {
        this.placedBy.set(id, {
          hostId: after.hostId,
          vcpus: after.vcpus,
          memoryMb: after.memoryMb,
        });
        add(this.placed, after.hostId, after.vcpus, after.memoryMb);
        this.dirtyPlacements.add(after.hostId);
      }
      for (const hostId of this.definedOn.get(id) ?? []) this.checkOrphanDomain(hostId, id);
    }
    if (before?.type === 'host' || after?.type === 'host') this.dirtyPlacements.add(id);
    for (const key of this.datasetsOf.get(id) ?? []) this.checkOrphanDataset(key, id);
  }

  /** A domain of compute host `hostId` changed. */
  private onDomain(hostId: string, name: string): void {
    this.changes++;
    const host = this.world.computeHosts.get(hostId);
    const domain = host?.domain(name);
    // Existence, for the orphan check.
    const defined = this.definedOn.get(name) ?? new Set<string>();
    if (domain === undefined) defined.delete(hostId);
    else defined.add(hostId);
    if (defined.size === 0) this.definedOn.delete(name);
    else this.definedOn.set(name, defined);
    this.checkOrphanDomain(hostId, name);
    // Accounting of active domains.
    let counted = this.counted.get(hostId);
    if (counted === undefined) {
      counted = new Map<string, DomainSpec>();
      this.counted.set(hostId, counted);
    }
    const before = counted.get(name);
    const after = domain !== undefined && isActive(domain.state) ? domain.live : null;
    if (before === (after ?? undefined)) return;
    if (before !== undefined) this.account(hostId, name, before, -1);
    if (after !== null) {
      assert(after !== null, `active domain ${name} on ${hostId} has no live definition`);
      counted.set(name, after);
      this.account(hostId, name, after, +1);
    } else {
      counted.delete(name);
    }
  }

  /** Adds (`sign` +1) or removes (-1) an active domain's use, marking what it touches. */
  private account(hostId: string, name: string, spec: DomainSpec, sign: 1 | -1): void {
    add(this.running, hostId, sign * spec.vcpus, sign * spec.memoryMb);
    this.dirtyHosts.add(hostId);
    let hosts = this.activeOn.get(name);
    if (hosts === undefined) {
      hosts = new Set<string>();
      this.activeOn.set(name, hosts);
    }
    if (sign > 0) hosts.add(hostId);
    else hosts.delete(hostId);
    if (hosts.size === 0) this.activeOn.delete(name);
    this.dirtyVms.add(name);
    for (const disk of spec.disks) {
      let users = this.diskUsers.get(disk.source);
      if (users === undefined) {
        users = new Map<string, number>();
        this.diskUsers.set(disk.source, users);
      }
      count(users, name, sign);
      if (users.size === 0) this.diskUsers.delete(disk.source);
      this.dirtyDisks.add(disk.source);
    }
  }

  /** A dataset of storage node `nodeId` was created or destroyed. */
  private onDataset(nodeId: string, name: string, present: boolean): void {
    this.changes++;
    if (IMAGE_DATASET.test(name)) return;
    const id = datasetResource(name);
    const key = `${nodeId}\0${name}`;
    let keys = this.datasetsOf.get(id);
    if (present) {
      if (keys === undefined) {
        keys = new Set<string>();
        this.datasetsOf.set(id, keys);
      }
      keys.add(key);
    } else if (keys !== undefined) {
      keys.delete(key);
      if (keys.size === 0) this.datasetsOf.delete(id);
    }
    if (present) this.checkOrphanDataset(key, id);
    else this.orphanDatasets.delete(key);
  }

  private checkOrphanDomain(hostId: string, name: string): void {
    const key = `${hostId}\0${name}`;
    const exists = this.definedOn.get(name)?.has(hostId) === true;
    const projection = this.projections.get(name);
    const vm = projection === undefined ? undefined : anyRowOf(projection);
    const placedHere =
      vm !== undefined && vm.type === 'virtualMachine' && !isRemoved(vm) && vm.hostId === hostId;
    if (exists && !placedHere) this.orphanDomains.add(key);
    else this.orphanDomains.delete(key);
  }

  private checkOrphanDataset(key: string, id: string): void {
    const projection = this.projections.get(id);
    const live = projection !== undefined && !isRemoved(anyRowOf(projection));
    if (live) this.orphanDatasets.delete(key);
    else this.orphanDatasets.add(key);
  }
}

/** How stale (simulated ms) a cached answer of the full liveness recomputation may be. */
const GOAL_RECHECK_MS = 1_000;

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
