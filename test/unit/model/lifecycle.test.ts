/**
 * Goal: the lifecycle answers the projector, the deciders and the api use (`stepState`, `accepts`,
 * `isFinalState`, `availableActions`, `allowsDelete`) are remembered per state, event type and the
 * event fields the guards read — so they must be exactly xstate's, and the guards must read no
 * other field of an event (or two events with the same key could deserve different answers).
 *
 * Method: every state × every event type a machine knows × every value of its guard fields
 * (including absent), the remembered answer against xstate asked directly; and each guard's reads
 * recorded through a Proxy event. A guard that read an undeclared field, or a key that left out a
 * declared one, fails here.
 */
import { describe, expect, it } from 'vitest';
import {
  accepts,
  availableActions,
  GUARD_FIELDS,
  isFinalState,
  machineOf,
  statesOf,
  stepState,
  USER_EVENTS,
  xstateStep,
} from '../../../src/model/lifecycle.ts';
import type { MachineType } from '../../../src/model/resources.ts';

const TYPES: readonly MachineType[] = ['virtualMachine', 'volume', 'snapshot', 'host'];

/** Values each guard field takes in events, plus absent. */
const FIELD_VALUES: Readonly<Record<string, readonly unknown[]>> = {
  desired: ['running', 'stopped', undefined],
  attached: [true, false, undefined],
};

function eventTypes(type: MachineType): string[] {
  const machine = machineOf(type);
  const names = new Set<string>(Object.values(USER_EVENTS[type]));
  for (const state of statesOf(type)) {
    for (const event of machine.states[state]?.transitions.keys() ?? []) names.add(event);
  }
  names.add('NO_SUCH_EVENT');
  return [...names].sort();
}

/**
 * Every event of `eventType` over the product of the values of every field any guard reads (not
 * only the type's declared ones, so a field missing from the declaration changes an answer here).
 */
function eventsOf(type: MachineType, eventType: string): Record<string, unknown>[] {
  let events: Record<string, unknown>[] = [{ type: eventType }];
  const fields = new Set([...Object.keys(FIELD_VALUES), ...GUARD_FIELDS[type]]);
  for (const field of fields) {
    const values = FIELD_VALUES[field];
    expect(values, `values of guard field ${field}`).toBeDefined();
    events = events.flatMap((event) =>
      (values ?? []).map((value) =>
        value === undefined ? { ...event } : { ...event, [field]: value },
      ),
    );
  }
  return events;
}

function resolved(type: MachineType, state: string) {
  return machineOf(type).resolveState({ value: state, context: {} });
}

describe('lifecycle answers', () => {
  for (const type of TYPES) {
    it(`${type}: remembered answers are xstate's, asked twice`, () => {
      let guarded = 0;
      for (const state of statesOf(type)) {
        expect(isFinalState(type, state)).toBe(resolved(type, state).status === 'done');
        for (const eventType of eventTypes(type)) {
          const answers = new Set<string>();
          for (const event of eventsOf(type, eventType)) {
            const expected = xstateStep(type, state, event as never);
            const can = resolved(type, state).can(event);
            for (let round = 0; round < 2; round++) {
              expect(
                stepState(type, state, event as never),
                `${state} ${JSON.stringify(event)}`,
              ).toBe(expected);
              expect(accepts(type, state, event as never)).toBe(can);
            }
            answers.add(expected);
          }
          if (answers.size > 1) guarded++;
        }
        const actions = Object.entries(USER_EVENTS[type])
          .filter(
            ([action, event]) => action !== 'delete' && resolved(type, state).can({ type: event }),
          )
          .map(([action]) => action)
          .sort();
        expect(availableActions(type, state)).toEqual(actions);
      }
      // A machine with guard fields has answers that depend on them, or the fields are wrong.
      if (GUARD_FIELDS[type].length > 0) expect(guarded).toBeGreaterThan(0);
    });

    it(`${type}: the guards read no event field but type and ${GUARD_FIELDS[type].join(', ') || 'nothing else'}`, () => {
      const read = new Set<string>();
      for (const state of statesOf(type)) {
        for (const eventType of eventTypes(type)) {
          for (const event of eventsOf(type, eventType)) {
            const spy = new Proxy(event, {
              get(target, property, receiver) {
                if (typeof property === 'string') read.add(property);
                return Reflect.get(target, property, receiver) as unknown;
              },
              has(target, property) {
                if (typeof property === 'string') read.add(property);
                return Reflect.has(target, property);
              },
            });
            xstateStep(type, state, spy as never);
            resolved(type, state).can(spy);
          }
        }
      }
      const allowed = new Set(['type', ...GUARD_FIELDS[type]]);
      expect([...read].filter((field) => !allowed.has(field))).toEqual([]);
      for (const field of GUARD_FIELDS[type]) expect(read.has(field), field).toBe(true);
    });
  }
});
