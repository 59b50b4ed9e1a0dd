/**
 * Goal: every transition of every lifecycle machine (VM, volume, snapshot, host) is exercised and
 * lands where the machine's own definition says; every state is reachable from the initial state
 * and can still reach `removed` (no trap states); the api's actions equal the user events a state
 * accepts; the pure `stepState` the projector uses agrees with xstate along every shortest path.
 *
 * Method: @xstate/graph builds the adjacency map and the shortest paths of each machine from a
 * list of concrete events (every progress event with every payload its guards look at). Each
 * declared transition (from describeLifecycle, i.e. from the machine config) must appear as an
 * edge of that map; each path is replayed through `stepState`.
 */
import { getAdjacencyMap, getShortestPaths } from '@xstate/graph';
import type { AnyStateMachine, EventObject } from 'xstate';
import { describe, expect, it } from 'vitest';
import {
  allowsDelete,
  availableActions,
  describeLifecycle,
  initialState,
  isFinalState,
  machineOf,
  statesOf,
  stepState,
  transitioningOf,
  USER_EVENTS,
} from '../../src/model/lifecycle.ts';
import type { MachineType } from '../../src/model/resources.ts';

/** Every event each machine can receive, with every payload variant a guard distinguishes. */
const EVENTS: Record<MachineType, EventObject[]> = {
  virtualMachine: [
    { type: 'START' },
    { type: 'STOP' },
    { type: 'RESTART' },
    { type: 'DELETE' },
    ...(['running', 'stopped', 'deleted'] as const).flatMap((desired) => [
      { type: 'REACHED_RUNNING', desired },
      { type: 'REACHED_STOPPED', desired },
      { type: 'REACHED_ABSENT', desired },
    ]),
    { type: 'FAILED' },
    { type: 'REMOVED' },
  ],
  volume: [
    { type: 'ATTACH' },
    { type: 'DETACH' },
    { type: 'GROW' },
    { type: 'SNAPSHOT' },
    { type: 'RESTORE' },
    { type: 'DELETE' },
    ...[true, false].flatMap((attached) => [
      { type: 'REACHED_PRESENT', attached },
      { type: 'RESTORED', attached },
    ]),
    { type: 'LOST' },
    { type: 'FAILED' },
    { type: 'REMOVED' },
  ],
  snapshot: [
    { type: 'DELETE' },
    { type: 'REACHED_PRESENT' },
    { type: 'LOST' },
    { type: 'FAILED' },
    { type: 'REMOVED' },
  ],
  host: [
    { type: 'MAINTENANCE' },
    { type: 'ACTIVATE' },
    { type: 'REMOVE' },
    { type: 'UP' },
    { type: 'DOWN' },
  ],
};

const TYPES: readonly MachineType[] = ['virtualMachine', 'volume', 'snapshot', 'host'];

interface Edge {
  readonly from: string;
  readonly event: EventObject;
  readonly to: string;
}

/** Every edge of the machine's reachable graph, from @xstate/graph's adjacency map. */
function edgesOf(type: MachineType): Edge[] {
  const machine: AnyStateMachine = machineOf(type);
  const adjacency = getAdjacencyMap(machine, { events: EVENTS[type] }) as unknown as Record<
    string,
    {
      state: { value: unknown };
      transitions: Record<string, { state: { value: unknown }; event: EventObject }>;
    }
  >;
  const edges: Edge[] = [];
  for (const entry of Object.values(adjacency)) {
    const from = entry.state.value as string;
    for (const { state, event } of Object.values(entry.transitions)) {
      edges.push({ from, event, to: state.value as string });
    }
  }
  return edges;
}

describe.each(TYPES)('the %s lifecycle', (type) => {
  const machine: AnyStateMachine = machineOf(type);
  const description = describeLifecycle(type);
  const edges = edgesOf(type);

  it('covers every declared transition with an edge of the graph', () => {
    expect(description.transitions.length).toBeGreaterThan(0);
    for (const t of description.transitions) {
      const covering = edges.filter(
        (e) => e.from === t.from && e.event.type === t.event && e.to === t.to,
      );
      expect(
        covering,
        `${t.from} --${t.event}${t.guard ? `[${t.guard}]` : ''}--> ${t.to}`,
      ).not.toEqual([]);
    }
  });

  it('takes no edge that the definition does not declare', () => {
    for (const e of edges) {
      if (
        e.from === e.to &&
        !description.transitions.some((t) => t.from === e.from && t.event === e.event.type)
      )
        continue; // an ignored event: the state stays
      const declared = description.transitions.some(
        (t) => t.from === e.from && t.event === e.event.type && t.to === e.to,
      );
      expect(declared, `${e.from} --${JSON.stringify(e.event)}--> ${e.to}`).toBe(true);
    }
  });

  it('reaches every state from the initial one, and the replayed paths agree with stepState', () => {
    const paths = getShortestPaths(machine, { events: EVENTS[type] }) as unknown as {
      state: { value: unknown };
      steps: { event: EventObject; state: { value: unknown } }[];
    }[];
    const reached = new Set(paths.map((p) => p.state.value as string));
    expect([...reached].sort()).toEqual([...statesOf(type)].sort());
    for (const path of paths) {
      let state = initialState(type);
      for (const step of path.steps) {
        if (step.event.type === 'xstate.init') continue;
        state = stepState(type, state, step.event as never);
        expect(state).toBe(step.state.value);
      }
      expect(state).toBe(path.state.value);
    }
  });

  it('has no trap states: every state can still reach removed', () => {
    const canReachRemoved = new Set<string>(['removed']);
    for (let changed = true; changed;) {
      changed = false;
      for (const e of edges)
        if (canReachRemoved.has(e.to) && !canReachRemoved.has(e.from)) {
          canReachRemoved.add(e.from);
          changed = true;
        }
    }
    expect([...canReachRemoved].sort()).toEqual([...statesOf(type)].sort());
    expect(description.finalStates).toEqual(['removed']);
    expect(isFinalState(type, 'removed')).toBe(true);
  });

  it('shows as actions exactly the user events each state accepts', () => {
    const userEvents = USER_EVENTS[type];
    for (const state of statesOf(type)) {
      const accepted = Object.entries(userEvents)
        .filter(([, ev]) =>
          edges.some(
            (e) =>
              e.from === state &&
              e.event.type === ev &&
              !(
                e.from === e.to &&
                !description.transitions.some((t) => t.from === state && t.event === ev)
              ),
          ),
        )
        .map(([action]) => action);
      const expected = accepted.filter((a) => a !== 'delete').sort();
      expect(availableActions(type, state), state).toEqual(expected);
      if (type !== 'host')
        expect(allowsDelete(type, state), state).toBe(accepted.includes('delete'));
    }
    expect(availableActions(type, 'removed')).toEqual([]);
  });
});

describe('lifecycle semantics', () => {
  it('lets a delete (or a host removal) in from every live state, so cascades always proceed', () => {
    for (const type of TYPES) {
      const event = type === 'host' ? 'REMOVE' : 'DELETE';
      for (const state of statesOf(type)) {
        if (state === 'removed' || state === 'deleting') continue;
        expect(stepState(type, state, { type: event } as never), `${type} ${state}`).toBe(
          type === 'host' ? 'removed' : 'deleting',
        );
      }
    }
  });

  it('brings a created VM to starting or stopped by what the user asked', () => {
    expect(
      stepState('virtualMachine', 'creating', { type: 'REACHED_STOPPED', desired: 'running' }),
    ).toBe('starting');
    expect(
      stepState('virtualMachine', 'creating', { type: 'REACHED_STOPPED', desired: 'stopped' }),
    ).toBe('stopped');
    // An absent domain is where creation starts from, not progress.
    expect(
      stepState('virtualMachine', 'creating', { type: 'REACHED_ABSENT', desired: 'running' }),
    ).toBe('creating');
  });

  it('restarts by stopping, then starting', () => {
    let s = stepState('virtualMachine', 'running', { type: 'RESTART' });
    expect(s).toBe('restarting');
    s = stepState('virtualMachine', s, { type: 'REACHED_RUNNING', desired: 'running' });
    expect(s).toBe('restarting');
    s = stepState('virtualMachine', s, { type: 'REACHED_STOPPED', desired: 'running' });
    expect(s).toBe('starting');
    expect(stepState('virtualMachine', s, { type: 'REACHED_RUNNING', desired: 'running' })).toBe(
      'running',
    );
  });

  it('keeps error sticky until the user asks again', () => {
    for (const e of EVENTS.virtualMachine.filter((x) => x.type.startsWith('REACHED')))
      expect(stepState('virtualMachine', 'error', e as never)).toBe('error');
    expect(availableActions('virtualMachine', 'error')).toEqual(['start', 'stop']);
    expect(allowsDelete('virtualMachine', 'error')).toBe(true);
  });

  it('returns a volume to attached or available after work, by its attachment', () => {
    expect(stepState('volume', 'growing', { type: 'REACHED_PRESENT', attached: true })).toBe(
      'attached',
    );
    expect(stepState('volume', 'growing', { type: 'REACHED_PRESENT', attached: false })).toBe(
      'available',
    );
    expect(stepState('volume', 'restoring', { type: 'RESTORED', attached: true })).toBe('attached');
    expect(availableActions('volume', 'attached')).toEqual([
      'detach',
      'grow',
      'restore',
      'snapshot',
    ]);
    expect(availableActions('volume', 'available')).toEqual([
      'attach',
      'grow',
      'restore',
      'snapshot',
    ]);
  });

  it('keeps a host in maintenance whether it is up or down', () => {
    expect(stepState('host', 'maintenance', { type: 'DOWN' })).toBe('maintenance');
    expect(stepState('host', 'maintenance', { type: 'UP' })).toBe('maintenance');
    expect(stepState('host', 'registering', { type: 'UP' })).toBe('active');
    expect(availableActions('host', 'active')).toEqual(['maintenance', 'remove']);
  });

  it('marks transitioning states', () => {
    expect(transitioningOf('virtualMachine', 'starting')).toBe('yes');
    expect(transitioningOf('virtualMachine', 'running')).toBe('no');
    expect(transitioningOf('volume', 'error')).toBe('error');
    expect(transitioningOf('host', 'down')).toBe('no');
  });

  it('describes guarded transitions with their guard', () => {
    const t = describeLifecycle('virtualMachine').transitions.filter(
      (x) => x.from === 'creating' && x.event === 'REACHED_STOPPED',
    );
    expect(t.map((x) => [x.guard, x.to])).toEqual([
      ['wantsRunning', 'starting'],
      [null, 'stopped'],
    ]);
    expect(
      describeLifecycle('virtualMachine').transitions.find((x) => x.event === 'START')?.action,
    ).toBe('start');
  });
});
