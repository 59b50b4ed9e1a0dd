/**
 * The hypervisor of one compute host, libvirt semantics: persistent domains that are defined, then
 * started, shut down, destroyed and undefined. Implementations: the simulated libvirt host and the
 * libvirt adapter (`qemu:///system`). Errors are {@link HypervisorError}s whose codes name the
 * libvirt condition.
 */
import { hostErrorOf } from './host-error.ts';

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

/** A libvirt condition; the code is `hypervisor.<reason>`. */
export class HypervisorError extends hostErrorOf<HypervisorErrorCode>(
  'hypervisor',
  'HypervisorError',
) {}

/** A deep copy of a spec holding only the port's fields (others do not survive, as with XML). */
export function copyDomainSpec(spec: DomainSpec): DomainSpec {
  return {
    name: spec.name,
    vcpus: spec.vcpus,
    memoryMb: spec.memoryMb,
    disks: spec.disks.map((disk) => ({ target: disk.target, source: disk.source })),
  };
}

/**
 * Validates a spec as libvirt's definition parser does, for both implementations; throws
 * `invalid-definition`, else returns {@link copyDomainSpec} of it. `checkDisk` adds a check of
 * each disk that only one implementation makes, returning the problem or null: the simulator
 * checks the target names libvirt's parser accepts (the adapter leaves that to libvirt), the
 * adapter refuses control characters (they would break the XML it writes).
 */
export function validateDomainSpec(
  spec: DomainSpec,
  checkDisk: (disk: DomainDisk) => string | null = () => null,
): DomainSpec {
  const invalid = (why: string): HypervisorError =>
    new HypervisorError('invalid-definition', `invalid definition of '${spec.name}': ${why}`);
  if (typeof spec.name !== 'string' || spec.name.length === 0) throw invalid('missing name');
  // libvirt's qemu driver refuses '/' (names become file names); control characters break XML.
  if (spec.name.includes('/')) throw invalid(`name cannot contain '/'`);
  if (/\p{Cc}/u.test(spec.name)) throw invalid('name contains control characters');
  if (!Number.isSafeInteger(spec.vcpus) || spec.vcpus < 1) {
    throw invalid(`vcpus must be a positive integer, got ${spec.vcpus}`);
  }
  if (!Number.isSafeInteger(spec.memoryMb) || spec.memoryMb < 1) {
    throw invalid(`memoryMb must be a positive integer, got ${spec.memoryMb}`);
  }
  const targets = new Set<string>();
  for (const disk of spec.disks) {
    if (disk.target.length === 0 || disk.source.length === 0)
      throw invalid('disk without target or source');
    const problem = checkDisk(disk);
    if (problem !== null) throw invalid(problem);
    // libvirt: "target 'vda' duplicated for disk sources …".
    if (targets.has(disk.target)) throw invalid(`target '${disk.target}' duplicated`);
    targets.add(disk.target);
  }
  return copyDomainSpec(spec);
}
