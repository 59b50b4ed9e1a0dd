/**
 * What a host offers placement: whether it takes new work, whether its agent is reachable, and
 * its capacity — the smaller of what the admin declared and what its agent reported (a storage
 * node's pool less the image catalogue every node keeps). The placement rules (placement.ts) and
 * the world's rankings of hosts by free room (world.ts) both read these.
 */
import { BYTES_PER_GB, IMAGES_TOTAL_GB, isRemoved, type HostRow } from './resources.ts';

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

/** The smaller of two amounts, either of which may be unknown (0 when both are). */
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

/** A storage node's allocatable pool for volumes, GiB: min(declared, reported) less the images. */
export function storageCapacityGb(node: HostRow): number {
  const reported =
    node.observed?.poolSizeBytes === null || node.observed?.poolSizeBytes === undefined
      ? null
      : Math.floor(node.observed.poolSizeBytes / BYTES_PER_GB);
  return Math.max(0, minKnown(node.poolSizeGb, reported) - IMAGES_TOTAL_GB);
}
