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
  type ReconciledRow,
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

  // The world keeps its hosts ranked as rows change; the choice must be the one a scan of every
  // host makes (the most free memory, then the most free vCPUs, then the smallest id), through
  // host rows changing state and capacity and VMs and volumes being placed, moved and removed.
  type Change =
    | { kind: 'place'; vcpus: number; memoryMb: number }
    | { kind: 'host'; index: number; state: HostRow['state']; online: boolean; memoryMb: number }
    | { kind: 'remove'; index: number }
    | { kind: 'move'; index: number; to: number }
    | { kind: 'volume'; sizeGb: number }
    | { kind: 'drop-volume'; index: number };
  const change: fc.Arbitrary<Change> = fc.oneof(
    fc.record({
      kind: fc.constant('place' as const),
      vcpus: fc.integer({ min: 1, max: 8 }),
      memoryMb: fc.integer({ min: 256, max: 16384 }),
    }),
    fc.record({
      kind: fc.constant('host' as const),
      index: fc.nat(20),
      state: hostState,
      online: fc.boolean(),
      memoryMb: fc.integer({ min: 256, max: 65536 }),
    }),
    fc.record({ kind: fc.constant('remove' as const), index: fc.nat(60) }),
    fc.record({ kind: fc.constant('move' as const), index: fc.nat(60), to: fc.nat(20) }),
    fc.record({ kind: fc.constant('volume' as const), sizeGb: fc.integer({ min: 1, max: 1229 }) }),
    fc.record({ kind: fc.constant('drop-volume' as const), index: fc.nat(40) }),
  );

  /** The choice by scanning every host, as placement was before the world ranked them. */
  function scanCompute(demand: { vcpus: number; memoryMb: number }, world: World): string | null {
    let best: { id: string; memoryMb: number; vcpus: number } | null = null;
    for (const host of world.hosts()) {
      if (host.kind !== 'compute' || !isSchedulable(host)) continue;
      const cap = computeCapacity(host);
      const used = computeUsed(host.id, world);
      const vcpus = cap.vcpus - used.vcpus;
      const memoryMb = cap.memoryMb - used.memoryMb;
      if (vcpus < demand.vcpus || memoryMb < demand.memoryMb) continue;
      if (
        best === null ||
        memoryMb > best.memoryMb ||
        (memoryMb === best.memoryMb && vcpus > best.vcpus)
      )
        best = { id: host.id, memoryMb, vcpus };
    }
    return best?.id ?? null;
  }

  function scanStorage(sizeGb: number, world: World): string | null {
    let best: { id: string; freeGb: number } | null = null;
    for (const host of world.hosts()) {
      if (host.kind !== 'storage' || !isSchedulable(host)) continue;
      const freeGb = storageCapacityGb(host) - storageUsedGb(host.id, world);
      if (freeGb >= sizeGb && (best === null || freeGb > best.freeGb))
        best = { id: host.id, freeGb };
    }
    return best?.id ?? null;
  }

  test.prop([fleet(computeHost, 12), fleet(storageNode, 6), fc.array(change, { maxLength: 120 })])(
    'chooses what a scan of every host chooses, as hosts, VMs and volumes change',
    (computes, nodes, changes) => {
      const world = new World({
        hosts: [...computes, ...nodes],
        vms: [],
        volumes: [],
        snapshots: [],
      });
      const vms: VmRow[] = [];
      const volumes: VolumeRow[] = [];
      let rev = 1;
      for (const c of changes) {
        if (c.kind === 'place') {
          const expected = scanCompute(c, world);
          expect(chooseComputeHost(c, world)?.id ?? null).toBe(expected);
          if (expected !== null) {
            const vm = vmRow(
              `vm-${String(vms.length).padStart(8, '0')}`,
              c.vcpus,
              c.memoryMb,
              expected,
            );
            vms.push(vm);
            world.put(vm);
          }
        } else if (c.kind === 'host' && computes.length > 0) {
          const old = world.host(computes[c.index % computes.length]!.id)!;
          world.put({ ...old, rev: ++rev, state: c.state, online: c.online, memoryMb: c.memoryMb });
        } else if (c.kind === 'remove' && vms.length > 0) {
          const i = c.index % vms.length;
          vms[i] = { ...vms[i]!, removed: 1, rev: ++rev };
          world.put(vms[i]);
        } else if (c.kind === 'move' && vms.length > 0 && computes.length > 0) {
          const i = c.index % vms.length;
          vms[i] = { ...vms[i]!, hostId: computes[c.to % computes.length]!.id, rev: ++rev };
          world.put(vms[i]);
        } else if (c.kind === 'volume') {
          const expected = scanStorage(c.sizeGb, world);
          expect(chooseStorageNode(c.sizeGb, world)?.id ?? null).toBe(expected);
          if (expected !== null) {
            const volume = volumeRow(
              `vol-${String(volumes.length).padStart(8, '0')}`,
              c.sizeGb,
              expected,
            );
            volumes.push(volume);
            world.put(volume);
          }
        } else if (c.kind === 'drop-volume' && volumes.length > 0) {
          const i = c.index % volumes.length;
          volumes[i] = { ...volumes[i]!, removed: 1, rev: ++rev };
          world.put(volumes[i]);
        }
      }
      // Whatever happened, a fresh world built from the same rows ranks them alike.
      const fresh = new World({ hosts: world.hosts(), vms, volumes, snapshots: [] });
      expect(fresh.computeRanking().map((r) => r.host.id)).toEqual(
        world.computeRanking().map((r) => r.host.id),
      );
      expect(fresh.storageRanking().map((r) => r.host.id)).toEqual(
        world.storageRanking().map((r) => r.host.id),
      );
    },
  );

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
    // Equal free memory: the most free vCPUs wins, whatever the ids.
    world.put(vmRow('vm-2', 4, 512, 'host-a'));
    world.put(vmRow('vm-3', 2, 512, 'host-b'));
    expect(chooseComputeHost({ vcpus: 1, memoryMb: 1024 }, world)?.id).toBe('host-b');
    // And a host without the vCPUs is passed over for one with less memory that has them.
    world.put(vmRow('vm-4', 7, 0, 'host-b'));
    world.put(vmRow('vm-5', 5, 0, 'host-a'));
    expect(chooseComputeHost({ vcpus: 1, memoryMb: 1024 }, world)?.id).toBe('host-c');
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

describe('world listing', () => {
  // Goal: the sorted listings a sweep walks stay exactly the rows by id, however new and replaced
  // rows interleave with reads (new rows wait to be merged in; a row replaced before the merge
  // must appear once, in its latest version). Method: random puts of VMs and snapshots by a small
  // id space, each read checked against a fresh sort of the latest rows.
  test.prop([
    fc.array(
      fc.record({
        kind: fc.constantFrom('vm', 'snap'),
        n: fc.integer({ min: 0, max: 40 }),
        read: fc.boolean(),
      }),
      { maxLength: 200 },
    ),
  ])('reconciled() is every latest row sorted by id', (ops) => {
    const world = new World();
    const latest = new Map<string, ReconciledRow>();
    ops.forEach(({ kind, n, read }, rev) => {
      const id = `${kind === 'vm' ? 'vm' : 'snap'}-${String(n).padStart(8, '0')}`;
      const row = (kind === 'vm'
        ? { ...base, id, rev, type: 'virtualMachine', hostId: null, vcpus: 1, memoryMb: 1 }
        : {
            ...base,
            id,
            rev,
            type: 'snapshot',
            volumeId: 'vol-00000001',
            storageNodeId: null,
          }) as unknown as ReconciledRow;
      world.put(row);
      latest.set(id, row);
      if (read) {
        const expected = [...latest.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
        expect(world.reconciled()).toEqual(expected);
      }
    });
    expect(world.reconciled()).toEqual([...latest.values()].sort((a, b) => (a.id < b.id ? -1 : 1)));
  });
});
