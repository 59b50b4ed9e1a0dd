/**
 * Does every service a staging deployment needs answer? One probe per service — PostgreSQL (a
 * query), Redis (PING), ZooKeeper (`srvr`), libvirt (`virsh version`), ZFS (`zpool list <pool>`) —
 * each bounded by a timeout, all run at once. `cloudbed staging up` prints one line per service
 * and refuses to start anything while one is missing, naming it and the script that starts it.
 */
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { runCommand } from '../adapters/exec.ts';
import { createPostgresDriver } from '../adapters/postgres-driver.ts';
import type { StagingConfig } from './config.ts';
import { domainTypeOf } from './wiring.ts';

/** How long one probe may take, ms. */
export const PROBE_TIMEOUT_MS = 5_000;

/** What a probe found. */
export interface ServiceStatus {
  /** `postgres`, `redis`, `zookeeper`, `libvirt`, `zfs`. */
  readonly service: string;
  readonly ok: boolean;
  /** Version or pool health when ok; the failure otherwise. */
  readonly detail: string;
  /** Where it was looked for. */
  readonly where: string;
}

/** The command that installs and starts every service. */
export const SETUP_HINT = 'start it with scripts/setup-infra.sh (as root)';

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

/** Rejects after `ms` unless `promise` settles first. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function probe(
  service: string,
  where: string,
  run: () => Promise<string>,
): Promise<ServiceStatus> {
  try {
    const detail = await within(run(), PROBE_TIMEOUT_MS, service);
    return { service, ok: true, detail, where };
  } catch (error) {
    return { service, ok: false, detail: message(error), where };
  }
}

/** A URL without its password, for printing. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

async function postgres(config: StagingConfig): Promise<string> {
  const driver = createPostgresDriver({
    connectionString: config.database.url,
    maxConnections: 1,
    connectTimeoutMs: PROBE_TIMEOUT_MS,
    statementTimeoutMs: PROBE_TIMEOUT_MS,
    applicationName: 'cloudbed-staging-check',
  });
  try {
    const { rows } = await driver.query<{ version: string }>('SELECT version() AS version');
    const version = rows[0]?.version ?? 'unknown';
    return /^PostgreSQL [^\s,]+/.exec(version)?.[0] ?? version;
  } finally {
    await driver.close();
  }
}

async function redis(config: StagingConfig): Promise<string> {
  const client = new Redis(config.redis.url, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // Errors surface through the awaited calls; an unhandled 'error' event would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    const info = await client.info('server');
    return `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'}`;
  } finally {
    client.disconnect();
  }
}

/** ZooKeeper's `srvr` four-letter word: answers `Zookeeper version: …` and `Mode: …`. */
function zookeeper(config: StagingConfig): Promise<string> {
  const [host, port] = config.zookeeper.address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port) });
    let answer = '';
    socket.setTimeout(PROBE_TIMEOUT_MS, () => {
      socket.destroy();
      reject(new Error('connected but no answer to srvr'));
    });
    socket.on('connect', () => socket.write('srvr'));
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    socket.on('error', (error) => reject(error));
    socket.on('close', () => {
      const version = /Zookeeper version: ([^\s,-]+)/.exec(answer)?.[1];
      const mode = /Mode: (\S+)/.exec(answer)?.[1];
      if (version === undefined) reject(new Error(`unexpected srvr answer '${answer.trim()}'`));
      else resolve(`ZooKeeper ${version}${mode === undefined ? '' : ` (${mode})`}`);
    });
  });
}

async function libvirt(config: StagingConfig): Promise<string> {
  const { stdout } = await runCommand('virsh', ['-c', config.libvirt.uri, 'version', '--daemon'], {
    timeoutMs: PROBE_TIMEOUT_MS,
  });
  const daemon = /Running against daemon: (\S+)/.exec(stdout)?.[1] ?? 'unknown';
  const type = domainTypeOf(config);
  return `libvirt ${daemon}, domains type '${type}'${type === 'qemu' ? ' (TCG: /dev/kvm is not usable)' : ''}`;
}

async function zfs(config: StagingConfig): Promise<string> {
  const { stdout } = await runCommand(
    'zpool',
    ['list', '-H', '-o', 'name,size,health', config.zfs.pool],
    { timeoutMs: PROBE_TIMEOUT_MS },
  );
  const [name, size, health] = stdout.trim().split('\t');
  if (health !== 'ONLINE') throw new Error(`pool ${name ?? config.zfs.pool} is ${health ?? '?'}`);
  return `pool ${name ?? config.zfs.pool} ${size ?? '?'} ${health}`;
}

/** Probes every service at once; results in a fixed order. */
export function checkServices(config: StagingConfig): Promise<ServiceStatus[]> {
  return Promise.all([
    probe('postgres', redact(config.database.url), () => postgres(config)),
    probe('redis', redact(config.redis.url), () => redis(config)),
    probe('zookeeper', config.zookeeper.address, () => zookeeper(config)),
    probe('libvirt', config.libvirt.uri, () => libvirt(config)),
    probe('zfs', `pool ${config.zfs.pool}`, () => zfs(config)),
  ]);
}

/** One line per service: `  postgres   ok       PostgreSQL 15.4 (postgres://…)`. */
export function formatStatus(status: ServiceStatus): string {
  const state = status.ok ? 'ok' : 'MISSING';
  const detail = status.ok
    ? `${status.detail} (${status.where})`
    : `${status.where}: ${status.detail}; ${SETUP_HINT}`;
  return `  ${status.service.padEnd(10)} ${state.padEnd(8)} ${detail}`;
}
