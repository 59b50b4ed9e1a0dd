/**
 * Goal: placement never exceeds a host's capacity, only ever picks a schedulable host (active,
 * online), finds room whenever some host has it, and is deterministic: the same rows in any order
 * give the same choice (ties break by id). Backoff delays are bounded by the cap, never shrink, and
 * sum to the budget.
 *
 * Method: fast-check properties over random fleets (capacities, states, reported capacities) and
 * random sequences of VM and volume demands placed one after another into a World.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { retryBudgetMs, retryDelayMs, type RetryPolicy } from '../../../src/model/backoff.ts';
import {
  chooseComputeHost,
  chooseStorageNode,
  computeCapacity,
  computeUsed,
  isSchedulable,
  storageCapacityGb,
  storageUsedGb,
} from '../../../src/model/placement.ts';
import {
  BYTES_PER_GB,
  type HostRow,
  type VmRow,
  type VolumeRow,
} from '../../../src/model/resources.ts';
import { World } from '../../../src/model/world.ts';

const base = {
  accountId: null,
  created: 0,
  removed: null,
  rev: 1,
  transitioning: 'no' as const,
  transitioningMessage: null,
  transitioningProgress: null,
  attempts: 0,
  nextAttemptAtMs: null,
  lastError: null,
  lastCommand: null,
  lastResult: null,
  desired: 'present' as const,
};

const hostState = fc.constantFrom(
  'active',
  'active',
  'active',
  'down',
  'maintenance',
  'registering',
);

const computeHost = (i: number) =>
  fc
    .record({
      vcpus: fc.integer({ min: 1, max: 32 }),
      memoryMb: fc.integer({ min: 256, max: 65536 }),
      reported: fc.option(fc.integer({ min: 1, max: 32 })),
      state: hostState,
      online: fc.boolean(),
    })
    .map((h): HostRow => ({
      ...base,
      id: `host-${String(i).padStart(8, '0')}`,
      type: 'host',
      name: `c${i}`,
      kind: 'compute',
      state: h.state,
      vcpus: h.vcpus,
      memoryMb: h.memoryMb,
      poolSizeGb: null,
      online: h.online || h.state === 'active',
      observed:
        h.reported === null
          ? null
          : { vcpus: h.reported, memoryMb: h.memoryMb, poolSizeBytes: null, atMs: 0 },
    }));

const storageNode = (i: number) =>
  fc
    .record({
      poolSizeGb: fc.integer({ min: 0, max: 4000 }),
      state: hostState,
      online: fc.boolean(),
    })
    .map((h): HostRow => ({
      ...base,
      id: `host-s${String(i).padStart(7, '0')}`,
      type: 'host',
      name: `s${i}`,
      kind: 'storage',
      state: h.state,
      vcpus: null,
      memoryMb: null,
      poolSizeGb: h.poolSizeGb,
      online: h.online || h.state === 'active',
      observed: {
        vcpus: null,
        memoryMb: null,
        poolSizeBytes: h.poolSizeGb * BYTES_PER_GB,
        atMs: 0,
      },
    }));

function fleet<T>(make: (i: number) => fc.Arbitrary<T>, max: number): fc.Arbitrary<T[]> {
  return fc
    .integer({ min: 0, max })
    .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => make(i))));
}

function vmRow(id: string, vcpus: number, memoryMb: number, hostId: string | null): VmRow {
  return {
    ...base,
    id,
    type: 'virtualMachine',
    accountId: 'acct-1',
    name: id,
    state: 'creating',
    desired: 'running',
    imageId: 'img-00000001',
    vcpus,
    memoryMb,
    rootDiskGb: 40,
    rootVolumeId: `vol-${id}`,
    volumeIds: [],
    hostId,
    observed: null,
  };
}

function volumeRow(id: string, sizeGb: number, storageNodeId: string | null): VolumeRow {
  return {
    ...base,
    id,
    type: 'volume',
    accountId: 'acct-1',
    name: id,
    state: 'creating',
    sizeGb,
    root: false,
    imageId: null,
    sourceSnapshotId: null,
    virtualMachineId: null,
    storageNodeId,
    restoreSnapshotId: null,
    observed: null,
  };
}

const demands = fc.array(
  fc.record({
    vcpus: fc.integer({ min: 1, max: 8 }),
    memoryMb: fc.integer({ min: 256, max: 16384 }),
  }),
  { maxLength: 60 },
);

describe('placement', () => {
  test.prop([fleet(computeHost, 6), demands, fc.boolean()])(
    'never exceeds compute capacity, picks only schedulable hosts, and finds room when there is some',
    (hosts, vms, reversed) => {
      const world = new World({
        hosts: reversed ? [...hosts].reverse() : hosts,
        vms: [],
        volumes: [],
        snapshots: [],
      });
      vms.forEach((demand, i) => {
        const id = `vm-${String(i).padStart(8, '0')}`;
        const chosen = chooseComputeHost(demand, world);
        const fits = hosts.filter((h) => {
          if (h.kind !== 'compute' || !isSchedulable(h)) return false;
          const cap = computeCapacity(h);
          const used = computeUsed(h.id, world);
          return (
            cap.vcpus - used.vcpus >= demand.vcpus &&
            cap.memoryMb - used.memoryMb >= demand.memoryMb
          );
        });
        if (chosen === null) {
          expect(fits).toEqual([]);
          return;
        }
        expect(fits.map((h) => h.id)).toContain(chosen.id);
        world.put(vmRow(id, demand.vcpus, demand.memoryMb, chosen.id));
        for (const h of hosts) {
          const cap = computeCapacity(h);
          const used = computeUsed(h.id, world);
          if (used.vcpus > 0) {
            expect(used.vcpus).toBeLessThanOrEqual(cap.vcpus);
            expect(used.memoryMb).toBeLessThanOrEqual(cap.memoryMb);
          }
        }
      });
    },
  );

  test.prop([fleet(computeHost, 6), demands, fc.integer()])(
    'is deterministic whatever the listing order',
    (hosts, vms, seed) => {
      const shuffled = [...hosts].sort(
        (a, b) =>
          ((a.id.charCodeAt(7) * 31 + seed) % 7) - ((b.id.charCodeAt(7) * 31 + seed) % 7) ||
          (a.id < b.id ? -1 : 1),
      );
      const a = new World({ hosts, vms: [], volumes: [], snapshots: [] });
      const b = new World({ hosts: shuffled, vms: [], volumes: [], snapshots: [] });
      vms.forEach((demand, i) => {
        const ca = chooseComputeHost(demand, a);
        const cb = chooseComputeHost(demand, b);
        expect(cb?.id).toBe(ca?.id);
        if (ca !== null) {
          a.put(vmRow(`vm-${i}`, demand.vcpus, demand.memoryMb, ca.id));
          b.put(vmRow(`vm-${i}`, demand.vcpus, demand.memoryMb, ca.id));
        }
      });
    },
  );

  test.prop([
    fleet(storageNode, 5),
    fc.array(fc.integer({ min: 1, max: 1229 }), { maxLength: 40 }),
  ])('never exceeds a storage pool and keeps room for the images', (nodes, sizes) => {
    const world = new World({ hosts: nodes, vms: [], volumes: [], snapshots: [] });
    sizes.forEach((sizeGb, i) => {
      const chosen = chooseStorageNode(sizeGb, world);
      const fits = nodes.filter(
        (n) => isSchedulable(n) && storageCapacityGb(n) - storageUsedGb(n.id, world) >= sizeGb,
      );
      if (chosen === null) return expect(fits).toEqual([]);
      expect(fits.map((n) => n.id)).toContain(chosen.id);
      world.put(volumeRow(`vol-${i}`, sizeGb, chosen.id));
      expect(storageUsedGb(chosen.id, world)).toBeLessThanOrEqual(storageCapacityGb(chosen));
    });
  });

  test('breaks ties by id and prefers the most free memory', () => {
    const mk = (id: string, memoryMb: number): HostRow => ({
      ...base,
      id,
      type: 'host',
      name: id,
      kind: 'compute',
      state: 'active',
      vcpus: 8,
      memoryMb,
      poolSizeGb: null,
      online: true,
      observed: null,
    });
    const world = new World({
      hosts: [mk('host-b', 4096), mk('host-a', 4096), mk('host-c', 2048)],
      vms: [],
      volumes: [],
      snapshots: [],
    });
    expect(chooseComputeHost({ vcpus: 1, memoryMb: 1024 }, world)?.id).toBe('host-a');
    world.put(vmRow('vm-1', 1, 1024, 'host-a'));
    expect(chooseComputeHost({ vcpus: 1, memoryMb: 1024 }, world)?.id).toBe('host-b');
    // A removed VM frees its reservation.
    world.put({ ...vmRow('vm-1', 1, 1024, 'host-a'), removed: 5, state: 'removed' });
    expect(computeUsed('host-a', world)).toEqual({ vcpus: 0, memoryMb: 0 });
  });
});

const policies = fc
  .record({
    baseMs: fc.integer({ min: 1, max: 10_000 }),
    factor: fc.integer({ min: 1, max: 1000 }),
    maxAttempts: fc.integer({ min: 1, max: 40 }),
  })
  .map((p): RetryPolicy => ({
    baseMs: p.baseMs,
    capMs: p.baseMs * p.factor,
    maxAttempts: p.maxAttempts,
  }));

describe('backoff', () => {
  test.prop([policies, fc.integer({ min: 1, max: 10_000 })])(
    'is exponential up to the cap and never shrinks',
    (policy, attempt) => {
      const d = retryDelayMs(policy, attempt);
      expect(d).toBeGreaterThanOrEqual(policy.baseMs);
      expect(d).toBeLessThanOrEqual(policy.capMs);
      expect(Number.isFinite(d)).toBe(true);
      expect(retryDelayMs(policy, attempt + 1)).toBeGreaterThanOrEqual(d);
      if (attempt < 20) expect(d).toBe(Math.min(policy.baseMs * 2 ** (attempt - 1), policy.capMs));
    },
  );

  test.prop([policies])('has a finite budget of at most maxAttempts × cap', (policy) => {
    const budget = retryBudgetMs(policy);
    expect(budget).toBeLessThanOrEqual(policy.maxAttempts * policy.capMs);
    expect(budget).toBeGreaterThanOrEqual(policy.maxAttempts * policy.baseMs);
  });
});
