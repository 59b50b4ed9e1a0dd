// The Storage port's contract: ZFS semantics every implementation must show — the simulated storage
// node here (test/contract/sim-hosts.test.ts) and the `zfs` adapter on zfs-fuse later (test/real).
// Method: each test gets a fresh fixture from the factory, works only on volumes named with a unique
// prefix (`cbtest-<random>-`), never assumes the pool is empty (listings are filtered by prefix,
// space is measured relative to what is free), and destroys what it made. Sizes are a few MiB so a
// small real pool suffices.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  StorageError,
  type DatasetInfo,
  type Storage,
  type StorageErrorCode,
} from '../../src/ports/storage.ts';

/** What the contract needs from an implementation under test. */
export interface StorageFixture {
  readonly storage: Storage;
  /** Resolves as `promise` does; the simulator drives its world until then, real hosts just wait. */
  settle<T>(promise: Promise<T>): Promise<T>;
  /** Releases the fixture (closes connections). Datasets are removed by the suite itself. */
  cleanup(): Promise<void>;
  /**
   * Opens the image of `volume` (relative name) as a running domain does; resolves with its
   * release. Without it the in-use case is skipped.
   */
  holdImage?(volume: string): Promise<() => Promise<void>>;
}

/** Options for {@link storageContract}. */
export interface StorageContractOptions {
  /**
   * Bytes by which free space may differ from the reservations: real ZFS spends metadata per
   * dataset, and frees the blocks of destroyed datasets asynchronously, a transaction group later,
   * so free space measured around an operation drifts a little either way. Default 0: free space
   * moves by exactly the reservation (the simulator).
   */
  readonly freeBytesSlack?: number;
  /** Name prefix of everything the suite creates; default `cbtest-<8 hex>-`. */
  readonly prefix?: string;
}

const MiB = 1024 * 1024;

/** Registers the Storage contract tests under `describe(name)`. */
export function storageContract(
  name: string,
  factory: () => Promise<StorageFixture>,
  options: StorageContractOptions = {},
): void {
  describe(`Storage contract: ${name}`, () => {
    const prefix = options.prefix ?? `cbtest-${randomBytes(4).toString('hex')}-`;
    const slack = options.freeBytesSlack ?? 0;
    let fx: StorageFixture;
    let st: Storage;
    let pool = '';
    let serial = 0;
    /** A fresh, unique volume name (relative to the pool). */
    const fresh = (label: string): string => `${prefix}${++serial}-${label}`;
    const full = (relative: string): string => `${pool}/${relative}`;
    const ours = (datasets: readonly DatasetInfo[]): DatasetInfo[] =>
      datasets.filter((d) => d.name.startsWith(`${pool}/${prefix}`));
    const expectReason = async (
      promise: Promise<unknown>,
      reason: StorageErrorCode,
    ): Promise<void> => {
      const error = await fx.settle(promise).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, `expected ${reason}`).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ reason, code: `storage.${reason}` });
    };
    const free = async (): Promise<number> => (await fx.settle(st.pool())).freeBytes;
    const volume = async (name: string, sizeBytes = 4 * MiB): Promise<string> => {
      await fx.settle(st.createVolume(name, sizeBytes));
      return name;
    };
    /** The relative name of a full one. */
    const relative = (fullName: string): string => fullName.slice(pool.length + 1);

    beforeEach(async () => {
      fx = await factory();
      st = fx.storage;
      pool = (await fx.settle(st.pool())).name;
    });

    afterEach(async () => {
      // Destroy ours in dependency order: clones before their origins, snapshots before volumes.
      // Each round removes at least the leaves, so rounds are bounded by the depth of the graph.
      for (let round = 0; round < 20; round++) {
        const left = ours(await fx.settle(st.list()));
        if (left.length === 0) break;
        const origins = new Set(left.map((d) => d.origin).filter((o) => o !== null));
        const parents = new Set(
          left.filter((d) => d.kind === 'snapshot').map((d) => d.name.split('@')[0]),
        );
        for (const d of left) {
          const leaf = d.kind === 'snapshot' ? !origins.has(d.name) : !parents.has(d.name);
          if (leaf) await fx.settle(st.destroy(relative(d.name)));
        }
      }
      expect(ours(await fx.settle(st.list()))).toEqual([]);
      await fx.cleanup();
    });

    it('reports the pool with free space within its size', async () => {
      const info = await fx.settle(st.pool());
      expect(info.name.length).toBeGreaterThan(0);
      expect(info.sizeBytes).toBeGreaterThan(0);
      expect(info.freeBytes).toBeGreaterThanOrEqual(0);
      expect(info.freeBytes).toBeLessThanOrEqual(info.sizeBytes);
    });

    it('creates a volume that get and list report', async () => {
      const name = fresh('a');
      const created = await fx.settle(st.createVolume(name, 4 * MiB));
      const expected = { name: full(name), kind: 'volume', sizeBytes: 4 * MiB, origin: null };
      expect(created).toEqual(expected);
      expect(await fx.settle(st.get(name))).toEqual(expected);
      expect(ours(await fx.settle(st.list()))).toEqual([expected]);
    });

    it('returns null for an unknown dataset or snapshot', async () => {
      expect(await fx.settle(st.get(fresh('missing')))).toBeNull();
      const name = await volume(fresh('a'));
      expect(await fx.settle(st.get(`${name}@missing`))).toBeNull();
    });

    it('lists volumes and snapshots sorted by name', async () => {
      const b = await volume(fresh('b'));
      const a = await volume(fresh('a'));
      await fx.settle(st.snapshot(b, 's2'));
      await fx.settle(st.snapshot(b, 's1'));
      await fx.settle(st.snapshot(a, 's1'));
      const all = (await fx.settle(st.list())).map((d) => d.name);
      expect(all).toEqual([...all].sort());
      expect(ours(await fx.settle(st.list())).map((d) => d.name)).toEqual(
        [a, `${a}@s1`, b, `${b}@s1`, `${b}@s2`].map(full).sort(),
      );
    });

    it('creating a taken name is exists and changes nothing', async () => {
      const name = await volume(fresh('a'), 4 * MiB);
      await expectReason(st.createVolume(name, 8 * MiB), 'exists');
      expect(await fx.settle(st.get(name))).toMatchObject({ sizeBytes: 4 * MiB });
    });

    it('a volume reserves its size in the pool until destroyed', async () => {
      const before = await free();
      const name = await volume(fresh('a'), 8 * MiB);
      const during = await free();
      expect(before - during).toBeGreaterThanOrEqual(8 * MiB - slack);
      expect(before - during).toBeLessThanOrEqual(8 * MiB + slack);
      await fx.settle(st.destroy(name));
      expect(await free()).toBeGreaterThanOrEqual(before - slack);
      expect(await fx.settle(st.get(name))).toBeNull();
    });

    it('a volume larger than the free space is no-space and is not created', async () => {
      const name = fresh('huge');
      await expectReason(st.createVolume(name, (await free()) + 64 * MiB), 'no-space');
      expect(await fx.settle(st.get(name))).toBeNull();
    });

    it('rejects invalid names', async () => {
      const base = await volume(fresh('a'));
      const bad = [
        '',
        'a/b',
        `${prefix}x@y`,
        `${prefix}sp ace`,
        '.',
        '..',
        `${prefix}ü`,
        'x'.repeat(300),
      ];
      for (const name of bad) await expectReason(st.createVolume(name, MiB), 'invalid-name');
      for (const snap of ['', 'a@b', 'a/b', 'sp ace']) {
        await expectReason(st.snapshot(base, snap), 'invalid-name');
      }
      await fx.settle(st.snapshot(base, 's1'));
      for (const target of ['', 'a/b', 'x@y']) {
        await expectReason(st.clone(`${base}@s1`, target), 'invalid-name');
      }
      // Names are relative to the pool: a full name is not a volume name.
      await expectReason(st.get(full(base)), 'invalid-name');
      expect(() => st.diskPath('a/b')).toThrow(StorageError);
      expect(ours(await fx.settle(st.list())).map((d) => d.name)).toEqual([
        full(base),
        full(`${base}@s1`),
      ]);
    });

    it('rejects sizes that are not positive integers', async () => {
      for (const size of [0, -MiB, 1.5]) {
        await expectReason(st.createVolume(fresh('bad'), size), 'invalid-size');
      }
      expect(ours(await fx.settle(st.list()))).toEqual([]);
    });

    it('grows a volume; the same size is accepted, smaller is invalid-size', async () => {
      const name = await volume(fresh('a'), 4 * MiB);
      const before = await free();
      expect(await fx.settle(st.resizeVolume(name, 8 * MiB))).toMatchObject({
        name: full(name),
        sizeBytes: 8 * MiB,
      });
      expect(before - (await free())).toBeGreaterThanOrEqual(4 * MiB - slack);
      expect(before - (await free())).toBeLessThanOrEqual(4 * MiB + slack);
      await fx.settle(st.resizeVolume(name, 8 * MiB));
      await expectReason(st.resizeVolume(name, 4 * MiB), 'invalid-size');
      expect(await fx.settle(st.get(name))).toMatchObject({ sizeBytes: 8 * MiB });
    });

    it('growing beyond the free space is no-space; resizing an unknown volume is no-dataset', async () => {
      const name = await volume(fresh('a'), 4 * MiB);
      await expectReason(st.resizeVolume(name, 4 * MiB + (await free()) + 64 * MiB), 'no-space');
      expect(await fx.settle(st.get(name))).toMatchObject({ sizeBytes: 4 * MiB });
      await expectReason(st.resizeVolume(fresh('missing'), 8 * MiB), 'no-dataset');
    });

    it('snapshots capture the volume size; a taken snapshot name is exists', async () => {
      const name = await volume(fresh('a'), 4 * MiB);
      const snap = await fx.settle(st.snapshot(name, 's1'));
      expect(snap).toEqual({
        name: full(`${name}@s1`),
        kind: 'snapshot',
        sizeBytes: 4 * MiB,
        origin: null,
      });
      expect(await fx.settle(st.get(`${name}@s1`))).toEqual(snap);
      await fx.settle(st.resizeVolume(name, 8 * MiB));
      expect(await fx.settle(st.get(`${name}@s1`))).toMatchObject({ sizeBytes: 4 * MiB });
      await expectReason(st.snapshot(name, 's1'), 'exists');
      await expectReason(st.snapshot(fresh('missing'), 's1'), 'no-dataset');
    });

    it('clones a snapshot into a dependent volume that reserves space', async () => {
      const name = await volume(fresh('a'), 4 * MiB);
      await fx.settle(st.snapshot(name, 's1'));
      const before = await free();
      const target = fresh('clone');
      const clone = await fx.settle(st.clone(`${name}@s1`, target));
      expect(clone).toEqual({
        name: full(target),
        kind: 'volume',
        sizeBytes: 4 * MiB,
        origin: full(`${name}@s1`),
      });
      expect(await fx.settle(st.get(target))).toEqual(clone);
      expect(before - (await free())).toBeGreaterThanOrEqual(4 * MiB - slack);
      await expectReason(st.clone(`${name}@s1`, target), 'exists');
      await expectReason(st.clone(`${name}@missing`, fresh('other')), 'no-dataset');
      await expectReason(st.clone(`${name}@s1`, name), 'exists');
    });

    it('a clone that does not fit in the free space is no-space and is not created', async () => {
      const name = await volume(fresh('a'), 8 * MiB);
      await fx.settle(st.snapshot(name, 's1'));
      // Leave less free space than the clone reserves.
      await volume(fresh('filler'), (await free()) - 4 * MiB);
      const target = fresh('clone');
      await expectReason(st.clone(`${name}@s1`, target), 'no-space');
      expect(await fx.settle(st.get(target))).toBeNull();
    });

    it('a snapshot with dependent clones is busy until the clones are gone', async () => {
      const name = await volume(fresh('a'));
      await fx.settle(st.snapshot(name, 's1'));
      const target = fresh('clone');
      await fx.settle(st.clone(`${name}@s1`, target));
      await expectReason(st.destroy(`${name}@s1`), 'busy');
      expect(await fx.settle(st.get(`${name}@s1`))).not.toBeNull();
      await fx.settle(st.destroy(target));
      await fx.settle(st.destroy(`${name}@s1`));
      expect(await fx.settle(st.get(`${name}@s1`))).toBeNull();
    });

    it('a volume with snapshots is has-snapshots until they are gone', async () => {
      const name = await volume(fresh('a'));
      await fx.settle(st.snapshot(name, 's1'));
      await expectReason(st.destroy(name), 'has-snapshots');
      expect(await fx.settle(st.get(name))).not.toBeNull();
      await fx.settle(st.destroy(`${name}@s1`));
      await fx.settle(st.destroy(name));
      expect(await fx.settle(st.get(name))).toBeNull();
    });

    it('a volume whose image is in use is busy until released', async (ctx) => {
      if (fx.holdImage === undefined) return ctx.skip('the fixture cannot hold images open');
      const name = await volume(fresh('a'));
      const release = await fx.holdImage(name);
      try {
        await expectReason(st.destroy(name), 'busy');
        expect(await fx.settle(st.get(name))).toMatchObject({ sizeBytes: 4 * MiB });
        // A running domain's disk can still be snapshotted and cloned.
        await fx.settle(st.snapshot(name, 's1'));
        const target = fresh('clone');
        await fx.settle(st.clone(`${name}@s1`, target));
        await fx.settle(st.destroy(target));
        await fx.settle(st.destroy(`${name}@s1`));
        await expectReason(st.destroy(name), 'busy');
      } finally {
        await release();
      }
      await fx.settle(st.destroy(name));
      expect(await fx.settle(st.get(name))).toBeNull();
    });

    it('destroying an unknown dataset or snapshot is no-dataset', async () => {
      await expectReason(st.destroy(fresh('missing')), 'no-dataset');
      const name = await volume(fresh('a'));
      await expectReason(st.destroy(`${name}@missing`), 'no-dataset');
    });

    it('rolls back to the most recent snapshot only', async () => {
      const name = await volume(fresh('a'), 4 * MiB);
      await fx.settle(st.snapshot(name, 's1'));
      await fx.settle(st.resizeVolume(name, 8 * MiB));
      await fx.settle(st.snapshot(name, 's2'));
      await fx.settle(st.resizeVolume(name, 12 * MiB));
      await fx.settle(st.rollback(`${name}@s2`));
      expect(await fx.settle(st.get(name))).toMatchObject({ sizeBytes: 8 * MiB });
      // An older snapshot would need -r (destroying s2): refused, nothing changes.
      await expectReason(st.rollback(`${name}@s1`), 'has-snapshots');
      expect(await fx.settle(st.get(name))).toMatchObject({ sizeBytes: 8 * MiB });
      expect(await fx.settle(st.get(`${name}@s2`))).not.toBeNull();
      await fx.settle(st.destroy(`${name}@s2`));
      await fx.settle(st.rollback(`${name}@s1`));
      expect(await fx.settle(st.get(name))).toMatchObject({ sizeBytes: 4 * MiB });
      await expectReason(st.rollback(`${name}@missing`), 'no-dataset');
      await expectReason(st.rollback(name), 'invalid-name');
    });

    it('storage errors of a request are not retryable', async () => {
      const name = await volume(fresh('a'));
      const error = await fx.settle(st.createVolume(name, MiB)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).retryable).toBe(false);
    });

    it('gives the disk image path of a volume', () => {
      const name = fresh('a');
      expect(st.diskPath(name)).toBe(`/${pool}/${name}/disk.raw`);
    });
  });
}
