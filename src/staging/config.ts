/**
 * The staging file: where the real services are (PostgreSQL, Redis, ZooKeeper, libvirt, ZFS), which
 * hosts the deployment has and how big they are, the API port and the run prefix that names
 * everything the deployment creates. Parsed and validated like scenario files: unknown fields are
 * errors with a spelling hint, and every error is one line naming the file, the line and the field
 * (exit code 2). staging/staging.example.yaml documents every field.
 *
 * Everything a run creates carries its prefix, so runs sharing one machine never collide and a
 * crashed run can be removed by prefix alone: the database schema `cloudbed_<prefix>`, Redis
 * channels `<prefix>.…`, the ZooKeeper subtree `/cloudbed-<prefix>`, libvirt domains
 * `<prefix>-<host>-<vm id>` and ZFS datasets `<pool>/<prefix>-<node>-<volume id>`.
 */
import { DataFileError, parseDataFile } from '../lib/data-file.ts';
import { readDataFile } from '../lib/read-data-file.ts';
import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_MAIN_LOOP_OPTIONS } from '../control/mainloop/main-loop.ts';
import type { RestartPolicy } from './restart-policy.ts';
import {
  bool,
  duration,
  int,
  list,
  object,
  oneOf,
  optional,
  required,
  custom,
  ShapeError,
  str,
  type FieldPath,
  type Shape,
} from '../lib/shape.ts';

/** A bad staging file: one line, `file:line: field: problem`, exit code 2. */
export class StagingConfigError extends DataFileError {
  override name = 'StagingConfigError';
}

/** One host of the deployment, as the staging file declares it. */
export type StagingHost = (
  | {
      readonly name: string;
      readonly kind: 'compute';
      /** vCPUs offered to VMs (what the host row declares and the agent reports). */
      readonly vcpus: number;
      /** Memory offered to VMs in MiB, before {@link StagingConfig.libvirt} scaling. */
      readonly memoryMb: number;
    }
  | {
      readonly name: string;
      readonly kind: 'storage';
      /** Pool size offered to volumes in GiB; disk images are sparse, so it may exceed the real pool. */
      readonly poolSizeGb: number;
    }
) & {
  /** Whether the supervisor restarts the host's agent when it dies. */
  readonly restart: RestartPolicy;
};

/** Whether the staging supervisor restarts a process that dies: `always` or `never`. */
export type { RestartPolicy } from './restart-policy.ts';

/** libvirt's domain type: `kvm` (hardware virtualisation) or `qemu` (TCG emulation). */
export type DomainType = 'kvm' | 'qemu';

/** A validated staging file. */
export interface StagingConfig {
  /** The file it was read from, absolute. */
  readonly file: string;
  /** Run prefix: lowercase letters and digits, starting with a letter, at most 20. */
  readonly prefix: string;
  /** Where pid files, logs and the admin keys live, absolute: `<stateDir>/<prefix>`. */
  readonly stateDir: string;
  readonly database: { readonly url: string };
  readonly redis: { readonly url: string };
  /** `host:port` of ZooKeeper. */
  readonly zookeeper: { readonly address: string };
  readonly libvirt: {
    readonly uri: string;
    /** `auto`: kvm when /dev/kvm is usable, else qemu. */
    readonly domainType: DomainType | 'auto';
    /**
     * A VM's memory is divided by this on the real domain (1024 MB with 16 → 64 MiB), so a laptop
     * runs many "large" VMs; the agent still sees and reports the VM's own figure. 1 disables it.
     */
    readonly memoryDivisor: number;
    /** Least memory a real domain gets, MiB (qemu needs a few MiB to boot its firmware). */
    readonly domainMemoryMinMb: number;
  };
  readonly zfs: {
    readonly pool: string;
    /**
     * Disk images are this many times smaller than the volumes they stand for (1024: a 40 GB
     * volume is a 40 MiB sparse image), so a small file-backed pool holds a realistic workload.
     * Each volume reserves its image size in the pool. 1 disables it.
     */
    readonly sizeDivisor: number;
  };
  readonly api: {
    readonly port: number;
    readonly restart: RestartPolicy;
    /** Origins whose browser scripts may call the API (CORS); default none. */
    readonly corsOrigins: readonly string[];
  };
  readonly mainLoop: {
    readonly sweepIntervalMs: number;
    /** Main loop processes, `mainloop-1` … `mainloop-<n>`; the locks keep them apart. 1..16. */
    readonly instances: number;
    /** Resources each main loop reconciles at once, each under its own lock. 1..64. */
    readonly concurrency: number;
    readonly restart: RestartPolicy;
  };
  readonly background: { readonly restart: RestartPolicy };
  readonly supervisor: {
    /** Restarts of one process allowed in any minute; beyond, it stays down. 1..60. */
    readonly restartsPerMinuteMax: number;
    /** Wait before a first restart, ms; doubles with each restart, at most 30 s. */
    readonly backoffMs: number;
  };
  readonly agents: {
    /** Period of inventories and orphan collection, ms. */
    readonly inventoryIntervalMs: number;
    /** How long a guest may take to shut down on ACPI before it is destroyed, ms. */
    readonly shutdownTimeoutMs: number;
  };
  readonly hosts: readonly StagingHost[];
  /**
   * Whether processes may run a known-broken variant of the control plane (`cloudbed process
   * --mutant NAME`, `cloudbed chaos --mutant NAME`), to prove an experiment catches it. Default
   * false: a deployment that is not meant for it refuses.
   */
  readonly mutants: { readonly allow: boolean };
}

/** Defaults of the optional fields. */
export const STAGING_DEFAULTS = {
  stateDir: '.cloudbed/staging',
  databaseUrl: 'postgres://postgres@127.0.0.1:5432/test',
  redisUrl: 'redis://127.0.0.1:6379',
  zookeeperAddress: '127.0.0.1:2181',
  libvirtUri: 'qemu:///system',
  memoryDivisor: 16,
  domainMemoryMinMb: 32,
  pool: 'cloudbed',
  sizeDivisor: 1024,
  apiPort: 8480,
  sweepIntervalMs: 5_000,
  mainLoops: 2,
  mainLoopConcurrency: DEFAULT_MAIN_LOOP_OPTIONS.concurrency,
  restart: 'always',
  restartsPerMinuteMax: 5,
  restartBackoffMs: 1_000,
  inventoryIntervalMs: 10_000,
  // An image without an OS never answers ACPI: every stop would wait this long, then destroy.
  shutdownTimeoutMs: 5_000,
} as const;

/** A power of two from 1 to `max`: it divides every whole-GiB size exactly. */
function powerOfTwo(max: number): Shape<number> {
  const whole = int({ min: 1, max });
  return custom(
    (value, path) => {
      const n = whole(value, path);
      if ((n & (n - 1)) !== 0)
        throw new ShapeError(path, `must be a power of two (1, 2, 4, … ${max}), got ${n}`);
      return n;
    },
    () => ({ enum: Array.from({ length: Math.floor(Math.log2(max)) + 1 }, (_, i) => 2 ** i) }),
  );
}

const NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$/;

const hostShape = object({
  name: required(
    str({
      pattern: NAME,
      patternHint: 'lowercase letters, digits and inner dashes, starting with a letter (≤ 32)',
    }),
  ),
  kind: required(oneOf(['compute', 'storage'])),
  vcpus: optional(int({ min: 1, max: 4096 })),
  memoryMb: optional(int({ min: 256, max: 16_777_216 })),
  poolSizeGb: optional(int({ min: 1, max: 1_048_576 })),
  restart: optional(oneOf(['always', 'never'])),
});

const restartField = optional(oneOf(['always', 'never']));

const fileShape = object({
  prefix: required(
    str({
      pattern: /^[a-z][a-z0-9]{0,19}$/,
      patternHint: 'lowercase letters and digits, starting with a letter, at most 20',
    }),
  ),
  stateDir: optional(str()),
  database: optional(
    object({
      url: required(str({ pattern: /^postgres(ql)?:\/\//, patternHint: 'a postgres:// URL' })),
    }),
  ),
  redis: optional(
    object({ url: required(str({ pattern: /^rediss?:\/\//, patternHint: 'a redis:// URL' })) }),
  ),
  zookeeper: optional(
    object({
      address: required(
        str({ pattern: /^[A-Za-z0-9.-]+:\d{1,5}$/, patternHint: 'host:port, e.g. 127.0.0.1:2181' }),
      ),
    }),
  ),
  libvirt: optional(
    object({
      uri: optional(str()),
      domainType: optional(oneOf(['auto', 'kvm', 'qemu'])),
      memoryDivisor: optional(int({ min: 1, max: 1024 })),
      domainMemoryMinMb: optional(int({ min: 16, max: 65_536 })),
    }),
  ),
  zfs: optional(
    object({
      pool: optional(
        str({ pattern: /^[A-Za-z][A-Za-z0-9_.:-]*$/, patternHint: 'a ZFS pool name' }),
      ),
      sizeDivisor: optional(powerOfTwo(2 ** 20)),
    }),
  ),
  api: optional(
    object({
      port: optional(int({ min: 1, max: 65_535 })),
      restart: restartField,
      corsOrigins: optional(
        list(
          str({
            pattern:
              /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/,
            patternHint: 'an origin: http(s)://host[:port], no path',
          }),
          { maxLength: 32 },
        ),
      ),
    }),
  ),
  mainLoop: optional(
    object({
      sweepInterval: optional(duration({ min: 100 })),
      instances: optional(int({ min: 1, max: 16 })),
      concurrency: optional(int({ min: 1, max: 64 })),
      restart: restartField,
    }),
  ),
  background: optional(object({ restart: restartField })),
  supervisor: optional(
    object({
      restart: restartField,
      restartsPerMinute: optional(int({ min: 1, max: 60 })),
      backoff: optional(duration({ min: 100 })),
    }),
  ),
  agents: optional(
    object({
      inventoryInterval: optional(duration({ min: 100 })),
      shutdownTimeout: optional(duration()),
    }),
  ),
  hosts: required(list(hostShape, { maxLength: 64 })),
  mutants: optional(object({ allow: optional(bool()) })),
});

/** Checks what the field shapes cannot: host kinds' fields, unique names, at least one of each. */
function toConfig(raw: ReturnType<typeof fileShape>, file: string): StagingConfig {
  // Each process's own policy, else the supervisor's default, else always.
  const fallback: RestartPolicy = raw.supervisor?.restart ?? STAGING_DEFAULTS.restart;
  const hosts: StagingHost[] = [];
  const seen = new Set<string>();
  raw.hosts.forEach((host, index) => {
    const path: FieldPath = ['hosts', index];
    if (seen.has(host.name))
      throw new ShapeError([...path, 'name'], `'${host.name}' is taken by an earlier host`);
    seen.add(host.name);
    if (host.kind === 'compute') {
      if (host.vcpus === undefined)
        throw new ShapeError([...path, 'vcpus'], 'is required for a compute host');
      if (host.memoryMb === undefined)
        throw new ShapeError([...path, 'memoryMb'], 'is required for a compute host');
      if (host.poolSizeGb !== undefined)
        throw new ShapeError([...path, 'poolSizeGb'], 'applies only to storage hosts');
      hosts.push({
        name: host.name,
        kind: 'compute',
        vcpus: host.vcpus,
        memoryMb: host.memoryMb,
        restart: host.restart ?? fallback,
      });
    } else {
      if (host.poolSizeGb === undefined)
        throw new ShapeError([...path, 'poolSizeGb'], 'is required for a storage host');
      for (const field of ['vcpus', 'memoryMb'] as const)
        if (host[field] !== undefined)
          throw new ShapeError([...path, field], 'applies only to compute hosts');
      hosts.push({
        name: host.name,
        kind: 'storage',
        poolSizeGb: host.poolSizeGb,
        restart: host.restart ?? fallback,
      });
    }
  });
  // Domain and dataset prefixes are `<prefix>-<host>-`: one host's must not start another's.
  for (const [index, host] of hosts.entries()) {
    const clash = hosts.find((other) => other.name.startsWith(`${host.name}-`));
    if (clash !== undefined)
      throw new ShapeError(
        ['hosts', index, 'name'],
        `'${host.name}-' starts the name of host '${clash.name}': its domain names would be ambiguous`,
      );
  }
  if (!hosts.some((h) => h.kind === 'compute'))
    throw new ShapeError(['hosts'], 'needs at least one host of kind compute');
  if (!hosts.some((h) => h.kind === 'storage'))
    throw new ShapeError(['hosts'], 'needs at least one host of kind storage');
  const stateRoot = raw.stateDir ?? STAGING_DEFAULTS.stateDir;
  return {
    file,
    prefix: raw.prefix,
    stateDir: resolve(
      isAbsolute(stateRoot) ? stateRoot : resolve(process.cwd(), stateRoot),
      raw.prefix,
    ),
    database: { url: raw.database?.url ?? STAGING_DEFAULTS.databaseUrl },
    redis: { url: raw.redis?.url ?? STAGING_DEFAULTS.redisUrl },
    zookeeper: { address: raw.zookeeper?.address ?? STAGING_DEFAULTS.zookeeperAddress },
    libvirt: {
      uri: raw.libvirt?.uri ?? STAGING_DEFAULTS.libvirtUri,
      domainType: raw.libvirt?.domainType ?? 'auto',
      memoryDivisor: raw.libvirt?.memoryDivisor ?? STAGING_DEFAULTS.memoryDivisor,
      domainMemoryMinMb: raw.libvirt?.domainMemoryMinMb ?? STAGING_DEFAULTS.domainMemoryMinMb,
    },
    zfs: {
      pool: raw.zfs?.pool ?? STAGING_DEFAULTS.pool,
      sizeDivisor: raw.zfs?.sizeDivisor ?? STAGING_DEFAULTS.sizeDivisor,
    },
    api: {
      port: raw.api?.port ?? STAGING_DEFAULTS.apiPort,
      restart: raw.api?.restart ?? fallback,
      corsOrigins: raw.api?.corsOrigins ?? [],
    },
    mainLoop: {
      sweepIntervalMs: raw.mainLoop?.sweepInterval ?? STAGING_DEFAULTS.sweepIntervalMs,
      instances: raw.mainLoop?.instances ?? STAGING_DEFAULTS.mainLoops,
      concurrency: raw.mainLoop?.concurrency ?? STAGING_DEFAULTS.mainLoopConcurrency,
      restart: raw.mainLoop?.restart ?? fallback,
    },
    background: { restart: raw.background?.restart ?? fallback },
    supervisor: {
      restartsPerMinuteMax:
        raw.supervisor?.restartsPerMinute ?? STAGING_DEFAULTS.restartsPerMinuteMax,
      backoffMs: raw.supervisor?.backoff ?? STAGING_DEFAULTS.restartBackoffMs,
    },
    agents: {
      inventoryIntervalMs: raw.agents?.inventoryInterval ?? STAGING_DEFAULTS.inventoryIntervalMs,
      shutdownTimeoutMs: raw.agents?.shutdownTimeout ?? STAGING_DEFAULTS.shutdownTimeoutMs,
    },
    hosts,
    mutants: { allow: raw.mutants?.allow ?? false },
  };
}

/** Parses and validates staging YAML. `file` names the file in errors and becomes `config.file`. */
export function parseStagingConfig(text: string, file: string): StagingConfig {
  return parseDataFile(
    text,
    file,
    (data) => toConfig(fileShape(data, []), resolve(file)),
    StagingConfigError,
  );
}

/** Reads and validates the staging file at `file`. */
export async function loadStagingConfig(file: string): Promise<StagingConfig> {
  const text = await readDataFile(file, {
    what: 'a staging file',
    missingHint: 'copy staging/staging.example.yaml to start',
    ErrorClass: StagingConfigError,
  });
  return parseStagingConfig(text, file);
}

// ---- names derived from the prefix ----

/** The PostgreSQL schema of the run's event store. */
export function schemaName(config: Pick<StagingConfig, 'prefix'>): string {
  return `cloudbed_${config.prefix}`;
}

/** The Redis channel prefix of the run's bus. */
export function busPrefix(config: Pick<StagingConfig, 'prefix'>): string {
  return `${config.prefix}.`;
}

/** The ZooKeeper subtree holding the run's locks. */
export function zookeeperRoot(config: Pick<StagingConfig, 'prefix'>): string {
  return `/cloudbed-${config.prefix}`;
}

/** Prefix of every libvirt domain of the run (all hosts). */
export function runDomainPrefix(config: Pick<StagingConfig, 'prefix'>): string {
  return `${config.prefix}-`;
}

/** Prefix of the libvirt domains of one compute host: several hosts share one libvirtd. */
export function hostDomainPrefix(config: Pick<StagingConfig, 'prefix'>, host: string): string {
  return `${config.prefix}-${host}-`;
}

/** Prefix of every ZFS dataset of the run (all storage nodes), after `<pool>/`. */
export function runDatasetPrefix(config: Pick<StagingConfig, 'prefix'>): string {
  return `${config.prefix}-`;
}

/** Prefix of the datasets of one storage node, after `<pool>/`: several nodes share one pool. */
export function nodeDatasetPrefix(config: Pick<StagingConfig, 'prefix'>, node: string): string {
  return `${config.prefix}-${node}-`;
}
