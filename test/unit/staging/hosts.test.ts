// Goal: the staging decorators let several "hosts" share one machine without the agents noticing:
// a VM's memory is scaled down on the real domain yet reported as asked (also after an agent
// restart, through the ledger file), disk paths map between the control plane's canonical form and
// the real images on each node, storage sizes are scaled exactly both ways, dataset names carry
// the control plane's pool name, and declared capacities are what the agents report.
// Method: the decorators over small in-memory Hypervisor and Storage fakes that record what they
// were handed; image files in a temporary directory for the on-disk probe. Needs no service.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  diskPathsOn,
  domainMemoryMb,
  MemoryLedger,
  stagingHypervisor,
  stagingStorage,
} from '../../../src/staging/hosts.ts';
import type { DomainInfo, DomainSpec, Hypervisor } from '../../../src/ports/hypervisor.ts';
import { StorageError, type DatasetInfo, type Storage } from '../../../src/ports/storage.ts';

const dir = mkdtempSync(join(tmpdir(), 'cloudbed-staging-hosts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A hypervisor that keeps definitions in a map: what the decorator handed down is visible. */
function fakeHypervisor(): Hypervisor & { readonly defined: Map<string, DomainInfo> } {
  const defined = new Map<string, DomainInfo>();
  return {
    defined,
    capacity: () => Promise.resolve({ vcpus: 2, memoryMb: 24_000 }),
    listDomains: () => Promise.resolve([...defined.values()]),
    getDomain: (name) => Promise.resolve(defined.get(name) ?? null),
    define: (spec: DomainSpec) => {
      defined.set(spec.name, { ...spec, state: defined.get(spec.name)?.state ?? 'shutoff' });
      return Promise.resolve();
    },
    start: (name) => {
      defined.set(name, { ...defined.get(name)!, state: 'running' });
      return Promise.resolve();
    },
    shutdown: () => Promise.resolve(),
    destroy: () => Promise.resolve(),
    undefine: (name) => {
      defined.delete(name);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

describe('stagingHypervisor', () => {
  const disks = diskPathsOn([
    (v) => `${dir}/p-s1-${v}/disk.raw`,
    (v) => `${dir}/p-s2-${v}/disk.raw`,
  ]);
  // The volume on the second node exists; the other does not exist anywhere yet.
  mkdirSync(`${dir}/p-s2-vol-b`, { recursive: true });
  writeFileSync(`${dir}/p-s2-vol-b/disk.raw`, '');

  it('scales memory down on the domain, reports the VM’s own figure, and maps disk paths', async () => {
    const inner = fakeHypervisor();
    const ledgerFile = join(dir, 'memory-c1.json');
    const hypervisor = stagingHypervisor(inner, {
      capacity: { vcpus: 16, memoryMb: 32_768 },
      memory: { divisor: 16, minMb: 32 },
      ledger: new MemoryLedger(ledgerFile),
      disks,
    });
    const spec: DomainSpec = {
      name: 'vm-1',
      vcpus: 2,
      memoryMb: 1000,
      disks: [
        { target: 'vda', source: '/cloudbed/vol-a/disk.raw' },
        { target: 'vdb', source: '/cloudbed/vol-b/disk.raw' },
      ],
    };
    await hypervisor.define(spec);
    expect(inner.defined.get('vm-1')).toMatchObject({
      memoryMb: 63,
      disks: [
        { target: 'vda', source: `${dir}/p-s1-vol-a/disk.raw` },
        { target: 'vdb', source: `${dir}/p-s2-vol-b/disk.raw` },
      ],
    });
    expect(await hypervisor.getDomain('vm-1')).toEqual({ ...spec, state: 'shutoff' });
    expect(await hypervisor.capacity()).toEqual({ vcpus: 16, memoryMb: 32_768 });

    // A restarted agent reads the ledger back and still sees the definition it asked for.
    const restarted = stagingHypervisor(inner, {
      capacity: { vcpus: 16, memoryMb: 32_768 },
      memory: { divisor: 16, minMb: 32 },
      ledger: new MemoryLedger(ledgerFile),
      disks,
    });
    expect(await restarted.listDomains()).toEqual([{ ...spec, state: 'shutoff' }]);
    expect(JSON.parse(readFileSync(ledgerFile, 'utf8'))).toEqual({ 'vm-1': 1000 });

    // Redefined behind its back: the ledger no longer applies, the scaled-up figure is reported.
    inner.defined.set('vm-1', { ...inner.defined.get('vm-1')!, memoryMb: 40 });
    expect((await restarted.getDomain('vm-1'))?.memoryMb).toBe(640);

    await restarted.undefine('vm-1');
    expect(JSON.parse(readFileSync(ledgerFile, 'utf8'))).toEqual({});
  });

  it('gives small VMs the minimum and leaves foreign disk paths alone', () => {
    expect(domainMemoryMb(256, { divisor: 16, minMb: 32 })).toBe(32);
    expect(domainMemoryMb(1024, { divisor: 16, minMb: 32 })).toBe(64);
    expect(domainMemoryMb(1024, { divisor: 1, minMb: 32 })).toBe(1024);
    expect(disks.toReal('/elsewhere/disk.img')).toBe('/elsewhere/disk.img');
    expect(disks.toCanonical(`${dir}/p-s2-vol-b/disk.raw`)).toBe('/cloudbed/vol-b/disk.raw');
    expect(disks.toCanonical(`${dir}/p-s2-a/b/disk.raw`)).toBe(`${dir}/p-s2-a/b/disk.raw`);
  });
});

/** A storage that keeps datasets in a map with the real pool's name `tank`. */
function fakeStorage(): Storage & { readonly sizes: Map<string, number> } {
  const sizes = new Map<string, number>();
  const info = (name: string): DatasetInfo => ({
    name: `tank/${name}`,
    kind: name.includes('@') ? 'snapshot' : 'volume',
    sizeBytes: sizes.get(name)!,
    origin: name === 'clone' ? 'tank/vol@s' : null,
  });
  return {
    sizes,
    pool: () => Promise.resolve({ name: 'tank', sizeBytes: 4 << 30, freeBytes: 3 << 30 }),
    list: () => Promise.resolve([...sizes.keys()].sort().map(info)),
    get: (name) => Promise.resolve(sizes.has(name) ? info(name) : null),
    createVolume: (name, size) => {
      sizes.set(name, size);
      return Promise.resolve(info(name));
    },
    resizeVolume: (name, size) => {
      sizes.set(name, size);
      return Promise.resolve(info(name));
    },
    snapshot: (volume, snapshot) => {
      sizes.set(`${volume}@${snapshot}`, sizes.get(volume)!);
      return Promise.resolve(info(`${volume}@${snapshot}`));
    },
    clone: (snapshot, target) => {
      sizes.set(target, sizes.get(snapshot)!);
      return Promise.resolve(info(target));
    },
    rollback: () => Promise.resolve(),
    destroy: (name) => {
      sizes.delete(name);
      return Promise.resolve();
    },
    diskPath: (volume) => `/tank/p-${volume}/disk.raw`,
    close: () => Promise.resolve(),
  };
}

describe('stagingStorage', () => {
  const GiB = 1024 ** 3;

  it('divides sizes on the way in, multiplies them back, and names datasets on the pool cloudbed', async () => {
    const inner = fakeStorage();
    const storage = stagingStorage(inner, { sizeDivisor: 1024, poolSizeBytes: 2048 * GiB });
    expect(await storage.createVolume('vol', 40 * GiB)).toEqual({
      name: 'cloudbed/vol',
      kind: 'volume',
      sizeBytes: 40 * GiB,
      origin: null,
    });
    expect(inner.sizes.get('vol')).toBe(40 * 1024 * 1024);
    await storage.resizeVolume('vol', 50 * GiB);
    expect(inner.sizes.get('vol')).toBe(50 * 1024 * 1024);
    await storage.snapshot('vol', 's');
    expect(await storage.clone('vol@s', 'clone')).toMatchObject({
      name: 'cloudbed/clone',
      origin: 'cloudbed/vol@s',
      sizeBytes: 50 * GiB,
    });
    expect((await storage.list()).map((d) => d.name)).toEqual([
      'cloudbed/clone',
      'cloudbed/vol',
      'cloudbed/vol@s',
    ]);
    // The declared pool, less what the volumes (not snapshots) stand for.
    expect(await storage.pool()).toEqual({
      name: 'cloudbed',
      sizeBytes: 2048 * GiB,
      freeBytes: 1948 * GiB,
    });
    expect(storage.diskPath('vol')).toBe('/tank/p-vol/disk.raw');
  });

  it('refuses a size the divisor does not divide, as invalid-size', async () => {
    const storage = stagingStorage(fakeStorage(), { sizeDivisor: 1024, poolSizeBytes: GiB });
    await expect(storage.createVolume('odd', GiB + 1)).rejects.toSatisfy(
      (error: unknown) => error instanceof StorageError && error.reason === 'invalid-size',
    );
  });
});
