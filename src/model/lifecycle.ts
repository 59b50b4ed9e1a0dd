/**
 * One door to the four lifecycle machines: the pure step function the projector uses, the actions
 * the api shows for a state, and the description of every lifecycle the schemas publish. The
 * machines are only ever evaluated with xstate's pure `transition()` on a snapshot rebuilt from the
 * stored state string, so nothing here keeps state or time.
 *
 * CONTRACT (api): `availableActions(type, state)` is exactly the GDAPI `actions` of a resource in
 * that state; `allowsDelete(type, state)` says whether DELETE is allowed; `describeLifecycle(type)`
 * is what /v1/schemas publishes.
 */
import { transition, type AnyStateMachine } from 'xstate';
import { assert } from '../lib/assert.ts';
import { HOST_USER_EVENTS, hostMachine, type HostMachineEvent } from './host.machine.ts';
import type { MachineType, ResourceType } from './resources.ts';
import {
  SNAPSHOT_USER_EVENTS,
  snapshotMachine,
  type SnapshotMachineEvent,
} from './snapshot.machine.ts';
import { VM_USER_EVENTS, vmMachine, type VmMachineEvent } from './vm.machine.ts';
import { VOLUME_USER_EVENTS, volumeMachine, type VolumeMachineEvent } from './volume.machine.ts';

/** Machine events per machine type. */
export type MachineEventOf = {
  virtualMachine: VmMachineEvent;
  volume: VolumeMachineEvent;
  snapshot: SnapshotMachineEvent;
  host: HostMachineEvent;
};

const MACHINES: Record<MachineType, AnyStateMachine> = {
  virtualMachine: vmMachine,
  volume: volumeMachine,
  snapshot: snapshotMachine,
  host: hostMachine,
};

/** GDAPI action name → machine event type, per machine type (includes `delete`/`remove`). */
export const USER_EVENTS: Record<MachineType, Readonly<Record<string, string>>> = {
  virtualMachine: VM_USER_EVENTS,
  volume: VOLUME_USER_EVENTS,
  snapshot: SNAPSHOT_USER_EVENTS,
  host: HOST_USER_EVENTS,
};

/** True for the types driven by a lifecycle machine. */
export function hasMachine(type: string): type is MachineType {
  return type === 'virtualMachine' || type === 'volume' || type === 'snapshot' || type === 'host';
}

/** The machine of a type. */
export function machineOf(type: MachineType): AnyStateMachine {
  return MACHINES[type];
}

/** The initial state of a type's machine (`creating`, `registering`). */
export function initialState(type: MachineType): string {
  const initial = MACHINES[type].config.initial;
  assert(typeof initial === 'string', `machine ${type} has no initial state`);
  return initial;
}

/** The machine's states, in declaration order. */
export function statesOf(type: MachineType): readonly string[] {
  return Object.keys(MACHINES[type].config.states ?? {});
}

function snapshotAt(type: MachineType, state: string) {
  assert(statesOf(type).includes(state), `${type} has no state ${state}`);
  return MACHINES[type].resolveState({ value: state, context: {} });
}

/**
 * The event fields each machine's guards read, besides `type` (vm.machine.ts: `desired`;
 * volume.machine.ts: `attached`). A machine's answer for a state and an event depends on nothing
 * else — no context, no time — so it is computed by xstate once per distinct key and remembered:
 * the projector steps a machine for every stored event, and asking xstate each time (a snapshot
 * rebuilt, an actor scope made) was a large share of a simulated step. The lifecycle test proves
 * the guards read no other field and that the remembered answers are xstate's.
 */
export const GUARD_FIELDS: Readonly<Record<MachineType, readonly string[]>> = {
  virtualMachine: ['desired'],
  volume: ['attached'],
  snapshot: [],
  host: [],
};

const answers = new Map<string, string | boolean>();

/** What decides a machine's answer: type, state, question, event type and the guards' fields. */
function answerKey(
  type: MachineType,
  state: string,
  question: 'step' | 'accepts',
  event: { readonly type: string },
): string {
  let key = `${type}\0${state}\0${question}\0${event.type}`;
  const fields = event as unknown as Readonly<Record<string, unknown>>;
  for (const field of GUARD_FIELDS[type]) key += `\0${String(fields[field])}`;
  return key;
}

function remembered<V extends string | boolean>(key: string, compute: () => V): V {
  const known = answers.get(key);
  if (known !== undefined) return known as V;
  const value = compute();
  answers.set(key, value);
  return value;
}

/**
 * The state after `event`, or `state` itself when the machine does not accept the event there
 * (events that do not apply are ignored, as a level-triggered fold must).
 */
export function stepState<T extends MachineType>(
  type: T,
  state: string,
  event: MachineEventOf[T],
): string {
  return remembered(answerKey(type, state, 'step', event), () => xstateStep(type, state, event));
}

/** {@link stepState} asked of xstate itself, unremembered (for the lifecycle test). */
export function xstateStep<T extends MachineType>(
  type: T,
  state: string,
  event: MachineEventOf[T],
): string {
  const machine: AnyStateMachine = MACHINES[type];
  const [next] = transition(machine, snapshotAt(type, state), event);
  const value: unknown = next.value;
  assert(typeof value === 'string', `${type} machine produced a non-string state`);
  return value;
}

/** True when the machine accepts `event` in `state` (it has an enabled transition for it). */
export function accepts<T extends MachineType>(
  type: T,
  state: string,
  event: MachineEventOf[T],
): boolean {
  return remembered(answerKey(type, state, 'accepts', event), () =>
    snapshotAt(type, state).can(event),
  );
}

/** True for a final state (`removed`). */
export function isFinalState(type: MachineType, state: string): boolean {
  return remembered(`${type}\0${state}\0final`, () => snapshotAt(type, state).status === 'done');
}

/**
 * GDAPI actions valid in `state`: the user events the machine accepts there, by action name,
 * excluding `delete` (that is the DELETE method, see {@link allowsDelete}). Types without a machine
 * have no actions. Sorted by name.
 */
export function availableActions(type: ResourceType, state: string): string[] {
  if (!hasMachine(type)) return [];
  return Object.entries(USER_EVENTS[type])
    .filter(
      ([action, event]) => action !== 'delete' && accepts(type, state, { type: event } as never),
    )
    .map(([action]) => action)
    .sort();
}

/** Whether DELETE is allowed in `state` (accounts, api keys: while not removed). */
export function allowsDelete(type: ResourceType, state: string): boolean {
  if (!hasMachine(type)) return state !== 'removed';
  if (type === 'host') return false;
  return accepts(type, state, { type: 'DELETE' } as never);
}

/** One transition of a lifecycle, for the schema. */
export interface LifecycleTransition {
  readonly from: string;
  /** Machine event type, e.g. `START`, `REACHED_RUNNING`. */
  readonly event: string;
  /** The GDAPI action that sends it, or null for a progress event. */
  readonly action: string | null;
  readonly to: string;
  /** Guard name when the transition is conditional, e.g. `wantsRunning`. */
  readonly guard: string | null;
}

/** A lifecycle as published by /v1/schemas. */
export interface LifecycleDescription {
  readonly type: MachineType;
  readonly initial: string;
  readonly states: readonly string[];
  readonly finalStates: readonly string[];
  /** `transitioning: yes` states. */
  readonly transitioningStates: readonly string[];
  readonly errorStates: readonly string[];
  readonly transitions: readonly LifecycleTransition[];
}

/** States in which work is in progress (GDAPI `transitioning: yes`). */
const TRANSITIONING_STATES: Record<MachineType, readonly string[]> = {
  virtualMachine: ['creating', 'starting', 'stopping', 'restarting', 'deleting'],
  volume: ['creating', 'growing', 'restoring', 'deleting'],
  snapshot: ['creating', 'deleting'],
  host: [],
};

/** GDAPI `transitioning` for a state: `yes`, `no` or `error`. */
export function transitioningOf(type: MachineType, state: string): 'yes' | 'no' | 'error' {
  if (state === 'error') return 'error';
  return TRANSITIONING_STATES[type].includes(state) ? 'yes' : 'no';
}

/** States, transitions and the action behind each user transition, from the machine itself. */
export function describeLifecycle(type: MachineType): LifecycleDescription {
  const machine = MACHINES[type];
  const actionOf = new Map(Object.entries(USER_EVENTS[type]).map(([a, e]) => [e, a]));
  const states = statesOf(type);
  const transitions: LifecycleTransition[] = [];
  for (const state of states) {
    const node = machine.states[state];
    assert(node !== undefined, `state ${state} missing`);
    for (const [event, definitions] of node.transitions) {
      for (const definition of definitions) {
        const target = definition.target?.[0]?.key ?? state;
        const guard = definition.guard;
        transitions.push({
          from: state,
          event,
          action: actionOf.get(event) ?? null,
          to: target,
          guard: typeof guard === 'string' ? guard : null,
        });
      }
    }
  }
  return {
    type,
    initial: initialState(type),
    states,
    finalStates: states.filter((s) => machine.states[s]?.type === 'final'),
    transitioningStates: TRANSITIONING_STATES[type],
    errorStates: states.filter((s) => s === 'error'),
    transitions,
  };
}
