/**
 * A pure, synchronous test bed for the model: a ledger that appends events with the store's
 * version rules and folds them with the real projector, and an ideal (optionally lossy) set of
 * agents that apply commands to in-memory hosts and report observations only on change, as the
 * background does. Tests drive plan → stepWrite → ledger → agents by hand, with no ports, no
 * promises and no clock but a number, so model properties run thousands of cases in seconds.
 */
import { assert } from '../../../src/lib/assert.ts';
import type { AgentCommand } from '../../../src/model/commands.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../../src/model/backoff.ts';
import { decideCreateHost, type Decision } from '../../../src/model/decide.ts';
import { newEvent, type EventDataMap, type EventType } from '../../../src/model/events.ts';
import { plan, stepWrite, type Step } from '../../../src/model/plan.ts';
import { projector } from '../../../src/model/projector.ts';
import {
  anyRowOf,
  BYTES_PER_GB,
  rowOf,
  volumeIdOfDiskSource,
  type ObservedDomain,
  type ReconciledRow,
  type Row,
} from '../../../src/model/resources.ts';
import type { Projection, StoredEvent, StreamAppend } from '../../../src/model/stream.ts';
import { World } from '../../../src/model/world.ts';

/** Deterministic ids: `<prefix>-<8 hex>` counting up. */
export class CountingIds {
  private n = 0;
  next(prefix: string): string {
    this.n++;
    return `${prefix}-${this.n.toString(16).padStart(8, '0')}`;
  }
}

/** Thrown when an append's expected version does not match, as the store's ConcurrencyError. */
export class Conflict extends Error {}

/** The event log and projections, with the store's version rules and the real projector. */
export class Ledger {
  readonly rows = new Map<string, Projection>();
  readonly log: StoredEvent[] = [];
  private token = 0;

  /** A fencing token, increasing across the whole test (as lock grants are). */
  nextToken(): number {
    return ++this.token;
  }

  append(appends: readonly StreamAppend[]): void {
    for (const a of appends) {
      const actual = this.rows.get(a.stream)?.version ?? 0;
      if (actual !== a.expectedVersion)
        throw new Conflict(`${a.stream}: expected ${a.expectedVersion}, at ${actual}`);
    }
    for (const a of appends) {
      let current = this.rows.get(a.stream) ?? null;
      for (const e of a.events) {
        const stored: StoredEvent = {
          ...e,
          stream: a.stream,
          version: (current?.version ?? 0) + 1,
          position: this.log.length + 1,
          schemaVersion: e.schemaVersion ?? 1,
        };
        // Round-trip through JSON, as a store does: rows must be plain JSON.
        const next = projector(current, JSON.parse(JSON.stringify(stored)) as StoredEvent);
        assert(next !== null, 'projector deleted a row');
        this.log.push(stored);
        current = JSON.parse(JSON.stringify(next)) as Projection;
        this.rows.set(a.stream, current);
      }
    }
  }

  /** Appends one event to an existing stream at its current version. */
  emit<T extends EventType>(stream: string, type: T, data: EventDataMap[T], atMs: number): void {
    const version = this.rows.get(stream)?.version ?? 0;
    this.append([
      { stream, expectedVersion: version, events: [newEvent(type, data, { atMs, actor: 'test' })] },
    ]);
  }

  /** Applies a decision that must succeed; returns its id. */
  commit(decision: Decision): string {
    assert(decision.ok, `decision failed: ${decision.ok ? '' : JSON.stringify(decision.error)}`);
    this.append(decision.appends);
    return decision.id;
  }

  row(id: string): Row {
    const p = this.rows.get(id);
    assert(p !== undefined, `no row ${id}`);
    return anyRowOf(p);
  }

  /** Every row of a type, sorted by id. */
  list<T extends 'host' | 'virtualMachine' | 'volume' | 'snapshot'>(type: T) {
    return [...this.rows.values()]
      .filter((p) => p.type === type)
      .sort((a, b) => (a.stream < b.stream ? -1 : 1))
      .map((p) => rowOf(p, type));
  }

  world(): World {
    return new World({
      hosts: this.list('host'),
      vms: this.list('virtualMachine'),
      volumes: this.list('volume'),
      snapshots: this.list('snapshot'),
    });
  }
}

interface Domain {
  state: Exclude<ObservedDomain, 'absent'>;
  vcpus: number;
  memoryMb: number;
  disks: string[];
}

/** Ideal agents over in-memory hosts; `dropCommand` decides which commands get lost. */
export class Agents {
  readonly domains = new Map<string, Map<string, Domain>>();
  readonly datasets = new Map<string, Map<string, { sizeBytes: number; origin: string | null }>>();
  readonly snapshots = new Map<string, Set<string>>();
  /** Most vcpus/memory ever running at once per host (for capacity checks). */
  readonly commands: AgentCommand[] = [];
  private newestToken = new Map<string, number>();

  constructor(
    private readonly ledger: Ledger,
    private readonly dropCommand: (command: AgentCommand) => boolean = () => false,
  ) {}

  addHost(id: string, kind: 'compute' | 'storage'): void {
    if (kind === 'compute') this.domains.set(id, new Map());
    else {
      this.datasets.set(id, new Map());
      this.snapshots.set(id, new Set());
    }
  }

  /** Applies a command on `hostId` and reports what changed. */
  apply(hostId: string, command: AgentCommand, atMs: number): void {
    this.commands.push(command);
    if (this.dropCommand(command)) return;
    const resource =
      command.type === 'vm.ensure'
        ? command.vmId
        : command.type === 'snapshot.ensure'
          ? command.snapshotId
          : command.volumeId;
    const newest = this.newestToken.get(resource) ?? 0;
    if (command.token < newest) return;
    this.newestToken.set(resource, command.token);
    switch (command.type) {
      case 'vm.ensure': {
        const domains = this.domains.get(hostId);
        assert(domains !== undefined, `vm.ensure sent to non-compute ${hostId}`);
        if (command.power === 'absent') domains.delete(command.vmId);
        else
          domains.set(command.vmId, {
            state: command.power === 'running' ? 'running' : 'shutoff',
            vcpus: command.spec.vcpus,
            memoryMb: command.spec.memoryMb,
            disks: command.spec.disks.map((d) => volumeIdOfDiskSource(d.source) ?? '?'),
          });
        this.observeVm(command.vmId, hostId, atMs);
        return;
      }
      case 'volume.ensure': {
        const sets = this.datasets.get(hostId);
        assert(sets !== undefined, `volume.ensure sent to non-storage ${hostId}`);
        if (!command.present) {
          sets.delete(command.volumeId);
        } else {
          const existing = sets.get(command.volumeId);
          sets.set(command.volumeId, {
            sizeBytes: Math.max(existing?.sizeBytes ?? 0, command.sizeBytes),
            origin: existing?.origin ?? command.origin,
          });
        }
        this.observeVolume(command.volumeId, hostId, atMs);
        return;
      }
      case 'snapshot.ensure': {
        const snaps = this.snapshots.get(hostId);
        assert(snaps !== undefined, `snapshot.ensure sent to non-storage ${hostId}`);
        if (command.present) snaps.add(command.snapshotId);
        else snaps.delete(command.snapshotId);
        this.observeSnapshot(command.snapshotId, hostId, atMs);
        return;
      }
      case 'volume.restore':
        this.ledger.emit(
          command.volumeId,
          'volume.command-reported',
          { commandId: command.commandId, ok: true, error: null },
          atMs,
        );
        return;
    }
  }

  observeVm(vmId: string, hostId: string, atMs: number): void {
    const d = this.domains.get(hostId)?.get(vmId);
    const row = this.ledger.row(vmId);
    assert(row.type === 'virtualMachine');
    const next = { hostId, domain: d?.state ?? ('absent' as const), disks: d?.disks ?? null };
    const o = row.observed;
    if (
      o !== null &&
      o.hostId === next.hostId &&
      o.domain === next.domain &&
      JSON.stringify(o.disks) === JSON.stringify(next.disks)
    )
      return;
    this.ledger.emit(vmId, 'vm.observed', next, atMs);
  }

  observeVolume(volumeId: string, nodeId: string, atMs: number): void {
    const d = this.datasets.get(nodeId)?.get(volumeId);
    const row = this.ledger.row(volumeId);
    assert(row.type === 'volume');
    const next = {
      storageNodeId: nodeId,
      present: d !== undefined,
      sizeBytes: d?.sizeBytes ?? null,
      origin: d?.origin ?? null,
    };
    const o = row.observed;
    if (
      o !== null &&
      o.storageNodeId === next.storageNodeId &&
      o.present === next.present &&
      o.sizeBytes === next.sizeBytes
    )
      return;
    this.ledger.emit(volumeId, 'volume.observed', next, atMs);
  }

  observeSnapshot(snapshotId: string, nodeId: string, atMs: number): void {
    const present = this.snapshots.get(nodeId)?.has(snapshotId) ?? false;
    const row = this.ledger.row(snapshotId);
    assert(row.type === 'snapshot');
    const o = row.observed;
    if (o !== null && o.storageNodeId === nodeId && o.present === present) return;
    this.ledger.emit(
      snapshotId,
      'snapshot.observed',
      { storageNodeId: nodeId, present, sizeBytes: present ? row.sizeGb * BYTES_PER_GB : null },
      atMs,
    );
  }

  /** vcpus and memory of the domains defined on a host. */
  usage(hostId: string): { vcpus: number; memoryMb: number } {
    let vcpus = 0;
    let memoryMb = 0;
    for (const d of this.domains.get(hostId)?.values() ?? []) {
      vcpus += d.vcpus;
      memoryMb += d.memoryMb;
    }
    return { vcpus, memoryMb };
  }
}

/** Creates a host through decide, and brings it up as its first inventory would. */
export function addHost(
  ledger: Ledger,
  agents: Agents,
  ids: CountingIds,
  input:
    { kind: 'compute'; vcpus: number; memoryMb: number } | { kind: 'storage'; poolSizeGb: number },
  atMs = 0,
): string {
  const name = `h${ledger.list('host').length + 1}`;
  const id = ledger.commit(
    decideCreateHost({ name, ...input }, ledger.list('host'), { nowMs: atMs, ids }),
  );
  agents.addHost(id, input.kind);
  ledger.emit(
    id,
    'host.up',
    input.kind === 'compute'
      ? { vcpus: input.vcpus, memoryMb: input.memoryMb, poolSizeBytes: null }
      : { vcpus: null, memoryMb: null, poolSizeBytes: input.poolSizeGb * BYTES_PER_GB },
    atMs,
  );
  return id;
}

/** Options of {@link reconcileAll}. */
export interface ReconcileOptions {
  readonly policy?: RetryPolicy;
  /** Most passes before giving up. */
  readonly maxPasses?: number;
  /** Called after every write with the step taken. */
  readonly onStep?: (row: ReconciledRow, step: Step) => void;
  /** Return (instead of throwing) after this many passes: a partial reconciliation. */
  readonly stopAfterPasses?: number;
}

/**
 * Runs the planner over every row until nothing is left to do, jumping the clock to the next
 * attempt deadline when only waiting remains. Returns the final time.
 */
export function reconcileAll(
  ledger: Ledger,
  agents: Agents,
  ids: CountingIds,
  startMs: number,
  options: ReconcileOptions = {},
): number {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY;
  let now = startMs;
  for (let pass = 0; pass < (options.maxPasses ?? 500); pass++) {
    if (options.stopAfterPasses !== undefined && pass >= options.stopAfterPasses) return now;
    const world = ledger.world();
    let acted = false;
    let nextDue = Number.POSITIVE_INFINITY;
    for (const row of world.reconciled()) {
      const fresh = ledger.row(row.id) as ReconciledRow;
      world.put(fresh);
      const step = plan(fresh, { nowMs: now, world, policy });
      if (step.kind === 'wait' && step.untilMs !== null) nextDue = Math.min(nextDue, step.untilMs);
      const write = stepWrite(fresh, step, {
        nowMs: now,
        commandId: ids.next('cmd'),
        token: ledger.nextToken(),
        policy,
        actor: 'mainloop',
      });
      if (write.appends.length === 0) continue;
      acted = true;
      ledger.append(write.appends);
      for (const a of write.appends) world.put(ledger.row(a.stream));
      options.onStep?.(fresh, step);
      if (write.command !== null && write.hostId !== null)
        agents.apply(write.hostId, write.command, now);
    }
    if (!acted) {
      if (!Number.isFinite(nextDue)) return now;
      now = Math.max(now + 1, nextDue);
    } else {
      now += 1;
    }
  }
  throw new Error('reconcileAll: did not settle');
}
