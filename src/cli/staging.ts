/**
 * `cloudbed staging up|down|status|restart|kill`: the control plane as separate OS processes
 * against the real services on this machine. `up` validates the staging file, checks every
 * service answers, migrates the event store, bootstraps the admin, registers the configured hosts
 * through the API, then starts api, main loop, background and one agent per host as detached
 * `cloudbed process …` children (pid files and logs in the state directory) and prints the API
 * URL. Everything is idempotent: `up` on a running deployment starts only what is not running
 * (which is also how a crashed process comes back), `down` on a stopped one does nothing, and
 * `down --purge` removes every trace of the run by its prefix.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSystemRuntime } from '../adapters/system-runtime.ts';
import { createApi } from '../control/api/api.ts';
import { bootstrapAdmin, BootstrapError } from '../control/api/bootstrap.ts';
import type { ApiResponse } from '../control/api/types.ts';
import { parse, UsageError } from './args.ts';
import { loadStagingConfig, StagingConfigError, type StagingConfig } from './staging-config.ts';
import { purge } from './staging-purge.ts';
import {
  killProcess,
  logTail,
  pause,
  processSpecs,
  processState,
  startProcess,
  stopProcesses,
  type ProcessSpec,
} from './staging-processes.ts';
import { checkServices, formatStatus } from './staging-services.ts';
import { domainTypeOf, openBus, openStore } from './staging-wiring.ts';

export const STAGING_HELP = `Usage: cloudbed staging <up|down|status|restart|kill> [options]

Runs the cloudbed control plane as separate OS processes against the real PostgreSQL, Redis,
ZooKeeper, libvirt and ZFS of this machine, as a staging file describes (copy
staging/staging.example.yaml). Everything the run creates carries the file's prefix.

Subcommands:
  up                 check the services, migrate, bootstrap the admin, register the hosts, start
                     every process that is not running, and print the API URL
  down [--purge]     stop every process (SIGTERM, SIGKILL after 15 s); --purge also removes the
                     run's domains, datasets, database schema, Redis keys, ZooKeeper nodes and state
  status             list the processes and whether they run
  restart <name>     stop and start one process (api, mainloop, background, agent-<host>)
  kill <name>        SIGKILL one process, as a crash would (bring it back with up or restart)

Options:
  --config FILE      the staging file (default staging/staging.yaml)
  -h, --help         show this help

Environment:
  CLOUDBED_ADMIN_ACCESS_KEY, CLOUDBED_ADMIN_SECRET_KEY
                     the admin key pair; when unset, 'up' generates one, prints it and keeps it in
                     <state>/admin.json (mode 0600) for the next 'up'

State: <stateDir>/<prefix>/ (default .cloudbed/staging/<prefix>/ under the current directory)
holds <name>.pid, <name>.log (JSON lines) and admin.json.
Exit codes: 0 ok, 1 a service is missing or a process failed (status: something is not
running), 2 bad input.
`;

/** Failure exit code of the staging commands (bad input stays 2). */
const EXIT_FAILED = 1;
const EXIT_BAD_INPUT = 2;

/** Attempts, 250 ms apart, until the freshly started API answers (60 s). */
const API_READY_ATTEMPTS = 240;

/** Default staging file. */
const DEFAULT_CONFIG = 'staging/staging.yaml';

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

export async function stagingCommand(argv: readonly string[]): Promise<number | undefined> {
  const { values, positionals } = parse('staging', argv, {
    config: { type: 'string' },
    purge: { type: 'boolean' },
  });
  const [sub, ...rest] = positionals;
  const subcommands = ['up', 'down', 'status', 'restart', 'kill'];
  if (sub === undefined)
    throw new UsageError(
      `cloudbed staging: missing subcommand; one of ${subcommands.join(', ')} (see cloudbed staging --help)`,
    );
  if (!subcommands.includes(sub))
    throw new UsageError(
      `cloudbed staging: unknown subcommand '${sub}'; one of ${subcommands.join(', ')}`,
    );
  if (values.purge === true && sub !== 'down')
    throw new UsageError('cloudbed staging: --purge applies only to down');
  const takesName = sub === 'restart' || sub === 'kill';
  if (takesName && rest.length !== 1)
    throw new UsageError(`cloudbed staging ${sub}: expected one process name`);
  if (!takesName && rest.length > 0)
    throw new UsageError(`cloudbed staging ${sub}: unexpected argument '${rest[0]}'`);

  let config: StagingConfig;
  try {
    config = await loadStagingConfig(values.config ?? DEFAULT_CONFIG);
  } catch (error) {
    if (error instanceof StagingConfigError) {
      process.stderr.write(`${error.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw error;
  }
  switch (sub) {
    case 'up':
      return up(config);
    case 'down':
      return down(config, values.purge === true);
    case 'status':
      return status(config);
    default: {
      const spec = specNamed(config, rest[0] as string);
      return sub === 'restart' ? restart(config, spec) : kill(config, spec);
    }
  }
}

function specNamed(config: StagingConfig, name: string): ProcessSpec {
  const specs = processSpecs(config);
  const spec = specs.find((s) => s.name === name);
  if (spec === undefined)
    throw new UsageError(
      `cloudbed staging: no process '${name}'; processes: ${specs.map((s) => s.name).join(', ')}`,
    );
  return spec;
}

/** The API's base URL (what `up` prints). */
export function apiUrl(config: StagingConfig): string {
  return `http://127.0.0.1:${config.api.port}/v1`;
}

// ---- up ----

async function up(config: StagingConfig): Promise<number> {
  out(`staging ${config.prefix}: checking services`);
  const services = await checkServices(config);
  for (const s of services) out(formatStatus(s));
  const missing = services.filter((s) => !s.ok);
  if (missing.length > 0) {
    process.stderr.write(
      `cloudbed staging up: ${missing.map((s) => s.service).join(', ')} not available; start ${missing.length === 1 ? 'it' : 'them'} with scripts/setup-infra.sh (as root), then run up again\n`,
    );
    return EXIT_FAILED;
  }
  mkdirSync(config.stateDir, { recursive: true });

  const admin = adminKeys(config);
  const runtime = createSystemRuntime({ process: 'staging', verbose: false });
  const store = await openStore(config, 'staging');
  const bus = openBus(config, runtime.log);
  try {
    out(`  database   migrated (schema cloudbed_${config.prefix})`);
    try {
      await bootstrapAdmin({
        store,
        runtime,
        accessKey: admin.accessKey,
        secretKey: admin.secretKey,
      });
    } catch (error) {
      if (!(error instanceof BootstrapError)) throw error;
      process.stderr.write(
        `cloudbed staging up: ${error.message} (the database already has another admin key: set CLOUDBED_ADMIN_ACCESS_KEY/SECRET_KEY to it, or purge the run)\n`,
      );
      return EXIT_FAILED;
    }
    if (admin.source === 'generated') saveAdminKeys(config, admin);
    out(`  admin      ${admin.accessKey} (${admin.source})`);
    const problem = await registerHosts(config, createApi({ runtime, store, bus }), admin);
    if (problem !== null) {
      process.stderr.write(`cloudbed staging up: ${problem}\n`);
      return EXIT_FAILED;
    }
  } finally {
    await bus.close();
    await store.close();
  }

  const started: ProcessSpec[] = [];
  for (const spec of processSpecs(config)) {
    const state = processState(config, spec);
    if (state.state === 'running') {
      out(`  ${spec.name.padEnd(20)} already running (pid ${state.pid ?? '?'})`);
      continue;
    }
    const pid = startProcess(config, spec);
    started.push(spec);
    out(`  ${spec.name.padEnd(20)} started (pid ${pid})`);
  }
  const ready = await waitForApi(config, admin);
  const dead = processSpecs(config).filter((s) => processState(config, s).state !== 'running');
  if (dead.length > 0 || !ready) {
    for (const spec of dead)
      process.stderr.write(
        `cloudbed staging up: ${spec.name} is not running; the end of ${join(config.stateDir, `${spec.name}.log`)}:\n${logTail(config, spec.name)}\n`,
      );
    if (!ready)
      process.stderr.write(`cloudbed staging up: the API did not answer at ${apiUrl(config)}\n`);
    return EXIT_FAILED;
  }
  out(`staging ${config.prefix}: up — API ${apiUrl(config)} (domains: ${domainTypeOf(config)})`);
  if (admin.source === 'generated' || admin.source === 'state')
    out(`admin access key: ${admin.accessKey}\nadmin secret key: ${admin.secretKey}`);
  out(
    `try: curl -u ${admin.accessKey}:${admin.source === 'environment' ? '$CLOUDBED_ADMIN_SECRET_KEY' : admin.secretKey} ${apiUrl(config)}`,
  );
  return 0;
}

/** The admin key pair and where it came from. */
interface AdminKeys {
  readonly accessKey: string;
  readonly secretKey: string;
  readonly source: 'environment' | 'state' | 'generated';
}

function adminFile(config: StagingConfig): string {
  return join(config.stateDir, 'admin.json');
}

/** From the environment, else from the state directory, else new. */
function adminKeys(config: StagingConfig): AdminKeys {
  const accessKey = process.env['CLOUDBED_ADMIN_ACCESS_KEY'];
  const secretKey = process.env['CLOUDBED_ADMIN_SECRET_KEY'];
  if ((accessKey === undefined) !== (secretKey === undefined))
    throw new UsageError(
      'cloudbed staging: set both CLOUDBED_ADMIN_ACCESS_KEY and CLOUDBED_ADMIN_SECRET_KEY, or neither',
    );
  if (accessKey !== undefined && secretKey !== undefined) {
    if (accessKey === '' || accessKey.includes(':') || accessKey.length > 128 || secretKey === '')
      throw new UsageError(
        'cloudbed staging: CLOUDBED_ADMIN_ACCESS_KEY must be 1..128 characters without ":", and the secret non-empty',
      );
    return { accessKey, secretKey, source: 'environment' };
  }
  if (existsSync(adminFile(config))) {
    const saved = JSON.parse(readFileSync(adminFile(config), 'utf8')) as Partial<AdminKeys>;
    if (typeof saved.accessKey === 'string' && typeof saved.secretKey === 'string')
      return { accessKey: saved.accessKey, secretKey: saved.secretKey, source: 'state' };
  }
  return {
    accessKey: `admin-${randomBytes(6).toString('hex')}`,
    secretKey: randomBytes(24).toString('base64url'),
    source: 'generated',
  };
}

function saveAdminKeys(config: StagingConfig, keys: AdminKeys): void {
  const file = adminFile(config);
  writeFileSync(
    file,
    `${JSON.stringify({ accessKey: keys.accessKey, secretKey: keys.secretKey }, null, 2)}\n`,
    { mode: 0o600 },
  );
  chmodSync(file, 0o600);
}

function basic(keys: AdminKeys): string {
  return `Basic ${Buffer.from(`${keys.accessKey}:${keys.secretKey}`, 'utf8').toString('base64')}`;
}

/**
 * Registers every host of the staging file that the database does not have yet, through the API's
 * own router (validation, events, change notices). A registered host whose declared size differs
 * is reported: host sizes are fixed at creation. Returns a problem, or null.
 */
async function registerHosts(
  config: StagingConfig,
  api: ReturnType<typeof createApi>,
  admin: AdminKeys,
): Promise<string | null> {
  const call = (method: string, path: string, body?: unknown): Promise<ApiResponse> =>
    api.handle({
      method,
      url: `http://127.0.0.1:${config.api.port}${path}`,
      headers: {
        authorization: basic(admin),
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? '' : JSON.stringify(body),
    });
  const listed = await call('GET', '/v1/hosts?limit=1000');
  if (listed.status !== 200) return `listing hosts answered ${listed.status}: ${listed.body}`;
  const existing = (JSON.parse(listed.body) as { data: Record<string, unknown>[] }).data.filter(
    (h) => h['removed'] === null || h['removed'] === undefined,
  );
  for (const host of config.hosts) {
    const found = existing.find((h) => h['name'] === host.name);
    const declared =
      host.kind === 'compute'
        ? { vcpus: host.vcpus, memoryMb: host.memoryMb }
        : { poolSizeGb: host.poolSizeGb };
    if (found !== undefined) {
      if (found['kind'] !== host.kind)
        return `host '${host.name}' is registered as ${String(found['kind'])}, the staging file says ${host.kind}`;
      const differs = Object.entries(declared).filter(([k, v]) => found[k] !== v);
      out(
        `  host       ${host.name} (${host.kind}) registered as ${String(found['id'])}${differs.length === 0 ? '' : ` — WARNING: registered with ${differs.map(([k]) => `${k}=${String(found[k])}`).join(', ')}; sizes are fixed at creation`}`,
      );
      continue;
    }
    const created = await call('POST', '/v1/hosts', {
      name: host.name,
      kind: host.kind,
      ...declared,
    });
    if (created.status >= 300)
      return `registering host '${host.name}' answered ${created.status}: ${created.body}`;
    const row = JSON.parse(created.body) as Record<string, unknown>;
    out(`  host       ${host.name} (${host.kind}) registered as ${String(row['id'])}`);
  }
  return null;
}

async function waitForApi(config: StagingConfig, admin: AdminKeys): Promise<boolean> {
  for (let attempt = 0; attempt < API_READY_ATTEMPTS; attempt++) {
    try {
      const response = await fetch(apiUrl(config), {
        headers: { authorization: basic(admin), accept: 'application/json' },
        signal: AbortSignal.timeout(2_000),
      });
      if (response.status === 200) return true;
    } catch {
      // Not listening yet.
    }
    if (processState(config, { name: 'api', role: 'api' }).state !== 'running') return false;
    await pause(250);
  }
  return false;
}

// ---- down, status, restart, kill ----

async function down(config: StagingConfig, purgeAll: boolean): Promise<number> {
  const outcomes = await stopProcesses(
    config,
    processSpecs(config).map((s) => s.name),
  );
  let failed = false;
  for (const o of outcomes) {
    const how =
      o.how === 'not-running'
        ? 'not running'
        : `${o.how === 'stuck' ? 'STILL RUNNING after SIGKILL' : o.how} (pid ${o.pid ?? '?'})`;
    if (o.how === 'stuck') failed = true;
    out(`  ${o.name.padEnd(20)} ${how}`);
  }
  if (purgeAll) {
    for (const s of await purge(config)) {
      if (!s.ok) failed = true;
      out(`  purge ${s.what.padEnd(10)} ${s.ok ? s.detail : `FAILED: ${s.detail}`}`);
    }
  }
  out(
    `staging ${config.prefix}: ${failed ? 'down, with failures' : purgeAll ? 'down and purged' : 'down'}`,
  );
  return failed ? EXIT_FAILED : 0;
}

function status(config: StagingConfig): number {
  let all = true;
  for (const spec of processSpecs(config)) {
    const state = processState(config, spec);
    if (state.state !== 'running') all = false;
    out(
      `  ${spec.name.padEnd(20)} ${state.state.padEnd(8)}${state.pid === null ? '' : ` pid ${state.pid}`}`,
    );
  }
  out(`staging ${config.prefix}: API ${apiUrl(config)}; state ${config.stateDir}`);
  return all ? 0 : EXIT_FAILED;
}

async function restart(config: StagingConfig, spec: ProcessSpec): Promise<number> {
  const [outcome] = await stopProcesses(config, [spec.name]);
  if (outcome?.how === 'stuck') {
    process.stderr.write(`cloudbed staging restart: ${spec.name} survived SIGKILL\n`);
    return EXIT_FAILED;
  }
  const pid = startProcess(config, spec);
  // A process that dies at once (bad wiring, a missing service) is reported now, not later.
  await pause(1_000);
  if (processState(config, spec).state !== 'running') {
    process.stderr.write(
      `cloudbed staging restart: ${spec.name} exited at once; the end of its log:\n${logTail(config, spec.name)}\n`,
    );
    return EXIT_FAILED;
  }
  out(`  ${spec.name.padEnd(20)} restarted (pid ${pid})`);
  return 0;
}

async function kill(config: StagingConfig, spec: ProcessSpec): Promise<number> {
  const pid = await killProcess(config, spec.name);
  out(`  ${spec.name.padEnd(20)} ${pid === null ? 'not running' : `killed (pid ${pid})`}`);
  return 0;
}
