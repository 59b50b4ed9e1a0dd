/**
 * The simulated compute host: a libvirt-like hypervisor whose domains are world state that outlives
 * the agent processes using it. Agents get port handles bound to their incarnation
 * ({@link SimComputeHost.hypervisorFor}); fault injection calls the host's fault methods (crash,
 * reboot, hang, guest crash and pause). The semantics follow libvirt with qemu/KVM so the same
 * contract suite passes here and against `qemu:///system`:
 *
 * - `define` creates or replaces the persistent definition. A running domain keeps running with its
 *   live definition; the new one applies at its next start. `getDomain`/`listDomains` report the
 *   live definition of an active domain and the persistent one otherwise (as `virsh dumpxml`).
 * - `start` on an active (running or paused) domain: `already-running`. A start whose memory does
 *   not fit beside the active domains' memory: `out-of-memory` (memory is the one admission-checked
 *   resource; vCPUs may be overcommitted, as libvirt allows).
 * - `shutdown` sends ACPI power-off to a running guest and returns; the guest reaches `shutoff` a
 *   guest-shutdown latency later. On a domain that is not running (shut off, crashed or paused):
 *   `not-running` (libvirt: "domain is not running"). A guest that is paused or restarted before
 *   its power-off completes drops the request.
 * - `destroy` on a running or paused domain: `shutoff` at once; otherwise `not-running`.
 * - `undefine` of an inactive domain removes it. Of an active persistent domain it does what real
 *   libvirt does: the domain becomes transient — it keeps running, is still listed, and vanishes
 *   when it stops. `undefine` of a transient domain: `domain-active` (libvirt: "cannot undefine
 *   transient domain"). The port's JSDoc says "`domain-active` if it still runs"; the contract
 *   suite pins libvirt's actual behaviour instead.
 * - `crashed` is libvirt's "shut off (crashed)": inactive, startable, not destroyable.
 * - Unknown names: `no-domain`. Invalid specs: `invalid-definition`, including disk targets libvirt
 *   cannot name (it accepts `vda`, `sdb`, `hdc`… — a bus prefix and letters, no partition digits).
 * - A start whose disk image does not exist ({@link SimComputeHostOptions.diskPresent}):
 *   `invalid-definition` (libvirt: "Cannot access storage file"), and the domain stays shut off.
 *
 * Host faults: {@link SimComputeHost.crash} kills every domain (persistent ones are `shutoff`
 * afterwards, transient ones are gone) and leaves the host down; while down, every operation —
 * in flight or new — fails with a retryable `unavailable` when its reply is due, without effect.
 * {@link SimComputeHost.reboot} crashes and boots it later. {@link SimComputeHost.hang} stalls
 * libvirtd only: operations complete late, guests keep running and power off on schedule.
 */
import { deepFreeze } from '../../lib/freeze.ts';
import { assert } from '../../lib/assert.ts';
import {
  copyDomainSpec,
  HypervisorError,
  validateDomainSpec,
  type DomainInfo,
  type DomainSpec,
  type DomainState,
  type HostCapacity,
  type Hypervisor,
} from '../../ports/hypervisor.ts';
import type { Incarnation } from '../process.ts';
import type { Simulation } from '../simulation.ts';
import { HostHandle, SimHost } from './host-core.ts';
import { HYPERVISOR_LATENCY, type HypervisorOperation, type LatencyTable } from './latency.ts';

/** Options for {@link SimComputeHost}. */
export interface SimComputeHostOptions {
  readonly sim: Simulation;
  /** The host's id: non-empty, no `/`. Names its PRNG fork `host-<id>`. */
  readonly id: string;
  /** What the host offers; memory is enforced at start, vCPUs are informational. Positive integers. */
  readonly capacity: HostCapacity;
  /** Per-operation latencies replacing {@link HYPERVISOR_LATENCY}'s. */
  readonly latency?: Partial<LatencyTable<HypervisorOperation>>;
  /**
   * Whether a disk image exists at `source` now, asked at every start (libvirt checks disk sources
   * when qemu starts, not at define). Must be a pure function of world state. Default: every image
   * exists.
   */
  readonly diskPresent?: (source: string) => boolean;
}

/** A domain as checkers see it: the port's view plus whether it is persistent. */
export interface SimDomainInfo extends DomainInfo {
  /** False for a running domain that was undefined: it disappears when it stops. */
  readonly persistent: boolean;
}

/** Internal state of one domain. Invariant: `config !== null || isActive(state)`. */
interface Domain {
  readonly name: string;
  /** The persistent definition; null once undefined while active (transient). */
  config: DomainSpec | null;
  /** The definition the domain runs with; null while inactive. */
  live: DomainSpec | null;
  state: DomainState;
  /** Counts starts; an ACPI power-off aimed at an earlier run is void. */
  run: number;
}

/** libvirt's "active": a qemu process exists. */
function isActive(state: DomainState): boolean {
  return state === 'running' || state === 'paused';
}

/**
 * One simulated compute host: its domains, capacity, power state and latencies. World state: it
 * outlives every process that holds one of its port handles.
 */
export class SimComputeHost extends SimHost<HypervisorOperation> {
  readonly capacity: HostCapacity;
  private readonly table = new Map<string, Domain>();
  private readonly watchers: ((name: string) => void)[] = [];
  /** The listing {@link listNow} hands out, until a domain changes. */
  private listed: readonly DomainInfo[] | null = null;

  constructor(private readonly options: SimComputeHostOptions) {
    super(options, {
      forkPrefix: 'host',
      labelPrefix: 'hypervisor',
      latency: HYPERVISOR_LATENCY,
      error: HypervisorError,
    });
    const { capacity } = options;
    assert(
      Number.isSafeInteger(capacity.vcpus) && capacity.vcpus > 0,
      `capacity.vcpus must be a positive integer, got ${capacity.vcpus}`,
    );
    assert(
      Number.isSafeInteger(capacity.memoryMb) && capacity.memoryMb > 0,
      `capacity.memoryMb must be a positive integer, got ${capacity.memoryMb}`,
    );
    this.capacity = { vcpus: capacity.vcpus, memoryMb: capacity.memoryMb };
  }

  /**
   * A `Hypervisor` port handle for one incarnation of an agent; inert once it dies. Every call
   * goes through the host's latency and delivery, and its effect runs when it completes.
   */
  hypervisorFor(incarnation: Incarnation): Hypervisor {
    const handle = new HostHandle(incarnation, this.core, 'hypervisor');
    return {
      capacity: () => handle.call('capacity', '', () => ({ ...this.capacity })),
      listDomains: () => handle.call('list', '', () => this.listNow()),
      getDomain: (name) => handle.call('get', name, () => this.getNow(name)),
      define: (spec) => {
        // Copy now: the caller may reuse its object before the operation completes.
        const requested = copyDomainSpec(spec);
        return handle.call('define', spec.name, () => this.defineNow(requested));
      },
      start: (name) => handle.call('start', name, () => this.startNow(name)),
      shutdown: (name) => handle.call('shutdown', name, () => this.shutdownNow(name)),
      destroy: (name) => handle.call('destroy', name, () => this.destroyNow(name)),
      undefine: (name) => handle.call('undefine', name, () => this.undefineNow(name)),
      close: () => handle.close(),
    };
  }

  // ---- inspection for checkers: synchronous, not part of the port ----

  /** Every domain, sorted by name, as the port would report it, plus persistence. */
  domains(): readonly SimDomainInfo[] {
    return this.sorted().map((d) => ({ ...this.infoOf(d), persistent: d.config !== null }));
  }

  /** One domain's state and live definition, as it is (a view, not a copy), or undefined. */
  domain(
    name: string,
  ): { readonly state: DomainState; readonly live: DomainSpec | null } | undefined {
    return this.table.get(name);
  }

  /**
   * Calls `onChange` with a domain's name after every change of it (state, definition, existence):
   * the checkers keep their indexes from these instead of listing every host after every step.
   */
  watch(onChange: (name: string) => void): void {
    this.watchers.push(onChange);
  }

  /** vCPUs and memory of the active (running or paused) domains. */
  usage(): HostCapacity {
    let vcpus = 0;
    let memoryMb = 0;
    for (const d of this.table.values()) {
      if (d.live !== null) {
        vcpus += d.live.vcpus;
        memoryMb += d.live.memoryMb;
      }
    }
    return { vcpus, memoryMb };
  }

  // ---- faults (crash, boot, reboot and hang are SimHost's; a hang stalls libvirtd only) ----

  /** A guest crash (qemu died): a running or paused domain goes `crashed`. No-op otherwise. */
  crashDomain(name: string): void {
    const d = this.table.get(name);
    if (d === undefined || !isActive(d.state) || this.core.status === 'down') return;
    this.stop(d, 'crashed');
  }

  /** The guest is paused by the hypervisor (e.g. an I/O error on its disk). No-op unless running. */
  pauseDomain(name: string): void {
    const d = this.table.get(name);
    if (d === undefined || d.state !== 'running' || this.core.status === 'down') return;
    this.setState(d, 'paused');
  }

  /** Resumes a paused guest. No-op unless paused. */
  resumeDomain(name: string): void {
    const d = this.table.get(name);
    if (d === undefined || d.state !== 'paused' || this.core.status === 'down') return;
    this.setState(d, 'running');
  }

  // ---- operations: effects run inside the host's world events (see HostCore.request) ----

  /**
   * What `virsh list --all` shows, sorted by name: built once per change of a domain and handed
   * out frozen (callers only read it), so a host's periodic listings cost nothing while nothing
   * changes.
   */
  private listNow(): readonly DomainInfo[] {
    this.listed ??= deepFreeze(this.sorted().map((d) => this.infoOf(d)));
    return this.listed;
  }

  private getNow(name: string): DomainInfo | null {
    const d = this.table.get(name);
    return d === undefined ? null : this.infoOf(d);
  }

  private defineNow(spec: DomainSpec): void {
    // libvirt's parser also refuses disk targets it cannot name, as `unknown disk name`.
    const clean = validateDomainSpec(spec, (disk) =>
      DISK_TARGET.test(disk.target) ? null : `unknown disk name '${disk.target}'`,
    );
    const d = this.table.get(clean.name);
    if (d === undefined) {
      this.table.set(clean.name, {
        name: clean.name,
        config: clean,
        live: null,
        state: 'shutoff',
        run: 0,
      });
      this.core.record('domain.defined', { name: clean.name });
    } else {
      d.config = clean;
      this.core.record('domain.redefined', { name: clean.name });
    }
    this.changed(clean.name);
  }

  private startNow(name: string): void {
    const d = this.lookup(name);
    if (isActive(d.state))
      throw new HypervisorError('already-running', `domain '${name}' is already active`);
    const config = d.config;
    assert(config !== null, `inactive domain ${name} must be persistent`);
    const diskPresent = this.options.diskPresent;
    const missing =
      diskPresent === undefined
        ? undefined
        : config.disks.find((disk) => !diskPresent(disk.source));
    if (missing !== undefined) {
      throw new HypervisorError(
        'invalid-definition',
        `domain '${name}' cannot start: cannot access storage file '${missing.source}'`,
      );
    }
    const used = this.usage().memoryMb;
    if (used + config.memoryMb > this.capacity.memoryMb) {
      throw new HypervisorError(
        'out-of-memory',
        `domain '${name}' needs ${config.memoryMb} MiB; ${this.capacity.memoryMb - used} MiB free on host ${this.id}`,
      );
    }
    d.live = config;
    d.run++;
    this.setState(d, 'running');
  }

  private shutdownNow(name: string): void {
    const d = this.lookup(name);
    if (d.state !== 'running')
      throw new HypervisorError('not-running', `domain '${name}' is not running`);
    // The guest powers off later unless it was paused, stopped or restarted meanwhile, or the host
    // went down: the request belongs to this run of this uptime.
    const run = d.run;
    const epoch = this.core.epoch;
    this.options.sim.schedule({
      delayMs: this.core.latencyOf('guest-shutdown'),
      label: 'hypervisor.guest-shutoff',
      run: () => {
        if (this.core.epoch !== epoch || this.table.get(name) !== d) return;
        if (d.run !== run || d.state !== 'running') return;
        this.stop(d, 'shutoff');
      },
    });
  }

  private destroyNow(name: string): void {
    const d = this.lookup(name);
    if (!isActive(d.state))
      throw new HypervisorError('not-running', `domain '${name}' is not running`);
    this.stop(d, 'shutoff');
  }

  private undefineNow(name: string): void {
    const d = this.lookup(name);
    if (d.config === null) {
      throw new HypervisorError('domain-active', `cannot undefine transient domain '${name}'`);
    }
    if (isActive(d.state)) {
      d.config = null;
      this.core.record('domain.transient', { name });
    } else {
      this.table.delete(name);
      this.core.record('domain.undefined', { name });
    }
    this.changed(name);
  }

  // ---- internals ----

  private lookup(name: string): Domain {
    const d = this.table.get(name);
    if (d === undefined) throw new HypervisorError('no-domain', `no domain named '${name}'`);
    return d;
  }

  private sorted(): Domain[] {
    // Names are unique map keys, so the comparator never sees two equal names.
    return [...this.table.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  private infoOf(d: Domain): DomainInfo {
    const spec = d.live ?? d.config;
    assert(spec !== null, `domain ${d.name} has no definition`);
    return { ...copyDomainSpec(spec), state: d.state };
  }

  private setState(d: Domain, state: DomainState): void {
    this.core.record('domain.state', { name: d.name, from: d.state, to: state });
    d.state = state;
    this.changed(d.name);
  }

  private changed(name: string): void {
    this.listed = null;
    for (const watcher of this.watchers) watcher(name);
  }

  /** Ends an active domain in `state`; a transient one disappears. */
  private stop(d: Domain, state: 'shutoff' | 'crashed'): void {
    d.live = null;
    this.setState(d, state);
    if (d.config === null) {
      this.table.delete(d.name);
      this.core.record('domain.undefined', { name: d.name });
      this.changed(d.name);
    }
  }

  /** Host power loss: every qemu process is gone; persistent domains come back shut off. */
  protected override onCrash(): void {
    for (const d of this.sorted()) {
      if (isActive(d.state)) this.stop(d, 'shutoff');
      else if (d.state === 'crashed') this.setState(d, 'shutoff');
    }
  }
}

/** Disk target names libvirt can parse (virDiskNameParse): a bus prefix, then letters only. */
const DISK_TARGET = /^(fd|hd|vd|sd|xvd|ubd)[a-z]+$/;
