// Goal: purging a run's ZFS objects never touches an object outside the run's prefix. Another run's
// clone of one of this run's snapshots survives, and the snapshot and its dataset are kept and
// reported with that clone's name while everything else of the run goes; objects go dependents
// first without `-r`/`-R`; "dataset is busy" is retried with growing waits, and what stays busy is
// named.
// Method: purgeDatasets over a fake `zfs` command that keeps a pool in memory with ZFS's rules
// (a snapshot with clones, or a dataset with snapshots or children, refuses a plain destroy; `-r`
// and `-R` destroy what real ZFS would, clones of other runs included) and a recorded pause, so
// no time passes; planDatasetPurge on its own for the order.
import { describe, expect, it } from 'vitest';
import { CommandError, type RunResult } from '../../../src/adapters/exec.ts';
import {
  parseZfsList,
  planDatasetPurge,
  purgeDatasets,
  type DatasetPurgeDeps,
  type ZfsObject,
} from '../../../src/staging/purge-datasets.ts';

const POOL = 'tank';

function fail(args: readonly string[], stderr: string): CommandError {
  const commandLine = ['zfs', ...args].join(' ');
  return new CommandError(`${commandLine}: exit 1: ${stderr}`, {
    commandLine,
    exitCode: 1,
    signal: null,
    stderr,
    stdout: '',
    timedOut: false,
    notFound: false,
  });
}

/** A pool in memory behind a fake `zfs list` / `zfs destroy`; records every command. */
function fakeZfs(objects: readonly ZfsObject[], busy: Record<string, number> = {}) {
  const pool = new Map<string, ZfsObject>(
    [{ name: POOL, type: 'filesystem' as const, origin: null }, ...objects].map((o) => [o.name, o]),
  );
  const commands: string[][] = [];
  const pauses: number[] = [];
  const busyLeft = new Map(Object.entries(busy));
  const children = (name: string): ZfsObject[] =>
    [...pool.values()].filter(
      (o) =>
        o.name.startsWith(`${name}@`) ||
        (o.name.startsWith(`${name}/`) && !o.name.slice(name.length + 1).includes('/')),
    );
  const clones = (name: string): ZfsObject[] => [...pool.values()].filter((o) => o.origin === name);
  const destroy = (name: string, flags: readonly string[], args: readonly string[]): void => {
    const object = pool.get(name);
    if (object === undefined) throw fail(args, `cannot open '${name}': dataset does not exist`);
    const recursive = flags.includes('-r') || flags.includes('-R');
    if (object.type === 'snapshot' && clones(name).length > 0) {
      if (!flags.includes('-R'))
        throw fail(args, `cannot destroy '${name}': snapshot has dependent clones`);
      for (const c of clones(name)) destroy(c.name, flags, args);
    }
    if (object.type !== 'snapshot' && children(name).length > 0) {
      if (!recursive) throw fail(args, `cannot destroy '${name}': filesystem has children`);
      for (const c of children(name)) destroy(c.name, flags, args);
    }
    const left = busyLeft.get(name) ?? 0;
    if (left > 0) {
      busyLeft.set(name, left - 1);
      throw fail(args, `cannot destroy '${name}': dataset is busy`);
    }
    pool.delete(name);
  };
  const deps: DatasetPurgeDeps = {
    run: (command, args): Promise<RunResult> => {
      expect(command).toBe('zfs');
      commands.push([...args]);
      if (args[0] === 'list') {
        const stdout = [...pool.values()]
          .map((o) => `${o.name}\t${o.type}\t${o.origin ?? '-'}\n`)
          .join('');
        return Promise.resolve({ stdout, stderr: '' });
      }
      try {
        const name = args[args.length - 1] as string;
        destroy(name, args.slice(1, -1), args);
        return Promise.resolve({ stdout: '', stderr: '' });
      } catch (error) {
        return Promise.reject(error);
      }
    },
    pause: (ms) => {
      pauses.push(ms);
      return Promise.resolve();
    },
  };
  return { deps, commands, pauses, names: () => [...pool.keys()].sort() };
}

const fs = (name: string, origin: string | null = null): ZfsObject => ({
  name: `${POOL}/${name}`,
  type: 'filesystem',
  origin: origin === null ? null : `${POOL}/${origin}`,
});
const snap = (name: string): ZfsObject => ({
  name: `${POOL}/${name}`,
  type: 'snapshot',
  origin: null,
});

/** The run `p`'s image, a snapshot of it, two clones and a snapshot of a volume; run `q` beside. */
const RUN = [
  fs('p-s1-img-1'),
  snap('p-s1-img-1@base'),
  fs('p-s1-vol-1', 'p-s1-img-1@base'),
  fs('p-s1-vol-2', 'p-s1-img-1@base'),
  snap('p-s1-vol-2@snap-1'),
  fs('p-s1-vol-3', 'p-s1-vol-2@snap-1'),
  fs('p-s1-vol-3/child'),
  fs('p-s2-vol-4'),
];
const OTHER = [
  fs('q-s1-img-1'),
  snap('q-s1-img-1@base'),
  fs('q-s1-vol-1', 'q-s1-img-1@base'),
  fs('pp-s1-vol-1'),
];

function destroyed(commands: readonly string[][]): string[] {
  return commands.filter((c) => c[0] === 'destroy').map((c) => c[c.length - 1] as string);
}

describe('purgeDatasets', () => {
  it('destroys every object of the run, dependents first, never with -r or -R, and nothing else', async () => {
    const zfs = fakeZfs([...RUN, ...OTHER]);
    const result = await purgeDatasets({ pool: POOL, runPrefix: 'p-' }, zfs.deps);
    expect(result).toEqual({ filesystems: 6, snapshots: 2, kept: [] });
    expect(zfs.names()).toEqual([POOL, ...OTHER.map((o) => o.name)].sort());
    for (const c of zfs.commands.filter((c) => c[0] === 'destroy')) {
      expect(c).not.toContain('-r');
      expect(c).not.toContain('-R');
    }
    const order = destroyed(zfs.commands);
    const before = (a: string, b: string) =>
      expect(order.indexOf(`${POOL}/${a}`)).toBeLessThan(order.indexOf(`${POOL}/${b}`));
    before('p-s1-vol-1', 'p-s1-img-1@base');
    before('p-s1-vol-3', 'p-s1-vol-2@snap-1');
    before('p-s1-vol-3/child', 'p-s1-vol-3');
    before('p-s1-vol-2@snap-1', 'p-s1-vol-2');
    before('p-s1-img-1@base', 'p-s1-img-1');
  });

  it('keeps a snapshot another run cloned, and its dataset, naming the clone; purges the rest', async () => {
    const outside = fs('q-s1-vol-9', 'p-s1-img-1@base');
    const zfs = fakeZfs([...RUN, ...OTHER, outside]);
    const result = await purgeDatasets({ pool: POOL, runPrefix: 'p-' }, zfs.deps);
    expect(result.kept).toEqual([
      { name: `${POOL}/p-s1-img-1`, dependents: [outside.name] },
      { name: `${POOL}/p-s1-img-1@base`, dependents: [outside.name] },
    ]);
    expect(zfs.names()).toEqual(
      [
        POOL,
        ...OTHER.map((o) => o.name),
        outside.name,
        `${POOL}/p-s1-img-1`,
        `${POOL}/p-s1-img-1@base`,
      ].sort(),
    );
    expect(destroyed(zfs.commands)).not.toContain(outside.name);
    expect(result).toMatchObject({ filesystems: 5, snapshots: 1 });
  });

  it('keeps the whole chain above an outside clone of a snapshot of a clone', async () => {
    const outside = fs('q-s1-vol-9', 'p-s1-vol-2@snap-1');
    const zfs = fakeZfs([...RUN, outside]);
    const result = await purgeDatasets({ pool: POOL, runPrefix: 'p-' }, zfs.deps);
    expect(result.kept.map((k) => k.name)).toEqual(
      ['p-s1-img-1', 'p-s1-img-1@base', 'p-s1-vol-2', 'p-s1-vol-2@snap-1'].map(
        (n) => `${POOL}/${n}`,
      ),
    );
    expect(zfs.names()).toContain(outside.name);
    expect(zfs.names()).not.toContain(`${POOL}/p-s1-vol-3`);
  });

  it('retries a busy dataset with growing waits, and names what stays busy', async () => {
    const zfs = fakeZfs([fs('p-s1-vol-1'), fs('p-s1-vol-2')], { [`${POOL}/p-s1-vol-1`]: 3 });
    const result = await purgeDatasets({ pool: POOL, runPrefix: 'p-' }, zfs.deps);
    expect(result).toEqual({ filesystems: 2, snapshots: 0, kept: [] });
    expect(zfs.pauses).toEqual([250, 500, 1_000]);

    const stuck = fakeZfs([fs('p-s1-vol-1'), fs('p-s1-vol-2')], { [`${POOL}/p-s1-vol-1`]: 1_000 });
    await expect(purgeDatasets({ pool: POOL, runPrefix: 'p-' }, stuck.deps)).rejects.toThrow(
      /1 datasets or snapshots remain \(tank\/p-s1-vol-1\):.*busy/,
    );
    // Bounded, and the other dataset went anyway.
    expect(stuck.pauses.length).toBeLessThan(20);
    expect(stuck.names()).toEqual([POOL, `${POOL}/p-s1-vol-1`]);
  });

  it('counts an object that vanished meanwhile as gone', async () => {
    const zfs = fakeZfs([fs('p-s1-vol-1')]);
    const run = zfs.deps.run;
    let first = true;
    const deps: DatasetPurgeDeps = {
      ...zfs.deps,
      run: (command, args, options) => {
        if (args[0] === 'destroy' && first) {
          first = false;
          return Promise.reject(
            fail(args, `cannot open '${String(args[2])}': dataset does not exist`),
          );
        }
        return run(command, args, options);
      },
    };
    expect(await purgeDatasets({ pool: POOL, runPrefix: 'p-' }, deps)).toEqual({
      filesystems: 0,
      snapshots: 0,
      kept: [],
    });
  });
});

describe('planDatasetPurge', () => {
  it('places each object after all its dependents, and owns only names under the prefix', () => {
    const objects = parseZfsList(
      [...RUN, ...OTHER].map((o) => `${o.name}\t${o.type}\t${o.origin ?? '-'}`).join('\n'),
    );
    const plan = planDatasetPurge(objects, `${POOL}/p-`);
    const names = plan.order.map((o) => o.name);
    expect(names.sort()).toEqual(RUN.map((o) => o.name).sort());
    const position = new Map(plan.order.map((o, i) => [o.name, i]));
    for (const o of plan.order) {
      if (o.origin !== null && position.has(o.origin))
        expect(position.get(o.name)).toBeLessThan(position.get(o.origin)!);
      const parent = o.name.includes('@')
        ? o.name.split('@')[0]!
        : o.name.slice(0, o.name.lastIndexOf('/'));
      if (position.has(parent)) expect(position.get(o.name)).toBeLessThan(position.get(parent)!);
    }
    expect(() => planDatasetPurge(objects, 'tank/p')).toThrow(/prefix/);
  });
});
