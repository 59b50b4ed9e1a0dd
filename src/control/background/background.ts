/**
 * The background service: turns what agents report into events. It subscribes to the reports
 * channel and records
 * - observations (`vm.observed`, `volume.observed`, `snapshot.observed`) from inventories, only
 *   when they change, so the log grows with changes and not with every inventory;
 * - results (`*.command-reported`, with a `*.progress-reported` transitioning message) for the
 *   command a resource is waiting on;
 * - host liveness: `host.up` on the first report, when reports resume or capacity changes;
 *   `host.down` after `hostDownAfterMs` without any report;
 * - usage (`usage.recorded` on the account's usage stream): VM-hours and GB-hours, at most once
 *   per `usageIntervalMs` per resource plus once per change of a billable observation.
 * Every write uses optimistic concurrency: read, decide, append with the expected versions, and on
 * a conflict re-read and decide again, a bounded number of times. After a commit it publishes a
 * change notice so the main loop wakes.
 *
 * Crash-only: the only memory is when each host last reported (after a restart every host gets a
 * fresh `hostDownAfterMs` of grace, which only delays a down verdict) and the newest inventory time
 * per host (against reordered deliveries). Everything else is re-read from the store.
 */
import { assert } from '../../lib/assert.ts';
import type { InventoryReport, ResultReport } from '../../model/commands.ts';
import { newEvent, type EventDataMap, type EventType } from '../../model/events.ts';
import {
  usageStreamId,
  type HostRow,
  type ReconciledRow,
  type SnapshotRow,
  type UsageRow,
  type VmRow,
  type VolumeRow,
} from '../../model/resources.ts';
import { CHANNELS, type BusMessage } from '../../ports/bus.ts';
import {
  ConcurrencyError,
  type NewEvent,
  type Projection,
  type StreamAppend,
} from '../../ports/event-store.ts';
import {
  describe,
  publishQuietly,
  rethrowBug,
  SERVICE_DEFAULTS,
  Service,
  type ServiceDeps,
  type ServiceOptions,
} from '../agents/agent-kit.ts';
import {
  observeHostDown,
  observeHostUp,
  observeSnapshot,
  observeVm,
  observeVolume,
} from './observe.ts';
import { checkReport } from './report-shape.ts';
import { usageRecord } from './usage.ts';

/** Tunables of the background service. */
export interface BackgroundOptions extends ServiceOptions {
  /** A host with no report for this long is `down`, ms. Default 30 000 (3 inventory intervals). */
  readonly hostDownAfterMs: number;
  /** Period of the host-liveness check (and of the usage sweep's clock), ms. Default 5 000. */
  readonly checkIntervalMs: number;
  /** A steady resource gets a usage record once its unrecorded span is this long, ms. Default 1 h. */
  readonly usageIntervalMs: number;
  /** Period of the usage sweep over every VM and volume, ms. Default 60 000. */
  readonly usageSweepIntervalMs: number;
  /** Attempts of one write before giving up until the next report, >= 1. Default 5. */
  readonly appendAttemptsMax: number;
  /** Inventories taken longer ago than this (agent clock) are dropped as stale, ms. Default 60 000. */
  readonly reportAgeMaxMs: number;
}

/** Defaults of {@link BackgroundOptions}. */
export const BACKGROUND_DEFAULTS: BackgroundOptions = {
  ...SERVICE_DEFAULTS,
  hostDownAfterMs: 30_000,
  checkIntervalMs: 5_000,
  usageIntervalMs: 3_600_000,
  usageSweepIntervalMs: 60_000,
  appendAttemptsMax: 5,
  reportAgeMaxMs: 60_000,
};

/**
 * What the background service needs. Its work queue is keyed per host (inventories) and per
 * resource (results): `queueResourcesMax` bounds the reports queued at once.
 */
export type BackgroundDeps = ServiceDeps<BackgroundOptions>;

/** Runs the background service until `deps.signal` aborts (forever without one). Rejects only on a bug. */
export function runBackground(deps: BackgroundDeps): Promise<void> {
  return new Background(deps).run();
}

/** One atomic write: appends plus the change notices to publish after it commits. */
interface Plan {
  readonly appends: readonly StreamAppend[];
  readonly notices: readonly { readonly stream: string; readonly resourceType: string }[];
}

/** Rows the background observes: from inventories, and hosts from their silence. */
type ObservedRow = VmRow | VolumeRow | SnapshotRow | HostRow;

/** Events that record an observation of an {@link ObservedRow}. */
type ObservedEvent =
  'vm.observed' | 'volume.observed' | 'snapshot.observed' | 'host.up' | 'host.down';

/** A row as the store holds it: the projection (stream, version) and its data. */
interface Fresh<R> {
  readonly projection: Projection;
  readonly row: R;
}

/** True for the rows that accrue usage (VMs and volumes). */
function isBillable(fresh: Fresh<ObservedRow>): fresh is Fresh<VmRow | VolumeRow> {
  return fresh.row.type === 'virtualMachine' || fresh.row.type === 'volume';
}

const PREFIX: Record<ReconciledRow['type'], 'vm' | 'volume' | 'snapshot'> = {
  virtualMachine: 'vm',
  volume: 'volume',
  snapshot: 'snapshot',
};

class Background {
  private readonly service: Service<BackgroundOptions>;
  private readonly options: BackgroundOptions;
  /** Host id → clock time of its last report. */
  private readonly lastSeen = new Map<string, number>();
  /** Host id → agent time of the newest inventory processed. */
  private readonly newestInventory = new Map<string, number>();
  private readonly startedAtMs: number;
  private lastUsageSweepMs: number;

  constructor(private readonly deps: BackgroundDeps) {
    this.service = new Service(deps, BACKGROUND_DEFAULTS);
    this.options = this.service.options;
    const o = this.options;
    assert(o.hostDownAfterMs > 0, 'hostDownAfterMs must be > 0');
    assert(o.usageIntervalMs > 0, 'usageIntervalMs must be > 0');
    assert(o.usageSweepIntervalMs > 0, 'usageSweepIntervalMs must be > 0');
    assert(Number.isInteger(o.appendAttemptsMax) && o.appendAttemptsMax >= 1, 'appendAttemptsMax');
    this.startedAtMs = deps.runtime.clock.nowMs();
    this.lastUsageSweepMs = this.startedAtMs;
  }

  run(): Promise<void> {
    return this.service.run(
      CHANNELS.reports,
      (message) => this.onMessage(message),
      this.options.checkIntervalMs,
      () => this.tick(),
    );
  }

  private now(): number {
    return this.deps.runtime.clock.nowMs();
  }

  // ---- reports ----

  private onMessage(message: BusMessage): void {
    const checked = checkReport(message);
    const { log } = this.deps.runtime;
    if (typeof checked === 'string') {
      log.warn('background.bad-report', { type: message.type, problem: checked });
      return;
    }
    const { report, atMs } = checked;
    const now = this.now();
    if (report.type === 'result') {
      if (report.hostId !== undefined) this.seen(report.hostId, now);
      this.service.queue.enqueue(`result:${report.resource}`, {
        kind: 'command',
        run: () => this.guarded('result', () => this.onResult(report)),
      });
      return;
    }
    if (atMs !== null) {
      // Delayed or reordered on the bus: a newer inventory of this host was already taken.
      const newest = this.newestInventory.get(report.hostId);
      if ((newest !== undefined && atMs < newest) || now - atMs > this.options.reportAgeMaxMs) {
        log.info('background.stale-inventory', { hostId: report.hostId, atMs });
        return;
      }
      this.newestInventory.set(report.hostId, atMs);
    }
    this.seen(report.hostId, now);
    this.service.queue.enqueue(`inventory:${report.hostId}`, {
      kind: 'command',
      run: () => this.guarded('inventory', () => this.onInventory(report)),
    });
  }

  private seen(hostId: string, now: number): void {
    this.lastSeen.set(hostId, Math.max(now, this.lastSeen.get(hostId) ?? now));
  }

  /** Runs report work; port errors are logged (the next report retries), bugs go to `fatal`. */
  private async guarded(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      rethrowBug(error);
      this.deps.runtime.log.warn('background.failed', { what, error: describe(error) });
    }
  }

  private async onInventory(report: InventoryReport): Promise<void> {
    const hostId = report.hostId;
    const capacity = {
      vcpus: report.capacity.vcpus ?? null,
      memoryMb: report.capacity.memoryMb ?? null,
      poolSizeBytes: report.capacity.poolSizeBytes ?? null,
    };
    await this.commit(`host.up ${hostId}`, () =>
      this.reobserve<HostRow, 'host.up'>(hostId, 'host', 'host.up', (host) =>
        observeHostUp(host, capacity),
      ),
    );
    if (report.kind === 'compute') {
      const domains = new Map(report.domains.map((d) => [d.name, d]));
      await this.observeEach<VmRow, 'vm.observed'>(
        'virtualMachine',
        'vm.observed',
        (vm) => observeVm(vm, hostId, domains),
        hostId,
      );
      return;
    }
    const datasets = new Map(report.datasets.map((d) => [d.name, d]));
    await this.observeEach<VolumeRow, 'volume.observed'>(
      'volume',
      'volume.observed',
      (volume) => observeVolume(volume, hostId, datasets),
      hostId,
    );
    await this.observeEach<SnapshotRow, 'snapshot.observed'>(
      'snapshot',
      'snapshot.observed',
      (snapshot) => observeSnapshot(snapshot, hostId, datasets),
      hostId,
    );
  }

  /**
   * Records a result for the command its resource waits on (the row's last command), once.
   * Results of older commands are history the row does not need. While the resource is
   * transitioning, the result also becomes its transitioning message.
   */
  private async onResult(report: ResultReport): Promise<void> {
    await this.commit(`result ${report.commandId}`, async () => {
      const projection = await this.get(report.resource);
      if (projection === null) return null;
      const type = projection.type;
      if (type !== 'virtualMachine' && type !== 'volume' && type !== 'snapshot') return null;
      const row = projection.data as unknown as ReconciledRow;
      if (row.removed !== null) return null;
      const command = row.lastCommand;
      if (command === null || command.commandId !== report.commandId) return null;
      if (row.lastResult?.commandId === report.commandId) return null;
      const prefix = PREFIX[type];
      const error = report.error ?? null;
      const where = report.hostId ?? command.hostId;
      const events = [
        this.event(
          `${prefix}.command-reported`,
          { commandId: report.commandId, ok: report.ok, error },
          report.commandId,
        ),
      ];
      if (row.transitioning === 'yes') {
        const progress = report.ok
          ? { message: `${command.command} (${command.goal}) done on ${where}`, progress: 90 }
          : {
              message: `${command.command} failed on ${where}: ${error ?? 'error'}`,
              progress: null,
            };
        events.push(this.event(`${prefix}.progress-reported`, progress, report.commandId));
      }
      return this.single(projection, events);
    });
  }

  // ---- periodic work ----

  private async tick(): Promise<void> {
    await this.guarded('host check', () => this.checkHosts());
    if (this.now() - this.lastUsageSweepMs >= this.options.usageSweepIntervalMs) {
      this.lastUsageSweepMs = this.now();
      await this.guarded('usage sweep', () => this.sweepUsage());
    }
  }

  /** `host.down` for every online host silent for `hostDownAfterMs`. */
  private async checkHosts(): Promise<void> {
    const { hostDownAfterMs } = this.options;
    // On the re-read this reads the memory again too: a report may have arrived meanwhile.
    await this.observeEach<HostRow, 'host.down'>('host', 'host.down', (host) =>
      observeHostDown(
        host,
        this.lastSeen.get(host.id) ?? this.startedAtMs,
        this.now(),
        hostDownAfterMs,
      ),
    );
  }

  /** Usage records for every account with a steady billable resource due a record. */
  private async sweepUsage(): Promise<void> {
    const now = this.now();
    const accounts = new Set<string>();
    const due = (row: VmRow | VolumeRow): boolean =>
      usageRecord(row, {}, now, this.options.usageIntervalMs) !== null;
    for (const vm of await this.rowsOf<VmRow>('virtualMachine'))
      if (due(vm)) accounts.add(vm.accountId);
    for (const v of await this.rowsOf<VolumeRow>('volume')) if (due(v)) accounts.add(v.accountId);
    for (const accountId of [...accounts].sort()) {
      await this.commit(`usage ${accountId}`, async () => {
        const stream = usageStreamId(accountId);
        const usage = await this.get(stream);
        const until = usage === null ? {} : (usage.data as unknown as UsageRow).recordedUntilMs;
        const at = this.now();
        const rows: (VmRow | VolumeRow)[] = [
          ...(await this.rowsOf<VmRow>('virtualMachine', { accountId })),
          ...(await this.rowsOf<VolumeRow>('volume', { accountId })),
        ];
        const events: NewEvent[] = [];
        for (const row of rows) {
          const record = usageRecord(row, until, at, this.options.usageIntervalMs);
          if (record !== null) events.push(this.event('usage.recorded', record));
        }
        if (events.length === 0) return null;
        return {
          appends: [{ stream, expectedVersion: usage?.version ?? 0, events }],
          notices: [],
        };
      });
    }
  }

  // ---- observing ----

  /**
   * Records the `eventType` event `observe` makes of each row of `type`, one commit per row: a row
   * it says nothing about costs no write; the others are re-read and observed again inside their
   * commit.
   */
  private async observeEach<R extends ObservedRow, T extends ObservedEvent>(
    type: R['type'],
    eventType: T,
    observe: (row: R) => EventDataMap[T] | null,
    host?: string,
  ): Promise<void> {
    // An inventory speaks only for rows placed on or last seen on its host (observe.ts): those are
    // the rows listed under the host, so an inventory costs what the host holds, not the cloud.
    for (const row of await this.rowsOf<R>(type, host === undefined ? {} : { host })) {
      if (observe(row) === null) continue;
      await this.commit(`${eventType} ${row.id}`, () =>
        this.reobserve(row.id, type, eventType, observe),
      );
    }
  }

  /**
   * A `commit` decision: re-reads row `stream` and records the `eventType` event `observe` makes
   * of it, or nothing. A VM's or volume's observation also records the usage it ends.
   */
  private async reobserve<R extends ObservedRow, T extends ObservedEvent>(
    stream: string,
    type: R['type'],
    eventType: T,
    observe: (row: R) => EventDataMap[T] | null,
  ): Promise<Plan | null> {
    const fresh = await this.rowOf<R>(stream, type);
    const observed = fresh === null ? null : observe(fresh.row);
    if (fresh === null || observed === null) return null;
    const event = this.event(eventType, observed);
    return isBillable(fresh)
      ? this.observation(fresh, event)
      : this.single(fresh.projection, [event]);
  }

  // ---- writing ----

  /**
   * An observation of a VM or volume, with the usage its previous observation accrued since its
   * last record (when it was billable), in one atomic batch: the span ends exactly where the new
   * observation starts.
   */
  private async observation(fresh: Fresh<VmRow | VolumeRow>, event: NewEvent): Promise<Plan> {
    const plan = this.single(fresh.projection, [event]);
    const stream = usageStreamId(fresh.row.accountId);
    const usage = await this.get(stream);
    const until = usage === null ? {} : (usage.data as unknown as UsageRow).recordedUntilMs;
    const record = usageRecord(fresh.row, until, event.meta.atMs, 0);
    if (record === null) return plan;
    return {
      appends: [
        ...plan.appends,
        {
          stream,
          expectedVersion: usage?.version ?? 0,
          events: [this.event('usage.recorded', record)],
        },
      ],
      notices: plan.notices,
    };
  }

  private single(projection: Projection, events: readonly NewEvent[]): Plan {
    return {
      appends: [{ stream: projection.stream, expectedVersion: projection.version, events }],
      notices: [{ stream: projection.stream, resourceType: projection.type }],
    };
  }

  private event<T extends EventType>(
    type: T,
    data: EventDataMap[T],
    causationId?: string,
  ): NewEvent {
    return newEvent(type, data, {
      atMs: this.now(),
      actor: 'background',
      ...(causationId === undefined ? {} : { causationId }),
    });
  }

  /**
   * Decides and appends, re-deciding on a concurrency conflict up to `appendAttemptsMax` times.
   * `decide` re-reads what it needs on every attempt and returns null when nothing is to be done.
   * Other store errors end the attempt: the next report or tick tries again (level-triggered).
   */
  private async commit(label: string, decide: () => Promise<Plan | null>): Promise<void> {
    const { runtime, store, bus } = this.deps;
    for (let attempt = 1; attempt <= this.options.appendAttemptsMax; attempt++) {
      const plan = await decide();
      if (plan === null) return;
      try {
        await this.service.bounded(store.append({ appends: plan.appends }), 'store.append');
      } catch (error) {
        if (error instanceof ConcurrencyError) continue;
        throw error;
      }
      for (const notice of plan.notices) {
        await publishQuietly(runtime, bus, CHANNELS.changes, { type: 'changed', ...notice });
      }
      return;
    }
    runtime.log.warn('background.gave-up', { label, attempts: this.options.appendAttemptsMax });
  }

  // ---- reading ----

  private get(stream: string): Promise<Projection | null> {
    return this.service.projection(stream);
  }

  private async rowOf<R extends { readonly type: string }>(
    stream: string,
    type: R['type'],
  ): Promise<Fresh<R> | null> {
    const projection = await this.get(stream);
    if (projection === null || projection.type !== type) return null;
    return { projection, row: projection.data as unknown as R };
  }

  private async rowsOf<R>(
    type: string,
    filter: { readonly accountId?: string; readonly host?: string } = {},
  ): Promise<R[]> {
    const rows = await this.service.bounded(
      this.deps.store.list({ type, ...filter }),
      'store.list',
    );
    return rows.map((p) => p.data as unknown as R);
  }
}
