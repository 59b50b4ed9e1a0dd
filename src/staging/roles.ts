/**
 * One control-plane process for real: the API as an HTTP server on 127.0.0.1, the main loop, the
 * background service, or the agent of one compute host or storage node, against the services a
 * staging file names. The code that runs is exactly the simulator's (src/control); only the ports
 * differ (wiring.ts). `cloudbed process` runs one of these in the foreground; a staging deployment
 * runs one per process, detached (supervisor.ts).
 *
 * Crash-only: a start after a crash is a normal start. SIGTERM or SIGINT stops the process
 * gracefully (bounded: after {@link STOP_GRACE_MS} it exits anyway); a bug (a failed assertion)
 * ends it with exit code 1.
 */
import { startHttpServer } from '../adapters/http-server.ts';
import { createSystemRuntime } from '../adapters/system-runtime.ts';
import { runComputeAgent } from '../control/agents/compute-agent.ts';
import { runStorageAgent } from '../control/agents/storage-agent.ts';
import { createApi } from '../control/api/api.ts';
import { runBackground } from '../control/background/background.ts';
import { runMainLoop } from '../control/mainloop/main-loop.ts';
import type { HostRow } from '../model/resources.ts';
import type { EventStore } from '../ports/event-store.ts';
import type { Runtime } from '../ports/runtime.ts';
import type { StagingConfig, StagingHost } from './config.ts';
import { HolderPause, holderPauseFile } from './holder-pause.ts';
import { lockSessionFile, recordingSessions } from './lock-sessions.ts';
import {
  domainTypeOf,
  openBus,
  openHypervisor,
  openLocks,
  openStorage,
  openStore,
} from './wiring.ts';

/** The roles a control-plane process can play. */
export const PROCESS_ROLES = [
  'api',
  'mainloop',
  'background',
  'compute-agent',
  'storage-agent',
] as const;

/** One kind of control-plane process. */
export type ProcessRole = (typeof PROCESS_ROLES)[number];

/** How long a graceful stop may take before the process exits anyway, ms. */
export const STOP_GRACE_MS = 10_000;

/** Attempts, one second apart, to find an agent's host row when the store is briefly away. */
const HOST_LOOKUP_ATTEMPTS = 10;

/**
 * The process name of a role (and host or main loop instance): `api`, `mainloop-<n>`,
 * `background`, `agent-<host>`.
 */
export function processName(role: ProcessRole, host?: string, instance = 1): string {
  if (role === 'compute-agent' || role === 'storage-agent') return `agent-${host ?? ''}`;
  return role === 'mainloop' ? `mainloop-${instance}` : role;
}

/** Runs one process until a signal stops it. Resolves to the exit code. */
export async function runProcess(
  config: StagingConfig,
  role: ProcessRole,
  host: StagingHost | undefined,
  instance = 1,
): Promise<number> {
  const name = processName(role, host?.name, instance);
  const runtime = createSystemRuntime({ process: name });
  const stop = new AbortController();
  const onSignal = (signal: string) => () => {
    runtime.log.info('process.stopping', { signal });
    stop.abort();
  };
  const onTerm = onSignal('SIGTERM');
  const onInt = onSignal('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  runtime.log.info('process.starting', { role, pid: process.pid, prefix: config.prefix });

  const closers: (() => Promise<unknown>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  };
  let code = 0;
  try {
    const store = await openStore(config, name);
    closers.push(() => store.close());
    const bus = openBus(config, runtime.log, name);
    closers.push(() => bus.close());
    const body = await startRole(config, role, host, {
      runtime,
      store,
      bus,
      signal: stop.signal,
      name,
    });
    closers.push(body.close);
    runtime.log.info('process.started', body.fields);
    // The role runs until it returns (stopped) or rejects (a bug); a signal ends the wait too.
    await Promise.race([body.done, aborted(stop.signal)]);
    if (stop.signal.aborted) {
      const finished = await Promise.race([
        body.done.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), STOP_GRACE_MS)),
      ]);
      if (!finished) runtime.log.warn('process.stop-timeout', { graceMs: STOP_GRACE_MS });
    } else {
      runtime.log.warn('process.ended', { reason: 'the role returned without a stop signal' });
      code = 1;
    }
  } catch (error) {
    runtime.log.warn('process.failed', {
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    process.stderr.write(
      `cloudbed process ${name}: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    code = 1;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    await Promise.race([
      closeAll(),
      new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref()),
    ]);
  }
  runtime.log.info('process.exit', { code });
  return code;
}

/** What every role gets. */
interface RoleDeps {
  readonly runtime: Runtime;
  readonly store: EventStore;
  readonly bus: ReturnType<typeof openBus>;
  readonly signal: AbortSignal;
  /** The process name (a main loop's instance name in its events and logs). */
  readonly name: string;
}

/** A started role: settles when it ends; `close` releases what it opened beyond the shared ports. */
interface RoleBody {
  readonly done: Promise<void>;
  readonly close: () => Promise<unknown>;
  readonly fields: Record<string, unknown>;
}

async function startRole(
  config: StagingConfig,
  role: ProcessRole,
  host: StagingHost | undefined,
  deps: RoleDeps,
): Promise<RoleBody> {
  const { runtime, store, bus, signal } = deps;
  const nothing = (): Promise<void> => Promise.resolve();
  switch (role) {
    case 'api': {
      const api = createApi({ runtime, store, bus, corsOrigins: config.api.corsOrigins });
      const server = await startHttpServer({
        host: '127.0.0.1',
        port: config.api.port,
        handle: (request) => api.handle(request),
        accessLog: (line) => void process.stdout.write(`${line}\n`),
      });
      return {
        done: aborted(signal),
        close: () => server.close(),
        fields: { url: `${server.url}/v1` },
      };
    }
    case 'mainloop': {
      // Its sessions recorded, so a chaos run can expire one on the server (lock-sessions.ts).
      const locks = recordingSessions(
        openLocks(config),
        lockSessionFile(config.stateDir, deps.name),
      );
      // A chaos run may ask it to stop itself holding a lock (holder-pause.ts); idle otherwise.
      const pause = new HolderPause(holderPauseFile(config.stateDir, deps.name), runtime.log);
      const unlisten = pause.listen();
      return {
        done: runMainLoop({
          runtime,
          store: pause.store(store),
          bus,
          locks: pause.locks(locks),
          options: {
            instance: deps.name,
            sweepIntervalMs: config.mainLoop.sweepIntervalMs,
            concurrency: config.mainLoop.concurrency,
          },
          shouldStop: () => signal.aborted,
        }),
        close: () => {
          unlisten();
          return locks.close();
        },
        fields: {},
      };
    }
    case 'background':
      return { done: runBackground({ runtime, store, bus, signal }), close: nothing, fields: {} };
    case 'compute-agent':
    case 'storage-agent': {
      const kind = role === 'compute-agent' ? 'compute' : 'storage';
      if (host?.kind !== kind) throw new Error(`${role} needs a ${kind} host`);
      // What both agents get; each adds its host's port.
      const agent = {
        runtime,
        hostId: await hostIdOf(store, runtime, host.name, kind),
        bus,
        store,
        signal,
      };
      if (host.kind === 'compute') {
        const hypervisor = openHypervisor(config, host);
        return {
          done: runComputeAgent({
            ...agent,
            hypervisor,
            options: {
              inventoryIntervalMs: config.agents.inventoryIntervalMs,
              shutdownTimeoutMs: config.agents.shutdownTimeoutMs,
            },
          }),
          close: () => hypervisor.close(),
          fields: { hostId: agent.hostId, domainType: domainTypeOf(config) },
        };
      }
      const storage = openStorage(config, host);
      return {
        done: runStorageAgent({
          ...agent,
          storage,
          options: { inventoryIntervalMs: config.agents.inventoryIntervalMs },
        }),
        close: () => storage.close(),
        fields: { hostId: agent.hostId, pool: config.zfs.pool },
      };
    }
  }
}

/**
 * The id of the live host row named `name` (registered by `cloudbed staging up`). Retries while the
 * store is unreachable; a host that is not registered is an error naming the fix.
 */
async function hostIdOf(
  store: EventStore,
  runtime: Runtime,
  name: string,
  kind: 'compute' | 'storage',
): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const rows = (await store.list({ type: 'host' })).map((p) => p.data as unknown as HostRow);
      const row = rows.find((h) => h.name === name && h.kind === kind && h.removed === null);
      if (row === undefined)
        throw new Error(
          `${kind} host '${name}' is not registered in the database: run 'cloudbed staging up' first`,
        );
      return row.id;
    } catch (error) {
      if (!(error instanceof Error && 'retryable' in error && error.retryable === true))
        throw error;
      if (attempt >= HOST_LOOKUP_ATTEMPTS) throw error;
      runtime.log.warn('process.host-lookup-failed', { attempt, error: error.message });
      await runtime.clock.sleep(1_000);
    }
  }
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true }),
  );
}
