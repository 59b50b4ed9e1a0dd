/**
 * How several staging "hosts" share one real machine. A staging deployment declares compute hosts
 * and storage nodes of any size, but they all run on this machine's one libvirtd and one ZFS pool.
 * Two port decorators make each host look like a machine of its own to its agent, so the agents
 * run unchanged:
 *
 * - {@link stagingHypervisor}: the libvirt adapter already confines a host to its domain prefix.
 *   On top, it reports the host's declared capacity, divides each VM's memory by the staging
 *   file's `memoryDivisor` on the real domain (a 1024 MB VM gets a 64 MiB domain with 16) while
 *   reporting the VM's own figure back (a small ledger file per host remembers it, so a restarted
 *   agent still sees the definition it asked for), and translates disk paths between the control
 *   plane's canonical `/cloudbed/<volume>/disk.raw` and the real file on the run's datasets.
 * - {@link stagingStorage}: the ZFS adapter already confines a node to its dataset prefix
 *   (`<prefix>-<node>-`). On top, it divides disk image sizes by `sizeDivisor` (a 40 GB root disk
 *   is a 40 MiB sparse image: the adapter reserves what it creates, so full sizes would not fit a
 *   small pool), reports the node's declared pool size, and names datasets on the control plane's
 *   pool name (`cloudbed/<volume>`) whatever the real pool is called.
 *
 * Only the staging wiring (wiring.ts, for the roles of roles.ts) uses these; a real deployment with one host per
 * machine runs the adapters as they are.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { assert } from '../lib/assert.ts';
import type {
  DomainDisk,
  DomainInfo,
  DomainSpec,
  HostCapacity,
  Hypervisor,
} from '../ports/hypervisor.ts';
import { StorageError, type DatasetInfo, type PoolInfo, type Storage } from '../ports/storage.ts';

// ---- memory ----

/** Options of {@link domainMemoryMb}. */
export interface MemoryScale {
  /** Divisor of a VM's memory on the real domain, >= 1. */
  readonly divisor: number;
  /** Least memory of a real domain, MiB. */
  readonly minMb: number;
}

/** The memory of the real domain for a VM of `memoryMb`: ceil(memoryMb / divisor), at least minMb. */
export function domainMemoryMb(memoryMb: number, scale: MemoryScale): number {
  assert(
    scale.divisor >= 1 && Number.isInteger(scale.divisor),
    'memory divisor must be a whole number >= 1',
  );
  return Math.max(scale.minMb, Math.ceil(memoryMb / scale.divisor));
}

/**
 * Remembers the memory each domain was defined with, in a JSON file (`{name: memoryMb}`) written
 * atomically (temporary file, then rename) on every change. One agent per host writes it.
 */
export class MemoryLedger {
  private readonly entries = new Map<string, number>();

  /** Reads `file` if it exists; `null` keeps the ledger in memory only (tests). */
  constructor(private readonly file: string | null) {
    if (file === null || !existsSync(file)) return;
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
        for (const [name, value] of Object.entries(data as Record<string, unknown>))
          if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0)
            this.entries.set(name, value);
      }
    } catch {
      // A torn or hand-edited file: start empty; domains then report their scaled-up memory.
    }
  }

  get(name: string): number | undefined {
    return this.entries.get(name);
  }

  set(name: string, memoryMb: number): void {
    if (this.entries.get(name) === memoryMb) return;
    this.entries.set(name, memoryMb);
    this.save();
  }

  delete(name: string): void {
    if (this.entries.delete(name)) this.save();
  }

  private save(): void {
    if (this.file === null) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const sorted = Object.fromEntries([...this.entries].sort(([a], [b]) => (a < b ? -1 : 1)));
    const temporary = `${this.file}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(sorted, null, 2)}\n`);
    renameSync(temporary, this.file);
  }
}

// ---- disk paths ----

/** Translates disk paths between the control plane's canonical form and the real files. */
export interface DiskPaths {
  /** `/cloudbed/<volume>/disk.raw` → the real image path (unknown forms pass unchanged). */
  toReal(source: string): string;
  /** The real image path → `/cloudbed/<volume>/disk.raw` (unknown forms pass unchanged). */
  toCanonical(source: string): string;
}

/** The pool name in canonical disk paths (the control plane's `POOL_NAME`). */
const CANONICAL_POOL = 'cloudbed';
const CANONICAL = new RegExp(`^/${CANONICAL_POOL}/([^/]+)/disk\\.raw$`);

/**
 * Disk paths for volumes held by one of several storage nodes, each given by its `diskPath`
 * function (the ZFS adapter's: `/<pool>/<dataset prefix><volume>/disk.raw`). A canonical path
 * becomes the path on the node where the image exists (probed on disk, so a compute host needs no
 * map of which node holds which volume), or on the first node when none has it yet (the start
 * then fails cleanly: the image does not exist). Real paths map back by the same shape.
 */
export function diskPathsOn(nodes: readonly ((volume: string) => string)[]): DiskPaths {
  assert(nodes.length > 0, 'at least one storage node');
  // Each node's path shape: what comes before and after the volume name.
  const probe = 'PROBE';
  const shapes = nodes.map((diskPath) => {
    const path = diskPath(probe);
    const at = path.lastIndexOf(probe);
    assert(at >= 0, 'a disk path must contain the volume name');
    return { diskPath, before: path.slice(0, at), after: path.slice(at + probe.length) };
  });
  return {
    toReal(source) {
      const match = CANONICAL.exec(source);
      if (match === null) return source;
      const volume = match[1] as string;
      const found = shapes.find((shape) => existsSync(shape.diskPath(volume))) ?? shapes[0];
      assert(found !== undefined, 'at least one storage node');
      return found.diskPath(volume);
    },
    toCanonical(source) {
      for (const { before, after } of shapes) {
        if (!source.startsWith(before) || !source.endsWith(after)) continue;
        const volume = source.slice(before.length, source.length - after.length);
        if (volume.length > 0 && !volume.includes('/'))
          return `/${CANONICAL_POOL}/${volume}/disk.raw`;
      }
      return source;
    },
  };
}

// ---- hypervisor ----

/** Options of {@link stagingHypervisor}. */
export interface StagingHypervisorOptions {
  /** The host's declared capacity: what the agent reports. */
  readonly capacity: HostCapacity;
  readonly memory: MemoryScale;
  readonly ledger: MemoryLedger;
  readonly disks: DiskPaths;
}

/** A compute host of the staging deployment over the (prefix-confined) libvirt adapter. */
export function stagingHypervisor(
  inner: Hypervisor,
  options: StagingHypervisorOptions,
): Hypervisor {
  const { ledger, disks, memory } = options;
  const outward = (domain: DomainInfo): DomainInfo => {
    const remembered = ledger.get(domain.name);
    return {
      name: domain.name,
      state: domain.state,
      vcpus: domain.vcpus,
      // The remembered figure only while the domain still has the memory it maps to.
      memoryMb:
        remembered !== undefined && domainMemoryMb(remembered, memory) === domain.memoryMb
          ? remembered
          : domain.memoryMb * memory.divisor,
      disks: domain.disks.map((disk): DomainDisk => ({
        target: disk.target,
        source: disks.toCanonical(disk.source),
      })),
    };
  };
  return {
    capacity: () => Promise.resolve({ ...options.capacity }),
    listDomains: async () => (await inner.listDomains()).map(outward),
    getDomain: async (name) => {
      const domain = await inner.getDomain(name);
      return domain === null ? null : outward(domain);
    },
    define: async (spec: DomainSpec) => {
      // Remembered first: a crash between the two leaves a harmless extra entry.
      ledger.set(spec.name, spec.memoryMb);
      await inner.define({
        name: spec.name,
        vcpus: spec.vcpus,
        memoryMb: domainMemoryMb(spec.memoryMb, memory),
        disks: spec.disks.map((disk) => ({
          target: disk.target,
          source: disks.toReal(disk.source),
        })),
      });
    },
    start: (name) => inner.start(name),
    shutdown: (name) => inner.shutdown(name),
    destroy: (name) => inner.destroy(name),
    undefine: async (name) => {
      await inner.undefine(name);
      // A running domain stays as a transient one; it reports its scaled-up memory until it stops.
      ledger.delete(name);
    },
    close: () => inner.close(),
  };
}

// ---- storage ----

/** Options of {@link stagingStorage}. */
export interface StagingStorageOptions {
  /** Divisor of disk image sizes, >= 1; sizes handed in must be multiples of it (whole GiB are). */
  readonly sizeDivisor: number;
  /** The node's declared pool size, bytes: what the agent reports. */
  readonly poolSizeBytes: number;
}

/**
 * A storage node of the staging deployment over the (prefix-confined) ZFS adapter: sizes divided
 * on the way in and multiplied on the way out, the declared pool size, and dataset names on the
 * control plane's pool name (`cloudbed/<volume>`) whatever the real pool is called.
 */
export function stagingStorage(inner: Storage, options: StagingStorageOptions): Storage {
  const { sizeDivisor } = options;
  assert(
    Number.isSafeInteger(sizeDivisor) && sizeDivisor >= 1,
    'sizeDivisor must be a whole number >= 1',
  );
  const canonical = (name: string): string => {
    const slash = name.indexOf('/');
    return slash < 0 ? name : `${CANONICAL_POOL}${name.slice(slash)}`;
  };
  const down = (sizeBytes: number): number => {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes % sizeDivisor !== 0)
      throw new StorageError(
        'invalid-size',
        `size ${sizeBytes} is not a multiple of the staging size divisor ${sizeDivisor}`,
      );
    return sizeBytes / sizeDivisor;
  };
  const outward = (info: DatasetInfo): DatasetInfo => ({
    name: canonical(info.name),
    kind: info.kind,
    sizeBytes: info.sizeBytes * sizeDivisor,
    origin: info.origin === null ? null : canonical(info.origin),
  });
  const list = async (): Promise<DatasetInfo[]> => (await inner.list()).map(outward);
  return {
    pool: async (): Promise<PoolInfo> => {
      const reserved = (await list())
        .filter((d) => d.kind === 'volume')
        .reduce((sum, d) => sum + d.sizeBytes, 0);
      return {
        name: CANONICAL_POOL,
        sizeBytes: options.poolSizeBytes,
        freeBytes: Math.max(0, options.poolSizeBytes - reserved),
      };
    },
    list,
    get: async (name) => {
      const info = await inner.get(name);
      return info === null ? null : outward(info);
    },
    createVolume: async (name, sizeBytes) =>
      outward(await inner.createVolume(name, down(sizeBytes))),
    resizeVolume: async (name, sizeBytes) =>
      outward(await inner.resizeVolume(name, down(sizeBytes))),
    snapshot: async (volume, snapshot) => outward(await inner.snapshot(volume, snapshot)),
    clone: async (snapshot, target) => outward(await inner.clone(snapshot, target)),
    rollback: (snapshot) => inner.rollback(snapshot),
    destroy: (name) => inner.destroy(name),
    diskPath: (volume) => inner.diskPath(volume),
    close: () => inner.close(),
  };
}
