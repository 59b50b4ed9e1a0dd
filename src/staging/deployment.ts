/**
 * A staging deployment's life: the control plane as separate OS processes against the real
 * services on this machine. `up` checks every service answers, migrates the event store,
 * bootstraps the admin, registers the configured hosts through the API, then starts api, main
 * loop, background and one agent per host as detached `cloudbed process …` children (pid files and
 * logs in the state directory). Everything is idempotent: `up` on a running deployment starts only
 * what is not running (which is also how a crashed process comes back), `down` on a stopped one
 * does nothing, and `down` with purge removes every trace of the run by its prefix.
 *
 * Each operation reports progress through a {@link Report} and resolves to an exit code (0 ok,
 * {@link EXIT_FAILED} a service missing or a process failed), so the command line and the chaos
 * runner share them.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSystemRuntime } from '../adapters/system-runtime.ts';
import { createApi } from '../control/api/api.ts';
import { bootstrapAdmin, BootstrapError } from '../control/api/bootstrap.ts';
import type { ApiResponse } from '../control/api/types.ts';
import type { StagingConfig } from './config.ts';
import { purge } from './purge.ts';
import {
  killProcess,
  logTail,
  pause,
  processSpecs,
  processState,
  startProcess,
  stopProcesses,
  type ProcessSpec,
} from './supervisor.ts';
import { checkServices, formatStatus } from './services.ts';
import { domainTypeOf, openBus, openStore } from './wiring.ts';

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

export async function up(config: StagingConfig, report: Report): Promise<number> {
  report.out(`staging ${config.prefix}: checking services`);
  const services = await checkServices(config);
  for (const s of services) report.out(formatStatus(s));
  const missing = services.filter((s) => !s.ok);
  if (missing.length > 0) {
    report.err(
      `cloudbed staging up: ${missing.map((s) => s.service).join(', ')} not available; start ${missing.length === 1 ? 'it' : 'them'} with scripts/setup-infra.sh (as root), then run up again`,
    );
    return EXIT_FAILED;
  }
  mkdirSync(config.stateDir, { recursive: true });

  const admin = adminKeys(config);
  const runtime = createSystemRuntime({ process: 'staging', verbose: false });
  const store = await openStore(config, 'staging');
  const bus = openBus(config, runtime.log);
  try {
    report.out(`  database   migrated (schema cloudbed_${config.prefix})`);
    try {
      await bootstrapAdmin({
        store,
        runtime,
        accessKey: admin.accessKey,
        secretKey: admin.secretKey,
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

  const started: ProcessSpec[] = [];
  for (const spec of processSpecs(config)) {
    const state = processState(config, spec);
    if (state.state === 'running') {
      report.out(`  ${spec.name.padEnd(20)} already running (pid ${state.pid ?? '?'})`);
      continue;
    }
    const pid = startProcess(config, spec);
    started.push(spec);
    report.out(`  ${spec.name.padEnd(20)} started (pid ${pid})`);
  }
  const ready = await waitForApi(config, admin);
  const dead = processSpecs(config).filter((s) => processState(config, s).state !== 'running');
  if (dead.length > 0 || !ready) {
    for (const spec of dead)
      report.err(
        `cloudbed staging up: ${spec.name} is not running; the end of ${join(config.stateDir, `${spec.name}.log`)}:\n${logTail(config, spec.name)}`,
      );
    if (!ready) report.err(`cloudbed staging up: the API did not answer at ${apiUrl(config)}`);
    return EXIT_FAILED;
  }
  report.out(
    `staging ${config.prefix}: up — API ${apiUrl(config)} (domains: ${domainTypeOf(config)})`,
  );
  if (admin.source === 'generated' || admin.source === 'state')
    report.out(`admin access key: ${admin.accessKey}\nadmin secret key: ${admin.secretKey}`);
  report.out(
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

export async function down(
  config: StagingConfig,
  purgeAll: boolean,
  report: Report,
): Promise<number> {
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

export function status(config: StagingConfig, report: Report): number {
  let all = true;
  for (const spec of processSpecs(config)) {
    const state = processState(config, spec);
    if (state.state !== 'running') all = false;
    report.out(
      `  ${spec.name.padEnd(20)} ${state.state.padEnd(8)}${state.pid === null ? '' : ` pid ${state.pid}`}`,
    );
  }
  report.out(`staging ${config.prefix}: API ${apiUrl(config)}; state ${config.stateDir}`);
  return all ? 0 : EXIT_FAILED;
}

export async function restart(
  config: StagingConfig,
  spec: ProcessSpec,
  report: Report,
): Promise<number> {
  const [outcome] = await stopProcesses(config, [spec.name]);
  if (outcome?.how === 'stuck') {
    report.err(`cloudbed staging restart: ${spec.name} survived SIGKILL`);
    return EXIT_FAILED;
  }
  const pid = startProcess(config, spec);
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
  const pid = await killProcess(config, spec.name);
  report.out(`  ${spec.name.padEnd(20)} ${pid === null ? 'not running' : `killed (pid ${pid})`}`);
  return 0;
}
