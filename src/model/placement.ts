/**
 * Placement: which compute host gets a VM and which storage node gets a volume. A compute host is
 * a candidate when it is active and online; its capacity is the smaller of what the admin declared
 * and what its agent reported; every live VM placed there counts against it whether running or not
 * (a stopped VM keeps its reservation so it can always start again). A storage node likewise, with
 * its pool less the image catalogue every node keeps. Among candidates with room, the one with the
 * most free memory (or pool space) wins; ties break by id, so placement is deterministic.
 *
 * Safety across concurrent main loops comes from the write, not from here: a placement appends
 * `host.placement-recorded` to the host's stream at the host version this computation saw.
 */
import { BYTES_PER_GB, IMAGES_TOTAL_GB, isRemoved, type HostRow, type VmRow } from './resources.ts';
import { RESERVED_MEMORY_MB, RESERVED_VCPUS, type World } from './world.ts';

/** Compute resources. */
export interface ComputeAmount {
  readonly vcpus: number;
  readonly memoryMb: number;
}

/** True when a host takes new work and reaches its agent. */
export function isSchedulable(host: HostRow): boolean {
  return host.state === 'active' && host.online && !isRemoved(host);
}

/** True when the host's agent is reachable (reports arrive). */
export function isReachable(host: HostRow): boolean {
  return host.online && host.state !== 'down' && !isRemoved(host);
}

function minKnown(a: number | null, b: number | null): number {
  if (a === null) return b ?? 0;
  if (b === null) return a;
  return Math.min(a, b);
}

/** A compute host's capacity: min(declared, reported). */
export function computeCapacity(host: HostRow): ComputeAmount {
  return {
    vcpus: minKnown(host.vcpus, host.observed?.vcpus ?? null),
    memoryMb: minKnown(host.memoryMb, host.observed?.memoryMb ?? null),
  };
}

/** What the live VMs placed on a host reserve. */
export function computeUsed(hostId: string, world: World): ComputeAmount {
  return world.computeReserved(hostId);
}

/** A storage node's allocatable pool for volumes, GiB: min(declared, reported) less the images. */
export function storageCapacityGb(node: HostRow): number {
  const reported =
    node.observed?.poolSizeBytes === null || node.observed?.poolSizeBytes === undefined
      ? null
      : Math.floor(node.observed.poolSizeBytes / BYTES_PER_GB);
  return Math.max(0, minKnown(node.poolSizeGb, reported) - IMAGES_TOTAL_GB);
}

/** GiB reserved by live volumes on a storage node. */
export function storageUsedGb(nodeId: string, world: World): number {
  return world.storageReserved(nodeId);
}

/**
 * The compute host for a VM, or null when none has room. Excludes the VM's own reservation. Scans
 * every host for every placement, as a filter scheduler does, so the scan allocates nothing.
 */
export function chooseComputeHost(
  vm: Pick<VmRow, 'vcpus' | 'memoryMb'>,
  world: World,
): HostRow | null {
  let best: HostRow | null = null;
  let bestFreeMemoryMb = 0;
  let bestFreeVcpus = 0;
  for (const host of world.hosts()) {
    if (host.kind !== 'compute' || !isSchedulable(host)) continue;
    const used = world.computeReservedTotals(host.id);
    const freeVcpus =
      minKnown(host.vcpus, host.observed?.vcpus ?? null) - (used[RESERVED_VCPUS] ?? 0);
    const freeMemoryMb =
      minKnown(host.memoryMb, host.observed?.memoryMb ?? null) - (used[RESERVED_MEMORY_MB] ?? 0);
    if (freeVcpus < vm.vcpus || freeMemoryMb < vm.memoryMb) continue;
    // Hosts come sorted by id, so strict comparisons keep the smallest id on ties.
    if (
      best === null ||
      freeMemoryMb > bestFreeMemoryMb ||
      (freeMemoryMb === bestFreeMemoryMb && freeVcpus > bestFreeVcpus)
    ) {
      best = host;
      bestFreeMemoryMb = freeMemoryMb;
      bestFreeVcpus = freeVcpus;
    }
  }
  return best;
}

/** The storage node for a volume of `sizeGb`, or null when none has room. */
export function chooseStorageNode(sizeGb: number, world: World): HostRow | null {
  let best: { host: HostRow; freeGb: number } | null = null;
  for (const host of world.hosts()) {
    if (host.kind !== 'storage' || !isSchedulable(host)) continue;
    const freeGb = storageCapacityGb(host) - storageUsedGb(host.id, world);
    if (freeGb < sizeGb) continue;
    if (best === null || freeGb > best.freeGb) best = { host, freeGb };
  }
  return best?.host ?? null;
}
