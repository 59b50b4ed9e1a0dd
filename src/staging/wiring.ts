/**
 * The real ports of a staging deployment, built from its staging file: the SQL event store on
 * PostgreSQL (schema `cloudbed_<prefix>`), the Redis bus (channels `<prefix>.…`), ZooKeeper locks
 * (under `/cloudbed-<prefix>`), and per host the libvirt hypervisor and the ZFS storage behind the
 * staging decorators of hosts.ts. `cloudbed process` wires one control-plane process from
 * these; `cloudbed staging` uses them to migrate, bootstrap, register hosts and purge.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createLibvirtHypervisor } from '../adapters/libvirt-hypervisor.ts';
import { createPostgresDriver } from '../adapters/postgres-driver.ts';
import { createRedisBus, type RedisBus } from '../adapters/redis-bus.ts';
import { createSqlEventStore } from '../adapters/sql-event-store.ts';
import type { SqlDriver } from '../adapters/sql.ts';
import { createZfsStorage } from '../adapters/zfs-storage.ts';
import { createZooKeeperLocks } from '../adapters/zookeeper-locks.ts';
import { upcast } from '../model/events.ts';
import { projector } from '../model/projector.ts';
import { BYTES_PER_GB } from '../model/resources.ts';
import type { EventStore } from '../ports/event-store.ts';
import type { Hypervisor } from '../ports/hypervisor.ts';
import type { Locks } from '../ports/locks.ts';
import type { Log } from '../ports/runtime.ts';
import type { Storage } from '../ports/storage.ts';
import {
  busPrefix,
  hostDomainPrefix,
  nodeDatasetPrefix,
  schemaName,
  zookeeperRoot,
  type DomainType,
  type StagingConfig,
  type StagingHost,
} from './config.ts';
import { diskPathsOn, MemoryLedger, stagingHypervisor, stagingStorage } from './hosts.ts';

/** A PostgreSQL driver for the run's database, its connections named after `owner`. */
export function openDriver(config: StagingConfig, owner: string): SqlDriver {
  return createPostgresDriver({
    connectionString: config.database.url,
    applicationName: applicationNameOf(config, owner),
    maxConnections: 5,
  });
}

/** The application_name of process `owner`'s database connections (`pg_stat_activity`). */
export function applicationNameOf(config: StagingConfig, owner: string): string {
  return `cloudbed-${config.prefix}-${owner}`;
}

/** The run's event store; migrates its schema first (safe to repeat). */
export function openStore(config: StagingConfig, applicationName: string): Promise<EventStore> {
  return createSqlEventStore({
    driver: openDriver(config, applicationName),
    schema: schemaName(config),
    projector,
    upcast,
  });
}

/**
 * A Redis connection that reconnects forever (a bus must survive a Redis restart). Connection
 * errors are logged, at most one line per {@link REDIS_ERROR_LOG_MS}: without a listener ioredis
 * prints every reconnect failure as an "unhandled error event".
 */
export function redisClient(
  config: StagingConfig,
  log: Pick<Log, 'warn'>,
  role: 'publisher' | 'subscriber',
  owner: string,
): Redis {
  const client = new Redis(config.redis.url, {
    // Named (CLIENT SETNAME on every connect) so a chaos run can cut exactly this connection.
    connectionName: redisClientName(config, owner, role),
    connectTimeout: 5_000,
    // Publishing fails fast while Redis is away: the bus is lossy by contract, callers re-send.
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    // The ready check sends INFO, which a connection already in subscriber mode must not (a
    // SUBSCRIBE queued while connecting goes first): the subscriber skips it.
    enableReadyCheck: role === 'publisher',
  });
  let lastLogMs = 0;
  client.on('error', (error: Error) => {
    const now = Date.now();
    if (now - lastLogMs < REDIS_ERROR_LOG_MS) return;
    lastLogMs = now;
    log.warn('redis.error', { role, error: error.message });
  });
  return client;
}

/** Least time between two logged Redis connection errors of one client, ms. */
const REDIS_ERROR_LOG_MS = 10_000;

/** The name a process's Redis connection has on the server (`CLIENT LIST`). */
export function redisClientName(
  config: StagingConfig,
  owner: string,
  role: 'publisher' | 'subscriber',
): string {
  return `${applicationNameOf(config, owner)}-${role}`;
}

/** The bus of process `owner` over two Redis connections. */
export function openBus(config: StagingConfig, log: Pick<Log, 'warn'>, owner: string): RedisBus {
  return createRedisBus({
    publisher: redisClient(config, log, 'publisher', owner),
    subscriber: redisClient(config, log, 'subscriber', owner),
    prefix: busPrefix(config),
    log,
  });
}

/** The run's lock service on ZooKeeper. */
export function openLocks(config: StagingConfig): Locks {
  return createZooKeeperLocks({
    connectString: config.zookeeper.address,
    chroot: zookeeperRoot(config),
  });
}

/** `auto` resolved: kvm when this machine's /dev/kvm can be opened read-write, else qemu (TCG). */
export function domainTypeOf(config: StagingConfig): DomainType {
  if (config.libvirt.domainType !== 'auto') return config.libvirt.domainType;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return 'kvm';
  } catch {
    return 'qemu';
  }
}

/** The ZFS adapter confined to one storage node's datasets (no size scaling). */
export function nodeZfs(config: StagingConfig, node: string): Storage {
  return createZfsStorage({
    pool: config.zfs.pool,
    datasetPrefix: nodeDatasetPrefix(config, node),
  });
}

/** The storage node `host` as its agent sees it. */
export function openStorage(
  config: StagingConfig,
  host: Extract<StagingHost, { kind: 'storage' }>,
): Storage {
  return stagingStorage(nodeZfs(config, host.name), {
    sizeDivisor: config.zfs.sizeDivisor,
    poolSizeBytes: host.poolSizeGb * BYTES_PER_GB,
  });
}

/** The compute host `host` as its agent sees it. */
export function openHypervisor(
  config: StagingConfig,
  host: Extract<StagingHost, { kind: 'compute' }>,
): Hypervisor {
  const nodes = config.hosts
    .filter((h) => h.kind === 'storage')
    .map((node) => {
      const zfs = nodeZfs(config, node.name);
      return (volume: string): string => zfs.diskPath(volume);
    });
  return stagingHypervisor(
    createLibvirtHypervisor({
      uri: config.libvirt.uri,
      domainPrefix: hostDomainPrefix(config, host.name),
      domainType: domainTypeOf(config),
    }),
    {
      capacity: { vcpus: host.vcpus, memoryMb: host.memoryMb },
      memory: { divisor: config.libvirt.memoryDivisor, minMb: config.libvirt.domainMemoryMinMb },
      ledger: new MemoryLedger(join(config.stateDir, `memory-${host.name}.json`)),
      disks: diskPathsOn(nodes),
    },
  );
}
