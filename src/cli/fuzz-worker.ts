/**
 * A worker process of `cloudbed fuzz --workers N` (`cloudbed fuzz --worker`, started by the parent
 * over an IPC channel, never by hand): it runs the blocks of runs the parent hands it and sends back
 * one record per run, and shrinks the failure the parent picks. The messages of both sides are
 * defined here; the parent is src/cli/fuzz-workers.ts.
 *
 * The worker holds no state the parent needs: every run's case comes from the campaign and the
 * run's number (src/fuzz/fuzz.ts), so which worker runs what changes nothing in the results.
 */
import type {
  FuzzCampaign,
  FuzzRunInfo,
  PlannedRun,
  RunRecord,
  ShrinkOutcome,
} from '../fuzz/fuzz.ts';
import { UsageError } from './args.ts';

/** Parent to worker. */
export type ToWorker =
  /** The campaign; first message. */
  | { readonly type: 'campaign'; readonly campaign: FuzzCampaign }
  /** Run runs `first` … `first + count - 1`, stopping after a failing one. */
  | { readonly type: 'search'; readonly first: number; readonly count: number }
  /** Runs after `run` are not needed any more (a run up to it failed): start none of them. */
  | { readonly type: 'limit'; readonly run: number }
  /** Shrink this failing run. */
  | { readonly type: 'shrink'; readonly failing: RunRecord }
  /** Exit. */
  | { readonly type: 'exit' };

/** Worker to parent. */
export type FromWorker =
  /** A run finished: a search run with its record, or a shrink run. */
  | { readonly type: 'run'; readonly info: FuzzRunInfo; readonly record?: RunRecord }
  /** The last `search` block is done (all of it, or up to a failure or the limit). */
  | { readonly type: 'searched' }
  | { readonly type: 'shrunk'; readonly outcome: ShrinkOutcome }
  /** Something threw in the worker: a bug. */
  | { readonly type: 'error'; readonly message: string };

/**
 * Set (to the parent's pid) in a worker's environment by the parent that forks it: an IPC channel
 * alone does not make a worker (a test runner's own processes have one too).
 */
export const WORKER_ENV = 'CLOUDBED_FUZZ_PARENT';

/** Runs this process as a fuzz worker until the parent says `exit`; resolves with the exit code. */
export async function runFuzzWorker(): Promise<number> {
  if (
    process.send === undefined ||
    !process.connected ||
    process.env[WORKER_ENV] !== String(process.ppid)
  ) {
    throw new UsageError(
      'cloudbed fuzz: --worker is how cloudbed fuzz --workers starts its worker processes, not an option to use by hand',
    );
  }
  const send = (message: FromWorker): Promise<void> =>
    new Promise((resolve) => {
      process.send?.(message, undefined, {}, () => resolve());
    });
  // Ctrl-C reaches the whole process group; the parent gets it too and stops every worker itself,
  // so a worker never dies first and looks like a crash.
  process.on('SIGINT', () => {});
  // The parent is gone (killed, crashed): nothing is left to report to, and no worker outlives it.
  process.on('disconnect', () => process.exit(1));
  const engine = await import('../fuzz/fuzz.ts');

  let campaign: FuzzCampaign | undefined;
  let limit = Infinity;
  const queue: ToWorker[] = [];
  let wake: (() => void) | undefined;
  process.on('message', (message: ToWorker) => {
    // A limit applies at once, between two runs of the block in progress.
    if (message.type === 'limit') limit = Math.min(limit, message.run);
    else queue.push(message);
    wake?.();
  });
  const next = async (): Promise<ToWorker> => {
    while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return queue.shift() as ToWorker;
  };

  try {
    for (;;) {
      const message = await next();
      switch (message.type) {
        case 'campaign':
          campaign = message.campaign;
          break;
        case 'search': {
          const planned: PlannedRun[] = engine.planRuns(
            required(campaign),
            message.first,
            message.count,
          );
          for (const run of planned) {
            // Let a `limit` sent meanwhile arrive before starting a run that may not be needed.
            await new Promise((resolve) => setImmediate(resolve));
            if (run.run > limit) break;
            let info: FuzzRunInfo | undefined;
            const record = await engine.runPlanned(required(campaign), run, (i) => (info = i));
            await send({ type: 'run', info: required(info), record });
            if (record.verdict !== record.expected) break;
          }
          await send({ type: 'searched' });
          break;
        }
        case 'shrink': {
          const outcome = await engine.shrinkRun(required(campaign), message.failing, (info) => {
            void send({ type: 'run', info });
          });
          await send({ type: 'shrunk', outcome });
          break;
        }
        case 'exit':
          return 0;
        case 'limit':
          break;
        default:
          message satisfies never;
      }
    }
  } catch (error) {
    await send({
      type: 'error',
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    return 1;
  }
}

function required<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('fuzz worker: a message came before the campaign');
  return value;
}
