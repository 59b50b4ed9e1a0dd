// Goal: the ZFS adapter's pure parts — reading `zfs get -H -p` output, ZFS's size notation, the
// mapping of zfs error messages to the port's codes, and name checks that need no command — are
// right without a ZFS daemon. Method: examples, with outputs and messages captured from zfs-fuse
// 0.7 (pool version 23) on this project's machines; name checks go through an adapter whose zfs
// executable does not exist, so any command it tried to run would fail as `unavailable`.
import { describe, expect, it } from 'vitest';
import {
  classifyZfsError,
  createZfsStorage,
  parseZfsGet,
  parseZfsSize,
} from '../../../src/adapters/zfs-storage.ts';
import { CommandError } from '../../../src/adapters/exec.ts';
import { TimeoutError } from '../../../src/ports/errors.ts';
import { StorageError } from '../../../src/ports/storage.ts';

function commandError(stderr: string, extra: { timedOut?: boolean; notFound?: boolean } = {}) {
  return new CommandError(`zfs: ${stderr}`, {
    commandLine: 'zfs x',
    exitCode: extra.timedOut === true || extra.notFound === true ? null : 1,
    signal: null,
    stderr,
    stdout: '',
    timedOut: extra.timedOut ?? false,
    notFound: extra.notFound ?? false,
  });
}

describe('parseZfsGet', () => {
  it('groups name/property/value/source lines by dataset, in order', () => {
    const output = [
      'cloudbed\ttype\tfilesystem\t-',
      'cloudbed\tavailable\t4177432576\t-',
      'cloudbed/t-a\ttype\tfilesystem\t-',
      'cloudbed/t-a\tcloudbed:size\t-\t-',
      'cloudbed/t-a@s1\ttype\tsnapshot\t-',
      'cloudbed/t-a@s1\tcloudbed:size\t8388608\tlocal',
      'cloudbed/t-a@s2\tcloudbed:size\t16777216\tinherited from cloudbed/t-a',
      '',
    ].join('\n');
    const parsed = parseZfsGet(output);
    expect(parsed.map((p) => p.name)).toEqual([
      'cloudbed',
      'cloudbed/t-a',
      'cloudbed/t-a@s1',
      'cloudbed/t-a@s2',
    ]);
    expect(parsed[2]!.values.get('cloudbed:size')).toEqual({ value: '8388608', source: 'local' });
    expect(parsed[3]!.values.get('cloudbed:size')?.source).toBe('inherited from cloudbed/t-a');
    expect(parsed[0]!.values.get('available')?.value).toBe('4177432576');
  });

  it('throws on a line without a value', () => {
    expect(() => parseZfsGet('cloudbed\ttype\n')).toThrow(/unreadable/);
  });
});

describe('parseZfsSize', () => {
  it.each([
    ['4194467840', 4194467840],
    ['0', 0],
    ['512', 512],
    ['352K', 352 * 1024],
    ['3.91G', Math.round(3.91 * 1024 ** 3)],
    ['1.5M', 1.5 * 1024 ** 2],
    ['-', null],
    ['none', null],
  ])('%s is %s', (text, bytes) => {
    expect(parseZfsSize(text)).toBe(bytes);
  });

  it('throws on what is no size', () => {
    expect(() => parseZfsSize('lots')).toThrow(/unreadable ZFS size/);
  });
});

describe('classifyZfsError', () => {
  // stderr as zfs-fuse printed it.
  const cases: [string, string, boolean][] = [
    [`cannot open 'cloudbed/t-nope': dataset does not exist`, 'no-dataset', false],
    [`cannot create 'cloudbed/t-a': dataset already exists`, 'exists', false],
    [`cannot create 'cloudbed/t-c': out of space`, 'no-space', false],
    [
      `cannot set property for 'cloudbed/t-b': size is greater than available space`,
      'no-space',
      false,
    ],
    [
      `cannot destroy 'cloudbed/t-a@s1': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\ncloudbed/t-b`,
      'busy',
      false,
    ],
    [`cannot destroy 'cloudbed/t-e': dataset is busy`, 'busy', false],
    [
      `umount: /cloudbed/t-open: target is busy.\ncannot unmount '/cloudbed/t-open': umount failed: umount child process failed`,
      'busy',
      false,
    ],
    [
      `cannot destroy 'cloudbed/t-a': filesystem has children\nuse '-r' to destroy the following datasets:\ncloudbed/t-a@s1`,
      'has-snapshots',
      false,
    ],
    [
      `cannot rollback to 'cloudbed/t-a@s1': more recent snapshots exist\nuse '-r' to force deletion of the following snapshots:\ncloudbed/t-a@s2`,
      'has-snapshots',
      false,
    ],
    [`cannot create 'cloudbed/a b': invalid character ' ' in name`, 'invalid-name', false],
    [
      `connect: No such file or directory\nPlease make sure that the zfs-fuse daemon is running.\ninternal error: failed to initialize ZFS library`,
      'unavailable',
      true,
    ],
    [`something nobody expected`, 'unavailable', true],
  ];

  it.each(cases)('%j is %s', (stderr, reason, retryable) => {
    const cause = commandError(stderr);
    const error = classifyZfsError('destroy', 'cloudbed/t-a', cause, 1000);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ reason, code: `storage.${reason}`, retryable });
    expect(error.cause).toBe(cause);
    expect(error.message).toContain('cloudbed/t-a');
  });

  it('a timed-out command is a retryable TimeoutError; a missing zfs is unavailable', () => {
    expect(
      classifyZfsError('list', 'cloudbed', commandError('', { timedOut: true }), 5),
    ).toBeInstanceOf(TimeoutError);
    expect(
      classifyZfsError('list', 'cloudbed', commandError('', { notFound: true }), 5),
    ).toMatchObject({ reason: 'unavailable', retryable: true });
  });
});

describe('zfs adapter without a daemon', () => {
  // Any command would fail `unavailable`: what is refused here was refused before running one.
  const storage = createZfsStorage({
    pool: 'cloudbed',
    datasetPrefix: 'cb-',
    zfs: '/nonexistent/zfs',
  });
  const reasonOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'resolved',
      (e: unknown) => (e instanceof StorageError ? e.reason : String(e)),
    );

  it('gives the image path under the prefixed dataset', () => {
    expect(storage.diskPath('vol-1')).toBe('/cloudbed/cb-vol-1/disk.raw');
    expect(() => storage.diskPath('a/b')).toThrow(StorageError);
  });

  it.each(['', 'a/b', 'x@y', 'sp ace', '.', '..', 'ü', 'x'.repeat(300)])(
    'refuses volume name %j as invalid-name',
    async (name) => {
      expect(await reasonOf(storage.createVolume(name, 1024))).toBe('invalid-name');
    },
  );

  it('refuses bad sizes as invalid-size and malformed snapshot names as invalid-name', async () => {
    expect(await reasonOf(storage.createVolume('v', 0))).toBe('invalid-size');
    expect(await reasonOf(storage.createVolume('v', 1.5))).toBe('invalid-size');
    expect(await reasonOf(storage.rollback('v'))).toBe('invalid-name');
    expect(await reasonOf(storage.snapshot('v', 'a@b'))).toBe('invalid-name');
    expect(await reasonOf(storage.clone('v@s', 'x/y'))).toBe('invalid-name');
    expect(await reasonOf(storage.get('cloudbed/v'))).toBe('invalid-name');
  });

  it('a valid request reaches the missing zfs: unavailable', async () => {
    expect(await reasonOf(storage.list())).toBe('unavailable');
  });
});
