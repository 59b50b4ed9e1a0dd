/**
 * A staging deployment's life: the control plane as separate OS processes against the real
 * services on this machine. `up` checks that the API port is free and which services answer,
 * migrates the event store, bootstraps the admin, registers the configured hosts through the API,
 * then starts api, the main loops, background and one agent per host as detached `cloudbed process
 * …` children (pid files and logs in the state directory) — except a process whose service does
 * not answer (the main loops need ZooKeeper, compute agents libvirt, storage agents ZFS), which is
 * reported — and last the supervisor, which restarts processes that die (supervisor.ts). When the
 * API does not come up, `up` stops what it started. Everything is idempotent: `up` on a running
 * deployment starts only what is not running, `down` on a stopped one does nothing, and `down`
 * with purge removes every trace of the run by its prefix.
 *
 * Each operation reports progress through a {@link Report} and resolves to an exit code (0 ok,
 * {@link EXIT_FAILED} a service missing or a process failed), so the command line and the chaos
 * runner share them.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createSystemRuntime } from '../adapters/system-runtime.ts';
import { createApi } from '../control/api/api.ts';
import { bootstrapAdmin, BootstrapError } from '../control/api/bootstrap.ts';
import type { ApiResponse } from '../control/api/types.ts';
import { credentialsExport, CURL_HINT } from '../control/api/html.ts';
import type { StagingConfig } from './config.ts';
import { purge } from './purge.ts';
import type { RestartRecord } from './restart-policy.ts';
import {
  killProcess,
  logFile,
  logTail,
  pause,
  processSpecs,
  processState,
  readPid,
  readRestartRecords,
  startProcess,
  stopProcesses,
  supervise,
  supervisorSpec,
  type ProcessSpec,
  type ProcessState,
} from './supervisor.ts';
import { checkServices, formatStatus } from './services.ts';
import { domainTypeOf, openBus, openStore } from './wiring.ts';
import { PERSON_SECRET_KDF } from '../model/resources.ts';

/** Where an operation's progress goes: `out` for the record, `err` for problems. One line each. */
export interface Report {
  out(line: string): void;
  err(line: string): void;
}

/** Bad input that is not in the staging file (the admin keys in the environment). */
export class StagingInputError extends Error {
  override name = 'StagingInputError';
}

/** Exit code of an operation that failed (a service missing, a process that would not run). */
export const EXIT_FAILED = 1;

/** Attempts, 250 ms apart, until the freshly started API answers (60 s). */
const API_READY_ATTEMPTS = 240;

/** The API's base URL (what `up` prints). */
export function apiUrl(config: StagingConfig): string {
  return `http://127.0.0.1:${config.api.port}/v1`;
}

// ---- up ----

/** Options of {@link up}. */
export interface UpOptions {
  /**
   * False: no supervisor — a process that dies stays dead (a running supervisor is stopped), for
   * chaos runs that want to watch the control plane without one. Default true.
   */
  readonly supervise?: boolean;
}

/**
 * Why the API cannot listen on its port, or null: the port is taken by something that is not this
 * deployment's API. Checked before anything is migrated or started.
 */
export async function apiPortProblem(config: StagingConfig): Promise<string | null> {
  if (processState(config, apiSpec(config)).state === 'running') return null;
  const taken = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen({ host: '127.0.0.1', port: config.api.port, exclusive: true }, () =>
      server.close(() => resolve(false)),
    );
  });
  return taken
    ? `port ${config.api.port} on 127.0.0.1 is taken by another process; free it or set api.port in ${config.file}`
    : null;
}

function apiSpec(config: StagingConfig): ProcessSpec {
  return processSpecs(config).find((s) => s.name === 'api') as ProcessSpec;
}

/** The services `up` itself needs (to migrate, bootstrap and register hosts), and every process. */
const ESSENTIAL = ['postgres', 'redis'];

export async function up(
  config: StagingConfig,
  report: Report,
  options: UpOptions = {},
): Promise<number> {
  const portProblem = await apiPortProblem(config);
  if (portProblem !== null) {
    report.err(`cloudbed staging up: ${portProblem}`);
    return EXIT_FAILED;
  }
  report.out(`staging ${config.prefix}: checking services`);
  const services = await checkServices(config);
  for (const s of services) report.out(formatStatus(s));
  const essential = services.filter((s) => !s.ok && ESSENTIAL.includes(s.service));
  if (essential.length > 0) {
    report.err(
      `cloudbed staging up: ${essential.map((s) => `${s.service} (${s.where})`).join(', ')} not available; start ${essential.length === 1 ? 'it' : 'them'} with scripts/setup-infra.sh (as root), then run up again`,
    );
    return EXIT_FAILED;
  }
  mkdirSync(config.stateDir, { recursive: true });

  const admin = adminKeys(config);
  const runtime = createSystemRuntime({ process: 'staging', verbose: false });
  const store = await openStore(config, 'staging');
  const bus = openBus(config, runtime.log, 'staging');
  try {
    report.out(`  database   migrated (schema cloudbed_${config.prefix})`);
    try {
      await bootstrapAdmin({
        store,
        runtime,
        accessKey: admin.accessKey,
        secretKey: admin.secretKey,
        // A secret from the environment may be one a person chose: store it with a slow hash.
        ...(admin.source === 'environment' ? { secretKdf: PERSON_SECRET_KDF } : {}),
      });
    } catch (error) {
      if (!(error instanceof BootstrapError)) throw error;
      report.err(
        `cloudbed staging up: ${error.message} (the database already has another admin key: set CLOUDBED_ADMIN_ACCESS_KEY/SECRET_KEY to it, or purge the run)`,
      );
      return EXIT_FAILED;
    }
    if (admin.source === 'generated') saveAdminKeys(config, admin);
    report.out(`  admin      ${admin.accessKey} (${admin.source})`);
    const problem = await registerHosts(config, createApi({ runtime, store, bus }), admin, report);
    if (problem !== null) {
      report.err(`cloudbed staging up: ${problem}`);
      return EXIT_FAILED;
    }
  } finally {
    await bus.close();
    await store.close();
  }

  const missing = new Map(services.filter((s) => !s.ok).map((s) => [s.service, s]));
  const started: ProcessSpec[] = [];
  // Why processes were not started → their names.
  const skipped = new Map<string, string[]>();
  for (const spec of processSpecs(config)) {
    const lacking = spec.needs.filter((n) => missing.has(n));
    if (lacking.length > 0) {
      const why = lacking
        .map((n) => `${n} at ${missing.get(n)?.where ?? '?'} does not answer`)
        .join(', ');
      skipped.set(why, [...(skipped.get(why) ?? []), spec.name]);
      report.out(`  ${spec.name.padEnd(20)} NOT STARTED: ${why}`);
      continue;
    }
    const pid = await startProcess(config, spec);
    if (pid === null) {
      report.out(
        `  ${spec.name.padEnd(20)} already running (pid ${readPid(config, spec.name) ?? '?'})`,
      );
      continue;
    }
    started.push(spec);
    report.out(`  ${spec.name.padEnd(20)} started (pid ${pid})`);
  }
  const ready = await waitForApi(config, admin);
  const expected = processSpecs(config).filter((s) => s.needs.every((n) => !missing.has(n)));
  const dead = expected.filter((s) => processState(config, s).state !== 'running');
  if (dead.length > 0 || !ready) {
    for (const spec of dead)
      report.err(
        `cloudbed staging up: ${spec.name} is not running; the end of ${logFile(config, spec.name)}:\n${logTail(config, spec.name)}`,
      );
    if (!ready) report.err(`cloudbed staging up: the API did not answer at ${apiUrl(config)}`);
    // Leave nothing behind that this up started.
    await stopProcesses(config, started);
    if (started.length > 0)
      report.err(
        `cloudbed staging up: stopped what it started (${started.map((s) => s.name).join(', ')})`,
      );
    return EXIT_FAILED;
  }
  await superviseOrNot(config, options.supervise ?? true, report);
  for (const line of adminLines(config, admin)) report.out(line);
  if (skipped.size > 0) {
    const what = [...skipped].map(([why, names]) => `${names.join(', ')} not started: ${why}`);
    report.err(
      `cloudbed staging up: partly up — ${what.join('; ')}; start it with scripts/setup-infra.sh (as root), then run up again`,
    );
    report.out(`staging ${config.prefix}: partly up — API ${apiUrl(config)}`);
    return EXIT_FAILED;
  }
  report.out(
    `staging ${config.prefix}: up — API ${apiUrl(config)} (domains: ${domainTypeOf(config)})`,
  );
  return 0;
}

/** Starts the supervisor if it should run and does not, or stops it if it should not run. */
async function superviseOrNot(
  config: StagingConfig,
  wanted: boolean,
  report: Report,
): Promise<void> {
  const spec = supervisorSpec(config);
  const name = spec.name.padEnd(20);
  if (!wanted) {
    const [outcome] = await stopProcesses(config, [spec]);
    report.out(
      `  ${name} off: processes that die stay dead${outcome?.how === 'not-running' ? '' : ` (stopped pid ${outcome?.pid ?? '?'})`}`,
    );
    return;
  }
  const pid = await startProcess(config, spec);
  const limits = `restarts processes that die, at most ${config.supervisor.restartsPerMinuteMax} a minute each`;
  report.out(
    pid === null
      ? `  ${name} already running (pid ${readPid(config, spec.name) ?? '?'}); ${limits}`
      : `  ${name} started (pid ${pid}); ${limits}`,
  );
}

/**
 * What `up` says about the admin keys: the secret only when this run generated it (it is kept in
 * the state directory, mode 0600, and never printed again); otherwise where it is.
 */
export function adminLines(config: StagingConfig, admin: AdminKeys): string[] {
  const url = apiUrl(config);
  switch (admin.source) {
    case 'generated':
      return [
        `admin access key: ${admin.accessKey}`,
        `admin secret key: ${admin.secretKey} (shown once; kept in ${adminFile(config)})`,
        credentialsExport(admin.accessKey, admin.secretKey),
        `try: ${CURL_HINT} ${url}`,
      ];
    case 'state':
      return [
        `admin access key: ${admin.accessKey}; the secret key is in ${adminFile(config)}`,
        credentialsExport(
          admin.accessKey,
          `"$(node -p "require('${adminFile(config)}').secretKey")"`,
        ),
        `try: ${CURL_HINT} ${url}`,
      ];
    case 'environment':
      return [
        credentialsExport('"$CLOUDBED_ADMIN_ACCESS_KEY"', '"$CLOUDBED_ADMIN_SECRET_KEY"'),
        `try: ${CURL_HINT} ${url}`,
      ];
  }
}

/** The admin key pair and where it came from. */
export interface AdminKeys {
  readonly accessKey: string;
  readonly secretKey: string;
  readonly source: 'environment' | 'state' | 'generated';
}

/** Where generated admin keys are kept. */
export function adminFile(config: StagingConfig): string {
  return join(config.stateDir, 'admin.json');
}

/** From the environment, else from the state directory, else new. */
export function adminKeys(config: StagingConfig): AdminKeys {
  const accessKey = process.env['CLOUDBED_ADMIN_ACCESS_KEY'];
  const secretKey = process.env['CLOUDBED_ADMIN_SECRET_KEY'];
  if ((accessKey === undefined) !== (secretKey === undefined))
    throw new StagingInputError(
      'set both CLOUDBED_ADMIN_ACCESS_KEY and CLOUDBED_ADMIN_SECRET_KEY, or neither',
    );
  if (accessKey !== undefined && secretKey !== undefined) {
    if (accessKey === '' || accessKey.includes(':') || accessKey.length > 128 || secretKey === '')
      throw new StagingInputError(
        'CLOUDBED_ADMIN_ACCESS_KEY must be 1..128 characters without ":", and the secret non-empty',
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

/** The HTTP Basic authorization header for a key pair. */
export function basic(keys: Pick<AdminKeys, 'accessKey' | 'secretKey'>): string {
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
  report: Report,
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
      report.out(
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
    report.out(`  host       ${host.name} (${host.kind}) registered as ${String(row['id'])}`);
  }
  return null;
}

/**
 * Waits until the API answers (false when its process, `api`, died or it never did, in 60 s).
 */
export async function waitForApi(
  config: StagingConfig,
  admin: AdminKeys,
  api: ProcessSpec = apiSpec(config),
): Promise<boolean> {
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
    if (processState(config, api).state !== 'running') return false;
    await pause(250);
  }
  return false;
}

// ---- down, status, restart, kill, supervise ----

export async function down(
  config: StagingConfig,
  purgeAll: boolean,
  report: Report,
): Promise<number> {
  // The supervisor first, or it would restart what is being stopped.
  const outcomes = [
    ...(await stopProcesses(config, [supervisorSpec(config)])),
    ...(await stopProcesses(config, processSpecs(config))),
  ];
  let failed = false;
  for (const o of outcomes) {
    const how =
      o.how === 'not-running'
        ? 'not running'
        : `${o.how === 'stuck' ? 'STILL RUNNING after SIGKILL' : o.how} (pid ${o.pid ?? '?'})`;
    if (o.how === 'stuck') failed = true;
    report.out(`  ${o.name.padEnd(20)} ${how}`);
  }
  let kept = 0;
  if (purgeAll) {
    for (const s of await purge(config)) {
      if (!s.ok) failed = true;
      report.out(`  purge ${s.what.padEnd(10)} ${s.ok ? s.detail : `FAILED: ${s.detail}`}`);
      for (const line of s.kept ?? []) report.out(`  purge ${s.what.padEnd(10)} KEPT ${line}`);
      kept += s.kept?.length ?? 0;
    }
  }
  report.out(
    `staging ${config.prefix}: ${
      failed
        ? 'down, with failures'
        : kept > 0
          ? `down and purged, except ${kept} objects that others depend on (listed above as KEPT)`
          : purgeAll
            ? 'down and purged'
            : 'down'
    }`,
  );
  // Something of the run is left: the purge is not complete, whoever is to blame.
  return failed || kept > 0 ? EXIT_FAILED : 0;
}

/** One process's status line: state, pid, restart policy and what the supervisor did. */
export function statusLine(
  state: ProcessState,
  record: RestartRecord | undefined,
  supervised: boolean,
): string {
  const { spec } = state;
  const parts = [`${spec.name.padEnd(20)} ${state.state.padEnd(8)}`];
  if (state.pid !== null) parts.push(`pid ${state.pid}`);
  parts.push(`restarts ${record?.restarts ?? 0}`);
  if (spec.restart === 'never') parts.push('(restart: never)');
  else if (!supervised) parts.push('(no supervisor: not restarted)');
  if (record?.gaveUp === true && state.state !== 'running')
    parts.push('— GAVE UP: died too often, stays down until up or restart');
  return `  ${parts.join(' ')}`;
}

export function status(config: StagingConfig, report: Report): number {
  let all = true;
  const records = readRestartRecords(config);
  const supervisor = processState(config, supervisorSpec(config));
  const supervised = supervisor.state === 'running';
  for (const spec of processSpecs(config)) {
    const state = processState(config, spec);
    if (state.state !== 'running') all = false;
    report.out(statusLine(state, records[spec.name], supervised));
  }
  report.out(
    `  ${'supervisor'.padEnd(20)} ${supervised ? `running  pid ${supervisor.pid ?? '?'}` : `${supervisor.state.padEnd(8)} (processes that die stay dead)`}`,
  );
  report.out(`staging ${config.prefix}: API ${apiUrl(config)}; state ${config.stateDir}`);
  return all ? 0 : EXIT_FAILED;
}

export async function restart(
  config: StagingConfig,
  spec: ProcessSpec,
  report: Report,
): Promise<number> {
  const [outcome] = await stopProcesses(config, [spec]);
  if (outcome?.how === 'stuck') {
    report.err(`cloudbed staging restart: ${spec.name} survived SIGKILL`);
    return EXIT_FAILED;
  }
  const pid = await startProcess(config, spec);
  if (pid === null) {
    report.out(`  ${spec.name.padEnd(20)} already running (started meanwhile)`);
    return 0;
  }
  // A process that dies at once (bad wiring, a missing service) is reported now, not later.
  await pause(1_000);
  if (processState(config, spec).state !== 'running') {
    report.err(
      `cloudbed staging restart: ${spec.name} exited at once; the end of its log:\n${logTail(config, spec.name)}`,
    );
    return EXIT_FAILED;
  }
  report.out(`  ${spec.name.padEnd(20)} restarted (pid ${pid})`);
  return 0;
}

export async function kill(
  config: StagingConfig,
  spec: ProcessSpec,
  report: Report,
): Promise<number> {
  const pid = await killProcess(config, spec);
  const supervised = processState(config, supervisorSpec(config)).state === 'running';
  const next =
    spec.restart === 'never'
      ? 'it stays down (restart: never)'
      : supervised
        ? 'the supervisor restarts it'
        : 'it stays down (no supervisor)';
  report.out(
    `  ${spec.name.padEnd(20)} ${pid === null ? 'not running' : `killed (pid ${pid}); ${next}`}`,
  );
  return 0;
}

/** Runs the supervisor in the foreground until SIGTERM or SIGINT (what `up` starts detached). */
export async function superviseForeground(config: StagingConfig): Promise<number> {
  const runtime = createSystemRuntime({ process: 'supervisor' });
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await supervise(config, { signal: stop.signal, log: runtime.log });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  return 0;
}
