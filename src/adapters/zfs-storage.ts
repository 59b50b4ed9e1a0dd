/**
 * The Storage port over ZFS, driven through the `zfs` command (execFile with a timeout, no shell).
 * It runs the control plane's storage agent against a real pool in staging — on this project's
 * machines zfs-fuse, pool `cloudbed` — and the Storage contract suite in test/real. The semantics
 * are those of the simulated storage node (src/sim/hosts/storage-node.ts); how they are made real:
 *
 * - **Volumes are file systems holding an image.** zfs-fuse has no zvols, so volume `v` is dataset
 *   `<pool>/<prefix>v` with a sparse raw image `disk.raw` of the volume's size at its mountpoint
 *   (`diskPath(v)`, by default `/<pool>/<prefix>v/disk.raw`), which qemu attaches as a file disk.
 *   The size the port reports for a volume is the image's length (its logical size, as in the
 *   simulator); `resizeVolume` grows the file. The length is also recorded in the user property
 *   `cloudbed:size`, which reads use while the volume is unmounted (reads never mount anything). A
 *   volume whose image is missing (a create that died between `zfs create` and the file) reports
 *   size 0 while mounted, and a resize creates the image.
 * - **Reservations.** Each volume carries `refreservation=<size>` (set atomically at create and
 *   clone, updated by resize), so the pool's `available` — the port's `freeBytes` — drops by the
 *   size as in the simulator; ZFS spends a few KiB of metadata per dataset on top. Rollback restores
 *   the image but not the reservation (properties are not part of a snapshot), as simulated.
 * - **Snapshots** record the image length at the time in the user property `cloudbed:size`, set in
 *   the same `zfs snapshot -o` (user properties of snapshots otherwise inherit the live value). A
 *   snapshot made by someone else without it reports its `referenced` bytes.
 * - **Sizes are exact.** zfs-fuse has no `zfs list -p`, but `zfs get -p` prints exact bytes; this
 *   adapter reads everything with `zfs get -H -p`.
 * - **Busy.** zfs-fuse reports ZFS's own "dataset is busy" for transient holds — another `zfs`
 *   command reading the dataset, an unmount that completes a moment after the command returned —
 *   so mutations failing so are retried for a few seconds. A volume is unmounted before it is
 *   destroyed (and mounted again if the destroy then fails); a kernel "target is busy" there means
 *   its image is open — attached to a running domain — and is reported as `busy`.
 * - **Prefix.** With `datasetPrefix`, only volumes whose dataset name starts with it are visible,
 *   and the port's names are the part after it: names reported back are `<pool>/<volume>` without
 *   the prefix, while `diskPath` is the real path.
 * - **Errors.** ZFS's messages map to the port's codes: "dataset does not exist" `no-dataset`,
 *   "already exists" `exists`, "out of space"/"greater than available space" `no-space`, "has
 *   dependent clones" and "dataset is busy" `busy`, "has children"/"more recent snapshots exist"
 *   `has-snapshots`. Names are validated before any command (the port's `DatasetNames`, the
 *   simulator's rules: one ZFS component `[A-Za-z0-9_.:-]`, not `.`/`..`, full name under 256
 *   bytes): `invalid-name`. A daemon
 *   that does not answer is a retryable `unavailable`, a command over `operationTimeoutMs` a
 *   `TimeoutError`; every error keeps the {@link CommandError} (stderr, exit code) as `cause`.
 */
import { open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { assert } from '../lib/assert.ts';
import { TimeoutError } from '../ports/errors.ts';
import {
  checkSizeBytes,
  DatasetNames,
  StorageError,
  type DatasetInfo,
  type PoolInfo,
  type Storage,
  type StorageErrorCode,
} from '../ports/storage.ts';
import { CommandError, runCommand } from './exec.ts';

/** Options for {@link createZfsStorage}. */
export interface ZfsStorageOptions {
  /** The pool whose direct children are the volumes. Default `cloudbed`. */
  readonly pool?: string;
  /**
   * Prepended to every volume name to form the dataset name; only datasets carrying it are visible.
   * ZFS name characters only. Default `''` (every direct child of the pool is visible).
   */
  readonly datasetPrefix?: string;
  /** Timeout of each zfs command in ms; positive. Default 30 000. */
  readonly operationTimeoutMs?: number;
  /** Where the pool's file systems are mounted. Default `/<pool>` (ZFS's default mountpoint). */
  readonly mountRoot?: string;
  /** The zfs executable. Default `zfs` (from PATH). */
  readonly zfs?: string;
}

/** Default timeout of one zfs command. */
export const OPERATION_TIMEOUT_MS_DEFAULT = 30_000;

/** The user property holding a snapshot's image length in bytes. */
export const SIZE_PROPERTY = 'cloudbed:size';

/** Name of the disk image inside a volume's file system. */
export const IMAGE_FILE = 'disk.raw';

/**
 * ZFS's own "dataset is busy" (EBUSY from a hold on the dataset) is transient on zfs-fuse: another
 * `zfs get`/`zfs list` holds datasets while it reads them, and an unmount completes a moment after
 * the command returns. Commands failing so are retried with doubling pauses for about this long.
 * The kernel's "target is busy" (an open file under the mountpoint) is not: see
 * {@link IN_USE_ATTEMPTS}.
 */
const TRANSIENT_BUSY_WAIT_MS_MAX = 6_000;
const TRANSIENT_BUSY_PAUSE_MS_FIRST = 50;
const TRANSIENT_BUSY = /dataset is busy/i;
/** Unmount attempts (150 ms apart) before an image in use is reported `busy`. */
const IN_USE_ATTEMPTS = 3;
const IN_USE_PAUSE_MS = 150;

/** Properties read for every dataset, in `zfs get` order. */
const PROPERTIES = ['type', 'origin', 'mountpoint', 'mounted', SIZE_PROPERTY, 'referenced'];

/** Creates a {@link Storage} over a ZFS pool through the zfs command. Does not contact ZFS yet. */
export function createZfsStorage(options: ZfsStorageOptions = {}): Storage {
  return new ZfsStorage(options);
}

/** One dataset's properties as `zfs get -H -p -o name,property,value,source` printed them. */
export interface ZfsProperties {
  readonly name: string;
  readonly values: ReadonlyMap<string, { readonly value: string; readonly source: string }>;
}

/** Groups `zfs get -H -p -o name,property,value,source` output by dataset, in output order. */
export function parseZfsGet(output: string): ZfsProperties[] {
  const byName = new Map<string, Map<string, { value: string; source: string }>>();
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue;
    const [name, property, value, source] = line.split('\t');
    if (name === undefined || property === undefined || value === undefined) {
      throw new Error(`unreadable zfs get line: ${line}`);
    }
    let values = byName.get(name);
    if (values === undefined) {
      values = new Map<string, { value: string; source: string }>();
      byName.set(name, values);
    }
    values.set(property, { value, source: source ?? '-' });
  }
  return [...byName].map(([name, values]) => ({ name, values }));
}

/**
 * A size as ZFS prints it: exact bytes (`-p`), or human form (`1.5G`, `512K`, `0`, `-`) as plain
 * `zfs list` prints it — which is rounded, hence only a fallback. Returns null for `-`/`none`.
 */
export function parseZfsSize(text: string): number | null {
  const t = text.trim();
  if (t === '-' || t === 'none' || t === '') return null;
  if (/^\d+$/.test(t)) return Number(t);
  const match = /^(\d+(?:\.\d+)?)([BKMGTPE])$/i.exec(t);
  if (match === null) throw new Error(`unreadable ZFS size '${text}'`);
  const power = 'BKMGTPE'.indexOf((match[2] ?? 'B').toUpperCase());
  return Math.round(Number(match[1]) * 1024 ** power);
}

class ZfsStorage implements Storage {
  private readonly poolName: string;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly mountRoot: string;
  private readonly zfsPath: string;
  /** The port's naming rules, on the dataset names this adapter makes (prefix included). */
  private readonly names = new DatasetNames((relative) => this.dataset(relative));
  private closed = false;

  constructor(options: ZfsStorageOptions) {
    this.poolName = options.pool ?? 'cloudbed';
    this.prefix = options.datasetPrefix ?? '';
    this.timeoutMs = options.operationTimeoutMs ?? OPERATION_TIMEOUT_MS_DEFAULT;
    this.mountRoot = options.mountRoot ?? `/${this.poolName}`;
    this.zfsPath = options.zfs ?? 'zfs';
    assert(
      /^[A-Za-z][A-Za-z0-9_.:-]*$/.test(this.poolName),
      `pool name must be a letter then [A-Za-z0-9_.:-], got '${this.poolName}'`,
    );
    assert(
      /^[A-Za-z0-9_.:-]*$/.test(this.prefix),
      `datasetPrefix must use [A-Za-z0-9_.:-], got '${this.prefix}'`,
    );
    assert(
      Number.isSafeInteger(this.timeoutMs) && this.timeoutMs > 0,
      `operationTimeoutMs must be a positive integer, got ${this.timeoutMs}`,
    );
  }

  async pool(): Promise<PoolInfo> {
    const { stdout } = await this.zfs('pool', '', [
      'get',
      '-H',
      '-p',
      '-o',
      'name,property,value,source',
      'used,available',
      this.poolName,
    ]);
    const root = parseZfsGet(stdout)[0];
    const used = parseZfsSize(root?.values.get('used')?.value ?? '-');
    const available = parseZfsSize(root?.values.get('available')?.value ?? '-');
    if (used === null || available === null) {
      throw new StorageError('unavailable', `unreadable space of pool '${this.poolName}'`, {
        retryable: true,
      });
    }
    return { name: this.poolName, sizeBytes: used + available, freeBytes: available };
  }

  async list(): Promise<readonly DatasetInfo[]> {
    const { stdout } = await this.zfs('list', '', [
      'get',
      '-r',
      '-H',
      '-p',
      '-o',
      'name,property,value,source',
      PROPERTIES.join(','),
      this.poolName,
    ]);
    const infos: DatasetInfo[] = [];
    for (const props of parseZfsGet(stdout)) {
      if (this.logicalOf(props.name) === null) continue;
      const info = await this.infoOf(props);
      if (info !== null) infos.push(info);
    }
    return infos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async get(name: string): Promise<DatasetInfo | null> {
    if (name.includes('@')) {
      const { volume, snapshot } = this.names.parseSnapshot(name);
      return this.read(`${volume}@${snapshot}`);
    }
    this.names.checkComponent(name);
    return this.read(name);
  }

  async createVolume(name: string, sizeBytes: number): Promise<DatasetInfo> {
    this.names.checkComponent(name);
    checkSizeBytes(sizeBytes);
    const dataset = this.dataset(name);
    await this.zfs('create', name, [
      'create',
      '-o',
      `refreservation=${sizeBytes}`,
      '-o',
      `${SIZE_PROPERTY}=${sizeBytes}`,
      dataset,
    ]);
    try {
      await this.writeImage(name, sizeBytes, 'create');
    } catch (error) {
      // Leave nothing half made: the volume either exists with its image or not at all.
      await this.destroyVolume(name).catch(() => undefined);
      throw error;
    }
    return this.mustRead(name);
  }

  async resizeVolume(name: string, sizeBytes: number): Promise<DatasetInfo> {
    this.names.checkComponent(name);
    checkSizeBytes(sizeBytes);
    const current = await this.read(name);
    if (current === null) {
      throw new StorageError('no-dataset', `dataset '${this.reported(name)}' does not exist`);
    }
    if (sizeBytes < current.sizeBytes) {
      throw new StorageError(
        'invalid-size',
        `cannot shrink '${current.name}' from ${current.sizeBytes} to ${sizeBytes} bytes`,
      );
    }
    // Reserve first: when the pool has no room, nothing changes.
    await this.mutate('resize', name, ['set', `refreservation=${sizeBytes}`, this.dataset(name)]);
    await this.writeImage(name, sizeBytes, 'grow');
    await this.recordSize(name, sizeBytes);
    return this.mustRead(name);
  }

  async snapshot(volume: string, snapshot: string): Promise<DatasetInfo> {
    const relative = this.names.snapshotName(volume, snapshot);
    const current = await this.read(volume);
    if (current === null) {
      throw new StorageError('no-dataset', `dataset '${this.reported(volume)}' does not exist`);
    }
    await this.zfs('snapshot', relative, [
      'snapshot',
      '-o',
      `${SIZE_PROPERTY}=${current.sizeBytes}`,
      this.dataset(relative),
    ]);
    return this.mustRead(relative);
  }

  async clone(snapshot: string, target: string): Promise<DatasetInfo> {
    const { volume, snapshot: snap } = this.names.parseSnapshot(snapshot);
    this.names.checkComponent(target);
    const source = await this.read(`${volume}@${snap}`);
    if (source === null) {
      throw new StorageError('no-dataset', `no snapshot '${this.reported(`${volume}@${snap}`)}'`);
    }
    await this.zfs('clone', target, [
      'clone',
      '-o',
      `refreservation=${source.sizeBytes}`,
      '-o',
      `${SIZE_PROPERTY}=${source.sizeBytes}`,
      this.dataset(`${volume}@${snap}`),
      this.dataset(target),
    ]);
    return this.mustRead(target);
  }

  async rollback(snapshot: string): Promise<void> {
    const { volume, snapshot: snap } = this.names.parseSnapshot(snapshot);
    const target = await this.read(`${volume}@${snap}`);
    if (target === null) {
      throw new StorageError('no-dataset', `no snapshot '${this.reported(`${volume}@${snap}`)}'`);
    }
    await this.mutate('rollback', `${volume}@${snap}`, [
      'rollback',
      this.dataset(`${volume}@${snap}`),
    ]);
    // Properties are not rolled back: the recorded size follows the image.
    await this.recordSize(volume, target.sizeBytes);
  }

  async destroy(name: string): Promise<void> {
    if (name.includes('@')) {
      const { volume, snapshot } = this.names.parseSnapshot(name);
      await this.mutate('destroy', `${volume}@${snapshot}`, [
        'destroy',
        this.dataset(`${volume}@${snapshot}`),
      ]);
      return;
    }
    this.names.checkComponent(name);
    await this.destroyVolume(name);
  }

  diskPath(volume: string): string {
    this.names.checkComponent(volume);
    return `${this.mountRoot}/${this.prefix}${volume}/${IMAGE_FILE}`;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  // ---- internals ----

  private async destroyVolume(name: string): Promise<void> {
    const dataset = this.dataset(name);
    // Refuse before unmounting: a volume with snapshots stays mounted and usable.
    const { stdout } = await this.zfs('destroy', name, [
      'list',
      '-H',
      '-o',
      'name',
      '-t',
      'snapshot',
      '-r',
      dataset,
    ]);
    const snapshots = stdout.split('\n').filter((line) => line.startsWith(`${dataset}@`));
    if (snapshots.length > 0) {
      throw new StorageError(
        'has-snapshots',
        `dataset '${this.reported(name)}' has snapshots (${snapshots.length})`,
      );
    }
    // Unmount first: `zfs destroy` of a mounted file system on zfs-fuse fails "busy" while its own
    // unmount completes. A kernel "target is busy" here means the image is open: in use.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.mutate('destroy', name, ['unmount', dataset]);
        break;
      } catch (error) {
        // Already unmounted is what we want.
        if (isCommandText(error, /not currently mounted/i)) break;
        const busy = error instanceof StorageError && error.reason === 'busy';
        if (!busy || attempt >= IN_USE_ATTEMPTS) throw error;
        await sleep(IN_USE_PAUSE_MS);
      }
    }
    try {
      await this.mutate('destroy', name, ['destroy', dataset]);
    } catch (error) {
      // Keep the image reachable at its path when the volume stays.
      await this.mutate('destroy', name, ['mount', dataset]).catch(() => undefined);
      throw error;
    }
  }

  /** Records `sizeBytes` as the image length of volume `name` (read while it is unmounted). */
  private async recordSize(name: string, sizeBytes: number): Promise<void> {
    await this.mutate('set', name, ['set', `${SIZE_PROPERTY}=${sizeBytes}`, this.dataset(name)]);
  }

  /** Runs a zfs command, again after doubling pauses while it fails with ZFS's transient "busy". */
  private async mutate(
    operation: string,
    relative: string,
    args: readonly string[],
  ): Promise<{ stdout: string }> {
    let waitedMs = 0;
    for (let pauseMs = TRANSIENT_BUSY_PAUSE_MS_FIRST; ; pauseMs *= 2) {
      try {
        return await this.zfs(operation, relative, args);
      } catch (error) {
        if (!isCommandText(error, TRANSIENT_BUSY) || waitedMs >= TRANSIENT_BUSY_WAIT_MS_MAX) {
          throw error;
        }
        await sleep(pauseMs);
        waitedMs += pauseMs;
      }
    }
  }

  /** Creates (`create`) or grows (`grow`) the image of volume `name` to `sizeBytes`, sparse. */
  private async writeImage(
    name: string,
    sizeBytes: number,
    mode: 'create' | 'grow',
  ): Promise<void> {
    const path = await this.imagePath(name);
    try {
      const handle = await open(path, mode === 'create' ? 'wx' : 'a');
      try {
        const { size } = await handle.stat();
        if (size < sizeBytes) await handle.truncate(sizeBytes);
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw new StorageError(
        'unavailable',
        `cannot write the image of '${this.reported(name)}' at ${path}: ${String(error)}`,
        { retryable: true, cause: error },
      );
    }
  }

  /** The image path of a mounted volume, mounting it if ZFS left it unmounted. */
  private async imagePath(name: string): Promise<string> {
    const props = await this.properties(name);
    if (props === null) {
      throw new StorageError('no-dataset', `dataset '${this.reported(name)}' does not exist`);
    }
    return this.mountedImagePath(props);
  }

  private async mountedImagePath(props: ZfsProperties): Promise<string> {
    const mountpoint = props.values.get('mountpoint')?.value ?? '-';
    if (!mountpoint.startsWith('/')) {
      throw new StorageError(
        'unavailable',
        `dataset '${props.name}' has no mountpoint ('${mountpoint}'), so no image path`,
        { retryable: false },
      );
    }
    if (props.values.get('mounted')?.value !== 'yes') {
      await this.mutate('mount', this.logicalOf(props.name) ?? '', ['mount', props.name]).catch(
        (error: unknown) => {
          if (!isCommandText(error, /already mounted/i)) throw error;
        },
      );
    }
    return `${mountpoint}/${IMAGE_FILE}`;
  }

  private async properties(relative: string): Promise<ZfsProperties | null> {
    try {
      const { stdout } = await this.zfs('get', relative, [
        'get',
        '-H',
        '-p',
        '-o',
        'name,property,value,source',
        PROPERTIES.join(','),
        this.dataset(relative),
      ]);
      return parseZfsGet(stdout)[0] ?? null;
    } catch (error) {
      if (error instanceof StorageError && error.reason === 'no-dataset') return null;
      throw error;
    }
  }

  private async read(relative: string): Promise<DatasetInfo | null> {
    const props = await this.properties(relative);
    return props === null ? null : this.infoOf(props);
  }

  private async mustRead(relative: string): Promise<DatasetInfo> {
    const info = await this.read(relative);
    if (info === null) {
      throw new StorageError('no-dataset', `dataset '${this.reported(relative)}' vanished`, {
        retryable: true,
      });
    }
    return info;
  }

  /** The port's view of a dataset, or null for what is not a volume or snapshot of ours. */
  private async infoOf(props: ZfsProperties): Promise<DatasetInfo | null> {
    const logical = this.logicalOf(props.name);
    if (logical === null) return null;
    const type = props.values.get('type')?.value;
    const name = `${this.poolName}/${logical}`;
    if (type === 'snapshot') {
      const recorded = props.values.get(SIZE_PROPERTY);
      const size =
        recorded !== undefined && recorded.source === 'local'
          ? parseZfsSize(recorded.value)
          : parseZfsSize(props.values.get('referenced')?.value ?? '-');
      return { name, kind: 'snapshot', sizeBytes: size ?? 0, origin: null };
    }
    if (type !== 'filesystem' && type !== 'volume') return null;
    const originText = props.values.get('origin')?.value ?? '-';
    const origin = originText === '-' ? null : this.reportedFull(originText);
    return { name, kind: 'volume', sizeBytes: await this.imageSize(props), origin };
  }

  /**
   * A volume's image length: the file's when the volume is mounted, else the size recorded in
   * `cloudbed:size` (reads never mount: another process may be unmounting it to destroy it).
   */
  private async imageSize(props: ZfsProperties): Promise<number> {
    const mountpoint = props.values.get('mountpoint')?.value ?? '-';
    if (props.values.get('mounted')?.value !== 'yes' || !mountpoint.startsWith('/')) {
      const recorded = props.values.get(SIZE_PROPERTY);
      return recorded?.source === 'local' ? (parseZfsSize(recorded.value) ?? 0) : 0;
    }
    const path = `${mountpoint}/${IMAGE_FILE}`;
    try {
      return (await stat(path)).size;
    } catch (error) {
      // No image: a create that died before writing it (or a dataset vanishing under us).
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw new StorageError('unavailable', `cannot read ${path}: ${String(error)}`, {
        retryable: true,
        cause: error,
      });
    }
  }

  /**
   * `v` or `v@s` for a full dataset name `<pool>/<prefix>v[@s]` that is a volume (a direct child
   * of the pool) of ours or one of its snapshots; null for anything else.
   */
  private logicalOf(full: string): string | null {
    const head = `${this.poolName}/${this.prefix}`;
    if (!full.startsWith(head)) return null;
    const rest = full.slice(head.length);
    const volume = rest.split('@')[0] ?? '';
    if (volume === '' || volume.includes('/')) return null;
    return rest;
  }

  /** A full dataset name as the port reports it: without the prefix when it is ours. */
  private reportedFull(full: string): string {
    const logical = this.logicalOf(full);
    return logical === null ? full : `${this.poolName}/${logical}`;
  }

  private reported(relative: string): string {
    return `${this.poolName}/${relative}`;
  }

  private dataset(relative: string): string {
    return `${this.poolName}/${this.prefix}${relative}`;
  }

  private async zfs(
    operation: string,
    relative: string,
    args: readonly string[],
  ): Promise<{ stdout: string }> {
    assert(!this.closed, 'zfs storage used after close');
    try {
      return await runCommand(this.zfsPath, args, { timeoutMs: this.timeoutMs });
    } catch (error) {
      assert(error instanceof CommandError, 'runCommand rejects with CommandError only');
      const target = relative === '' ? this.poolName : this.reported(relative);
      throw classifyZfsError(operation, target, error, this.timeoutMs);
    }
  }
}

function isCommandText(error: unknown, pattern: RegExp): boolean {
  return (
    error instanceof StorageError &&
    error.cause instanceof CommandError &&
    pattern.test(error.cause.stderr)
  );
}

/** zfs's stderr patterns, first match wins, and the port code each means. */
const ZFS_ERRORS: readonly (readonly [RegExp, StorageErrorCode])[] = [
  [/zfs-fuse daemon|failed to initialize zfs library|^connect\b/im, 'unavailable'],
  [/dataset does not exist|could not find any snapshots|no such pool/i, 'no-dataset'],
  [/already exists/i, 'exists'],
  [/out of space|greater than available space|no space left/i, 'no-space'],
  [/has dependent clones|dataset is busy|device or resource busy|target is busy/i, 'busy'],
  [/more recent snapshots|has children/i, 'has-snapshots'],
  [
    /invalid character|name is too long|empty component|invalid dataset name|multiple '@'/i,
    'invalid-name',
  ],
];

/**
 * Maps a failed zfs command of `operation` on `name` (the reported full name) to the port's error:
 * a {@link StorageError}, or a {@link TimeoutError} when it timed out. The CommandError is the
 * `cause`.
 */
export function classifyZfsError(
  operation: string,
  name: string,
  error: CommandError,
  timeoutMs: number,
): StorageError | TimeoutError {
  if (error.timedOut) return new TimeoutError(`zfs ${operation} '${name}'`, timeoutMs, error);
  const detail = error.stderr.replace(/\n+/g, '; ');
  if (error.details.notFound) {
    return new StorageError('unavailable', `zfs is not installed: ${error.message}`, {
      retryable: true,
      cause: error,
    });
  }
  const code = ZFS_ERRORS.find(([pattern]) => pattern.test(error.stderr))?.[1] ?? 'unavailable';
  // Only the daemon's absence, or a failure nobody explained, is worth retrying as is.
  const retryable = code === 'unavailable';
  return new StorageError(code, `zfs ${operation} '${name}': ${detail || error.message}`, {
    retryable,
    cause: error,
  });
}
