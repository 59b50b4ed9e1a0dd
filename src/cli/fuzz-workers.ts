/**
 * `cloudbed fuzz --workers N`: a range of a campaign's runs searched by N worker processes, with
 * the report one process would have produced. Each worker is this same CLI (the bin/cloudbed.js
 * entry, run by this Node with its flags, so it loads TypeScript as this process does) in its
 * hidden `--worker` mode, over an IPC channel (src/cli/fuzz-worker.ts).
 *
 * The parent hands out blocks of consecutive runs in increasing order to whichever worker is free.
 * When a run fails, runs after it are not needed: every worker is told so and starts none of them,
 * while runs before it go on — one of them may fail too, and the failure with the lowest run
 * number is the campaign's first failure, whichever worker reached it first. Once every run below
 * it is in, one worker shrinks it exactly as a single process would (src/fuzz/fuzz.ts `shrinkRun`),
 * and the rest exit. The report is folded from the same records by the same function as in one
 * process, so the runs, verdicts and shrunk failure are those of `--workers 1`.
 *
 * A worker that dies or fails, and Ctrl-C (SIGINT) or SIGTERM on the parent, stop every worker
 * before the session ends with an error: no worker outlives the parent. Workers also exit when
 * their channel to the parent closes, should the parent die without cleaning up.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FuzzCampaign, FuzzRunInfo, RunRecord, ShrinkOutcome } from '../fuzz/fuzz.ts';
import { minBlockSize, type RunRange } from '../fuzz/campaign.ts';
import { isFailing, summarize, type FuzzReport } from '../fuzz/results.ts';
import { WORKER_ENV, type FromWorker, type ToWorker } from './fuzz-worker.ts';

/** The entry the workers run: the file this CLI was started through. */
const ENTRY = fileURLToPath(new URL('../../bin/cloudbed.js', import.meta.url));

/** A session that could not finish: a worker died or failed, or the parent was interrupted. */
export class FuzzWorkersError extends Error {
  override name = 'FuzzWorkersError';
  constructor(
    message: string,
    /** The signal that interrupted the parent, if that is what ended it. */
    readonly signal: NodeJS.Signals | undefined,
  ) {
    super(message);
  }
}

/** Options of {@link fuzzWithWorkers}. */
export interface WorkersOptions {
  /** The runs to search. */
  readonly range: RunRange;
  /** Worker processes (>= 2; fewer when the range has fewer runs). */
  readonly workers: number;
  /** Called for every finished run, search (in the order they finish) and shrink. */
  readonly onRun?: (info: FuzzRunInfo) => void;
}

interface Worker {
  readonly id: number;
  readonly child: ChildProcess;
  /** The block it is running, for messages. */
  block: RunRange | undefined;
  shrinking: boolean;
  /** Told to exit: its exit is expected. */
  released: boolean;
  readonly exited: Promise<void>;
  hasExited: boolean;
}

/**
 * Searches `options.range` of `campaign` with worker processes and shrinks the first failure in
 * one of them. Resolves with the report; rejects with {@link FuzzWorkersError} when a worker dies
 * or fails, or on SIGINT/SIGTERM, after stopping every worker.
 */
export function fuzzWithWorkers(
  campaign: FuzzCampaign,
  options: WorkersOptions,
): Promise<FuzzReport> {
  const { range } = options;
  const total = range.last - range.first + 1;
  const count = Math.max(1, Math.min(options.workers, total));
  // Small blocks keep the workers evenly busy up to the end and a failure's cut-off sharp; blocks
  // grow far into a campaign, where reaching a run's case costs more (see minBlockSize).
  const preferred = Math.min(16, Math.ceil(total / (8 * count)));
  const blockAt = (first: number): number => Math.max(preferred, minBlockSize(first));

  return new Promise<FuzzReport>((resolve, reject) => {
    const records = new Map<number, RunRecord>();
    let next = range.first;
    /** The last run still needed: the range's end, or the lowest failing run so far. */
    let end = range.last;
    let failing: RunRecord | undefined;
    let settled = false;

    const post = (worker: Worker, message: ToWorker): void => {
      if (worker.hasExited || !worker.child.connected) return;
      worker.child.send(message);
    };

    const workers: Worker[] = Array.from({ length: count }, (_, i) => {
      const child = fork(ENTRY, ['fuzz', '--worker'], {
        // A worker prints nothing of its own; anything the code under test writes to stdout goes
        // to stderr, so the parent's stdout stays the summary alone.
        stdio: ['ignore', 2, 2, 'ipc'],
        env: { ...process.env, [WORKER_ENV]: String(process.pid) },
      });
      let markExited: () => void = () => {};
      const worker: Worker = {
        id: i + 1,
        child,
        block: undefined,
        shrinking: false,
        released: false,
        hasExited: false,
        exited: new Promise<void>((resolveExit) => (markExited = resolveExit)),
      };
      child.on('exit', (code, signal) => {
        worker.hasExited = true;
        markExited();
        if (worker.released) return;
        const how = signal === null ? `exited with code ${code ?? '?'}` : `was killed by ${signal}`;
        fail(`worker ${worker.id} (pid ${child.pid ?? '?'}) ${how} ${doing(worker)}`);
      });
      child.on('error', (error) => {
        fail(`worker ${worker.id} could not run: ${error.message}`);
      });
      child.on('message', (message: FromWorker) => onMessage(worker, message));
      post(worker, { type: 'campaign', campaign });
      return worker;
    });

    const onSignal = (signal: NodeJS.Signals): void => {
      fail(`interrupted by ${signal}`, signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    function doing(worker: Worker): string {
      if (worker.shrinking) return `while shrinking run ${failing?.run ?? '?'}`;
      if (worker.block !== undefined)
        return `while running runs ${worker.block.first}–${worker.block.last}`;
      return 'while idle';
    }

    /** Stops every worker and rejects; the first call wins. */
    function fail(reason: string, signal?: NodeJS.Signals): void {
      if (settled) return;
      settled = true;
      const live = workers.filter((w) => !w.hasExited);
      for (const worker of live) {
        worker.released = true;
        worker.child.kill('SIGKILL');
      }
      void finish().then(() =>
        reject(
          new FuzzWorkersError(
            `cloudbed fuzz: ${reason}; stopped ${live.length === 0 ? 'no other worker' : `${live.length} worker${live.length === 1 ? '' : 's'}`}`,
            signal,
          ),
        ),
      );
    }

    /** Waits for every worker to be gone and removes the signal handlers. */
    async function finish(): Promise<void> {
      await Promise.all(workers.map((w) => w.exited));
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }

    function release(worker: Worker): void {
      worker.released = true;
      post(worker, { type: 'exit' });
    }

    function dispatch(worker: Worker): void {
      if (next > end) {
        worker.block = undefined;
        return;
      }
      const first = next;
      const last = Math.min(end, first + blockAt(first) - 1);
      next = last + 1;
      worker.block = { first, last };
      post(worker, { type: 'search', first, count: last - first + 1 });
    }

    function onMessage(worker: Worker, message: FromWorker): void {
      if (settled) return;
      switch (message.type) {
        case 'run': {
          const { record } = message;
          if (record === undefined) {
            options.onRun?.(message.info);
            return;
          }
          // A run past a failure, started before the worker heard of it: not part of the report.
          if (record.run > end) return;
          records.set(record.run, record);
          options.onRun?.(message.info);
          if (isFailing(record)) {
            failing = record;
            end = record.run;
            for (const w of workers) post(w, { type: 'limit', run: end });
          }
          return;
        }
        case 'searched':
          dispatch(worker);
          if (workers.every((w) => w.block === undefined)) searched();
          return;
        case 'shrunk':
          worker.shrinking = false;
          release(worker);
          settle(message.outcome);
          return;
        case 'error':
          fail(`worker ${worker.id} failed ${doing(worker)}: ${message.message}`);
          return;
        default:
          message satisfies never;
      }
    }

    /** Every needed run is in: shrink the first failure, or end. */
    function searched(): void {
      for (let run = range.first; run <= end; run++) {
        if (!records.has(run)) {
          fail(`run ${run} never reported back`);
          return;
        }
      }
      if (failing === undefined) {
        workers.forEach(release);
        settle(undefined);
        return;
      }
      // The worker that ran the failing run would do as well as any: shrinking depends only on
      // the campaign and the run. The first one keeps it simple.
      const [shrinker, ...others] = workers as [Worker, ...Worker[]];
      others.forEach(release);
      shrinker.shrinking = true;
      post(shrinker, { type: 'shrink', failing });
    }

    function settle(shrink: ShrinkOutcome | undefined): void {
      if (settled) return;
      settled = true;
      const results = [...records.values()].filter((record) => record.run <= end);
      void finish().then(() => resolve(summarize(results, shrink)));
    }

    for (const worker of workers) dispatch(worker);
  });
}
