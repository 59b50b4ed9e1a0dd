/**
 * The mutant catalogue: known-broken variants of the control plane, each a textual patch of a copy
 * of src/, and the property that must catch it. A patch names the exact text it replaces; a patch
 * whose anchor is not found exactly once fails the mutants run loudly, so a refactor of the
 * control plane breaks the mutant instead of letting it pass silently.
 *
 * Each mutant names one property of `npm test` (same definitions, same kind of run): the fuzz
 * properties of src/fuzz/cases.ts (FUZZ_PROPERTIES), the model-based property of
 * src/fuzz/model-based.ts, or a race property of src/fuzz/races.ts. Nothing here touches the
 * real src/: scripts/mutants.ts applies the patches to a copy.
 */

import { AGENT_FENCE_PATCHES } from '../../src/staging/mutants.ts';

/** One textual replacement in one file under src/. */
export interface Patch {
  /** Path relative to src/. */
  readonly file: string;
  /** The exact text to replace; must occur exactly once. */
  readonly find: string;
  readonly replace: string;
}

/** Which property runs against a mutant, and how many cases it may try. */
export type Probe =
  | {
      /** A fuzz property over generated scenarios (src/fuzz/fuzz.ts). */
      readonly kind: 'fuzz';
      readonly property: 'convergence' | 'swarm' | 'fencing';
      readonly runs: number;
      readonly seed: number;
      /** Most runs spent shrinking (liveness runs are slow: up to a few seconds each). */
      readonly shrinkRuns: number;
    }
  | {
      /** The model-based property (src/fuzz/model-based.ts), with a healthy or a lossy bus. */
      readonly kind: 'model';
      readonly lossyBus: boolean;
      readonly runs: number;
      readonly seed: number;
    }
  | {
      /** A race property under fc.scheduler (src/fuzz/races.ts). */
      readonly kind: 'race';
      readonly race: 'mainloop' | 'agent';
      readonly runs: number;
      readonly seed: number;
    };

/** A known-broken variant. */
export interface Mutant {
  readonly name: string;
  /** What is broken, in one line. */
  readonly description: string;
  readonly patches: readonly Patch[];
  readonly probe: Probe;
  /** Largest shrunk counterexample accepted as "small" (steps + faults, commands, race size). */
  readonly maxShrunkSize: number;
}

const storeFence: Patch = {
  file: 'adapters/memory-event-store.ts',
  find: 'if (fence.token < newest) throw new StaleTokenError(fence.resource, fence.token, newest);',
  replace: 'void newest; // mutant: the store applies writes with stale fencing tokens',
};

/** The agents' fence checks, removed: the same patches staging's mutants use. */
const agentFences: readonly Patch[] = AGENT_FENCE_PATCHES;

/** The mutants, in the order they are reported. */
export const MUTANTS: readonly Mutant[] = [
  {
    name: 'no-store-fence',
    description: 'the event store applies writes whose fencing token is older than one it has seen',
    patches: [storeFence],
    probe: { kind: 'fuzz', property: 'fencing', runs: 1000, seed: 1, shrinkRuns: 250 },
    maxShrunkSize: 10,
  },
  {
    name: 'no-agent-fence',
    description: 'agents execute commands whose fencing token is older than one they have seen',
    patches: agentFences,
    probe: { kind: 'race', race: 'agent', runs: 500, seed: 1 },
    maxShrunkSize: 6,
  },
  {
    name: 'no-fence',
    description: 'neither the store nor the agents check fencing tokens',
    patches: [storeFence, ...agentFences],
    probe: { kind: 'fuzz', property: 'fencing', runs: 1000, seed: 1, shrinkRuns: 250 },
    maxShrunkSize: 10,
  },
  {
    name: 'non-idempotent-start',
    description: 'the compute agent starts a domain that already runs, and reports the failure',
    patches: [
      {
        file: 'control/agents/compute-agent.ts',
        find: 'if (domain === null || !isActive(domain)) {\n      try {',
        replace: '{\n      try { // mutant: start whatever the state',
      },
      {
        file: 'control/agents/compute-agent.ts',
        find: "if (!hasReason(error, 'already-running')) throw error;",
        replace: 'throw error; // mutant: a second start is an error',
      },
    ],
    probe: { kind: 'model', lossyBus: true, runs: 200, seed: 1 },
    maxShrunkSize: 6,
  },
  {
    name: 'no-resend',
    description:
      'the planner never re-sends a command toward the same goal (a lost command is lost)',
    patches: [
      {
        file: 'model/plan.ts',
        find: 'if (row.nextAttemptAtMs !== null && ctx.nowMs < row.nextAttemptAtMs && sameGoal)',
        replace: 'if (row.nextAttemptAtMs !== null && sameGoal) // mutant: wait forever',
      },
    ],
    probe: { kind: 'fuzz', property: 'swarm', runs: 500, seed: 1, shrinkRuns: 60 },
    maxShrunkSize: 10,
  },
  {
    name: 'no-sweep',
    description:
      'the main loop sweeps once at start, then only follows change notices and deadlines',
    patches: [
      {
        file: 'control/mainloop/main-loop.ts',
        find: 'this.nextSweepAtMs = now + this.options.sweepIntervalMs;',
        replace: 'this.nextSweepAtMs = Number.POSITIVE_INFINITY; // mutant: sweep once, at start',
      },
    ],
    probe: { kind: 'fuzz', property: 'swarm', runs: 500, seed: 1, shrinkRuns: 60 },
    maxShrunkSize: 10,
  },
  {
    name: 'no-orphan-collection',
    description: 'the compute agent never destroys domains no live VM places on its host',
    patches: [
      {
        file: 'control/agents/compute-agent.ts',
        find: 'housekeeping: () => this.collectOrphans(),',
        replace: 'housekeeping: () => Promise.resolve(), // mutant: no orphan collection',
      },
    ],
    probe: { kind: 'fuzz', property: 'swarm', runs: 3000, seed: 1, shrinkRuns: 300 },
    maxShrunkSize: 8,
  },
  {
    name: 'early-release',
    description: 'the main loop releases a resource lock right after taking it, before it writes',
    patches: [
      {
        file: 'control/mainloop/main-loop.ts',
        find: '    this.stats.reconciled++;\n    try {',
        replace:
          '    this.stats.reconciled++;\n    await session.release(lease); // mutant: released before the write\n    try {',
      },
    ],
    probe: { kind: 'race', race: 'mainloop', runs: 300, seed: 1 },
    maxShrunkSize: 6,
  },
];
