// Goal: the injector turns a plan into the right world actions at the right times — explicit faults
// at their times, windows (disconnects, isolation) opened and closed, pause-holder faults armed
// and fired only at the chosen point, and at the heal everything stops: the phase ends, every cut
// is restored, armed faults are dropped and the world is asked to heal. Method: a fake world with
// its own little clock that records every call; `at` events run in (time, order) order.
import { describe, expect, it } from 'vitest';
import { FaultInjector, type FaultWorld } from '../../../src/faults/injector.ts';
import { emptyPlan, type FaultRecord, type ScheduledFault } from '../../../src/faults/plan.ts';

function fakeWorld() {
  const events: { atMs: number; seq: number; label: string; run: () => void }[] = [];
  const calls: string[] = [];
  const records: FaultRecord[] = [];
  let seq = 0;
  let now = 0;
  const world: FaultWorld = {
    at: (atMs, label, run) => events.push({ atMs, seq: seq++, label, run }),
    record: (r) => records.push(r),
    crashProcess: (name, restart) => calls.push(`${now} crash ${name} ${restart ?? '-'}`),
    pauseProcess: (name, forMs) => calls.push(`${now} pause ${name} ${forMs ?? '-'}`),
    expireSessions: (name) => (calls.push(`${now} expire ${name}`), 2),
    crashHost: (name, forMs) => calls.push(`${now} host-crash ${name} ${forMs ?? '-'}`),
    hangHost: (name, forMs) => calls.push(`${now} hang ${name} ${forMs}`),
    agentOf: (host) => `agent-${host}`,
    healWorld: () => calls.push(`${now} heal-world`),
  };
  /** Runs every event due by `untilMs`, in order. */
  const runUntil = (untilMs: number): void => {
    for (;;) {
      events.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
      const next = events[0];
      if (next === undefined || next.atMs > untilMs) break;
      events.shift();
      now = next.atMs;
      next.run();
    }
    now = untilMs;
  };
  return { world, calls, records, runUntil };
}

const fault = (
  f: Partial<ScheduledFault> & Pick<ScheduledFault, 'atMs' | 'kind' | 'target'>,
): ScheduledFault => ({ restartAfterMs: undefined, forMs: undefined, ...f });

describe('FaultInjector', () => {
  it('fires process and host faults at their times, then heals the world', () => {
    const w = fakeWorld();
    const injector = new FaultInjector(
      {
        ...emptyPlan(100),
        schedule: [
          fault({ atMs: 10, kind: 'crash', target: 'api', restartAfterMs: 5 }),
          fault({ atMs: 20, kind: 'pause', target: 'background', forMs: 7 }),
          fault({ atMs: 30, kind: 'session-expire', target: 'mainloop-1' }),
          fault({ atMs: 40, kind: 'host-crash', target: 'compute-1' }),
          fault({ atMs: 50, kind: 'host-hang', target: 'storage-1', forMs: 9 }),
        ],
      },
      w.world,
    );
    injector.start();
    expect(() => injector.start()).toThrow(/already started/);
    w.runUntil(99);
    expect(injector.phase.active).toBe(true);
    w.runUntil(100);
    expect(injector.phase.active).toBe(false);
    expect(w.calls).toEqual([
      '10 crash api 5',
      '20 pause background 7',
      '30 expire mainloop-1',
      '40 host-crash compute-1 -',
      '50 hang storage-1 9',
      '100 heal-world',
    ]);
    expect(w.records.map((r) => r.kind)).toEqual([
      'fault.crash',
      'fault.pause',
      'fault.session-expire',
      'fault.host-crash',
      'fault.host-hang',
      'fault.heal',
    ]);
  });

  it('opens and closes disconnect and isolation windows; the heal closes what is left', () => {
    const w = fakeWorld();
    const injector = new FaultInjector(
      {
        ...emptyPlan(100),
        schedule: [
          fault({ atMs: 10, kind: 'bus-disconnect', target: 'mainloop-2', forMs: 20 }),
          fault({ atMs: 15, kind: 'host-isolate', target: 'compute-2', forMs: 10 }),
          fault({ atMs: 50, kind: 'host-isolate', target: 'compute-1' }),
          fault({ atMs: 12, kind: 'db-disconnect', target: 'background', forMs: 5 }),
        ],
      },
      w.world,
    );
    injector.start();
    w.runUntil(12);
    expect(injector.disconnects.isCut('mainloop-2')).toBe(true);
    expect(injector.isIsolated('agent-compute-2')).toBe(false);
    // A database cut: the database only, of that process only, for its window.
    expect(injector.isDatabaseCut('background')).toBe(true);
    expect(injector.isIsolated('background')).toBe(false);
    expect(injector.isDatabaseCut('mainloop-2')).toBe(false);
    w.runUntil(20);
    expect(injector.isDatabaseCut('background')).toBe(false);
    expect(injector.isIsolated('agent-compute-2')).toBe(true);
    expect(injector.isDatabaseCut('agent-compute-2')).toBe(true);
    w.runUntil(26);
    expect(injector.isIsolated('agent-compute-2')).toBe(false);
    w.runUntil(31);
    expect(injector.disconnects.isCut('mainloop-2')).toBe(false);
    w.runUntil(60);
    expect(injector.isIsolated('agent-compute-1')).toBe(true);
    w.runUntil(100);
    expect(injector.isIsolated('agent-compute-1')).toBe(false);
  });

  it('fires a pause-holder fault once, at the armed point only, and never after the heal', () => {
    const w = fakeWorld();
    const injector = new FaultInjector(
      {
        ...emptyPlan(100),
        schedule: [
          fault({
            atMs: 10,
            kind: 'pause-holder',
            target: 'mainloop-1',
            forMs: 30,
            point: 'write',
          }),
          fault({ atMs: 10, kind: 'pause-holder', target: 'mainloop-2', forMs: 30 }),
        ],
      },
      w.world,
    );
    injector.start();
    injector.noteHold('mainloop-1', 'write');
    expect(w.calls).toEqual([]);
    w.runUntil(10);
    injector.noteHold('mainloop-1', 'acquire');
    expect(w.calls).toEqual([]);
    injector.noteHold('mainloop-1', 'write');
    injector.noteHold('mainloop-1', 'write');
    expect(w.calls).toEqual(['10 pause mainloop-1 30']);
    w.runUntil(100);
    injector.noteHold('mainloop-2', 'acquire');
    expect(w.calls).toEqual(['10 pause mainloop-1 30', '100 heal-world']);
  });

  it('refuses a plan with a fault at or after the heal', () => {
    const w = fakeWorld();
    const injector = new FaultInjector(
      { ...emptyPlan(10), schedule: [fault({ atMs: 10, kind: 'crash', target: 'api' })] },
      w.world,
    );
    expect(() => injector.start()).toThrow(/not before the heal/);
  });
});
