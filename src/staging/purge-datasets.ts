/**
 * The ZFS part of `cloudbed staging down --purge`: destroys the run's datasets and snapshots
 * (`<pool>/<prefix>-…`) and nothing else. Runs share one pool, and another run (or a person) may
 * have cloned one of this run's snapshots: `zfs destroy -R` would take that clone with it. So the
 * whole pool is listed with each object's origin, the run's objects are destroyed one by one
 * without `-r`/`-R`, dependents first (clones before their origin snapshots, snapshots and child
 * datasets before their dataset), and an object of the run that something outside the run depends
 * on — directly or through other objects of the run — is kept and reported with those dependents.
 *
 * Uses the `zfs` command itself rather than the adapter: purge must work on whatever a crashed run
 * left, including half-made volumes the adapter would refuse to read. Right after `virsh destroy`
 * (and right after a dataset is created, on zfs-fuse) a destroy can fail with "dataset is busy"
 * for a few seconds: that is retried with exponential backoff, bounded.
 */
import { assert } from '../lib/assert.ts';
import { CommandError, runCommand, type RunOptions, type RunResult } from '../adapters/exec.ts';

/** One ZFS object as `zfs list -H -o name,type,origin -t all` prints it. */
export interface ZfsObject {
  readonly name: string;
  readonly type: 'filesystem' | 'volume' | 'snapshot';
  /** The snapshot a clone was made from, or null. */
  readonly origin: string | null;
}

/** An object of the run left in place because something outside the run depends on it. */
export interface KeptObject {
  readonly name: string;
  /** The objects outside the run that depend on it, directly or through objects of the run. */
  readonly dependents: readonly string[];
}

/** The order to destroy the run's objects in, and what must stay. */
export interface DatasetPlan {
  /** Every object of the run that can go, each after everything that depends on it. */
  readonly order: readonly ZfsObject[];
  readonly kept: readonly KeptObject[];
}

/** What a dataset purge did. */
export interface DatasetPurgeResult {
  readonly filesystems: number;
  readonly snapshots: number;
  readonly kept: readonly KeptObject[];
}

/** How purge reaches `zfs` and waits; tests replace both. */
export interface DatasetPurgeDeps {
  readonly run: (
    command: string,
    args: readonly string[],
    options: RunOptions,
  ) => Promise<RunResult>;
  readonly pause: (ms: number) => Promise<void>;
}

/** Timeout of one zfs command, ms. */
const ZFS_TIMEOUT_MS = 60_000;
/** Attempts at destroying one busy object; waits double from the first up to the cap (≈ 30 s). */
const BUSY_ATTEMPTS = 10;
const BUSY_FIRST_WAIT_MS = 250;
const BUSY_WAIT_MS_MAX = 5_000;

/** Parses `zfs list -H -o name,type,origin -t all` output. */
export function parseZfsList(stdout: string): ZfsObject[] {
  const objects: ZfsObject[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const [name, type, origin] = line.split('\t');
    assert(
      name !== undefined && (type === 'filesystem' || type === 'volume' || type === 'snapshot'),
      `unexpected zfs list line '${line}'`,
    );
    objects.push({ name, type, origin: origin === undefined || origin === '-' ? null : origin });
  }
  return objects;
}

/** The object `name` hangs under: a snapshot's dataset, a child dataset's parent; null for a pool. */
function parentOf(name: string): string | null {
  const at = name.indexOf('@');
  if (at >= 0) return name.slice(0, at);
  const slash = name.lastIndexOf('/');
  return slash >= 0 ? name.slice(0, slash) : null;
}

/** True when `name` belongs to the run: its dataset's name starts with `prefix` (`<pool>/<run>-`). */
export function isOwned(name: string, prefix: string): boolean {
  const at = name.indexOf('@');
  return (at >= 0 ? name.slice(0, at) : name).startsWith(prefix);
}

/**
 * Plans the purge of every object whose name starts with `prefix` (`<pool>/<run prefix>-`), given
 * every object of the pool. Pure.
 */
export function planDatasetPurge(objects: readonly ZfsObject[], prefix: string): DatasetPlan {
  assert(
    /^[^/@]+\/[^/@]+-$/.test(prefix),
    `dataset prefix must be '<pool>/<run>-', got '${prefix}'`,
  );
  const byName = new Map(objects.map((o) => [o.name, o]));
  const dependents = new Map<string, string[]>();
  const depend = (on: string | null, who: string): void => {
    if (on === null || !byName.has(on)) return;
    const list = dependents.get(on) ?? [];
    list.push(who);
    dependents.set(on, list);
  };
  for (const o of objects) {
    depend(parentOf(o.name), o.name);
    depend(o.origin, o.name);
  }
  for (const list of dependents.values()) list.sort();

  // The outside objects each object of the run has below it; memoised, cycles are a bug.
  const outside = new Map<string, readonly string[]>();
  const visiting = new Set<string>();
  const outsideOf = (name: string): readonly string[] => {
    const known = outside.get(name);
    if (known !== undefined) return known;
    assert(!visiting.has(name), `zfs dependency cycle through ${name}`);
    visiting.add(name);
    const found = new Set<string>();
    for (const d of dependents.get(name) ?? []) {
      if (!isOwned(d, prefix)) found.add(d);
      else for (const o of outsideOf(d)) found.add(o);
    }
    visiting.delete(name);
    const result = [...found].sort();
    outside.set(name, result);
    return result;
  };

  const owned = objects
    .filter((o) => isOwned(o.name, prefix))
    .map((o) => o.name)
    .sort();
  const kept: KeptObject[] = [];
  for (const name of owned) {
    const blockers = outsideOf(name);
    if (blockers.length > 0) kept.push({ name, dependents: blockers });
  }
  const keptNames = new Set(kept.map((k) => k.name));

  // Post-order: an object goes after every dependent of the run (all of which can go too: a
  // dependent that must stay makes its ancestors stay).
  const order: ZfsObject[] = [];
  const placed = new Set<string>();
  const place = (name: string): void => {
    if (placed.has(name) || keptNames.has(name)) return;
    placed.add(name);
    for (const d of dependents.get(name) ?? []) place(d);
    order.push(byName.get(name) as ZfsObject);
  };
  for (const name of owned) place(name);
  return { order, kept };
}

function isGone(error: unknown): boolean {
  return error instanceof CommandError && /does not exist/i.test(error.stderr);
}

function isBusy(error: unknown): boolean {
  return error instanceof CommandError && /busy/i.test(error.stderr);
}

/** Destroys one object without -r/-R; retries "busy" with backoff. False if it was already gone. */
async function destroyOne(object: ZfsObject, deps: DatasetPurgeDeps): Promise<boolean> {
  // -f force-unmounts a file system (only that one); snapshots are not mounted.
  const args =
    object.type === 'snapshot' ? ['destroy', object.name] : ['destroy', '-f', object.name];
  let waitMs = BUSY_FIRST_WAIT_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      await deps.run('zfs', args, { timeoutMs: ZFS_TIMEOUT_MS });
      return true;
    } catch (error) {
      if (isGone(error)) return false;
      if (!isBusy(error) || attempt >= BUSY_ATTEMPTS) throw error;
      await deps.pause(waitMs);
      waitMs = Math.min(waitMs * 2, BUSY_WAIT_MS_MAX);
    }
  }
}

async function listPool(pool: string, deps: DatasetPurgeDeps): Promise<ZfsObject[]> {
  const { stdout } = await deps.run(
    'zfs',
    ['list', '-H', '-o', 'name,type,origin', '-t', 'all', '-r', pool],
    { timeoutMs: ZFS_TIMEOUT_MS },
  );
  return parseZfsList(stdout);
}

const defaultDeps: DatasetPurgeDeps = {
  run: runCommand,
  pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * Destroys every object of `pool` whose name starts with `<pool>/<runPrefix>` except those kept
 * for outside dependents. Carries on past a failure; throws at the end if anything the plan meant
 * to destroy is still there, naming it.
 */
export async function purgeDatasets(
  options: { readonly pool: string; readonly runPrefix: string },
  deps: DatasetPurgeDeps = defaultDeps,
): Promise<DatasetPurgeResult> {
  const prefix = `${options.pool}/${options.runPrefix}`;
  const plan = planDatasetPurge(await listPool(options.pool, deps), prefix);
  let filesystems = 0;
  let snapshots = 0;
  const failures: string[] = [];
  for (const object of plan.order) {
    try {
      if (!(await destroyOne(object, deps))) continue;
      if (object.type === 'snapshot') snapshots++;
      else filesystems++;
    } catch (error) {
      failures.push(error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error));
    }
  }
  if (failures.length > 0) {
    const kept = new Set(plan.kept.map((k) => k.name));
    const left = (await listPool(options.pool, deps)).filter(
      (o) => isOwned(o.name, prefix) && !kept.has(o.name),
    );
    if (left.length > 0)
      throw new Error(
        `${left.length} datasets or snapshots remain (${left
          .slice(0, 3)
          .map((o) => o.name)
          .join(', ')}): ${failures[0] ?? ''}`,
      );
  }
  return { filesystems, snapshots, kept: plan.kept };
}
