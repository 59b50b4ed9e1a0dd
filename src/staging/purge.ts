/**
 * `cloudbed staging down --purge`: removes everything a staging run created, found by its prefix
 * alone — libvirt domains `<prefix>-…` (destroyed, then undefined), ZFS datasets and snapshots
 * `<pool>/<prefix>-…` (dependents first, never one another run depends on: purge-datasets.ts), the
 * PostgreSQL schema
 * `cloudbed_<prefix>`, Redis keys `<prefix>.…` (the bus uses pub/sub only, so usually none), the
 * ZooKeeper subtree `/cloudbed-<prefix>`, and the state directory. Each step reports one line and
 * carries on after a failure, so a half-broken machine is cleaned as far as it can be; running it
 * again finishes the job.
 */
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { createLibvirtHypervisor } from '../adapters/libvirt-hypervisor.ts';
import { HypervisorError } from '../ports/hypervisor.ts';
import {
  busPrefix,
  runDatasetPrefix,
  runDomainPrefix,
  schemaName,
  zookeeperRoot,
  type StagingConfig,
} from './config.ts';
import { purgeDatasets, type KeptObject } from './purge-datasets.ts';
import { openDriver } from './wiring.ts';

/** One purge step's outcome. */
export interface PurgeStep {
  readonly what: string;
  readonly ok: boolean;
  readonly detail: string;
  /** Objects of the run left in place because something outside the run depends on them. */
  readonly kept?: readonly string[];
}

function reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

async function step(what: string, run: () => Promise<string>): Promise<PurgeStep> {
  try {
    return { what, ok: true, detail: await run() };
  } catch (error) {
    return { what, ok: false, detail: reason(error) };
  }
}

/** Destroys and undefines every domain of the run; returns how many there were. */
export async function purgeDomains(config: StagingConfig): Promise<number> {
  const hypervisor = createLibvirtHypervisor({
    uri: config.libvirt.uri,
    domainPrefix: runDomainPrefix(config),
  });
  try {
    const domains = await hypervisor.listDomains();
    for (const domain of domains) {
      if (domain.state === 'running' || domain.state === 'paused') {
        await hypervisor.destroy(domain.name).catch((error: unknown) => {
          if (!(error instanceof HypervisorError && error.reason === 'not-running')) throw error;
        });
      }
      await hypervisor.undefine(domain.name).catch((error: unknown) => {
        // A transient domain vanished when destroyed: nothing left to undefine.
        if (!(error instanceof HypervisorError && error.reason === 'no-domain')) throw error;
      });
    }
    return domains.length;
  } finally {
    await hypervisor.close();
  }
}

async function purgeSchema(config: StagingConfig): Promise<string> {
  const driver = openDriver(config, 'purge');
  try {
    // The schema name is validated by the config's prefix pattern: safe to write into SQL.
    await driver.query(`DROP SCHEMA IF EXISTS ${schemaName(config)} CASCADE`);
    return `schema ${schemaName(config)} dropped`;
  } finally {
    await driver.close();
  }
}

async function purgeRedis(config: StagingConfig): Promise<string> {
  const client = new Redis(config.redis.url, {
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    let cursor = '0';
    let removed = 0;
    // Bounded: SCAN visits every key once per full cycle; a huge database takes many rounds.
    for (let rounds = 0; rounds < 100_000; rounds++) {
      const [next, keys] = await client.scan(
        cursor,
        'MATCH',
        `${busPrefix(config)}*`,
        'COUNT',
        500,
      );
      if (keys.length > 0) removed += await client.del(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
    return `${removed} keys removed`;
  } finally {
    client.disconnect();
  }
}

/** The part of node-zookeeper-client used here. */
interface ZkPurgeClient {
  connect(): void;
  close(): void;
  once(event: 'connected', listener: () => void): unknown;
  getChildren(path: string, callback: (error: ZkError | null, children: string[]) => void): void;
  remove(path: string, version: number, callback: (error: ZkError | null) => void): void;
}

type ZkError = Error & { getCode?: () => number; code?: number };

interface ZkPurgeModule {
  createClient(
    connectString: string,
    options: { sessionTimeout: number; spinDelay: number; retries: number },
  ): ZkPurgeClient;
}

/** ZooKeeper's NO_NODE and NOT_EMPTY error codes. */
const ZK_NO_NODE = -101;
const ZK_NOT_EMPTY = -111;

/** A ZooKeeper tree as purge walks it; a node that is gone is an empty answer, not an error. */
export interface ZkTree {
  /** The names of `path`'s children; null when `path` does not exist. */
  children(path: string): Promise<string[] | null>;
  /** Removes `path`, which must have no children; false when it was not there. */
  remove(path: string): Promise<boolean>;
}

/** Most nodes one purge walks: a bound, far above what a run creates. */
const ZK_NODES_MAX = 200_000;
/** Walks of the subtree: a node created during a walk (a holder still alive) makes one more. */
const ZK_WALKS = 3;

/** Every node under `root`, `root` included, parents before children (depth first). */
async function subtree(tree: ZkTree, root: string): Promise<string[]> {
  const found: string[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const path = stack.pop() as string;
    const children = await tree.children(path);
    if (children === null) continue;
    found.push(path);
    if (found.length > ZK_NODES_MAX)
      throw new Error(`${root} holds more than ${ZK_NODES_MAX} nodes; not purged`);
    for (const child of [...children].sort().reverse()) stack.push(`${path}/${child}`);
  }
  return found;
}

/**
 * Removes `root` and everything under it, however deep (the lock directory of a holder that was
 * killed sits three levels down, `<root>/locks/<name>/lock-…`), children before parents. Returns
 * how many nodes were removed. node-zookeeper-client's own removeRecursive lists only two levels
 * (its walk reads the array's length once), so it cannot be used.
 */
export async function removeTree(tree: ZkTree, root: string): Promise<number> {
  let removed = 0;
  for (let walk = 1; ; walk++) {
    const nodes = await subtree(tree, root);
    if (nodes.length === 0) return removed;
    try {
      for (const path of nodes.reverse()) if (await tree.remove(path)) removed++;
      return removed;
    } catch (error) {
      // A child appeared after the walk: walk again, bounded.
      if (!(isZkCode(error, ZK_NOT_EMPTY) && walk < ZK_WALKS)) throw error;
    }
  }
}

function isZkCode(error: unknown, code: number): boolean {
  if (!(error instanceof Error)) return false;
  const e = error as ZkError;
  return (typeof e.getCode === 'function' ? e.getCode() : e.code) === code;
}

/** The client as a {@link ZkTree}. */
function zkTree(client: ZkPurgeClient): ZkTree {
  return {
    children: (path) =>
      new Promise((resolve, reject) =>
        client.getChildren(path, (error, children) => {
          if (error === null) resolve(children);
          else if (isZkCode(error, ZK_NO_NODE)) resolve(null);
          else reject(error);
        }),
      ),
    remove: (path) =>
      new Promise((resolve, reject) =>
        client.remove(path, -1, (error) => {
          if (error === null) resolve(true);
          else if (isZkCode(error, ZK_NO_NODE)) resolve(false);
          else reject(error);
        }),
      ),
  };
}

/** How long the ZooKeeper step may take, ms. */
const ZK_PURGE_TIMEOUT_MS = 15_000;

async function purgeZooKeeper(config: StagingConfig): Promise<string> {
  const zk = createRequire(import.meta.url)('node-zookeeper-client') as ZkPurgeModule;
  const root = zookeeperRoot(config);
  const client = zk.createClient(config.zookeeper.address, {
    sessionTimeout: 10_000,
    spinDelay: 200,
    retries: 0,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const connected = new Promise<void>((resolve) => client.once('connected', resolve));
    client.connect();
    const removed = await Promise.race([
      connected.then(() => removeTree(zkTree(client), root)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `ZooKeeper at ${config.zookeeper.address} did not answer within ${ZK_PURGE_TIMEOUT_MS / 1000} s`,
              ),
            ),
          ZK_PURGE_TIMEOUT_MS,
        );
      }),
    ]);
    return removed === 0 ? `${root} was not there` : `${root} removed (${removed} nodes)`;
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

/** The ZFS step: what was destroyed, and each object kept for a dependent outside the run. */
async function datasetStep(config: StagingConfig): Promise<PurgeStep> {
  let kept: readonly KeptObject[] = [];
  const done = await step('zfs', async () => {
    const result = await purgeDatasets({
      pool: config.zfs.pool,
      runPrefix: runDatasetPrefix(config),
    });
    kept = result.kept;
    return `${result.filesystems} file systems and ${result.snapshots} snapshots destroyed${kept.length === 0 ? '' : `; ${kept.length} kept for dependents outside the run`}`;
  });
  if (kept.length === 0) return done;
  return {
    ...done,
    kept: kept.map(
      (k) =>
        `${k.name}: ${k.dependents.join(', ')} (not of this run) depend${k.dependents.length === 1 ? 's' : ''} on it`,
    ),
  };
}

/** Removes everything of the run; one step per kind of thing. */
export async function purge(config: StagingConfig): Promise<PurgeStep[]> {
  const steps: PurgeStep[] = [];
  // Domains before datasets: an image attached to a running domain cannot be unmounted.
  steps.push(await step('libvirt', async () => `${await purgeDomains(config)} domains removed`));
  steps.push(await datasetStep(config));
  steps.push(await step('postgres', () => purgeSchema(config)));
  steps.push(await step('redis', () => purgeRedis(config)));
  steps.push(await step('zookeeper', () => purgeZooKeeper(config)));
  steps.push(
    await step('state', () => {
      rmSync(config.stateDir, { recursive: true, force: true });
      return Promise.resolve(`${config.stateDir} removed`);
    }),
  );
  return steps;
}
