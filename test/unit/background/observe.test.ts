// Goal: the pure rules of the background service — which rows an inventory speaks for, that an
// unchanged fact yields no observation, host up/down verdicts, and usage spans that start where
// the last one ended and never overlap. Method: example rows built by hand, plus a fast-check
// property that recording usage at arbitrary moments adds up to the billable time exactly once.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { InventoryDataset, InventoryDomain } from '../../../src/model/commands.ts';
import type { HostRow, SnapshotRow, VmRow, VolumeRow } from '../../../src/model/resources.ts';
import { BYTES_PER_GB } from '../../../src/model/resources.ts';
import {
  diskVolumeIds,
  observeHostDown,
  observeHostUp,
  observeSnapshot,
  observeVm,
  observeVolume,
} from '../../../src/control/background/observe.ts';
import { MS_PER_HOUR, usageRecord } from '../../../src/control/background/usage.ts';

const common = {
  accountId: 'acct-1',
  name: 'x',
  created: 0,
  removed: null,
  rev: 1,
  state: 'running',
  transitioning: 'no',
  transitioningMessage: null,
  transitioningProgress: null,
  attempts: 0,
  nextAttemptAtMs: null,
  lastError: null,
  lastCommand: null,
  lastResult: null,
  desired: 'running',
} as const;

function vm(fields: Partial<VmRow> = {}): VmRow {
  return {
    ...common,
    id: 'vm-1',
    type: 'virtualMachine',
    imageId: 'img-00000001',
    vcpus: 1,
    memoryMb: 512,
    rootDiskGb: 10,
    rootVolumeId: 'vol-1',
    volumeIds: [],
    hostId: 'h1',
    observed: null,
    ...fields,
  };
}

function volume(fields: Partial<VolumeRow> = {}): VolumeRow {
  return {
    ...common,
    desired: 'present',
    id: 'vol-1',
    type: 'volume',
    sizeGb: 10,
    root: false,
    imageId: null,
    sourceSnapshotId: null,
    virtualMachineId: null,
    storageNodeId: 's1',
    restoreSnapshotId: null,
    observed: null,
    ...fields,
  };
}

function snapshot(fields: Partial<SnapshotRow> = {}): SnapshotRow {
  return {
    ...common,
    desired: 'present',
    id: 'snap-1',
    type: 'snapshot',
    volumeId: 'vol-1',
    sizeGb: 10,
    storageNodeId: 's1',
    observed: null,
    ...fields,
  };
}

function host(fields: Partial<HostRow> = {}): HostRow {
  return {
    ...common,
    accountId: null,
    desired: 'present',
    id: 'h1',
    type: 'host',
    state: 'active',
    kind: 'compute',
    vcpus: 8,
    memoryMb: 8192,
    poolSizeGb: null,
    online: true,
    observed: { vcpus: 8, memoryMb: 8192, poolSizeBytes: null, atMs: 0 },
    ...fields,
  };
}

const domain = (name: string, state: InventoryDomain['state'] = 'running'): InventoryDomain => ({
  name,
  state,
  vcpus: 1,
  memoryMb: 512,
  disks: [
    { target: 'vdb', source: 'cloudbed/vol-2/disk.raw' },
    { target: 'vda', source: 'cloudbed/vol-1/disk.raw' },
  ],
});
const domains = (...list: InventoryDomain[]) => new Map(list.map((d) => [d.name, d]));
const datasets = (...list: InventoryDataset[]) => new Map(list.map((d) => [d.name, d]));

describe('vm observations', () => {
  it('observes a placed VM, present or absent, only when the fact changed', () => {
    const running = observeVm(vm(), 'h1', domains(domain('vm-1')));
    expect(running).toEqual({ hostId: 'h1', domain: 'running', disks: ['vol-1', 'vol-2'] });
    const seen = vm({ observed: { ...running!, atMs: 5 } });
    expect(observeVm(seen, 'h1', domains(domain('vm-1')))).toBeNull();
    expect(observeVm(seen, 'h1', domains(domain('vm-1', 'paused')))).toMatchObject({
      domain: 'paused',
    });
    expect(observeVm(seen, 'h1', domains())).toEqual({
      hostId: 'h1',
      domain: 'absent',
      disks: null,
    });
    expect(observeVm(vm(), 'h1', domains())).toEqual({
      hostId: 'h1',
      domain: 'absent',
      disks: null,
    });
  });

  it('follows a VM seen on its old host until it is gone there, and ignores strays', () => {
    const moved = vm({
      hostId: 'h2',
      observed: { hostId: 'h1', domain: 'running', disks: null, atMs: 1 },
    });
    expect(observeVm(moved, 'h1', domains(domain('vm-1', 'shutoff')))).toMatchObject({
      hostId: 'h1',
      domain: 'shutoff',
    });
    expect(observeVm(moved, 'h1', domains())).toMatchObject({ hostId: 'h1', domain: 'absent' });
    const goneThere = vm({
      hostId: 'h2',
      observed: { hostId: 'h1', domain: 'absent', disks: null, atMs: 1 },
    });
    expect(observeVm(goneThere, 'h1', domains())).toBeNull();
    // A domain on a host the row does not place it on: an orphan, not an observation.
    expect(observeVm(vm({ hostId: 'h2' }), 'h3', domains(domain('vm-1')))).toBeNull();
    expect(observeVm(vm({ removed: 9 }), 'h1', domains(domain('vm-1')))).toBeNull();
  });

  it('gives null disks when a source is not a cloudbed volume', () => {
    expect(
      diskVolumeIds({ ...domain('x'), disks: [{ target: 'vda', source: '/srv/x.img' }] }),
    ).toBeNull();
    expect(diskVolumeIds({ ...domain('x'), disks: [] })).toEqual([]);
  });
});

describe('storage observations', () => {
  const vol = (sizeGb: number, origin: string | null = null): InventoryDataset => ({
    name: 'cloudbed/vol-1',
    kind: 'volume',
    sizeBytes: sizeGb * BYTES_PER_GB,
    origin,
  });

  it('observes volumes on change: presence, size, origin', () => {
    const first = observeVolume(volume(), 's1', datasets(vol(10)));
    expect(first).toEqual({
      storageNodeId: 's1',
      present: true,
      sizeBytes: 10 * BYTES_PER_GB,
      origin: null,
    });
    const seen = volume({ observed: { ...first!, atMs: 1 } });
    expect(observeVolume(seen, 's1', datasets(vol(10)))).toBeNull();
    expect(observeVolume(seen, 's1', datasets(vol(20)))).toMatchObject({
      sizeBytes: 20 * BYTES_PER_GB,
    });
    expect(observeVolume(seen, 's1', datasets())).toMatchObject({
      present: false,
      sizeBytes: null,
    });
    expect(observeVolume(volume({ storageNodeId: 's2' }), 's1', datasets(vol(10)))).toBeNull();
    expect(observeVolume(volume({ storageNodeId: null }), 's1', datasets(vol(10)))).toBeNull();
  });

  it('observes snapshots by their dataset name volume@snapshot', () => {
    const snap: InventoryDataset = {
      name: 'cloudbed/vol-1@snap-1',
      kind: 'snapshot',
      sizeBytes: 5,
      origin: null,
    };
    expect(observeSnapshot(snapshot(), 's1', datasets(snap))).toEqual({
      storageNodeId: 's1',
      present: true,
      sizeBytes: 5,
    });
    expect(observeSnapshot(snapshot({ volumeId: 'vol-9' }), 's1', datasets(snap))).toMatchObject({
      present: false,
    });
    const seen = snapshot({
      observed: { storageNodeId: 's1', present: true, sizeBytes: 5, atMs: 1 },
    });
    expect(observeSnapshot(seen, 's1', datasets(snap))).toBeNull();
  });
});

describe('host liveness', () => {
  const capacity = { vcpus: 8, memoryMb: 8192, poolSizeBytes: null };

  it('is up on the first report, when reports resume and when capacity changes, and not otherwise', () => {
    expect(
      observeHostUp(host({ state: 'registering', online: false, observed: null }), capacity),
    ).toEqual(capacity);
    expect(observeHostUp(host({ state: 'down', online: false }), capacity)).toEqual(capacity);
    expect(observeHostUp(host({ state: 'maintenance', online: false }), capacity)).toEqual(
      capacity,
    );
    expect(observeHostUp(host(), capacity)).toBeNull();
    expect(observeHostUp(host(), { ...capacity, memoryMb: 4096 })).toMatchObject({
      memoryMb: 4096,
    });
    expect(observeHostUp(host({ removed: 3 }), capacity)).toBeNull();
  });

  it('is down after hostDownAfterMs of silence, only when online', () => {
    expect(observeHostDown(host(), 1_000, 30_999, 30_000)).toBeNull();
    expect(observeHostDown(host(), 1_000, 31_000, 30_000)).toEqual({ lastSeenMs: 1_000 });
    expect(observeHostDown(host({ online: false }), 1_000, 99_000, 30_000)).toBeNull();
    expect(
      observeHostDown(host({ state: 'registering', online: false }), 0, 99_000, 30_000),
    ).toBeNull();
  });
});

describe('usage records', () => {
  it('bills a running VM from its observation or its last record, whichever is later', () => {
    const running = vm({ observed: { hostId: 'h1', domain: 'running', disks: null, atMs: 1_000 } });
    expect(usageRecord(running, {}, 1_000 + MS_PER_HOUR, 0)).toMatchObject({
      metric: 'vm-hours',
      quantity: 1,
      fromMs: 1_000,
      toMs: 1_000 + MS_PER_HOUR,
      resourceType: 'virtualMachine',
      accountId: 'acct-1',
    });
    expect(
      usageRecord(running, { 'vm-1': 1_000 + MS_PER_HOUR / 2 }, 1_000 + MS_PER_HOUR, 0),
    ).toMatchObject({ quantity: 0.5 });
    // Below the interval: not yet, unless it is a change (min span 0).
    expect(usageRecord(running, {}, 1_000 + MS_PER_HOUR - 1, MS_PER_HOUR)).toBeNull();
    expect(
      usageRecord(
        vm({ observed: { hostId: 'h1', domain: 'shutoff', disks: null, atMs: 1 } }),
        {},
        9e9,
        0,
      ),
    ).toBeNull();
    expect(usageRecord(vm(), {}, 9e9, 0)).toBeNull();
  });

  it('bills a present volume by its observed size', () => {
    const present = volume({
      observed: {
        storageNodeId: 's1',
        present: true,
        sizeBytes: 20 * BYTES_PER_GB,
        origin: null,
        atMs: 0,
      },
    });
    expect(usageRecord(present, {}, 2 * MS_PER_HOUR, 0)).toMatchObject({
      metric: 'gb-hours',
      quantity: 40,
    });
  });

  it('adds up to the billable time exactly once, however the recording moments fall', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 10 * MS_PER_HOUR }), { maxLength: 20 }),
        (moments) => {
          const since = 1_000;
          const row = vm({
            observed: { hostId: 'h1', domain: 'running', disks: null, atMs: since },
          });
          const until: Record<string, number> = {};
          let total = 0;
          let previousEnd = since;
          for (const t of [...moments].sort((a, b) => a - b)) {
            const record = usageRecord(row, until, since + t, 0);
            if (record === null) continue;
            expect(record.fromMs).toBe(previousEnd);
            previousEnd = record.toMs;
            until['vm-1'] = record.toMs;
            total += record.toMs - record.fromMs;
          }
          const last = moments.length === 0 ? 0 : Math.max(...moments);
          expect(total).toBe(last);
        },
      ),
    );
  });
});
