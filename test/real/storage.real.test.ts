// Goal: the ZFS adapter keeps the Storage contract on real ZFS (zfs-fuse here), and what only a
// real pool has — image files with data, the dataset prefix — works as documented. Method: the
// contract suite (test/contract/storage.contract.ts) runs on a throwaway 512 MiB file-backed pool of
// its own, `cbtest-<random>-pool`, because it measures free space and fills the pool to the brim
// (a staging run sharing `cloudbed` would disturb the one and suffer from the other); its volumes
// carry the prefix `cbtest-<random>-c-`. The adapter tests then run on `cloudbed` itself, as the
// staging mode uses it, through adapters with dataset prefixes `cbtest-<random>-x<n>-`. Afterwards
// the throwaway pool and every dataset `cloudbed/cbtest-<random>-…` are destroyed, whatever
// happened. Without ZFS the suite is a named skip, or a failure when CI=true (CI must run it:
// scripts/infra/zfs.sh).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createZfsStorage } from '../../src/adapters/zfs-storage.ts';
import type { Storage } from '../../src/ports/storage.ts';
import { storageContract } from '../contract/storage.contract.ts';

const POOL = 'cloudbed';
/** Everything this run creates starts with `<pool>/<RUN>`. */
const RUN = `cbtest-${randomBytes(4).toString('hex')}-`;
const OPERATION_TIMEOUT_MS = 60_000;
/** The contract's own pool and its backing file. */
const CONTRACT_POOL = `${RUN}pool`;
const CONTRACT_POOL_IMAGE = `/var/lib/cloudbed/${CONTRACT_POOL}.img`;
const CONTRACT_POOL_BYTES = 512 * 1024 * 1024;
const MiB = 1024 * 1024;

function zfs(...args: string[]): string {
  return run('zfs', ...args);
}

function run(command: string, ...args: string[]): string {
  return execFileSync(command, args, {
    encoding: 'utf8',
    timeout: OPERATION_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Why the pool cannot be used here, or null when it answers. */
function unavailableReason(): string | null {
  try {
    execFileSync('zpool', ['list', '-H', '-o', 'name', POOL], {
      timeout: OPERATION_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return null;
  } catch (error) {
    return `ZFS pool '${POOL}' does not answer (run scripts/infra/zfs.sh): ${String(error).split('\n')[0]}`;
  }
}

/** Creates the contract's pool once. */
let contractPoolMade = false;
function contractPool(): string {
  if (!contractPoolMade) {
    mkdirSync(dirname(CONTRACT_POOL_IMAGE), { recursive: true });
    writeFileSync(CONTRACT_POOL_IMAGE, '');
    truncateSync(CONTRACT_POOL_IMAGE, CONTRACT_POOL_BYTES);
    run('zpool', 'create', CONTRACT_POOL, CONTRACT_POOL_IMAGE);
    contractPoolMade = true;
  }
  return CONTRACT_POOL;
}

/** Destroys the contract's pool and its file; true when they are gone. */
function removeContractPool(): boolean {
  for (let attempt = 0; attempt < 20 && contractPoolMade; attempt++) {
    try {
      run('zpool', 'destroy', CONTRACT_POOL);
      contractPoolMade = false;
    } catch {
      // Busy for a moment after the last unmount: try again shortly.
      execFileSync('sleep', ['0.25']);
    }
  }
  rmSync(CONTRACT_POOL_IMAGE, { force: true });
  return !contractPoolMade;
}

/** This run's datasets on `cloudbed`. */
function runDatasets(): string[] {
  return zfs('list', '-H', '-o', 'name', '-t', 'all', '-r', POOL)
    .split('\n')
    .filter((n) => n.startsWith(`${POOL}/${RUN}`));
}

/** Destroys every dataset of this run; returns what is still left. */
function removeRunDatasets(): string[] {
  for (let round = 0; round < 10 && runDatasets().length > 0; round++) {
    for (const name of runDatasets().filter((n) => !n.includes('@'))) {
      try {
        zfs('unmount', name);
      } catch {
        // Not mounted, or gone with an earlier -R.
      }
      try {
        zfs('destroy', '-R', name);
      } catch {
        // Busy for a moment (zfs-fuse), or gone: the next round retries.
      }
    }
  }
  return runDatasets();
}

const missing = unavailableReason();

if (missing !== null) {
  if (process.env['CI'] === 'true') {
    describe('Storage on ZFS', () => {
      it('needs the ZFS pool in CI', () => {
        throw new Error(missing);
      });
    });
  } else {
    describe.skip(`Storage on ZFS — skipped: ${missing}`, () => {
      it('needs the ZFS pool', () => undefined);
    });
  }
} else {
  afterAll(() => {
    const poolGone = removeContractPool();
    expect(removeRunDatasets()).toEqual([]);
    expect(poolGone, `zpool destroy ${CONTRACT_POOL}`).toBe(true);
  });

  storageContract(
    `zfs-fuse, pool ${CONTRACT_POOL}`,
    () => {
      const storage = createZfsStorage({
        pool: contractPool(),
        operationTimeoutMs: OPERATION_TIMEOUT_MS,
      });
      return Promise.resolve({
        storage,
        settle: <T>(promise: Promise<T>) => promise,
        cleanup: () => storage.close(),
        // As a running domain does: an open handle on the image file.
        holdImage: async (volume: string) => {
          const handle = await open(storage.diskPath(volume), 'r+');
          return () => handle.close();
        },
      });
    },
    // ZFS spends some metadata per dataset (about 60 KiB on zfs-fuse) beyond the reservation.
    { prefix: `${RUN}c-`, freeBytesSlack: MiB },
  );

  describe('zfs adapter on a real pool', () => {
    let serial = 0;
    /** Each test's own dataset prefix: what one test leaves does not show in the next. */
    let prefix = '';
    let st: Storage;

    const fresh = (): Storage => {
      prefix = `${RUN}x${++serial}-`;
      st = createZfsStorage({
        pool: POOL,
        datasetPrefix: prefix,
        operationTimeoutMs: OPERATION_TIMEOUT_MS,
      });
      return st;
    };

    const writeAt = async (path: string, offset: number, text: string): Promise<void> => {
      const handle = await open(path, 'r+');
      try {
        await handle.write(Buffer.from(text), 0, text.length, offset);
      } finally {
        await handle.close();
      }
    };

    const readAt = async (path: string, offset: number, length: number): Promise<string> =>
      (await readFile(path)).subarray(offset, offset + length).toString();

    afterEach(async () => {
      await st.close();
    });

    it('a volume is a dataset holding a sparse image of its size at diskPath', async () => {
      fresh();
      const created = await st.createVolume('img', 16 * MiB);
      // Names are reported without the prefix; the path is the real one.
      expect(created).toEqual({
        name: `${POOL}/img`,
        kind: 'volume',
        sizeBytes: 16 * MiB,
        origin: null,
      });
      const path = st.diskPath('img');
      expect(path).toBe(`/${POOL}/${prefix}img/disk.raw`);
      expect((await stat(path)).size).toBe(16 * MiB);
      expect(
        zfs('get', '-H', '-p', '-o', 'value', 'refreservation', `${POOL}/${prefix}img`).trim(),
      ).toBe(String(16 * MiB));
      await st.resizeVolume('img', 32 * MiB);
      expect((await stat(path)).size).toBe(32 * MiB);
    });

    it('snapshots, clones and rollbacks carry the image data', async () => {
      fresh();
      await st.createVolume('data', 8 * MiB);
      const path = st.diskPath('data');
      await writeAt(path, 4096, 'before');
      await st.snapshot('data', 's1');
      await writeAt(path, 4096, 'after!');
      const clone = await st.clone('data@s1', 'copy');
      expect(clone.origin).toBe(`${POOL}/data@s1`);
      expect(await readAt(st.diskPath('copy'), 4096, 6)).toBe('before');
      expect(await readAt(path, 4096, 6)).toBe('after!');
      await st.destroy('copy');
      await st.rollback('data@s1');
      expect(await readAt(path, 4096, 6)).toBe('before');
    });

    it('sees only datasets with its prefix', async () => {
      fresh();
      await st.createVolume('mine', MiB);
      const plain = createZfsStorage({ pool: POOL, operationTimeoutMs: OPERATION_TIMEOUT_MS });
      try {
        // Outside the prefix: this run's, but not the prefixed adapter's.
        await plain.createVolume(`${RUN}foreign`, MiB);
        expect((await st.list()).map((d) => d.name)).toEqual([`${POOL}/mine`]);
        expect(await st.get(`${RUN}foreign`)).toBeNull();
        expect((await plain.get(`${prefix}mine`))?.sizeBytes).toBe(MiB);
        await plain.destroy(`${RUN}foreign`);
      } finally {
        await plain.close();
      }
      await st.destroy('mine');
      expect(await st.list()).toEqual([]);
    });

    it('the pool is reported with exact byte counts', async () => {
      fresh();
      const pool = await st.pool();
      const used = Number(zfs('get', '-H', '-p', '-o', 'value', 'used', POOL).trim());
      const available = Number(zfs('get', '-H', '-p', '-o', 'value', 'available', POOL).trim());
      expect(pool).toEqual({ name: POOL, sizeBytes: used + available, freeBytes: available });
    });
  });
}
