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
import { type ComputeAmount } from './capacity.ts';
import type { HostRow, VmRow } from './resources.ts';
import type { World } from './world.ts';

export {
  computeCapacity,
  isReachable,
  isSchedulable,
  storageCapacityGb,
  type ComputeAmount,
} from './capacity.ts';

/** What the live VMs placed on a host reserve. */
export function computeUsed(hostId: string, world: World): ComputeAmount {
  return world.computeReserved(hostId);
}

/** GiB reserved by live volumes on a storage node. */
export function storageUsedGb(nodeId: string, world: World): number {
  return world.storageReserved(nodeId);
}

/**
 * The compute host for a VM, or null when none has room. Excludes the VM's own reservation. The
 * world ranks the schedulable hosts by free memory, then free vCPUs, then name and id, so the
 * first with enough of both is the one a scan of every host would pick.
 */
export function chooseComputeHost(
  vm: Pick<VmRow, 'vcpus' | 'memoryMb'>,
  world: World,
): HostRow | null {
  for (const rank of world.computeRanking()) {
    // Ranked by free memory first: once one has too little, every later one has too.
    if (rank.first < vm.memoryMb) return null;
    if (rank.second >= vm.vcpus) return rank.host;
  }
  return null;
}

/** The storage node for a volume of `sizeGb`, or null when none has room (the most free wins). */
export function chooseStorageNode(sizeGb: number, world: World): HostRow | null {
  const best = world.storageRanking()[0];
  return best === undefined || best.first < sizeGb ? null : best.host;
}
