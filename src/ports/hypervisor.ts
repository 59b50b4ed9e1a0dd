/**
 * The hypervisor of one compute host, libvirt semantics: persistent domains that are defined, then
 * started, shut down, destroyed and undefined. Implementations: the simulated libvirt host and the
 * libvirt adapter (`qemu:///system`). Errors are {@link HypervisorError}s whose codes name the
 * libvirt condition.
 */
import { PortError } from './errors.ts';

/** libvirt's domain states that cloudbed distinguishes. */
export type DomainState = 'shutoff' | 'running' | 'paused' | 'crashed';

/** A disk attached to a domain. */
export interface DomainDisk {
  /** Target device, e.g. `vda`. */
  readonly target: string;
  /** Path of the disk image as the storage node exposes it, e.g. `/cloudbed/vol-1a2b/disk.raw`. */
  readonly source: string;
}

/** What to define. Defining an existing name replaces its definition (libvirt semantics). */
export interface DomainSpec {
  /** Domain name: the VM id. */
  readonly name: string;
  readonly vcpus: number;
  readonly memoryMb: number;
  readonly disks: readonly DomainDisk[];
}

export interface DomainInfo extends DomainSpec {
  readonly state: DomainState;
}

/** Capacity of the host. */
export interface HostCapacity {
  readonly vcpus: number;
  readonly memoryMb: number;
}

export interface Hypervisor {
  capacity(): Promise<HostCapacity>;
  /** Every defined domain (transient ones too), sorted by name. */
  listDomains(): Promise<readonly DomainInfo[]>;
  /** The named domain, or null. */
  getDomain(name: string): Promise<DomainInfo | null>;
  /** Defines or redefines a domain; a running domain keeps running with its old definition. */
  define(spec: DomainSpec): Promise<void>;
  /** Starts a shut-off or crashed domain. `already-running` if active; `out-of-memory` if it does not fit. */
  start(name: string): Promise<void>;
  /** Asks the guest to shut down (ACPI); the domain reaches `shutoff` later. */
  shutdown(name: string): Promise<void>;
  /** Pulls the plug: the domain is `shutoff` at once. `not-running` if it is not active. */
  destroy(name: string): Promise<void>;
  /**
   * Removes a domain's persistent definition. As in libvirt, a running persistent domain becomes
   * transient: it keeps running and vanishes when it stops. `domain-active` only for a domain that
   * is already transient.
   */
  undefine(name: string): Promise<void>;
  close(): Promise<void>;
}

/** libvirt conditions the control plane reacts to. */
export type HypervisorErrorCode =
  | 'no-domain'
  | 'already-running'
  | 'not-running'
  | 'domain-active'
  | 'out-of-memory'
  | 'invalid-definition'
  | 'unavailable';

export class HypervisorError extends PortError {
  override name = 'HypervisorError';
  constructor(
    readonly reason: HypervisorErrorCode,
    message: string,
    options: { retryable?: boolean; cause?: unknown } = {},
  ) {
    super(`hypervisor.${reason}`, message, options);
  }
}
