/**
 * Goal: the naming rules that tie the model to hosts and storage hold — a command's disk source is
 * exactly the path the storage node gives for the volume (`Storage.diskPath`), disk sources of both
 * the current absolute and the older relative form map back to their volume, and access key lookup
 * streams are stable, distinct per key and of their own type.
 *
 * Method: examples, with the simulated storage node on the model's pool name as the reference for
 * disk paths.
 */
import { describe, expect, it } from 'vitest';
import {
  accessKeyStreamId,
  diskSource,
  POOL_NAME,
  resourceTypeOfId,
  volumeIdOfDiskSource,
} from '../../../src/model/resources.ts';
import { SimStorageNode } from '../../../src/sim/hosts/storage-node.ts';
import { Simulation } from '../../../src/sim/simulation.ts';

describe('disk sources', () => {
  it("equal the storage node's disk path of the volume", () => {
    const sim = new Simulation({ seed: 1 });
    const node = new SimStorageNode({ sim, id: 's1', pool: POOL_NAME, sizeBytes: 2 ** 31 });
    for (const id of ['vol-0000abcd', 'vol-1']) {
      expect(diskSource(id)).toBe(node.diskPath(id));
      expect(diskSource(id)).toBe(`/cloudbed/${id}/disk.raw`);
    }
  });

  it('map back to their volume in the absolute and the relative form, and nothing else', () => {
    expect(volumeIdOfDiskSource(diskSource('vol-1'))).toBe('vol-1');
    expect(volumeIdOfDiskSource('/cloudbed/vol-2/disk.raw')).toBe('vol-2');
    expect(volumeIdOfDiskSource('cloudbed/vol-3/disk.raw')).toBe('vol-3');
    for (const other of [
      '/tank/vol-1/disk.raw',
      '//cloudbed/vol-1/disk.raw',
      '/cloudbed/disk.raw',
      '/cloudbed//disk.raw',
      '/cloudbed/a/b/disk.raw',
      '/cloudbed/vol-1/disk.qcow2',
      '',
    ])
      expect(volumeIdOfDiskSource(other), other).toBeNull();
  });
});

describe('access key lookup streams', () => {
  it('are stable, distinct per access key and of type accessKey', () => {
    const a = accessKeyStreamId('AKIAEXAMPLE');
    expect(a).toBe(accessKeyStreamId('AKIAEXAMPLE'));
    expect(a).toMatch(/^accesskey-[0-9a-f]{64}$/);
    expect(accessKeyStreamId('akiaexample')).not.toBe(a);
    expect(accessKeyStreamId('admin key with spaces/and:odd@chars')).toMatch(/^accesskey-/);
    expect(resourceTypeOfId(a)).toBe('accessKey');
  });
});
