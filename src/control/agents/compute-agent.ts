/**
 * The compute agent: one per compute host, the only process that drives the host's hypervisor. It
 * applies `vm.ensure` commands from the main loop idempotently, rejects commands whose fencing
 * token is older than the newest seen for the VM, reports a result for every command and the full
 * inventory after commands, periodically and at start, and destroys domains that no live VM row
 * places on this host (orphans: left behind by a deleted VM, an evacuation or a lost command).
 * The commands, fences, results and inventories are the agent loop's (agent-service.ts); this file
 * says how a command drives libvirt, what an orphan is and what the inventory holds.
 *
 * Crash-only: a restart is a normal start. The per-VM work queue, the fencing memory and the
 * inventory pump are caches; the store's fences and the hypervisor's domains are the truth, and
 * the main loop re-sends every command until it observes the effect.
 */
import { assert } from '../../lib/assert.ts';
import type { VmEnsureCommand, CommandDisk } from '../../model/commands.ts';
import { type VmRow } from '../../model/resources.ts';
import type { Projection } from '../../ports/event-store.ts';
import type {
  DomainDisk,
  DomainInfo,
  DomainSpec,
  HostCapacity,
  Hypervisor,
} from '../../ports/hypervisor.ts';
import { describe, hasReason, rethrowBug, tolerating } from './agent-kit.ts';
import {
  AGENT_DEFAULTS,
  AgentService,
  type AgentDeps,
  type AgentOptions,
} from './agent-service.ts';

/** Tunables of the compute agent. */
export interface ComputeAgentOptions extends AgentOptions {
  /** How long a graceful shutdown may take before the domain is destroyed, ms. Default 30 000. */
  readonly shutdownTimeoutMs: number;
  /** How often to look whether a shutting-down guest is off, ms. Default 1 000. */
  readonly shutdownPollMs: number;
  /**
   * Only domains whose names start with this are cloudbed's (and may be collected as orphans);
   * other domains on the host are left alone. Default `vm-`.
   */
  readonly orphanPrefix: string;
}

/** Defaults of {@link ComputeAgentOptions}. */
export const COMPUTE_AGENT_DEFAULTS: ComputeAgentOptions = {
  ...AGENT_DEFAULTS,
  shutdownTimeoutMs: 30_000,
  shutdownPollMs: 1_000,
  orphanPrefix: 'vm-',
};

/** What the compute agent needs. */
export interface ComputeAgentDeps extends AgentDeps<ComputeAgentOptions> {
  readonly hypervisor: Hypervisor;
  /**
   * Turns a command's disk into the path this hypervisor attaches (a host-local mount of the
   * storage node's export, say). Default: the command's `source` as is.
   */
  readonly storagePaths?: (disk: CommandDisk) => string;
}

/**
 * Runs the compute agent until `deps.signal` aborts (forever without one). Rejects only on a bug
 * (a failed assertion); port failures are reported in results and retried by the main loop.
 */
export function runComputeAgent(deps: ComputeAgentDeps): Promise<void> {
  return new ComputeAgent(deps).service.start();
}

class ComputeAgent {
  readonly service: AgentService<
    'vm.ensure',
    ComputeAgentOptions,
    HostCapacity,
    readonly DomainInfo[]
  >;
  private readonly options: ComputeAgentOptions;

  constructor(private readonly deps: ComputeAgentDeps) {
    const { hypervisor } = deps;
    this.service = new AgentService(deps, COMPUTE_AGENT_DEFAULTS, {
      commands: ['vm.ensure'],
      place: 'a compute host',
      port: 'hypervisor',
      apply: (command) => this.apply(command),
      housekeeping: () => this.collectOrphans(),
      capacity: () => this.service.call('capacity', hypervisor.capacity()),
      contents: () => this.service.call('listDomains', hypervisor.listDomains()),
      inventory: (capacity, domains) => ({
        kind: 'compute',
        domains: domains.map((d) => ({
          name: d.name,
          state: d.state,
          vcpus: d.vcpus,
          memoryMb: d.memoryMb,
          disks: d.disks.map((disk) => ({ target: disk.target, source: disk.source })),
        })),
        capacity: { vcpus: capacity.vcpus, memoryMb: capacity.memoryMb },
      }),
    });
    this.options = this.service.options;
    const o = this.options;
    assert(o.shutdownTimeoutMs >= 0, 'shutdownTimeoutMs must be >= 0');
    assert(o.shutdownPollMs > 0, 'shutdownPollMs must be > 0');
  }

  // ---- commands ----

  private async apply(command: VmEnsureCommand): Promise<void> {
    const spec: DomainSpec = {
      name: command.vmId,
      vcpus: command.spec.vcpus,
      memoryMb: command.spec.memoryMb,
      disks: command.spec.disks.map((disk) => ({
        target: disk.target,
        source: this.deps.storagePaths?.(disk) ?? disk.source,
      })),
    };
    switch (command.power) {
      case 'running':
        return this.ensureRunning(spec);
      case 'stopped':
        return this.ensureStopped(spec);
      case 'absent':
        return this.ensureAbsent(spec.name);
    }
  }

  /**
   * Define if absent, redefine if shut off with another definition (a running domain keeps its live
   * one: changing it needs a stop, which the main loop orders), start if not active. A paused
   * domain is active and left as it is: the port cannot resume it, and destroying a guest paused on
   * an I/O error would lose its memory.
   */
  private async ensureRunning(spec: DomainSpec): Promise<void> {
    const domain = await this.get(spec.name);
    if (domain === null || (!isActive(domain) && !sameDefinition(domain, spec))) {
      await this.service.call('define', this.deps.hypervisor.define(spec));
    }
    if (domain === null || !isActive(domain)) {
      try {
        await this.service.call('start', this.deps.hypervisor.start(spec.name));
      } catch (error) {
        // Someone (a previous incarnation's start whose reply was lost) was faster: the goal holds.
        if (!hasReason(error, 'already-running')) throw error;
      }
    }
  }

  /** Shut down gracefully (destroy after a bounded wait), then define or redefine while off. */
  private async ensureStopped(spec: DomainSpec): Promise<void> {
    let domain = await this.get(spec.name);
    if (domain !== null && isActive(domain)) {
      await this.powerOff(domain);
      domain = await this.get(spec.name);
    }
    if (domain === null || !sameDefinition(domain, spec)) {
      await this.service.call('define', this.deps.hypervisor.define(spec));
    }
  }

  private async powerOff(domain: DomainInfo): Promise<void> {
    const { hypervisor, runtime } = this.deps;
    if (domain.state === 'running') {
      try {
        await this.service.call('shutdown', hypervisor.shutdown(domain.name));
        const deadline = runtime.clock.nowMs() + this.options.shutdownTimeoutMs;
        while (runtime.clock.nowMs() < deadline) {
          await runtime.clock.sleep(this.options.shutdownPollMs);
          const now = await this.get(domain.name);
          if (now === null || !isActive(now)) return;
        }
      } catch (error) {
        // It stopped by itself between our look and the request: nothing left to do.
        if (!hasReason(error, 'not-running')) throw error;
        return;
      }
    }
    await this.destroy(domain.name);
  }

  /** Destroy if active, then undefine. Both tolerate a domain that is already gone. */
  private async ensureAbsent(name: string): Promise<void> {
    const domain = await this.get(name);
    if (domain === null) return;
    if (isActive(domain)) await this.destroy(name);
    try {
      await this.service.call('undefine', this.deps.hypervisor.undefine(name));
    } catch (error) {
      if (hasReason(error, 'no-domain')) return;
      // Started again meanwhile, or transient: pull the plug (a transient domain then vanishes).
      if (!hasReason(error, 'domain-active')) throw error;
      await this.destroy(name);
      if ((await this.get(name)) !== null) {
        await this.service.call('undefine', this.deps.hypervisor.undefine(name));
      }
    }
  }

  private destroy(name: string): Promise<void> {
    const call = this.service.call('destroy', this.deps.hypervisor.destroy(name));
    return tolerating(call, 'not-running', 'no-domain');
  }

  private get(name: string): Promise<DomainInfo | null> {
    return this.service.call('getDomain', this.deps.hypervisor.getDomain(name));
  }

  // ---- orphans ----

  /**
   * Destroys and undefines every cloudbed domain that no live VM row places on this host. A domain
   * only exists after a command for it, and commands follow the row's commit, so a domain without
   * a row is one whose VM is gone. Domains with work queued are skipped (the command knows
   * better); store errors skip the domain until the next round: never destroy on a guess.
   */
  private async collectOrphans(): Promise<void> {
    const { runtime } = this.deps;
    let domains: readonly DomainInfo[];
    try {
      domains = await this.service.call('listDomains', this.deps.hypervisor.listDomains());
    } catch (error) {
      runtime.log.warn('agent.orphan-scan-failed', { error: describe(error) });
      return;
    }
    // One read of the VMs on this host spares a read per domain: a domain whose VM is placed here
    // is no orphan. Every other domain is read fresh before anything is destroyed.
    let placedHere: Set<string>;
    try {
      const rows = await this.service.rowsOn('virtualMachine', this.deps.hostId);
      placedHere = new Set(
        rows.filter((row) => orphanReason(row, this.deps.hostId) === null).map((r) => r.stream),
      );
    } catch (error) {
      runtime.log.warn('agent.orphan-scan-failed', { error: describe(error) });
      return;
    }
    for (const domain of domains) {
      if (!domain.name.startsWith(this.options.orphanPrefix)) continue;
      if (placedHere.has(domain.name) || this.service.queue.busy(domain.name)) continue;
      await this.service.housekeep(domain.name, () => this.collectIfOrphan(domain.name));
    }
  }

  private async collectIfOrphan(name: string): Promise<void> {
    const { runtime, hostId } = this.deps;
    let row: Projection | null;
    try {
      row = await this.service.projection(name);
    } catch (error) {
      runtime.log.warn('agent.orphan-check-failed', { name, error: describe(error) });
      return;
    }
    const why = orphanReason(row, hostId);
    if (why === null) return;
    runtime.log.info('agent.orphan', { name, why });
    try {
      await this.ensureAbsent(name);
    } catch (error) {
      rethrowBug(error);
      runtime.log.warn('agent.orphan-collect-failed', { name, error: describe(error) });
    }
  }
}

/** libvirt's "active": a qemu process exists (running or paused). */
function isActive(domain: DomainInfo): boolean {
  return domain.state === 'running' || domain.state === 'paused';
}

/** Same vCPUs, memory and disks (by target; disk order in the definition does not matter). */
export function sameDefinition(domain: DomainSpec, spec: DomainSpec): boolean {
  if (domain.vcpus !== spec.vcpus || domain.memoryMb !== spec.memoryMb) return false;
  if (domain.disks.length !== spec.disks.length) return false;
  // Targets are unique within a valid definition; the source breaks ties in an invalid one.
  const byTarget = (a: DomainDisk, b: DomainDisk): number =>
    a.target !== b.target ? (a.target < b.target ? -1 : 1) : a.source.localeCompare(b.source);
  const left = [...domain.disks].sort(byTarget);
  const right = [...spec.disks].sort(byTarget);
  return left.every(
    (disk, i) => disk.target === right[i]?.target && disk.source === right[i]?.source,
  );
}

/**
 * Why a domain on `hostId` is an orphan given its VM's projection, or null if it belongs here:
 * no row (the VM is gone), a removed row, a row of another type, or a VM placed elsewhere (or
 * unplaced: evacuated, so it must not run here).
 */
export function orphanReason(row: Projection | null, hostId: string): string | null {
  if (row === null) return 'no-row';
  if (row.type !== 'virtualMachine') return 'not-a-vm';
  const vm = row.data as unknown as VmRow;
  if (vm.removed !== null && vm.removed !== undefined) return 'removed';
  if (vm.hostId !== hostId) return vm.hostId === null ? 'unplaced' : 'placed-elsewhere';
  return null;
}
