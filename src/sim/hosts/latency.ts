/**
 * Latency distributions of the simulated hosts (host-core.ts delivers operations after them).
 *
 * Every latency is log-normal — the usual shape of service times: a typical value, a long right
 * tail — with a per-operation median, a log-space spread `sigma` and a hard cap so a rare draw
 * cannot stall a run. The default medians are what a local libvirtd (`qemu:///system`) and the
 * `zfs`/`zpool` commands take on an idle development machine; see the tables below for each one.
 */
import { assert } from '../../lib/assert.ts';
import type { Prng } from '../../lib/prng.ts';

/** A log-normal latency, in virtual ms. */
export interface LatencySpec {
  /** The median, in ms; > 0. */
  readonly medianMs: number;
  /** Spread in log space (0: always the median). 0.5 puts ~95 % of draws within 0.37x–2.7x. */
  readonly sigma: number;
  /** Upper bound of any draw, in ms; >= medianMs. */
  readonly maxMs: number;
}

/** A latency per operation name. */
export type LatencyTable<Op extends string> = Readonly<Record<Op, LatencySpec>>;

/** A log-normal spec whose cap is `capFactor` medians (default 20). */
export function logNormalLatency(medianMs: number, sigma: number, capFactor = 20): LatencySpec {
  return { medianMs, sigma, maxMs: medianMs * capFactor };
}

/**
 * A constant latency of `ms`. It still consumes the same draws as a random one, so switching a
 * table to constants does not shift any other stream.
 */
export function fixedLatency(ms: number): LatencySpec {
  return { medianMs: ms, sigma: 0, maxMs: ms };
}

/**
 * Draws one latency in ms from `spec`, rounded to whole microseconds (trace lines stay short and
 * identical across platforms' last-digit float formatting). Always > 0 and <= `spec.maxMs`.
 */
export function drawLatencyMs(random: Prng, spec: LatencySpec): number {
  assert(
    spec.medianMs > 0 && spec.sigma >= 0 && spec.maxMs >= spec.medianMs,
    `bad latency spec ${JSON.stringify(spec)}`,
  );
  const raw = Math.min(spec.maxMs, random.logNormal(spec.medianMs, spec.sigma));
  return Math.max(0.001, Math.round(raw * 1000) / 1000);
}

/** `table` with some entries replaced. */
export function withOverrides<Op extends string>(
  table: LatencyTable<Op>,
  overrides: Partial<LatencyTable<Op>> = {},
): LatencyTable<Op> {
  const merged: Record<string, LatencySpec> = { ...table };
  for (const [op, spec] of Object.entries(overrides) as [Op, LatencySpec | undefined][]) {
    if (spec !== undefined) merged[op] = spec;
  }
  return merged as LatencyTable<Op>;
}

/** Operations of the simulated hypervisor that take time. */
export type HypervisorOperation =
  | 'capacity'
  | 'list'
  | 'get'
  | 'define'
  | 'start'
  | 'shutdown'
  | 'destroy'
  | 'undefine'
  /** A guest's ACPI power-off, from the shutdown request to `shutoff`. */
  | 'guest-shutdown'
  /** A refused connection: the reply of any operation issued while the host is down. */
  | 'refused';

/**
 * Default hypervisor latencies, modelled on libvirt 9 with qemu/KVM on a local socket.
 * - capacity 1 ms, get 2 ms, list 3 ms: read-only RPCs answered from libvirtd's memory.
 * - define 40 ms: parses and validates the XML and writes `/etc/libvirt/qemu/<name>.xml`.
 * - start 300 ms: forks qemu, waits for the QMP handshake, sets up cgroups (a tiny guest starts
 *   well under a second on the project's machines).
 * - shutdown 10 ms: only sends the ACPI power-button event over QMP.
 * - guest-shutdown 4 s, wide spread, capped at 60 s: a Linux guest running its shutdown targets.
 * - destroy 60 ms: SIGTERM, wait for qemu to exit, tear down.
 * - undefine 10 ms: unlinks the XML file.
 * - refused 0.5 ms: connecting to a socket nobody listens on fails at once.
 */
export const HYPERVISOR_LATENCY: LatencyTable<HypervisorOperation> = {
  capacity: logNormalLatency(1, 0.3),
  get: logNormalLatency(2, 0.3),
  list: logNormalLatency(3, 0.3),
  define: logNormalLatency(40, 0.4),
  start: logNormalLatency(300, 0.4),
  shutdown: logNormalLatency(10, 0.3),
  'guest-shutdown': { medianMs: 4000, sigma: 0.6, maxMs: 60_000 },
  destroy: logNormalLatency(60, 0.4),
  undefine: logNormalLatency(10, 0.3),
  refused: logNormalLatency(0.5, 0.2),
};

/** Operations of the simulated storage node that take time. */
export type StorageOperation =
  | 'pool'
  | 'list'
  | 'get'
  | 'create'
  | 'resize'
  | 'snapshot'
  | 'clone'
  | 'rollback'
  | 'destroy'
  /** A refused request: the reply of any operation issued while the node is down. */
  | 'refused';

/**
 * Default storage latencies, modelled on the `zfs`/`zpool` commands: each one forks a process and
 * talks to the kernel (or the zfs-fuse daemon), so even a read costs ~10 ms; writes wait for a
 * transaction group to sync.
 * - pool 15 ms (`zpool list`), get 15 ms and list 20 ms (`zfs list -H -o …`).
 * - create 120 ms: `zfs create`, set the reservation, create the sparse image file.
 * - resize 60 ms: raise the reservation, extend the image file.
 * - snapshot 80 ms, clone 100 ms, rollback 150 ms, destroy 120 ms: one txg sync each.
 * - refused 0.5 ms.
 */
export const STORAGE_LATENCY: LatencyTable<StorageOperation> = {
  pool: logNormalLatency(15, 0.4),
  get: logNormalLatency(15, 0.4),
  list: logNormalLatency(20, 0.4),
  create: logNormalLatency(120, 0.5),
  resize: logNormalLatency(60, 0.5),
  snapshot: logNormalLatency(80, 0.5),
  clone: logNormalLatency(100, 0.5),
  rollback: logNormalLatency(150, 0.5),
  destroy: logNormalLatency(120, 0.5),
  refused: logNormalLatency(0.5, 0.2),
};
