/**
 * Runs a chaos experiment against a staging deployment and judges it with the simulator's own
 * checkers. The deployment is brought up without its supervisor (the runner restarts what it
 * kills, on the plan's schedule); accounts for the workload are created with fresh names; then,
 * on the wall clock:
 *
 * - the workload driver of the simulator sends the experiment's calls to the real API over HTTP
 *   (same generators, pools, placeholders and `waitFor`), and every write it sees acknowledged
 *   must stay in the log;
 * - the fault injector of the simulator fires the plan's faults through {@link RealFaults};
 * - every {@link POLL_MS} the runner tails the PostgreSQL event log into the {@link Checkers} and
 *   polls libvirt and ZFS into the {@link RealWorld} they watch, and evaluates the safety
 *   invariants (one host per VM, capacity on hosts and in the log, a disk in one domain,
 *   acknowledged writes kept, contiguous streams) — any break ends the run as `correctness`;
 *   an answer 5xx other than 503 is `correctness` too (a 500 is a bug);
 * - at the heal, every fault is undone (the kill switch: paused processes continued, dead ones
 *   started), and the liveness goal — every resource settled, nothing left to plan, no orphan
 *   domain or dataset — must hold within `settleWithin`, or the verdict is `liveness`.
 *
 * Ctrl-C (or any failure of the runner) pulls the kill switch before the runner exits. The run
 * directory keeps the experiment, the faults as injected, the workload's answers, the event log,
 * inventories over time, the process logs and `result.json`.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Prng } from '../lib/prng.ts';
import { FaultInjector } from '../faults/injector.ts';
import type { FaultPlan } from '../faults/plan.ts';
import type { ApiResponse } from '../control/api/types.ts';
import type { AppendBatch, EventStore, StoredEvent } from '../ports/event-store.ts';
import { RECONCILED_TYPES, resourceTypeOfId } from '../model/resources.ts';
import { Checkers, type AcknowledgedWrite } from '../sim/checkers.ts';
import type { Verdict } from '../sim/verdict.ts';
import { scheduleWorkload, type ClientWorld } from '../sim/workload-driver.ts';
import type { StagingConfig } from '../staging/config.ts';
import { adminKeys, apiUrl, basic, up, waitForApi, type Report } from '../staging/deployment.ts';
import {
  logFile,
  processSpecs,
  processState,
  startProcess,
  stopProcesses,
  type ProcessSpec,
} from '../staging/supervisor.ts';
import { mutantProblem, mutantTree } from '../staging/mutants.ts';
import { openStore } from '../staging/wiring.ts';
import type { Experiment } from './experiment.ts';
import {
  continueLeftovers,
  RealFaults,
  type FaultCounts,
  type TimedRecord,
} from './real-faults.ts';
import { RealWorld } from './real-world.ts';

/** How often the log is tailed and the hosts polled, ms. */
export const POLL_MS = 1_000;
/** Inventories are written to the run directory at most this often, ms. */
const INVENTORY_EVERY_MS = 10_000;
/** A client gives up on an API call after this long (the answer counts as none). */
const CLIENT_TIMEOUT_MS = 30_000;
/** A refused call is tried again this often, for this long, ms (an API restart takes seconds). */
const REFUSED_RETRY_MS = 250;
const REFUSED_RETRY_FOR_MS = 30_000;
/** Events read per query of the log. */
const TAIL_BATCH = 5_000;
/**
 * A hole in the log's positions is waited for this long before it is taken for a transaction that
 * rolled back, ms. Positions come from a sequence drawn at insert, so a transaction that commits
 * late leaves a hole that fills later.
 */
const LOG_HOLE_MS = 15_000;

/** What a run ended with. */
export interface ChaosResult {
  readonly experiment: string;
  readonly seed: number;
  /** The account each of the experiment's account names was created as, by id. */
  readonly accounts: Readonly<Record<string, string>>;
  readonly verdict: Verdict;
  readonly reason: string;
  readonly faults: number;
  readonly counts: FaultCounts;
  readonly requests: number;
  readonly answered: number;
  readonly unanswered: number;
  /** Answers 5xx: 503 (a service away) and the rest (bugs). */
  readonly status503: number;
  readonly status5xx: number;
  /** From the heal to the liveness goal, ms; null when it was not reached. */
  readonly convergedInMs: number | null;
  readonly events: number;
  /**
   * From the main loops' logs: times one stopped itself holding a lock, fenced writes the store
   * refused as stale, commands withheld because the lock was lost before sending.
   */
  readonly fencing: {
    readonly pausedHolders: number;
    readonly staleWritesRefused: number;
    readonly sendsWithheld: number;
  };
  readonly runDir: string;
}

export interface ChaosOptions {
  readonly config: StagingConfig;
  readonly experiment: Experiment;
  /** The experiment file's text, kept in the run directory. */
  readonly experimentText: string;
  /** Where the run directory is made (default `<stateDir>/chaos`). */
  readonly runsDir?: string;
  readonly report: Report;
  /**
   * Run every control-plane process as this known-broken variant (src/staging/mutants.ts) for the
   * experiment, and the deployment's own processes again after it. The staging file must allow it.
   */
  readonly mutant?: string;
  /** Aborting pulls the kill switch and ends the run as `crash` (interrupted). */
  readonly signal?: AbortSignal;
}

/** The verdict line, the same shape as `cloudbed run`'s. */
export function chaosLine(result: ChaosResult): string {
  const c = result.counts;
  return [
    `experiment=${result.experiment}`,
    `seed=${result.seed}`,
    `verdict=${result.verdict}`,
    `faults=${result.faults}`,
    `kills=${c.kills}`,
    `pauses=${c.pauses}`,
    `host-crashes=${c.hostCrashes}`,
    `requests=${result.requests}`,
    `unanswered=${result.unanswered}`,
    `5xx=${result.status5xx}`,
    `503=${result.status503}`,
    `stale-refused=${result.fencing.staleWritesRefused}`,
    `sends-withheld=${result.fencing.sendsWithheld}`,
    `converged-in=${result.convergedInMs === null ? '-' : `${result.convergedInMs}ms`}`,
    `run-dir=${result.runDir}`,
  ].join(' ');
}

/** Runs `options.experiment`; resolves with the result (also written to `result.json`). */
export async function runExperiment(options: ChaosOptions): Promise<ChaosResult> {
  const { config, experiment, report } = options;
  const tag = randomBytes(3).toString('hex');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = join(
    options.runsDir ?? join(config.stateDir, 'chaos'),
    `${experiment.name}-${stamp}`,
  );
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'experiment.yaml'), options.experimentText);
  writeFileSync(join(runDir, 'staging.yaml'), readFileSync(config.file, 'utf8'));
  const jsonl = (file: string) => (value: unknown) =>
    appendFileSync(join(runDir, file), `${JSON.stringify(value)}\n`);
  const writeFault = jsonl('faults.jsonl');
  const writeCall = jsonl('workload.jsonl');
  const writeEvent = jsonl('events.jsonl');
  const writeInventory = jsonl('inventories.jsonl');

  if (options.mutant !== undefined) {
    const problem = mutantProblem(config.mutants.allow, options.mutant);
    if (problem !== null) throw new ChaosSetupError(`--mutant ${options.mutant}: ${problem}`);
  }
  const leftovers = continueLeftovers(config);
  if (leftovers > 0)
    report.out(`chaos: continued ${leftovers} processes a previous run left paused`);
  report.out(
    `chaos ${experiment.name}: bringing staging ${config.prefix} up without its supervisor`,
  );
  const upCode = await up(config, report, { supervise: false });
  if (upCode !== 0) throw new ChaosSetupError(`staging up failed (exit ${upCode})`);
  const specs = processSpecs(config, options.mutant);
  if (options.mutant !== undefined) {
    // Built once here, before seven processes would each build it.
    mutantTree(config.stateDir, options.mutant);
    try {
      await switchProcesses(
        config,
        report,
        processSpecs(config),
        specs,
        `mutant ${options.mutant}`,
      );
    } catch (error) {
      await switchProcesses(config, report, specs, processSpecs(config), OWN_CODE).catch(
        () => undefined,
      );
      throw error;
    }
  }

  const admin = adminKeys(config);
  const base = apiUrl(config).replace(/\/v1$/, '');
  const call = async (
    auth: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<ApiResponse | null> => {
    // A refused connection never reached the API (it is down, being restarted): the client tries
    // again, as one behind a load balancer would. Anything else — a reset after the request went
    // out, a timeout — may have taken effect, so it is not retried and counts as no answer.
    for (let waited = 0; ; waited += REFUSED_RETRY_MS) {
      const response = await callOnce(auth, method, path, body);
      if (response !== 'refused') return response;
      if (waited >= REFUSED_RETRY_FOR_MS) return null;
      await sleep(REFUSED_RETRY_MS);
    }
  };
  const callOnce = async (
    auth: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<ApiResponse | null | 'refused'> => {
    try {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: auth,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      });
      const headers: Record<string, string> = {};
      response.headers.forEach((value, name) => (headers[name] = value));
      return { status: response.status, headers, body: await response.text() };
    } catch (error) {
      const code = (error as { cause?: { code?: unknown } }).cause?.code;
      return code === 'ECONNREFUSED' ? 'refused' : null;
    }
  };
  const adminAuth = basic(admin);
  const setup = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const response = await call(adminAuth, 'POST', path, body);
    if (response === null || response.status >= 300)
      throw new ChaosSetupError(
        `setup: POST ${path} answered ${response === null ? 'nothing' : `${response.status}: ${response.body}`}`,
      );
    return JSON.parse(response.body) as Record<string, unknown>;
  };
  const auths = new Map<string, string>([['admin', adminAuth]]);
  const accountIds: Record<string, string> = {};
  for (const name of experiment.accounts) {
    const account = await setup('/v1/accounts', { name: `${name}-${tag}`, kind: 'user' });
    accountIds[name] = String(account['id']);
    const key = await setup('/v1/apikeys', { accountId: account['id'], name: `${name}-key` });
    auths.set(
      name,
      basic({ accessKey: String(key['publicValue']), secretKey: String(key['secretValue']) }),
    );
  }

  const store = await openStore(config, 'chaos');
  let world: RealWorld;
  let checkers: Checkers;
  // The log from before this run (an earlier experiment's, a mutant's stale write among them) sets
  // what the fencing check knows — each resource's newest token — but is not this run's to judge.
  let history = true;
  const historyFences = new Map<string, number>();
  const log = new LogTail(store, (event) => {
    let batch = fencedBatch(event);
    if (history && batch.fence !== undefined) {
      const { resource, token } = batch.fence;
      const newest = Math.max(historyFences.get(resource) ?? 0, token);
      historyFences.set(resource, newest);
      batch = { ...batch, fence: { resource, token: newest } };
    }
    checkers.onCommit(batch, [event]);
    writeEvent(event);
  });
  try {
    world = new RealWorld(config, await hostIds(store));
    await world.poll();
    checkers = new Checkers(world);
    await log.tail(Date.now());
    history = false;
  } catch (error) {
    await store.close();
    throw error;
  }

  const logOffsets = new Map(
    processSpecs(config).map((s) => {
      const file = logFile(config, s.name);
      return [s.name, existsSync(file) ? statSync(file).size : 0] as const;
    }),
  );
  const startMs = Date.now();
  const faults = new RealFaults(
    config,
    specs,
    startMs,
    (record: TimedRecord) => {
      writeFault(record);
      report.out(`  t=${(record.t / 1000).toFixed(1)}s ${describe(record)}`);
    },
    (host, status) => world.setStatus(host, status),
  );
  const plan: FaultPlan = {
    schedule: experiment.schedule,
    bus: undefined,
    adapters: undefined,
    database: undefined,
    locks: undefined,
    healAtMs: experiment.healAtMs,
  };
  const injector = new FaultInjector(plan, faults);

  let requests = 0;
  let answered = 0;
  let status503 = 0;
  let status5xx = 0;
  let bug: string | undefined;
  const acknowledged: AcknowledgedWrite[] = [];
  const clients: ClientWorld = {
    schedule: (delayMs, _label, run) => {
      setTimeout(run, delayMs);
    },
    nowMs: () => Date.now() - startMs,
    send: async (request) => {
      requests++;
      const t = Date.now() - startMs;
      const auth = auths.get(request.as);
      const response =
        auth === undefined ? null : await call(auth, request.method, request.path, request.body);
      const sent: WorkloadCall = {
        t,
        ms: Date.now() - startMs - t,
        as: request.as,
        method: request.method,
        path: request.path,
        ...(request.body === undefined ? {} : { body: request.body }),
        status: response?.status ?? null,
        id: response === null ? null : answeredId(response),
        answer: response === null ? null : response.body.slice(0, 2_000),
      };
      writeCall(sent);
      if (response !== null) {
        answered++;
        if (response.status === 503) status503++;
        else if (response.status >= 500) {
          status5xx++;
          bug ??= `${request.method} ${request.path} answered ${response.status}: ${response.body.slice(0, 300)}`;
        }
      }
      return response;
    },
    record: () => undefined,
    // Checked against a log read after the answer came (see observe).
    acknowledge: (ack) => acknowledged.push(ack),
  };

  const interrupted = new Promise<'interrupted'>((resolve) => {
    if (options.signal?.aborted === true) resolve('interrupted');
    options.signal?.addEventListener('abort', () => resolve('interrupted'), { once: true });
  });
  /** Waits one poll period; an interruption ends the run. */
  const nextPoll = async (): Promise<void> => {
    if ((await Promise.race([sleep(POLL_MS), interrupted])) === 'interrupted')
      throw new Interrupted();
  };
  let verdict: Verdict = 'ok';
  let reason = 'every invariant held, and the deployment converged after the heal';
  let convergedInMs: number | null = null;
  let lastInventoryMs = -Infinity;
  const observe = async (): Promise<string | undefined> => {
    // Writes acknowledged before this read of the log must be in it.
    const acks = acknowledged.splice(0);
    await log.tail(Date.now());
    for (const ack of acks) checkers.acknowledge(ack);
    const inventory = await world.poll();
    const now = Date.now() - startMs;
    if (now - lastInventoryMs >= INVENTORY_EVERY_MS) {
      lastInventoryMs = now;
      writeInventory({ t: now, ...inventory });
    }
    return checkers.checkSafety() ?? bug;
  };

  try {
    injector.start();
    const workload = scheduleWorkload(
      clients,
      experiment.workload,
      new Prng(experiment.seed).fork('workload'),
    );
    report.out(
      `chaos ${experiment.name}: ${experiment.schedule.length} faults until ${experiment.healAtMs / 1000}s, then up to ${experiment.settleWithinMs / 1000}s to converge`,
    );
    // The safety phase: until the heal and the last answer.
    for (;;) {
      await nextPoll();
      const violation = await observe();
      if (violation !== undefined) {
        verdict = 'correctness';
        reason = violation;
        break;
      }
      if (Date.now() - startMs >= experiment.healAtMs && workload.done()) break;
    }
    if (verdict === 'ok') {
      await faults.settle();
      const healedMs = Date.now() - startMs;
      report.out(
        `chaos ${experiment.name}: healed at ${(healedMs / 1000).toFixed(1)}s; waiting for convergence`,
      );
      for (;;) {
        const violation = await observe();
        if (violation !== undefined) {
          verdict = 'correctness';
          reason = violation;
          break;
        }
        const down = specs.filter((s) => processState(config, s).state !== 'running');
        if (down.length === 0 && workload.done() && checkers.converged(Date.now())) {
          convergedInMs = Date.now() - startMs - healedMs;
          break;
        }
        if (Date.now() - startMs - healedMs > experiment.settleWithinMs) {
          verdict = 'liveness';
          reason = `not converged ${experiment.settleWithinMs / 1000}s after the heal: ${
            down.length > 0
              ? `processes not running: ${down.map((s) => s.name).join(', ')}`
              : (checkers.unconverged(Date.now()) ?? 'the workload has calls unanswered')
          }`;
          break;
        }
        await nextPoll();
      }
    }
  } catch (error) {
    verdict = 'crash';
    reason =
      error instanceof Interrupted
        ? 'interrupted; every fault was undone'
        : `the runner failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
  } finally {
    // The kill switch, whatever happened.
    await faults.undo();
    await store.close();
    // A mutant's processes give way to the deployment's own.
    if (options.mutant !== undefined)
      await switchProcesses(config, report, specs, processSpecs(config), OWN_CODE).catch(
        (error: unknown) =>
          report.err(`chaos: could not restore the deployment's own processes: ${String(error)}`),
      );
  }

  // Each process's log from where it stood when the run started: this run's part only.
  const fencing = { pausedHolders: 0, staleWritesRefused: 0, sendsWithheld: 0 };
  for (const spec of processSpecs(config)) {
    const file = logFile(config, spec.name);
    if (!existsSync(file)) continue;
    const text = readFileSync(file)
      .subarray(logOffsets.get(spec.name) ?? 0)
      .toString('utf8');
    writeFileSync(join(runDir, `${spec.name}.log`), text);
    if (!spec.name.startsWith('mainloop-')) continue;
    fencing.pausedHolders += count(text, '"chaos.pause-holder"');
    fencing.staleWritesRefused += count(text, '"store.stale-token"');
    fencing.sendsWithheld += count(text, 'lock lost before sending');
  }
  const result: ChaosResult = {
    experiment: experiment.name,
    seed: experiment.seed,
    accounts: accountIds,
    verdict,
    reason,
    faults: experiment.schedule.length,
    counts: faults.counts,
    requests,
    answered,
    unanswered: requests - answered,
    status503,
    status5xx,
    convergedInMs,
    events: log.events,
    fencing,
    runDir,
  };
  writeFileSync(join(runDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

/** One line of `workload.jsonl`: a call as sent and what came back. */
export interface WorkloadCall {
  /** When it was sent and how long the answer took, ms since the start. */
  readonly t: number;
  readonly ms: number;
  /** The account it was sent as. */
  readonly as: string;
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  /** The answer's status; null for no answer. */
  readonly status: number | null;
  /** The id in a 2xx answer (of a created resource, or the one acted on), else null. */
  readonly id: string | null;
  /** The answer's body, cut at 2,000 characters. */
  readonly answer: string | null;
}

function answeredId(response: ApiResponse): string | null {
  if (response.status < 200 || response.status >= 300) return null;
  try {
    const id = (JSON.parse(response.body) as { id?: unknown }).id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

const OWN_CODE = 'the deployment’s own code';

/** Stops the processes `from` and starts `to` (running `what`) in their place; waits for the API. */
async function switchProcesses(
  config: StagingConfig,
  report: Report,
  from: readonly ProcessSpec[],
  to: readonly ProcessSpec[],
  what: string,
): Promise<void> {
  await stopProcesses(config, from);
  for (const spec of to) await startProcess(config, spec);
  const api = to.find((s) => s.name === 'api');
  if (!(await waitForApi(config, adminKeys(config), api)))
    throw new ChaosSetupError(`the API did not answer after the processes were switched`);
  report.out(`chaos: processes now run ${what}`);
}

/** The deployment could not be brought up or prepared: not a verdict about the control plane. */
export class ChaosSetupError extends Error {
  override name = 'ChaosSetupError';
}

class Interrupted extends Error {}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Follows the event log by position, feeding every event exactly once. Positions are drawn when a
 * transaction inserts, not when it commits, so reading on from the highest position seen would
 * skip a transaction that commits late: the tail keeps its cursor below the first hole, reads on
 * from there (skipping what it fed), and gives a hole up after {@link LOG_HOLE_MS}. Within one
 * stream versions commit in order, so every stream is fed contiguously.
 */
export class LogTail {
  /** Every position up to here is fed or given up. */
  private cursor = 0;
  /** Positions above the cursor that were fed. */
  private readonly fed = new Set<number>();
  /** The hole just above the cursor and when it was first seen. */
  private hole: { position: number; sinceMs: number } | null = null;
  events = 0;

  constructor(
    private readonly store: EventStore,
    private readonly feed: (event: StoredEvent) => void,
  ) {}

  /** Reads everything committed so far; `nowMs` times the holes. */
  async tail(nowMs: number): Promise<void> {
    let after = this.cursor;
    for (;;) {
      const batch = await this.store.readAll(after, TAIL_BATCH);
      for (const event of batch) {
        if (!this.fed.has(event.position)) {
          this.fed.add(event.position);
          this.feed(event);
          this.events++;
        }
        after = event.position;
      }
      if (batch.length < TAIL_BATCH) break;
    }
    this.advance(nowMs);
  }

  private advance(nowMs: number): void {
    for (;;) {
      while (this.fed.delete(this.cursor + 1)) this.cursor++;
      if (this.fed.size === 0) {
        this.hole = null;
        return;
      }
      const position = this.cursor + 1;
      if (this.hole?.position !== position) this.hole = { position, sinceMs: nowMs };
      if (nowMs - this.hole.sinceMs < LOG_HOLE_MS) return;
      // Given up: the rest of a rolled-back batch has waited as long.
      this.cursor = position;
      this.hole = { position: position + 1, sinceMs: this.hole.sinceMs };
    }
  }
}

/**
 * The batch an event was written in, as far as the fencing invariant needs it. A main loop writes a
 * VM's, volume's or snapshot's stream only under that resource's lock and stamps its token on the
 * events (`meta.fencingToken`); lock tokens grow, and the store refuses an older one. So on those
 * streams, a token lower than one already applied is a stale write the store let through — what
 * the checkers' fence check reports. (A placement's event on a host stream carries the token of
 * the VM's lock, not the host's: host streams are left out.)
 */
export function fencedBatch(event: StoredEvent): AppendBatch {
  const token = event.meta.fencingToken;
  const type = resourceTypeOfId(event.stream);
  if (typeof token !== 'number' || type === null || !RECONCILED.has(type)) return { appends: [] };
  return { appends: [], fence: { resource: event.stream, token } };
}

const RECONCILED: ReadonlySet<string> = new Set(RECONCILED_TYPES);

/** Host ids by host name, from the database. */
async function hostIds(store: EventStore): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const p of await store.list({ type: 'host' })) {
    const row = p.data as { name?: unknown; removed?: unknown };
    if (typeof row.name === 'string' && row.removed === null) ids.set(row.name, p.stream);
  }
  return ids;
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

function describe(record: TimedRecord): string {
  const { kind, t: _t, ...rest } = record;
  const fields = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  return `${kind.replace(/^fault\./, '')} ${fields}`;
}
