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
  removeRecursive(
    path: string,
    callback: (error: (Error & { code?: number }) | null) => void,
  ): void;
}

interface ZkPurgeModule {
  createClient(
    connectString: string,
    options: { sessionTimeout: number; spinDelay: number; retries: number },
  ): ZkPurgeClient;
}

/** ZooKeeper's NO_NODE error code. */
const ZK_NO_NODE = -101;

function purgeZooKeeper(config: StagingConfig): Promise<string> {
  const zk = createRequire(import.meta.url)('node-zookeeper-client') as ZkPurgeModule;
  const root = zookeeperRoot(config);
  const client = zk.createClient(config.zookeeper.address, {
    sessionTimeout: 10_000,
    spinDelay: 200,
    retries: 0,
  });
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('ZooKeeper did not answer within 10 s')),
      10_000,
    );
    client.once('connected', () => {
      client.removeRecursive(root, (error) => {
        clearTimeout(timer);
        if (error === null) resolve(`${root} removed`);
        else if (error.code === ZK_NO_NODE) resolve(`${root} was not there`);
        else reject(error);
      });
    });
    client.connect();
  }).finally(() => client.close());
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
